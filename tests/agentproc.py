"""A streaming agent session in its own process, for tests that kill it:
registered with its own pid and start time (as lockd-mcp registers its agent),
holding its event stream open, claiming `src/core/` and `*.lock`. It prints one
JSON line (peer_id, credential, granted), then blocks on the stream."""

SESSION = r"""
import http.client, json, os, sys
import psutil
from lockd.client.api import Api
from lockd.client.sync import Client
url, token, port, repo = sys.argv[1:5]
me = os.getpid()
c = Client(url, token=token)
peer = c.call(Api.register(cwd="/tmp/s", repo_id=repo, repo_root="/tmp/s", kind="agent",
                           client="test", name="doomed", pid=me,
                           pid_start=psutil.Process(me).create_time()))
c.credential = peer["credential"]
stream = http.client.HTTPConnection("127.0.0.1", int(port))
stream.request("GET", "/v1/stream", headers={"Authorization": "Bearer " + token,
               "X-Lockd-Session": peer["credential"], "Accept": "text/event-stream"})
resp = stream.getresponse()
assert resp.status == 200
resp.readline()
res = c.call(Api.announce(repo, ["src/core/", "*.lock"], "doomed work"))
print(json.dumps({"peer_id": peer["peer_id"], "credential": peer["credential"],
                  "granted": res["granted"]}), flush=True)
while resp.read(1):
    pass
"""
