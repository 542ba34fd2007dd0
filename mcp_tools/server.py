"""`lockd-mcp`: one per agent session over stdio. Ten tools over the broker,
and inbound messages pushed as `notifications/claude/channel`."""

from __future__ import annotations

import asyncio
import faulthandler
import logging
import os
import signal
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, Literal, TypeVar

from mcp.server import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import NotificationParams

from lockd import __version__
from lockd.client import intents
from lockd.client.api import Api
from lockd.client.session import AgentSession
from lockd.client.watch import ActivityWatch
from lockd.core import render
from lockd.core.announce import Announce
from lockd.core.errors import LockdError
from lockd.local import config
from lockd.local.repo import relpath_in_repo
from mcp_tools import arguments, sdk, shapes
from mcp_tools.channel import CAPABILITY, MODERN_ERA_NOTE, Channel
from mcp_tools.stdio import Wire, event_loop_stdio

log = logging.getLogger("lockd.mcp")
M = TypeVar("M")

INSTRUCTIONS = """\
lockd coordinates you with the other agents and people working on this machine and repository.

Protocol:
1. Before you edit files another agent might also touch, call announce_intent with glob
   patterns (gitignore syntax, relative to the repo root: "src/api/", "*.md", "src/a*.py")
   and a reason. If granted is false, do not edit those files: read `conflicts` (who holds
   them and why), ask the holder with send_message, or announce again with
   notify_when_free=true to be told when they are free.
2. Before touching a file you did not claim, check_paths tells you whether someone claims it.
3. Release with release_intent as soon as you are done (claims also end with your session).
4. set_summary says in one line what you are working on; list_peers shows the others.

Messages from other peers arrive by themselves as
<channel source="lockd" from_id="…" from_name="…" message_id="…">text</channel>.
Reply with send_message(to=<from_name or from_id>, message=…). If your client does not show
channel messages, every tool result says how many are unread; call check_messages to read them.
"""


def tool_error(exc: LockdError) -> ToolError:
    """A broker's refusal as a tool error, its next step named by tool (list_peers)."""
    return ToolError(render.error_text(exc.message, exc.detail, "mcp"))


class LockdMCP:
    """The session and channel the tools share; started by the server's lifespan."""

    def __init__(self) -> None:
        self.session: AgentSession | None = None
        self.watch: ActivityWatch | None = None  # this checkout's activity, the forecast
        self.channel = Channel()
        self._ready = asyncio.Event()
        self._error: LockdError | None = None

    async def start(self) -> None:
        try:
            self.session = AgentSession(client_name=os.environ.get("LOCKD_CLIENT", "mcp"))
            await self.session.start()
            self.session.run_background(self.channel.push)
            self.watch = ActivityWatch(self.session)
            self.watch.start()
        except LockdError as exc:
            log.error("could not register with the broker: %s", exc.message)
            self._error = exc
        except Exception as exc:  # reported through every tool call
            log.exception("could not start the session")
            self._error = LockdError("unavailable", f"lockd session failed to start: {exc}")
        finally:
            self._ready.set()

    async def ready(self) -> AgentSession:
        await self._ready.wait()
        if self.session is None or not self.session.peer:
            if self.session is not None:  # try again: the broker may be back
                try:
                    await self.session.register()
                    return self.session
                except LockdError as exc:
                    self._error = exc
            raise tool_error(self._error or LockdError("unavailable", "no session"))
        return self.session

    async def call(self, req: Any) -> dict[str, Any]:
        session = await self.ready()
        try:
            return await session.call(req)
        except LockdError as exc:
            raise tool_error(exc) from None

    async def unread(self) -> int:
        try:
            return int((await self.call(Api.heartbeat())).get("unread", 0))
        except ToolError:
            return 0

    async def call_counting(self, req: Any) -> tuple[dict[str, Any], dict[str, Any]]:
        """A call and the unread fields every result carries, side by side:
        one round trip of latency, not two."""
        data, unread = await asyncio.gather(self.call(req), self.unread())
        return data, self.unread_fields(unread)

    def unread_fields(self, unread: int) -> dict[str, Any]:
        """`unread`, a hint while messages wait, and a notice the broker gave once."""
        fields: dict[str, Any] = {"unread": unread}
        lapsed = self.session.take_lapse() if self.session is not None else None
        if lapsed:
            fields["notice"] = lapsed.get("message")
        if unread:
            hint = f"{unread} unread message{'s' if unread != 1 else ''}: call check_messages"
            if self.channel.off:
                hint += f" ({self.channel.off})"
            fields["unread_hint"] = hint
        return fields


def _repo_path(state: LockdMCP, path: str) -> str:
    assert state.session is not None
    try:
        # From the repo root, as the tools' descriptions say, like their patterns.
        return relpath_in_repo(state.session.repo, path, state.session.repo.root)
    except LockdError as exc:
        raise tool_error(exc) from None


def build_server(state: LockdMCP | None = None) -> MCPServer:
    state = state or LockdMCP()

    @asynccontextmanager
    async def lifespan(_: MCPServer) -> AsyncIterator[LockdMCP]:
        task = asyncio.create_task(state.start())
        try:
            yield state
        finally:
            task.cancel()
            if state.watch is not None:
                await state.watch.close()
            if state.session is not None:
                await state.session.close(goodbye=False)

    sdk.skip_sdk_logging()
    server = MCPServer(
        "lockd",
        version=__version__,
        instructions=INSTRUCTIONS,
        lifespan=lifespan,
        request_state_security=sdk.request_state_security(),
    )
    _peer_tools(server, state)
    _claim_tools(server, state)
    _forecast_tool(server, state)
    arguments.hold(server)  # strict, closed, and refused in plain words
    _channel_capability(server, state)
    return server


def _peer_tools(server: MCPServer, state: LockdMCP) -> None:
    """Who else is here, and messages: list_peers, send_message, set_summary,
    check_messages, whoami."""

    @server.tool(
        description=(
            "List the other live agents and people (peers) and what they work on. scope: 'repo' "
            "(same repository, across worktrees and clones), 'directory' (same working directory) "
            "or 'machine' (everyone on this broker)."
        )
    )
    async def list_peers(scope: Literal["repo", "directory", "machine"] = "repo") -> shapes.Peers:
        data, unread = await state.call_counting(Api.peers(scope))
        return shapes.Peers(peers=_all(shapes.PeerInfo, data["peers"]), **unread)

    @server.tool(
        description=(
            "Send a message to a peer by id or name, or broadcast with to='@repo', '@directory' "
            "or '@machine'. It is stored before this returns and pushed to the recipient at once. "
            "To reply to a message you received, send to its from_name or from_id."
        )
    )
    async def send_message(to: str, message: str) -> shapes.Sent:
        data, unread = await state.call_counting(Api.send(to, message))
        return shapes.Sent(
            message_id=data["message_id"],
            recipients=data["recipients"],
            away=data.get("away") or [],
            **unread,
        )

    @server.tool(description="Say in one line what you are working on; other peers see it.")
    async def set_summary(summary: str) -> shapes.Summary:
        data, unread = await state.call_counting(Api.set_summary(summary))
        return shapes.Summary(summary=data["summary"], **unread)

    @server.tool(
        description=(
            "Read your unread messages (and mark them read). Messages already pushed to you as "
            "<channel> notifications are marked pushed=true, so you can skip ones you saw."
        )
    )
    async def check_messages() -> shapes.Inbox:
        data = await state.call(Api.inbox(mark_read=True))
        return shapes.Inbox(messages=_all(shapes.InboxMessage, data["messages"]))

    @server.tool(description="Your own peer id, name, working directory, repo and summary.")
    async def whoami() -> shapes.Me:
        data = await state.call(Api.whoami())
        return shapes.Me(
            peer_id=data["peer_id"],
            name=data["name"],
            cwd=data["cwd"],
            repo=data["repo"],
            summary=data["summary"],
            push="off" if state.channel.off else "channel",
            push_note=state.channel.off,
            **state.unread_fields(int(data.get("unread", 0))),
        )


def _claim_tools(server: MCPServer, state: LockdMCP) -> None:
    """Claims: announce_intent, list_locks, release_intent, check_paths."""

    @server.tool(
        description=(
            "Claim files BEFORE you edit files others may touch. patterns: gitignore-style globs "
            "relative to the repo root ('src/api/' or 'src/api' for a directory tree, '*.md', "
            "'/Makefile'). mode 'exclusive' (I am changing these) or 'shared' (I depend on these). "
            "All patterns are granted together or none. If granted is false, do not edit: the "
            "conflicts say who holds what and why; message them, or set notify_when_free=true to "
            "get a message when the files are free. Announcing a pattern again updates it."
        )
    )
    async def announce_intent(
        patterns: list[str],
        reason: str,
        mode: Literal["exclusive", "shared"] = "exclusive",
        ttl_seconds: float | None = None,
        notify_when_free: bool = False,
    ) -> shapes.Announcement:
        session = await state.ready()
        try:
            request = Announce(
                session.repo.repo_id, patterns, reason, mode, ttl_seconds, notify_when_free
            )
            req = intents.announce_req(session.repo, request)
        except LockdError as exc:
            raise tool_error(exc) from None
        data, unread = await state.call_counting(req)
        data = await asyncio.to_thread(intents.fill_conflict_paths, session.repo, data)
        return shapes.Announcement(
            granted=data["granted"],
            intents=[
                shapes.GrantedIntent(**_pick(i, shapes.GrantedIntent)) for i in data["intents"]
            ],
            conflicts=[shapes.Conflict(**_pick(c, shapes.Conflict)) for c in data["conflicts"]],
            **unread,
        )

    @server.tool(
        description=(
            "List claims. scope 'repo' (this repository) or 'machine' (every repository). With "
            "path, only the claims that cover that file."
        )
    )
    async def list_locks(
        scope: Literal["repo", "directory", "machine"] = "repo", path: str | None = None
    ) -> shapes.Locks:
        session = await state.ready()
        repo = None if scope == "machine" else session.repo.repo_id
        if path is not None and repo is None:
            repo = session.repo.repo_id
        rel = _repo_path(state, path) if path else None
        data, unread = await state.call_counting(Api.locks(repo, rel))
        return shapes.Locks(locks=_all(shapes.Lock, data["locks"]), **unread)

    @server.tool(
        description=(
            "Release your claims when you are done: by intent_ids, by patterns, or all of yours in "
            "this repo when neither is given."
        )
    )
    async def release_intent(
        intent_ids: list[str] | None = None, patterns: list[str] | None = None
    ) -> shapes.Released:
        session = await state.ready()
        try:
            req = intents.release_req(session.repo, intent_ids, patterns)
        except LockdError as exc:
            raise tool_error(exc) from None
        data, unread = await state.call_counting(req)
        return shapes.Released(released=data["released"], **unread)

    @server.tool(
        description=(
            "Before touching files you did not claim: which claims cover each path (relative to "
            "the repo root or absolute). Claims by others (mine=false) mean: ask before editing."
        )
    )
    async def check_paths(paths: list[str]) -> shapes.PathReport:
        session = await state.ready()
        rel = [_repo_path(state, p) for p in paths]
        data, unread = await state.call_counting(Api.check(session.repo.repo_id, rel))
        return shapes.PathReport(
            paths=[
                shapes.PathClaims(
                    path=e["path"],
                    claims=_all(shapes.Claim, e["claims"]),
                    activity=_all(shapes.Seen, e.get("activity", [])),
                )
                for e in data["paths"]
            ],
            **unread,
        )


def _forecast_tool(server: MCPServer, state: LockdMCP) -> None:
    """What sessions actually changed, and whether their work would merge."""

    @server.tool(
        description=(
            "Merge forecast for this repository: for every two live sessions in different "
            "worktrees or clones, whether their work (commits and uncommitted changes) would "
            "conflict if merged now, and in which files; and each session's activity (files it "
            "changed, uncommitted or unpushed). Computed from git merge-tree without touching "
            "any checkout. Use it before a merge, or when told that someone changes your files."
        )
    )
    async def forecast() -> shapes.Forecast:
        await state.ready()
        watch = state.watch
        if watch is None:
            raise ToolError("the forecast needs a session in a git checkout")
        try:
            await watch.scan_now()
            view = await watch.refresh(wait=True)
        except LockdError as exc:
            raise ToolError(exc.message) from None
        unread = state.unread_fields(await state.unread())
        return shapes.Forecast(
            peers=[shapes.ActivePeer(**_pick(p, shapes.ActivePeer)) for p in view["peers"]],
            verdicts=_all(shapes.PairVerdict, view["verdicts"]),
            **unread,
        )


def _channel_capability(server: MCPServer, state: LockdMCP) -> None:
    """Channel notifications: the session to push on once the client is
    initialized, and the experimental capability Claude Code looks for."""
    low = server._lowlevel_server

    async def on_initialized(ctx: Any, _params: NotificationParams) -> None:
        state.channel.attach(ctx.session)

    low.add_notification_handler("notifications/initialized", NotificationParams, on_initialized)
    base_capabilities = low.get_capabilities

    def get_capabilities(*args: Any, **kwargs: Any) -> Any:
        """MCPServer has no option for experimental capabilities; Claude Code needs this one."""
        caps = base_capabilities(*args, **kwargs)
        caps.experimental = {**(caps.experimental or {}), CAPABILITY: {}}
        return caps

    low.get_capabilities = get_capabilities  # type: ignore[method-assign]


def _pick(data: dict[str, Any], model: type[Any]) -> dict[str, Any]:
    return {k: data[k] for k in model.model_fields if k in data}


def _all(model: type[M], rows: list[dict[str, Any]]) -> list[M]:
    """The broker's rows as a result's models, each with the fields it has."""
    return [model(**_pick(row, model)) for row in rows]


def _dump_tasks() -> None:
    """`kill -USR2 <pid>`: every asyncio task's stack to stderr (USR1: every thread's)."""
    import sys

    for task in asyncio.all_tasks():
        task.print_stack(file=sys.stderr)
    sys.stderr.flush()


async def serve_stdio() -> None:
    asyncio.get_running_loop().add_signal_handler(signal.SIGUSR2, _dump_tasks)
    state = LockdMCP()
    server = build_server(state)
    low = server._lowlevel_server

    def on_era(era: str) -> None:
        if era == "modern":
            state.channel.disable(MODERN_ERA_NOTE)

    async with event_loop_stdio(Wire(on_era)) as (read_stream, write_stream):
        await low.run(read_stream, write_stream, low.create_initialization_options())


def main() -> None:
    # `kill -USR1 <pid>` prints every thread's stack to stderr: a hung session tells where.
    faulthandler.register(signal.SIGUSR1, all_threads=True)
    logging.basicConfig(
        filename=str(config.home() / "logs" / "mcp.log") if _logs_ready() else None,
        level=logging.INFO,
        format="%(asctime)s %(process)d %(levelname)s %(name)s: %(message)s",
    )
    asyncio.run(serve_stdio())


def _logs_ready() -> bool:
    (config.home() / "logs").mkdir(parents=True, exist_ok=True)
    return True


if __name__ == "__main__":
    main()
