"""`lockd.core.patch`: the files an apply_patch envelope names, and the git
commits a shell line runs, read from text alone."""

from __future__ import annotations

import pytest

from lockd.core.patch import LIMIT, MAX_FILES, command_patch_files, git_commit, patch_files

ENVELOPE = """*** Begin Patch
*** Add File: src/new.py
+print("hi")
*** Update File: src/a.py
*** Move to: src/b.py
@@ def f():
-    return 1
+    return 2
*** Delete File: docs/old file.md
*** Update File: src/a.py
*** End Patch
"""


def test_every_header_names_a_file_once_in_order() -> None:
    assert patch_files(ENVELOPE) == ["src/new.py", "src/a.py", "src/b.py", "docs/old file.md"]


def test_content_lines_that_look_like_headers_are_not_headers() -> None:
    text = "*** Begin Patch\n*** Update File: a.py\n@@\n+x = '*** Delete File: b.py'\n"
    assert patch_files(text) == ["a.py"]


@pytest.mark.parametrize(
    "command",
    [
        f"apply_patch <<'EOF'\n{ENVELOPE}EOF\n",
        f'apply_patch <<"PATCH"\n{ENVELOPE}PATCH',
        f"cd src && apply_patch <<EOF\n{ENVELOPE}EOF\necho done",
        f"applypatch <<-'EOF'\n{ENVELOPE}  EOF\n",
    ],
)
def test_a_heredoc_of_apply_patch_in_a_shell_command(command: str) -> None:
    assert command_patch_files(command) == [
        "src/new.py", "src/a.py", "src/b.py", "docs/old file.md"
    ]  # fmt: skip


@pytest.mark.parametrize(
    "command",
    ["cat <<'EOF'\n*** Update File: a.py\nEOF", "echo apply_patch", "git commit -m x", ""],
)
def test_other_commands_touch_no_files(command: str) -> None:
    assert command_patch_files(command) == []


def test_the_cost_is_bounded() -> None:
    many = "".join(f"*** Add File: f{i}.py\n" for i in range(MAX_FILES * 3))
    assert len(patch_files(many)) == MAX_FILES
    late = "x" * LIMIT + "\n*** Add File: late.py\n"
    assert patch_files(late) == []  # past the limit: not read


@pytest.mark.parametrize(
    ("command", "every"),
    [
        ("git commit -m x", False),
        ("git commit -qam 'bob: a.py'", True),
        ("printf x > a && git commit --all -m x", True),
        ("git -C repo commit -a", True),
        ("git commit -m '-a'", False),
        ("echo git commit", None),
        ("git status; ls", None),
    ],
)
def test_git_commit_in_a_shell_line(command: str, every: bool | None) -> None:
    assert git_commit(command) is every
