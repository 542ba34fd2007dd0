"""lockd inside the real Claude Code CLI (issue 12).

Every test runs `claude` itself (tests/clients/package.json pins the version)
with this checkout's `lockd-mcp` as its MCP server, the README's hooks, a real
broker and a real git repo. Those marked `@every_setup` run three times: with
the README's config passed by flags, after `lockd setup claude-code`, and with
the plugin installed from this repository's marketplace. Only the model is a
stand-in (`FakeAnthropic`): its script makes the tool calls an agent would
(lockd's by a name pattern, as the request lists them), and its record of
every request shows exactly what reached the model.
"""

from __future__ import annotations

import json
import re
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lockd.client.api import Api
from lockd.testing import Broker
from tests.clients.claudecode import ClaudeCode, every_setup, lockd_tool
from tests.clients.cliproc import lockd
from tests.clients.fake_anthropic import FakeAnthropic, Request, Step, say, tool_use
from tests.gitutil import git, make_repo
from tests.polling import wait_for

Make = Callable[[str, Path], ClaudeCode]


def claims(broker: Broker) -> list[dict[str, Any]]:
    return broker.client().call(Api.locks())["locks"]


def result_of(request: Request, step: Step) -> dict[str, Any]:
    """The tool result the model received for `step`'s call."""
    results = request.tool_results()
    assert step.id in results, f"no result for {step.blocks[0]['name']} in the request"
    return results[step.id]


def structured(request: Request, step: Step) -> dict[str, Any]:
    result = result_of(request, step)
    assert not result["is_error"], result["text"]
    return json.loads(result["text"])


@every_setup
def test_a_claim_made_by_the_model_blocks_another_session_s_edit_and_commit(
    claude: Make, broker: Broker, tmp_path: Path
) -> None:
    repo = make_repo(tmp_path / "repo", {"src/a.py": "x = 1\n", "README.md": "hello\n"})
    lockd(broker, repo, "hooks", "install", "--mode", "block")
    a_py = repo / "src" / "a.py"
    reason = "alice rewrites a.py"

    # Alice claims the file, then waits (her model's next answer is held), so
    # her session is alive while Bob works; then she edits and commits.
    bob_done = threading.Event()
    announce = tool_use(lockd_tool("announce_intent"), patterns=["src/a.py"], reason=reason)
    a_edit = tool_use("Edit", file_path=str(a_py), old_string="x = 1", new_string="x = 10")
    a_commit = tool_use("Bash", command="git commit -qam 'alice: a.py' && git log -1 --format=%s")
    wait_for_bob = tool_use("Read", file_path=str(a_py)).held(bob_done)
    alice_script = [announce, wait_for_bob, a_edit, a_commit, say("done")]

    # Bob tries to edit it, then to commit it from the shell, then undoes.
    seen_after_edit: list[str] = []
    b_edit = tool_use("Edit", file_path=str(a_py), old_string="x = 1", new_string="x = 2")
    b_commit = tool_use(
        "Bash", command="printf 'x = 3\\n' > src/a.py && git commit -qam 'bob: a.py'"
    )

    def commit_after_looking(request: Request) -> Step:
        seen_after_edit.append(a_py.read_text())
        return b_commit

    undo = tool_use("Bash", command="git checkout -- src/a.py")
    bob_script = [b_edit, commit_after_looking, undo, say("done")]

    alice, bob = claude("alice", repo), claude("bob", repo)
    with FakeAnthropic(alice_script) as a_api, FakeAnthropic(bob_script) as b_api:
        a_proc = alice.start(a_api)
        waiting = a_api.wait_turns(2, proc=a_proc)[1]
        assert announce.name == alice.tool("announce_intent")  # as the request offered it
        granted = structured(waiting, announce)
        assert granted["granted"] is True, granted
        held = [(c["pattern"], c["peer_name"], c["reason"]) for c in claims(broker)]
        assert held == [("/src/a.py", "alice", reason)]

        b_run = bob.run(b_api)
        bob_done.set()
        a_run = alice.finish(a_proc)
    assert b_run.returncode == 0, b_run
    assert a_run.returncode == 0, a_run
    assert not a_api.errors and not b_api.errors, (a_api.errors, b_api.errors)

    b_turns = b_api.turns
    denied = result_of(b_turns[1], b_edit)
    assert denied["is_error"], denied
    assert "PreToolUse" in denied["text"] and "src/a.py is claimed by alice" in denied["text"]
    assert reason in denied["text"]
    assert seen_after_edit == ["x = 1\n"]  # the edit never happened

    refused = result_of(b_turns[2], b_commit)
    assert refused["is_error"], refused
    assert "src/a.py: claimed by alice" in refused["text"] and reason in refused["text"]
    assert "pre-commit refused" in refused["text"]

    a_turns = a_api.turns
    assert not result_of(a_turns[3], a_edit)["is_error"]
    committed = result_of(a_turns[4], a_commit)
    assert not committed["is_error"] and "alice: a.py" in committed["text"], committed
    assert git(repo, "log", "--format=%s").split("\n")[:2] == ["alice: a.py", "initial"]
    assert a_py.read_text() == "x = 10\n"


@every_setup
def test_a_message_reaches_the_model_once_through_the_inbox_hook(
    claude: Make, broker: Broker, tmp_path: Path
) -> None:
    repo = make_repo(tmp_path / "repo", {"src/a.py": "x = 1\n"})
    text = f"hello from the person at the terminal {uuid.uuid4().hex[:8]}"
    whoami = tool_use(lockd_tool("whoami"))
    write = tool_use("Write", file_path=str(repo / "notes.md"), content="notes\n")
    check = tool_use(lockd_tool("check_messages"))
    sent: list[float] = []

    def send_then_write(request: Request) -> Step:
        me = structured(request, whoami)["peer_id"]
        lockd(broker, repo, "send", me, text)
        sent.append(time.monotonic())
        return write

    carol = claude("carol", repo)
    with FakeAnthropic([whoami, send_then_write, check, say("done")]) as api:
        run = carol.run(api)
    assert run.returncode == 0, run
    assert not api.errors, api.errors
    assert (whoami.name, check.name) == (carol.tool("whoami"), carol.tool("check_messages"))
    turns = api.turns
    assert len(turns) == 4, [t.last_text()[:200] for t in turns]
    assert text not in turns[1].text()
    # The Write's PostToolUse hook (`lockd inbox --hook`) put it in context.
    delivered = turns[2].last_text()
    assert text in delivered, delivered
    assert "lockd: 1 unread message(s)" in delivered
    # Marked read: check_messages has nothing new, and no later request shows it again.
    assert structured(turns[3], check)["messages"] == []
    assert text not in turns[3].last_text()
    assert turns[3].text().count(text) == 1


def test_a_session_that_ends_releases_its_claims(
    claude: Make, broker: Broker, tmp_path: Path
) -> None:
    repo = make_repo(tmp_path / "repo", {"docs/guide.md": "# guide\n"})
    announce = tool_use(lockd_tool("announce_intent"), patterns=["docs/"], reason="rewrite docs")
    during: list[list[str]] = []

    def look(request: Request) -> Step:
        intents = structured(request, announce)["intents"]
        during.append([(c["intent_id"], c["pattern"]) for c in claims(broker)])
        return say(f"claimed {intents[0]['intent_id']}, and done")

    with FakeAnthropic([announce, look]) as api:
        run = claude("dave", repo).run(api)
        ended = time.monotonic()
    assert run.returncode == 0, run
    assert not api.errors, api.errors
    [[(intent, pattern)]] = during
    assert pattern == "docs/"
    wait_for(lambda: claims(broker) == [], timeout=10)
    took = time.monotonic() - ended
    assert took < 5, f"claims released {took:.1f} s after the session ended"
    events = broker.client().call(Api.events())["events"]
    assert [e["event"] for e in events if e.get("intent_id") == intent] == ["peer_gone", "granted"]


# The channel gates Claude Code 2.1.332 evaluates, in its order, and the reason
# each logs when it skips. lockd owns the capability, the era and being named
# in the session's flag; the rest are the provider's, the account's, the org's.
LOCKD_GATES = (
    "did not declare claude/channel capability",  # capability
    "negotiated a modern protocol revision",  # era
    "not in --channels list for this session",  # the flag names the server
    "approved channels allowlist",
)
CONNECTED = re.compile(r'MCP server "lockd": Connection established with capabilities: (\{.*\})')
GATE = re.compile(r'MCP server "lockd": Channel notifications (registered|skipped: (.*))')


def test_interactive_claude_code_opens_lockd_s_channel_gates(
    claude: Make, broker: Broker, tmp_path: Path
) -> None:
    """Channels are only evaluated in an interactive session, so this one runs
    the TUI under tmux with `--debug` and reads its log. Here the feature-flag
    gate stays closed ("channels feature is not currently available": the
    flag service is unreachable); every gate before it is lockd's to open."""
    repo = make_repo(tmp_path / "repo")
    user = claude("erin", repo)
    flags = ("--debug", "--dangerously-load-development-channels", "server:lockd")
    with FakeAnthropic([]) as api, user.interactive(api, *flags) as tmux:
        try:
            wait_for(lambda: GATE.search(user.debug_log()), timeout=45, step=0.2)
        except AssertionError:
            raise AssertionError(
                f"no channel gate for lockd in the debug log; screen:\n{tmux.screen()}\n"
                f"log (lockd lines):\n{_lockd_lines(user.debug_log())}"
            ) from None
        # No first-run dialog is left in the way: a prompt typed now reaches the model.
        tmux.keys("-l", "hello")
        tmux.keys("Enter")
        try:
            api.wait_turns(1, timeout=20)
        except AssertionError as exc:
            raise AssertionError(f"{exc}; screen:\n{tmux.screen()}") from None
    log = user.debug_log()
    connected = CONNECTED.search(log)
    assert connected, _lockd_lines(log)
    capabilities = json.loads(connected.group(1))
    assert capabilities["protocolEra"] == "legacy", connected.group(0)
    gate = GATE.search(log)
    assert gate is not None
    reason = gate.group(2) or ""
    # Gates run in order (capability, era, provider, feature flag, policy,
    # session flag): a skip at a later one means the capability was declared
    # and the era is legacy.
    assert not any(ours in reason for ours in LOCKD_GATES), gate.group(0)


def _lockd_lines(log: str) -> str:
    return "\n".join(line[:400] for line in log.splitlines() if '"lockd"' in line)


def test_a_resumed_session_is_the_same_peer_and_gets_its_messages(
    claude: Make, broker: Broker, tmp_path: Path
) -> None:
    repo = make_repo(tmp_path / "repo")
    user = claude("frank", repo)
    session = str(uuid.uuid4())
    first = tool_use(lockd_tool("whoami"))
    with FakeAnthropic([first, say("done")]) as api:
        run = user.run(api, extra=("--session-id", session))
    assert run.returncode == 0, run
    assert run.json["session_id"] == session
    peer = structured(api.turns[1], first)["peer_id"]

    text = f"while you were away {uuid.uuid4().hex[:8]}"
    lockd(broker, repo, "send", peer, text)

    again = tool_use(lockd_tool("whoami"))
    write = tool_use("Write", file_path=str(repo / "notes.md"), content="notes\n")
    with FakeAnthropic([again, write, say("done")]) as api:
        run = user.run(api, prompt="Go on.", extra=("--resume", session))
    assert run.returncode == 0, run
    assert run.json["session_id"] == session
    turns = api.turns
    assert structured(turns[1], again)["peer_id"] == peer, "the resumed session is a new peer"
    # Delivered by the resumed prompt's UserPromptSubmit hook, or at the latest
    # by the Write's PostToolUse hook (`lockd inbox --hook` both), once.
    assert turns[-1].text().count(text) == 1, turns[-1].text()[-3000:]
