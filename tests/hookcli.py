"""lockd's agent hooks run as a client runs them: a JSON body on stdin, the
answer on stdout (`lockd guard --hook`, `lockd agent-hook <client>`)."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any


def run_hook(
    args: list[str], body: dict[str, Any] | str, env: dict[str, str], cwd: str | None = "/"
) -> tuple[subprocess.CompletedProcess[str], Any]:
    """The finished process (exit 0 asserted) and its parsed answer (None when silent)."""
    proc = subprocess.run(
        [sys.executable, "-m", "lockd", *args],
        input=body if isinstance(body, str) else json.dumps(body),
        env=env,
        cwd=cwd,
        text=True,
        capture_output=True,
        timeout=30,
    )
    assert proc.returncode == 0, proc.stderr
    return proc, (json.loads(proc.stdout) if proc.stdout.strip() else None)
