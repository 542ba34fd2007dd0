"""The patterns of one claim call, tested at once against many live claims:
what lets an announce against 10,000 intents cost one pass, not one
automaton product per (pattern, intent) pair. Pure; exact (the same answers
as `patterns.overlaps`).

Each claim is seen `split`: the literal directories it starts with and what
it claims inside them (`/src/pkg1/**/*.py` is `**/*.py` inside
`src/pkg1/`). The call's patterns are one automaton (their union, one
accepting state each, so every answer is a set of patterns); the directories
are read into it once per directory (a memoized walk), and what is left is
decided once per (states reached, rest): a literal file by reading it on, a
file pattern by the directories before its last name (`reach`, cached) then
that name (`name_meets`, one pass), anything else by the product (`meet_all`).
"""

from __future__ import annotations

import sys

from lockd.core.automaton import DSTAR, DSTAR_PLUS, Glob
from lockd.core.memo import memo
from lockd.core.patterns import _dirs, _items, _nfa, _tail, literal_path
from lockd.core.product import meet_all, name_meets, name_tokens, reach, tokens_nbytes

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence


def split(pattern: str) -> tuple[str, str]:
    """(literal leading directories, what the pattern claims inside them as an
    anchored pattern): `/src/api/**/*.py` -> (`src/api/`, `/**/*.py`);
    (``, pattern) when there are none."""
    dirs = _dirs(pattern)
    return (dirs, _tail(pattern, dirs)) if dirs else ("", pattern)


class Probe:
    """`meets(dirs, tail)`: which of the call's patterns overlap a claim seen
    as `split`, as a bit set (`which` turns it into indices)."""

    __slots__ = ("patterns", "ignorecase", "glob", "_bits", "_at", "_seen", "_after")

    def __init__(self, patterns: Sequence[str], ignorecase: bool = False) -> None:
        self.patterns, self.ignorecase = tuple(patterns), ignorecase
        self.glob = _union(self.patterns, ignorecase)
        self._bits: list[tuple[int, int]] = []  # (accepting state bit, index of the pattern)
        base = 0
        for i, pattern in enumerate(self.patterns):
            g = _nfa(pattern, ignorecase)
            self._bits.append((g.accept << base, i))
            base += g.size
        self._at: dict[str, int] = {}
        self._seen: dict[tuple[int, str], int] = {}
        self._after: dict[tuple[int, str], int] = {}

    def which(self, hits: int) -> list[int]:
        return [i for bit, i in self._bits if hits & bit]

    def meets(self, dirs: str, tail: str) -> int:
        states = self.states(dirs)
        return self.decide(states, tail) if states else 0

    def states(self, dirs: str) -> int:
        """The union's states after `dirs` (0: no pattern reaches below them)."""
        states = self._at.get(dirs)
        if states is None:
            states = self._at[dirs] = self.glob.walk(dirs)
        return states

    def decide(self, states: int, tail: str) -> int:
        """`meets` for the states after the directories (`states`, not 0)."""
        key = (states, tail)
        got = self._seen.get(key)
        if got is None:
            got = self._seen[key] = self._decide(states, tail)
        return got

    def _decide(self, states: int, tail: str) -> int:
        glob = self.glob
        path = literal_path(tail)
        if path is not None:  # a plain file: read it on
            return glob.walk(path, states) & glob.accept
        last = _last_name(tail, self.ignorecase)
        if last is None:  # a tree, `src/*/`: the product
            return _meet_from(self.patterns, states, tail, self.ignorecase)
        head, tokens = last
        after = states
        if head is not None:  # where the directories before the name leave us
            key = (states, head)
            after = self._after.get(key)  # type: ignore[assignment]
            if after is None:
                after = self._after[key] = reach(glob, states, _dirs_nfa(head, self.ignorecase))
        return name_meets(glob, after, tokens) if after else 0


@memo(4 << 20, Glob.nbytes)
def _union(patterns: tuple[str, ...], ignorecase: bool) -> Glob:
    return Glob.union([_nfa(p, ignorecase) for p in patterns])


@memo(2 << 20, sys.getsizeof)
def _meet_from(patterns: tuple[str, ...], states: int, tail: str, ignorecase: bool) -> int:
    return meet_all(_union(patterns, ignorecase), states, _nfa(tail, ignorecase))


def _last_name_nbytes(last: tuple[str | None, tuple] | None) -> int:
    if last is None:
        return sys.getsizeof(None)
    return sys.getsizeof(last) + sys.getsizeof(last[0]) + tokens_nbytes(last[1])


@memo(2 << 20, _last_name_nbytes)
def _last_name(pattern: str, ignorecase: bool) -> tuple[str | None, tuple] | None:
    """A file pattern as (the directories before its last name, as `_dirs_nfa`
    takes them, or None when there are none; the last name's tokens)."""
    items = _items(pattern, ignorecase)
    if items[-1] == DSTAR_PLUS:
        return None
    head = pattern[: pattern.rfind("/") + 1]  # `` for a floating name: any directories
    return (None if head == "/" else head), name_tokens(items[-1])  # type: ignore[arg-type]


@memo(2 << 20, Glob.nbytes)
def _dirs_nfa(head: str, ignorecase: bool) -> Glob:
    """The directories `head` (from `_last_name`) stands for, ending at the
    start of the last name: `/**/x/`, or `` for any directories (floating)."""
    items = _items(head + "x", ignorecase) if head else (DSTAR, ())
    return Glob((*items[:-1], ()))
