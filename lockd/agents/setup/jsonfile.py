"""Agent clients' JSON settings files: read with errors that name the file and
the line, written back atomically in the file's own indentation and mode.

An agent client may rewrite its file while we work on it (Claude Code updates
`~/.claude.json` all the time), so a write replaces the file only if it still
holds the text that was read; otherwise `Moved` tells the caller to read again.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lockd.core.errors import LockdError, invalid


class Moved(Exception):
    """The file changed between reading it and writing it."""


def shown(path: Path) -> str:
    """The path as the user thinks of it: `~/.claude.json`."""
    home = str(Path.home())
    text = str(path)
    if home not in ("", "/") and (text == home or text.startswith(home + os.sep)):
        return "~" + text[len(home) :]
    return text


@dataclass
class JsonFile:
    path: Path
    text: str | None  # None: the file does not exist
    data: dict[str, Any]

    @property
    def name(self) -> str:
        return shown(self.path)

    def render(self, data: dict[str, Any]) -> str:
        """`data` in this file's style: its indentation, its final newline."""
        indent: int | str = 2
        if self.text:
            m = re.search(r"^[{\[][^\n]*\n([ \t]+)\S", self.text, re.M)
            if m:
                lead = m.group(1)
                indent = lead if "\t" in lead else len(lead)
        end = "" if self.text and not self.text.endswith("\n") else "\n"
        return json.dumps(data, indent=indent, ensure_ascii=False) + end


def read_text(path: Path) -> str | None:
    """A settings file's text (None when there is none yet), or an error naming it:
    every client's file is read alike, whatever its format."""
    try:
        with open(path, encoding="utf-8-sig") as f:
            return f.read()
    except FileNotFoundError:
        return None
    except UnicodeDecodeError as exc:
        raise invalid(f"{shown(path)} is not UTF-8 ({exc.reason}); nothing was written") from None
    except OSError as exc:
        raise LockdError(
            "internal", f"cannot read {shown(path)}: {exc.strerror}; nothing was written"
        ) from None


def load(path: Path) -> JsonFile:
    """The file's object; `{}` when it is missing or blank. Malformed JSON, or
    anything but an object at the top, is refused naming the file and line."""
    text = read_text(path)
    if text is None:
        return JsonFile(path, None, {})
    if not text.strip():
        return JsonFile(path, text, {})
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise invalid(
            f"{shown(path)} line {exc.lineno}, column {exc.colno}: {exc.msg}. It is not valid "
            "JSON, so nothing was written: fix it (or move it aside) and run again",
            file=str(path),
            line=exc.lineno,
            column=exc.colno,
        ) from None
    if not isinstance(data, dict):
        raise invalid(
            f"{shown(path)} holds a JSON {type(data).__name__}, not an object; "
            "nothing was written: fix it (or move it aside) and run again",
            file=str(path),
        )
    return JsonFile(path, text, data)


def replace(file: JsonFile, text: str | None, private: bool = False) -> None:
    """Write `text` to the file (None: delete it) if it still holds what was
    read, atomically: a temp file beside it, then rename. A symlink (dotfiles)
    is followed, not replaced. Keeps an existing file's mode; a new file gets
    0600 when `private`, else what the umask allows."""
    target = file.path.resolve() if file.path.is_symlink() else file.path
    if _current(target) != file.text:
        raise Moved(file.name)
    if text is None:
        with contextlib.suppress(FileNotFoundError):
            target.unlink()
        return
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            mode = target.stat().st_mode & 0o7777
        except FileNotFoundError:
            mode = 0o600 if private else 0o666 & ~_umask()
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(text)
                f.flush()
                os.fsync(f.fileno())
            os.chmod(tmp, mode)
            if _current(target) != file.text:  # a last look: the client may have just written
                raise Moved(file.name)
            os.replace(tmp, target)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise
    except OSError as exc:
        raise LockdError(
            "internal", f"cannot write {file.name}: {exc.strerror or exc}", file=str(file.path)
        ) from None


def _current(path: Path) -> str | None:
    try:
        with open(path, encoding="utf-8-sig") as f:
            return f.read()
    except FileNotFoundError:
        return None


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask
