"""Where two glob automata (lockd.core.automaton) meet: overlap as reachability in
their product, over single state pairs, never over sets of states as nodes.

With |A| and |B| the two automata's state counts and w = 64:
  - `meet`, `meet_all`, `reach`: pairs (state of B, name state) each hold the
    set of A's states paired with them (an int); a pair is visited again only
    when that set grew, with the new states alone, so each (a, b, name) triple
    is handled once: O(|A| · |B|) triples in all, w of them per word
    operation, i.e. O(|A| · |B| · (1 + |A|/w)) word operations and
    O(|A| · |B| / w) memory. In practice B is visited in order and a `*` loop
    of B is closed at once (`closure`), so each pair about once.
  - `name_meets` (B a single name, the last of most claims): one pass over
    B's tokens, O(|B| · log|A| · |A|/w), no product graph at all.
The name states (lockd.core.automaton.NAMES) run in step with both automata, so a
path found is one git could hold: no empty, `.` or `..` names.
"""

from __future__ import annotations

import sys
from heapq import heappop, heappush

from lockd.core.automaton import (
    DOTS,
    NAMES,
    NOT_DOT,
    Glob,
    Intervals,
    Names,
    closure,
    intersect,
    intervals_nbytes,
    step,
)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence

WIDTH = len(NAMES[0])
History = dict[int, list[tuple[int, int, int, "Intervals | None"]]]  # None: a loop's closure


def meet(a: Glob, start: int, b: Glob, witness: bool = True) -> str | None:
    """A string both accept, A from the state set `start` and B from its start
    (both at the beginning of a name), made of real path names; None if none,
    `""` if one exists but no `witness` was asked for."""
    _, _, first, history = _explore(a, start, b, witness, True)
    if first is None:
        return None
    return _witness(a, history, b, *first) if witness else ""


def meet_all(a: Glob, start: int, b: Glob) -> int:
    """A's accepting states (one per pattern of a union) that meet B."""
    return _explore(a, start, b, False, True)[1]


def reach(a: Glob, start: int, b: Glob) -> int:
    """A's states paired with B's accepting state at the start of a name: where
    A may be once B has read its whole language (B a run of directories)."""
    reached = _explore(a, start, b, False, False)[0]
    return reached.get((b.accept.bit_length() - 1) * WIDTH, 0)


def _explore(
    a: Glob, start: int, b: Glob, witness: bool, search: bool
) -> tuple[dict[int, int], int, tuple[int, int] | None, History]:
    """(state sets per pair, A's accepting states met, the first accepting
    (pair, A state), history for `_witness`). With `search`, stops once every
    accepting state of A has met B's; else runs to the end. Pairs are keys
    `state of B * WIDTH + name state`, taken in B's order (B's edges go
    forward except inside a `**`); a B state's `*` loop is closed at once."""
    reached = {0: start} if start else {}
    done: dict[int, int] = {}
    history: History = {0: [(0, start, -1, ())]}
    heap, queued, clock = list(reached), set(reached), 0
    (after, before), loops = b.moves(), b.loops()
    goal, accept = (b.accept.bit_length() - 1) * WIDTH + 3, a.accept
    found, first = 0, None
    # Stop with the pair in hand once every accepting state is met (found is
    # never -1); a later entry in `history` never changes the witness.
    stop = accept if search else -1
    while heap and found != stop:
        key = heappop(heap)
        queued.discard(key)
        state, name = divmod(key, WIDTH)
        had = reached[key]
        if name == 3 and loops[state] is not None:  # any run of a name's chars, at once
            closed = closure(had, a.masks(loops[state]))  # type: ignore[arg-type]
            if closed != had:
                clock += 1
                reached[key] = closed
                if witness:
                    history[key].append((clock, closed & ~had, key, None))
                if key == goal and closed & accept & ~found:
                    first = first or (key, (closed & accept).bit_length() - 1)
                    found |= closed & accept
                had = closed
        new = had & ~done.get(key, 0)
        done[key] = had
        for dst, p, chars in after[state] if name == 3 else before[state]:
            target = dst * WIDTH + NAMES[p][name]  # type: ignore[operator]  # never None here
            old = reached.get(target, 0)
            grown = step(new, a.masks(chars)) & ~old
            if not grown:
                continue
            clock += 1
            reached[target] = old | grown
            if witness:
                history.setdefault(target, []).append((clock, grown, key, chars))
            if target == goal and grown & accept & ~found:
                first = first or (target, (grown & accept).bit_length() - 1)
                found |= grown & accept
            if target not in queued:
                queued.add(target)
                heappush(heap, target)
    return reached, found, first, history


def _witness(a: Glob, history: History, b: Glob, key: int, state: int) -> str:
    """Walk back from (A's `state`, `key`) through the additions that reached
    it, always to one made earlier, so the walk ends at the start."""
    out: list[str] = []
    when = next(t for t, added, _, _ in history[key] if added >> state & 1)
    while True:
        _, _, prev, chars = next(e for e in history[key] if e[0] == when)
        if prev < 0:
            break
        earlier = 0
        for t, added, _, _ in history[prev]:
            if t < when:
                earlier |= added
        if chars is None:  # inside a loop's closure: a path through A alone
            label = b.loops()[key // WIDTH]
            assert label is not None
            src, run = _path_within(a, a.masks(label), earlier, state)
            out += [a.char_between(x, y, label) for x, y in reversed(run)]
        else:
            sources = a.back(state, a.masks(chars)) & earlier
            src = (sources & -sources).bit_length() - 1
            out.append(a.char_between(src, state, chars))
        state, key = src, prev
        when = next(t for t, added, _, _ in history[key] if added >> src & 1 and t < when)
    return "".join(reversed(out))


def _path_within(
    a: Glob, masks: tuple[int, int, int, int], sources: int, target: int
) -> tuple[int, list[tuple[int, int]]]:
    """A state of `sources` and the edges (src, dst) from it to `target` over
    `masks`, found by a BFS back from the target: O(|A|) steps."""
    seen, frontier = {target: target}, [target]
    while frontier:
        nxt = []
        for dst in frontier:
            preds = a.back(dst, masks)
            while preds:
                low = preds & -preds
                preds ^= low
                src = low.bit_length() - 1
                if src in seen:
                    continue
                seen[src] = dst
                if sources >> src & 1:
                    run, cur = [], src
                    while cur != target:
                        run.append((cur, seen[cur]))
                        cur = seen[cur]
                    return src, run
                nxt.append(src)
        frontier = nxt
    raise AssertionError("the closure reached a state no source leads to")


# ---- a last name ------------------------------------------------------------------------
STAR = None
NameToken = "str | tuple[Intervals | None, Intervals | None] | None"  # literal run, set, `*`


def name_tokens(tokens: Sequence[tuple[bool, Intervals]]) -> tuple[NameToken, ...]:  # type: ignore[valid-type]
    """A one-name glob's tokens for `name_meets`: `*` (None), runs of literal
    characters (a str), and other sets split as (its `.`, the rest)."""
    out: list[NameToken] = []  # type: ignore[valid-type]
    for star, chars in tokens:
        if star:
            out.append(STAR)
        elif len(chars) == 1 and chars[0][0] == chars[0][1]:  # one character: most tokens
            ch = chr(chars[0][0])
            if out and isinstance(out[-1], str):
                out[-1] += ch
            else:
                out.append(ch)
        else:
            out.append((intersect(chars, DOTS) or None, intersect(chars, NOT_DOT) or None))
    return tuple(out)


def tokens_nbytes(tokens: Sequence[NameToken]) -> int:  # type: ignore[valid-type]
    """Bytes of `name_tokens`' answer, for the caches' budgets (lockd.core.memo)."""
    getsize = sys.getsizeof
    total = getsize(tokens) + getsize(None)  # a set's missing half
    for tok in tokens:
        total += getsize(tok)  # a run of literal characters, a set or a `*` (None)
        if isinstance(tok, tuple):
            total += sum(intervals_nbytes(iv) for iv in tok if iv is not None)
    return total


def name_meets(a: Glob, start: int, tokens: Sequence[NameToken]) -> int:  # type: ignore[valid-type]
    """A's accepting states reached, from the state set `start` at the
    beginning of a name, by some real name (not empty, `.` or `..`) that the
    one-name glob `tokens` (`name_tokens`) matches. The glob is a chain, so
    one pass over its tokens does: a literal run is read through A's memoized
    walk, a set is a step, a `*` a `closure`, each for the 4 name states."""
    x: Names = (start, 0, 0, 0)
    for tok in tokens:
        if tok is STAR:
            x = a.star(x)
        elif isinstance(tok, str):
            x = _read(a, x, tok)
        else:
            x = _set(a, x, tok)  # type: ignore[arg-type]
        if not (x[0] | x[1] | x[2] | x[3]):
            return 0
    return x[3] & a.accept


def _read(a: Glob, x: Names, text: str) -> Names:
    """A literal run: each name state's set read on, the name state moved."""
    if text.strip("."):  # a character other than `.`: the name is real from there
        return 0, 0, 0, a.walk(text, x[0] | x[1] | x[2] | x[3])
    out = [0, 0, 0, 0]
    for n, states in enumerate(x):
        if states:
            out[min(n + len(text), 3)] |= a.walk(text, states)
    return out[0], out[1], out[2], out[3]


def _set(a: Glob, x: Names, tok: tuple[Intervals | None, Intervals | None]) -> Names:
    dots, others = tok
    y1 = y2 = y3 = 0
    if dots is not None:
        m = a.masks(dots)
        y1, y2, y3 = step(x[0], m), step(x[1], m), step(x[2] | x[3], m)
    if others is not None:
        y3 |= step(x[0] | x[1] | x[2] | x[3], a.masks(others))
    return 0, y1, y2, y3
