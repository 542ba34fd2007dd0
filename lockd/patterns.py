"""Claim patterns: parse, validate, normalize, match a path, and decide
overlap exactly. Pure: no I/O.

A pattern compiles to a small automaton over characters whose edges carry
character sets (unions of code-point intervals, `/` excluded from `*`, `?`
and classes). Two patterns overlap iff the product of their automata reaches
a pair of accepting states: exact for every pair, with a witness path. Paths
are matched with an equivalent regex.

Shapes, after normalization (anchored patterns always start with `/`):
  `*.py`      floating: any depth, the file itself only (never `x.py/inner`)
  `/src/*.py` anchored at the repo root
  `build/`, `/src/**` trees: every path beneath the directory
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

from lockd.errors import LockdError, invalid

MAX_PATTERN_LEN = 512
MAX_PATTERNS = 100
MAX_CHAR = 0x10FFFF
SLASH = ord("/")

Intervals = tuple[tuple[int, int], ...]
ANY_BUT_SLASH: Intervals = ((0, SLASH - 1), (SLASH + 1, MAX_CHAR))


# ---- normalization ------------------------------------------------------------
def normalize(raw: str, checkout_root: str | None = None) -> str:
    """Validate and return the canonical text the registry stores."""
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
    if checkout_root:
        root = checkout_root.rstrip("/")
        if text in (root, root + "/"):
            raise invalid(f"pattern {text!r} is the checkout itself: claim ** for everything")
        if root and text.startswith(root + "/"):
            text = "/" + text[len(root) + 1 :]
    anchored = text.startswith("/")
    trailing = text.endswith("/") and not text.endswith("\\/")
    parts = []
    for seg in text.split("/"):
        if seg in ("", "."):
            continue
        if seg == "..":
            if not parts or parts[-1] == "**":
                raise invalid(f"pattern {raw.strip()!r} leaves the repository with ..")
            parts.pop()
            anchored = True  # `a/../b` had a middle slash: it names the root's b
            continue
        parts.append(seg)
    if not parts:
        if anchored:
            raise invalid(f"pattern {raw.strip()!r} names no files: claim /** for everything")
        raise invalid(f"pattern {raw.strip()!r} names no files")
    for seg in parts:
        _tokens(seg, raw)  # validates classes and escapes
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


def _strip(raw: str) -> str:
    """Surrounding whitespace goes, except a trailing one escaped with `\\`."""
    text = raw.lstrip()
    body = text.rstrip()
    if len(body) < len(text) and (len(body) - len(body.rstrip("\\"))) % 2 == 1:
        body = text[: len(body) + 1]
    return body


def normalize_all(raws: list[str], checkout_root: str | None = None) -> list[str]:
    if not isinstance(raws, list | tuple) or not raws:
        raise invalid("no patterns given: pass at least one, like ['src/api/']")
    if len(raws) > MAX_PATTERNS:
        raise invalid(f"{len(raws)} patterns in one call; the limit is {MAX_PATTERNS}: "
                      "claim a directory (dir/) instead of its files")  # fmt: skip
    out: dict[str, None] = {}
    for i, raw in enumerate(raws):
        try:
            out[normalize(raw, checkout_root)] = None
        except Exception as exc:
            msg = getattr(exc, "message", str(exc))
            raise invalid(f"patterns[{i}]: {msg}") from None
    return list(out)


def claims_tree(pattern: str) -> bool:
    return pattern.endswith("/") or pattern.endswith("/**")


# ---- tokens -------------------------------------------------------------------
@dataclass(frozen=True)
class _Tok:
    kind: str  # "set" (one char of `chars`), "star" (any run without /)
    chars: Intervals = ()
    negated: Intervals | None = None  # `[!…]`: the listed chars, for case folding

    def charset(self, ignorecase: bool) -> Intervals:
        """The chars this token accepts; case-folded as git does: a negated
        class refuses every case of what it lists (`[!a]` matches neither a nor A)."""
        if not ignorecase:
            return self.chars
        if self.negated is not None:
            return _minus_slash(_complement(_fold(self.negated)))
        return _fold(self.chars)


DSTAR, DSTAR_PLUS = "**", "**+"


def _merge(iv: list[tuple[int, int]]) -> Intervals:
    out: list[tuple[int, int]] = []
    for lo, hi in sorted(iv):
        if out and lo <= out[-1][1] + 1:
            out[-1] = (out[-1][0], max(out[-1][1], hi))
        else:
            out.append((lo, hi))
    return tuple(out)


def _complement(iv: Intervals) -> Intervals:
    out, start = [], 0
    for lo, hi in iv:
        if lo > start:
            out.append((start, lo - 1))
        start = hi + 1
    if start <= MAX_CHAR:
        out.append((start, MAX_CHAR))
    return tuple(out)


def _minus_slash(iv: Intervals) -> Intervals:
    return _intersect(iv, ANY_BUT_SLASH)


def _intersect(a: Intervals, b: Intervals) -> Intervals:
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


def _fold(iv: Intervals) -> Intervals:
    """Add the other ASCII case of every letter in the set."""
    extra = []
    for lo, hi, shift in ((65, 90, 32), (97, 122, -32)):
        for a, b in _intersect(iv, ((lo, hi),)):
            extra.append((a + shift, b + shift))
    return _merge([*iv, *extra])


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
            toks.append(_Tok("set", ((ord(seg[i + 1]),) * 2,)))
            i += 2
        elif c == "*":
            if not toks or toks[-1].kind != "star":
                toks.append(_Tok("star"))
            i += 1
        elif c == "?":
            toks.append(_Tok("set", ANY_BUT_SLASH))
            i += 1
        elif c == "[":
            chars, i, negated = _class(seg, i, raw)
            toks.append(_Tok("set", chars, negated))
        else:
            toks.append(_Tok("set", ((ord(c), ord(c)),)))
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
    listed = _merge(items)
    if negate:
        return _minus_slash(_complement(listed)), j + 1, listed
    return _minus_slash(listed), j + 1, None


@lru_cache(maxsize=65536)
def _parse(pattern: str) -> tuple[tuple[object, ...], ...]:
    """Segments as token lists, with `**` markers; floating and tree made explicit."""
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
        items.append(DSTAR if seg == "**" else tuple(_tokens(seg, pattern)))
    if tree or (items and items[-1] == DSTAR):
        if items and items[-1] == DSTAR:
            items.pop()
        items.append(DSTAR_PLUS)
    return tuple(items)  # type: ignore[arg-type]


# ---- matching (regex) -----------------------------------------------------------
def _re_class(iv: Intervals) -> str:
    if iv == ANY_BUT_SLASH:
        return "[^/]"
    parts = []
    for lo, hi in iv:
        parts.append(
            re.escape(chr(lo)) if lo == hi else f"{re.escape(chr(lo))}-{re.escape(chr(hi))}"
        )
    return "[" + "".join(parts) + "]" if parts else "(?!)"


@lru_cache(maxsize=65536)
def _regex(pattern: str, ignorecase: bool) -> re.Pattern[str]:
    out = []
    items = _parse(pattern)
    for n, item in enumerate(items):
        if item == DSTAR:
            out.append("(?:[^/]+/)*")
            continue
        if item == DSTAR_PLUS:
            out.append("[^/]+(?:/[^/]+)*")
            continue
        for tok in item:  # type: ignore[attr-defined]
            out.append("[^/]*" if tok.kind == "star" else _re_class(tok.charset(ignorecase)))
        if n + 1 < len(items):
            out.append("/")
    # Case folding is in the char sets, the same ones the automaton uses: re's
    # IGNORECASE would fold `[!a]` after negating it and so match `a`.
    return re.compile("".join(out), re.DOTALL)


def matcher(pattern: str, ignorecase: bool = False) -> Callable[[str], object]:
    """A compiled test for one pattern: call it with a path, truthy if claimed."""
    return _regex(pattern, ignorecase).fullmatch


def matches(pattern: str, path: str, ignorecase: bool = False) -> bool:
    """Does the (normalized) pattern claim this repo-relative file path?"""
    return _regex(pattern, ignorecase).fullmatch(path) is not None


# ---- overlap (automaton product) ----------------------------------------------------
@dataclass
class _NFA:
    edges: list[list[tuple[Intervals, int]]]
    eps: list[list[int]]
    start: int
    accept: int

    def closure(self, state: int) -> frozenset[int]:
        seen, stack = {state}, [state]
        while stack:
            for nxt in self.eps[stack.pop()]:
                if nxt not in seen:
                    seen.add(nxt)
                    stack.append(nxt)
        return frozenset(seen)


@lru_cache(maxsize=16384)
def _nfa(pattern: str, ignorecase: bool) -> _NFA:
    edges: list[list[tuple[Intervals, int]]] = []
    eps: list[list[int]] = []

    def new() -> int:
        edges.append([])
        eps.append([])
        return len(edges) - 1

    start = cur = new()
    items = _parse(pattern)
    for n, item in enumerate(items):
        if item == DSTAR:  # ([^/]+/)*, the separator after it absorbed
            loop, inner = new(), new()
            eps[cur].append(loop)
            edges[loop].append((ANY_BUT_SLASH, inner))
            edges[inner].append((ANY_BUT_SLASH, inner))
            edges[inner].append((((SLASH, SLASH),), loop))
            cur = loop
            continue
        if item == DSTAR_PLUS:  # [^/]+(/[^/]+)*
            seg = new()
            edges[cur].append((ANY_BUT_SLASH, seg))
            edges[seg].append((ANY_BUT_SLASH, seg))
            slash = new()
            edges[seg].append((((SLASH, SLASH),), slash))
            edges[slash].append((ANY_BUT_SLASH, seg))
            cur = seg
            continue
        for tok in item:  # type: ignore[attr-defined]
            if tok.kind == "star":
                loop = new()
                eps[cur].append(loop)
                edges[loop].append((ANY_BUT_SLASH, loop))
                cur = loop
            else:
                nxt = new()
                edges[cur].append((tok.charset(ignorecase), nxt))
                cur = nxt
        if n + 1 < len(items):
            nxt = new()
            edges[cur].append((((SLASH, SLASH),), nxt))
            cur = nxt
    return _NFA(edges, eps, start, cur)


# The names of a real path: not empty, not `.` or `..`. States: 0 at the start
# of a name, 1 after `.`, 2 after `..`, 3 a valid name so far (the only accepting
# one). Run in step with both patterns, so a witness is a path git could hold.
DOT = ord(".")
_SEG_PARTS: tuple[tuple[Intervals, tuple[int | None, ...]], ...] = (
    (((SLASH, SLASH),), (None, None, None, 0)),
    (((DOT, DOT),), (1, 2, 3, 3)),
    (((0, DOT - 1), (SLASH + 1, MAX_CHAR)), (3, 3, 3, 3)),
)


def _product(a: str, b: str, ignorecase: bool) -> str | None:
    """A path both claim (shortest by edges), or None when they cannot meet."""
    na, nb = _nfa(a, ignorecase), _nfa(b, ignorecase)
    ca = [na.closure(s) for s in range(len(na.edges))]
    cb = [nb.closure(s) for s in range(len(nb.edges))]
    Node = tuple[frozenset[int], frozenset[int], int]
    start: Node = (ca[na.start], cb[nb.start], 0)
    parent: dict[Node, tuple[Node | None, str]] = {start: (None, "")}
    queue = deque([start])
    while queue:
        node = queue.popleft()
        sa, sb, name = node
        if name == 3 and na.accept in sa and nb.accept in sb:
            out: list[str] = []
            cursor: Node | None = node
            while cursor is not None and parent[cursor][0] is not None:
                prev, ch = parent[cursor]
                out.append(ch)
                cursor = prev
            return "".join(reversed(out))
        moves: dict[Intervals, tuple[set[int], set[int]]] = {}
        for s in sa:
            for iv_a, ta in na.edges[s]:
                for t in sb:
                    for iv_b, tb in nb.edges[t]:
                        both = _intersect(iv_a, iv_b)
                        if both:
                            bucket = moves.setdefault(both, (set(), set()))
                            bucket[0].update(ca[ta])
                            bucket[1].update(cb[tb])
        for iv, (xa, xb) in moves.items():
            fa, fb = frozenset(xa), frozenset(xb)
            for chars, step in _SEG_PARTS:
                after = step[name]
                part = _intersect(iv, chars) if after is not None else ()
                if not part:
                    continue
                nxt = (fa, fb, after)
                if nxt not in parent:
                    parent[nxt] = (node, _pick(part))
                    queue.append(nxt)
    return None


def _pick(iv: Intervals) -> str:
    for preferred in ("x", "a", "_", "0"):
        if _intersect(iv, ((ord(preferred),) * 2,)):
            return preferred
    return chr(iv[0][0])


@lru_cache(maxsize=65536)
def _overlap(a: str, b: str, ignorecase: bool) -> str | None:
    """A path both claim, or None. Most live intents are plain files or plain
    directory trees; for those the answer needs no automaton product (230 µs),
    only a regex match or a prefix test (about 1 µs)."""
    for x, y in ((a, b), (b, a)):
        path = literal_path(x)
        if path is not None:
            return path if matches(y, path, ignorecase) else None
    for x, y in ((a, b), (b, a)):
        tree = _literal_tree(x)
        if tree is None:
            continue
        prefix = literal_prefix(y)
        fold = str.lower if ignorecase else str
        if prefix is None:  # floating: whatever it claims, it claims inside the tree too
            inner = _sample(y, ignorecase)
            return tree + inner if inner is not None else None
        if fold(prefix).startswith(fold(tree)):  # every path of y lies inside the tree
            return _sample(y, ignorecase)
        if y.startswith(f"/{prefix}**/") and fold(tree).startswith(fold(prefix)):
            # `/src/**/x.py` vs `/src/api/`: the `**` reaches into the tree
            inner = _sample(y[len(prefix) + 1 :], ignorecase)
            return tree + inner if inner is not None else None
    return _product(a, b, ignorecase)


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


@lru_cache(maxsize=65536)
def _sample(pattern: str, ignorecase: bool) -> str | None:
    """Some path the pattern claims; None only if it claims none (`[/]`)."""
    return _product(pattern, pattern, ignorecase)


def overlaps(a: str, b: str, ignorecase: bool = False) -> bool:
    """Exact: is at least one path claimed by both patterns?"""
    if a > b:
        a, b = b, a
    return _overlap(a, b, ignorecase) is not None


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


@lru_cache(maxsize=65536)
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


@lru_cache(maxsize=65536)
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
            pa, pb = pa.lower(), pb.lower()
        if not (pa.startswith(pb) or pb.startswith(pa)):
            return False
    sa, sb = literal_suffix(a), literal_suffix(b)
    if sa is not None and sb is not None:
        if ignorecase:
            sa, sb = sa.lower(), sb.lower()
        if not (sa.endswith(sb) or sb.endswith(sa)):
            return False
    return True
