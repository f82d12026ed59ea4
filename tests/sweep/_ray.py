"""Ray for the tests that need it: session files in a fresh folder, removed afterwards, and a shared local instance."""

from __future__ import annotations

import contextlib
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest


@contextlib.contextmanager
def ray_session_folder() -> Iterator[None]:
    """Point Ray's session files (``RAY_TMPDIR``, by default ``/tmp/ray``) at a fresh folder and remove it after.

    The folder is short (Ray puts its sockets there, and socket paths are limited to about 100 characters). Ray's
    processes may still write while they exit after ``ray.shutdown()``: the removal is retried for a few seconds.
    """
    folder = Path(tempfile.mkdtemp(prefix="rs-ray-"))
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("RAY_TMPDIR", str(folder))
        yield
    for _ in range(50):
        shutil.rmtree(folder, ignore_errors=True)
        if not folder.exists():
            return
        time.sleep(0.1)


@pytest.fixture
def ray_tmpdir() -> Iterator[None]:
    """Skip without Ray Tune; Ray's session files of the test in a folder removed after it."""
    pytest.importorskip("ray.tune", reason="Ray Tune is not installed (pip install -e '.[ray]')")
    with ray_session_folder():
        yield


@pytest.fixture(scope="module")
def local_ray() -> Iterator[None]:
    """Skip without Ray Tune; a local Ray instance (2 CPUs) shared by a test file's sweeps, which use it instead of
    starting their own."""
    ray = pytest.importorskip("ray", reason="Ray Tune is not installed (pip install -e '.[ray]')")
    pytest.importorskip("ray.tune", reason="Ray Tune is not installed (pip install -e '.[ray]')")
    with ray_session_folder():
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
        try:
            yield
        finally:
            ray.shutdown()
