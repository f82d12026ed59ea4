"""One capture pass: everything the active indicators need, computed once per measurement."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from typing import Any

import torch
from torch import nn

from regimescope.capture.config import CaptureConfig
from regimescope.capture.layers import resolve_layers
from regimescope.capture.needs import Need
from regimescope.capture.snapshot import Snapshot
from regimescope.guards import no_autocast, preserved_modes, preserved_rng
from regimescope.ntk.engine import SEED, empirical_ntk
from regimescope.ntk.model.model_call import ModelCall
from regimescope.probe import Probe


def _cpu(t: torch.Tensor) -> torch.Tensor:
    return t.detach().to("cpu", copy=True)


def _flat(t: torch.Tensor) -> torch.Tensor:
    return t.reshape(t.shape[0], -1)


def _forward_views(model: nn.Module, probe: Probe, config: CaptureConfig, needs: set[Need]) -> dict[str, Any]:
    """One no-grad forward with hooks on the watched layers; returns outputs, features and patterns."""
    features: dict[str, list[torch.Tensor]] = {}
    patterns: dict[str, list[torch.Tensor]] = {}
    watched: list[tuple[dict[str, list[torch.Tensor]], dict[str, nn.Module], Any]] = []
    if Need.FEATURES in needs:
        watched.append((features, resolve_layers(model, config.feature_layers, "layers"), lambda t: _cpu(_flat(t))))
    if Need.ACTIVATION_PATTERNS in needs:
        watched.append((patterns, resolve_layers(model, config.pattern_layers, "pattern_layers"), lambda t: _cpu(_flat(t) > 0)))
    handles = []
    device = probe.device
    try:
        for store, modules, convert in watched:
            for name, module in modules.items():
                def hook(_m: nn.Module, _i: Any, out: Any, name: str = name, store: dict = store, convert: Any = convert) -> None:
                    if isinstance(out, torch.Tensor) and out.dim() > 0 and out.shape[0] == probe.size:
                        store.setdefault(name, []).append(convert(out))

                handles.append(module.register_forward_hook(hook))
        with (
            preserved_modes(model, train=config.mode == "train"),
            preserved_rng([device], seed=SEED),
            no_autocast(device.type),
            torch.no_grad(),
        ):
            call = ModelCall.build(model, config.dtype, config.output_fn)
            outputs = call({}, call.prepare(probe.inputs))
    finally:
        for handle in handles:
            handle.remove()
    return {
        "outputs": _cpu(outputs),
        "features": {name: torch.cat(parts, dim=1) for name, parts in features.items()},
        "activation_patterns": {name: torch.cat(parts, dim=1) for name, parts in patterns.items()},
    }


def layer_kernels(
    model: nn.Module, probe: Probe, config: CaptureConfig, layers: Collection[str] | None = None
) -> dict[str, torch.Tensor]:
    """The per-layer trace NTK blocks ``K_l`` of ``model`` on the probe, on the model's device.

    Args:
        model: The model (unwrapped).
        probe: The probe, on the model's device.
        config: Capture settings (mode, dtype, output map, implementation, memory budget).
        layers: Only these blocks (names from :func:`regimescope.ntk.layer_names`); ``None``: every block.

    Returns:
        ``layer name -> (n, n)`` kernel block; the blocks of all layers sum to the whole kernel.
    """
    return empirical_ntk(model, probe.inputs, layers=layers, **config.kernel_options())  # type: ignore[return-value]


def capture(
    model: nn.Module,
    probe: Probe,
    needs: Iterable[Need],
    config: CaptureConfig,
    step: int,
    kernels: Mapping[str, torch.Tensor] | None = None,
) -> Snapshot:
    """Measure the model on the probe: only what ``needs`` asks for, the NTK at most once.

    The model is left exactly as it was (parameters, buffers, ``.grad``, mode flags, hooks, random state).

    Args:
        model: The model (unwrapped).
        probe: The probe, on the model's device.
        needs: Union of the active indicators' needs.
        config: Capture settings.
        step: Global step recorded in the snapshot.
        kernels: The per-layer kernel blocks when they were computed already (by every rank of a distributed job
            for its share of the layers, see :mod:`regimescope.split_kernel`); ``None`` computes them here.

    Returns:
        The snapshot, tensors on CPU.
    """
    needs = set(needs)
    snapshot = Snapshot(step=step)
    if Need.WEIGHTS in needs:
        snapshot.weights = {name: _cpu(p) for name, p in model.named_parameters() if p.requires_grad}
    if needs & {Need.OUTPUTS, Need.FEATURES, Need.ACTIVATION_PATTERNS}:
        views = _forward_views(model, probe, config, needs)
        snapshot.outputs = views["outputs"]
        snapshot.features = views["features"]
        snapshot.activation_patterns = views["activation_patterns"]
    if Need.KERNEL in needs:
        computed = layer_kernels(model, probe, config) if kernels is None else kernels
        snapshot.layer_kernels = {name: _cpu(k) for name, k in computed.items()}
    return snapshot


def merged_needs(indicators: Iterable[Any]) -> set[Need]:
    """Union of the ``needs`` of ``indicators``."""
    merged: set[Need] = set()
    for indicator in indicators:
        merged |= set(indicator.needs)
    return merged
