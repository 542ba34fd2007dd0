"""The client side of a claim, shared by the CLI and the MCP tools: turn what
a user typed into registry patterns (a bare directory name means its tree),
say what a release names, and fill refused conflicts with the checkout's
files that both sides claim."""

from __future__ import annotations

import os
import posixpath
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


def base_of(info: RepoInfo, cwd: str | None) -> str:
    """The repo-relative directory `cwd` is in ("" at the root or outside)."""
    if not cwd:
        return ""
    root, here = info.root.rstrip("/"), os.path.realpath(cwd)
    return here[len(root) + 1 :] if here.startswith(root + "/") else ""


def _as_tree(info: RepoInfo, text: str, base: str) -> str | None:
    """`/src/api/` for a glob-free name of an existing directory of the
    checkout, read from `base`; None for anything else (normalized as typed)."""
    if not text or GLOB_CHARS & set(text) or text.endswith("/"):
        return None
    root = info.root.rstrip("/")
    if text.startswith(root + "/"):
        rel = text[len(root) + 1 :]
    elif text.startswith("/"):
        if ".." in text.split("/"):
            return None  # refused by the patterns' rules, with the reason
        rel = text.lstrip("/")
    else:
        rel = posixpath.join(base, text)
    rel = posixpath.normpath(rel)
    if rel in ("", ".") or rel == ".." or rel.startswith("../"):
        return None
    return "/" + rel + "/" if os.path.isdir(os.path.join(root, rel)) else None


def prepare(info: RepoInfo, raws: list[str], cwd: str | None = None) -> list[str]:
    """Normalize against the checkout, relative patterns read from `cwd` (the
    CLI's current directory, as git reads pathspecs; None: the repo root, as
    the MCP tools say). A glob-free name of an existing directory means that
    directory's tree, anchored where it is: `src` -> `/src/` (not every
    `src/` at any depth, which is what `src/` typed by hand means)."""
    base = base_of(info, cwd)
    out = []
    for raw in raws:
        text = raw.strip() if isinstance(raw, str) else raw
        out.append((_as_tree(info, text, base) if isinstance(text, str) else None) or text)
    return patterns.normalize_all(out, checkout_root=info.root, base=base)


def announce_req(info: RepoInfo, request: Announce, cwd: str | None = None) -> Req:
    """`request` with its patterns as a user typed them, made this checkout's:
    normalized against its root (`prepare`), compared by its case rule."""
    wanted = prepare(info, list(request.patterns), cwd)
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
    cwd: str | None = None,
) -> Req:
    """Release by intent ids, by patterns as typed (the words that claimed a
    directory, `src/api`, release it), or, given neither, all of one's claims
    in this repo."""
    wanted = prepare(info, raws, cwd) if raws else None
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


def announce(
    client: Client, info: RepoInfo, request: Announce, cwd: str | None = None
) -> dict[str, Any]:
    return fill_conflict_paths(info, client.call(announce_req(info, request, cwd)))
