"""The public empirical-NTK functions: :func:`empirical_ntk` and :func:`plan_ntk`."""

from __future__ import annotations

import contextlib
import logging
import warnings
from collections.abc import Collection, Iterator
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from regimescope import batch
from regimescope.guards import (
    examples_interact,
    no_autocast,
    preserved_modes,
    preserved_rng,
    refusing_parameter_writes,
)
from regimescope.ntk.execution.execute import Run, execute
from regimescope.ntk.execution.pairwise import KernelSink
from regimescope.ntk.implementation import DEFAULT_IMPLEMENTATION, RULE_IMPLEMENTATIONS, Implementation
from regimescope.ntk.model.blocks import ParamBlock, parameter_blocks, select_blocks
from regimescope.ntk.model.hooks import suspended_backward_hooks
from regimescope.ntk.model.model_call import ModelCall
from regimescope.ntk.model.output_map import OutputIndices, OutputMap
from regimescope.ntk.options import Kind, Mode, NtkOptions
from regimescope.ntk.planning.memory import NtkMemoryWarning, default_budget
from regimescope.ntk.planning.plan import NtkPlan, PlanRequest, make_plan
from regimescope.ntk.planning.probe_cache import ProbePassCache, structure_key
from regimescope.ntk.planning.profile import SEED, SetProfile, profile_set
from regimescope.ntk.rules.base import LayerRule
from regimescope.outputs import OutputFn
from regimescope.progress import Progress

logger = logging.getLogger(__name__)

__all__ = ["SEED", "empirical_ntk", "plan_ntk"]


def _check_model(model: nn.Module, inputs: list[batch.Inputs]) -> torch.device:
    """The model's device, after checking that it is a module with parameters and that the inputs are there too."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"`model` must be a torch.nn.Module; received {type(model).__name__}.")
    params = list(model.parameters())
    if not params:
        raise ValueError("The model has no parameters, so its NTK is zero. Pass the model that is being trained.")
    device = params[0].device
    for x in inputs:
        batch.batch_size(x)
        for leaf in batch.tensor_leaves(x):
            if leaf.device != device:
                raise ValueError(
                    f"The inputs are on {leaf.device} but the model is on {device}; move them with "
                    f"`x.to('{device}')`."
                )
    return device


@contextlib.contextmanager
def _measuring(model: nn.Module, mode: str, device: torch.device) -> Iterator[None]:
    """Mode switched, random state and backward hooks preserved, autocast off, gradients on (every call of the model
    puts its plain attributes back, see :class:`~regimescope.ntk.model.model_call.ModelCall`)."""
    with (
        preserved_modes(model, mode=mode),
        preserved_rng([device]),
        no_autocast(device.type),
        suspended_backward_hooks(model),
        torch.enable_grad(),
    ):
        yield


@dataclass
class _Prepared:
    call: ModelCall
    sets: list[batch.Inputs]
    blocks: list[ParamBlock]
    modules: dict[str, tuple[nn.Module, LayerRule]]
    req: PlanRequest
    plan: NtkPlan
    device: torch.device


def _profiles(
    call: ModelCall,
    blocks: list[ParamBlock],
    modules: dict[str, tuple[nn.Module, LayerRule]],
    sets: list[batch.Inputs],
    key: tuple[Any, ...] | None,
    cache: ProbePassCache | None,
) -> list[SetProfile]:
    """The probe pass on each set, or the one ``cache`` kept for this structure (``key``; ``None``: not kept)."""
    kept = None if cache is None or key is None else cache.get(key)
    if kept is not None:
        return kept
    profiles = [profile_set(call, blocks, modules, x) for x in sets]
    if cache is not None and key is not None:
        cache.put(key, profiles)
    return profiles


def _probe(
    model: nn.Module,
    sets: list[batch.Inputs],
    blocks: list[ParamBlock],
    modules: dict[str, tuple[nn.Module, LayerRule]],
    options: NtkOptions,
    implementation: Implementation,
    cache: ProbePassCache | None,
) -> tuple[ModelCall, list[batch.Inputs], list[SetProfile]]:
    """The functional model, the prepared input sets and their probe pass (or ``cache``'s).

    The probe pass is the engine's first run of the model: it runs refusing writes into the parameters
    (:func:`~regimescope.guards.refusing_parameter_writes`), so a forward writing into a weight in place is found
    before it changes anything and the model is run on copies of those weights from then on.
    """
    output_map = OutputMap(options.outputs, options.output_projection, options.seed)

    def probed() -> tuple[ModelCall, list[batch.Inputs], list[SetProfile]]:
        call = ModelCall.build(model, options.dtype, options.output_fn, None if output_map.identity else output_map)
        prepared = [call.prepare(x) for x in sets]
        key = None
        if cache is not None and options.outputs is None:
            shaping = (implementation, options.mode, options.output_fn, options.output_projection, options.seed)
            key = structure_key(model, blocks, prepared, call.dtype, shaping)
        return call, prepared, _profiles(call, blocks, modules, prepared, key, cache)

    return refusing_parameter_writes(model, probed)


def _prepare(
    model: nn.Module,
    sets: list[batch.Inputs],
    options: NtkOptions,
    device: torch.device,
    cache: ProbePassCache | None = None,
) -> _Prepared:
    """Snapshot the model, run the probe pass (or take ``cache``'s) and plan (inside the measuring context)."""
    implementation = options.implementation
    if examples_interact(model):  # a BatchNorm normalising with batch statistics (batch_stats, or no running ones)
        if implementation not in (Implementation.AUTO, Implementation.FULL_BATCH):
            raise ValueError(
                f"implementation={implementation.value!r} assumes independent examples, which a BatchNorm normalising "
                "with batch statistics (mode='batch_stats', or no running statistics) does not give. Use "
                "implementation='auto' or 'full_batch', or mode='eval' with BatchNorm layers that track running "
                "statistics."
            )
        implementation = Implementation.FULL_BATCH
    blocks = parameter_blocks(model, options.include_frozen)
    if not blocks:
        raise ValueError(
            "No trainable parameters: every parameter has requires_grad=False. Unfreeze some, or pass "
            "include_frozen=True to differentiate the frozen ones."
        )
    if options.layers is not None:
        blocks = select_blocks(blocks, options.layers)
    budget = options.max_memory if options.max_memory is not None else default_budget(device)
    submodules = dict(model.named_modules())
    rules = implementation in RULE_IMPLEMENTATIONS
    modules = {
        name: (submodules[name], rule)
        for b in blocks if rules and b.covered
        for name, rule in b.rules
    }
    call, sets, profiles = _probe(model, sets, blocks, modules, options, implementation, cache)
    failed = set().union(*(p.failed for p in profiles))
    covered = {b.name for b in blocks if rules and b.covered and b.name not in failed}
    modules = {name: modules[name] for b in blocks if b.name in covered for name in b.use_modules}
    req = PlanRequest(
        blocks=blocks, covered=covered, profiles=(profiles[0], profiles[-1]),
        params={name: p.numel() for name, p in call.params.items()}, full=options.full,
        per_layer=options.per_layer, implementation=implementation, sketch=options.sketch,
        itemsize=call.params_itemsize, budget=budget,
    )
    plan = make_plan(req, {name: module for name, (module, _) in modules.items()})
    return _Prepared(call, sets, blocks, modules, req, plan, device)


@contextlib.contextmanager
def _prepared(model: nn.Module, x1: batch.Inputs, x2: batch.Inputs | None, options: NtkOptions,
              cache: ProbePassCache | None = None) -> Iterator[_Prepared]:
    """Check the model and inputs, then hold the measuring context around the prepared computation."""
    sets = [x1] if x2 is None else [x1, x2]
    device = _check_model(model, sets)
    with _measuring(model, options.mode, device):
        yield _prepare(model, sets, options, device, cache)


def plan_ntk(
    model: nn.Module,
    x1: batch.Inputs,
    x2: batch.Inputs | None = None,
    *,
    kind: Kind = "trace",
    per_layer: bool = False,
    output_fn: OutputFn | None = None,
    mode: Mode = "eval",
    dtype: torch.dtype | None = None,
    implementation: str | Implementation = DEFAULT_IMPLEMENTATION,
    include_frozen: bool = False,
    max_memory: int | None = None,
    outputs: OutputIndices | None = None,
    output_projection: int | None = None,
    seed: int = 0,
    sketch: int | None = None,
    layers: Collection[str] | None = None,
    probe_cache: ProbePassCache | None = None,
) -> NtkPlan:
    """The plan :func:`empirical_ntk` would follow with the same arguments: forms, chunks, passes, peak bytes.

    Runs only the probe pass (the model on at most two examples of each set; ``probe_cache`` as in
    :func:`empirical_ntk`). Leaves the model untouched.

    Returns:
        The :class:`~regimescope.ntk.planning.plan.NtkPlan` (``plan.summary()`` prints it).
    """
    options = NtkOptions(
        kind=kind, per_layer=per_layer, output_fn=output_fn, mode=mode, dtype=dtype, implementation=implementation,
        include_frozen=include_frozen, max_memory=max_memory, outputs=outputs, output_projection=output_projection,
        seed=seed, sketch=sketch, layers=layers,
    )
    with _prepared(model, x1, x2, options, probe_cache) as prepared:
        return prepared.plan


def empirical_ntk(
    model: nn.Module,
    x1: batch.Inputs,
    x2: batch.Inputs | None = None,
    *,
    kind: Kind = "trace",
    per_layer: bool = False,
    output_fn: OutputFn | None = None,
    mode: Mode = "eval",
    dtype: torch.dtype | None = None,
    implementation: str | Implementation = DEFAULT_IMPLEMENTATION,
    include_frozen: bool = False,
    max_memory: int | None = None,
    outputs: OutputIndices | None = None,
    output_projection: int | None = None,
    seed: int = 0,
    sketch: int | None = None,
    layers: Collection[str] | None = None,
    progress: bool = False,
    probe_cache: ProbePassCache | None = None,
) -> torch.Tensor | dict[str, torch.Tensor]:
    """Empirical neural tangent kernel of ``model`` on ``x1`` (and ``x2``), exact unless a sketch is asked for.

    With ``J(x)`` the ``(k, P)`` Jacobian of the ``k`` outputs with respect to the ``P`` selected parameters,

        full:  K[i, j, o, q] = sum_p J(x1_i)[o, p] J(x2_j)[q, p]      shape (n1, n2, k, k)
        trace: K[i, j] = sum_o K[i, j, o, o]                            shape (n1, n2)

    The kernel is additive over parameters, ``K = sum_l K_l``; it is computed block by block (one block per
    module owning parameters), never holding the whole Jacobian. Linear (also Hugging Face's ``Conv1D``),
    convolution, embedding and norm layers use exact layer rules fed by one forward pass and batched output backward passes; other blocks use
    ``torch.func`` per-sample Jacobians (see :class:`~regimescope.ntk.implementation.Implementation`). The
    work is chunked over examples, outputs and layers to fit ``max_memory`` (see :func:`plan_ntk`).

    Args:
        model: The network. It is not modified: no parameter, buffer, ``.grad``, mode flag, hook or random
            state is changed (backward hooks are detached during the computation and put back).
        x1: Inputs, batch first: a tensor (``model(x)``), a tuple (``model(*x)``) or a dict (``model(**x)``).
        x2: Second inputs for a cross kernel; ``None`` for the kernel of ``x1`` with itself.
        kind: ``"trace"`` (summed over outputs) or ``"full"``.
        per_layer: Return ``{layer name: kernel}`` (summing to the whole kernel) instead of the sum. Layers are
            the modules owning parameters; the root's own parameters are under ``"(root)"``; a tied parameter
            belongs to the first module holding it.
        output_fn: Maps the model's return value to the output tensor (default: a tensor as is, a mapping's
            ``"logits"``, a tuple's first element). Trailing dimensions are flattened into ``k``.
        mode: ``"eval"`` (default): modules in eval mode, examples independent. ``"train"``: train-mode
            behaviour (BatchNorm batch statistics, dropout with a fixed seed); the kernel is the Jacobian of the
            whole batch function and BatchNorm running statistics stay untouched. ``"batch_stats"``: eval mode
            except the normalisation layers with running statistics, which use the batch's statistics as in
            training (dropout off). Whenever a BatchNorm normalises with batch statistics (also one without running
            statistics in eval mode), the kernel is that of the whole-batch function.
        dtype: Compute dtype. ``None`` (default): the parameters' dtype, as in ``torch.func`` (a float64 model
            gets float64 kernels; float16/bfloat16 parameters are computed in float32; see
            :func:`~regimescope.ntk.model.model_call.compute_dtype`). The computation runs outside autocast.
        implementation: See :class:`~regimescope.ntk.implementation.Implementation`; in train mode only
            ``"auto"`` and ``"full_batch"`` are valid.
        include_frozen: Also differentiate parameters with ``requires_grad=False``.
        max_memory: Byte budget of the engine's working memory and result (default: a quarter of free memory,
            at most 4 GiB). When even the smallest chunks exceed it, an :class:`NtkMemoryWarning` is issued and the
            computation runs with them.
        outputs: Indices (or a slice) into the flattened outputs: the kernel of those outputs only.
        output_projection: ``m``: the kernel of ``m`` seeded random (Rademacher) combinations of the outputs;
            its trace kernel is an unbiased estimate of the trace kernel of all outputs at the cost of ``m``
            outputs (see :mod:`regimescope.ntk.model.output_map` for the variance). ``kind="full"`` then returns the
            ``(n1, n2, m, m)`` kernel of the combinations.
        seed: Seed of ``output_projection`` and ``sketch``.
        sketch: ``m``: wherever a block's kernel is computed from per-sample gradients, project the gradient of
            every parameter tensor with more than ``m`` entries by a seeded CountSketch to ``m`` dimensions:
            unbiased, relative standard deviation at most ``sqrt(2/m)`` per diagonal entry (see
            :mod:`regimescope.ntk.execution.sketch`). With ``implementation="auto"`` a block is sketched only where that
            is cheaper than its exact forms; the other implementations sketch every per-sample block.
        layers: Only the blocks of these layers (names as the ``per_layer`` keys, see
            :func:`~regimescope.ntk.model.blocks.layer_names`): the kernel of their parameters alone, the other
            parameters held fixed. The kernels of disjoint layer sets sum to the kernel of their union, which is how
            distributed ranks share the work.
        progress: Show a progress bar over the layer groups on standard error (for big kernels); it is drawn
            only when standard error is a terminal and erased when done.
        probe_cache: A :class:`~regimescope.ntk.planning.probe_cache.ProbePassCache` kept across calls on the same
            model and inputs (a monitor's measurements): the probe pass (sizes, rule checks) runs once for the
            model's structure instead of at every call. ``None``: run it every call.

    Returns:
        The kernel, or a dict of per-layer kernels when ``per_layer`` is true.

    Raises:
        ValueError: On an unknown ``kind``/``mode``/``implementation``, a model without parameters, inputs on
            another device, an implementation that cannot work in train mode, or invalid
            ``outputs``/``output_projection``/``sketch``/``max_memory``, or ``layers`` naming no block of the
            model.
    """
    options = NtkOptions(
        kind=kind, per_layer=per_layer, output_fn=output_fn, mode=mode, dtype=dtype, implementation=implementation,
        include_frozen=include_frozen, max_memory=max_memory, outputs=outputs, output_projection=output_projection,
        seed=seed, sketch=sketch, layers=layers,
    )
    with _prepared(model, x1, x2, options, probe_cache) as prepared:
        plan, req = prepared.plan, prepared.req
        if not plan.fits:
            warnings.warn(
                f"The NTK needs about {plan.peak_bytes / 2**20:.1f} MiB even with the smallest chunks, more than "
                f"max_memory={req.budget / 2**20:.1f} MiB; running with them. Raise max_memory, or lower the cost "
                "with per_layer=False, kind='trace', fewer examples, output_projection= or sketch=.",
                NtkMemoryWarning,
                stacklevel=2,
            )
        logger.debug("%s", plan.summary())
        n1, n2 = req.n
        shape = (n1, n2, req.k, req.k) if req.full else (n1, n2)
        sink = KernelSink([b.name for b in prepared.blocks], shape, per_layer, prepared.call.dtype, prepared.device)
        run = Run(prepared.call, prepared.sets, req, plan, prepared.modules, sink, seed)
        groups = len(plan.layer_groups) + len(plan.generic_groups)
        execute(run, prepared.blocks, Progress(groups, "NTK", enabled=None if progress else False))
        return sink.result()
