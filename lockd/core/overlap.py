"""Who blocks whom — pure rules over intents, plus the index that keeps an
announcement against 10,000 live intents from comparing every pair.

Index: a trie over the literal leading directories of anchored patterns.
`/src/api/*.py` lives at src→api; a floating pattern (`*.md`, `build/`) has
no literal anchor and lives in `floating`. A query pattern can only overlap
intents stored along its own literal path (ancestors), beneath it (subtree),
or floating ones; everything else is skipped without touching the automaton.

Within a node, intents are grouped by what they claim inside its directories
(`patterns.split`: `/src/pkg1/**/*.py` is `**/*.py` inside `src/pkg1/`), so
one announce makes one automaton product per distinct group and directory
state, not one per intent (`lockd.core.probe`). Every decision stays exact.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

from lockd.core import patterns
from lockd.core.models import Intent
from lockd.core.probe import Probe, split

# A decision runs on a worker thread (lockd.broker.intents); the event loop waiting for
# the GIL would get it only after the 5 ms switch interval, several times per
# request. Sleeping (a `sleep(0)` is ~70 µs) every so many groups (~0.5 ms of
# work) keeps the broker's other answers prompt while a 10,000-intent decision
# runs, for about a tenth more time spent on it.
YIELD_EVERY = 512


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
    dirs: str = ""  # the literal directories leading here: `src/api/`
    children: dict[str, _Node] = field(default_factory=dict)
    items: dict[str, Intent] = field(default_factory=dict)
    groups: dict[str, dict[str, Intent]] = field(default_factory=dict)  # by tail

    def nodes(self) -> Iterator[_Node]:
        stack = [self]
        while stack:
            node = stack.pop()
            yield node
            stack.extend(node.children.values())

    def walk(self) -> Iterator[Intent]:
        for node in self.nodes():
            yield from node.items.values()


class IntentIndex:
    """Live intents of one repo, indexed by literal anchor."""

    def __init__(self, ignorecase: bool = False) -> None:
        self.ignorecase = ignorecase
        self.root = _Node()
        self.floating: dict[str, Intent] = {}
        self._floating_groups: dict[str, dict[str, Intent]] = {}  # by pattern
        self.by_id: dict[str, Intent] = {}
        self._where: dict[str, tuple[tuple[str, ...] | None, str]] = {}  # anchor, tail
        # Per intent: a literal suffix every claimed path ends with (cheap
        # `endswith` rejects most candidates), how many characters of a path
        # its node's directories take, and what it claims inside them; the
        # compiled matchers of those are shared by every intent with the same
        # rest, made at add time so a check never compiles a pattern. Plain
        # tuples and strings: the garbage collector need not trace them.
        self._tests: dict[str, tuple[str, int, str]] = {}
        self._matchers: dict[str, tuple[Callable[[str], object], int]] = {}  # tail -> (test, uses)

    def __len__(self) -> int:
        return len(self.by_id)

    def __iter__(self) -> Iterator[Intent]:
        return iter(list(self.by_id.values()))

    def _key(self, seg: str) -> str:
        return patterns.fold_case(seg) if self.ignorecase else seg

    _fold = _key

    def add(self, intent: Intent) -> None:
        self.remove(intent.intent_id)
        segs = anchor_segments(intent.pattern)
        dirs, tail = split(intent.pattern)
        self.by_id[intent.intent_id] = intent
        self._where[intent.intent_id] = (None if segs is None else tuple(segs), tail)
        suffix = patterns.literal_suffix(intent.pattern) or ""
        self._tests[intent.intent_id] = (self._fold(suffix), len(dirs), tail)
        test, uses = self._matchers.get(tail) or (patterns.matcher(tail, self.ignorecase), 0)
        self._matchers[tail] = (test, uses + 1)
        if segs is None:
            self.floating[intent.intent_id] = intent
            self._floating_groups.setdefault(tail, {})[intent.intent_id] = intent
            return
        node = self.root
        for seg in segs:
            child = node.children.get(self._key(seg))
            if child is None:
                child = node.children[self._key(seg)] = _Node(f"{node.dirs}{seg}/")
            node = child
        node.items[intent.intent_id] = intent
        node.groups.setdefault(tail, {})[intent.intent_id] = intent

    def remove(self, intent_id: str) -> Intent | None:
        intent = self.by_id.pop(intent_id, None)
        if intent is None:
            return None
        segs, tail = self._where.pop(intent_id)
        del self._tests[intent_id]
        test, uses = self._matchers[tail]
        if uses > 1:
            self._matchers[tail] = (test, uses - 1)
        else:
            del self._matchers[tail]
        if segs is None:
            self.floating.pop(intent_id, None)
            _drop(self._floating_groups, tail, intent_id)
            return intent
        path = [self.root]
        for seg in segs:
            path.append(path[-1].children[self._key(seg)])
        path[-1].items.pop(intent_id, None)
        _drop(path[-1].groups, tail, intent_id)
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
        """Of `items` (all at one node, whose directories `path` starts with),
        those that claim `path`."""
        tests, matchers = self._tests, self._matchers
        out = []
        for intent_id, intent in items.items():
            suffix, skip, tail = tests[intent_id]
            if folded.endswith(suffix) and matchers[tail][0](path[skip:]):
                out.append(intent)
        return out

    def _groups_for(self, pattern: str) -> Iterator[tuple[str, dict[str, dict[str, Intent]]]]:
        """(directories, intents by tail) of every node that may hold an
        intent overlapping `pattern`: the same superset as `candidates`."""
        yield "", self._floating_groups
        segs = anchor_segments(pattern)
        node: _Node | None = self.root
        for seg in segs or []:
            assert node is not None
            yield node.dirs, node.groups
            node = node.children.get(self._key(seg))
            if node is None:
                return
        for below in node.nodes():
            yield below.dirs, below.groups

    def conflicts(self, peer_id: str, requested: list[str], mode: str) -> list[tuple[str, Intent]]:
        """Every (requested pattern, other peer's intent) pair that clashes, in
        the order of `requested`."""
        found = self.clashes(peer_id, requested, mode)
        return [(p, other) for p, others in zip(requested, found, strict=True) for other in others]

    def clashes(self, peer_id: str, requested: list[str], mode: str) -> list[list[Intent]]:
        """Per requested pattern, the other peers' intents it clashes with (a
        list per pattern, not a pair per clash: a wide call may have 100,000).
        Plain files are looked up as paths; the other patterns go through one
        Probe together, one pass over the nodes any of them may reach."""
        found: list[list[Intent]] = [[] for _ in requested]
        globs: list[int] = []
        for i, pattern in enumerate(requested):
            path = patterns.literal_path(pattern)
            if path is None:
                globs.append(i)
                continue
            found[i] = [  # a plain file: whoever claims that path, nothing else
                other
                for other in self.claims_on(path)
                if other.peer_id != peer_id and modes_clash(mode, other.mode)
            ]
        if globs:
            self._probe(
                Probe([requested[i] for i in globs], self.ignorecase),
                peer_id,
                mode,
                [found[i] for i in globs],
            )
        return found

    def _probe(self, probe: Probe, peer_id: str, mode: str, found: list[list[Intent]]) -> None:
        """The hot loop of an announce: every group of every node the probe's
        patterns may reach, once; `found[k]` gets pattern k's clashes."""
        shared = mode != "exclusive"  # then only others' exclusive intents clash
        one = found[0] if len(found) == 1 else None
        pace = 0
        for dirs, groups in self._nodes_for(list(probe.patterns)):
            states = probe.states(dirs)
            if not states:  # no pattern reaches below these directories
                continue
            for tail, intents in groups.items():
                pace += 1
                if not pace % YIELD_EVERY:
                    time.sleep(0)  # hand the GIL to the event loop (see YIELD_EVERY)
                rivals = [
                    other
                    for other in intents.values()
                    if other.peer_id != peer_id and not (shared and other.mode != "exclusive")
                ]
                if not rivals:
                    continue
                hits = probe.decide(states, tail)
                if not hits:
                    continue
                if one is not None:
                    one += rivals
                else:
                    for k in probe.which(hits):
                        found[k] += rivals

    def _nodes_for(self, wanted: list[str]) -> list[tuple[str, dict[str, dict[str, Intent]]]]:
        """(directories, intents by tail) of each node, once, that any of
        `wanted` may reach (`_groups_for`)."""
        seen: dict[int, tuple[str, dict[str, dict[str, Intent]]]] = {}
        if any(anchor_segments(p) is None for p in wanted):  # a floating one reaches all
            wanted = ["/**"]
        for pattern in wanted:
            for dirs, groups in self._groups_for(pattern):
                seen.setdefault(id(groups), (dirs, groups))
        return list(seen.values())


def _drop(groups: dict[str, dict[str, Intent]], tail: str, intent_id: str) -> None:
    group = groups.get(tail)
    if group is not None:
        group.pop(intent_id, None)
        if not group:
            del groups[tail]
