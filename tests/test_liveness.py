"""Who started lockd-mcp? Launchers are seen through by the program they run,
never by words anywhere in their arguments."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from lockd.local.processes import is_wrapper, script_of


@pytest.mark.parametrize(
    ("name", "cmdline", "wrapper"),
    [
        ("uvx", ["uvx", "lockd-mcp"], True),
        ("sh", ["sh", "-c", "lockd-mcp"], True),
        ("lockd-mcp", ["/venv/bin/python", "/venv/bin/lockd-mcp"], True),
        ("python3", ["python3", "-m", "uv", "tool", "run", "lockd-mcp"], True),
        ("python3", ["python3", "/usr/bin/uvx", "lockd-mcp"], True),
        ("python3.11", ["python3.11", "-X", "importtime", "-m", "mcp_tools"], True),
        ("python3", ["python3", "-u", "/home/me/.local/bin/pipx", "run", "lockd"], True),
        ("node", ["node", "/usr/lib/node_modules/npm/bin/npx-cli.js", "-y", "x"], True),
        # An agent written in Python or Node that names lockd-mcp in its own
        # arguments is the agent, not a launcher.
        ("python3", ["python3", "agent.py", "--mcp", "lockd-mcp", "--via", "uvx"], False),
        ("python3", ["python3", "-m", "my_agent", "--server=mcp_tools"], False),
        ("python3", ["python3", "-c", "import lockd-mcp"], False),
        ("node", ["node", "cli.js", "--mcp-command", "npx lockd-mcp"], False),
        ("node", ["node", "-r", "npx", "agent.js"], False),
        ("claude", ["claude", "--mcp-config", "lockd-mcp.json"], False),
    ],
)
def test_wrappers_by_what_the_process_runs(name: str, cmdline: list[str], wrapper: bool) -> None:
    assert is_wrapper(name, cmdline) is wrapper


def test_script_of_skips_options_and_their_values() -> None:
    assert script_of(["python", "-W", "ignore", "-X", "dev", "tool.py", "-m", "x"]) == "tool.py"
    assert script_of(["python", "-mmcp_tools"]) == "mcp_tools"
    assert script_of(["python"]) is None


def test_a_python_agent_naming_lockd_mcp_is_found_through_a_shell(tmp_path: Path) -> None:
    """A real tree: agent (python, `lockd-mcp` in its argv) -> sh -c -> the
    probe, which asks liveness.agent_pid(): the agent, not the test runner."""
    agent = tmp_path / "agent.py"
    agent.write_text(
        textwrap.dedent(
            """
            import os, subprocess, sys
            probe = "from lockd.local import processes; print(processes.agent_pid())"
            out = subprocess.run(["sh", "-c", f"{sys.executable!r} -c {probe!r}; true"],
                                 capture_output=True, text=True, check=True).stdout
            print(os.getpid(), out.strip())
            """
        )
    )
    out = subprocess.run(
        [sys.executable, str(agent), "--mcp-server", "lockd-mcp", "uvx"],
        capture_output=True, text=True, check=True, timeout=30,
    )  # fmt: skip
    me, found = out.stdout.split()
    assert found == me
