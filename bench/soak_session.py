"""One churning agent session for bench/bench_soak.py: the client library's
AgentSession (session file, heartbeats, pushed messages acknowledged), looping
claim / check / send / release.

Run: python bench/soak_session.py NAME REPO_DIR ROUNDS {close|hang}
ROUNDS 0: loop until killed. `close` says goodbye at the end; `hang` prints
`done` and waits to be killed (SIGKILL: no goodbye, the broker sees the
process gone)."""

from __future__ import annotations

import asyncio
import os
import random
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from lockd.client.api import Api  # noqa: E402
from lockd.client.session import AgentSession  # noqa: E402
from lockd.core.errors import LockdError  # noqa: E402

FILES = [f"src/pkg{p}/mod{m}.py" for p in range(20) for m in range(20)]  # a repo's 400 files
GLOBS = [f"src/pkg{p}/**/*.py" for p in range(20)] + ["docs/", "*.md", "tests/**/test_*.py"]


async def _tell_the_repo(session: AgentSession, text: str) -> None:
    """A broadcast; alone in the repo for a moment (the churn's sessions come and go),
    the broker rightly says nobody is there: that is not an error of lockd's."""
    try:
        await session.call(Api.send("@repo", text))
    except LockdError as exc:
        if not (exc.kind == "not_found" and exc.message.startswith("nobody else is live")):
            raise


async def main(name: str, cwd: str, rounds: int, end: str) -> None:
    os.environ["LOCKD_SESSION_KEY"] = f"soak-{name}-{os.getpid()}"
    session = AgentSession(cwd=cwd, client_name="soak", name=name)
    await session.start()
    calls = 0

    async def shown(_: dict[str, Any]) -> bool:
        return True  # acknowledged, as an agent's channel would

    session.run_background(shown)
    repo, rng, k = session.repo.repo_id, random.Random(name), 0
    while rounds == 0 or k < rounds:
        k += 1
        pattern = rng.choice(GLOBS) if rng.random() < 0.2 else rng.choice(FILES)
        try:
            got = await session.call(Api.announce(repo, [pattern], f"soak {name} {k}"))
            await session.call(Api.check(repo, [rng.choice(FILES)]))
            await _tell_the_repo(session, f"{name} round {k}: working on {pattern}")
            if got.get("granted"):
                await session.call(Api.release(repo, [i["intent_id"] for i in got["intents"]]))
            calls += 4
        except LockdError as exc:
            print(f"error {exc.kind}: {exc.message}", file=sys.stderr, flush=True)
        await asyncio.sleep(0.5)
    if end == "close":
        await session.close()
        print(f"closed {calls}", flush=True)
        return
    print(f"done {calls}", flush=True)
    await asyncio.sleep(3600)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]))
