"""The engine keeps to ``max_memory``: measured resident memory against the budget, in a fresh process.

The child process sets glibc's ``MALLOC_MMAP_THRESHOLD_`` so that every allocation over 64 KiB is its own mapping,
returned to the system when freed: the resident set then follows the live tensors instead of the allocator's
cache, and ``benchmarks/peak_memory.py`` (a sampling thread over ``/proc/self/statm``) measures the engine's real
peak. Each case is chosen so that the budget binds (the plan chunks the work to fit it).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
MiB = 2**20
MARGIN = 1.10
"""The measured peak may exceed the budget by this factor ..."""
ALLOWANCE = 4 * MiB
"""... plus this much (torch's own small allocations, the sampler's granularity)."""

CHILD = textwrap.dedent("""
    import json, sys, warnings
    import torch
    sys.path.insert(0, "benchmarks")
    import models
    from peak_memory import measure
    from regimescope.ntk import empirical_ntk, plan_ntk
    torch.set_num_threads(1)
    torch.manual_seed(0)
    gpt = models.GPT(vocab=512, positions=64, layers=2, width=64, heads=4).eval()
    cases = {
        "mlp_full": (models.mlp().eval(), torch.randn(256, 784), dict(kind="full"), 32),
        "mlp_per_layer": (models.mlp().eval(), torch.randn(192, 784), dict(kind="full", per_layer=True), 48),
        "cnn_trace": (models.cnn().eval(), torch.randn(48, 3, 32, 32), dict(), 24),
        "gpt_projected": (gpt, torch.randint(0, 512, (32, 32)), dict(output_projection=8), 32),
        "gpt_sketch": (gpt, torch.randint(0, 512, (32, 32)), dict(output_projection=8, sketch=1024), 48),
    }
    report = {}
    for name, (model, x, options, mib) in cases.items():
        budget = mib * 2**20
        plan = plan_ntk(model, x, max_memory=budget, **options)
        empirical_ntk(model, x[:2], **options)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            _, _, peak = measure(lambda: empirical_ntk(model, x, max_memory=budget, **options), interval=0.0002)
        report[name] = dict(budget=budget, planned=plan.peak_bytes, peak=peak, fits=plan.fits,
                            passes=plan.forward_passes)
    print(json.dumps(report))
""")


@pytest.fixture(scope="module")
def measured() -> dict[str, dict[str, int]]:
    env = dict(os.environ, MALLOC_MMAP_THRESHOLD_="65536", MALLOC_TRIM_THRESHOLD_="0", OMP_NUM_THREADS="1")
    done = subprocess.run([sys.executable, "-c", CHILD], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("case", ["mlp_full", "mlp_per_layer", "cnn_trace", "gpt_projected", "gpt_sketch"])
def test_measured_peak_stays_within_the_budget(measured: dict[str, dict[str, int]], case: str) -> None:
    result = measured[case]
    assert result["fits"] and result["passes"] > 1, f"the budget does not bind in case {case}: {result}"
    limit = MARGIN * result["budget"] + ALLOWANCE
    assert result["peak"] <= limit, (
        f"{case}: measured peak {result['peak'] / MiB:.1f} MiB exceeds the budget "
        f"{result['budget'] / MiB:.0f} MiB (+10 % + 4 MiB); the plan estimated {result['planned'] / MiB:.1f} MiB"
    )
