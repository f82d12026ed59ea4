"""Speed and peak memory of regimescope's empirical NTK against the PyTorch tutorial's two methods.

Runs, in one process and on the same weights and inputs, ``regimescope.empirical_ntk`` and re-implementations of
the tutorial's Jacobian contraction and NTK-vector products (``benchmarks/tutorial_ntk.py``) for the issue's MLP
(784-512-512-10) and CNN at n = 64, trace and full kernels, and the MLP trace kernel at n = 1024. Time is the
minimum of ``--repeat`` runs after one warm-up (the median is printed beside it); peak memory is the resident set size sampled every millisecond
during one run, above its value at the start (``benchmarks/peak_memory.py``). NTK-vector products are skipped
where their estimated memory exceeds half of the free memory. ``--large`` adds a CIFAR ResNet-18 (11M
parameters) at n = 64 and a GPT-2-small-sized transformer (124M parameters) in sketch mode, and measures the
sketch's error against the exact kernel on a smaller transformer.

Usage::

    python benchmarks/ntk_speed.py [--threads 2] [--repeat 3] [--large]
"""

from __future__ import annotations

import argparse
import statistics
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

import models  # noqa: E402
import tutorial_ntk  # noqa: E402
from peak_memory import measure  # noqa: E402

from regimescope.ntk import empirical_ntk, plan_ntk  # noqa: E402
from regimescope.ntk.planning.memory import free_memory  # noqa: E402
from regimescope.scenarios.resnet import ResNet18  # noqa: E402

MiB = 2**20


def _timed(fn: Callable[[], Any], repeat: int) -> tuple[Any, float, int]:
    """Warm up once, then ``repeat`` timed runs and one memory-sampled run.

    Returns the result, the best (minimum) time and the peak: other processes share this machine's two cores, and
    the minimum is the time least inflated by them (the median is printed too).
    """
    fn()
    times = []
    for _ in range(repeat):
        _, elapsed, _ = measure(fn, interval=1.0)
        times.append(elapsed)
    result, _, peak = measure(fn)
    print(f"    (times: min {min(times):.3f} s, median {statistics.median(times):.3f} s over {repeat} runs)")
    return result, min(times), peak


def _relative(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a.double() - b.double()).norm() / b.double().norm()).item()


def _row(name: str, seconds: float | None, peak: int | None, note: str = "") -> None:
    time_text = "-" if seconds is None else f"{seconds:9.3f}"
    peak_text = "-" if peak is None else f"{peak / MiB:9.1f}"
    print(f"  {name:<28} {time_text:>9} s {peak_text:>9} MiB  {note}")


def compare(label: str, model: torch.nn.Module, x: torch.Tensor, kind: str, repeat: int) -> dict[str, float]:
    """regimescope vs the tutorial's methods on one model, one kind; prints a table and returns the ratios."""
    model.eval()
    print(f"\n{label}, n={x.shape[0]}, kind={kind}")
    ours, t_ours, m_ours = _timed(lambda: empirical_ntk(model, x, kind=kind), repeat)
    _row("regimescope", t_ours, m_ours)
    contraction, t_jc, m_jc = _timed(lambda: tutorial_ntk.jacobian_contraction(model, x, x, kind), repeat)
    _row("jacobian contraction", t_jc, m_jc, f"rel. diff to regimescope {_relative(ours, contraction):.1e}")
    k = contraction.shape[-1] if kind == "full" else model(x[:1]).shape[1]
    activations = sum(t.numel() for t in _activations(model, x[:1]))
    need = tutorial_ntk.ntk_vector_products_bytes(model, x.shape[0], x.shape[0], k, activations)
    if need < free_memory(torch.device("cpu")) // 2:
        _, t_vp, m_vp = _timed(lambda: tutorial_ntk.ntk_vector_products(model, x, x, kind), 1)
        _row("ntk-vector products", t_vp, m_vp)
    else:
        _row("ntk-vector products", None, None, f"not run: needs about {need / 2**30:.0f} GiB")
    ratios = {"speedup": t_jc / t_ours, "memory": m_ours / max(m_jc, 1)}
    print(f"  -> regimescope is {ratios['speedup']:.1f}x faster than Jacobian contraction, "
          f"with {ratios['memory']:.3f}x its peak memory")
    return ratios


def _activations(model: torch.nn.Module, x: torch.Tensor) -> list[torch.Tensor]:
    outs: list[torch.Tensor] = []
    handles = [m.register_forward_hook(lambda _m, _i, o: outs.append(o)) for m in model.modules()
               if not list(m.children())]
    try:
        with torch.no_grad():
            model(x)
    finally:
        for h in handles:
            h.remove()
    return outs


def large_mlp(repeat: int) -> None:
    """The MLP trace kernel at n = 1024."""
    torch.manual_seed(0)
    model, x = models.mlp().eval(), torch.randn(1024, 784)
    _, seconds, peak = _timed(lambda: empirical_ntk(model, x), repeat)
    print("\nMLP, n=1024, kind=trace")
    _row("regimescope", seconds, peak, "target: under 1024 MiB")


def resnet() -> None:
    """ResNet-18 at n = 64 (trace), with its plan; one memory-sampled run."""
    torch.manual_seed(0)
    model, x = ResNet18(small_inputs=True, torchvision_init=False).eval(), torch.randn(64, 3, 32, 32)
    budget = 8 * 2**30
    print(f"\nResNet-18 ({sum(p.numel() for p in model.parameters()):,} parameters), n=64, kind=trace, "
          f"max_memory={budget / 2**30:.0f} GiB")
    print(plan_ntk(model, x, max_memory=budget).summary())
    _, seconds, peak = measure(lambda: empirical_ntk(model, x, max_memory=budget))
    _row("regimescope", seconds, peak, "target: within 24 GiB")


def _projection(k: int, m: int) -> Callable[[torch.Tensor], torch.Tensor]:
    """``output_fn`` returning ``m`` fixed Rademacher combinations of the flattened outputs."""
    signs = 2.0 * torch.randint(0, 2, (m, k), generator=torch.Generator().manual_seed(7)) - 1.0
    return lambda out: out.reshape(out.shape[0], -1) @ (signs / m**0.5).T


def transformer() -> None:
    """A 124M-parameter GPT in sketch mode, and the sketch's error on a smaller one."""
    torch.manual_seed(0)
    small = models.GPT(vocab=512, positions=64, layers=2, width=64, heads=4).eval()
    tokens = torch.randint(0, 512, (16, 16))
    project = _projection(16 * 512, 8)
    exact = empirical_ntk(small, tokens, output_fn=project)
    print(f"\nSketch error, GPT with {sum(p.numel() for p in small.parameters()):,} parameters, n=16, T=16, "
          "8 fixed output combinations, every block over m parameters sketched (implementation='layer_per_sample'),"
          " 5 seeds")
    for m in (256, 1024, 4096):
        errors = [
            _relative(empirical_ntk(small, tokens, output_fn=project, sketch=m, seed=seed,
                                    implementation="layer_per_sample"), exact)
            for seed in range(5)
        ]
        print(f"  m={m:<5} relative Frobenius error: mean {statistics.mean(errors):.4f}, max {max(errors):.4f} "
              f"(sqrt(2/m) = {(2 / m) ** 0.5:.4f})")
    model = models.GPT().eval()
    tokens = torch.randint(0, 50257, (16, 64))
    budget = 8 * 2**30
    print(f"\nGPT ({sum(p.numel() for p in model.parameters()):,} parameters), n=16, T=64, output_projection=8, "
          f"sketch=8192, max_memory={budget / 2**30:.0f} GiB")
    arguments: dict[str, Any] = dict(output_projection=8, sketch=8192, max_memory=budget)
    print(plan_ntk(model, tokens, **arguments).summary())
    _, seconds, peak = measure(lambda: empirical_ntk(model, tokens, **arguments))
    _row("regimescope (sketch)", seconds, peak, "target: within 16 GiB")


def main(argv: list[str] | None = None) -> None:
    """Run the benchmark and print the tables and ratios."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    parser.add_argument("--repeat", type=int, default=5, help="timed runs per measurement (default 5)")
    parser.add_argument("--large", action="store_true", help="also ResNet-18 and the 124M transformer")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {args.threads} threads, float32")
    torch.manual_seed(0)
    ratios = {}
    mlp, x_mlp = models.mlp(), torch.randn(64, 784)
    cnn, x_cnn = models.cnn(), torch.randn(64, 3, 32, 32)
    for kind in ("trace", "full"):
        ratios[("MLP", kind)] = compare("MLP 784-512-512-10", mlp, x_mlp, kind, args.repeat)
        ratios[("CNN", kind)] = compare("CNN conv32-conv64-dense", cnn, x_cnn, kind, args.repeat)
    large_mlp(args.repeat)
    print("\nSummary (regimescope vs Jacobian contraction; targets: MLP >= 10x, CNN >= 3x, memory <= 0.25x)")
    for (name, kind), r in ratios.items():
        print(f"  {name:<4} {kind:<6} {r['speedup']:7.1f}x faster   {r['memory']:.3f}x peak memory")
    if args.large:
        resnet()
        transformer()


if __name__ == "__main__":
    main()
