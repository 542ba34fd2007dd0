"""IntentIndex against brute force: its candidate filtering (trie of literal
anchors, literal prefix/suffix pre-filters) must never drop a real conflict,
and the mode rules must hold: exclusive clashes with anything, shared only
with another's exclusive, and a peer never conflicts with itself."""

from __future__ import annotations

import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lockd.core.errors import LockdError
from lockd.core.models import Intent
from lockd.core.overlap import IntentIndex, anchor_segments, modes_clash
from lockd.core.patterns import matches, normalize, overlaps

PEERS = ["p0", "p1", "p2", "p3", "p4"]
MODES = ["exclusive", "shared"]
# Names chosen so patterns meet often and through every kind of index entry:
# literal anchors, wildcards early or late, classes hiding `*`/`?`, escapes.
NAMES = [
    "src", "api", "web", "a", "b", "x.py", "a.py", "*.py", "*.css", "a*", "*b", "[ab]",
    "[!a]*", "[a*]b", "[?a]*", r"\*x", "?", "*", "**", "Makefile", "read*.md",
]  # fmt: skip
PATHS = [
    "src/x.py", "src/api/a.py", "web/a/b.css", "a/b", "Makefile", "x/Makefile", "ab",
    "src/ab", "*x", "b/*x", "src/api/read.md", "web/x.py/inner", "api/src/a.py",
]  # fmt: skip
RELAXED = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def random_pattern(rng: random.Random) -> str:
    """A normalized pattern: anchored or floating, file or tree, 1-3 names."""
    while True:
        raw = rng.choice(["", "", "/"]) + "/".join(rng.choices(NAMES, k=rng.randint(1, 3)))
        raw += rng.choice(["", "", "/", "/**"])
        try:
            return normalize(raw)
        except LockdError:
            continue


def make_intents(rng: random.Random, n: int) -> list[Intent]:
    return [
        Intent(
            intent_id=f"i{k}",
            peer_id=rng.choice(PEERS),
            repo_id="r",
            pattern=random_pattern(rng),
            mode=rng.choice(MODES),
            reason="test",
            since=0.0,
        )
        for k in range(n)
    ]


def brute_force(
    intents: list[Intent], peer: str, pattern: str, mode: str, ignorecase: bool = False
) -> set[str]:
    """The definition: every other peer's intent whose mode clashes and which overlaps."""
    return {
        i.intent_id
        for i in intents
        if i.peer_id != peer
        and modes_clash(mode, i.mode)
        and overlaps(pattern, i.pattern, ignorecase)
    }


def found(index: IntentIndex, peer: str, pattern: str, mode: str) -> set[str]:
    out = index.conflicts(peer, [pattern], mode)
    assert all(p == pattern for p, _ in out)
    ids = [i.intent_id for _, i in out]
    assert len(ids) == len(set(ids)), "an intent reported twice"
    return set(ids)


@pytest.mark.parametrize("ignorecase", [False, True])
def test_index_matches_brute_force_with_hundreds_of_intents(ignorecase: bool) -> None:
    """300 live intents, 60 announcements, then half the intents removed."""
    rng = random.Random(7 + ignorecase)
    intents = make_intents(rng, 300)
    index = IntentIndex(ignorecase=ignorecase)
    for intent in intents:
        index.add(intent)
    assert len(index) == 300
    hits = 0
    for _ in range(60):
        peer, pattern, mode = rng.choice(PEERS), random_pattern(rng), rng.choice(MODES)
        want = brute_force(intents, peer, pattern, mode, ignorecase)
        assert found(index, peer, pattern, mode) == want, pattern
        candidates = {i.intent_id for i in index.candidates(pattern)}
        assert brute_force(intents, "", pattern, "exclusive", ignorecase) <= candidates
        hits += bool(want)
    assert hits > 20, "the pool should produce real conflicts, or this proves little"
    gone = set(rng.sample([i.intent_id for i in intents], 150))
    for intent_id in gone:
        assert index.remove(intent_id) is not None
    assert index.remove("i-missing") is None
    alive = [i for i in intents if i.intent_id not in gone]
    for _ in range(25):
        peer, pattern, mode = rng.choice(PEERS), random_pattern(rng), rng.choice(MODES)
        assert found(index, peer, pattern, mode) == brute_force(
            alive, peer, pattern, mode, ignorecase
        )
    for path in PATHS:
        want_ids = {i.intent_id for i in alive if matches(i.pattern, path, ignorecase)}
        assert {i.intent_id for i in index.claims_on(path)} == want_ids, path


@RELAXED
@given(st.randoms(use_true_random=False), st.integers(1, 60), st.booleans())
def test_index_never_drops_a_conflict(rng: random.Random, n: int, ignorecase: bool) -> None:
    """Shrinkable version: small random pools, every query checked."""
    intents = make_intents(rng, n)
    index = IntentIndex(ignorecase=ignorecase)
    for intent in intents:
        index.add(intent)
    for _ in range(10):
        peer, pattern, mode = rng.choice(PEERS), random_pattern(rng), rng.choice(MODES)
        assert found(index, peer, pattern, mode) == brute_force(
            intents, peer, pattern, mode, ignorecase
        )


def _intent(intent_id: str, peer: str, pattern: str, mode: str) -> Intent:
    return Intent(intent_id, peer, "r", pattern, mode, "test", 0.0)


@pytest.mark.parametrize(
    ("mine", "theirs", "clash"),
    [
        ("exclusive", "exclusive", True),
        ("exclusive", "shared", True),
        ("shared", "exclusive", True),
        ("shared", "shared", False),
    ],
)
def test_modes(mine: str, theirs: str, clash: bool) -> None:
    """Shared overlaps only another's exclusive; exclusive overlaps anything."""
    assert modes_clash(mine, theirs) is clash
    index = IntentIndex()
    index.add(_intent("t", "them", "/src/api/", theirs))
    got = index.conflicts("me", ["/src/api/x.py", "/web/*.md"], mine)
    assert [(p, i.intent_id) for p, i in got] == ([("/src/api/x.py", "t")] if clash else [])


def test_own_intents_never_conflict() -> None:
    """A peer re-announcing over its own exclusive claims is not blocked by them."""
    index = IntentIndex()
    index.add(_intent("mine", "me", "/src/", "exclusive"))
    index.add(_intent("also", "me", "*.py", "exclusive"))
    assert index.conflicts("me", ["/src/x.py"], "exclusive") == []
    index.add(_intent("theirs", "them", "/src/x.py", "shared"))
    assert [i.intent_id for _, i in index.conflicts("me", ["/src/x.py"], "exclusive")] == ["theirs"]


def test_re_adding_an_intent_moves_it() -> None:
    """add() with a known id replaces the old pattern in the index."""
    index = IntentIndex()
    index.add(_intent("i", "them", "/src/a/", "exclusive"))
    index.add(_intent("i", "them", "/web/", "exclusive"))
    assert len(index) == 1
    assert index.conflicts("me", ["/src/a/x"], "exclusive") == []
    assert len(index.conflicts("me", ["/web/x"], "exclusive")) == 1
    index.remove("i")
    assert index.root.children == {} and not index.floating


def test_index_regressions() -> None:
    """Shapes the pre-filters once got wrong: a `*` or `?` inside a class."""
    index = IntentIndex()
    index.add(_intent("class", "them", "[a*]b", "exclusive"))
    index.add(_intent("q", "them", "/src/[?a]b", "exclusive"))
    assert {i.intent_id for _, i in index.conflicts("me", ["/src/ab"], "exclusive")} == {
        "class",
        "q",
    }
    assert {i.intent_id for i in index.claims_on("src/ab")} == {"class", "q"}


def test_anchor_segments() -> None:
    """Only whole literal directory names become trie keys."""
    assert anchor_segments("/src/api/*.py") == ["src", "api"]
    assert anchor_segments("/src/api/") == ["src", "api"]
    assert anchor_segments("/src/ap*/x") == ["src"]
    assert anchor_segments("/Makefile") == []
    assert anchor_segments("*.py") is None
