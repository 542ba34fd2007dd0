"""`lockd …`: parse arguments, call one library function, print.

Exit codes: 0 ok; 1 internal error; 2 bad input; 3 not allowed (token,
another's claim); 4 not found; 5 conflict (claim refused, port taken, broker
already running); 6 broker unreachable.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable, Sequence

from lockd import __version__
from lockd.core.errors import LockdError, invalid
from lockd.local import config

TYPE_CHECKING = False
if TYPE_CHECKING:  # argparse and typing: not on the git hook's path
    import argparse
    from typing import Any

Handler = Callable[["argparse.Namespace"], int]
# A sub-command's action: name, handler, help line, description (None: the help line).
Action = tuple[str, Handler, str, str | None]


def emit(args: argparse.Namespace, data: Any, text: str) -> None:
    print(json.dumps(data, indent=2) if getattr(args, "json", False) else text)


def table(rows: list[list[str]], header: list[str]) -> str:
    if not rows:
        return "(none)"
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    lines = [
        "  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
        for r in [header, *rows]
    ]
    return "\n".join(lines)


# ---- broker ---------------------------------------------------------------
def cmd_serve(args: argparse.Namespace) -> int:
    from lockd.server.app import serve  # heavy imports only here

    return serve(
        port=args.port,
        verbose=args.verbose,
        db=args.db,
        host=args.host,
        tls_cert=args.tls_cert,
        tls_key=args.tls_key,
        public_names=tuple(args.public_name or ()),
    )


def cmd_status(args: argparse.Namespace) -> int:
    from lockd.client.api import Api
    from lockd.client.sync import Client
    from lockd.core import render

    client = Client()
    data = client.call(Api.status())
    data["url"] = config.broker_url()
    kept = data["kept"] = client.call(Api.store_status())
    now = time.time()
    emit(
        args,
        data,
        f"lockd {data['version']} at {data['url']} (pid {data['pid']}, up "
        f"{render.age(data['started_at'], now)}): {data['peers']} peers, "
        f"{data['intents']} intents, home {data['home']}\n" + _kept_text(kept, now),
    )
    return 0


def _kept_text(kept: dict[str, Any], now: float) -> str:
    """`lockd status`'s second part: what the broker keeps, on disk and in memory."""
    from lockd.core import render

    store, caches, last = kept["store"], kept["caches"], kept["retention"]["last_run"]
    rows = ", ".join(f"{n} {kind}" for kind, n in store["rows"].items())
    ran = (
        f"{render.age(last['at'], now)} ago, removed "
        + ", ".join(f"{n} {k}" for k, n in last["removed"].items())
        if last
        else "not yet"
    )
    memory = kept["memory"]
    engine = ""  # SQLite's own memory; PostgreSQL's is the server's
    if memory.get("engine_bytes", -1) >= 0:
        engine = (
            f"SQLite {memory['engine_bytes'] / 1e6:.1f} MB "
            f"(page cache up to {memory['page_cache_cap_bytes'] / 1e6:.1f} MB); "
        )
    return (
        f"store: {store['bytes'] / 1e6:.1f} MB ({store['free_bytes'] / 1e6:.1f} MB free): {rows}\n"
        f"memory: broker {memory['resident_bytes'] / 1e6:.1f} MB resident; {engine}"
        f"pattern caches {caches['bytes'] / 1e6:.1f} of {caches['budget'] / 1e6:.0f} MB; "
        f"{memory['peers']} peers\n"
        f"retention: last ran {ran}"
    )


def cmd_stop(args: argparse.Namespace) -> int:
    from lockd.client.api import Api
    from lockd.client.sync import Client

    client = Client()
    client.call(Api.shutdown())
    for _ in range(100):
        if not client.alive():
            emit(args, {"stopped": True}, "broker stopped")
            return 0
        time.sleep(0.05)
    emit(args, {"stopped": False}, "broker is stopping")
    return 0


def cmd_dashboard(args: argparse.Namespace) -> int:
    from lockd.client.api import Api
    from lockd.client.session import person_client

    client, _, _ = person_client(start_broker=False)  # the page acts as you
    data = client.call(Api.dashboard_ticket())
    url = client.url + data["path"]
    if args.no_open:
        emit(args, {**data, "url": url}, url)
        return 0
    import webbrowser

    opened = webbrowser.open(url)
    print(f"{'opened' if opened else 'open this link (one use, within a minute)'}: {url}")
    return 0


# ---- a team server's users ----------------------------------------------------
def cmd_token_create(args: argparse.Namespace) -> int:
    from lockd.client.api import Api
    from lockd.client.sync import Client

    data = Client().call(Api.create_token(args.name))
    emit(
        args,
        data,
        f"{data['token']}\n(the token of user {data['name']}: shown once, only its hash is kept;"
        " the user sets LOCKD_TOKEN to it)",
    )
    return 0


def cmd_token_revoke(args: argparse.Namespace) -> int:
    from lockd.client.api import Api
    from lockd.client.sync import Client

    data = Client().call(Api.revoke_token(args.name))
    emit(args, data, f"revoked the token of user {data['name']}")
    return 0


def cmd_token_list(args: argparse.Namespace) -> int:
    from lockd.client.api import Api
    from lockd.client.sync import Client
    from lockd.core import render

    data, now = Client().call(Api.tokens()), time.time()
    rows = [
        [
            u["name"],
            f"{render.age(u['created_at'], now)} ago",
            u["created_by"],
            f"{render.age(u['revoked_at'], now)} ago" if u["revoked_at"] else "-",
        ]
        for u in data["users"]
    ]
    emit(args, data, table(rows, ["USER", "CREATED", "BY", "REVOKED"]))
    return 0


# ---- peers and messages -----------------------------------------------------
def cmd_peers(args: argparse.Namespace) -> int:
    from lockd.client.api import Api
    from lockd.client.sync import Client
    from lockd.core import render
    from lockd.local.repo import identify
    from lockd.local.sessions import person

    info = identify(os.getcwd())
    client = Client()
    repo = info.repo_id
    if args.scope == "repo":  # the broker may know this checkout by another of its keys
        repo = client.call(Api.repo(info.repo_id, info.keys))["repo_id"]
    data = client.call(Api.peers(args.scope, os.path.realpath(os.getcwd()), repo))
    me = (person() or {}).get("peer_id")  # asked without a session: you are listed too
    for p in data["peers"]:
        p["me"] = p["peer_id"] == me  # as the dashboard's peers say it
    now = time.time()
    rows = [
        [
            p["peer_id"],
            p["name"] + (" (you)" if p["me"] else ""),
            p.get("user", "-"),
            p["client"],
            render.age(p["last_seen"], now),
            p["cwd"],
            p["summary"][:60],
        ]
        for p in data["peers"]
    ]
    emit(args, data, table(rows, ["ID", "NAME", "USER", "CLIENT", "SEEN", "CWD", "SUMMARY"]))
    return 0


def cmd_whoami(args: argparse.Namespace) -> int:
    from lockd.client.session import person_client

    _, peer, _ = person_client(start_broker=False)
    peer.pop("credential", None)
    emit(args, peer, f"{peer['name']} ({peer['peer_id']}) in {peer['repo']}")
    return 0


def cmd_send(args: argparse.Namespace) -> int:
    from lockd.client.api import Api
    from lockd.client.session import person_client
    from lockd.core import render

    client, _, _ = person_client()
    data = client.call(Api.send(args.to, args.message))
    names = data.get("names") or {}  # an older broker sends ids only
    text = f"sent {data['message_id']} to {render.peers(data['recipients'], names)}"
    if data.get("away"):  # stored, but nobody reads it until that session comes back
        text += "; away (its session is gone; the message waits in its inbox): "
        text += render.peers(data["away"], names)
    emit(args, data, text)
    return 0


def cmd_inbox(args: argparse.Namespace) -> int:
    if args.hook:
        from lockd.agents.inbox import run_hook

        return run_hook()
    from lockd.client.api import Api
    from lockd.client.session import person_client
    from lockd.core import render

    client, _, _ = person_client(start_broker=False)
    data, now = client.call(Api.inbox(mark_read=not args.peek)), time.time()
    lines = [
        f"[{m['message_id']} {render.age(m['sent_at'], now)} ago] {m['from_name']}: {m['text']}"
        for m in data["messages"]
    ]
    emit(args, data, "\n".join(lines) or "no unread messages")
    return 0


# ---- claims -------------------------------------------------------------------
def cmd_claim(args: argparse.Namespace) -> int:
    from lockd.client.intents import announce
    from lockd.client.session import person_client
    from lockd.core.announce import Announce
    from lockd.core.durations import within
    from lockd.core.intent_rules import MAX_TTL_SECONDS

    # Checked before the broker is reached, so that it answers in the units typed.
    ttl = (
        within(args.ttl, "--ttl", 0, MAX_TTL_SECONDS, low_open=True)
        if args.ttl is not None  # `--ttl ''` is a mistake, not the default
        else config.PERSON_TTL_SECONDS
    )
    client, _, info = person_client()
    mode = "shared" if args.shared else "exclusive"
    request = Announce(info.repo_id, args.patterns, args.reason, mode, ttl, args.notify_when_free)
    data = announce(client, info, request, os.getcwd())  # patterns read from here, as git does
    emit(args, data, _claim_text(data, time.time()))
    return 0 if data["granted"] else 5


def _claim_text(data: dict[str, Any], now: float) -> str:
    from lockd.core import render

    if data["granted"]:
        return "\n".join(render.granted(i, now) for i in data["intents"])
    return "refused:\n" + "\n".join("  " + render.conflict(c, now) for c in data["conflicts"])


def cmd_release(args: argparse.Namespace) -> int:
    from lockd.client.intents import release_req, release_targets
    from lockd.client.session import person_client

    client, _, info = person_client(start_broker=False)  # none running: nothing to release
    ids, pats = release_targets(args.targets)
    if args.force and pats:
        raise invalid("--force takes intent ids (like i12), not patterns: see `lockd locks`")
    data = client.call(release_req(info, ids, pats, args.force, os.getcwd()))
    emit(
        args,
        data,
        f"released {', '.join(data['released'])}" if data["released"] else "nothing to release",
    )
    return 0


def cmd_locks(args: argparse.Namespace) -> int:
    from lockd.client.api import Api
    from lockd.client.session import person_client
    from lockd.core import render
    from lockd.local.repo import relpath_in_repo

    client, _, info = person_client(start_broker=False)  # as yourself: your claims say mine
    path = relpath_in_repo(info, args.path) if args.path else None
    repo = None if args.all_repos else info.repo_id
    data, now = client.call(Api.locks(repo, path)), time.time()
    rows = [
        [
            lk["intent_id"],
            lk["pattern"],
            lk["mode"],
            lk["peer_name"],
            render.age(lk["since"], now),
            render.remaining(lk["expires_at"], now) if lk["expires_at"] else "session",
            lk["reason"][:50],
        ]
        + ([lk["repo"]] if args.all_repos else [])
        for lk in data["locks"]
    ]
    header = ["ID", "PATTERN", "MODE", "HOLDER", "AGE", "LEFT", "REASON"]
    emit(args, data, table(rows, header + (["REPO"] if args.all_repos else [])))
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    from lockd.client.api import Api
    from lockd.client.session import person_client
    from lockd.core import render
    from lockd.core.activity import news
    from lockd.local.repo import relpath_in_repo

    client, _, info = person_client(start_broker=False)
    paths = [relpath_in_repo(info, p) for p in args.paths]
    data, now = client.call(Api.check(info.repo_id, paths)), time.time()
    lines = [render.path_claim(e["path"], c, now) for e in data["paths"] for c in e["claims"]]
    lines += [f"{e['path']}: {a['text']}" for e in data["paths"]
              for a in news(e.get("activity", []), info.root)]  # fmt: skip
    emit(args, data, "\n".join(lines) or "no claims on these paths")
    claimed = any(e["claims"] for e in data["paths"])
    return 5 if claimed and args.exit_code else 0


def cmd_forecast(args: argparse.Namespace) -> int:
    from lockd.client.forecast import refresh_sync
    from lockd.client.session import person_client

    client, _, info = person_client(start_broker=False)  # no broker: no sessions to forecast
    data = refresh_sync(client.call, info.repo_id, keys=tuple(info.keys or ()))
    emit(args, data, forecast_text(data))
    conflict = any(v["conflict"] for v in data["verdicts"])
    return 5 if conflict and args.exit_code else 0


def forecast_text(data: dict[str, Any]) -> str:
    """Peers x peers: conflict, clean, ? (no verdict), then the conflicting files."""
    rows = data["matrix"]
    if not rows:
        return "no session in this repo reports activity yet"
    marks = {"conflict": "CONFLICT", "clean": "clean", "unknown": "?", "self": "-",
             "same checkout": "same"}  # fmt: skip
    names = [r["name"] for r in rows]
    body = [[r["name"], *(marks[c["verdict"]] for c in r["cells"])] for r in rows]
    lines = [table(body, ["", *names])]
    ids = {r["peer_id"]: r["name"] for r in rows}
    for v in data["verdicts"]:
        if v["conflict"]:
            files = ", ".join(v["paths"][:10]) or "(files not named)"
            lines.append(f"{ids.get(v['a'], v['a'])} x {ids.get(v['b'], v['b'])}: {files}")
    for peer in data["peers"]:
        changed = len(peer["paths"]) + peer.get("more", 0)
        lines.append(f"{peer['name']}: {changed} changed file(s) in {peer['checkout']}"
                     + (f" on {peer['branch']}" if peer.get("branch") else ""))  # fmt: skip
    return "\n".join(lines)


# ---- agent clients' settings ---------------------------------------------------
def cmd_setup(args: argparse.Namespace) -> int:
    from lockd.agents.setup.edits import run

    result = run(
        args.client,
        "project" if args.project else "user",
        uninstall=args.uninstall,
        dry_run=args.dry_run,
        use_path=args.use_path,
    )
    emit(args, result.to_json(), result.text())
    return 0


def cmd_doctor(args: argparse.Namespace) -> int:
    from lockd.cli.doctor import run

    ok, checks = run()
    data = {"ok": ok, "checks": [c.to_json() for c in checks]}
    emit(args, data, "\n".join(c.line() for c in checks))
    return 0 if ok else 1


# ---- parser -------------------------------------------------------------------
def _setup_options(c: argparse.ArgumentParser, project: str) -> None:
    c.set_defaults(handler=cmd_setup)
    c.add_argument(
        "--project",
        action="store_true",
        help=f"this directory's {project} instead of your user settings",
    )
    c.add_argument("--dry-run", action="store_true", help="show what would change; write nothing")
    c.add_argument(
        "--uninstall", action="store_true", help="remove lockd's server and hooks (only those)"
    )
    c.add_argument(
        "--use-path",
        action="store_true",
        help="write bare `lockd` and `lockd-mcp` (found on PATH when they run) instead of "
        "absolute paths: for project settings that others share",
    )
    c.add_argument("--json", action="store_true", help="print JSON for scripts")


def build_parser() -> argparse.ArgumentParser:
    import argparse  # not at module level: the git hook's path never parses with it

    parser = argparse.ArgumentParser(
        prog="lockd", description="Coordination broker for coding agents sharing a repository."
    )
    parser.add_argument("--version", action="version", version=f"lockd {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def add(
        name: str,
        handler: Handler,
        help: str,
        json_flag: bool = True,
        description: str | None = None,
        into: Any = sub,
    ) -> argparse.ArgumentParser:
        p = into.add_parser(name, help=help, description=description or help)
        p.set_defaults(handler=handler)
        if json_flag:
            p.add_argument("--json", action="store_true", help="print JSON for scripts")
        return p

    def add_actions(
        name: str, help: str, description: str, actions: Sequence[Action]
    ) -> dict[str, argparse.ArgumentParser]:
        """A command whose ACTION says what it does (`lockd token create`), each
        action with its own handler and --json; the caller adds their options."""
        into = sub.add_parser(name, help=help, description=description).add_subparsers(
            dest="action", metavar="ACTION", required=True
        )
        return {
            action: add(action, handler, text, description=long, into=into)
            for action, handler, text, long in actions
        }

    p = add("serve", cmd_serve, "run the broker in the foreground", json_flag=False)
    p.add_argument(
        "--port", type=int, default=None, help=f"port (default LOCKD_PORT or {config.DEFAULT_PORT})"
    )
    p.add_argument("--verbose", action="store_true", help="debug logging to the log file")
    p.add_argument(
        "--db",
        default=None,
        help="a postgresql://user@host/dbname URL for a team server "
        "(default LOCKD_DB, else SQLite in LOCKD_HOME)",
    )
    p.add_argument(
        "--host",
        default=None,
        help=f"address to listen on (default {config.HOST}); beyond loopback needs "
        "--tls-cert, --tls-key and --public-name",
    )
    p.add_argument("--tls-cert", default=None, help="PEM certificate (default LOCKD_TLS_CERT)")
    p.add_argument("--tls-key", default=None, help="its PEM private key (default LOCKD_TLS_KEY)")
    p.add_argument(
        "--public-name",
        action="append",
        metavar="NAME",
        help="host name clients reach the broker by, as in LOCKD_URL; repeatable "
        "(default LOCKD_PUBLIC_NAME, comma-separated)",
    )
    tokens = add_actions(
        "token",
        "a team server's per-user tokens (on the broker's machine)",
        "Per-user tokens for a team server; run on the broker's machine, "
        "with its own token (LOCKD_HOME/token).",
        [
            ("create", cmd_token_create, "create a user's token and print it, once", None),
            ("revoke", cmd_token_revoke, "refuse a user's token from now on", None),
            ("list", cmd_token_list, "users, when created, whether revoked (never tokens)", None),
        ],
    )
    for action in ("create", "revoke"):
        tokens[action].add_argument("name", metavar="NAME", help="the user")
    add("status", cmd_status, "show whether the broker runs, and what it holds")
    add("stop", cmd_stop, "stop the broker")
    p = add("dashboard", cmd_dashboard, "open the live dashboard in a browser")
    p.add_argument("--no-open", action="store_true", help="print the one-time link instead")
    p = add("peers", cmd_peers, "list live peers (agent sessions and people)")
    p.add_argument(
        "--scope",
        choices=["repo", "directory", "machine"],
        default="repo",
        help="repo: this repository, across worktrees and clones (default, as the MCP tool "
        "list_peers); directory: this working directory; machine: everyone on this broker",
    )
    add("whoami", cmd_whoami, "show your own peer (a person at this terminal)")
    p = add("send", cmd_send, "send a message to a peer (id or name) or @repo/@directory/@machine")
    p.add_argument(
        "to",
        metavar="TO",
        help="a peer's id (p-…) or name, as `lockd peers` shows them; or @repo, @directory, "
        "@machine for everyone there",
    )
    p.add_argument("message", metavar="MESSAGE", help="the text (quote it: one argument)")
    p = add("inbox", cmd_inbox, "print and mark read your unread messages")
    p.add_argument("--peek", action="store_true", help="do not mark them read")
    hook_help = "for Claude Code hooks: print the agent session's unread messages"
    p.add_argument("--hook", action="store_true", help=hook_help)
    p = add("claim", cmd_claim, "announce an intent on patterns in this checkout")
    p.add_argument(
        "patterns",
        nargs="+",
        metavar="PATTERN",
        help="gitignore-style globs: src/api/ (a tree), '*.md', src/a*.py; a bare directory "
        "name (src/api) means its tree. Read from the current directory, as git reads "
        "pathspecs (a leading / is the repo root). Quote globs so the shell leaves them alone",
    )
    p.add_argument(
        "--reason",
        "-r",
        required=True,
        help="why you claim them, in a few words: others see it beside your claim",
    )
    p.add_argument("--shared", action="store_true", help="shared claim (I depend on these)")
    p.add_argument(
        "--ttl",
        default=None,
        metavar="DURATION",
        help="how long the claim lasts: 90s, 15m, 1h30m, 8h, 2d (a unit is needed; at most "
        "30d; default 8h)",
    )
    p.add_argument(
        "--notify-when-free",
        action="store_true",
        help="if refused, get a message when the conflicting claims go",
    )
    p = add("release", cmd_release, "release your intents (all in this repo when none named)")
    p.add_argument(
        "targets",
        nargs="*",
        metavar="ID_OR_PATTERN",
        help="an intent id (i12, from `lockd locks`) or a pattern, read from the current "
        "directory as `lockd claim` reads it (a leading / is the repo root)",
    )
    p.add_argument("--force", action="store_true", help="release another peer's intent by id")
    p = add("locks", cmd_locks, "list claims in this repo")
    p.add_argument(
        "--path",
        metavar="PATH",
        help="only the claims that cover this file (relative to the current directory, or "
        "absolute)",
    )
    p.add_argument(
        "--all-repos",
        action="store_true",
        help="claims in every repository on this broker, with a REPO column",
    )
    p = add("check", cmd_check, "which claims cover these files")
    p.add_argument(
        "paths",
        nargs="+",
        metavar="PATH",
        help="files to look up (relative to the current directory, or absolute); up to "
        f"{config.MAX_CHECK_PATHS:,}",
    )
    p.add_argument("--exit-code", action="store_true", help="exit 5 when any path is claimed")
    add("doctor", cmd_doctor, "check lockd's set-up in every agent client here, and how to fix it")
    p = add("forecast", cmd_forecast, "would the live sessions' work merge? peers x peers")
    p.add_argument("--exit-code", action="store_true", help="exit 5 when any pair would conflict")
    p = sub.add_parser(
        "setup",
        help="connect an agent client to lockd: its MCP server and hooks, in one command",
        description="Put lockd's MCP server and hooks into an agent client's settings, "
        "leaving everything else in them as it is. Running it again changes nothing; "
        "--uninstall takes out exactly lockd's entries.",
    )
    clients = p.add_subparsers(dest="client", metavar="CLIENT", required=True)
    text = (
        "Add the MCP server lockd to ~/.claude.json and the inbox and guard hooks to "
        "~/.claude/settings.json (--project: .mcp.json and .claude/settings.json here), "
        "with this installation's lockd and lockd-mcp by absolute path; prints what it "
        "changes and the claude command line that turns on lockd's channel"
    )
    for name, title, what, project in (
        ("claude-code", "Claude Code (MCP server, hooks, channel)", text,
         ".mcp.json and .claude/settings.json"),
        ("codex", "Codex CLI (MCP server, hooks, hook trust)",
         "Add the MCP server lockd to ~/.codex/config.toml ($CODEX_HOME), the guard and "
         "inbox hooks to ~/.codex/hooks.json, and trust those hooks in config.toml "
         "[hooks.state] (Codex skips untrusted hooks)", ".codex/config.toml and .codex/hooks.json"),
        ("gemini", "Gemini CLI (MCP server, hooks)",
         "Add the MCP server lockd and the guard and inbox hooks to ~/.gemini/settings.json",
         ".gemini/settings.json"),
        ("cursor", "Cursor (MCP server, hooks)",
         "Add the MCP server lockd to ~/.cursor/mcp.json and the guard hooks to "
         "~/.cursor/hooks.json", ".cursor/mcp.json and .cursor/hooks.json"),
    ):  # fmt: skip
        c = clients.add_parser(name, help=title, description=what)
        _setup_options(c, project)
    try:
        from lockd.cli.hooks import add_commands
    except ImportError:  # pragma: no cover - during partial installs
        pass
    else:
        add_commands(add, add_actions)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    # Every commit and every edit runs these: straight to them, without
    # building the CLI's parser (argparse alone is a fifth of the hook's budget).
    if len(argv) >= 2 and argv[0] == "hook-run" and not {"-h", "--help"} & set(argv):
        from lockd.githooks.check import HOOK_TYPES, run_with_stdin

        if argv[1] in HOOK_TYPES:
            return run_with_stdin(argv[1], argv[2:])
    if argv[:1] == ["guard"] and "--hook" in argv and set(argv[1:]) <= {"--hook", "--auto-claim"}:
        from lockd.agents.guard import run_hook

        return run_hook(auto_claim="--auto-claim" in argv)
    if argv == ["inbox", "--hook"]:  # and this one on every prompt and tool use
        from lockd.agents.inbox import run_hook as print_inbox

        return print_inbox()
    hook_client = argv[1] if argv[:1] == ["agent-hook"] and len(argv) >= 2 else "-"
    if not hook_client.startswith("-") and set(argv[2:]) <= {"--auto-claim"}:
        from lockd.agents.hookrun import run_client  # Codex, Gemini CLI, Cursor: the same

        return run_client(argv[1], auto_claim="--auto-claim" in argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.handler(args))
    except LockdError as exc:
        from lockd.core.render import error_text

        message = error_text(exc.message, exc.detail, "cli")  # `lockd peers`, not list_peers
        if getattr(args, "json", False):
            print(json.dumps({**exc.to_json(), "message": message}), file=sys.stderr)
        else:
            print(f"lockd: {message}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    raise SystemExit(main())


def entry() -> None:
    """The console script and `python -m lockd`. The git hook, the edit guard
    and the inbox hook leave without interpreter teardown (a tenth of the git
    hook's time budget)."""
    argv = sys.argv[1:]
    code = main(argv)
    if argv[:1] in (["hook-run"], ["guard"], ["agent-hook"]) or argv == ["inbox", "--hook"]:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)
