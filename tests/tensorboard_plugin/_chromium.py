"""Debian's headless Chromium, run with the flags that keep it inside this machine, and its screenshots.

Set ``REGIMESCOPE_SCREENSHOTS=DIR`` to keep every screenshot a test takes in ``DIR``:
``REGIMESCOPE_SCREENSHOTS=docs .venv/bin/python -m pytest tests/tensorboard_plugin tests/report -k screenshot``
refreshes ``docs/dashboard.png`` and ``docs/report.png``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

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


def screenshot(executable: str, url: str, size: str, path: Path) -> np.ndarray:
    """Load ``url`` in a ``size`` (``"W,H"``) window, save its screenshot to ``path`` and return its RGB pixels.

    The file is also copied into ``$REGIMESCOPE_SCREENSHOTS`` when that is set.
    """
    image_module = pytest.importorskip("PIL.Image")
    profile = path.parent / f"profile-{path.stem}"
    result = chromium(executable, profile, f"--window-size={size}", f"--screenshot={path}", url)
    assert path.exists(), result.stderr[-2000:]
    keep = os.environ.get("REGIMESCOPE_SCREENSHOTS")
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, Path(keep) / path.name)
    return np.asarray(image_module.open(path).convert("RGB"), dtype=np.int16)


def count_color(pixels: np.ndarray, color: tuple[int, int, int]) -> int:
    """Pixels within 6 of ``color`` in every channel."""
    return int((np.abs(pixels - np.array(color)).max(axis=2) <= 6).sum())
