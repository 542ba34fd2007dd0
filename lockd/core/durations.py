"""Durations as people type them (`90s`, `15m`, `1h30m`, `2d`), and limits
said back in the units they typed. One parser for the CLI's `--ttl` and the
broker's `LOCKD_*_SECONDS` settings. Pure."""

from __future__ import annotations

import re

from lockd.core.errors import invalid

SIZES = {"d": 86400, "h": 3600, "m": 60, "s": 1}  # largest first
_NUMBER = r"\d+(?:\.\d+)?"
_PART = re.compile(rf"({_NUMBER})([dhms])")
_WHOLE = re.compile(rf"(?:{_NUMBER}[dhms])+")
EXAMPLES = "like 90s, 15m, 1h30m, 8h or 2d"


def parse(text: str, name: str, bare: str | None = None) -> tuple[float, str]:
    """(seconds, the largest unit typed). `name` is what the user set
    (`--ttl`, `LOCKD_LEASE_SECONDS`), for the error. A bare number counts in
    `bare` (a setting whose name says its unit); with None it is refused:
    `--ttl 5` could mean five of anything."""
    raw = text.strip().lower().replace(" ", "")
    if bare is not None and re.fullmatch(_NUMBER, raw):
        return float(raw) * SIZES[bare], bare
    if re.fullmatch(_NUMBER, raw):
        raise invalid(f"{name} {text!r} has no unit: write {raw}s, {raw}m, {raw}h or {raw}d")
    if not _WHOLE.fullmatch(raw):
        raise invalid(f"{name} {text!r} is not a duration {EXAMPLES}")
    parts = _PART.findall(raw)
    units = [u for _, u in parts]
    if len(set(units)) != len(units) or units != sorted(units, key=list(SIZES).index):
        raise invalid(f"{name} {text!r}: give each unit once, largest first (like 1h30m)")
    return sum(float(n) * SIZES[u] for n, u in parts), units[0]


def in_unit(seconds: float, unit: str) -> str:
    """`seconds` written in `unit`: 30 days as `30d`, `720h` or `43200m`."""
    value = seconds / SIZES[unit]
    return f"{int(value)}{unit}" if value == int(value) else f"{value:.2f}".rstrip("0") + unit


def within(
    text: str, name: str, low: float, high: float, bare: str | None = None, low_open: bool = False
) -> float:
    """Seconds of a duration the user typed, in [low, high] (low excluded when
    `low_open`); refused in the units they typed: `--ttl 99999d` is answered
    in days, `--ttl 1000h` in hours."""
    seconds, unit = parse(text, name, bare)
    if seconds > high:
        most = in_unit(high, unit)
        raise invalid(f"{name} {text.strip()} is longer than the limit: at most {most}")
    if seconds < low or (low_open and seconds == low):
        least = "more than" if low_open else "at least"
        raise invalid(f"{name} {text.strip()} is too short: {least} {in_unit(low, unit)}")
    return seconds
