"""Scripted stand-ins for the OpenAI Responses API (Codex CLI) and the Gemini
API (Gemini CLI), beside `fake_anthropic.py` for Claude Code, on the server of
`fake_server.py`.

Each listens on 127.0.0.1 (a random port), records every request, and answers
each *turn* request (one that offers tools) with the next step of its script:
`shell(cmd)`, `call(name, **args)` or `say(text)`, or a function of the request
returning one, so a test can answer what the model was shown. When the script
runs out the model says "done" and the turn ends. A test reads what reached
the model (tool outputs, hook context) from `fake.turns[i].text()`.

- `FakeResponses`: `POST /v1/responses` with `stream: true`, answered with the
  Responses SSE events Codex reads (`response.created`,
  `response.output_item.done`, `response.completed`). `shell(cmd)` becomes a
  call of whichever shell tool the request offers (`exec_command` {cmd},
  `shell_command` {command}, or `shell` {command: [argv]}).
- `FakeGemini`: `/v1beta/models/<model>:generateContent` and
  `:streamGenerateContent?alt=sse`, answered with `candidates[0].content.parts`
  (a `functionCall` part for a tool call). Requests without tools (the CLI's
  router, titles) get a routing answer and consume nothing.
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass, field
from typing import Any

from tests.clients.fake_server import FakeServer, Handler, Recorded

_ids = itertools.count(1)


@dataclass
class Step:
    """One answer of the model: a tool call (name, args) or a text."""

    name: str | None = None
    args: dict[str, Any] = field(default_factory=dict)
    text: str | None = None
    shell: str | None = None  # a shell command, for whichever shell tool is offered
    call_id: str = field(default_factory=lambda: f"call_fake{next(_ids):04d}")


def call(name: str, **args: Any) -> Step:
    return Step(name=name, args=args)


def shell(command: str) -> Step:
    return Step(shell=command)


def say(text: str) -> Step:
    return Step(text=text)


class Request(Recorded):
    """One request as Codex or Gemini CLI sent it."""

    def text(self) -> str:
        """Everything in the request's conversation, as one string."""
        return json.dumps(self.body.get("input") or self.body.get("contents") or [])

    def tool_names(self) -> list[str]:
        names = []
        for tool in self.body.get("tools") or []:
            if "name" in tool:
                names.append(tool["name"])
            for decl in tool.get("functionDeclarations") or tool.get("function_declarations") or []:
                names.append(decl.get("name", ""))
        return names


class _Fake(FakeServer[Request, Step]):
    request_type = Request

    def step_for(self, request: Request) -> Step:
        return self.next_step(request) or say("done")


# ---- OpenAI Responses (Codex) ----------------------------------------------------
class FakeResponses(_Fake):
    """`base_url` goes into `[model_providers.X]`."""

    client = "Codex"

    @property
    def base_url(self) -> str:
        return f"{self.url}/v1"

    def is_turn(self, request: Request) -> bool:
        return request.path.startswith("/v1/responses") and bool(request.body.get("tools"))

    def answer(self, handler: Handler, request: Request) -> None:
        if request.method != "POST" or not request.path.startswith("/v1/responses"):
            return handler.json(404, {"error": {"message": "fake: " + request.path}})
        step = self.step_for(request) if self.is_turn(request) else say("ok")
        item = self._item(step, request)
        rid = f"resp_fake{next(_ids):04d}"
        usage = {
            "input_tokens": 10,
            "input_tokens_details": {"cached_tokens": 0},
            "output_tokens": 1,
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": 11,
        }
        handler.sse(
            [
                ("response.created", {"type": "response.created", "response": {"id": rid}}),
                ("response.output_item.done", {"type": "response.output_item.done", "item": item}),
                (
                    "response.completed",
                    {"type": "response.completed", "response": {"id": rid, "usage": usage}},
                ),
            ]
        )

    @staticmethod
    def _item(step: Step, request: Request) -> dict[str, Any]:
        if step.text is not None:
            return {
                "type": "message",
                "role": "assistant",
                "id": f"msg_fake{next(_ids):04d}",
                "content": [{"type": "output_text", "text": step.text}],
            }
        name, args = step.name, step.args
        if step.shell is not None:
            offered = request.tool_names()
            if "exec_command" in offered:
                name, args = "exec_command", {"cmd": step.shell}
            elif "shell_command" in offered:
                name, args = "shell_command", {"command": step.shell}
            else:
                name, args = "shell", {"command": ["bash", "-lc", step.shell]}
        return {
            "type": "function_call",
            "id": f"fc_fake{next(_ids):04d}",
            "call_id": step.call_id,
            "name": name,
            "arguments": json.dumps(args),
        }


# ---- Gemini API (Gemini CLI) ------------------------------------------------------
class FakeGemini(_Fake):
    """`base_url` goes into GOOGLE_GEMINI_BASE_URL."""

    client = "Gemini CLI"

    @property
    def base_url(self) -> str:
        return self.url

    def answer(self, handler: Handler, request: Request) -> None:
        path = request.path.split("?", 1)[0]
        if ":countTokens" in path:
            return handler.json(200, {"totalTokens": 10})
        if ":generateContent" not in path and ":streamGenerateContent" not in path:
            return handler.json(404, {"error": {"code": 404, "message": "fake: " + path}})
        if self.is_turn(request):
            step = self.step_for(request)
        else:  # the router's choice, a title or a summary: consumes nothing
            step = say(json.dumps({"reasoning": "scripted", "model_choice": "flash"}))
        if step.text is not None:
            part: dict[str, Any] = {"text": step.text}
        else:
            name, args = step.name, step.args
            if step.shell is not None:
                name, args = "run_shell_command", {"command": step.shell}
            part = {"functionCall": {"name": name, "args": args}}
        data = {
            "candidates": [
                {"content": {"role": "model", "parts": [part]}, "finishReason": "STOP", "index": 0}
            ],
            "usageMetadata": {
                "promptTokenCount": 10,
                "candidatesTokenCount": 1,
                "totalTokenCount": 11,
            },  # fmt: skip
            "modelVersion": "gemini-fake",
        }
        if ":streamGenerateContent" in path:
            handler.sse([(None, data)])
        else:
            handler.json(200, data)
