"""The characters and ids that outside input may carry, checked once at each
edge (HTTP bodies and query strings, MCP tool arguments) before anything
reaches the registry or a database.

Why: a lone surrogate (`"\\ud800"` is valid JSON) cannot be encoded to UTF-8,
PostgreSQL refuses NUL in text, and `str.isdigit()` / `int()` accept digits
such as `²` or `٣`: each was a 500 deep inside, after memory had changed.

Three kinds of text:
- LINE: names, summaries, reasons, patterns, recipients, keys: one line of
  printable text (no control characters at all, no line separators).
- TEXT: message bodies: tab, newline and carriage return are fine too.
- PATH: paths, working directories, repo ids: file names may hold almost
  anything, so only NUL is refused.
None of them may hold a lone surrogate.

Pure functions, no pydantic: the MCP server and the CLI import this too.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any

from lockd.core.errors import invalid

LINE, TEXT, PATH = "line", "text", "path"
MAX_ID = 2**63 - 1  # ids are 64-bit integers in SQLite and PostgreSQL
EXCERPT_CHARS = 60

_BAD = {
    LINE: re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]"),
    TEXT: re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]"),
    PATH: re.compile("[\x00\ud800-\udfff]"),
}
_WHAT = {
    LINE: "one line of printable text",
    TEXT: "printable text (tabs and line breaks are fine)",
    PATH: "a path without NUL characters",
}
_DIGITS = re.compile(r"[0-9]+")  # ASCII only: str.isdigit() and \d take ² and ٣ too


def problem(value: str, kind: str = LINE) -> str | None:
    """What is wrong with `value` as text of this kind, or None if nothing."""
    found = _BAD[kind].search(value)
    if found is None:
        return None
    char = found.group()
    point, where = ord(char), found.start()
    if 0xD800 <= point <= 0xDFFF:
        return (
            f"holds a lone surrogate U+{point:04X} at position {where} (half of a UTF-16 "
            "pair, not a character): send real text, encoded as UTF-8"
        )
    label = _CONTROL_NAMES.get(point) or unicodedata.name(char, "a control character")
    return f"holds U+{point:04X} ({label}) at position {where}: it must be {_WHAT[kind]}"


def check_text(value: str, field: str, kind: str = LINE, required: bool = False) -> str:
    """`value` unchanged if it is text of this kind; else LockdError(invalid)
    naming the field. required: blank (empty or only spaces) is refused too."""
    if not isinstance(value, str):
        raise invalid(f"{field} must be a string, not {type(value).__name__}", field=field)
    if required and not value.strip():
        raise invalid(f"{field} is empty: give some text", field=field)
    why = problem(value, kind)
    if why is not None:
        raise invalid(f"{field} {why}", field=field)
    return value


def id_problem(value: str, prefix: str) -> str | None:
    """What is wrong with `value` as an id such as i17 (prefix "i") or a bare
    17, or None. Only ASCII digits, 1 to MAX_ID."""
    digits = value[len(prefix) :] if value.startswith(prefix) else value
    if not _DIGITS.fullmatch(digits):
        return f"is not an id of the form {prefix}123 (ASCII digits)"
    if len(digits) > len(str(MAX_ID)) or not 1 <= int(digits) <= MAX_ID:
        return f"is out of range: ids run from {prefix}1 to {prefix}{MAX_ID}"
    return None


def parse_id(value: str, prefix: str, field: str) -> int:
    """`i17` (or `17`) -> 17; LockdError(invalid) naming the field if not an id."""
    if not isinstance(value, str):
        raise invalid(f"{field} must be a string such as {prefix}17", field=field)
    why = id_problem(value, prefix)
    if why is not None:
        raise invalid(f"{field} {excerpt(value)} {why}", field=field)
    return int(value[len(prefix) :] if value.startswith(prefix) else value)


# What each argument the broker takes is, by its name, wherever it arrives
# (HTTP body or query, MCP tool argument, CLI option): `check_field` looks here.
FIELD_KINDS = {
    **dict.fromkeys(
        (
            "name",
            "summary",
            "reason",
            "pattern",
            "patterns",
            "to",
            "client",
            "host",
            "credential",
            "request_key",
            "viewer",
            "committer",
            "scope",
            "peer",
            "ticket",
            "mode",
            "kind",
            "hook",
            "branch",  # activity and the forecast (issue 18)
            "note",
            "a",
            "b",
        ),
        LINE,
    ),
    "message": TEXT,
    **dict.fromkeys(("cwd", "repo_id", "repo_root", "repo", "repo_keys", "path", "paths"), PATH),
    **dict.fromkeys(("edited", "uncommitted", "unpushed"), PATH),
}
ID_PREFIXES = {"message_id": "m", "message_ids": "m", "intent_id": "i", "intent_ids": "i"}


def check_field(name: str, value: Any) -> Any:
    """`value` unchanged if it is fit for the argument `name` (a list: each
    item; None and non-strings pass, for the caller's type check); else
    LockdError(invalid) naming it, as `patterns[2]` for a list's item."""
    items = list(enumerate(value)) if isinstance(value, list) else [(None, value)]
    for index, item in items:
        if not isinstance(item, str):
            continue
        where = name if index is None else f"{name}[{index}]"
        if name in ID_PREFIXES:
            why = id_problem(item, ID_PREFIXES[name])
            if why is not None:
                raise invalid(f"{where} {excerpt(item)} {why}", field=name)
        elif name in FIELD_KINDS:
            check_text(item, where, FIELD_KINDS[name])
    return value


def excerpt(value: Any, limit: int = EXCERPT_CHARS) -> str:
    """A short, printable, JSON-safe rendering of what a caller sent, for an
    error message: never the whole of a large input, never a raw surrogate."""
    text = repr(value)  # escapes control characters and lone surrogates
    if len(text) <= limit:
        return text
    size = f"{len(value)} chars" if isinstance(value, str | bytes | list | dict) else "long"
    return f"{text[: limit - 3]}... ({size})"


def safe_message(message: str, limit: int = 2000) -> str:
    """An error message fit for a JSON answer: encodable, and capped, since a
    message may quote input (a path, a pattern)."""
    if len(message) > limit:
        message = message[: limit - 20] + f"... ({len(message)} chars)"
    if _BAD[PATH].search(message):  # NUL or a surrogate quoted raw: escape it
        message = message.encode("utf-8", "backslashreplace").decode().replace("\x00", "\\x00")
    return message


_CONTROL_NAMES = {
    0x00: "NUL",
    0x09: "tab",
    0x0A: "line feed",
    0x0D: "carriage return",
    0x1B: "escape",
    0x7F: "delete",
    0x2028: "line separator",
    0x2029: "paragraph separator",
}
