"""The logs of `regimescope demo --quick`, written once per test session and copied for each test module that reads
them (the CLI, report and dashboard tests), so the demo trains once."""

from __future__ import annotations

import atexit
import functools
import shutil
import tempfile
from contextlib import redirect_stdout
from io import StringIO
from pathlib import Path

from regimescope.cli.main import main


@functools.cache
def _demo() -> tuple[Path, str]:
    """``(logdir, printed output)`` of one quick demo run, in a folder removed at exit."""
    logdir = Path(tempfile.mkdtemp(prefix="regimescope-demo-"))
    atexit.register(shutil.rmtree, logdir, ignore_errors=True)
    out = StringIO()
    with redirect_stdout(out):
        assert main(["demo", "--quick", "--logdir", str(logdir)]) == 0
    return logdir, out.getvalue()


def quick_demo(target: Path) -> str:
    """Copy the quick demo's logdir to ``target`` (which must not exist) and return what the demo printed, with the
    logdir's name replaced by ``target``."""
    logdir, printed = _demo()
    shutil.copytree(logdir, target)
    return printed.replace(str(logdir), str(target))
