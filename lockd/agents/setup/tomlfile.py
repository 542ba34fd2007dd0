"""Codex's TOML settings (`config.toml`), read and written the way `jsonfile`
does JSON: errors that name the file and the line, and the user's file kept
as it was (comments, order, spacing) around lockd's entries, by tomlkit."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tomlkit
from tomlkit.exceptions import ParseError

from lockd.agents.setup.jsonfile import read_text, shown
from lockd.core.errors import invalid


@dataclass
class TomlFile:
    path: Path
    text: str | None  # None: the file does not exist
    data: Any  # a tomlkit document: a dict that remembers its layout

    @property
    def name(self) -> str:
        return shown(self.path)

    def render(self, data: Any) -> str:
        """The document; a table taken out leaves no blank lines at the end."""
        text = tomlkit.dumps(data)
        return text.rstrip("\n") + "\n" if text.strip() else ""


def load(path: Path) -> TomlFile:
    """The file's document; empty when it is missing. Malformed TOML is refused
    naming the file and the line, and nothing is written."""
    text = read_text(path)
    if text is None:
        return TomlFile(path, None, tomlkit.document())
    try:
        data = tomlkit.parse(text)
    except ParseError as exc:
        raise invalid(
            f"{shown(path)} line {exc.line}, column {exc.col}: it is not valid TOML "
            f"({exc}), so nothing was written: fix it (or move it aside) and run again",
            file=str(path),
            line=exc.line,
            column=exc.col,
        ) from None
    return TomlFile(path, text, data)
