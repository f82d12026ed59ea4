"""The exact solutions are test oracles: the runtime monitor and forecast never import them."""

from __future__ import annotations

import subprocess
import sys


def test_the_monitor_and_the_forecast_import_no_exact_solution() -> None:
    code = (
        "import sys, regimescope.monitor, regimescope.forecast; "
        "print(sorted(m for m in sys.modules if m.startswith('regimescope.exact')))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert result.stdout.strip() == "[]"
