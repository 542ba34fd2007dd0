"""Which files an `apply_patch` envelope touches, read from its text.

Codex edits files with `apply_patch`: a native tool whose input is the
envelope, or (with models that have no such tool) a shell command
`apply_patch <<'EOF' … EOF` whose heredoc is the envelope. The envelope names
each file on a header line: `*** Add File: P`, `*** Update File: P`,
`*** Delete File: P`, and `*** Move to: P` under an update (the new name is
touched too). Pure: text in, paths out, with the cost bounded (`LIMIT`
characters read, `MAX_FILES` paths returned).
"""

from __future__ import annotations

import re

LIMIT = 1_000_000  # characters of a patch looked at; the rest is not read
MAX_FILES = 200  # paths returned from one patch
_HEADERS = ("*** Add File: ", "*** Update File: ", "*** Delete File: ", "*** Move to: ")
# `apply_patch` (or `applypatch`) as a command word, then a heredoc marker.
_HEREDOC = re.compile(r"(?:^|[\s;&|(])(?:apply_patch|applypatch)\s+<<-?\s*(['\"]?)(\w+)\1")


def patch_files(text: str) -> list[str]:
    """The paths the envelope's header lines name, in order, each once."""
    found: dict[str, None] = {}
    for line in text[:LIMIT].splitlines():
        line = line.strip()
        for header in _HEADERS:
            if line.startswith(header):
                path = line[len(header) :].strip()
                if path:
                    found[path] = None
                break
        if len(found) >= MAX_FILES:
            break
    return list(found)


def heredoc_patch(command: str) -> str | None:
    """The envelope of an `apply_patch <<'EOF' … EOF` shell command, or None
    when the command does not run apply_patch with a heredoc."""
    head = command[:LIMIT]
    m = _HEREDOC.search(head)
    if m is None:
        return None
    body_start = head.find("\n", m.end())
    if body_start < 0:
        return None
    end = re.search(rf"^\s*{re.escape(m.group(2))}\s*$", head[body_start + 1 :], re.M)
    body = head[body_start + 1 :]
    return body[: end.start()] if end else body


def command_patch_files(command: str) -> list[str]:
    """The files a shell command's apply_patch heredoc touches (none when it
    has none: any other command is the git hooks' business, not the guard's)."""
    body = heredoc_patch(command)
    return patch_files(body) if body is not None else []


# `git [-C dir] [-c k=v] commit …` as a command of a shell line, up to its end.
_COMMIT = re.compile(r"(?:^|[;&|(\n]\s*)git\s+(?:-[Cc]\s+\S+\s+)*commit\b([^;&|\n]*)")


def git_commit(command: str) -> bool | None:
    """For a shell command that runs `git commit`: whether it commits every
    tracked change too (`-a`, `-am`, `--all`); None when it runs no commit."""
    m = _COMMIT.search(command[:LIMIT])
    if m is None:
        return None
    words = m.group(1).split()
    every = any(
        w == "--all"
        or (w.startswith("-") and not w.startswith("--") and "a" in w[1:].split("m")[0])
        for w in words
    )
    return every
