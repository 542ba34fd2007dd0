"""Fuzzing the broker's two edges with generated input: its HTTP API from its
own OpenAPI document (schemathesis), and the MCP tools' arguments (hypothesis)
over a real stdio session. Bad input must get a refusal that says why, never a
crash, and a refused call must write nothing."""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import re
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from mcp.types import CallToolResult

from lockd.client.api import Api
from lockd.client.sync import Client
from lockd.testing import Broker
from tests.gitutil import make_repo
from tests.mcputil import Session, mcp_session

API_EXAMPLES = 30  # per operation and generation mode: ~1,000 requests in all


def _uses_session(operation: Any) -> bool:
    return any(p.name.lower() == "x-lockd-session" for p in operation.headers)


def _fuzz_operation(
    operation: Any,
    mode: Any,
    base_url: str,
    http: Any,
    headers: dict[str, str],
    checks: list[Any],
    cases: Counter[str],
    statuses: Counter[int],
) -> None:
    """One operation, one generation mode: a bounded, reproducible hypothesis run."""

    @settings(
        max_examples=API_EXAMPLES,
        deadline=None,
        database=None,
        derandomize=True,
        phases=[Phase.explicit, Phase.generate, Phase.shrink],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(generation_mode=mode))
    def run(case: Any) -> None:
        response = case.call_and_validate(
            base_url=base_url, session=http, headers=headers, checks=checks, timeout=10
        )
        cases[operation.label] += 1
        statuses[response.status_code] += 1

    run()


def test_openapi_fuzz_no_server_error_and_schema_conformance(broker: Broker) -> None:
    """Every documented operation, fed schema-valid and schema-invalid input with
    the token and a real session credential, answers without a 5xx and as its
    OpenAPI document says; and the broker logs no unhandled error meanwhile."""
    schemathesis = pytest.importorskip("schemathesis")
    requests = pytest.importorskip("requests")
    from schemathesis.checks import not_a_server_error
    from schemathesis.specs.openapi.checks import (
        content_type_conformance,
        response_schema_conformance,
        status_code_conformance,
    )

    checks = [
        not_a_server_error,
        status_code_conformance,
        content_type_conformance,
        response_schema_conformance,
    ]
    me = broker.register(name="fuzzer")
    auth = {"Authorization": f"Bearer {broker.token}"}
    schema = schemathesis.openapi.from_url(f"{broker.url}/openapi.json", headers=auth, timeout=5)
    # shutdown would end the run; the event stream never ends by itself
    schema = schema.exclude(path=["/v1/shutdown", "/v1/stream"])
    http = requests.Session()
    cases: Counter[str] = Counter()
    statuses: Counter[int] = Counter()
    unsatisfiable: list[str] = []
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 15, [op.label for op in operations]
    for operation in operations:
        headers = dict(auth)
        if _uses_session(operation):
            headers["X-Lockd-Session"] = me.credential or ""
        modes = [schemathesis.GenerationMode.POSITIVE]
        inputs = [p for p in operation.iter_parameters() if p.name.lower() != "x-lockd-session"]
        if inputs or operation.get_request_payload_content_types():
            # else nothing to make invalid: the session header is always the real one
            modes.append(schemathesis.GenerationMode.NEGATIVE)
        for mode in modes:
            try:
                _fuzz_operation(operation, mode, broker.url, http, headers, checks, cases, statuses)
            except Unsatisfiable:
                # Nothing schema-invalid exists (a free-form string path parameter,
                # as in DELETE /v1/tokens/{name}): the positive run covered it.
                assert mode == schemathesis.GenerationMode.NEGATIVE, operation.label
                unsatisfiable.append(operation.label)
    total = sum(cases.values())
    print(f"\nschemathesis: {total} cases over {len(cases)} operations; statuses {dict(statuses)}")
    assert set(cases) == {op.label for op in operations}
    assert unsatisfiable in ([], ["DELETE /v1/tokens/{name}"])
    assert total >= len(operations) * 10
    assert statuses[200] > 0 and any(400 <= s < 500 for s in statuses)
    assert broker.client(me.credential).call(Api.whoami())["peer_id"] == me.peer["peer_id"]  # type: ignore[attr-defined]
    log = (broker.home / "logs").glob("*.log")
    errors = [line for path in log for line in path.read_text().splitlines() if "Traceback" in line]
    assert errors == [], errors


# ---- MCP tools ----------------------------------------------------------------
TOOL_EXAMPLES = 40  # per tool: 360 calls, each between two snapshots of the broker

_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=20),
)
JUNK = st.recursive(
    _scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=8,
)
HUGE = st.builds(
    lambda ch, n: ch * n,
    st.sampled_from(["x", "é", "🦀", "/", "*", "\u202e"]),
    st.integers(5_000, 300_000),
)
TEXT = st.one_of(st.text(max_size=40), HUGE)
PATH = st.one_of(
    st.sampled_from(
        ["src/a.py", "src/held/x.py", "README.md", "/etc/passwd", "../up", "", " ", "a\x00b", "~/x"]
    ),
    TEXT,
)
PATTERN = st.one_of(
    st.sampled_from(
        ["src/", "*.md", "/Makefile", "src/held/", "**", "!src", "", "../etc", "/", "[", "a\x00b"]
    ),
    TEXT,
)


def _tool_args(buddy_id: str) -> dict[str, st.SearchStrategy[dict[str, Any]]]:
    """Per tool, three kinds of argument dicts, about equally often: plausible
    (what an agent would send), well-formed but odd (right types, edge values:
    huge, unicode, out of range), and junk (any JSON type for any argument,
    arguments missing, unknown keys)."""
    good_pattern = st.sampled_from(["src/a.py", "*.md", "/Makefile", "docs/**", "src/held/"])
    scope = st.sampled_from(["repo", "directory", "machine"])
    plausible: dict[str, dict[str, st.SearchStrategy[Any]]] = {
        "list_peers": {"scope": scope},
        "send_message": {
            "to": st.sampled_from(["buddy", buddy_id, "@repo", "@machine", "@directory"]),
            "message": st.text(min_size=1, max_size=200),
        },
        "set_summary": {"summary": st.text(max_size=200)},
        "check_messages": {},
        "whoami": {},
        "announce_intent": {
            "patterns": st.lists(good_pattern, min_size=1, max_size=3),
            "reason": st.text(min_size=1, max_size=100).filter(str.strip),
            "mode": st.sampled_from(["exclusive", "shared"]),
            "ttl_seconds": st.none() | st.floats(60, 3600),
            "notify_when_free": st.booleans(),
        },
        "list_locks": {"scope": scope, "path": st.none() | st.sampled_from(["src/a.py", "x"])},
        "release_intent": {
            "intent_ids": st.none() | st.lists(st.sampled_from(["i1", "i2", "i3"]), max_size=2),
            "patterns": st.none() | st.lists(good_pattern, max_size=2),
        },
        "check_paths": {"paths": st.lists(st.sampled_from(["src/a.py", "src/held/x.py"]))},
    }
    odd: dict[str, dict[str, st.SearchStrategy[Any]]] = {
        "list_peers": {"scope": st.text(max_size=10)},
        "send_message": {
            "to": st.sampled_from(["@x", "nobody", "", "@", buddy_id + "x"]) | TEXT,
            "message": TEXT,
        },
        "set_summary": {"summary": TEXT},
        "check_messages": {},
        "whoami": {},
        "announce_intent": {
            "patterns": st.lists(PATTERN, max_size=4)
            | st.builds(lambda n: ["src/"] * n, st.integers(90, 150)),
            "reason": TEXT,
            "mode": st.text(max_size=10),
            "ttl_seconds": st.floats(allow_nan=False, allow_infinity=False)
            | st.integers(-(2**70), 2**70),
            "notify_when_free": st.booleans(),
        },
        "list_locks": {"scope": st.text(max_size=10), "path": PATH},
        "release_intent": {
            "intent_ids": st.lists(st.sampled_from(["i0", "i-1", "m1", "i99999999999"]) | TEXT),
            "patterns": st.lists(PATTERN, max_size=4),
        },
        "check_paths": {
            "paths": st.lists(PATH, max_size=5)
            | st.builds(lambda n: ["a"] * n, st.integers(900, 1500))
        },
    }
    required = {"send_message": ("to", "message"), "set_summary": ("summary",)}
    required |= {"announce_intent": ("patterns", "reason"), "check_paths": ("paths",)}
    out = {}
    for tool in plausible:
        need = required.get(tool, ())
        kinds = []
        for fields in (plausible[tool], odd[tool]):
            kinds.append(
                st.fixed_dictionaries(
                    {k: v for k, v in fields.items() if k in need},
                    optional={k: v for k, v in fields.items() if k not in need},
                )
            )
        anything = {k: plausible[tool][k] | odd[tool][k] | JUNK for k in plausible[tool]}
        junk = st.builds(
            lambda extra, known: {**extra, **known},
            st.dictionaries(st.text(max_size=10), JUNK, max_size=2),
            st.fixed_dictionaries({}, optional=anything),
        )
        out[tool] = st.one_of(*kinds, junk)
    return out


class ThreadedSession:
    """One real MCP stdio session whose event loop runs in a thread, so that
    plain (sync) hypothesis examples can call it one after another."""

    def __init__(self, cwd: str, env: dict[str, str]) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.opened: concurrent.futures.Future[Session] = concurrent.futures.Future()
        self.held = asyncio.run_coroutine_threadsafe(self._hold(cwd, env), self.loop)
        self.session = self.opened.result(timeout=30)

    async def _hold(self, cwd: str, env: dict[str, str]) -> None:
        self.done = asyncio.Event()
        try:
            async with mcp_session(cwd, env, "fuzz") as session:
                self.opened.set_result(session)
                await self.done.wait()
        except BaseException as exc:
            if not self.opened.done():
                self.opened.set_exception(exc)
            raise

    def call(self, tool: str, args: dict[str, Any]) -> CallToolResult:
        coro = self.session.client.call_tool(tool, args)
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=30)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.done.set)
        try:
            self.held.result(timeout=15)
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(5)
            self.loop.close()


def _snapshot(watcher: Client) -> tuple[Any, ...]:
    """What a tool call can write, seen by another peer: claims, peers' names
    and summaries, the watcher's inbox, claim events. Claims that expire on
    their own (a short ttl granted earlier) are left out, and so are their
    expiries (recorded as event `expired`): time changes them, not the call."""
    soon = time.time() + 30
    locks = [
        (lk["intent_id"], lk["pattern"], lk["mode"], lk["reason"], lk["expires_at"])
        for lk in watcher.call(Api.locks())["locks"]
        if lk["expires_at"] is None or lk["expires_at"] > soon
    ]
    peers = [(p["peer_id"], p["name"], p["summary"]) for p in watcher.call(Api.peers())["peers"]]
    inbox = [m["message_id"] for m in watcher.call(Api.inbox(mark_read=False))["messages"]]
    events = [
        e["event_id"]
        for e in watcher.call(Api.events(limit=1000))["events"]
        if e["event"] != "expired"
    ]
    return sorted(locks), sorted(peers), inbox, events


def test_mcp_tools_fuzz_errors_never_crash_or_write(broker: Broker, tmp_path: Path) -> None:
    """Random arguments for all nine tools through one real MCP session: each
    call gives a result or a tool error with a message; a failed call leaves
    the broker as it was; the session still answers afterwards as itself."""
    repo = make_repo(tmp_path / "proj", {"src/a.py": "a\n", "src/held/x.py": "x\n"})
    env = {**os.environ, **broker.env}
    mcp = ThreadedSession(str(repo), env)
    try:
        me = _structured(mcp.call("whoami", {}))
        buddy = broker.register(cwd=str(repo), repo_id=me["repo"], name="buddy")
        held = buddy.call(Api.announce(me["repo"], ["/src/held/"], "held by buddy"))
        assert held["granted"]
        outcomes: Counter[tuple[str, str]] = Counter()
        strategies = _tool_args(buddy.peer["peer_id"])  # type: ignore[attr-defined]
        for tool, strategy in strategies.items():
            _fuzz_tool(mcp, buddy, tool, strategy, outcomes)
        after = _structured(mcp.call("whoami", {}))
        assert after["peer_id"] == me["peer_id"]
    finally:
        mcp.close()
    total = sum(outcomes.values())
    print(f"\nhypothesis over MCP tools: {total} calls; {dict(sorted(outcomes.items()))}")
    assert {tool for tool, _ in outcomes} == set(strategies)
    assert any(kind == "ok" for _, kind in outcomes) and any(
        kind == "error" for _, kind in outcomes
    )


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 300 else f"{text[:300]}... ({len(text)} chars)"


def _structured(result: CallToolResult) -> dict[str, Any]:
    assert not result.is_error, result.content
    return result.structured_content or {}


def _fuzz_tool(
    mcp: ThreadedSession,
    watcher: Client,
    tool: str,
    strategy: st.SearchStrategy[dict[str, Any]],
    outcomes: Counter[tuple[str, str]],
) -> None:
    @settings(
        max_examples=TOOL_EXAMPLES,
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
    )
    @given(args=strategy)
    def run(args: dict[str, Any]) -> None:
        before = _snapshot(watcher)
        result = mcp.call(tool, args)
        text = result.content[0].text if result.content else ""  # type: ignore[union-attr]
        if result.is_error:
            why = re.sub(rf"^Error executing tool {tool}:?", "", text).strip()
            assert why, f"{tool}({_short(args)}): a tool error that does not say why: {text!r}"
            assert _snapshot(watcher) == before, f"{tool}({_short(args)}) failed ({text}) but wrote"
            outcomes[tool, "error"] += 1
        else:
            assert result.structured_content is not None, (tool, _short(args))
            outcomes[tool, "ok"] += 1

    run()
