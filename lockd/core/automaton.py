"""Glob automata over character sets, run 64 states at a time. Pure: no I/O,
no syntax (lockd.core.patterns parses and hands over items); lockd.core.product meets
two of them.

A pattern is a chain of states 0..n-1 whose edges carry character sets
(unions of code-point intervals) and jump by a fixed offset: 0 (a `*` loop),
+1 or +2 (the next token; +2 skips the inner state of a `**`), -1 (the `/`
that ends a directory name inside `**`, or a tree's next name). No epsilon
edges. A set of states is an int (bit i = state i), so one step over a
character is a few AND/shift/OR operations on it, whatever the set.

Nothing builds automata over subsets of states. Matching a path is set
simulation, O(len(path) · n/64) word operations; the sets met are memoized
per pattern in a bounded cache, so a path whose prefix was seen costs a dict
lookup per character.
"""

from __future__ import annotations

import sys
from bisect import bisect_left

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs the git hook ~5 ms to import at run time
    from collections.abc import Sequence

MAX_CHAR = 0x10FFFF
SLASH, DOT = ord("/"), ord(".")
Intervals = tuple[tuple[int, int], ...]
ANY_BUT_SLASH: Intervals = ((0, SLASH - 1), (SLASH + 1, MAX_CHAR))
SLASH_ONLY: Intervals = ((SLASH, SLASH),)
DOTS: Intervals = ((DOT, DOT),)
PRINTABLE: Intervals = ((0x20, 0x7E), (0xA0, MAX_CHAR))  # no C0, DEL or C1 controls
NOT_DOT: Intervals = ((0, DOT - 1), (SLASH + 1, MAX_CHAR))  # nor `/`
DSTAR, DSTAR_PLUS = "**", "**+"  # `(?:[^/]+/)*` and a tree's `[^/]+(?:/[^/]+)*`
OFFSETS = (0, 1, 2, -1)  # slot of an edge by how far it jumps
DFA_CACHE = 256  # memoized state sets (and steps of each) per automaton; past it, unmemoized

# The names of a real path: not empty, not `.` or `..`. Name states: 0 at the
# start of a name, 1 after `.`, 2 after `..`, 3 a real name so far (the only
# one a path may end in or leave by `/`). Characters split three ways: `/`,
# `.`, and the rest; NAMES[part][state] is the next state (None: no path).
PARTS: tuple[Intervals, ...] = (SLASH_ONLY, DOTS, NOT_DOT)
NAMES: tuple[tuple[int | None, ...], ...] = ((None, None, None, 0), (1, 2, 3, 3), (3, 3, 3, 3))


# ---- character sets ------------------------------------------------------------------
def merge(iv: Sequence[tuple[int, int]]) -> Intervals:
    out: list[tuple[int, int]] = []
    for lo, hi in sorted(iv):
        if out and lo <= out[-1][1] + 1:
            out[-1] = (out[-1][0], max(out[-1][1], hi))
        else:
            out.append((lo, hi))
    return tuple(out)


def complement(iv: Intervals) -> Intervals:
    out, start = [], 0
    for lo, hi in iv:
        if lo > start:
            out.append((start, lo - 1))
        start = hi + 1
    if start <= MAX_CHAR:
        out.append((start, MAX_CHAR))
    return tuple(out)


def intersect(a: Intervals, b: Intervals) -> Intervals:
    out, i, j = [], 0, 0
    while i < len(a) and j < len(b):
        lo, hi = max(a[i][0], b[j][0]), min(a[i][1], b[j][1])
        if lo <= hi:
            out.append((lo, hi))
        if a[i][1] < b[j][1]:
            i += 1
        else:
            j += 1
    return tuple(out)


def fold(iv: Intervals) -> Intervals:
    """Add the other ASCII case of every letter in the set."""
    extra = []
    for lo, hi, shift in ((65, 90, 32), (97, 122, -32)):
        for a, b in intersect(iv, ((lo, hi),)):
            extra.append((a + shift, b + shift))
    return merge([*iv, *extra])


# ---- sizes, for the caches' budgets (lockd.core.memo) -------------------------------------
_PAIR = sys.getsizeof((0, 0)) + 2 * sys.getsizeof(MAX_CHAR)  # one interval: ints < 2**30


def intervals_nbytes(iv: Intervals) -> int:
    """Bytes of a character set as stored, counted from its length."""
    return sys.getsizeof(iv) + len(iv) * _PAIR


def items_nbytes(items: Sequence[Item]) -> int:
    """Bytes of a pattern's items (as `build` takes them), each set once."""
    getsize, token = sys.getsizeof, sys.getsizeof((True, ()))
    total, sets = getsize(items) + getsize(True) + getsize(False), {}
    for item in items:
        total += getsize(item)
        if type(item) is tuple:  # a segment; `**` and `**+` are the strings above
            total += len(item) * token
            sets.update((id(chars), chars) for _, chars in item)
    found = sets.values()
    return total + sum(map(getsize, found)) + _PAIR * sum(map(len, found))


def pick(iv: Intervals) -> str:
    """A readable character of a non-empty set, for example paths: a control
    character only when the set holds nothing else."""
    for preferred in (120, 97, 95, 48):  # x a _ 0
        for lo, hi in iv:
            if lo <= preferred <= hi:
                return chr(preferred)
    readable = intersect(iv, PRINTABLE)
    return chr((readable or iv)[0][0])


# ---- the automaton ---------------------------------------------------------------------
Item = object  # DSTAR, DSTAR_PLUS, or a segment: a tuple of (is_star, chars) tokens
Masks = tuple[int, int, int, int]  # source states of the edges, one int per OFFSETS slot
Edge = tuple[int, int, Intervals]
Names = tuple[int, int, int, int]  # state sets per name state
Move = tuple[int, int, Intervals]  # (dst, part of PARTS, chars)
StateMoves = tuple[tuple[Move, ...], ...]  # per state


def build(items: Sequence[Item]) -> tuple[int, list[Edge], int]:
    """(size, edges, accepting state) of the chain for `items`: `**` (zero or
    more whole directories, the `/` after it absorbed), `**+` (a tree: one or
    more names, always last), and segments of tokens `(True, ANY_BUT_SLASH)`
    for `*` or `(False, chars)` for one character, joined by `/`."""
    edges: list[Edge] = []
    size, cur, hub = 1, 0, False  # hub: cur is a `**` state, its inner state is cur+1
    looped: set[int] = set()
    for n, item in enumerate(items):
        if item == DSTAR:
            if not hub:  # `**/**` is `**`
                inner, size = size, size + 1
                edges += [(cur, inner, ANY_BUT_SLASH), (inner, inner, ANY_BUT_SLASH)]
                edges.append((inner, cur, SLASH_ONLY))
                hub = True
            continue
        if item == DSTAR_PLUS:
            name, slash, size = size, size + 1, size + 2
            edges += [(cur, name, ANY_BUT_SLASH), (name, name, ANY_BUT_SLASH)]
            edges += [(name, slash, SLASH_ONLY), (slash, name, ANY_BUT_SLASH)]
            cur, hub = name, False
            continue
        for star, chars in item:  # type: ignore[attr-defined]
            if star:
                if cur not in looped:
                    looped.add(cur)
                    edges.append((cur, cur, ANY_BUT_SLASH))
            else:
                edges.append((cur, size, chars))
                cur, size, hub = size, size + 1, False
        if n + 1 < len(items):
            edges.append((cur, size, SLASH_ONLY))
            cur, size, hub = size, size + 1, False
    return size, edges, cur


class Glob:
    """One pattern's automaton (`Glob(items)`, items as `build` takes them),
    or several side by side (`Glob.union`): then `accept` has one bit per
    pattern and every answer is a set of patterns."""

    __slots__ = (
        "size", "start", "accept", "edges", "_cuts", "_atoms", "_sets", "_rows", "_moves",
        "_loops", "_stars",
    )  # fmt: skip

    def __init__(self, items: Sequence[Item]) -> None:
        size, edges, accept = build(items)
        self._finish(size, edges, 1, 1 << accept)

    @classmethod
    def union(cls, globs: Sequence[Glob]) -> Glob:
        """The patterns side by side, states renumbered: one walk or product
        answers for all of them at once (bit-parallel across patterns too)."""
        if len(globs) == 1:
            return globs[0]
        edges: list[Edge] = []
        start = accept = base = 0
        for g in globs:
            edges += [(src + base, dst + base, label) for src, dst, label in g.edges]
            start |= g.start << base
            accept |= g.accept << base
            base += g.size
        out = cls.__new__(cls)
        out._finish(base, edges, start, accept)
        return out

    def _finish(self, size: int, edges: list[Edge], start: int, accept: int) -> None:
        # Tuples and dicts of plain values where possible: the garbage collector
        # stops tracking those, and the broker holds thousands of these.
        self.size, self.edges, self.start, self.accept = size, tuple(edges), start, accept
        # Atoms: the coarsest split of all characters that no edge label tells
        # apart. A character or a set is looked up as the atoms it covers.
        cuts = {0, MAX_CHAR + 1}
        for _, _, label in edges:
            for lo, hi in label:
                cuts.update((lo, hi + 1))
        self._cuts = tuple(sorted(cuts))
        atoms = [[0, 0, 0, 0] for _ in range(len(self._cuts) - 1)]
        for src, dst, label in edges:
            slot, bit = OFFSETS.index(dst - src), 1 << src
            for lo, hi in label:
                for i in range(bisect_left(self._cuts, lo), bisect_left(self._cuts, hi + 1)):
                    atoms[i][slot] |= bit
        shared: dict[Masks, Masks] = {}
        self._atoms: tuple[Masks, ...] = tuple(shared.setdefault(tuple(a), tuple(a)) for a in atoms)  # type: ignore[misc]
        self._sets: dict[Intervals, Masks] = {}
        self._rows: dict[int, dict[str, int]] = {}  # memoized steps: state set -> char -> next
        self._moves: tuple[StateMoves, StateMoves] | None = None
        self._stars: dict[Names, Names] = {}
        loops: list[Intervals | None] = [None] * size
        for src, dst, label in edges:
            if src == dst:
                loops[src] = label
        self._loops = tuple(loops)

    def nbytes(self) -> int:
        """Bytes it holds as built, counted from its tables' lengths rather than
        by visiting each object (`lockd.core.memo.footprint` costs more than
        the build); errs high: every state set is counted at the widest, every
        edge's ints apart. The tables filled later (label masks, steps, stars)
        are bounded by DFA_CACHE entries each, not counted."""
        getsize = sys.getsizeof
        word = getsize(1 << self.size)  # the largest state set
        labels = {id(label): label for _, _, label in self.edges}.values()
        atoms = {id(a) for a in self._atoms}
        return (
            getsize(self)
            + 3 * word
            + getsize(self.edges)
            + len(self.edges) * (getsize((0, 0, 0)) + 2 * getsize(self.size))
            + sum(map(getsize, labels))
            + _PAIR * sum(map(len, labels))
            + getsize(self._cuts)
            + len(self._cuts) * getsize(MAX_CHAR + 1)
            + getsize(self._atoms)
            + len(atoms) * (getsize((0, 0, 0, 0)) + 4 * word)
            + getsize(self._loops)
            + getsize(self._sets)
            + getsize(self._rows)
            + getsize(self._stars)
        )

    def loops(self) -> tuple[Intervals | None, ...]:
        """Each state's `*` loop label (all chars but `/`), or None."""
        return self._loops

    def moves(self) -> tuple[StateMoves, StateMoves]:
        """Edges per state, split by the name states' parts: (dst, part, chars),
        in the two tables the product (lockd.core.product) takes them from:
        after a real name (name state 3), without a `*` loop's own edges (it
        closes the loop at once); and before one (states 0-2: nothing, `.`,
        `..`), without `/`, which cannot end such a name."""
        if self._moves is None:
            after: list[list[Move]] = [[] for _ in range(self.size)]
            before: list[list[Move]] = [[] for _ in range(self.size)]
            for src, dst, label in self.edges:
                for p, part in enumerate(PARTS):
                    chars = intersect(label, part)
                    if not chars:
                        continue
                    move = (dst, p, chars)
                    if dst != src or part is SLASH_ONLY:
                        after[src].append(move)
                    if part is not SLASH_ONLY:
                        before[src].append(move)
            self._moves = (tuple(map(tuple, after)), tuple(map(tuple, before)))
        return self._moves

    # ---- stepping
    def masks(self, chars: Intervals) -> Masks:
        """The edges any character of `chars` can take, per offset slot."""
        got = self._sets.get(chars)
        if got is None:
            m0 = m1 = m2 = m3 = 0
            cuts, atoms = self._cuts, self._atoms
            for lo, hi in chars:
                for i in range(bisect_left(cuts, lo + 1) - 1, bisect_left(cuts, hi + 1)):
                    a = atoms[i]
                    m0, m1, m2, m3 = m0 | a[0], m1 | a[1], m2 | a[2], m3 | a[3]
            got = (m0, m1, m2, m3)
            if len(self._sets) < DFA_CACHE:  # the other side's labels choose the keys: bounded
                self._sets[chars] = got
        return got

    def star(self, x: Names) -> Names:
        """Any run of characters but `/` read from the state sets per name
        state (a one-name glob's `*`, lockd.core.product.name_meets), memoized."""
        got = self._stars.get(x)
        if got is None:
            dot_m, any_m = self.masks(DOTS), self.masks(ANY_BUT_SLASH)
            x0, x1, x2, x3 = x
            x1 |= step(x0, dot_m)
            x2 |= step(x1, dot_m)
            x3 = closure(x3 | step(x0 | x1, self.masks(NOT_DOT)) | step(x2, any_m), any_m)
            got = (x0, x1, x2, x3)
            if len(self._stars) < DFA_CACHE:
                self._stars[x] = got
        return got

    def _char(self, ch: str) -> Masks:
        return self._atoms[bisect_left(self._cuts, ord(ch) + 1) - 1]

    # ---- matching
    def match(self, path: str) -> bool:
        """Set simulation over the path, memoized: O(len(path)) dict lookups
        when the state sets are known, O(len(path) · size/64) at worst."""
        return bool(self.walk(path) & self.accept)

    def walk(self, text: str, mask: int | None = None) -> int:
        """The states reached from `mask` (the start) after reading `text`."""
        rows = self._rows
        mask = self.start if mask is None else mask
        row = rows.get(mask)
        for ch in text:
            nxt = row.get(ch) if row is not None else None
            if nxt is None:
                nxt = step(mask, self._char(ch))
                if row is None and len(rows) < DFA_CACHE:  # past it: linear, unmemoized
                    row = rows.setdefault(mask, {})
                if row is not None and len(row) < DFA_CACHE:
                    row[ch] = nxt
            if not nxt:
                return 0
            mask = nxt
            row = rows.get(mask)
        return mask

    # ---- example paths
    def back(self, target: int, masks: Masks) -> int:
        """States with an edge of `masks` into state `target`."""
        m0, m1, m2, m3 = masks
        out = (1 << target) & m0
        if target >= 1:
            out |= (1 << (target - 1)) & m1
        if target >= 2:
            out |= (1 << (target - 2)) & m2
        return out | ((1 << (target + 1)) & m3)

    def char_between(self, src: int, dst: int, chars: Intervals) -> str:
        """A character of `chars` on an edge src -> dst: a readable one where the
        edge has one (a tree's "any name" starts at NUL, which no path holds)."""
        slot, bit = OFFSETS.index(dst - src), 1 << src
        cuts, found = self._cuts, []
        for lo, hi in chars:
            for i in range(bisect_left(cuts, lo + 1) - 1, bisect_left(cuts, hi + 1)):
                if self._atoms[i][slot] & bit:
                    found.extend(intersect(chars, ((cuts[i], cuts[i + 1] - 1),)))
        if not found:
            raise AssertionError("no such edge")
        return pick(merge(found))


def step(mask: int, masks: Masks) -> int:
    """One character: every edge of `masks` taken from the states in `mask`."""
    m0, m1, m2, m3 = masks
    return (mask & m0) | ((mask & m1) << 1) | ((mask & m2) << 2) | ((mask & m3) >> 1)


def closure(mask: int, masks: Masks) -> int:
    """Every state reachable from `mask` by any number of steps over `masks`.
    Runs of +1 edges are followed log2(n) jumps at a time (Kogge-Stone: a
    jump of 2^k is taken where 2^k consecutive edges exist); +2 and -1 edges
    (`**`) one at a time around that: a few rounds of O(log n) word
    operations, not one round per state."""
    _, m1, m2, m3 = masks
    while True:
        grown, run, shift = mask, m1, 1
        while run:
            grown |= (grown & run) << shift
            run &= run >> shift
            shift <<= 1
        grown |= ((grown & m2) << 2) | ((grown & m3) >> 1)
        if grown == mask:
            return mask
        mask = grown
