"""lockd inside the real Gemini CLI (issue 16).

Every test runs `gemini -p … --yolo` itself (tests/clients/package.json pins
the version) after `lockd setup gemini`, with nothing hand-written but the
user's own auth setting, against a real broker and a real git repo in block
mode. Only the model is a stand-in (`FakeGemini`): it edits with `replace` and
`write_file` and commits with `run_shell_command`, as Gemini's models do, and
the fake's record shows what reached the model. The other peer is a person
at a terminal (`lockd claim`, `lockd send`).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lockd.testing import Broker
from tests.clients.agentcli import (
    REASON,
    Gemini,
    claimed_checkout,
    claims,
    peers,
    registered,
)
from tests.clients.cliproc import lockd
from tests.clients.fake_models import FakeGemini, Request, Step, call, say, shell
from tests.gitutil import git
from tests.polling import wait_for


@pytest.fixture
def repo(tmp_path: Path, broker: Broker) -> Path:
    return claimed_checkout(tmp_path, broker)


def response_of(request: Request) -> str:
    """What is new in this request: the parts after the model's last turn
    (the tool's response, and what the hooks added), as one string."""
    contents = [c for c in request.body.get("contents") or [] if isinstance(c, dict)]
    last = max((n for n, c in enumerate(contents) if c.get("role") == "model"), default=-1)
    return json.dumps(contents[last + 1 :])


def test_claimed_edit_is_denied_unclaimed_passes_and_own_claims_commit(
    gemini_bin: str, broker: Broker, tmp_path: Path, repo: Path
) -> None:
    a_py, b_py = repo / "src" / "a.py", repo / "src" / "b.py"
    seen: list[str] = []
    held: list[set[tuple[str, str]]] = []

    def commit(request: Request) -> Step:
        held.append({(c["pattern"], c["peer_name"]) for c in claims(broker)})
        return shell("git commit -qm 'bob: b.py' src/b.py && git log -1 --format=%s")

    def after_denial(request: Request) -> Step:
        seen.append(a_py.read_text())
        return call("write_file", file_path=str(b_py), content="y = 2\n")

    script = [
        registered(
            broker,
            call(
                "replace",
                file_path=str(a_py),
                old_string="x = 1",
                new_string="x = 2",
                instruction="set x to 2",
            ),
        ),  # fmt: skip
        after_denial,
        commit,
        shell("printf 'x = 3\\n' > src/a.py"),  # not an edit tool: a commit checks it
        shell("git commit -qam 'bob: a.py'"),
        say("done"),
    ]
    with FakeGemini(script) as fake:
        user = Gemini.set_up(gemini_bin, broker, tmp_path, repo, fake)
        run = user.run(fake)
    assert run.returncode == 0, run
    assert not fake.errors, fake.errors
    turns = fake.turns
    assert len(turns) == 6, ([response_of(t) for t in turns], str(run))

    denied = response_of(turns[1])
    assert "blocked" in denied, denied
    assert "src/a.py is claimed by alice" in denied and REASON in denied, denied
    assert seen == ["x = 1\n"]  # the edit never happened

    passed = response_of(turns[2])
    assert "blocked" not in passed, passed
    assert b_py.read_text() == "y = 2\n"
    assert "claimed src/b.py for you" in passed, passed  # AfterTool, as bob
    assert ("/src/b.py", "bob") in held[0], held  # claimed for bob, while he works

    committed = response_of(turns[3])
    assert "bob: b.py" in committed, committed  # bob's own claim: the commit is his
    assert git(repo, "log", "-1", "--format=%s").strip() == "bob: b.py"

    # Gemini CLI's shell runs git with hooks off: BeforeTool checks the commit.
    refused = response_of(turns[5])
    assert "blocked" in refused and "this commit touches" in refused, refused
    assert "src/a.py is claimed by alice" in refused and REASON in refused, refused
    assert git(repo, "log", "-1", "--format=%s").strip() == "bob: b.py"


def test_a_message_from_another_peer_reaches_the_next_request(
    gemini_bin: str, broker: Broker, tmp_path: Path, repo: Path
) -> None:
    text = "alice: please leave src/a.py to me today"
    b_py = repo / "src" / "b.py"

    def send_then_work(request: Request) -> Step:
        wait_for(lambda: any(p["name"] == "bob" for p in peers(broker)), timeout=30)
        lockd(broker, repo, "send", "bob", text, name="alice")
        return call("write_file", file_path=str(b_py), content="y = 2\n")

    with FakeGemini([send_then_work, say("done")]) as fake:
        user = Gemini.set_up(gemini_bin, broker, tmp_path, repo, fake)
        run = user.run(fake)
    assert run.returncode == 0, run
    assert not fake.errors, fake.errors
    turns = fake.turns
    assert len(turns) == 2, run
    assert text in response_of(turns[1]) and "unread message" in response_of(turns[1])
    assert text not in json.dumps(turns[0].body)
