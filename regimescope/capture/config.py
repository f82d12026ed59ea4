"""How a capture computes: mode, dtype, NTK implementation, watched layers."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from regimescope.guards import check_mode
from regimescope.ntk.implementation import DEFAULT_IMPLEMENTATION, Implementation, parse_implementation
from regimescope.ntk.planning.probe_cache import ProbePassCache
from regimescope.outputs import OutputFn


@dataclass
class CaptureConfig:
    """Settings of every capture of one monitor, checked when built (``ValueError`` naming the argument).

    Attributes:
        mode: ``"probe_stats"``, ``"batch_stats"``, ``"eval"`` or ``"train"`` behaviour of the model during
            measurement (see :func:`regimescope.guards.set_mode` and :mod:`regimescope.capture.probe_statistics`).
        dtype: Compute dtype of kernels and features (``None``: the parameters' dtype).
        output_fn: Maps the model's return value to the output tensor.
        implementation: NTK implementation.
        max_memory: NTK engine byte budget (``None``: default).
        sketch: ``m``: CountSketch every per-sample gradient block larger than ``m`` entries (``None``: exact).
        feature_layers: Module names whose outputs are the monitored representations.
        pattern_layers: Names of ReLU-family modules whose on/off states are tracked.
        output_projection: Number ``m`` of seeded random combinations of the outputs the kernel is taken of
            (``None``: every output, exact). With ``m >= 2`` the capture also keeps the kernels of the two halves of
            the combinations, whose spread is the projection's own noise.
        seed: Seed of the output projection (the same combinations at every measurement of a run).
        kernel_layers: The kernel blocks measured (names from :func:`regimescope.ntk.layer_names`); ``None``: every
            block with trainable parameters. A monitor fixes them at ``attach()``, so every kernel of a run sums
            the same blocks.
        probe_cache: The engine's probe pass, kept across this run's kernels (the same model and probe at every
            measurement, only the weights move).
    """

    mode: str = "probe_stats"
    dtype: torch.dtype | None = None
    output_fn: OutputFn | None = None
    implementation: Implementation = DEFAULT_IMPLEMENTATION
    max_memory: int | None = None
    sketch: int | None = None
    feature_layers: list[str] = field(default_factory=list)
    pattern_layers: list[str] = field(default_factory=list)
    output_projection: int | None = None
    seed: int = 0
    kernel_layers: tuple[str, ...] | None = None
    probe_cache: ProbePassCache = field(default_factory=ProbePassCache, repr=False, compare=False)

    def __post_init__(self) -> None:
        check_mode(self.mode)
        self.implementation = parse_implementation(self.implementation)
        for name in ("output_projection", "sketch"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise ValueError(
                    f"`{name}` must be a positive int or None; received {value!r}. For example output_projection=8 "
                    "for a language model, sketch=4096 for a model too large for the exact kernel."
                )

    @property
    def engine_mode(self) -> str:
        """The NTK engine's mode: ``"eval"`` for ``"probe_stats"`` (the capture passes a copy of the model holding
        the probe's statistics, see :func:`measured_model`), else the mode itself."""
        return "eval" if self.mode == "probe_stats" else self.mode

    def kernel_options(self) -> dict[str, Any]:
        """The keyword arguments of the per-layer kernel these settings ask for (``empirical_ntk``/``plan_ntk``).

        The one place the monitor's kernel settings become engine arguments: every capture, the distributed
        split and the cost planning read them here, so every kernel of a run is the same estimator (the
        projection and sketch keep the engine's fixed seed).
        """
        return dict(per_layer=True, output_fn=self.output_fn, mode=self.engine_mode, dtype=self.dtype,
                    implementation=self.implementation, max_memory=self.max_memory, layers=self.kernel_layers,
                    output_projection=self.output_projection, seed=self.seed, sketch=self.sketch,
                    probe_cache=self.probe_cache)
