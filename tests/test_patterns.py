"""Claim patterns against the spec (docs/CONTRACT.md, "Patterns").

Three layers: a hand-written table (each row one rule of the spec), validation
messages, and property tests that compare `matches`/`overlaps` with oracles
written here without reusing anything from lockd.core.patterns:

* `Oracle` — a small recursive matcher over path segments that follows git's
  wildmatch (`*`, `?` and classes never match `/`; `**` is zero or more whole
  directories) plus lockd's one departure from .gitignore: a pattern that does
  not end in `/` or `/**` claims only the paths it matches, nothing beneath.
* pathspec — the gitignore library, used as a second opinion. It differs from
  lockd in ways the checks below undo or avoid, each noted where it is done:
  it matches every file beneath a matched name (`*.py` matches
  `x.py/inner.txt`), its negated classes `[!a]` can match `/`, and `**/`
  does not claim files at the root.

Overlap is checked against brute force: every path up to depth 3 over a small
alphabet is matched by the oracle, and two patterns overlap iff some path is
matched by both. Where lockd finds an overlap only through a longer path, the
witness from `example_path` is checked with the oracle instead.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass
from functools import lru_cache

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from pathspec.patterns.gitignore.spec import GitIgnoreSpecPattern

from lockd.core.errors import LockdError
from lockd.core.patterns import (
    MAX_PATTERN_LEN,
    MAX_PATTERNS,
    claims_tree,
    could_overlap,
    example_path,
    matches,
    normalize,
    normalize_all,
    overlaps,
)

# The autouse git fixture in conftest is function-scoped; these tests never
# touch git, so sharing it across hypothesis examples is harmless.
FAST = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


# ---- the hand-written table ---------------------------------------------------------
MATCH_CASES: list[tuple[str, str, bool]] = [
    # `*` and `?` never cross `/`
    ("src/*.py", "src/app.py", True),
    ("src/*.py", "src/api/app.py", False),
    ("src/*", "src/a", True),
    ("src/?.py", "src/a.py", True),
    ("src/?.py", "src/ab.py", False),
    ("a?b", "a/b", False),
    ("a*b", "a/b", False),
    # `**` spans zero or more directories
    ("a/**/b", "a/b", True),
    ("a/**/b", "a/x/b", True),
    ("a/**/b", "a/x/y/b", True),
    ("a/**/b", "a/xb", False),
    ("a/**/b", "b", False),
    ("**/b", "b", True),
    ("**/b", "x/y/b", True),
    ("a/**", "a/x", True),
    ("a/**", "a/x/y/z", True),
    ("a/**", "a", False),
    ("a/**", "ab/x", False),
    ("/**", "anything/at/all", True),
    ("**", "x", True),
    ("**", "x/y", True),
    # classes
    ("[abc].txt", "b.txt", True),
    ("[abc].txt", "d.txt", False),
    ("[a-z].txt", "q.txt", True),
    ("[a-z].txt", "Q.txt", False),
    ("[!a].txt", "b.txt", True),
    ("[!a].txt", "a.txt", False),
    ("[^a].txt", "a.txt", False),
    ("[]a].txt", "].txt", True),
    ("[a-].txt", "-.txt", True),
    ("/a[!b]c", "a/c", False),  # a negated class never matches `/`
    # escapes
    (r"\*.txt", "*.txt", True),
    (r"\*.txt", "a.txt", False),
    (r"a\?", "a?", True),
    (r"a\?", "ab", False),
    (r"\[x]", "[x]", True),
    (r"\!keep", "!keep", True),
    # anchored vs floating
    ("/Makefile", "Makefile", True),
    ("/Makefile", "sub/Makefile", False),
    ("Makefile", "Makefile", True),
    ("Makefile", "a/b/Makefile", True),
    ("Makefile", "a/Makefile.bak", False),
    ("*.md", "README.md", True),
    ("*.md", "docs/x/guide.md", True),
    ("src/*.py", "lib/src/a.py", False),  # a middle slash anchors
    ("src/x.py", "src/x.py", True),
    # trees
    ("build/", "build/out.o", True),
    ("build/", "x/build/deep/out.o", True),  # no middle slash: at any depth
    ("build/", "build", False),  # the directory itself is not a file
    ("/build/", "x/build/out.o", False),
    ("src/api/", "src/api/v1/routes.py", True),
    ("src/api/", "src/apix/routes.py", False),
    # a non-tree pattern claims what it matches, nothing beneath
    ("*.py", "x.py/inner.txt", False),
    ("src/api", "src/api/routes.py", False),
    ("Makefile", "Makefile/inner", False),
    ("src/a*", "src/ab/c", False),
    # normalization keeps the meaning
    ("./src//x.py", "src/x.py", True),
    ("a/../b", "b", True),
    ("a/../b", "c/b", False),  # regression: `a/../b` had become floating `b`
]

OVERLAP_CASES: list[tuple[str, str, bool]] = [
    ("src/a*.py", "src/*b.py", True),  # the spec's example, via src/ab.py
    ("web/**/*.css", "web/**/*.scss", False),
    ("*.py", "src/", True),
    ("*.py", "*.md", False),
    ("*.py", "/x.py/inner.txt", False),  # *.py claims nothing beneath x.py
    ("*.py", "x.py/", True),  # x.py/y.py is in the tree and ends in .py
    ("src/x.py", "src/x.py", True),
    ("/src/x.py", "src/*.py", True),
    ("src/", "src/api/", True),
    ("/src/", "/lib/", False),
    ("src/", "lib/", True),  # floating trees meet in src/lib/x
    ("/[.]/x", "/*/x", False),  # regression: `./x` is no path, yet counted as one
    ("src/", "/src", False),  # the tree has only paths beneath src
    ("Makefile", "/Makefile", True),
    ("Makefile", "sub/Makefile", True),
    ("/Makefile", "sub/Makefile", False),
    ("a/**/b", "a/b", True),
    ("a/**", "a/x/**/y", True),
    ("[abc].txt", "[!abc].txt", False),
    ("[a-c].txt", "[c-e].txt", True),
    (r"\*.txt", "?.txt", True),
    (r"\*.txt", "a*.txt", False),
    ("*", "**", True),
    ("/*", "*/", False),  # root files vs files inside a directory
    ("a*b*c", "*cb*a*", True),
    ("**/x/**/y", "**/y/**/x", False),  # the last name cannot be both x and y
    ("**/x/**/y/", "**/y/**/x/", True),
    ("[a*]b", "ab", True),  # regression: a `*` inside a class broke could_overlap
    ("[?a]b", "*ab", True),  # same regression with `?`
]


@pytest.mark.parametrize(("pattern", "path", "expected"), MATCH_CASES)
def test_matches_table(pattern: str, path: str, expected: bool) -> None:
    """Each row is one rule of the spec, on the normalized pattern."""
    norm = normalize(pattern)
    assert matches(norm, path) is expected
    assert Oracle.parse(pattern).match(path) is expected, "the oracle disagrees with the table"


@pytest.mark.parametrize(("a", "b", "expected"), OVERLAP_CASES)
def test_overlaps_table(a: str, b: str, expected: bool) -> None:
    """Overlap is symmetric, exact, and comes with a path both claim."""
    na, nb = normalize(a), normalize(b)
    assert overlaps(na, nb) is expected
    assert overlaps(nb, na) is expected
    witness = example_path(na, nb)
    if expected:
        assert witness is not None
        assert matches(na, witness) and matches(nb, witness)
        assert valid_path(witness) and readable(witness), repr(witness)
        assert could_overlap(na, nb) and could_overlap(nb, na)
    else:
        assert witness is None


@pytest.mark.parametrize(
    ("a", "b"),
    [("/src/api/", "/src/api/"), ("/docs/new/", "docs/"), ("/src/api/", "src/"), ("/**", "*")],
)
def test_an_example_path_is_readable(a: str, b: str) -> None:
    """The example shown with a refusal is a path a user could create: a tree's
    `any name` is written with a letter, never the NUL its character set starts with."""
    witness = example_path(a, b)
    assert witness is not None and valid_path(witness) and readable(witness), repr(witness)
    assert matches(a, witness) and matches(b, witness)


@pytest.mark.parametrize(
    ("raw", "canonical"),
    [
        ("*.md", "*.md"),
        ("Makefile", "Makefile"),
        ("/Makefile", "/Makefile"),
        ("src/*.py", "/src/*.py"),
        ("./src/x.py", "/src/x.py"),
        ("src//x.py", "/src/x.py"),
        ("src/./x.py", "/src/x.py"),
        ("build/", "build/"),
        ("src/api/", "/src/api/"),
        ("src/api/**", "/src/api/**"),
        ("src/api/**/", "/src/api/**"),
        ("a/b/../c", "/a/c"),
        ("a/../b", "/b"),
        ("  *.md  ", "*.md"),
        (r"\!x", r"\!x"),
        ("./!x", r"\!x"),  # regression: became `!x`, which normalize then refused
        ("./ x", r"\ x"),  # regression: the space was lost on a second pass
    ],
)
def test_normalize_canonical(raw: str, canonical: str) -> None:
    """Anchored patterns start with `/`; `./`, `//` and `..` disappear."""
    assert normalize(raw) == canonical
    assert normalize(canonical) == canonical


def test_claims_tree() -> None:
    """Only a trailing `/` or `/**` claims a tree."""
    assert claims_tree("build/") and claims_tree("/src/**")
    assert not claims_tree("/src/api") and not claims_tree("*.py")


# ---- validation -------------------------------------------------------------------
@pytest.mark.parametrize(
    ("raw", "words"),
    [
        ("!src/x.py", ["'!src/x.py'", "negation"]),
        ("", ["empty"]),
        ("   ", ["empty"]),
        ("../x", ["'../x'", ".."]),
        ("a/../../x", ["'a/../../x'", ".."]),
        ("**/../x", ["'**/../x'", ".."]),
        ("a[bc", ["'a[bc'", "closing ]"]),
        ("a\\", ["lone \\"]),
        ("[z-a]", ["'[z-a]'", "backwards"]),
        ("/", ["'/'", "names no files"]),
        (".", ["'.'", "names no files"]),
        ("a\0b", ["NUL"]),
    ],
)
def test_refused_patterns_name_the_value(raw: str, words: list[str]) -> None:
    """A refusal names the bad value so the user can fix it."""
    with pytest.raises(LockdError) as err:
        normalize(raw)
    assert err.value.kind == "invalid"
    for word in words:
        assert word in err.value.message


def test_too_long_pattern() -> None:
    """512 characters pass; 513 are refused with the length in the message."""
    assert normalize("a" * MAX_PATTERN_LEN) == "a" * MAX_PATTERN_LEN
    with pytest.raises(LockdError) as err:
        normalize("b" * (MAX_PATTERN_LEN + 1))
    assert "513" in err.value.message and "512" in err.value.message
    assert "bbbb" in err.value.message


def test_too_long_after_normalizing() -> None:
    """The stored form obeys the limit too, so normalize stays idempotent."""
    raw = "a/" + "b" * (MAX_PATTERN_LEN - 2)  # anchoring adds a leading `/`
    with pytest.raises(LockdError) as err:
        normalize(raw)
    assert str(MAX_PATTERN_LEN) in err.value.message


def test_pattern_count_limit() -> None:
    """100 patterns pass (duplicates collapse); 101 are refused with both numbers."""
    assert len(normalize_all([f"f{i}" for i in range(MAX_PATTERNS)])) == MAX_PATTERNS
    assert normalize_all(["a", "./a", "a"]) == ["a"]
    with pytest.raises(LockdError) as err:
        normalize_all([f"f{i}" for i in range(MAX_PATTERNS + 1)])
    assert "101" in err.value.message and "100" in err.value.message
    with pytest.raises(LockdError, match="no patterns"):
        normalize_all([])


def test_normalize_all_names_the_index() -> None:
    """With many patterns, the message says which one is wrong."""
    with pytest.raises(LockdError) as err:
        normalize_all(["ok.py", "!bad"])
    assert "patterns[1]" in err.value.message and "'!bad'" in err.value.message


def test_absolute_path_inside_checkout() -> None:
    """The checkout's own absolute path becomes an anchored relative pattern."""
    root = "/home/me/proj"
    assert normalize("/home/me/proj/src/x.py", root) == "/src/x.py"
    assert normalize("/home/me/proj/src/", root + "/") == "/src/"
    assert normalize("/home/me/proj/Makefile", root) == "/Makefile"
    # any other leading slash simply anchors
    assert normalize("/home/other/x.py", root) == "/home/other/x.py"
    assert normalize("/home/me/projx/a", root) == "/home/me/projx/a"
    with pytest.raises(LockdError) as err:
        normalize("/home/me/proj/", root)
    assert "/home/me/proj/" in err.value.message and "**" in err.value.message


RAW_CHARS = st.sampled_from(list("ab./*?[]!-\\ ^\t") + ["é", "\0", "A"])


@FAST
@given(st.text(RAW_CHARS, max_size=14))
def test_normalize_random_text(raw: str) -> None:
    """Any string normalizes or raises LockdError; the result is a fixed point."""
    try:
        norm = normalize(raw)
    except LockdError as err:
        assert err.kind == "invalid" and err.message
        return
    assert normalize(norm) == norm
    assert not norm.startswith("!")
    witness = example_path(norm, norm)
    assert (witness is not None) is overlaps(norm, norm)
    if witness is not None:  # `\.` claims only a name no path has, so none
        assert valid_path(witness) and matches(norm, witness)


# ---- the oracle ---------------------------------------------------------------------
Seg = tuple[object, ...]  # tokens: ("lit", c) ("any",) ("star",) ("class", neg, ranges)


@dataclass(frozen=True)
class Oracle:
    """Independent matcher: git wildmatch on segments plus lockd's tree rule."""

    segs: tuple[Seg | str, ...]  # a token tuple, or "**"
    tree: bool
    ignorecase: bool = False

    @classmethod
    def parse(cls, raw: str, ignorecase: bool = False) -> Oracle:
        text = raw.strip()
        tree = text.endswith("/")
        parts: list[str] = []
        climbed = False
        for part in text.split("/"):
            if part in ("", "."):
                continue
            if part == "..":
                parts.pop()
                climbed = True
                continue
            parts.append(part)
        # `.` and empty names are dropped before deciding: `./a` and `a/.` float
        # like `a`; `..` leaves a middle slash behind, so `a/../b` is the root's b.
        anchored = text.startswith("/") or len(parts) > 1 or climbed
        if parts and parts[-1] == "**":  # `a/**`, `**`: the tree of what is left
            tree = True
            parts.pop()
        segs: list[Seg | str] = [] if anchored else ["**"]
        segs += ["**" if p == "**" else _oracle_tokens(p) for p in parts]
        return cls(tuple(segs), tree, ignorecase)

    def match(self, path: str) -> bool:
        names = path.split("/")
        if self.tree:  # some proper ancestor directory is claimed as a tree root
            return any(self._dirs(tuple(names[:k])) for k in range(len(names)))
        return self._dirs(tuple(names))

    def _dirs(self, names: tuple[str, ...]) -> bool:
        return _match_segs(self.segs, names, self.ignorecase)


def _oracle_tokens(seg: str) -> Seg:
    toks: list[object] = []
    i = 0
    while i < len(seg):
        c = seg[i]
        if c == "\\":
            toks.append(("lit", seg[i + 1]))
            i += 2
        elif c == "*":
            toks.append(("star",))
            i += 1
        elif c == "?":
            toks.append(("any",))
            i += 1
        elif c == "[":
            j = i + 1
            neg = seg[j] in "!^"
            j += neg
            ranges: list[tuple[str, str]] = []
            start = j
            while seg[j] != "]" or j == start:
                lo = seg[j + 1] if seg[j] == "\\" else seg[j]
                j += 2 if seg[j] == "\\" else 1
                if seg[j] == "-" and seg[j + 1] != "]":
                    hi = seg[j + 2] if seg[j + 1] == "\\" else seg[j + 1]
                    j += 3 if seg[j + 1] == "\\" else 2
                    ranges.append((lo, hi))
                else:
                    ranges.append((lo, lo))
            toks.append(("class", neg, tuple(ranges)))
            i = j + 1
        else:
            toks.append(("lit", c))
            i += 1
    return tuple(toks)


def _fold(c: str) -> set[str]:
    return {c, c.lower(), c.upper()} if c.isascii() else {c}


def _char_ok(tok: tuple[object, ...], c: str, ic: bool) -> bool:
    if c == "/":
        return False
    variants = _fold(c) if ic else {c}
    if tok[0] == "any":
        return True
    if tok[0] == "lit":
        return tok[1] in variants
    _, neg, ranges = tok
    hit = any(lo <= v <= hi for v in variants for lo, hi in ranges)  # type: ignore[attr-defined]
    return hit != neg


@lru_cache(maxsize=200_000)
def _match_name(toks: Seg, name: str, ic: bool) -> bool:
    if not toks:
        return not name
    head = toks[0]
    assert isinstance(head, tuple)
    if head[0] == "star":
        return any(_match_name(toks[1:], name[k:], ic) for k in range(len(name) + 1))
    return bool(name) and _char_ok(head, name[0], ic) and _match_name(toks[1:], name[1:], ic)


@lru_cache(maxsize=500_000)
def _match_segs(segs: tuple[Seg | str, ...], names: tuple[str, ...], ic: bool) -> bool:
    if not segs:
        return not names
    if segs[0] == "**":
        return any(_match_segs(segs[1:], names[k:], ic) for k in range(len(names) + 1))
    head = segs[0]
    assert isinstance(head, tuple)
    return bool(names) and _match_name(head, names[0], ic) and _match_segs(segs[1:], names[1:], ic)


def valid_path(path: str) -> bool:
    """A repo-relative file path: no empty, `.` or `..` segments."""
    return all(seg not in ("", ".", "..") for seg in path.split("/"))


def readable(path: str) -> bool:
    """No control character (a character set's first atom starts at NUL), for
    patterns that hold none themselves."""
    return not re.search("[\x00-\x1f\x7f-\x9f]", path)


# ---- pathspec, the second opinion ------------------------------------------------------
def pathspec_claims(raw: str) -> re.Pattern[str] | None:
    """pathspec's regex turned into lockd's rule, or None where it cannot be.

    pathspec ends a non-tree regex with `(?:(?P<ps_d>/)|$)`, so it also matches
    everything beneath a matched name; lockd's rule keeps only `$`. Its `[^…]`
    classes can match `/` (`/a[!b]c` matches `a/c`), unlike git: `/` is added.
    Patterns that claim every file are skipped: pathspec's `**/` leaves out
    root files, and its `.` for `/**` is a search rather than a match.
    """
    regex, include = GitIgnoreSpecPattern.pattern_to_regex(raw)
    if regex is None or not include or regex in (".", "(?P<ps_d>/)"):
        return None
    regex = regex.replace("[^", "[^/")
    tail = "(?:(?P<ps_d>/)|$)"
    if regex.endswith(tail):
        return re.compile(regex[: -len(tail)] + "$")
    assert regex.endswith("(?P<ps_d>/)") or regex.endswith("/"), regex
    return re.compile(regex)


# ---- generated patterns ----------------------------------------------------------------
ALPHABET = "ab."
ATOMS = st.sampled_from(
    ["a", "b", ".", "a", "b", "?", "*", "[ab]", "[a-b]", "[!a]", "[!.]", "[.b]", r"\a", r"\*"]
)
CI_ATOMS = st.sampled_from(["a", "A", "b", "B", ".", "?", "*", "[A]", "[A-b]", "[!a]", "[!B]"])


def _pattern(atoms: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    name = st.lists(atoms, min_size=1, max_size=3).map("".join)
    seg = st.one_of(name, name, st.just("**"))
    return st.builds(
        lambda lead, segs, tail: lead + "/".join(segs) + tail,
        st.sampled_from(["", "", "/"]),
        st.lists(seg, min_size=1, max_size=3),
        st.sampled_from(["", "", "", "/", "/**"]),
    )


PATTERNS = _pattern(ATOMS)
CI_PATTERNS = _pattern(CI_ATOMS)
PATHS = st.lists(
    st.text(st.sampled_from(ALPHABET + "*"), min_size=1, max_size=4), min_size=1, max_size=4
).map("/".join)


def _universe() -> tuple[str, ...]:
    """Every path of depth <= 3 whose names are 1-3 chars from ALPHABET (not
    `.` or `..`); names of length 3 only at depth <= 2, to stay at a few thousand."""

    def names_of(n: int) -> list[str]:
        return [w for w in map("".join, itertools.product(ALPHABET, repeat=n)) if valid_path(w)]

    short = names_of(1) + names_of(2)
    names = short + names_of(3)
    out = list(names)
    out += [f"{x}/{y}" for x in names for y in names]
    out += [f"{x}/{y}/{z}" for x in short for y in short for z in short]
    return tuple(out)


UNIVERSE = _universe()


@lru_cache(maxsize=4096)
def claimed_mask(raw: str, ignorecase: bool = False) -> int:
    """Bit i set when the oracle says the pattern claims UNIVERSE[i]."""
    oracle = Oracle.parse(raw, ignorecase)
    bits = 0
    for i, path in enumerate(UNIVERSE):
        if oracle.match(path):
            bits |= 1 << i
    return bits


def _normalized(raw: str) -> str:
    try:
        return normalize(raw)
    except LockdError:
        assume(False)
        raise


@FAST
@given(PATTERNS, PATHS)
def test_matches_agrees_with_oracles(raw: str, path: str) -> None:
    """matches() = the segment oracle; pathspec agrees where it applies."""
    norm = _normalized(raw)
    want = Oracle.parse(raw).match(path)
    assert matches(norm, path) is want
    assert Oracle.parse(norm).match(path) is want, "normalizing changed the meaning"
    spec = pathspec_claims(norm)  # pathspec keeps `.` names: give it the canonical form
    if spec is not None:
        assert (spec.search(path) is not None) is want, spec.pattern


def test_pathspec_oracle_on_the_universe() -> None:
    """The two oracles agree on every enumerated path for a fixed set of shapes."""
    for raw in ["*.a", "a/**/b", "/a*", "[!a]b/", "a/[!.]", "**/b", "a/**", "?/b*", r"\a?"]:
        spec = pathspec_claims(raw)
        assert spec is not None
        oracle = Oracle.parse(raw)
        for path in UNIVERSE:
            assert (spec.search(path) is not None) is oracle.match(path), (raw, path)


def _check_overlap(a: str, b: str, ignorecase: bool) -> None:
    na, nb = _normalized(a), _normalized(b)
    found = overlaps(na, nb, ignorecase)
    assert overlaps(nb, na, ignorecase) is found
    witness = example_path(na, nb, ignorecase)
    assert (witness is not None) is found
    if claimed_mask(a, ignorecase) & claimed_mask(b, ignorecase):
        assert found, "overlaps() missed a path both claim"
    if found:
        assert witness is not None and valid_path(witness), witness
        assert Oracle.parse(a, ignorecase).match(witness), (a, witness)
        assert Oracle.parse(b, ignorecase).match(witness), (b, witness)
        assert could_overlap(na, nb, ignorecase), "the index pre-filter would drop this"


@settings(FAST, max_examples=250)
@given(PATTERNS, PATTERNS)
def test_overlaps_exact(a: str, b: str) -> None:
    """overlaps() = some path claimed by both (enumerated, or the witness)."""
    _check_overlap(a, b, ignorecase=False)


@settings(FAST, max_examples=100)
@given(PATTERNS)
def test_overlaps_with_self_and_variants(a: str) -> None:
    """A pattern that claims anything overlaps itself and its own tree."""
    _check_overlap(a, a, ignorecase=False)
    _check_overlap(a, a.rstrip("/") + "/", ignorecase=False)


# ---- case-insensitive repos ----------------------------------------------------------
@pytest.mark.parametrize(
    ("pattern", "path", "expected"),
    [
        ("*.MD", "readme.md", True),
        ("Makefile", "MAKEFILE", True),
        ("src/", "SRC/x", True),
        ("[a-c].txt", "B.TXT", True),
        ("[!a].txt", "A.txt", False),  # regression: folding after negating matched everything
        ("[!a].txt", "a.txt", False),
        ("[!a].txt", "b.txt", True),
        ("é", "É", False),  # ASCII folding only, as git
    ],
)
def test_ignorecase_matches(pattern: str, path: str, expected: bool) -> None:
    """core.ignorecase=true: letters match either case, classes included."""
    norm = normalize(pattern)
    assert matches(norm, path, ignorecase=True) is expected
    assert Oracle.parse(pattern, ignorecase=True).match(path) is expected


def test_ignorecase_overlaps() -> None:
    """Overlap respects the mode: case differences meet only when ignoring case."""
    assert overlaps("*.PY", "/src/x.py", ignorecase=True)
    assert not overlaps("*.PY", "/src/x.py")
    assert overlaps("/SRC/", "/src/a/b", ignorecase=True)
    assert not overlaps("[!a]", "A", ignorecase=True)
    assert could_overlap("/SRC/x.PY", "/src/*.py", ignorecase=True)


@settings(FAST, max_examples=120)
@given(CI_PATTERNS, CI_PATTERNS)
def test_overlaps_exact_ignorecase(a: str, b: str) -> None:
    """Case-folded overlap = a lower-case path both claim (folding is per char)."""
    _check_overlap(a, b, ignorecase=True)


@FAST
@given(CI_PATTERNS, PATHS)
def test_matches_ignorecase_agrees_with_oracle(raw: str, path: str) -> None:
    """matches(ignorecase=True) = the oracle with ASCII case folding."""
    norm = _normalized(raw)
    for p in (path, path.upper()):
        assert matches(norm, p, ignorecase=True) is Oracle.parse(raw, ignorecase=True).match(p)


@FAST
@given(PATTERNS, PATTERNS, st.booleans())
def test_shortcuts_agree_with_the_automaton(a: str, b: str, ignorecase: bool) -> None:
    """Plain files and plain trees skip the automaton product; the answer and
    its witness must be the product's."""
    from lockd.core import patterns

    na, nb = _normalized(a), _normalized(b)
    fast = patterns._overlap(na, nb, ignorecase)
    assert (fast is None) is (patterns._product(na, nb, ignorecase) is None)
    if fast is not None:
        assert valid_path(fast), fast
        assert matches(na, fast, ignorecase) and matches(nb, fast, ignorecase), fast


@pytest.mark.parametrize(
    ("a", "b", "witness"),
    [
        ("/src/a.py", "src/*.py", "src/a.py"),
        ("/src/a.py", "/src/b.py", None),
        ("/src/api/", "*.py", "src/api/.py"),
        ("/src/api/", "/src/api/*_1.py", "src/api/_1.py"),
        ("/src/api/", "/srcx/*.py", None),
        ("/**", "/[!a]", "b"),
    ],
)
def test_shortcut_cases(a: str, b: str, witness: str | None) -> None:
    from lockd.core import patterns

    got = patterns._overlap(normalize(a), normalize(b), False)
    assert (got is None) is (witness is None)
    if witness is not None:
        assert matches(normalize(a), got) and matches(normalize(b), got)


# ---- `..` and the directory a pattern is typed in (issue 17) ----------------------
@pytest.mark.parametrize(
    ("raw", "base", "canonical"),
    [
        ("api", "src", "/src/**/api"),  # no slash: any depth beneath src, as a .gitignore there
        ("api/", "src", "/src/**/api/"),
        ("*.md", "src", "/src/**/*.md"),
        ("api/auth.py", "src", "/src/api/auth.py"),
        ("./auth.py", "src/api", "/src/api/**/auth.py"),
        ("../x", "src", "/x"),  # stays inside the repo: fine
        ("/x", "src", "/x"),  # a leading / is the repo root, wherever typed
        ("/proj/src/../x", "src", "/x"),  # the checkout's own path, `..` resolved inside it
    ],
)
def test_relative_patterns_are_read_from_their_directory(
    raw: str, base: str, canonical: str
) -> None:
    assert normalize(raw, "/proj", base) == canonical


@pytest.mark.parametrize(
    ("raw", "base"),
    [
        ("../x", ""),  # above the root
        ("../../x", "src"),  # above the root, from src
        ("/abs/../x", ""),  # after a leading /: a path that starts outside the repo
        ("/src/../x", "src"),
        ("/proj/../x", ""),  # the checkout's path, then out of it
    ],
)
def test_dotdot_that_leaves_the_repo_is_refused_alike(raw: str, base: str) -> None:
    """`/abs/../x` once became `/x` while `../x` was refused: both leave the repo now."""
    with pytest.raises(LockdError) as err:
        normalize(raw, "/proj", base)
    assert err.value.kind == "invalid" and repr(raw) in err.value.message
