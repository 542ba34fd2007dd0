"""`lockd inbox --hook`: for Claude Code's UserPromptSubmit / PostToolUse
hooks. Prints the agent session's unread messages into the agent's context
(hook JSON with `additionalContext`) and marks them read, so agents whose
client drops channel notifications still see every message. Silent and exit 0
when there is nothing to say or no broker: a hook must never get in the way."""

from __future__ import annotations

import json

from lockd.agents import decisions, hookrun

format_messages = decisions.format_messages  # where callers found it first


def run_hook(stdin: str | None = None) -> int:
    payload = hookrun.read_payload("inbox", stdin) or {}
    text = decisions.unread(payload)
    if text:
        event = payload.get("hook_event_name") or "UserPromptSubmit"
        print(
            json.dumps({"hookSpecificOutput": {"hookEventName": event, "additionalContext": text}})
        )
    return 0
