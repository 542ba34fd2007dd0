"""Who blocks whom — pure rules over intents, plus the index that keeps an
announcement against 10,000 live intents from comparing every pair.

Index: a trie over the literal leading directories of anchored patterns.
`/src/api/*.py` lives at src→api; a floating pattern (`*.md`, `build/`) has
no literal anchor and lives in `floating`. A query pattern can only overlap
intents stored along its own literal path (ancestors), beneath it (subtree),
or floating ones; everything else is skipped without touching the automaton.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

from lockd import patterns
from lockd.models import Intent


def modes_clash(a: str, b: str) -> bool:
    """Exclusive overlaps anything; shared overlaps only exclusive."""
    return a == "exclusive" or b == "exclusive"


def anchor_segments(pattern: str) -> list[str] | None:
    """Literal leading directory names of an anchored pattern; None if floating."""
    prefix = patterns.literal_prefix(pattern)
    if prefix is None:
        return None
    parts = prefix.split("/")
    return [p for p in parts[:-1] if p]  # the last part is a file name or partial segment


@dataclass
class _Node:
    children: dict[str, _Node] = field(default_factory=dict)
    items: dict[str, Intent] = field(default_factory=dict)

    def walk(self) -> Iterator[Intent]:
        stack = [self]
        while stack:
            node = stack.pop()
            yield from node.items.values()
            stack.extend(node.children.values())


class IntentIndex:
    """Live intents of one repo, indexed by literal anchor."""

    def __init__(self, ignorecase: bool = False) -> None:
        self.ignorecase = ignorecase
        self.root = _Node()
        self.floating: dict[str, Intent] = {}
        self.by_id: dict[str, Intent] = {}
        self._where: dict[str, list[str] | None] = {}
        # Per intent: a literal suffix every claimed path ends with (cheap
        # `endswith` rejects most candidates) and the compiled matcher, both
        # made once at add time so a check never compiles a pattern.
        self._tests: dict[str, tuple[str, Callable[[str], object]]] = {}

    def __len__(self) -> int:
        return len(self.by_id)

    def __iter__(self) -> Iterator[Intent]:
        return iter(list(self.by_id.values()))

    def _key(self, seg: str) -> str:
        return seg.lower() if self.ignorecase else seg

    _fold = _key

    def add(self, intent: Intent) -> None:
        self.remove(intent.intent_id)
        segs = anchor_segments(intent.pattern)
        self.by_id[intent.intent_id] = intent
        self._where[intent.intent_id] = segs
        suffix = patterns.literal_suffix(intent.pattern) or ""
        self._tests[intent.intent_id] = (
            self._fold(suffix),
            patterns.matcher(intent.pattern, self.ignorecase),
        )
        if segs is None:
            self.floating[intent.intent_id] = intent
            return
        node = self.root
        for seg in segs:
            node = node.children.setdefault(self._key(seg), _Node())
        node.items[intent.intent_id] = intent

    def remove(self, intent_id: str) -> Intent | None:
        intent = self.by_id.pop(intent_id, None)
        if intent is None:
            return None
        segs = self._where.pop(intent_id)
        del self._tests[intent_id]
        if segs is None:
            self.floating.pop(intent_id, None)
            return intent
        path = [self.root]
        for seg in segs:
            path.append(path[-1].children[self._key(seg)])
        path[-1].items.pop(intent_id, None)
        for parent, seg in zip(reversed(path[:-1]), reversed(segs), strict=True):
            child = parent.children[self._key(seg)]
            if child.items or child.children:
                break
            del parent.children[self._key(seg)]
        return intent

    def candidates(self, pattern: str) -> Iterable[Intent]:
        """Intents that might overlap `pattern` (a sound superset)."""
        segs = anchor_segments(pattern)
        if segs is None:
            return list(self.by_id.values())
        found: list[Intent] = list(self.floating.values())
        node: _Node | None = self.root
        for seg in segs:
            assert node is not None
            found.extend(node.items.values())
            node = node.children.get(self._key(seg))
            if node is None:
                return found
        found.extend(node.walk())
        return found

    def claims_on(self, path: str) -> list[Intent]:
        """Intents that claim this repo-relative file path."""
        folded = self._fold(path)
        found = self._claiming(self.floating, path, folded)
        node: _Node | None = self.root
        for seg in ["", *path.split("/")[:-1]]:
            if seg:
                node = node.children.get(self._key(seg)) if node else None
            if node is None:
                break
            found.extend(self._claiming(node.items, path, folded))
        return found

    def _claiming(self, items: dict[str, Intent], path: str, folded: str) -> list[Intent]:
        tests = self._tests
        out = []
        for intent_id, intent in items.items():
            suffix, full = tests[intent_id]
            if folded.endswith(suffix) and full(path):
                out.append(intent)
        return out

    def conflicts(self, peer_id: str, requested: list[str], mode: str) -> list[tuple[str, Intent]]:
        """Every (requested pattern, other peer's intent) pair that clashes."""
        out: list[tuple[str, Intent]] = []
        for pattern in requested:
            path = patterns.literal_path(pattern)
            if path is not None:  # a plain file: whoever claims that path, nothing else
                out += [
                    (pattern, other)
                    for other in self.claims_on(path)
                    if other.peer_id != peer_id and modes_clash(mode, other.mode)
                ]
                continue
            for other in self.candidates(pattern):
                if other.peer_id == peer_id or not modes_clash(mode, other.mode):
                    continue
                if not patterns.could_overlap(pattern, other.pattern, self.ignorecase):
                    continue
                if patterns.overlaps(pattern, other.pattern, self.ignorecase):
                    out.append((pattern, other))
        return out
