"""The memory-bounded memo under the pattern caches (lockd/core/memo.py)."""

from __future__ import annotations

from lockd.core import memo, patterns


def test_entries_are_dropped_least_recently_used_first_past_the_budget() -> None:
    calls: list[int] = []

    @memo.memo(4096)
    def grow(n: int) -> str:
        calls.append(n)
        return "x" * n

    for n in range(200):
        grow(n)
    assert grow.stats()["bytes"] <= 4096
    kept = grow.stats()["entries"]
    assert 0 < kept < 200
    grow(199)  # the newest is still there
    assert calls.count(199) == 1
    grow(0)  # the oldest was dropped: computed again
    assert calls.count(0) == 2


def test_an_answer_bigger_than_the_budget_is_returned_never_kept() -> None:
    @memo.memo(1000)
    def big(n: int) -> str:
        return "y" * n

    assert big(5000) == "y" * 5000
    assert big.stats() == {"entries": 0, "bytes": 0, "budget": 1000}


def test_the_pattern_caches_stay_within_their_budgets_whatever_the_patterns() -> None:
    """Distinct patterns by the thousand (what a long churn feeds them) fill
    each cache to its budget in bytes, never past it."""
    for n in range(3000):
        pattern = patterns.normalize(f"src/m{n}/**/*{n}.py")
        patterns.overlaps(pattern, f"/src/m{n}/x/a{n}.py")
    usage = memo.usage()
    assert usage["patterns._nfa"]["entries"] > 0
    for name, stats in usage.items():
        assert stats["bytes"] <= stats["budget"], name
    assert sum(s["budget"] for s in usage.values()) <= 96 << 20


def test_the_automata_caches_weigh_from_sizes_never_below_the_walk() -> None:
    """`Glob.nbytes`, `items_nbytes` and `tokens_nbytes` (what the automata
    caches weigh with, instead of walking each object) count at least what
    `footprint` counts, and not wildly more, for plain and hostile patterns."""
    from lockd.core.automaton import Glob, items_nbytes
    from lockd.core.probe import _last_name, _last_name_nbytes

    raws = ["src/pkg12/", "*.py", "src/**/*.py", "a/[!a]b/[a-cx-z]*.py", "[é-ü😀]*/x?"]
    raws += ["*a" + "?" * 31, "*?" * 16, "*".join("abcdefghijklmnopqrstuvwxyzABCDEFG")]
    raws += [("a" * 15 + "*") * 32, "/".join(["**", "b"] * 31) + "/*", "[a-m]*" * 16]
    raws += ["[" + "".join(f"{c}-{c}" for c in "acegikmoqsuwy") + "]x" * 20]
    for ignorecase in (False, True):
        parts = [patterns._items(patterns.normalize(r), ignorecase) for r in raws]
        globs = [Glob(items) for items in parts] + [Glob.union([Glob(i) for i in parts])]
        for glob in globs:
            assert memo.footprint(glob) <= glob.nbytes() <= 2 * memo.footprint(glob)
        for items in parts:
            assert memo.footprint(items) <= items_nbytes(items) <= 2 * memo.footprint(items)
        for raw in raws:
            last = _last_name.__wrapped__(patterns.normalize(raw), ignorecase)
            assert memo.footprint(last) <= _last_name_nbytes(last) <= 2 * memo.footprint(last) + 64


def test_a_key_of_plain_arguments_is_weighed_at_least_as_the_walk() -> None:
    keys = [("/src/x.py", False), (("*.py", "/a/**"), 1 << 300, "/**", True), ("é😀", None)]
    keys += [((("nested",),), 3)]
    for key in keys:
        assert memo.flat(key) >= memo.footprint(key)


def test_an_automatons_tables_filled_after_weighing_stay_bounded() -> None:
    """A cached automaton is weighed once, as built; what it memoizes later
    (label masks, keyed by the labels of whatever it is met with) is capped
    per table, so meeting ever new patterns cannot grow it without bound."""
    from lockd.core.automaton import DFA_CACHE, Glob

    glob = Glob(patterns._items(patterns.normalize("src/**/*.py"), False))
    first = glob.masks(((ord("a"), ord("a")),))
    for c in range(0x100, 0x100 + 4 * DFA_CACHE):  # a new one-character label each time
        glob.masks(((c, c),))
    assert len(glob._sets) <= DFA_CACHE
    assert glob.masks(((ord("a"), ord("a")),)) == first  # past the cap: the same answers
