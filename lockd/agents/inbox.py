"""`lockd inbox --hook`: for Claude Code's UserPromptSubmit / PostToolUse
hooks. Prints the agent session's unread messages into the agent's context
(hook JSON with `additionalContext`) and marks them read, so agents whose
client drops channel notifications still see every message. Silent and exit 0
when there is nothing to say or no broker: a hook must never get in the way."""

from __future__ import annotations

import json
import sys
import time

from lockd.client.api import Api
from lockd.client.sync import Client
from lockd.core.errors import LockdError
from lockd.local.sessions import session_for

TYPE_CHECKING = False
if TYPE_CHECKING:  # runs on every prompt and tool use: typing stays out
    from typing import Any


def format_messages(messages: list[dict[str, Any]]) -> str:
    from lockd.core.render import age  # only when there is something to say

    lines, now = [f"lockd: {len(messages)} unread message(s) from other peers:"], time.time()
    for m in messages:
        # lockd cannot tell whether the client showed a pushed notification
        # (Claude Code drops them without the channel flag, and in -p mode).
        pushed = (
            f" (also pushed as <channel message_id=\"{m['message_id']}\">: skip it if you saw that)"
            if m.get("pushed")
            else ""
        )
        lines.append(
            f"- [{m['message_id']}, {age(m['sent_at'], now)} ago] {m['from_name']} "
            f"({m['from_id']}){pushed}: {m['text']}"
        )
    lines.append("Reply with the lockd send_message tool (to = the sender's name or id).")
    return "\n".join(lines)


def run_hook(stdin: str | None = None) -> int:
    raw = stdin if stdin is not None else (sys.stdin.read() if not sys.stdin.isatty() else "")
    try:
        payload = json.loads(raw) if raw.strip() else {}
    except ValueError:
        payload = {}
    event = payload.get("hook_event_name") or "UserPromptSubmit"
    session = session_for(payload if isinstance(payload, dict) else None)
    if session is None or not session.get("credential"):
        return 0
    try:
        data = Client(credential=session["credential"], timeout=2).call(Api.inbox(mark_read=True))
    except LockdError:
        return 0
    messages = data.get("messages") or []
    if messages:
        print(
            json.dumps(
                {
                    "hookSpecificOutput": {
                        "hookEventName": event,
                        "additionalContext": format_messages(messages),
                    }
                }
            )
        )
    return 0
