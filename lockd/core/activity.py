"""What sessions actually changed (activity), and when two of them changed the
same file (an overlap): the rules, pure. Time is an argument; the broker keeps
the state (lockd/broker/activity.py), the clients read git.

Activity is a peer's repo-relative paths, never contents, each with how it was
seen and since when:
- `edited`: the peer's client edited it (a PostToolUse-style hook);
- `uncommitted`: its checkout has uncommitted changes to it (git status);
- `unpushed`: its branch changes it in commits not yet upstream.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

KINDS = ("edited", "uncommitted", "unpushed")
MAX_PATHS = 500  # per peer; beyond this only a count is kept
MAX_REPORT = 5000  # paths in one report: more is refused, not trimmed silently
MAX_TOLD_PATHS = 20  # files named in one overlap notice


@dataclass
class Activity:
    """One peer's activity in one repo: path -> (kind, since). `more` counts
    the paths beyond MAX_PATHS, which are not kept."""

    peer_id: str
    repo_id: str
    checkout: str  # the peer's repo root: two sessions of one checkout share its git state
    paths: dict[str, tuple[str, float]] = field(default_factory=dict)
    more: int = 0
    branch: str = ""


def merge_edits(act: Activity, paths: list[str], now: float) -> list[str]:
    """Edits add to what the peer did: a path git already showed becomes
    `edited` and keeps its time. Returns the paths new to its activity or
    newly edited, in order (only those can make a new overlap)."""
    changed: list[str] = []
    for path in dict.fromkeys(paths):
        before = act.paths.get(path)
        if before is not None:
            if before[0] != "edited":
                act.paths[path] = ("edited", before[1])
                changed.append(path)
        elif len(act.paths) < MAX_PATHS:
            act.paths[path] = ("edited", now)
            changed.append(path)
        else:
            act.more += 1
    return changed


def replace_git(act: Activity, seen: dict[str, str], total: int, now: float) -> list[str]:
    """A git scan replaces what git said before; edited paths stay (the
    session did edit them). A path already known keeps its `since`. Returns
    the paths that are new to the peer's activity."""
    old = act.paths
    kept = {p: v for p, v in old.items() if v[0] == "edited"}
    new: list[str] = []
    for path, kind in seen.items():
        if path in kept:
            continue
        if len(kept) >= MAX_PATHS:
            break
        before = old.get(path)
        kept[path] = (kind, before[1] if before else now)
        if before is None:
            new.append(path)
    act.paths = kept
    act.more = max(0, total - len(seen)) + max(0, len(seen) - len(kept))
    return new


def clashing(a: Activity, b: Activity, path: str) -> bool:
    """Do a and b both have activity on path? Two sessions in one checkout
    see the same git state, so there only what each edited itself counts."""
    ka, kb = a.paths.get(path), b.paths.get(path)
    if ka is None or kb is None or a.peer_id == b.peer_id:
        return False
    if a.checkout == b.checkout:
        return ka[0] == "edited" and kb[0] == "edited"
    return True


def overlaps(a: Activity, b: Activity, paths: list[str] | None = None) -> list[str]:
    """The paths (of `paths`, default all of a's) where a and b overlap."""
    candidates = a.paths if paths is None else paths
    return [p for p in candidates if clashing(a, b, p)]


def pair_key(a: str, b: str, path: str) -> tuple[str, str, str]:
    """One key per overlap, whichever side reported last: told once."""
    return (min(a, b), max(a, b), path)


def words(kind: str) -> str:
    return {
        "edited": "edited",
        "uncommitted": "has uncommitted changes to",
        "unpushed": "has unpushed commits changing",
    }.get(kind, "changed")


def clock_time(at: float) -> str:
    """`12:04`, in this machine's local time (the reader's own clock)."""
    return time.strftime("%H:%M", time.localtime(at))


def line(name: str, kind: str, since: float, path: str | None = None) -> str:
    """`agent-b has uncommitted changes to this file since 12:04`."""
    what = path if path else "this file"
    return f"{name} {words(kind)} {what} since {clock_time(since)}"


def notice_text(
    other: str, other_id: str, found: list[tuple[str, str, float, str]], more: int = 0
) -> str:
    """An overlap notice: each (path, other's kind, since, claims) in words.
    `claims` says who holds an intent on the path, or is empty."""
    lines = [
        f"lockd: {other} ({other_id}) is changing files you changed too, and nobody announced it:"
    ]
    for path, kind, since, claims in found[:MAX_TOLD_PATHS]:
        held = f"; {claims}" if claims else "; neither of you claims it"
        lines.append(f"- {line(other, kind, since, path)}{held}")
    extra = len(found) - MAX_TOLD_PATHS + more
    if extra > 0:
        lines.append(f"- and {extra} more")
    lines.append(
        "Talk to them with send_message before you go on, and claim what you keep "
        "changing with announce_intent. lockd forecast says whether your branches would "
        "conflict."
    )
    return "\n".join(lines)


def verdict_key(repo_id: str, a: str, b: str) -> tuple[str, str, str]:
    return (repo_id, min(a, b), max(a, b))


def news(seen: list[dict[str, object]], checkout: str) -> list[dict[str, object]]:
    """Of others' activity on a path (as check answers it), what is news to
    someone in `checkout`: its own git state is not (another session there
    sees the same uncommitted changes), only what that session edited."""
    return [a for a in seen if a.get("checkout") != checkout or a.get("kind") == "edited"]


def _dirs(paths: set[str]) -> set[str]:
    out = set()
    for path in paths:
        parts = path.split("/")
        out.update("/".join(parts[:i]) for i in range(1, len(parts)))
    return out


def may_conflict(a: set[str], b: set[str]) -> bool:
    """Could two sides that changed these paths (since one common base)
    conflict when merged? Not if no path is changed by both and neither
    changed a file where the other has a directory: a textual conflict
    needs a path both touched. The forecast runs `git merge-tree` only when
    this says it may."""
    if len(a) > len(b):
        a, b = b, a
    if not a:
        return False
    if any(p in b for p in a):
        return True
    return bool(_dirs(a) & b) or bool(_dirs(b) & a)
