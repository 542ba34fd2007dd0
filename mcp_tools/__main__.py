from mcp_tools.server import main

main()
