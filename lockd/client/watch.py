"""An agent session's eye on its own checkout (run by `lockd-mcp`): report
its git activity when it changed, and refresh the repo's merge forecast when
anyone's activity changed, at most once a second per repo on this machine."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from lockd.client.activity import Scanner
from lockd.client.api import Api
from lockd.client.forecast import Forecaster, gate, matrix
from lockd.client.session import AgentSession
from lockd.core.errors import LockdError
from lockd.local import config

log = logging.getLogger("lockd.client.watch")
GATE_WAIT = 5.0  # a forecast asked for now waits this long at most for the repo's gate


class ActivityWatch:
    def __init__(self, session: AgentSession) -> None:
        self.session = session
        self.every, rescan = config.activity_seconds()
        self.scanner = Scanner(session.repo, rescan)
        self.forecaster = Forecaster(tuple(session.repo.keys or ()))
        self._version = -1
        self._task: asyncio.Task[None] | None = None
        self._refresh_lock = asyncio.Lock()

    def start(self) -> None:
        if self.every > 0 and self.session.repo.is_git:
            self._task = asyncio.create_task(self._forever())

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        await asyncio.to_thread(self.forecaster.close)

    async def _forever(self) -> None:
        while True:
            try:
                await self.tick()
            except LockdError as exc:
                log.info("activity scan skipped: %s", exc.message)
            except Exception:  # the watch must outlive any one bad scan
                log.exception("activity scan failed")
            await asyncio.sleep(self.every)

    async def tick(self) -> None:
        """One look: a scan when git's stamps moved (or the rescan is due);
        then the repo's version says whether the forecast is stale."""
        version = None
        if self.scanner.due():
            scan = await asyncio.to_thread(self.scanner.scan)
            if scan is not None:
                version = (await self.session.call(Api.report_activity(scan=scan)))["version"]
        if version is None:
            view = await self.session.call(Api.activity(self.session.repo.repo_id))
            version = view["version"]
        if version != self._version:
            await self.refresh()

    async def scan_now(self) -> None:
        """Report the checkout as it is this moment (the forecast tool's first step)."""
        if self.session.repo.is_git:
            self.scanner.forget()
            scan = await asyncio.to_thread(self.scanner.scan)
            if scan is not None:
                await self.session.call(Api.report_activity(scan=scan))

    async def refresh(self, wait: bool = False) -> dict[str, Any]:
        """Compute the forecast if the gate lets this process (`wait`: until it
        does, for someone asking now); either way the broker's view after it."""
        repo_id = self.session.repo.repo_id
        async with self._refresh_lock:
            deadline = asyncio.get_running_loop().time() + (GATE_WAIT if wait else 0)
            while True:
                view = await self._refresh_once(repo_id)
                if view is not None or asyncio.get_running_loop().time() >= deadline:
                    break
                await asyncio.sleep(0.05)
            if view is None:
                view = await self.session.call(Api.activity(repo_id))
        return matrix(view)

    async def _refresh_once(self, repo_id: str) -> dict[str, Any] | None:
        """The view after a refresh by this process; None when gated."""
        view = await self.session.call(Api.activity(repo_id))
        with gate(repo_id) as may:
            if not may:
                return None
            self._version = view["version"]
            verdicts = await asyncio.to_thread(self.forecaster.compute, repo_id, view["peers"])
            if verdicts:
                await self.session.call(Api.put_forecast(repo_id, verdicts))
                view = await self.session.call(Api.activity(repo_id))
        return view
