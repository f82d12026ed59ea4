"""Running a snippet in a fresh interpreter, for checks of what gets imported or patched at import time."""

from __future__ import annotations

import subprocess
import sys


def run_fresh(code: str) -> str:
    """Run ``code`` with this interpreter in a new process; its standard output, after asserting it succeeded."""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return result.stdout
