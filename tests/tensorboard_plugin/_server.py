"""A real TensorBoard process on 127.0.0.1 (port chosen by the system) for the dashboard tests."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

STARTUP_SECONDS = 90
"""How long TensorBoard may take to bind and load the runs before the test gives up."""


def get(url: str) -> tuple[int, bytes]:
    """``(status, body)`` of a GET on the loopback server."""
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


@contextmanager
def tensorboard(logdir: Path, expected_runs: int) -> Iterator[str]:
    """Start ``tensorboard --logdir LOGDIR --host 127.0.0.1 --port 0``; yield its base URL once the runs are loaded.

    The process (and the data server it starts) runs in its own session and is ended by its process-group id.
    """
    log = (logdir / "tensorboard.log").open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "tensorboard.main", "--logdir", str(logdir), "--host", "127.0.0.1", "--port", "0"],
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=logdir,  # not the repository, whose build metadata could shadow the installed entry points
        start_new_session=True,
    )
    try:
        base = _wait_for_address(process, logdir / "tensorboard.log")
        deadline = time.monotonic() + STARTUP_SECONDS
        while True:
            status, body = get(base + "data/plugin/regimescope/runs")
            if status == 200 and len(json.loads(body)["runs"]) >= expected_runs:
                break
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"TensorBoard at {base} did not list {expected_runs} regimescope runs: {status} {body[:300]!r}\n"
                    + (logdir / "tensorboard.log").read_text()[-3000:]
                )
            time.sleep(0.5)
        yield base
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        log.close()


def _wait_for_address(process: subprocess.Popen, log: Path) -> str:
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        text = log.read_text()
        match = re.search(r"(http://127\.0\.0\.1:\d+/)", text)
        if match:
            return match.group(1)
        if process.poll() is not None:
            raise RuntimeError(f"TensorBoard exited ({process.returncode}) before binding a port:\n{text}")
        time.sleep(0.2)
    raise TimeoutError(f"TensorBoard did not bind a port in {STARTUP_SECONDS} s:\n{log.read_text()}")
