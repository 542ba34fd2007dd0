"""lockd under the real Claude Code CLI (issue 12): what a user's machine pays
for `lockd-mcp`, and how fast a message reaches the model through the CLI.

Each round is one headless `claude -p` session (the version pinned in
tests/clients/package.json) with this checkout's `lockd-mcp`, the README's
hooks, a real broker and a scripted stand-in for the model API
(tests/clients/fake_anthropic.py). The model makes a few lockd tool calls;
then, while Claude Code waits for its next answer, the resident memory of the
`lockd-mcp` process it started is read (psutil: RSS, and USS, the pages only
it holds). Then a person sends it messages: each one goes out just before the
model's answer that writes a file, and is timed to the model request that
carries it (the Write's PostToolUse `lockd inbox --hook` puts it in context).
Channel pushes are not timed: Claude Code evaluates channels only in an
interactive session, and there its feature-flag gate stays closed here.

Run: .venv/bin/python bench/bench_clients.py [--sessions 3] [--messages 5]
(needs `npm ci --prefix tests/clients`; without the CLI it reports that)
"""

from __future__ import annotations

import json
import os
import re
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import Rows, broker, run_alone  # noqa: E402
from lockd.client.api import Api  # noqa: E402
from lockd.local.repo import identify  # noqa: E402
from lockd.testing import Broker  # noqa: E402
from tests.clients.claudecode import ClaudeCode, require_claude  # noqa: E402
from tests.clients.fake_anthropic import FakeAnthropic, Request, Step, say, tool_use  # noqa: E402
from tests.gitutil import git_env, make_repo  # noqa: E402

MIB = 1024 * 1024
RSS_GOAL_MIB = 60
HOOK_TIME = re.compile(
    r"Hooks: (\w+)(?::\w+)? \[\S*lockd (inbox|guard) --hook[^\]]*\] finished .*\((\d+)ms\)"
)


def lockd_mcp(claude_pid: int) -> psutil.Process:
    for child in psutil.Process(claude_pid).children(recursive=True):
        try:
            if any("lockd-mcp" in part for part in child.cmdline()):
                return child
        except psutil.NoSuchProcess:
            continue
    raise RuntimeError("no lockd-mcp under this claude process")


class Session:
    """The model's side of one session: a few tool calls, a memory reading,
    then `messages` sends, each timed to the request that shows it."""

    def __init__(self, b: Broker, repo: Path, sender: Any, messages: int) -> None:
        self.b, self.repo, self.sender, self.messages = b, repo, sender, messages
        self.claude_pid = 0
        self.memory: list[tuple[int, int]] = []  # (rss, uss) in bytes
        self.latency_ms: list[float] = []
        self.hooks: list[tuple[str, str, int]] = []  # (event, lockd command, ms)
        self._whoami = tool_use("mcp__lockd__whoami")
        self._peer = ""
        self._pending: tuple[str, float] | None = None

    def script(self) -> list[Step | Callable[[Request], Step]]:
        calls = [
            tool_use("mcp__lockd__list_locks"),
            tool_use("mcp__lockd__check_paths", paths=["src/a.py", "README.md"]),
            tool_use("mcp__lockd__set_summary", summary="benchmarking lockd under Claude Code"),
            tool_use("mcp__lockd__list_peers", scope="machine"),
        ]
        rounds = [self._send_then_write(i) for i in range(self.messages)]
        return [self._whoami, self._learn_peer, *calls, self._measure, *rounds, self._last]

    def _learn_peer(self, request: Request) -> Step:
        self._peer = json.loads(request.tool_results()[self._whoami.id]["text"])["peer_id"]
        return tool_use("mcp__lockd__announce_intent", patterns=["src/"], reason="bench")

    def _measure(self, request: Request) -> Step:
        proc = lockd_mcp(self.claude_pid)
        info = proc.memory_full_info()
        self.memory.append((info.rss, info.uss))
        return tool_use("mcp__lockd__check_messages")

    def _check_delivery(self, request: Request) -> None:
        if self._pending is None:
            return
        text, sent = self._pending
        if text not in request.last_text():
            raise AssertionError(f"message {text!r} not in the request after the Write")
        self.latency_ms.append((request.at - sent) * 1000)
        self._pending = None

    def _send_then_write(self, i: int) -> Callable[[Request], Step]:
        def step(request: Request) -> Step:
            self._check_delivery(request)
            text = f"bench message {i}"
            self.sender.call(Api.send(self._peer, text))
            self._pending = (text, time.perf_counter())
            return tool_use("Write", file_path=str(self.repo / f"notes{i}.md"), content=f"{i}\n")

        return step

    def _last(self, request: Request) -> Step:
        self._check_delivery(request)
        info = lockd_mcp(self.claude_pid).memory_full_info()
        self.memory.append((info.rss, info.uss))
        return say("done")


def one_session(binary: str, b: Broker, root: Path, n: int, messages: int) -> Session:
    repo = make_repo(root / f"repo{n}", {"src/a.py": "x = 1\n", "README.md": "hi\n"})
    info = identify(str(repo))
    sender = b.register(cwd=str(repo), repo_id=info.repo_id, name=f"bench-person-{n}")
    user = ClaudeCode(binary, b, root / f"user{n}", repo, f"bench-{n}")
    session = Session(b, repo, sender, messages)
    with FakeAnthropic(session.script()) as api:
        debug = root / f"debug{n}.log"
        proc = user.start(api, extra=("--debug-file", str(debug)))
        session.claude_pid = proc.pid
        result = user.finish(proc, timeout=120)
        if result.returncode != 0 or api.errors:
            raise RuntimeError(f"claude session failed: {api.errors}\n{result}")
    session.hooks = [
        (m.group(1), m.group(2), int(m.group(3))) for m in HOOK_TIME.finditer(debug.read_text())
    ]
    user.close()
    return session


def _p50_max(ms: list[float]) -> str:
    """Whole milliseconds, and the max, not p99: a few runs per session only."""
    return f"p50 {statistics.median(ms):.0f} ms, max {max(ms):.0f} ms"


def run(sessions: int = 3, messages: int = 5) -> Rows:
    try:
        binary = require_claude()
    except pytest.skip.Exception as missing:  # the pinned CLI is not installed here
        return [("lockd-mcp under Claude Code", f"not run: {missing.msg}", "—")]
    done: list[Session] = []
    with tempfile.TemporaryDirectory(prefix="lockd-clients-bench-") as tmp, broker() as b:
        os.environ.update(git_env(Path(tmp) / "git"))
        for n in range(sessions):
            done.append(one_session(binary, b, Path(tmp), n, messages))
    rss = [r / MIB for s in done for r, _ in s.memory]
    uss = [u / MIB for s in done for _, u in s.memory]
    lat = [x for s in done for x in s.latency_ms]
    hooks = [h for s in done for h in s.hooks]
    inbox_post = [ms for event, kind, ms in hooks if kind == "inbox" and event == "PostToolUse"]
    guard_pre = [ms for event, kind, ms in hooks if kind == "guard" and event == "PreToolUse"]
    return [
        (
            f"lockd-mcp resident memory under Claude Code ({sessions} sessions, after 6 "
            f"and {7 + messages} tool calls)",
            f"RSS median {statistics.median(rss):.1f} MiB, max {max(rss):.1f} MiB "
            f"(USS median {statistics.median(uss):.1f} MiB)",
            f"≤ {RSS_GOAL_MIB} MiB",
        ),
        (
            f"send → the model's next request, one Write between ({len(lat)} msgs)",
            _p50_max(lat),
            "—",
        ),
        (
            f"`lockd inbox --hook` on PostToolUse, timed by Claude Code ({len(inbox_post)} runs)",
            _p50_max(inbox_post),
            "—",
        ),
        (
            f"`lockd guard --hook` on PreToolUse, timed by Claude Code ({len(guard_pre)} runs)",
            _p50_max(guard_pre),
            "—",
        ),
        ("channel push → model", "not observable here (Claude Code's feature-flag gate)", "—"),
    ]


if __name__ == "__main__":
    run_alone("Under the real Claude Code", run)
