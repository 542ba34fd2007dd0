"""The client side of a claim, shared by the CLI and the MCP tools: turn what
a user typed into registry patterns (a bare directory name means its tree),
say what a release names, and fill refused conflicts with the checkout's
files that both sides claim."""

from __future__ import annotations

import os
from typing import Any

from lockd.client.api import Api, Req
from lockd.client.sync import Client
from lockd.core import patterns
from lockd.core.announce import Announce
from lockd.core.models import parse_key
from lockd.local import git
from lockd.local.repo import RepoInfo

GLOB_CHARS = set("*?[\\")
MAX_CONFLICT_PATHS = 20


def prepare(info: RepoInfo, raws: list[str]) -> list[str]:
    """Normalize against the checkout. A glob-free name of an existing directory
    means that directory's tree, anchored where it is: `src` -> `/src/` (not
    every `src/` at any depth, which is what `src/` typed by hand means)."""
    out = []
    root = info.root.rstrip("/")
    for raw in raws:
        text = raw.strip()
        if text and not (GLOB_CHARS & set(text)) and not text.endswith("/"):
            rel = text[len(root) + 1 :] if text.startswith(root + "/") else text.lstrip("/")
            if rel and os.path.isdir(os.path.join(root, rel)):
                text = "/" + rel + "/"
        out.append(text)
    return patterns.normalize_all(out, checkout_root=info.root)


def announce_req(info: RepoInfo, request: Announce) -> Req:
    """`request` with its patterns as a user typed them, made this checkout's:
    normalized against its root (`prepare`), compared by its case rule."""
    wanted = prepare(info, list(request.patterns))
    return Api.announce(request._replace(patterns=wanted, ignorecase=info.ignorecase))


def release_targets(targets: list[str]) -> tuple[list[str], list[str]]:
    """`lockd release` words, split: intent ids (`i12`, `12`) and patterns."""
    ids = [t for t in targets if parse_key(t, "i") is not None and t[:1] in "i0123456789"]
    return ids, [t for t in targets if t not in ids]


def release_req(
    info: RepoInfo,
    intent_ids: list[str] | None = None,
    raws: list[str] | None = None,
    force: bool = False,
) -> Req:
    """Release by intent ids, by patterns as typed (the words that claimed a
    directory, `src/api`, release it), or, given neither, all of one's claims
    in this repo."""
    wanted = prepare(info, raws) if raws else None
    return Api.release(None if intent_ids else info.repo_id, intent_ids or None, wanted, force)


def fill_conflict_paths(info: RepoInfo, result: dict[str, Any]) -> dict[str, Any]:
    """Concrete files of this checkout that both the request and the holder claim."""
    conflicts = result.get("conflicts") or []
    if not conflicts or not info.is_git:
        return result
    try:
        files = git.ls_files(info.root)
    except Exception:  # best effort: the conflict stands without examples
        return result
    for c in conflicts:
        both = [
            f
            for f in files
            if patterns.matches(c["requested"], f, info.ignorecase)
            and patterns.matches(c["pattern"], f, info.ignorecase)
        ]
        c["paths"] = both[:MAX_CONFLICT_PATHS]
    return result


def announce(client: Client, info: RepoInfo, request: Announce) -> dict[str, Any]:
    return fill_conflict_paths(info, client.call(announce_req(info, request)))
