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
    assert grow.used <= 4096
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
