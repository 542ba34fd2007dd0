"""The only way any adapter (CLI, hooks, MCP server, dashboard tests) reaches
the broker: one wire format, one error decoding, one place for `LOCKD_URL`.

Requests are described once by `Api` as plain tuples and written and read by
one small sans-I/O HTTP/1.1 codec (`lockd.client.codec`): `Client` feeds it from
a blocking socket for the CLI and hooks, `AsyncClient` from asyncio streams
for the MCP server, tests and benchmarks (its calls and its event stream). A general HTTP library
was measured and dropped twice: `http.client`'s import cost a third of the git
hook's budget, and httpx took half of the MCP server's CPU per tool call. The
broker is our own, speaks HTTP/1.1 with Content-Length, and is on loopback.
"""
