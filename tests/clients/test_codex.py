"""lockd inside the real Codex CLI (issue 16).

Every test runs `codex exec` itself (tests/clients/package.json pins the
version) after `lockd setup codex`, with nothing hand-written but the user's
own model provider, against a real broker and a real git repo in block mode.
Only the model is a stand-in (`FakeResponses`): a `gpt-5-codex` model has no
apply_patch tool, so it edits as Codex's models do, with `apply_patch <<'EOF'`
through its shell tool, and the fake's record shows what reached the model.
The other peer is a person at a terminal (`lockd claim`, `lockd send`).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lockd.testing import Broker
from tests.clients.agentcli import (
    REASON,
    Codex,
    claimed_checkout,
    claims,
    peers,
    registered,
)
from tests.clients.cliproc import lockd
from tests.clients.fake_models import FakeResponses, Request, Step, say, shell
from tests.gitutil import git
from tests.polling import wait_for


def patch(path: str, old: str, new: str) -> str:
    return (
        "apply_patch <<'EOF'\n*** Begin Patch\n"
        f"*** Update File: {path}\n@@\n-{old}\n+{new}\n*** End Patch\nEOF\n"
    )


@pytest.fixture
def repo(tmp_path: Path, broker: Broker) -> Path:
    return claimed_checkout(tmp_path, broker)


def output_of(request: Request) -> str:
    """What is new in this request: the input items after the model's last
    call (its output, and what the hooks added), as one string."""
    items = [i for i in request.body.get("input") or [] if isinstance(i, dict)]
    last = max((n for n, i in enumerate(items) if i.get("type") == "function_call"), default=-1)
    return json.dumps(items[last + 1 :])


def test_claimed_edit_is_denied_unclaimed_passes_and_own_claims_commit(
    codex_bin: str, broker: Broker, tmp_path: Path, repo: Path
) -> None:
    a_py, b_py = repo / "src" / "a.py", repo / "src" / "b.py"
    seen: list[str] = []
    held: list[set[tuple[str, str]]] = []

    def commit(request: Request) -> Step:
        held.append({(c["pattern"], c["peer_name"]) for c in claims(broker)})
        return shell("git commit -qm 'bob: b.py' src/b.py && git log -1 --format=%s")

    def after_denial(request: Request) -> Step:
        seen.append(a_py.read_text())
        return shell(patch("src/b.py", "y = 1", "y = 2"))

    script = [
        registered(broker, shell(patch("src/a.py", "x = 1", "x = 2"))),
        after_denial,
        commit,
        shell("printf 'x = 3\\n' > src/a.py && git commit -qam 'bob: a.py'"),
        say("done"),
    ]
    with FakeResponses(script) as fake:
        user = Codex.set_up(codex_bin, broker, tmp_path, repo, fake)
        run = user.run(fake)
    assert run.returncode == 0, run
    assert not fake.errors, fake.errors
    turns = fake.turns
    assert len(turns) == 5, [output_of(t) for t in turns]

    denied = output_of(turns[1])
    assert "blocked by PreToolUse hook" in denied, denied
    assert "src/a.py is claimed by alice" in denied and REASON in denied, denied
    assert seen == ["x = 1\n"]  # the patch never ran

    passed = output_of(turns[2])
    assert "blocked" not in passed, passed
    assert b_py.read_text() == "y = 2\n"
    assert "claimed src/b.py for you" in passed, passed  # the guard, as it let the patch through
    assert ("/src/b.py", "bob") in held[0], (
        held
    )  # claimed for bob, while he works  # claimed for bob as the guard let it through

    committed = output_of(turns[3])
    assert "bob: b.py" in committed, committed  # bob's own claim: the commit is his
    assert git(repo, "log", "-1", "--format=%s").strip() == "bob: b.py"

    refused = output_of(turns[4])
    assert "src/a.py: claimed by alice" in refused and "pre-commit refused" in refused, refused
    assert git(repo, "log", "-1", "--format=%s").strip() == "bob: b.py"


def test_a_message_from_another_peer_reaches_the_next_request(
    codex_bin: str, broker: Broker, tmp_path: Path, repo: Path
) -> None:
    text = "alice: please leave src/a.py to me today"

    def send_then_work(request: Request) -> Step:
        # bob's lockd-mcp registered (Codex started it), then alice writes.
        wait_for(lambda: any(p["name"] == "bob" for p in peers(broker)), timeout=30)
        lockd(broker, repo, "send", "bob", text, name="alice")
        return shell("echo working")

    with FakeResponses([send_then_work, say("done")]) as fake:
        user = Codex.set_up(codex_bin, broker, tmp_path, repo, fake)
        run = user.run(fake)
    assert run.returncode == 0, run
    assert not fake.errors, fake.errors
    turns = fake.turns
    assert len(turns) == 2, run
    assert text in turns[1].text() and "unread message" in turns[1].text()
    assert text not in turns[0].text()


def test_in_warn_mode_the_model_is_told_and_the_patch_goes_ahead(
    codex_bin: str, broker: Broker, tmp_path: Path, repo: Path
) -> None:
    git(repo, "config", "lockd.hookMode", "warn")
    a_py = repo / "src" / "a.py"
    with FakeResponses([shell(patch("src/a.py", "x = 1", "x = 2")), say("done")]) as fake:
        user = Codex.set_up(codex_bin, broker, tmp_path, repo, fake)
        run = user.run(fake)
    assert run.returncode == 0, run
    turns = fake.turns
    assert len(turns) == 2, run
    told = output_of(turns[1])
    assert "blocked" not in told and a_py.read_text() == "x = 2\n", told
    assert "src/a.py is claimed by alice" in told and REASON in told, told
