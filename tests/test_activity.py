"""Activity, overlaps and the merge forecast with real sessions: `lockd-mcp`
over stdio in real worktrees, the real edit guard, the real CLI, a real broker.
Nobody claims anything here: lockd has to see the collisions by itself."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from lockd.client.api import Api
from lockd.local.git import ROOT_CACHE
from lockd.local.repo import identify
from lockd.testing import Broker
from tests.gitutil import add_worktree, commit, git
from tests.hookcli import run_hook
from tests.mcputil import Session, mcp_session
from tests.polling import until

REPO_FILES = {"src/app.py": "one\ntwo\nthree\n", "src/util.py": "u\n", "docs/x.md": "x\n"}
FAST = {"LOCKD_ACTIVITY_SECONDS": "0.1", "LOCKD_ACTIVITY_RESCAN_SECONDS": "0.2"}


def fast(env: dict[str, str], **extra: str) -> dict[str, str]:
    return {**env, **FAST, **extra}


def overlaps(s: Session) -> list[str]:
    return [n.content for n in s.channel if n.meta.get("event") == "activity_overlap"]


def view(broker: Broker, repo: Path) -> dict[str, Any]:
    return broker.client().call(Api.activity(identify(str(repo)).repo_id))


def paths_of(broker: Broker, repo: Path, peer_id: str) -> set[str]:
    for p in view(broker, repo)["peers"]:
        if p["peer_id"] == peer_id:
            return {e["path"] for e in p["paths"]}
    return set()


def lockd(cwd: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "lockd", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.fixture
def worktrees(repo: Path, tmp_path: Path) -> tuple[Path, Path]:
    """Two worktrees of `repo`: wa on branch feature-a, wb on feature-b."""
    wa = add_worktree(repo, tmp_path / "wa", "feature-a")
    return wa, add_worktree(repo, tmp_path / "wb", "feature-b")


Me = dict[str, Any]


@asynccontextmanager
async def two_sessions(
    env: dict[str, str], wa: Path, wb: Path
) -> AsyncIterator[tuple[Session, Session, Me, Me]]:
    """Sessions a (in `wa`) and b (in `wb`), scanning fast, and what `whoami`
    answers each."""
    async with (
        mcp_session(str(wa), fast(env), "a") as a,
        mcp_session(str(wb), fast(env), "b") as b,
    ):
        yield a, b, await a.call("whoami"), await b.call("whoami")


def tree_hash(*roots: Path) -> str:
    """Every file of the checkouts and their git dirs (index, HEAD, refs,
    objects, logs), by path and content; but lockd's own cache of the root
    commit (repo identity, lockd.local.git.ROOT_CACHE), which any session writes."""
    h = hashlib.sha256()
    for root in roots:
        for folder, _dirs, files in sorted(os.walk(root)):
            for name in sorted(f for f in files if f != ROOT_CACHE):
                path = Path(folder) / name
                h.update(str(path).encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()


async def test_two_sessions_changing_one_file_are_both_told_once(
    repo: Path, worktrees: tuple[Path, Path], env: dict[str, str], broker: Broker
) -> None:
    wa, wb = worktrees
    async with two_sessions(env, wa, wb) as (a, b, me_a, me_b):
        (wa / "src/app.py").write_text("one\nTWO from a\nthree\n")
        (wb / "src/app.py").write_text("one\nTWO from b\nthree\n")
        await until(lambda: overlaps(a) and overlaps(b), timeout=15)
        told_a, told_b = overlaps(a)[0], overlaps(b)[0]
        assert "src/app.py" in told_a and me_b["name"] in told_a and me_b["peer_id"] in told_a
        assert "src/app.py" in told_b and me_a["name"] in told_b
        assert "has uncommitted changes to src/app.py since" in told_a
        assert "neither of you claims it" in told_a
        # check_paths says it too, in words and as data.
        seen = (await a.call("check_paths", paths=["src/app.py"]))["paths"][0]["activity"]
        assert [(s["peer_id"], s["kind"], s["overlap"]) for s in seen] == [
            (me_b["peer_id"], "uncommitted", True)
        ]
        assert seen[0]["text"].startswith(f"{me_b['name']} has uncommitted changes to this file")
        # More work by both, the same file changed again: reported, never told twice.
        (wa / "docs/x.md").write_text("more from a\n")
        (wb / "src/app.py").write_text("one\nTWO from b, again\nthree\n")
        (wb / "src/new.py").write_text("new\n")
        await until(lambda: "docs/x.md" in paths_of(broker, repo, me_a["peer_id"]), timeout=15)
        await until(lambda: "src/new.py" in paths_of(broker, repo, me_b["peer_id"]), timeout=15)
        sentinel = await a.call("send_message", to=me_b["name"], message="sentinel")
        await until(lambda: any(n.meta["message_id"] == sentinel["message_id"] for n in b.channel))
        assert len(overlaps(a)) == 1 and len(overlaps(b)) == 1


async def test_edits_to_different_files_stay_quiet(
    repo: Path, worktrees: tuple[Path, Path], env: dict[str, str], broker: Broker
) -> None:
    wa, wb = worktrees
    async with two_sessions(env, wa, wb) as (a, b, me_a, me_b):
        (wa / "src/app.py").write_text("changed by a\n")
        (wb / "src/util.py").write_text("changed by b\n")
        await until(lambda: "src/app.py" in paths_of(broker, repo, me_a["peer_id"]), timeout=15)
        await until(lambda: "src/util.py" in paths_of(broker, repo, me_b["peer_id"]), timeout=15)
        sentinel = await b.call("send_message", to=me_a["name"], message="sentinel")
        await until(lambda: any(n.meta["message_id"] == sentinel["message_id"] for n in a.channel))
        assert overlaps(a) == [] and overlaps(b) == []
        seen = (await a.call("check_paths", paths=["src/util.py"]))["paths"][0]["activity"]
        assert [(s["peer_id"], s["overlap"]) for s in seen] == [(me_b["peer_id"], False)]


async def test_forecast_finds_a_true_conflict_and_not_a_clean_merge_touching_nothing(
    repo: Path, tmp_path: Path, env: dict[str, str], broker: Broker
) -> None:
    wx = add_worktree(repo, tmp_path / "wx", "x")
    wy = add_worktree(repo, tmp_path / "wy", "y")
    wz = add_worktree(repo, tmp_path / "wz", "z")
    commit(wx, {"src/app.py": "one\nTWO by x\nthree\n"}, "x changes line two")
    commit(wy, {"docs/x.md": "y's docs\n", "src/app.py": "one\ntwo\nthree\nfour by y\n"})
    (wz / "src/app.py").write_text("one\nTWO by z, uncommitted\nthree\n")  # work in progress
    git(wz, "add", "src/app.py")  # staged, even: the forecast reads a copy of the index
    (wz / "src/util.py").write_text("unstaged by z\n")
    (wz / "notes.txt").write_text("untracked by z\n")
    before = tree_hash(repo, wx, wy, wz)
    async with (
        mcp_session(str(wx), fast(env), "x") as x,
        mcp_session(str(wy), fast(env), "y") as y,
        mcp_session(str(wz), fast(env), "z") as z,
    ):
        ids = {k: (await s.call("whoami"))["peer_id"] for k, s in (("x", x), ("y", y), ("z", z))}
        await until(lambda: len(view(broker, repo)["peers"]) == 3, timeout=15)
        result = await x.call("forecast")
        got = {frozenset((v["a"], v["b"])): (v["conflict"], v["paths"]) for v in result["verdicts"]}
        assert got == {
            frozenset((ids["x"], ids["y"])): (False, []),  # different lines: merges cleanly
            frozenset((ids["x"], ids["z"])): (True, ["src/app.py"]),  # z's uncommitted line two
            frozenset((ids["y"], ids["z"])): (False, []),
        }
        branches = {p["peer_id"]: p["branch"] for p in result["peers"]}
        assert branches == {ids["x"]: "x", ids["y"]: "y", ids["z"]: "z"}
        # The CLI shows the same verdicts as a matrix (shared through the broker).
        cli = lockd(wy, env, "forecast", "--json")
        assert cli.returncode == 0, cli.stderr
        data = json.loads(cli.stdout)
        row = next(r for r in data["matrix"] if r["peer_id"] == ids["x"])
        cells = {c["peer_id"]: c["verdict"] for c in row["cells"]}
        assert cells == {ids["x"]: "self", ids["y"]: "clean", ids["z"]: "conflict"}
        text = lockd(wy, env, "forecast", "--exit-code")
        assert text.returncode == 5 and "CONFLICT" in text.stdout and "src/app.py" in text.stdout
        await z.call("whoami")
    assert tree_hash(repo, wx, wy, wz) == before  # no index, file, ref or object changed


async def test_a_session_that_ends_takes_its_activity_with_it(
    repo: Path, worktrees: tuple[Path, Path], env: dict[str, str], broker: Broker
) -> None:
    wa, wb = worktrees
    (wa / "src/app.py").write_text("a\n")
    (wb / "src/app.py").write_text("b\n")
    async with mcp_session(str(wa), fast(env), "a") as a:
        async with mcp_session(str(wb), fast(env), "b") as b:
            me_b = await b.call("whoami")
            await until(lambda: overlaps(a), timeout=15)
            assert "src/app.py" in paths_of(broker, repo, me_b["peer_id"])
        ids = lambda: {p["peer_id"] for p in view(broker, repo)["peers"]}  # noqa: E731
        await until(lambda: me_b["peer_id"] not in ids(), timeout=15)
        seen = (await a.call("check_paths", paths=["src/app.py"]))["paths"][0]["activity"]
        assert seen == []


# ---- the edit guard's PostToolUse: one checkout, two sessions ----------------


def post_edit(env: dict[str, str], session_id: str, path: Path, cwd: Path) -> dict[str, Any]:
    body = {
        "session_id": session_id,
        "cwd": str(cwd),
        "hook_event_name": "PostToolUse",
        "tool_name": "Edit",
        "tool_input": {"file_path": str(path), "old_string": "a", "new_string": "b"},
        "tool_response": {"filePath": str(path), "success": True},
    }
    return run_hook(["guard", "--hook"], body, env)[1] or {}


async def test_edits_through_the_guard_in_one_checkout(
    repo: Path, env: dict[str, str], broker: Broker
) -> None:
    """Two sessions of one checkout share its git state, so only what each
    edited through its client counts; the overlap is told to both, once."""
    sa, sb = "0e1f2a3b-0000-4000-8000-00000000000a", "0e1f2a3b-0000-4000-8000-00000000000b"
    off = {"LOCKD_ACTIVITY_SECONDS": "0"}  # no git scans: the guard alone reports
    async with (
        mcp_session(str(repo), {**env, **off, "CLAUDE_CODE_SESSION_ID": sa}, "a") as a,
        mcp_session(str(repo), {**env, **off, "CLAUDE_CODE_SESSION_ID": sb}, "b") as b,
    ):
        me_a = await a.call("whoami")
        await b.call("whoami")
        assert post_edit(env, sa, repo / "src/app.py", repo) == {}
        assert post_edit(env, sb, repo / "src/util.py", repo) == {}  # another file: quiet
        out = post_edit(env, sb, repo / "src/app.py", repo)
        context = out["hookSpecificOutput"]["additionalContext"]
        assert f"src/app.py: {me_a['name']} edited this file since" in context
        await until(lambda: overlaps(a) and overlaps(b))
        post_edit(env, sa, repo / "src/app.py", repo)  # again: no second notice
        sentinel = await a.call("send_message", to=(await b.call("whoami"))["name"], message="s")
        await until(lambda: any(n.meta["message_id"] == sentinel["message_id"] for n in b.channel))
        assert len(overlaps(a)) == 1 and len(overlaps(b)) == 1
        assert "src/util.py" not in overlaps(a)[0]


# ---- the pre-commit hook and `lockd check` mention it -----------------------


async def test_the_pre_commit_hook_and_check_mention_others_changes(
    repo: Path, worktrees: tuple[Path, Path], env: dict[str, str], broker: Broker
) -> None:
    wa, wb = worktrees
    assert lockd(wa, env, "hooks", "install").returncode == 0
    # Its own agent process: the commit below is then a person's, not b's.
    async with mcp_session(str(wb), fast(env), "b", own_agent=True) as b:
        me_b = await b.call("whoami")
        (wb / "src/app.py").write_text("b's work\n")
        await until(lambda: "src/app.py" in paths_of(broker, repo, me_b["peer_id"]), timeout=15)
        check = lockd(wa, env, "check", "src/app.py", "src/util.py")
        assert check.returncode == 0, check.stderr
        want = f"src/app.py: {me_b['name']} has uncommitted changes to this file since"
        assert want in check.stdout and "src/util.py" not in check.stdout
        (wa / "src/app.py").write_text("a's work\n")
        git(wa, "add", "src/app.py")
        proc = subprocess.run(
            ["git", "commit", "-q", "-m", "a's change"],
            cwd=wa,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert proc.returncode == 0, proc.stderr  # a mention, never a refusal
        assert "other live sessions are changing these files too" in proc.stderr
        assert want.replace("src/app.py: ", "  src/app.py: ") in proc.stderr


def test_dashboard_panel_shows_overlaps_and_verdicts(broker: Broker) -> None:
    from tests.test_dashboard import signed_in

    http, _person = signed_in(broker)
    repo_id = "dir:/tmp/act-dash"
    a = broker.register(cwd="/tmp/act-dash/a", repo_id=repo_id, name="dash-a")
    b = broker.register(cwd="/tmp/act-dash/b", repo_id=repo_id, name="dash-b")
    a.call(Api.report_activity(edited=["src/x.py"]))
    b.call(Api.report_activity(scan={"uncommitted": ["src/x.py", "y.py"], "branch": "b"}))
    ids = [c.peer["peer_id"] for c in (a, b)]  # type: ignore[attr-defined]
    a.call(Api.put_forecast(repo_id, [{"a": ids[0], "b": ids[1], "conflict": True,
                                       "paths": ["src/x.py"]}]))  # fmt: skip
    data = http.get("/dashboard/api/forecast").json()
    repo = next(r for r in data["repos"] if r["repo"] == repo_id)
    assert repo["overlaps"] == [{"a": ids[0], "b": ids[1], "paths": ["src/x.py"], "count": 1}]
    assert [(v["conflict"], v["paths"]) for v in repo["verdicts"]] == [(True, ["src/x.py"])]
    assert {p["name"]: p["branch"] for p in repo["peers"]} == {"dash-a": "", "dash-b": "b"}
    script = http.get("/dashboard/forecast.js")
    assert script.status_code == 200 and "forecast-section" in script.text
    assert 'src="/dashboard/forecast.js"' in http.get("/dashboard").text


async def test_forecast_between_two_clones_reads_each_others_objects_writes_none(
    repo: Path, tmp_path: Path, env: dict[str, str], broker: Broker
) -> None:
    from tests.gitutil import bare_origin, clone

    origin = bare_origin(tmp_path / "origin.git", repo)
    ca, cb = clone(origin, tmp_path / "ca"), clone(origin, tmp_path / "cb")
    commit(ca, {"src/app.py": "one\nTWO in clone a\nthree\n"}, "a's commit, not pushed")
    (cb / "src/app.py").write_text("one\nTWO in clone b\nthree\n")
    before = tree_hash(ca, cb, origin)
    async with two_sessions(env, ca, cb) as (a, b, me_a, me_b):
        ida, idb = me_a["peer_id"], me_b["peer_id"]
        await until(lambda: len(view(broker, ca)["peers"]) == 2, timeout=15)
        kinds = {p["peer_id"]: {e["path"]: e["kind"] for e in p["paths"]}
                 for p in view(broker, ca)["peers"]}  # fmt: skip
        assert kinds == {ida: {"src/app.py": "unpushed"}, idb: {"src/app.py": "uncommitted"}}
        result = await b.call("forecast")
        assert [(v["conflict"], v["paths"]) for v in result["verdicts"]] == [(True, ["src/app.py"])]
    assert tree_hash(ca, cb, origin) == before
