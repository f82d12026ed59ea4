"""Debian's headless Chromium, run with the flags that keep it inside this machine."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
)
"""No sandbox (CI runs as root), no GPU, and no background connections (the network is closed)."""


def find_chromium() -> str | None:
    """The Chromium executable, or ``None`` (``make test`` installs Debian's ``chromium`` when it is missing)."""
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


def chromium(executable: str, profile: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run headless Chromium with a fresh profile folder; it waits up to 15 s of page time for the page's fetches."""
    command = [executable, *FLAGS, f"--user-data-dir={profile}", "--virtual-time-budget=15000", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)
