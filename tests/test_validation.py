"""The edge's checks on strings and ids (lockd/validation.py), as pure
functions: what each kind of text refuses and accepts, ids, excerpts."""

from __future__ import annotations

import json

import pytest

from lockd.core import validation
from lockd.core.errors import LockdError
from lockd.core.models import parse_key
from lockd.core.validation import LINE, PATH, TEXT


@pytest.mark.parametrize(
    ("value", "kind", "needle"),
    [
        ("a\ud800b", LINE, "lone surrogate U+D800 at position 1"),
        ("\udfff", PATH, "lone surrogate U+DFFF"),
        ("x\udc80", TEXT, "lone surrogate"),
        ("a\x00b", PATH, "U+0000 (NUL) at position 1"),
        ("a\x00b", TEXT, "NUL"),
        ("a\nb", LINE, "U+000A (line feed)"),
        ("a\tb", LINE, "tab"),
        ("\x1b[2J", TEXT, "escape"),
        ("\x85", TEXT, "U+0085"),
        ("a\u2028b", LINE, "line separator"),
        ("\x7f", LINE, "delete"),
    ],
)
def test_refused(value: str, kind: str, needle: str) -> None:
    why = validation.problem(value, kind)
    assert why is not None and needle in why, why
    with pytest.raises(LockdError) as err:
        validation.check_text(value, "summary", kind)
    assert err.value.kind == "invalid" and err.value.message.startswith("summary ")
    json.dumps(err.value.to_json()).encode()  # its answer can be sent: no raw surrogate


@pytest.mark.parametrize(
    ("value", "kind"),
    [
        ("", LINE),
        ("refactor the café module ✓ 🦀 \u202e", LINE),
        ("line one\nline two\r\n\ttabbed", TEXT),
        ("dir with\ttab/and\nnewline", PATH),
        ("caf\\xe9.txt", PATH),  # a non-UTF-8 name as lockd/gitcmd.py spells it
    ],
)
def test_accepted(value: str, kind: str) -> None:
    assert validation.problem(value, kind) is None
    assert validation.check_text(value, "x", kind) == value


def test_required_refuses_blank() -> None:
    with pytest.raises(LockdError, match="reason is empty"):
        validation.check_text(" \t", "reason", required=True)


@pytest.mark.parametrize(
    ("value", "want"),
    [("i17", 17), ("17", 17), ("i9223372036854775807", 2**63 - 1)],
)
def test_ids(value: str, want: int) -> None:
    assert validation.parse_id(value, "i", "intent_ids") == want
    assert parse_key(value, "i") == want


@pytest.mark.parametrize(
    ("value", "needle"),
    [
        ("i\u00b2", "ASCII digits"),  # "²".isdigit() is True; int("²") raises
        ("i\u0663", "ASCII digits"),  # Arabic-Indic three: int() would take it
        ("\uff11", "ASCII digits"),  # fullwidth one
        ("i" + "9" * 30, "out of range"),
        ("i9223372036854775808", "out of range"),
        ("i0", "out of range"),
        ("i-1", "ASCII digits"),
        ("i", "ASCII digits"),
        ("i1 ", "ASCII digits"),
        ("9" * 100_000, "out of range"),  # never handed to int()
    ],
)
def test_bad_ids(value: str, needle: str) -> None:
    why = validation.id_problem(value, "i")
    assert why is not None and needle in why
    with pytest.raises(LockdError) as err:
        validation.parse_id(value, "i", "intent_ids")
    assert len(err.value.message) < 200
    if value == value.strip() and value != "i0":  # the library's parse strips, takes 0
        assert parse_key(value, "i") is None


def test_check_field_by_name() -> None:
    assert validation.check_field("patterns", ["src/", "*.md"]) == ["src/", "*.md"]
    assert validation.check_field("ttl_seconds", 5) == 5  # not a string: the caller's type check
    assert validation.check_field("message", "two\nlines") == "two\nlines"
    with pytest.raises(LockdError, match=r"patterns\[1\] holds U\+0000"):
        validation.check_field("patterns", ["src/", "a\x00"])
    with pytest.raises(LockdError, match=r"intent_ids\[0\] 'i²' is not an id"):
        validation.check_field("intent_ids", ["i²"])
    with pytest.raises(LockdError, match="summary holds U\\+000A"):
        validation.check_field("summary", "a\nb")


def test_excerpts_are_short_and_sendable() -> None:
    big = "x" * 100_000 + "\ud800"
    shown = validation.excerpt(big)
    assert len(shown) < 100 and "100001 chars" in shown
    assert validation.excerpt("\ud800") == "'\\ud800'"
    message = validation.safe_message("path " + big)
    assert len(message) <= 2000
    json.dumps({"message": validation.safe_message("bad \ud800 \x00")}, ensure_ascii=False).encode()
