"""Durations as people type them, and limits said back in their units (lockd.core.durations)."""

from __future__ import annotations

import pytest

from lockd.core.durations import in_unit, parse, within
from lockd.core.errors import LockdError
from lockd.local import config

DAY = 86400


@pytest.mark.parametrize(
    ("text", "seconds", "unit"),
    [
        ("90s", 90, "s"),
        ("15m", 900, "m"),
        ("8h", 8 * 3600, "h"),
        ("2d", 2 * DAY, "d"),
        ("1h30m", 5400, "h"),
        ("1d2h3m4s", DAY + 2 * 3600 + 3 * 60 + 4, "d"),
        ("1.5h", 5400, "h"),
        (" 2H ", 7200, "h"),
        ("1h 30m", 5400, "h"),
    ],
)
def test_what_people_type(text: str, seconds: float, unit: str) -> None:
    assert parse(text, "--ttl") == (seconds, unit)


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("5", "'5' has no unit: write 5s, 5m, 5h or 5d"),
        ("soon", "is not a duration like 90s"),
        ("", "is not a duration"),
        ("-5m", "is not a duration"),
        ("5w", "is not a duration"),
        ("h", "is not a duration"),
        ("30m1h", "each unit once, largest first"),
        ("1h1h", "each unit once, largest first"),
    ],
)
def test_what_is_refused_says_what_to_type(text: str, words: str) -> None:
    with pytest.raises(LockdError) as err:
        parse(text, "--ttl")
    assert err.value.kind == "invalid" and "--ttl" in err.value.message
    assert words in err.value.message


def test_a_bare_number_counts_in_the_unit_a_setting_names() -> None:
    assert parse("60", "LOCKD_LEASE_SECONDS", bare="s") == (60, "s")
    assert parse("2m", "LOCKD_LEASE_SECONDS", bare="s") == (120, "m")


@pytest.mark.parametrize(
    ("text", "limit"),
    [("99999d", "at most 30d"), ("1000h", "at most 720h"), ("50000m", "at most 43200m"),
     ("9999999s", "at most 2592000s"), ("29d25h", "at most 30d")],
)  # fmt: skip
def test_limits_are_said_in_the_units_typed(text: str, limit: str) -> None:
    with pytest.raises(LockdError) as err:
        within(text, "--ttl", 0, 30 * DAY, low_open=True)
    assert f"--ttl {text} is longer than the limit: {limit}" == err.value.message
    assert "ttl_seconds" not in err.value.message


def test_the_lower_limit_too() -> None:
    with pytest.raises(LockdError, match="--ttl 0m is too short: more than 0m"):
        within("0m", "--ttl", 0, 30 * DAY, low_open=True)
    assert within("30d", "--ttl", 0, 30 * DAY, low_open=True) == 30 * DAY


def test_in_unit() -> None:
    assert [in_unit(30 * DAY, u) for u in "dhms"] == ["30d", "720h", "43200m", "2592000s"]
    assert in_unit(90, "m") == "1.5m"


@pytest.mark.parametrize(
    ("raw", "says"),
    [("99999d", "LOCKD_LEASE_SECONDS 99999d is longer than the limit: at most 1d"),
     ("100000", "LOCKD_LEASE_SECONDS 100000 is longer than the limit: at most 86400s"),
     ("soon", "LOCKD_LEASE_SECONDS='soon' is not a number of seconds (or 90s, 15m, 1h30m)")],
)  # fmt: skip
def test_a_setting_out_of_range_is_said_in_its_units(
    monkeypatch: pytest.MonkeyPatch, raw: str, says: str
) -> None:
    """The broker's settings answer as --ttl does: in the unit typed, a bare number in
    seconds (the unit the setting's name says)."""
    monkeypatch.setenv("LOCKD_LEASE_SECONDS", raw)
    with pytest.raises(LockdError) as err:
        config.lease_seconds()
    assert says in err.value.message, err.value.message
    monkeypatch.setenv("LOCKD_LEASE_SECONDS", "1h30m")
    assert config.lease_seconds() == 5400
