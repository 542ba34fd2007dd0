from lockd.cli.main import entry

entry()
