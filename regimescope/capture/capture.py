"""One capture pass: everything the active indicators need, computed once per measurement."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from typing import Any

import torch
from torch import nn

from regimescope.capture.config import CaptureConfig
from regimescope.capture.layers import normalization_layers, resolve_layers
from regimescope.capture.needs import Need
from regimescope.capture.probe_statistics import with_probe_statistics
from regimescope.capture.snapshot import Snapshot
from regimescope.guards import no_autocast, preserved_modes, preserved_rng
from regimescope.ntk.engine import SEED, empirical_ntk
from regimescope.ntk.model.model_call import ModelCall
from regimescope.probe import Probe


def _cpu(t: torch.Tensor) -> torch.Tensor:
    return t.detach().to("cpu", copy=True)


def _flat(t: torch.Tensor) -> torch.Tensor:
    return t.reshape(t.shape[0], -1)


def _channel_statistics(x: torch.Tensor) -> dict[str, torch.Tensor]:
    """Per-channel mean and biased variance of a BatchNorm input ``(n, C, ...)``, float64 on CPU."""
    dims = [d for d in range(x.dim()) if d != 1]
    x = x.detach().double()
    return {"batch_mean": x.mean(dims).cpu(), "batch_var": x.var(dims, unbiased=False).cpu()}


def _normalization(model: nn.Module, inputs: dict[str, torch.Tensor]) -> dict[str, dict[str, torch.Tensor]]:
    """The running statistics of the watched BatchNorm layers next to the probe statistics seen at their input."""
    modules = dict(model.named_modules())
    found = {}
    for name, stats in inputs.items():
        module = modules[name]
        found[name] = {
            **stats,
            "running_mean": _cpu(module.running_mean).double(),
            "running_var": _cpu(module.running_var).double(),
            "eps": torch.tensor(float(module.eps), dtype=torch.float64),
        }
    return found


def _forward_views(
    model: nn.Module, probe: Probe, config: CaptureConfig, needs: set[Need], running: nn.Module
) -> dict[str, Any]:
    """One no-grad forward of ``model`` with hooks on the watched layers; returns outputs, features, patterns and
    BatchNorm statistics (the running ones read from ``running``, the user's model)."""
    features: dict[str, list[torch.Tensor]] = {}
    patterns: dict[str, list[torch.Tensor]] = {}
    norm_inputs: dict[str, dict[str, torch.Tensor]] = {}
    watched: list[tuple[dict[str, list[torch.Tensor]], dict[str, nn.Module], Any]] = []
    if Need.FEATURES in needs:
        watched.append((features, resolve_layers(model, config.feature_layers, "layers"), lambda t: _cpu(_flat(t))))
    if Need.ACTIVATION_PATTERNS in needs:
        watched.append((patterns, resolve_layers(model, config.pattern_layers, "pattern_layers"), lambda t: _cpu(_flat(t) > 0)))
    norms = resolve_layers(model, normalization_layers(model), "normalization") if Need.NORMALIZATION in needs else {}
    handles = []
    device = probe.device
    try:
        for store, modules, convert in watched:
            for name, module in modules.items():
                def hook(_m: nn.Module, _i: Any, out: Any, name: str = name, store: dict = store, convert: Any = convert) -> None:
                    if isinstance(out, torch.Tensor) and out.dim() > 0 and out.shape[0] == probe.size:
                        store.setdefault(name, []).append(convert(out))

                handles.append(module.register_forward_hook(hook))
        for name, module in norms.items():
            def norm_hook(_m: nn.Module, args: tuple, name: str = name) -> None:
                norm_inputs.setdefault(name, _channel_statistics(args[0]))

            handles.append(module.register_forward_pre_hook(norm_hook))
        with (
            preserved_modes(model, mode=config.mode),
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
        "normalization": _normalization(running, norm_inputs),
    }


def measured_model(model: nn.Module, probe: Probe, config: CaptureConfig) -> nn.Module:
    """The module a capture measures: with ``mode="probe_stats"``, a copy of ``model`` whose BatchNorm layers hold
    the probe's statistics (:func:`~regimescope.capture.probe_statistics.with_probe_statistics`); else ``model``."""
    return with_probe_statistics(model, probe) if config.mode == "probe_stats" else model


def layer_kernels(
    model: nn.Module, probe: Probe, config: CaptureConfig, layers: Collection[str] | None = None
) -> dict[str, torch.Tensor]:
    """The per-layer trace NTK blocks ``K_l`` of ``model`` on the probe, on the model's device.

    Args:
        model: The model (unwrapped).
        probe: The probe, on the model's device.
        config: Capture settings (mode, dtype, output map, implementation, memory budget).
        layers: Only these blocks (names from :func:`regimescope.ntk.layer_names`); ``None``: the blocks of
            ``config.kernel_layers``.

    Returns:
        ``layer name -> (n, n)`` kernel block; the blocks of all layers sum to the whole kernel.
    """
    options = config.kernel_options()
    if layers is not None:
        options["layers"] = layers
    return empirical_ntk(model, probe.inputs, **options)  # type: ignore[return-value]


def projected_layer_kernels(
    model: nn.Module, probe: Probe, config: CaptureConfig
) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """The per-layer trace-kernel estimates of ``config.output_projection = m >= 2`` output combinations, and the
    estimates of each half of the combinations.

    One ``kind="full"`` computation gives the ``(n, n, m, m)`` kernel of the combinations; row ``r`` of the seeded
    Rademacher projection gives the unbiased estimate ``m K_rr`` of the trace kernel (:mod:`regimescope.ntk`'s
    output map), so the estimate is ``sum_r K_rr`` and each half ``H`` of the rows (even, odd) gives its own unbiased
    estimate ``(m / |H|) sum_{r in H} K_rr``. An indicator computed on either half differs from the whole by the
    projection's noise: half their spread is its standard error.

    Returns:
        ``(layer -> (n, n) estimate, layer -> (2, n, n) half estimates)``, on the model's device.
    """
    full = empirical_ntk(model, probe.inputs, kind="full", **config.kernel_options())
    kernels, halves = {}, {}
    for name, block in full.items():  # type: ignore[union-attr]
        diagonal = torch.diagonal(block, dim1=2, dim2=3)
        m = diagonal.shape[-1]
        even, odd = diagonal[..., 0::2], diagonal[..., 1::2]
        kernels[name] = diagonal.sum(-1)
        halves[name] = torch.stack([even.sum(-1) * (m / even.shape[-1]), odd.sum(-1) * (m / odd.shape[-1])])
    return kernels, halves


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
            for its share of the layers, see :mod:`regimescope.split_kernel`); ``None`` computes them here, with the
            projection's half estimates when ``config.output_projection >= 2``.

    Returns:
        The snapshot, tensors on CPU.
    """
    needs = set(needs)
    snapshot = Snapshot(step=step)
    if Need.WEIGHTS in needs:
        snapshot.weights = {name: _cpu(p) for name, p in model.named_parameters() if p.requires_grad}
    measured = measured_model(model, probe, config)
    if needs & {Need.OUTPUTS, Need.FEATURES, Need.ACTIVATION_PATTERNS, Need.NORMALIZATION}:
        views = _forward_views(measured, probe, config, needs, running=model)
        snapshot.outputs = views["outputs"]
        snapshot.features = views["features"]
        snapshot.activation_patterns = views["activation_patterns"]
        snapshot.normalization = views["normalization"]
    if Need.KERNEL in needs:
        halves: dict[str, torch.Tensor] = {}
        if kernels is not None:
            computed = kernels
        elif (config.output_projection or 0) >= 2:
            computed, halves = projected_layer_kernels(measured, probe, config)
        else:
            computed = layer_kernels(measured, probe, config)
        snapshot.layer_kernels = {name: _cpu(k) for name, k in computed.items()}
        snapshot.layer_kernel_halves = {name: _cpu(h) for name, h in halves.items()}
    return snapshot
