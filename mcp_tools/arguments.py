"""What a tool's caller must pass, held as the HTTP API holds its bodies:
every tool's arguments strict (`"yes"` is not true, `"5"` is not a number)
and closed (an unknown argument is refused, not ignored), and a wrong one
answered with the argument, the value sent and what to pass instead, rather
than pydantic's dump with its documentation URLs.

The SDK (mcp 2.3) builds each tool's argument model from its signature and
offers no option for either, so `hold` tightens the models it built and
wraps `MCPServer.call_tool`, which its `tools/call` handler goes through."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from mcp.server import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from pydantic import ConfigDict, ValidationError

MAX_SHOWN = 5  # errors named in one answer
VALUE_CHARS = 60  # of a value quoted back
_KINDS = {  # a JSON schema type, said as what to pass: (one, several)
    "string": ("a string", "strings"),
    "number": ("a number", "numbers"),
    "integer": ("a whole number", "whole numbers"),
    "boolean": ("true or false", "booleans"),
    "object": ("an object", "objects"),
    "null": ("null (or leave it out)", "nulls"),
}


def hold(server: MCPServer) -> None:
    """Make every registered tool's arguments strict and closed, and say
    refusals plainly. Call once, after the tools are registered."""
    schemas: dict[str, dict[str, Any]] = {}
    for tool in server._tool_manager.list_tools():
        loose = tool.fn_metadata.arg_model
        config = ConfigDict(**{**loose.model_config, "extra": "forbid", "strict": True})
        strict = type(loose.__name__, (loose,), {"model_config": config, "__module__": __name__})
        tool.fn_metadata.arg_model = strict
        tool.parameters = strict.model_json_schema(by_alias=True)  # additionalProperties: false
        schemas[tool.name] = tool.parameters
    call_tool = server.call_tool

    async def checked_call_tool(name: str, arguments: dict[str, Any], context: Any = None) -> Any:
        try:
            return await call_tool(name, arguments, context)
        except ToolError as exc:
            cause = exc.__cause__
            if not isinstance(cause, ValidationError) or name not in schemas:
                raise
            raise ToolError(explain(name, schemas[name], cause.errors())) from cause

    server.call_tool = checked_call_tool  # type: ignore[method-assign]


def explain(tool: str, schema: dict[str, Any], errors: Iterable[Any]) -> str:
    """`announce_intent: argument notify_when_free is "yes": pass true or false`."""
    said: list[str] = []
    for err in errors:
        line = _one(tool, schema, err)
        if line not in said:
            said.append(line)
    more = len(said) - MAX_SHOWN
    return f"{tool}: " + "; ".join(said[:MAX_SHOWN]) + (f"; and {more} more" if more > 0 else "")


def _one(tool: str, schema: dict[str, Any], err: Any) -> str:
    loc = tuple(err.get("loc", ()))
    where = _where(loc)
    if err.get("type") == "extra_forbidden":
        takes = ", ".join(schema.get("properties", {})) or "no arguments"
        return f"unknown argument {where} (= {_shown(err.get('input'))}): {tool} takes {takes}"
    wanted = _describe(_schema_at(schema, loc))
    if err.get("type") == "missing":
        return f"argument {where} is missing: pass {wanted}"
    return f"argument {where} is {_shown(err.get('input'))}: pass {wanted}"


def _where(loc: tuple[Any, ...]) -> str:
    """('patterns', 2) -> patterns[2]; a made-up name cut short like any value."""
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text if len(text) <= 40 and text.isprintable() else _shown(text)


def _shown(value: Any) -> str:
    """The value as JSON (what the caller wrote), at most VALUE_CHARS characters."""
    try:
        text = json.dumps(value, ensure_ascii=True)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= VALUE_CHARS else f"{text[: VALUE_CHARS - 3]}..."


def _schema_at(schema: dict[str, Any], loc: tuple[Any, ...]) -> dict[str, Any]:
    """The part of a tool's input schema that `loc` points at, as far as it goes."""
    node = schema
    for part in loc:
        node = _non_null(node)
        if isinstance(part, int) and isinstance(node.get("items"), dict):
            node = node["items"]
        elif isinstance(part, str) and part in node.get("properties", {}):
            node = node["properties"][part]
        else:
            break
    return node


def _non_null(node: dict[str, Any]) -> dict[str, Any]:
    options = [o for o in node.get("anyOf", []) if o.get("type") != "null"]
    return options[0] if len(options) == 1 else node


def _describe(node: dict[str, Any]) -> str:
    """What to pass, from a JSON schema: `one of "repo", "machine"`, `a list of strings`."""
    if "enum" in node:
        return "one of " + ", ".join(json.dumps(v) for v in node["enum"])
    if "anyOf" in node:
        return " or ".join(_describe(o) for o in node["anyOf"])
    kind = node.get("type")
    if kind == "array":
        items = node.get("items", {})
        return f"a list of {_KINDS.get(items.get('type', ''), ('', 'values'))[1]}"
    return _KINDS.get(str(kind), ("a value of the type the tool's schema gives", ""))[0]
