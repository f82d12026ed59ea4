"""regimescope.sinks imports tensorboard only when a TensorBoardSink is built."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def _run(code: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=REPO)


def test_importing_sinks_does_not_import_tensorboard() -> None:
    result = _run(
        "import sys\n"
        "import regimescope.sinks\n"
        "assert 'tensorboard' not in sys.modules, 'tensorboard imported'\n"
        "assert 'torch.utils.tensorboard' not in sys.modules, 'torch.utils.tensorboard imported'\n"
        "regimescope.sinks.TensorBoardSink\n"
        "print('ok')\n"
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


def test_missing_tensorboard_gives_install_hint(tmp_path: Path) -> None:
    result = _run(
        "import sys\n"
        "sys.modules['tensorboard'] = None\n"
        "from regimescope.sinks import TensorBoardSink\n"
        "try:\n"
        f"    TensorBoardSink({str(tmp_path)!r})\n"
        "except ImportError as err:\n"
        "    print(err)\n"
    )
    assert result.returncode == 0, result.stderr
    assert "pip install tensorboard" in result.stdout
