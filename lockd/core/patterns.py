"""Claim patterns: parse, validate, normalize, match a path, and decide
overlap exactly. Pure: no I/O.

A pattern compiles to an automaton over characters whose edges carry
character sets (unions of code-point intervals, `/` excluded from `*`, `?`
and classes); see lockd.core.automaton. Two patterns overlap iff the product of
their automata reaches a pair of accepting states: exact for every pair, with
a witness path. Paths are matched by the same automaton. Nothing a user types
reaches a backtracking regex or a set-of-states construction, and both costs
are polynomial (the automaton module states them); the limits below keep the
constants small and are refused up front with the limit named.

Shapes, after normalization (anchored patterns always start with `/`):
  `*.py`      floating: any depth, the file itself only (never `x.py/inner`)
  `/src/*.py` anchored at the repo root
  `build/`, `/src/**` trees: every path beneath the directory
"""

from __future__ import annotations

import re
import sys

from lockd.core.automaton import (
    ANY_BUT_SLASH,
    DSTAR,
    DSTAR_PLUS,
    Glob,
    Intervals,
    complement,
    fold,
    intersect,
    items_nbytes,
    merge,
)
from lockd.core.errors import LockdError, invalid
from lockd.core.memo import capped, memo
from lockd.core.product import meet

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs the git hook ~5 ms to import at run time
    from collections.abc import Callable

MAX_PATTERN_LEN = 512
MB = 1 << 20  # the caches below are bounded by memory (lockd.core.memo): 78 MB at worst
MAX_PATTERNS = 100
# Wildcards (`*`, `**`, `?`, `[...]`) bound the automaton's ambiguity, which is
# what makes products slow; literal characters are cheap. Real patterns use a
# handful (`src/**/*.py`: 2), so these are generous.
MAX_WILDCARDS = 32  # in one pattern
MAX_CALL_WILDCARDS = 256  # across the patterns of one call


# ---- normalization ------------------------------------------------------------
def normalize(raw: str, checkout_root: str | None = None, base: str = "") -> str:
    """Validate and return the canonical text the registry stores. `base`: the
    repo-relative directory a relative pattern was typed in (the CLI's current
    directory), read as a .gitignore there would read it."""
    text = _checked(raw)
    inside = _inside_checkout(text, checkout_root)
    if inside is not None:
        text, dots = inside, True
    elif text.startswith("/"):
        dots = False  # `/abs/../x`: a path that starts outside the repo, or the root's x?
    else:
        text, dots = _under(base, text), True
    parts, anchored = _segments(text, raw, dots)
    for seg in parts:
        _tokens(seg, raw)  # validates classes and escapes
    trailing = text.endswith("/") and not text.endswith("\\/")
    body = "/".join(parts)
    # A slash other than a trailing one anchors, as in .gitignore.
    if anchored or "/" in body:
        body = "/" + body
    elif body[0] == "!" or body[0].isspace():  # `./!x`, `./ x`: keep them on a second pass
        body = "\\" + body
    head = body[:-1]
    if not trailing and body[-1].isspace() and (len(head) - len(head.rstrip("\\"))) % 2 == 0:
        body = head + "\\" + body[-1]
    out = body + ("/" if trailing and not body.endswith("/**") else "")
    if len(out) > MAX_PATTERN_LEN:  # the stored form obeys the limit too
        raise invalid(f"pattern {out[:40]!r}… is {len(out)} characters once normalized; "
                      f"the limit is {MAX_PATTERN_LEN}")  # fmt: skip
    return out


def _checked(raw: str) -> str:
    """The pattern as typed, stripped, or the reason it cannot be one."""
    if not isinstance(raw, str):
        raise invalid(f"pattern {raw!r} is not a string")
    text = _strip(raw)
    if not text:
        raise invalid("empty pattern: name files like src/app.py, src/api/ or *.md")
    if len(text) > MAX_PATTERN_LEN:
        raise invalid(f"pattern {text[:40]!r}… is {len(text)} characters; the limit is "
                      f"{MAX_PATTERN_LEN}")  # fmt: skip
    if text.startswith("!"):
        raise invalid(f"pattern {text!r}: negation (!) is not supported in claims; claim the "
                      "files you mean instead")  # fmt: skip
    if "\0" in text:
        raise invalid(f"pattern {text!r} contains a NUL character")
    return text


def _inside_checkout(text: str, checkout_root: str | None) -> str | None:
    """An absolute path into the checkout, as a pattern anchored at its root
    (its `..` resolved from there); None for any other pattern."""
    root = (checkout_root or "").rstrip("/")
    if checkout_root and text in (root, root + "/"):
        raise invalid(f"pattern {text!r} is the checkout itself: claim ** for everything")
    if root and text.startswith(root + "/"):
        return "/" + text[len(root) + 1 :]
    return None


def _under(base: str, text: str) -> str:
    """A relative pattern typed in the directory `base`, made root-relative:
    one with a slash (other than a trailing one) is anchored there, one
    without matches at any depth beneath it, as in a .gitignore in `base`."""
    base = base.strip("/")
    if not base:
        return text
    while text.startswith("./"):  # dropped, as at the root
        text = text[2:].lstrip("/")
    inner = text.rstrip("/")
    if "/" in inner or inner == "**":
        return f"/{base}/{text}"
    return f"/{base}/**/{text}"


def _segments(text: str, raw: str, dots: bool = True) -> tuple[list[str], bool]:
    """The names, `.` and `..` resolved, and whether the pattern is anchored.
    `dots`: whether `..` may be resolved here; it never leaves the repo."""
    anchored = text.startswith("/")
    parts: list[str] = []
    for seg in text.split("/"):
        if seg in ("", "."):
            continue
        if seg == ".." and not dots:
            raise invalid(
                f"pattern {raw.strip()!r}: `..` after a leading / would start outside the "
                "repository: name the files from the repo root without `..` (like /x), or "
                "relative to the current directory"
            )
        if seg == "..":
            if not parts or parts[-1] == "**":
                raise invalid(
                    f"pattern {raw.strip()!r} leaves the repository with ..: only files inside "
                    "it can be claimed; name them without climbing out"
                )
            parts.pop()
            anchored = True  # `a/../b` had a middle slash: it names the root's b
            continue
        parts.append(seg)
    if not parts:
        if anchored:
            raise invalid(f"pattern {raw.strip()!r} names no files: claim /** for everything")
        raise invalid(f"pattern {raw.strip()!r} names no files")
    return parts, anchored


def _strip(raw: str) -> str:
    """Surrounding whitespace goes, except a trailing one escaped with `\\`."""
    text = raw.lstrip()
    body = text.rstrip()
    if len(body) < len(text) and (len(body) - len(body.rstrip("\\"))) % 2 == 1:
        body = text[: len(body) + 1]
    return body


def _short(text: str) -> str:
    return repr(text) if len(text) <= 60 else f"{text[:60]!r}…"


def wildcards(pattern: str) -> int:
    """`*` runs, `**` names, `?` and classes in a normalized pattern (the
    `**` a floating pattern implies is not counted: it is not ambiguous)."""
    body = pattern[:-3] if pattern.endswith("/**") else pattern  # a tree, as `dir/` is
    return sum(
        1 if seg == "**" else _wildcards(_tokens(seg, pattern)) for seg in body.split("/") if seg
    )


def normalize_all(raws: list[str], checkout_root: str | None = None, base: str = "") -> list[str]:
    if not isinstance(raws, list | tuple) or not raws:
        raise invalid("no patterns given: pass at least one, like ['src/api/']")
    if len(raws) > MAX_PATTERNS:
        raise invalid(f"{len(raws)} patterns in one call; the limit is {MAX_PATTERNS}: "
                      "claim a directory (dir/) instead of its files")  # fmt: skip
    out: dict[str, None] = {}
    for i, raw in enumerate(raws):
        try:
            out[normalize(raw, checkout_root, base)] = None
        except Exception as exc:
            msg = getattr(exc, "message", str(exc))
            raise invalid(f"patterns[{i}]: {msg}") from None
    return list(out)


def check_limits(normalized: list[str]) -> None:
    """Refuse, before any work, a claim whose automaton products could be
    slow: more than MAX_WILDCARDS in a pattern or MAX_CALL_WILDCARDS in one
    call. Claims only: releasing or checking a pattern costs no product."""
    total = 0
    for i, pattern in enumerate(normalized):
        wild = wildcards(pattern)
        if wild > MAX_WILDCARDS:
            raise invalid(
                f"patterns[{i}]: pattern {_short(pattern)} has {wild} wildcards (*, **, ?, "
                f"[...]); the limit is {MAX_WILDCARDS} in a pattern (MAX_WILDCARDS): claim "
                "its directory (dir/) or name the files",
                limit="MAX_WILDCARDS",
                value=wild,
            )
        total += wild
    if total > MAX_CALL_WILDCARDS:
        raise invalid(
            f"{total} wildcards (*, **, ?, [...]) across {len(normalized)} patterns in one "
            f"call; the limit is {MAX_CALL_WILDCARDS} (MAX_CALL_WILDCARDS): claim directories "
            "(dir/) or split the call",
            limit="MAX_CALL_WILDCARDS",
            value=total,
        )


def claims_tree(pattern: str) -> bool:
    return pattern.endswith("/") or pattern.endswith("/**")


# ---- tokens -------------------------------------------------------------------
class _Tok:
    """One token of a name: a star (any run without `/`) or one character of
    `chars`; `negated` keeps a `[!…]` class's listed chars, for case folding."""

    __slots__ = ("star", "chars", "negated", "wild")

    def __init__(
        self,
        star: bool,
        chars: Intervals = ANY_BUT_SLASH,
        negated: Intervals | None = None,
        wild: bool = True,
    ) -> None:
        self.star, self.chars, self.negated, self.wild = star, chars, negated, wild

    def charset(self, ignorecase: bool) -> Intervals:
        """The chars this token accepts; case-folded as git does: a negated
        class refuses every case of what it lists (`[!a]` matches neither a nor A)."""
        if not ignorecase or self.star:
            return self.chars
        if self.negated is not None:
            return _minus_slash(complement(fold(self.negated)))
        return fold(self.chars)


def _wildcards(toks: list[_Tok]) -> int:
    return sum(t.wild for t in toks)


def _minus_slash(iv: Intervals) -> Intervals:
    return intersect(iv, ANY_BUT_SLASH)


def _tokens(seg: str, raw: str) -> list[_Tok]:
    toks: list[_Tok] = []
    i = 0
    while i < len(seg):
        c = seg[i]
        if c == "\\":
            if i + 1 >= len(seg):
                raise invalid(
                    f"pattern {raw!r} ends with a lone \\ : escape a character or drop it"
                )
            toks.append(_Tok(False, ((ord(seg[i + 1]),) * 2,), wild=False))
            i += 2
        elif c == "*":
            if not toks or not toks[-1].star:
                toks.append(_Tok(True))
            i += 1
        elif c == "?":
            toks.append(_Tok(False, ANY_BUT_SLASH))
            i += 1
        elif c == "[":
            chars, i, negated = _class(seg, i, raw)
            toks.append(_Tok(False, chars, negated))
        else:
            toks.append(_Tok(False, ((ord(c), ord(c)),), wild=False))
            i += 1
    return toks


def _class(seg: str, i: int, raw: str) -> tuple[Intervals, int, Intervals | None]:
    j = i + 1
    negate = j < len(seg) and seg[j] in "!^"
    if negate:
        j += 1
    items: list[tuple[int, int]] = []
    first = True
    while j < len(seg) and (seg[j] != "]" or first):
        first = False
        c = seg[j]
        if c == "\\" and j + 1 < len(seg):
            c, j = seg[j + 1], j + 1
        if j + 2 < len(seg) and seg[j + 1] == "-" and seg[j + 2] != "]":
            hi = seg[j + 2]
            if hi == "\\" and j + 3 < len(seg):
                hi, j = seg[j + 3], j + 1
            if ord(hi) < ord(c):
                raise invalid(f"pattern {raw!r}: range {c}-{hi} is backwards")
            items.append((ord(c), ord(hi)))
            j += 3
        else:
            items.append((ord(c), ord(c)))
            j += 1
    if j >= len(seg):
        raise invalid(f"pattern {raw!r}: [ without a closing ]; escape it as \\[")
    listed = merge(items)
    if negate:
        return _minus_slash(complement(listed)), j + 1, listed
    return _minus_slash(listed), j + 1, None


@memo(4 * MB, items_nbytes)
def _items(pattern: str, ignorecase: bool) -> tuple[object, ...]:
    """The automaton's items: names as (is_star, chars) tokens, with `**`
    markers; floating and tree made explicit."""
    text = pattern
    tree = claims_tree(text)
    if text.endswith("/**"):
        text = text[:-3]
    elif text.endswith("/"):
        text = text[:-1]
    anchored = text.startswith("/")
    segs = [s for s in text.split("/") if s]
    items: list[object] = [] if anchored else [DSTAR]
    for seg in segs:
        if seg == "**":
            items.append(DSTAR)
        else:
            items.append(tuple((t.star, t.charset(ignorecase)) for t in _tokens(seg, pattern)))
    if tree or (items and items[-1] == DSTAR):
        if items and items[-1] == DSTAR:
            items.pop()
        items.append(DSTAR_PLUS)
    return tuple(items)


@memo(16 * MB, Glob.nbytes)
def _nfa(pattern: str, ignorecase: bool) -> Glob:
    return Glob(_items(pattern, ignorecase))


# ---- matching -------------------------------------------------------------------------
def matcher(pattern: str, ignorecase: bool = False) -> Callable[[str], object]:
    """A compiled test for one pattern: call it with a path, truthy if claimed.
    Linear in the path (lockd.core.automaton.Glob.match), whatever the pattern."""
    path = literal_path(pattern)
    if path is not None:  # a plain file: one comparison
        if ignorecase:
            folded = fold_case(path)
            return lambda p: len(p) == len(folded) and fold_case(p) == folded
        return path.__eq__
    return _nfa(pattern, ignorecase).match


def fold_case(text: str) -> str:
    """ASCII-only lower case, as git folds: `É` stays `É` (and unlike
    `str.lower`, never changes a length or depends on context, like `Σ`)."""
    return text.translate(_ASCII_LOWER) if not text.isascii() else text.lower()


_ASCII_LOWER = {c: c + 32 for c in range(65, 91)}


def matches(pattern: str, path: str, ignorecase: bool = False) -> bool:
    """Does the (normalized) pattern claim this repo-relative file path?"""
    return bool(matcher(pattern, ignorecase)(path))


# ---- overlap (automaton product) ----------------------------------------------------
def _product(a: str, b: str, ignorecase: bool, witness: bool = True) -> str | None:
    """A path both claim (`""` once known to exist, without `witness`), or
    None when they cannot meet.

    The literal directories a pattern starts with (`src/pkg1/` of
    `/src/pkg1/**/*.py`) are read straight into the other's automaton; the
    product then starts from the states that left, against the rest (`/**/*.py`),
    which many claims share: that part is cached."""
    da, db = _dirs(a), _dirs(b)
    if len(da) > len(db):
        a, b, da, db = b, a, db, da
    if not db:
        return meet(_nfa(a, ignorecase), 1, _nfa(b, ignorecase), witness)
    states = _nfa(a, ignorecase).walk(db)
    if not states:
        return None
    rest = _meet_from(a, states, _tail(b, db), ignorecase, witness)
    return None if rest is None else db + rest


def _dirs(pattern: str) -> str:
    """The literal leading directories of an anchored pattern (`src/api/`)."""
    prefix = literal_prefix(pattern)
    return "" if prefix is None else prefix[: prefix.rfind("/") + 1]


def _tail(pattern: str, dirs: str) -> str:
    """What an anchored pattern claims inside its literal leading directories,
    as an anchored pattern: `/src/api/**/*.py` inside `src/api/` is `/**/*.py`."""
    rest = pattern[1 + len(dirs) :]
    return "/**" if rest in ("", "**") else "/" + rest


@capped(8 * MB, 1400)
def _meet_from(a: str, states: int, tail: str, ignorecase: bool, witness: bool) -> str | None:
    return meet(_nfa(a, ignorecase), states, _nfa(tail, ignorecase), witness)


def _find(a: str, b: str, ignorecase: bool, witness: bool) -> str | None:
    """A path both claim, or None. Most live intents are plain files or plain
    directory trees; for those the answer needs no automaton product, only a
    match of one path or a prefix test."""
    for x, y in ((a, b), (b, a)):
        path = literal_path(x)
        if path is not None:
            return path if matches(y, path, ignorecase) else None
    for x, y in ((a, b), (b, a)):
        tree = _literal_tree(x)
        if tree is None:
            continue
        prefix = literal_prefix(y)
        fold_ = fold_case if ignorecase else str
        if prefix is None:  # floating: whatever it claims, it claims inside the tree too
            inner = _sample(y, ignorecase)
            return tree + inner if inner is not None else None
        if fold_(prefix).startswith(fold_(tree)):  # every path of y lies inside the tree
            return _sample(y, ignorecase)
        if y.startswith(f"/{prefix}**/") and fold_(tree).startswith(fold_(prefix)):
            # `/src/**/x.py` vs `/src/api/`: the `**` reaches into the tree
            inner = _sample(y[len(prefix) + 1 :], ignorecase)
            return tree + inner if inner is not None else None
    return _product(a, b, ignorecase, witness)


@capped(8 * MB, 2600)
def _overlap(a: str, b: str, ignorecase: bool) -> str | None:
    """A path both claim, or None (a and b in sorted order)."""
    return _find(a, b, ignorecase, True)


@capped(8 * MB, 1400)
def _meets(a: str, b: str, ignorecase: bool) -> bool:
    """Whether a path both claim exists: the product without its witness."""
    return _find(a, b, ignorecase, False) is not None


def literal_path(pattern: str) -> str | None:
    """The one path a wildcard-free anchored file pattern claims (`/src/a.py`)."""
    if not pattern.startswith("/") or claims_tree(pattern) or WILD.search(pattern):
        return None
    return pattern[1:]


def _literal_tree(pattern: str) -> str | None:
    """`src/api/` for a wildcard-free anchored tree (`/src/api/`, `/src/api/**`);
    `""` for the whole repo (`/**`)."""
    if not pattern.startswith("/"):
        return None
    if pattern.endswith("/**"):
        body = pattern[1:-2]
    elif pattern.endswith("/"):
        body = pattern[1:]
    else:
        return None
    return None if WILD.search(body) else body


@memo(2 * MB, sys.getsizeof)
def _sample(pattern: str, ignorecase: bool) -> str | None:
    """Some path the pattern claims; None only if it claims none (`[/]`)."""
    return _product(pattern, pattern, ignorecase)


def overlaps(a: str, b: str, ignorecase: bool = False) -> bool:
    """Exact: is at least one path claimed by both patterns?"""
    if a > b:
        a, b = b, a
    return _meets(a, b, ignorecase)


def example_path(a: str, b: str, ignorecase: bool = False) -> str | None:
    """A path both patterns claim, to show a user why they clash."""
    return _overlap(*sorted((a, b)), ignorecase)


def escape(path: str) -> str:
    """A pattern that claims exactly this path, whatever characters it holds."""
    escaped = re.sub(r"([*?\[\\])", r"\\\1", path)
    stripped = escaped.rstrip(" ")  # gitignore drops unescaped trailing spaces
    return stripped + "\\ " * (len(escaped) - len(stripped))


# ---- cheap sound pre-filters for the index --------------------------------------------
WILD = re.compile(r"[*?\[\\]")


@capped(16 * MB, 1300)
def literal_prefix(pattern: str) -> str | None:
    """Anchored patterns: the literal text every claimed path starts with
    (`/src/api/*.py` -> `src/api/`); None for floating ones."""
    if not pattern.startswith("/"):
        return None
    body = pattern[1:]
    if body.endswith("/**"):
        body = body[:-2]
    m = WILD.search(body)
    return body[: m.start()] if m else body


@capped(16 * MB, 1300)
def literal_suffix(pattern: str) -> str | None:
    """Non-tree patterns: the literal text every claimed path ends with
    (`*.py` -> `.py`); None for trees or when there is none."""
    if claims_tree(pattern):
        return None
    last = pattern.rsplit("/", 1)[-1]
    end = i = 0
    while (m := WILD.search(last, i)) is not None:
        i = m.end()
        if m.group() == "\\":
            i += 1  # the escaped char is literal, but cut the suffix after it
        elif m.group() == "[":
            try:  # a `*`, `?` or `\\` inside a class is not a wildcard of its own
                i = _class(last, m.start(), pattern)[1]
            except LockdError:
                return None
        end = i
    return last[end:] or None


def could_overlap(a: str, b: str, ignorecase: bool = False) -> bool:
    """Never False when `overlaps` would be True; cheap."""
    pa, pb = literal_prefix(a), literal_prefix(b)
    if pa is not None and pb is not None:
        if ignorecase:
            pa, pb = fold_case(pa), fold_case(pb)
        if not (pa.startswith(pb) or pb.startswith(pa)):
            return False
    sa, sb = literal_suffix(a), literal_suffix(b)
    if sa is None or sb is None:
        return True
    if ignorecase:
        sa, sb = fold_case(sa), fold_case(sb)
    return sa.endswith(sb) or sb.endswith(sa)
