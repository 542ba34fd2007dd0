"""`lockd …` as a person at a terminal runs it: the CLI's `main(argv)`, in this
process, inside a real git checkout, against a real broker process; the real
console script and `python -m lockd` where the process is the point (exit
status, `--version`). Exit codes are part of the contract (see lockd.cli): 0 ok,
2 bad input, 3 not allowed, 4 not found, 5 conflict, 6 broker unreachable."""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
import pytest

from lockd.cli.main import build_parser, main
from lockd.client.api import Api
from lockd.client.sync import Client
from lockd.local.repo import identify
from lockd.testing import LOCKD_ENV, Broker, free_port
from tests.gitutil import add_worktree, bare_origin, clone, make_repo

EIGHT_HOURS = 8 * 3600
REPO_FILES = {
    "src/api/app.py": "a\n",
    "src/api/db.py": "b\n",
    "src/cli.py": "c\n",
    "docs/guide.md": "d\n",
    "README.md": "r\n",
}
SCRIPT = Path(sys.executable).parent / "lockd"  # the console script


@dataclass
class Ran:
    """What one `lockd …` left: its exit code and what it printed."""

    args: list[str]
    returncode: int
    stdout: str
    stderr: str

    def check(self, code: int | None) -> Ran:
        """Fail unless it exited `code` (None: any code)."""
        if code is not None:
            assert self.returncode == code, (
                f"lockd {' '.join(self.args)} exited {self.returncode}, wanted {code}\n"
                f"stdout: {self.stdout}\nstderr: {self.stderr}"
            )
        return self


Lockd = Callable[..., Ran]


@pytest.fixture
def lockd(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Lockd:
    """`lockd(env, cwd, *args, code=0)`: `lockd ARGS` run as `main(argv)` in this
    process, in `cwd`, with `env`'s settings (no other LOCKD_*); what it printed
    captured; the exit code checked unless `code` is None. The process's umask
    (which `lockd serve` sets) is put back after."""

    def run(env: dict[str, str], cwd: Path | str, *args: str, code: int | None = 0) -> Ran:
        capsys.readouterr()  # what was printed before is not this run's
        umask = os.umask(0o077)
        os.umask(umask)
        with monkeypatch.context() as m:
            for key in LOCKD_ENV:
                m.delenv(key, raising=False)
            for key, value in env.items():
                m.setenv(key, value)
            m.chdir(cwd)
            try:
                returncode = main(list(args))
            except SystemExit as exc:  # argparse: --help, a bad argument
                returncode = exc.code if isinstance(exc.code, int) else int(exc.code is not None)
            finally:
                os.umask(umask)
        out, err = capsys.readouterr()
        return Ran(list(args), returncode, out, err).check(code)

    return run


def console(env: dict[str, str], cwd: Path | str, *args: str, code: int | None = 0) -> Ran:
    """The installed console script in a process of its own: its exit status."""
    proc = subprocess.run(
        [str(SCRIPT), *args], cwd=cwd, env=env, text=True, capture_output=True, timeout=30
    )
    return Ran(list(args), proc.returncode, proc.stdout, proc.stderr).check(code)


def as_json(ran: Ran) -> Any:
    return json.loads(ran.stdout)


@pytest.fixture
def env(env: dict[str, str]) -> dict[str, str]:
    """The broker's environment (conftest), as the person "pat"."""
    return {**env, "LOCKD_NAME": "pat"}


def agent(broker: Broker, repo: Path, name: str, **extra: Any) -> Client:
    """Another peer working in the same repo (as an MCP session would be)."""
    info = identify(str(repo))
    return broker.register(
        name=name, cwd=info.root, repo_id=info.repo_id, repo_root=info.root, **extra
    )


# ---- help -----------------------------------------------------------------------
def test_help_on_every_subcommand(tmp_path: Path, lockd_home: Path, lockd: Lockd) -> None:
    """`--help` needs no broker and no checkout, and works for every command."""
    env = dict(os.environ)
    top = lockd(env, tmp_path, "--help")
    assert "usage: lockd" in top.stdout
    sub = next(a for a in build_parser()._actions if a.dest == "command")
    names = sorted(sub.choices)  # type: ignore[arg-type]
    assert {
        "serve",
        "status",
        "stop",
        "peers",
        "send",
        "claim",
        "release",
        "locks",
        "check",
    } <= set(names)
    for name in names:
        assert f"usage: lockd {name}" in lockd(env, tmp_path, name, "--help").stdout, name
        assert name in top.stdout
    assert "--reason" in lockd(env, tmp_path, "claim", "--help").stdout
    # `python -m lockd` and the console script, each a process of its own.
    version = subprocess.run(
        [sys.executable, "-m", "lockd", "--version"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert version.returncode == 0 and version.stdout.startswith("lockd "), version.stderr
    assert SCRIPT.exists(), "console script `lockd` is installed"
    assert "usage: lockd" in console(env, tmp_path, "--help").stdout
    assert not (lockd_home / "lockd.db").exists()  # help started no broker


def _undocumented(parser: argparse.ArgumentParser, name: str = "lockd") -> list[str]:
    """Every command without a help line and every argument without help text, below `parser`."""
    missing = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {c.dest: c.help for c in action._choices_actions}
            for sub_name, sub in action.choices.items():
                missing += [] if helps.get(sub_name) else [f"{name} {sub_name}"]
                missing += _undocumented(sub, f"{name} {sub_name}")
        elif not action.help:
            missing.append(f"{name} {'/'.join(action.option_strings) or action.dest}")
    return missing


def test_every_argument_has_help() -> None:
    """`--help` explains every argument, positional ones (PATTERN, PATH, TO) included."""
    assert _undocumented(build_parser()) == []


def test_help_says_where_a_pattern_starts() -> None:
    """`cd src && lockd claim api` claims /src/api/: claim's and release's --help say so,
    as check's and locks' say it of paths."""
    sub = next(a for a in build_parser()._actions if a.dest == "command")
    for name in ("claim", "release"):
        text = " ".join(sub.choices[name].format_help().split())  # type: ignore[index]
        assert "current directory" in text and "repo root" in text, name


def test_readme_lists_every_command() -> None:
    """The README's CLI section names every command (but the git hooks' own hook-run)."""
    readme = (Path(__file__).parent.parent / "README.md").read_text()
    readme = readme.split("\n## The CLI\n", 1)[1].split("\n## ", 1)[0]
    sub = next(a for a in build_parser()._actions if a.dest == "command")
    for name in sorted(sub.choices):  # type: ignore[arg-type]
        if name != "hook-run":  # run by the installed git hooks, never by hand
            assert f"lockd {name}" in readme, name


# ---- claim, locks, check --------------------------------------------------------------
def test_claim_shows_in_locks_with_the_person_ttl(
    broker: Broker, repo: Path, env: dict, lockd: Lockd
) -> None:
    """A person's claim carries the 8 h default TTL unless told, and `locks` shows it from any
    directory of the checkout."""
    out = lockd(env, repo, "claim", "src/api", "--reason", "auth refactor").stdout
    assert "/src/api/" in out and "exclusive" in out and "expires in 8h" in out
    data = as_json(lockd(env, repo, "claim", "docs/", "--reason", "typos", "--shared",
                         "--ttl", "30m", "--json"))  # fmt: skip
    assert data["granted"] and data["intents"][0]["mode"] == "shared"
    assert data["intents"][0]["expires_at"] == pytest.approx(time.time() + 1800, abs=30)

    found = {lk["pattern"]: lk for lk in as_json(lockd(env, repo, "locks", "--json"))["locks"]}
    assert set(found) == {"/src/api/", "docs/"}
    api = found["/src/api/"]
    assert (api["peer_name"], api["mode"], api["reason"]) == ("pat", "exclusive", "auth refactor")
    assert api["expires_at"] == pytest.approx(time.time() + EIGHT_HOURS, abs=30)
    assert api["repo"] == identify(str(repo)).repo_id

    table = lockd(env, repo, "locks").stdout
    assert "/src/api/" in table and "pat" in table and "auth refactor" in table
    header, *rows = table.splitlines()
    assert "LEFT" in header.split()  # when each claim ends, as the dashboard's TTL says
    left = {row.split()[1]: row.split()[-2] for row in rows}  # reasons here are one word
    assert left.get("docs/") == "30m", table
    on_file = as_json(lockd(env, repo / "src" / "api", "locks", "--path", "db.py", "--json"))
    assert [lk["pattern"] for lk in on_file["locks"]] == ["/src/api/"]
    everywhere = as_json(lockd(env, "/", "locks", "--all-repos", "--json"))["locks"]
    assert len(everywhere) == 2
    assert len(as_json(lockd(env, "/", "locks", "--json"))["locks"]) == 0  # not this repo


def test_check_names_the_holder(broker: Broker, repo: Path, env: dict, lockd: Lockd) -> None:
    """`check` says who holds a file and why; `--exit-code` lets scripts stop on it."""
    bob = agent(broker, repo, "bob")
    bob.call(Api.announce(identify(str(repo)).repo_id, ["/src/api/"], "fixing login"))
    out = lockd(env, repo, "check", "src/api/app.py", "README.md").stdout
    # the git hook's words for the same claim (lockd.core.render)
    assert "src/api/app.py: claimed by bob with /src/api/ [exclusive" in out, out
    assert "fixing login" in out
    assert "README.md" not in out
    assert lockd(env, repo / "src", "check", "api/db.py").stdout.startswith("src/api/db.py:")
    lockd(env, repo, "check", "src/api/app.py", "--exit-code", code=5)
    free = lockd(env, repo, "check", "README.md", "src/cli.py", "--exit-code")
    assert "no claims" in free.stdout
    data = as_json(lockd(env, repo, "check", "src/api/app.py", "README.md", "--json"))
    claims = {p["path"]: [c["peer_name"] for c in p["claims"]] for p in data["paths"]}
    assert claims == {"src/api/app.py": ["bob"], "README.md": []}
    bad = lockd(env, repo, "check", "/etc/passwd", code=2)
    assert "outside the checkout" in bad.stderr


def test_conflict_exits_5_and_names_the_holder(
    broker: Broker, repo: Path, env: dict, lockd: Lockd
) -> None:
    """A refused claim exits 5, names holder, reason and shared files, and tells the holder."""
    bob = agent(broker, repo, "bob", summary="login flow")
    bob.call(Api.announce(identify(str(repo)).repo_id, ["src/api/app.py"], "fixing login"))
    out = lockd(env, repo, "claim", "src", "--reason", "rewrite", code=5).stdout
    assert "refused" in out and "bob" in out and "fixing login" in out
    assert "/src/api/app.py" in out and "both claim src/api/app.py" in out
    data = as_json(lockd(env, repo, "claim", "src/api/", "--reason", "again", "--json", code=5))
    (c,) = data["conflicts"]
    assert (c["peer_name"], c["summary"], c["paths"]) == ("bob", "login flow", ["src/api/app.py"])
    told = [m for m in bob.call(Api.inbox())["messages"] if m["from_id"] == "lockd"]
    assert told and "pat" in told[0]["text"] and "rewrite" in told[0]["text"]
    assert len(as_json(lockd(env, repo, "locks", "--json"))["locks"]) == 1  # only bob's
    # A shared claim beside a shared claim is fine; beside an exclusive one it is not.
    lockd(env, repo, "claim", "docs", "--reason", "read", "--shared")
    lockd(env, repo, "claim", "src/api/app.py", "--reason", "read", "--shared", code=5)


def test_release_by_id_by_pattern_all_and_force(
    broker: Broker, repo: Path, env: dict, lockd: Lockd
) -> None:
    """Release by id, by the words used to claim, all; another's only with --force, and they are
    told."""
    claim = ["claim", "src/api", "docs", "README.md", "src/cli.py", "src/api/db.py", "-r", "r"]
    mine = as_json(lockd(env, repo, *claim, "--json"))["intents"]
    ids = {i["pattern"]: i["intent_id"] for i in mine}
    out = lockd(env, repo, "release", ids["README.md"]).stdout
    assert out.strip() == f"released {ids['README.md']}"
    # The words that claimed a directory release it; an absolute path inside
    # the checkout means the same as the repo-relative one.
    assert lockd(env, repo, "release", "src/api", "docs").stdout.split()[1:] == [
        f"{ids['/src/api/']},",
        ids["/docs/"],
    ]
    by_abs = lockd(env, repo / "docs", "release", str(repo / "src/cli.py")).stdout
    assert by_abs.strip() == f"released {ids['/src/cli.py']}"
    nothing = lockd(env, repo, "release", "nothing/here.py", code=4)
    assert "nothing/here.py" in nothing.stderr
    assert ids["/src/api/db.py"] in lockd(env, repo, "release").stdout  # all of mine here
    assert lockd(env, repo, "release").stdout.strip() == "nothing to release"
    gone = lockd(env, repo, "release", "i99999", code=4)
    assert "i99999" in gone.stderr and "see `lockd locks` for current ids" in gone.stderr
    assert "list_locks" not in nothing.stderr and "`lockd locks`" in nothing.stderr

    bob = agent(broker, repo, "bob")
    theirs = bob.call(Api.announce(identify(str(repo)).repo_id, ["/src/"], "bob's"))
    iid = theirs["intents"][0]["intent_id"]
    refused = lockd(env, repo, "release", iid, code=3)
    assert "bob" in refused.stderr and "force" in refused.stderr
    assert "`lockd send`" in refused.stderr and "`lockd release --force ID`" in refused.stderr
    assert len(as_json(lockd(env, repo, "locks", "--json"))["locks"]) == 1
    lockd(env, repo, "release", "--force", "src/", code=2)
    assert iid in lockd(env, repo, "release", "--force", iid).stdout
    assert as_json(lockd(env, repo, "locks", "--json"))["locks"] == []
    told = [m for m in bob.call(Api.inbox())["messages"] if m["meta"].get("event")]
    assert [m["meta"]["event"] for m in told] == ["force_released"]
    assert "pat" in told[0]["text"] and iid in told[0]["text"]


def test_bad_input_exits_2_with_a_message(
    broker: Broker, repo: Path, env: dict, lockd: Lockd
) -> None:
    """Bad input exits 2 with a `lockd:` line (JSON with --json) and writes nothing."""
    neg = lockd(env, repo, "claim", "!src/x.py", "--reason", "r", code=2)
    assert "negation" in neg.stderr and "'!src/x.py'" in neg.stderr
    assert neg.stderr.startswith("lockd: ")
    js = lockd(env, repo, "claim", "!x", "--reason", "r", "--json", code=2)
    assert json.loads(js.stderr)["error"] == "invalid"
    assert "duration" in lockd(env, repo, "claim", "x", "-r", "r", "--ttl", "soon", code=2).stderr
    assert "leaves the repository" in lockd(env, repo, "claim", "../x", "-r", "r", code=2).stderr
    assert "reason is empty" in lockd(env, repo, "claim", "x", "-r", " ", code=2).stderr
    assert "--reason" in lockd(env, repo, "claim", "x", code=2).stderr  # argparse
    assert "invalid choice" in lockd(env, repo, "peers", "--scope", "galaxy", code=2).stderr
    assert as_json(lockd(env, repo, "locks", "--json"))["locks"] == []


def test_repo_scope_across_worktree_and_clone(
    broker: Broker, tmp_path: Path, env: dict, lockd: Lockd
) -> None:
    """A claim from one clone is seen from its worktree and a second clone, not from another
    repo."""
    seed = make_repo(tmp_path / "seed", {"src/app.py": "x\n"})
    origin = bare_origin(tmp_path / "origin.git", seed)
    one = clone(origin, tmp_path / "one")
    tree = add_worktree(one, tmp_path / "one-wt", "feature")
    two = clone(origin, tmp_path / "two")
    other = make_repo(tmp_path / "other", {"src/app.py": "x\n"})
    lockd(env, one, "claim", "src/app.py", "--reason", "from one")
    for place in (tree, two, two / "src"):
        (lk,) = as_json(lockd(env, place, "locks", "--json"))["locks"]
        assert lk["pattern"] == "/src/app.py" and lk["reason"] == "from one"
    assert as_json(lockd(env, other, "locks", "--json"))["locks"] == []
    lockd(env, other, "check", "src/app.py", "--exit-code")
    lockd(env, tree, "check", "src/app.py", "--exit-code", code=5)


def test_ttl_in_the_units_people_type(broker: Broker, repo: Path, env: dict, lockd: Lockd) -> None:
    """`--ttl` takes compound durations, wants a unit, and answers in the units typed."""
    data = as_json(lockd(env, repo, "claim", "docs", "-r", "r", "--ttl", "1h30m", "--json"))
    assert data["intents"][0]["expires_at"] == pytest.approx(time.time() + 5400, abs=30)
    days = lockd(env, repo, "claim", "src", "-r", "r", "--ttl", "99999d", code=2).stderr
    assert "--ttl 99999d is longer than the limit: at most 30d" in days
    assert "ttl_seconds" not in days and "8639913600" not in days
    hours = lockd(env, repo, "claim", "src", "-r", "r", "--ttl", "1000h", code=2).stderr
    assert "at most 720h" in hours
    bare = lockd(env, repo, "claim", "src", "-r", "r", "--ttl", "5", code=2).stderr
    assert "no unit: write 5s, 5m, 5h or 5d" in bare
    empty = lockd(env, repo, "claim", "src", "-r", "r", "--ttl", "", code=2).stderr
    assert "--ttl '' is not a duration" in empty  # not the default 8h, silently
    again = lockd(env, repo, "claim", "docs", "-r", "r", "--ttl", "1h30m").stdout
    assert "expires in 1h30m" in again  # said back as typed, not rounded to 2h
    assert [lk["pattern"] for lk in as_json(lockd(env, repo, "locks", "--json"))["locks"]] == [
        "/docs/"
    ]


def test_a_person_is_told_in_cli_words(broker: Broker, repo: Path, env: dict, lockd: Lockd) -> None:
    """What lockd tells a person (refusals of their claims, files free again) names the CLI's
    commands; an agent is told the same with MCP tool names."""
    lockd(env, repo, "claim", "src/api", "-r", "auth")
    me, started = os.getpid(), psutil.Process().create_time()  # bob lives as long as this test
    bob = agent(broker, repo, "bob", kind="agent", pid=me, pid_start=started, agent_pid=me,
                agent_start=started)  # fmt: skip
    repo_id = identify(str(repo)).repo_id
    refused = bob.call(Api.announce(repo_id, ["src/"], "lint", notify_when_free=True))
    assert not refused["granted"]
    inbox = lockd(env, repo, "inbox").stdout
    assert "bob (" in inbox and "Reply with `lockd send bob MESSAGE` or `lockd release`" in inbox
    assert "send_message" not in inbox and "release_intent" not in inbox
    lockd(env, repo, "release")
    (free,) = [m for m in bob.call(Api.inbox())["messages"] if m["meta"].get("event") == "free"]
    assert "announce_intent again to take it" in free["text"]  # bob is an agent

    bob.call(Api.announce(repo_id, ["docs/"], "bob's"))
    lockd(env, repo, "claim", "docs/guide.md", "-r", "typo", "--notify-when-free", code=5)
    told = [m for m in bob.call(Api.inbox())["messages"] if m["meta"].get("event")]
    assert "send_message(to='pat') or release_intent" in told[-1]["text"]
    bob.call(Api.release())
    assert "`lockd claim` again to take it" in lockd(env, repo, "inbox").stdout


# ---- peers, messages, status, stop ----------------------------------------------------
def test_peers_send_status_and_stop(
    broker: Broker, repo: Path, env: dict, tmp_path: Path, lockd: Lockd
) -> None:
    """The broker-facing commands a person uses, down to stopping it; then the CLI says it is
    unreachable (exit 6)."""
    bob = agent(broker, repo, "bob")
    broker.register(name="far", cwd="/elsewhere", repo_id="dir:/elsewhere")
    everyone = {
        p["name"]
        for p in as_json(lockd(env, repo, "peers", "--scope", "machine", "--json"))["peers"]
    }
    assert {"bob", "far"} <= everyone
    here = {p["name"] for p in as_json(lockd(env, repo, "peers", "--json"))["peers"]}
    assert "bob" in here and "far" not in here  # repo by default, as README and list_peers
    assert "bob" in lockd(env, repo, "peers").stdout

    sent = lockd(env, repo, "send", "bob", "please pull main").stdout
    assert sent.startswith("sent m") and sent.endswith(" to bob\n")
    (msg,) = bob.call(Api.inbox())["messages"]
    assert (msg["from_name"], msg["text"]) == ("pat", "please pull main")
    nobody = lockd(env, repo, "send", "nobody", "hi", code=4).stderr
    assert nobody == "lockd: no peer with id or name 'nobody': see `lockd peers` for who is there\n"
    me = as_json(lockd(env, repo, "whoami", "--json"))
    assert me["name"] == "pat" and "credential" not in me

    status = as_json(lockd(env, repo, "status", "--json"))
    assert status["pid"] == broker.proc.pid  # type: ignore[union-attr]
    assert status["url"] == broker.url and status["home"] == str(broker.home)
    assert status["peers"] >= 3 and status["intents"] == 0
    assert f"at {broker.url}" in lockd(env, repo, "status").stdout

    assert as_json(lockd(env, repo, "stop", "--json")) == {"stopped": True}
    assert broker.proc is not None and broker.proc.wait(10) == 0
    down = console(env, repo, "status", code=6)  # the exit status of a real process
    assert "no lockd broker running" in down.stderr and "lockd serve" in down.stderr


@pytest.mark.parametrize(
    "command",
    [["locks"], ["peers"], ["inbox"], ["check", "README.md"], ["dashboard", "--no-open"],
     ["whoami"], ["release"]],
)  # fmt: skip
def test_read_only_commands_start_no_broker(
    lockd_home: Path, repo: Path, lockd: Lockd, command: list[str]
) -> None:
    """Only `claim`, `send` and lockd-mcp start a broker (README); the others say none runs,
    how to start one, and exit 6 (broker unreachable)."""
    env = {"LOCKD_HOME": str(lockd_home), "LOCKD_PORT": str(free_port())}
    down = lockd(env, repo, *command, code=6)
    assert "no lockd broker running at" in down.stderr, down.stderr
    assert "start one with `lockd serve`" in down.stderr
    assert not (lockd_home / "lockd.db").exists() and not (lockd_home / "broker.json").exists()
    assert not Client(url=f"http://127.0.0.1:{env['LOCKD_PORT']}").alive()


def test_a_taken_port_is_named_with_its_holder(lockd_home: Path, repo: Path, lockd: Lockd) -> None:
    """With another program on the port, commands say which program holds it instead of
    "broker exited at start (code 5)"; the starting ones exit 5 (port taken), as serve does."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = {"LOCKD_HOME": str(lockd_home), "LOCKD_PORT": str(port)}
        holder = f"(pid {os.getpid()})"  # this test's process holds it
        claim = lockd(env, repo, "claim", "src", "-r", "r", code=5).stderr
        assert f"port {port} on 127.0.0.1 is taken by " in claim and holder in claim, claim
        assert "code 5" not in claim and "--port or LOCKD_PORT" in claim
        locks = lockd(env, repo, "locks", code=6).stderr
        assert f"port {port} is taken by " in locks and holder in locks, locks
        assert "LOCKD_PORT" in locks
        served = lockd(env, repo, "serve", code=5).stderr
        assert holder in served


# ---- serve -----------------------------------------------------------------------
def test_serve_on_a_taken_port_fails_clearly(
    lockd_home: Path, tmp_path: Path, lockd: Lockd
) -> None:
    """Another program on the port: exit 5 and a message that says what to do."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = lockd(dict(os.environ), tmp_path, "serve", "--port", str(port), code=5)
    assert f"port {port}" in proc.stderr and "taken" in proc.stderr
    assert "--port" in proc.stderr  # says what to do


def test_second_broker_for_the_same_home_refuses(
    broker: Broker, tmp_path: Path, lockd: Lockd
) -> None:
    """One broker per LOCKD_HOME, even on a different port."""
    proc = lockd(broker.env, tmp_path, "serve", "--port", str(free_port()), code=5)
    assert "already serves" in proc.stderr and str(broker.home) in proc.stderr
    assert broker.client().alive()  # the first one is untouched


# ---- issue 17: the current directory, refusals, sends to nobody --------------------
def test_claim_and_check_read_paths_from_the_current_directory(
    broker: Broker, repo: Path, env: dict, lockd: Lockd
) -> None:
    """`cd src && lockd claim api` claims src/api/, the file `lockd check api/app.py` names
    from there; release takes the same words."""
    src = repo / "src"
    (granted,) = as_json(lockd(env, src, "claim", "api", "-r", "from src", "--json"))["intents"]
    assert granted["pattern"] == "/src/api/"
    (entry,) = as_json(lockd(env, src, "check", "api/app.py", "--json"))["paths"]
    assert entry["path"] == "src/api/app.py"
    assert [c["pattern"] for c in entry["claims"]] == ["/src/api/"]
    (cli,) = as_json(lockd(env, src, "claim", "cli.py", "-r", "r", "--json"))["intents"]
    assert cli["pattern"] == "/src/**/cli.py"  # a name without a slash: anywhere beneath src
    up = as_json(lockd(env, src / "api", "claim", "../../README.md", "-r", "r", "--json"))
    assert up["intents"][0]["pattern"] == "/README.md"
    out = lockd(env, src, "release", "api").stdout
    assert granted["intent_id"] in out
    refused = lockd(env, repo, "claim", "/abs/../x", "-r", "r", code=2)
    assert "'/abs/../x'" in refused.stderr and ".." in refused.stderr


def test_a_refusal_shows_an_example_path_when_no_file_exists_yet(
    broker: Broker, repo: Path, env: dict, lockd: Lockd
) -> None:
    """The broker's example path is kept and shown: claims on files nobody has written yet
    still say which path both would claim."""
    bob = agent(broker, repo, "bob")
    bob.call(Api.announce(identify(str(repo)).repo_id, ["/new/"], "a new module"))
    out = lockd(env, repo, "claim", "new/*.py", "-r", "mine", code=5).stdout
    assert "held by bob" in out and "new/" in out and "for one (no such file here yet)" in out
    (c,) = as_json(lockd(env, repo, "claim", "new/*.py", "-r", "r", "--json", code=5))["conflicts"]
    assert c["paths"] == [] and c["example"].startswith("new/") and c["example"].endswith(".py")


def test_send_to_a_peer_that_is_away_says_it_waits(
    broker: Broker, repo: Path, env: dict, lockd: Lockd
) -> None:
    """A message to a peer whose session is gone is stored for its return; the person is told
    so instead of reading a plain "sent", as an agent sees `away`."""
    bob = agent(broker, repo, "bob")
    bob_id = bob.peer["peer_id"]  # type: ignore[attr-defined]
    bob.call(Api.goodbye())
    out = lockd(env, repo, "send", "bob", "are you there?").stdout
    assert "sent m" in out and "to bob;" in out and bob_id not in out
    assert "away (its session is gone; the message waits in its inbox): bob\n" in out


def test_peers_marks_you_and_send_names_recipients(
    broker: Broker, repo: Path, env: dict, lockd: Lockd
) -> None:
    """`lockd peers` asks without a session, so the person is listed too: marked (you), and
    `"me"` in --json; `lockd send` names its recipients, with ids only where names repeat."""
    pat = as_json(lockd(env, repo, "whoami", "--json"))["peer_id"]
    bob = agent(broker, repo, "bob")
    twins = [agent(broker, repo, "claude").peer["peer_id"] for _ in range(2)]  # type: ignore[attr-defined]

    listed = {line.split()[0]: line for line in lockd(env, repo, "peers").stdout.splitlines()}
    assert " pat (you) " in listed[pat]
    assert "(you)" not in "".join(v for k, v in listed.items() if k != pat)
    peers = as_json(lockd(env, repo, "peers", "--json"))["peers"]
    assert {p["peer_id"]: p["me"] for p in peers} == {
        pat: True,
        bob.peer["peer_id"]: False,
        **dict.fromkeys(twins, False),  # type: ignore[attr-defined]
    }
    assert all({"peer_id", "name", "cwd", "repo", "summary", "last_seen"} <= set(p) for p in peers)

    sent = lockd(env, repo, "send", "@repo", "standup in 5").stdout
    said = sent.strip().partition(" to ")[2]
    assert sorted(said.split(", ")) == ["bob", "claude", "claude-2"], sent  # live names are unique
    data = as_json(lockd(env, repo, "send", "@repo", "now", "--json"))
    ids = [bob.peer["peer_id"], *twins]  # type: ignore[attr-defined]
    assert sorted(data["recipients"]) == sorted(ids)  # the shape --json always had, plus names
    assert data["names"] == dict(zip(ids, ["bob", "claude", "claude-2"], strict=True))


def test_send_to_an_empty_scope_is_an_error_and_stores_nothing(
    broker: Broker, repo: Path, env: dict, lockd: Lockd
) -> None:
    """`send @repo` with nobody else there: exit 4, says so, and nothing waits for a peer
    who joins later."""
    lockd(env, repo, "whoami")  # the person is there, and alone in the repo
    failed = lockd(env, repo, "send", "@repo", "anyone?", code=4)
    assert "nobody else" in failed.stderr and "@repo" in failed.stderr
    assert "see `lockd peers` for who is there" in failed.stderr  # the next step, in CLI words
    to_self = lockd(env, repo, "send", "pat", "me?", code=2).stderr
    assert "'pat' is you" in to_self and "`lockd peers`" in to_self
    assert "sent" not in failed.stdout
    late = agent(broker, repo, "late")
    assert late.call(Api.inbox())["messages"] == []
    sent = as_json(lockd(env, repo, "send", "@repo", "now?", "--json"))
    assert sent["recipients"] == [late.peer["peer_id"]]  # type: ignore[attr-defined]
