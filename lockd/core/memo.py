"""Memoization bounded by memory, not by entry count.

`functools.lru_cache(maxsize=N)` bounds entries; an entry of the pattern
caches ranges from a few bytes (a literal prefix) to tens of kilobytes (an
automaton), and user data chooses which, so N entries could hold hundreds of
megabytes. A `memo(budget)` cache weighs each entry when it is stored (key and
value) and drops the least recently used ones past its budget.

Weighing is on every miss, so it must cost little beside the answer: the key
(plain arguments) is summed in C (`flat`), and a cache of automata passes its
own `weigh`, counted from sizes (`Glob.nbytes`). The generic walk
(`footprint`) is the fallback: a 13-state automaton took it ~150 µs, more
than building it, and announces went 1.6× slower.

Safe across threads without a lock (decisions run on worker threads beside
the event loop): every change of the table is one OrderedDict operation,
atomic under the GIL; the byte count may drift by an entry when two threads
store at once, and is reset whenever the table empties.
"""

from __future__ import annotations

import sys
from collections import OrderedDict
from collections.abc import Callable
from functools import lru_cache, update_wrapper
from typing import Any, Generic, ParamSpec, TypeVar

P = ParamSpec("P")
R = TypeVar("R")
ENTRY_OVERHEAD = 120  # the OrderedDict's node, the key tuple and the size record
_CACHES: list[Memo[..., Any]] = []
_CAPPED: list[tuple[Any, int, int]] = []  # (lru_cache'd function, worst entry, budget)
_PLAIN = frozenset({str, int, bool, float, bytes, type(None)})


def footprint(value: object, depth: int = 8) -> int:
    """Bytes held by `value` and what it refers to (tuples, lists, dicts, sets,
    objects with __slots__ or __dict__), each object counted once; an estimate
    that errs high for shared small values (interned strings, small ints)."""
    seen: set[int] = set()
    total = 0
    stack: list[tuple[object, int]] = [(value, depth)]
    while stack:
        obj, left = stack.pop()
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        total += sys.getsizeof(obj)
        if left <= 0:
            continue
        if isinstance(obj, dict):
            stack.extend((x, left - 1) for kv in obj.items() for x in kv)
        elif isinstance(obj, tuple | list | set | frozenset):
            stack.extend((x, left - 1) for x in obj)
        elif not isinstance(obj, str | bytes | int | float | bool | type(None)):
            for slot in getattr(type(obj), "__slots__", ()):
                if hasattr(obj, slot):
                    stack.append((getattr(obj, slot), left - 1))
            stack.extend((x, left - 1) for x in getattr(obj, "__dict__", {}).values())
    return total


def flat(key: tuple[Any, ...]) -> int:
    """Bytes of an argument tuple of plain values (str, int, bool, None) and
    tuples of them, summed in C; each counted, shared or not (errs high), and
    anything else by `footprint`."""
    getsize = sys.getsizeof
    total = getsize(key)
    for x in key:
        kind = type(x)
        if kind in _PLAIN:
            total += getsize(x)
        elif kind is tuple and _PLAIN.issuperset(map(type, x)):
            total += getsize(x) + sum(map(getsize, x))
        else:
            total += footprint(x)
    return total


class Memo(Generic[P, R]):
    """`fn` memoized within `budget` bytes (see the module's docstring);
    `memo` hands out `Memo(...).cached`, a plain function: a hit through it
    costs about half of one through a `__call__`, and the index makes a few
    hundred a decision."""

    def __init__(
        self, fn: Callable[P, R], budget: int, weigh: Callable[[R], int] = footprint
    ) -> None:
        self.fn = fn
        self.budget = budget
        self.weigh = weigh
        self.used = 0
        self._entries: OrderedDict[Any, tuple[R, int]] = OrderedDict()
        self.cached = self._hits()
        _CACHES.append(self)

    def _hits(self) -> Callable[P, R]:
        entries, move, store = self._entries, self._entries.move_to_end, self._store

        def cached(*args: P.args) -> R:  # positional arguments only: they are the key
            try:
                value = entries[args][0]
                move(args)
                return value
            except KeyError:  # not there, or dropped by another thread meanwhile
                return store(args)

        update_wrapper(cached, self.fn)
        cached.cache_clear = self.cache_clear  # type: ignore[attr-defined]
        cached.stats = self.stats  # type: ignore[attr-defined]
        return cached  # type: ignore[return-value]

    def _store(self, key: tuple[Any, ...]) -> R:
        value = self.fn(*key)
        size = ENTRY_OVERHEAD + flat(key) + self.weigh(value)
        if size > self.budget:
            return value  # never kept: alone it would take the whole budget
        entries = self._entries
        old = entries.pop(key, None)
        entries[key] = (value, size)
        self.used += size - (old[1] if old is not None else 0)
        while self.used > self.budget:
            try:
                _, (_, dropped) = entries.popitem(last=False)
            except KeyError:  # emptied by another thread
                self.used = 0
                break
            self.used -= dropped
        return value

    def cache_clear(self) -> None:
        self._entries.clear()
        self.used = 0

    def stats(self) -> dict[str, int]:
        return {"entries": len(self._entries), "bytes": self.used, "budget": self.budget}


def capped(budget: int, worst: int) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """For answers whose size has a known bound (`worst` bytes an entry, key
    included: patterns are at most 512 characters): functools.lru_cache with as
    many entries as fit `budget` at worst, so its C speed on the hot paths
    (tens of nanoseconds a hit, against a microsecond for `Memo`). `worst` is
    reckoned for ASCII text; characters beyond U+FFFF take Python 4 bytes each,
    so such patterns can hold up to ~3.4x `budget` (README, Runs for months)."""

    def wrap(fn: Callable[P, R]) -> Callable[P, R]:
        cached = lru_cache(maxsize=max(16, budget // worst))(fn)
        _CAPPED.append((cached, worst, budget))
        return cached  # type: ignore[return-value]

    return wrap


def memo(
    budget: int, weigh: Callable[[Any], int] = footprint
) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Decorator: `@memo(4 << 20)` keeps at most about 4 MB of answers;
    `weigh(answer)`: its bytes, when `footprint` would cost too much."""
    return lambda fn: Memo(fn, budget, weigh).cached  # type: ignore[return-value]


def usage() -> dict[str, dict[str, int]]:
    """Every memo's entries, bytes and budget, by function name."""
    out: dict[str, dict[str, int]] = {}
    for cache in _CACHES:
        name = f"{cache.fn.__module__.rsplit('.', 1)[-1]}.{cache.fn.__name__}"
        out[name] = cache.stats()
    for fn, worst, budget in _CAPPED:
        size = fn.cache_info().currsize  # type: ignore[attr-defined]
        name = f"{fn.__module__.rsplit('.', 1)[-1]}.{fn.__name__}"
        out[name] = {"entries": size, "bytes": size * worst, "budget": budget}  # at worst
    return out
