"""Fingerprints that tie a monitor's saved state to its run: the model's layout, the probe, the weights at saving.

A resumed monitor compares against the step-0 references it saved; loading the state of another run would compare
this model with another model's initialisation and report a regime that never happened. The state therefore carries
three fingerprints, checked when the monitor attaches:

- the layout: ``parameter name -> shape`` of the trainable parameters (another architecture or width);
- the probe: its size, shapes, dtypes and a SHA-256 digest of its bytes (another probe; the same examples in another
  dtype are another probe too: a kernel computed on them differs at the dtype's rounding);
- the weights at saving: per parameter ``(sum x, sum |x|)`` in float64. A checkpoint saves the model and the
  monitor state at the same moment, so a resumed model must carry the same weights; another initialisation, or a
  monitor state saved at another step than the weights, does not.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from regimescope import batch
from regimescope.probe import Probe

RELATIVE_TOLERANCE = 1e-6
"""Relative difference of a weight sum still counted as equal (summation order differs across devices)."""


def layout(model: nn.Module) -> dict[str, list[int]]:
    """``parameter name -> shape`` of every trainable parameter."""
    return {name: list(p.shape) for name, p in model.named_parameters() if p.requires_grad}


def probe_digest(probe: Probe) -> dict[str, Any]:
    """The probe's size, tensor shapes and dtypes, and a SHA-256 digest of its inputs' and targets' bytes."""
    tensors = batch.tensor_leaves(probe.inputs) + ([] if probe.targets is None else [probe.targets])
    digest = hashlib.sha256()
    for tensor in tensors:
        digest.update(str((tuple(tensor.shape), str(tensor.dtype))).encode())
        digest.update(tensor.detach().to("cpu").contiguous().view(torch.uint8).numpy().tobytes())
    return {
        "size": probe.size,
        "shapes": [list(t.shape) for t in tensors],
        "dtypes": [str(t.dtype) for t in tensors],
        "sha256": digest.hexdigest(),
    }


def _probe_difference(saved: Mapping[str, Any], now: Mapping[str, Any]) -> str:
    """How the probe of a saved fingerprint differs from ``now`` (their digests differ), in one clause."""
    if saved["size"] != now["size"]:
        return f"it was saved with a probe of {saved['size']} examples, this one has {now['size']}"
    if saved["shapes"] != now["shapes"]:
        return f"it was saved with a probe of tensor shapes {saved['shapes']}, this one has {now['shapes']}"
    if saved.get("dtypes", now["dtypes"]) != now["dtypes"]:  # states saved before dtypes were recorded lack them
        return (
            f"it was saved with a probe in {', '.join(saved['dtypes'])}, this one is in {', '.join(now['dtypes'])} (a "
            "probe in another dtype is another probe: resume in the dtypes the state was saved with)"
        )
    return "it was saved with another probe (other examples of the same shapes)"


def weight_sums(model: nn.Module) -> dict[str, list[float]]:
    """``parameter name -> [sum x, sum |x|]`` (float64) of every trainable parameter."""
    sums = {}
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.requires_grad:
                values = p.detach().double()
                sums[name] = [float(values.sum()), float(values.abs().sum())]
    return sums


def _close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=RELATIVE_TOLERANCE, abs_tol=1e-12)


def mismatch(saved: Mapping[str, Any], model: nn.Module, probe: Probe) -> str | None:
    """What differs between a saved fingerprint and this run, in one sentence; ``None`` when it is the same run.

    Args:
        saved: ``{"layout", "probe", "weights"}`` as :func:`fingerprint` made them when the state was saved.
        model: The model the monitor measures now.
        probe: The probe it measures on now.
    """
    shapes = layout(model)
    if saved["layout"] != shapes:
        missing = sorted(set(saved["layout"]) ^ set(shapes))
        changed = sorted(n for n in set(saved["layout"]) & set(shapes) if saved["layout"][n] != shapes[n])
        detail = f"parameters {missing[:3]} are in only one of them" if missing else f"`{changed[0]}` changed shape"
        return f"it was saved for another model ({detail})"
    digest = probe_digest(probe)
    if saved["probe"]["sha256"] != digest["sha256"]:
        return _probe_difference(saved["probe"], digest)
    sums = weight_sums(model)
    for name, (total, absolute) in saved.get("weights", {}).items():
        now = sums[name]
        if not (_close(total, now[0]) and _close(absolute, now[1])):
            return (
                f"the model's weights are not those saved with it (`{name}` differs): it belongs to another run or "
                "another checkpoint"
            )
    return None


def fingerprint(model: nn.Module, probe: Probe) -> dict[str, Any]:
    """The layout, probe digest and weight sums of a run now (plain containers, ``weights_only``-loadable)."""
    return {"layout": layout(model), "probe": probe_digest(probe), "weights": weight_sums(model)}
