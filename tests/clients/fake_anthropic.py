"""A scripted stand-in for the Anthropic Messages API, for driving the real
Claude Code CLI without a model.

`FakeAnthropic(script)` listens on 127.0.0.1 (a random port) and answers
`POST /v1/messages` with the streaming events Claude Code expects
(`message_start`, `content_block_start`/`_delta`/`_stop`, `message_delta`,
`message_stop`). Each answer to a *turn* request (one that offers tools) is the
next step of the script: `tool_use(name, **input)` or `say(text)`, or a
function of the request returning one, so a test can answer what the model was
shown. A tool name may be a pattern (`mcp__*lockd__whoami`): the answer calls
the one tool of that shape the request offers, as a model would read the name
off its tool list (an MCP server's tools are named after the server, which
depends on how it was configured). When the script runs out the model says
"done" and the turn ends.
Requests without tools (titles, summaries, quota probes) get a short text and
consume nothing. `count_tokens` gets a count. Every request is recorded: a test
reads exactly what reached the model (tool results, hook context, reminders)
from `fake.requests`.

A step may `hold` an event: the answer waits until the test sets it, which
keeps that Claude Code process alive (and its MCP session registered) while
another one runs.
"""

from __future__ import annotations

import fnmatch
import itertools
import json
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from tests.clients.fake_server import FakeServer, Handler, Recorded

HOLD_LIMIT = 120.0  # a held answer gives up (and says so) rather than hang a test


@dataclass
class Step:
    """One answer of the model: content blocks and why it stopped."""

    blocks: list[dict[str, Any]]
    stop_reason: str
    hold: threading.Event | None = None

    def held(self, event: threading.Event) -> Step:
        """The same answer, given only once `event` is set."""
        return Step(self.blocks, self.stop_reason, event)

    @property
    def id(self) -> str:
        """The tool_use id, to find this call's result in a later request."""
        return next(b["id"] for b in self.blocks if b["type"] == "tool_use")

    @property
    def name(self) -> str:
        """The tool called (once answered, the real name a pattern stood for)."""
        return next(b["name"] for b in self.blocks if b["type"] == "tool_use")

    def resolve(self, request: Request) -> None:
        """Tool name patterns replaced, in place, by the one tool of each
        shape `request` offers; AssertionError when there is not exactly one."""
        for block in self.blocks:
            if block["type"] != "tool_use" or not any(c in block["name"] for c in "*?["):
                continue
            offered = request.offered_tools()
            found = fnmatch.filter(offered, block["name"])
            if len(found) != 1:
                raise AssertionError(
                    f"the request offers {len(found)} tools like {block['name']}: "
                    f"{found or sorted(offered)}"
                )
            block["name"] = found[0]


_ids = itertools.count(1)


def tool_use(name: str, **tool_input: Any) -> Step:
    block = {"type": "tool_use", "id": f"toolu_fake{next(_ids):04d}", "name": name}
    return Step([{**block, "input": tool_input}], "tool_use")


def say(text: str) -> Step:
    return Step([{"type": "text", "text": text}], "end_turn")


class Request(Recorded):
    """One request as Claude Code sent it."""

    @property
    def is_turn(self) -> bool:
        return self.path.startswith("/v1/messages") and bool(self.body.get("tools"))

    @property
    def messages(self) -> list[dict[str, Any]]:
        return list(self.body.get("messages") or [])

    @property
    def tool_names(self) -> list[str]:
        return [t.get("name", "") for t in self.body.get("tools") or []]

    def offered_tools(self) -> list[str]:
        """Every tool the model may call: those in `tools`, and the deferred
        ones (MCP servers' tools, in 2.1.332) that the conversation lists one
        name a line for ToolSearch to load."""
        deferred = re.findall(r"^mcp__[\w-]+$", self.text(), re.M)
        return list(dict.fromkeys([*self.tool_names, *deferred]))

    def blocks(self) -> Iterator[dict[str, Any]]:
        for message in self.messages:
            content = message.get("content")
            if isinstance(content, str):
                yield {"type": "text", "text": content, "role": message.get("role")}
                continue
            for block in content or []:
                yield {**block, "role": message.get("role")}

    def tool_results(self) -> dict[str, dict[str, Any]]:
        """tool_use_id → {"text", "is_error"} for every tool result in the conversation."""
        out = {}
        for block in self.blocks():
            if block.get("type") == "tool_result":
                out[block["tool_use_id"]] = {
                    "text": _text_of(block.get("content")),
                    "is_error": bool(block.get("is_error")),
                }
        return out

    def text(self) -> str:
        """Everything the model is shown in the conversation, as one string:
        user and system turns, reminders, tool results (not the system prompt)."""
        parts = []
        for block in self.blocks():
            if block.get("type") == "text":
                parts.append(block.get("text", ""))
            elif block.get("type") == "tool_result":
                parts.append(_text_of(block.get("content")))
        return "\n".join(parts)

    def last_text(self) -> str:
        """What is new in this request: everything after the model's last answer."""
        messages = self.messages
        last = max((i for i, m in enumerate(messages) if m.get("role") == "assistant"), default=-1)
        return Request(
            self.method, self.path, self.headers, {"messages": messages[last + 1 :]}
        ).text()


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    return "\n".join(
        c.get("text", "") for c in content or [] if isinstance(c, dict) and c.get("type") == "text"
    )


class FakeAnthropic(FakeServer[Request, Step]):
    """Use as a context manager; `url` goes into ANTHROPIC_BASE_URL."""

    request_type = Request
    client = "Claude Code"

    def is_turn(self, request: Request) -> bool:
        return request.is_turn

    def step_for(self, request: Request) -> Step:
        """The script's next step for a turn (with its tool name patterns
        resolved), a short text for any other request."""
        if not request.is_turn:
            return say("ok")
        step = self.next_step(request) or say("done")
        step.resolve(request)
        return step

    def broken(self, message: str) -> dict[str, Any]:
        return {"type": "error", "error": {"type": "api_error", "message": message}}

    def answer(self, handler: Handler, request: Request) -> None:
        path = request.path.split("?", 1)[0]
        if request.method == "POST" and path == "/v1/messages/count_tokens":
            return handler.json(200, {"input_tokens": 1000})
        if path == "/api/hello":  # its connectivity check (off with nonessential traffic)
            return handler.json(200, {"message": "hello"})
        if request.method != "POST" or path != "/v1/messages":
            # Anything else (nothing else seen from 2.1.332) is answered at
            # once, so nothing waits for it.
            error = {"type": "not_found_error", "message": "fake: " + path}
            return handler.json(404, {"type": "error", "error": error})
        step = self.step_for(request)
        if step.hold is not None and not step.hold.wait(HOLD_LIMIT):
            self.errors.append("a held answer was never released")
        if request.body.get("stream"):
            handler.sse(_events(request.body, step))
        else:
            handler.json(200, _message(request.body, step))


_USAGE = {"input_tokens": 10, "output_tokens": 1}


def _message(body: dict[str, Any], step: Step) -> dict[str, Any]:
    return {
        "id": f"msg_fake{next(_ids):04d}",
        "type": "message",
        "role": "assistant",
        "model": body.get("model", "claude"),
        "content": step.blocks,
        "stop_reason": step.stop_reason,
        "stop_sequence": None,
        "usage": _USAGE,
    }


def _events(body: dict[str, Any], step: Step) -> Iterator[tuple[str, dict[str, Any]]]:
    start = {**_message(body, step), "content": [], "stop_reason": None}
    yield "message_start", {"type": "message_start", "message": start}
    for index, block in enumerate(step.blocks):
        if block["type"] == "tool_use":
            opened = {**block, "input": {}}
            delta = {"type": "input_json_delta", "partial_json": json.dumps(block["input"])}
        else:
            opened = {"type": "text", "text": ""}
            delta = {"type": "text_delta", "text": block["text"]}
        yield (
            "content_block_start",
            {
                "type": "content_block_start",
                "index": index,
                "content_block": opened,
            },
        )
        yield "content_block_delta", {"type": "content_block_delta", "index": index, "delta": delta}
        yield "content_block_stop", {"type": "content_block_stop", "index": index}
    yield (
        "message_delta",
        {
            "type": "message_delta",
            "delta": {"stop_reason": step.stop_reason, "stop_sequence": None},
            "usage": {"output_tokens": 1},
        },
    )
    yield "message_stop", {"type": "message_stop"}
