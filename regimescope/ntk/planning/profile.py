"""The probe pass: sizes per example for the memory plan, and the check that each layer rule is exact here.

Before planning, the engine runs the model on the first (at most) two examples of each input set with the rule
hooks in place, the layers shared by the batch (a position embedding of ``(1, T)`` or ``(T,)`` ids) expanded to it
when that leaves the model's outputs unchanged (:class:`~regimescope.ntk.model.recorder.Recorder`; the forward is
run once more, without hooks, to compare). This gives, per example, the bytes the autograd graph saves, each watched layer's token counts
and widths, and the number of outputs ``k``. It also validates every rule on this model, for a random
combination ``r`` of the outputs (Rademacher signs, so that outputs summing to a constant hide nothing):

* the gradient of ``<r, f(x_0)>`` reaches the layer outputs only in example 0's rows (the layer's leading
  dimension really is the batch, and the layer does not mix examples after it), and
* for each covered parameter, the rule's per-sample gradient of example 0, summed over the parameter's uses,
  equals autograd's gradient of ``<r, f(x_0)>`` with the model run on ``x_0`` alone (no use outside the hooked
  forwards, e.g. ``F.linear(h, layer.weight)``; no mixing of examples before the layer), to a relative
  tolerance of the parameter's gradient or, where that gradient is rounding noise (an attention key's bias, whose
  exact gradient is zero), of the whole gradient.

A block failing either check goes to the generic path.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import torch
from torch import nn

from regimescope import batch
from regimescope.ntk.model.blocks import ParamBlock
from regimescope.ntk.model.model_call import ModelCall
from regimescope.ntk.model.recorder import Expansion, Recorder
from regimescope.ntk.rules.base import LayerRule

logger = logging.getLogger(__name__)

CHECK_RTOL = {torch.float64: 1e-9, torch.float32: 1e-3}
"""Relative tolerance of the rule check, by the least precise dtype the model computes in
(:attr:`~regimescope.ntk.model.model_call.ModelCall.precision`; other dtypes: the float32 value)."""

SEED = 0
"""Seed of the check's random output combination (and of every forward pass of one computation)."""


@dataclass(frozen=True)
class LayerShape:
    """Per-example sizes of one watched layer.

    Attributes:
        tokens: Positions ``T`` (summed over the layer's calls).
        record_width: Width ``D`` of a recorded input token.
        record_itemsize: Bytes per recorded element.
        grad_width: Width ``C`` of an output-gradient token.
    """

    tokens: int
    record_width: int
    record_itemsize: int
    grad_width: int


@dataclass
class SetProfile:
    """What the probe pass measured on one input set.

    Attributes:
        n: Examples in the set.
        k: Outputs per example (after the output map).
        activation_bytes: Bytes the forward graph keeps per example (saved tensors and recorded layer data).
        layers: Sizes of the watched layers that record batch-first data.
        expanded: The layers shared by the batch that are expanded to it while recording, and how (see
            :class:`~regimescope.ntk.model.recorder.Recorder`).
        failed: Names of the blocks whose rule check failed.
        decisive: Whether every rule check that passed compared a non-zero gradient: a block whose gradient
            vanishes at these weights (behind a zero-initialised head) passes any check, so its pass says nothing
            about later weights.
    """

    n: int
    k: int
    activation_bytes: int
    layers: dict[str, LayerShape] = field(default_factory=dict)
    expanded: dict[str, Expansion] = field(default_factory=dict)
    failed: set[str] = field(default_factory=set)
    decisive: bool = True


class _SavedBytes:
    """``saved_tensors_hooks`` counting the bytes autograd saves, parameters and buffers excluded."""

    def __init__(self, exclude: list[torch.Tensor]) -> None:
        self.total = 0
        self._seen: set[tuple[int, int]] = set()
        self._exclude = {t.untyped_storage().data_ptr() for t in exclude}

    def pack(self, t: torch.Tensor) -> torch.Tensor:
        key = (t.data_ptr(), t.numel())
        if t.untyped_storage().data_ptr() not in self._exclude and key not in self._seen:
            self._seen.add(key)
            self.total += t.numel() * t.element_size()
        return t

    def hooks(self) -> torch.autograd.graph.saved_tensors_hooks:
        return torch.autograd.graph.saved_tensors_hooks(self.pack, lambda t: t)


def _signs(k: int, like: torch.Tensor) -> torch.Tensor:
    generator = torch.Generator().manual_seed(SEED)
    return (2 * torch.randint(0, 2, (k,), generator=generator) - 1).to(dtype=like.dtype, device=like.device)


def _rule_gradient(
    block: ParamBlock,
    index: int,
    modules: dict[str, tuple[nn.Module, LayerRule]],
    recorder: Recorder,
    z_grads: dict[str, torch.Tensor],
) -> torch.Tensor:
    """Example 0's gradient of parameter ``index`` of ``block`` from the rules, summed over its uses."""
    total = None
    for use in block.uses[index]:
        module, rule = modules[use.module_name]
        grads = z_grads[use.module_name]
        part = rule.per_sample(module, use.local_name, recorder.records(use.module_name)[:1], grads)[0, 0]
        total = part if total is None else total + part
    return total


def _recorded_pass(
    call: ModelCall, leaves: dict[str, torch.Tensor], modules: dict[str, tuple[nn.Module, LayerRule]],
    head: batch.Inputs,
) -> tuple[Recorder, torch.Tensor, _SavedBytes]:
    """The probe pass's forward with the recording hooks, the layers shared by the batch expanded to it
    (:class:`~regimescope.ntk.model.recorder.Recorder`) when that leaves the model's outputs as they are; when it
    raises or changes them, the forward is run again without expanding (those layers then fail the batch check and
    take the generic path).

    Returns:
        The recorder, the outputs ``(m, k)`` and the counter of the bytes autograd saved.
    """
    recorder = Recorder(modules, batch.batch_size(head))
    try:
        outputs, counter = _forward(call, leaves, head, recorder)
    except Exception as error:
        if not recorder.expanded:
            raise
        logger.info("Expanding the layers %s to the batch makes the model fail (%s: %s); they take the generic "
                    "path.", sorted(recorder.expanded), type(error).__name__, error)
    else:
        if not recorder.expanded or (not recorder.mixed and _same_outputs(call, leaves, head, outputs)):
            return recorder, outputs, counter
        logger.info("Expanding the layers %s to the batch changes the model's outputs (or suits only some calls of "
                    "a layer); they take the generic path.", sorted(recorder.expanded))
    recorder = Recorder(modules)
    outputs, counter = _forward(call, leaves, head, recorder)
    return recorder, outputs, counter


def _forward(
    call: ModelCall, leaves: dict[str, torch.Tensor], head: batch.Inputs, recorder: Recorder
) -> tuple[torch.Tensor, _SavedBytes]:
    """One forward on ``head`` (fresh buffers, seeded) under ``recorder``; the outputs and the saved-bytes count."""
    buffers = call.fresh_buffers()
    counter = _SavedBytes(list(call.params.values()) + list(buffers.values()))
    torch.manual_seed(SEED)
    with recorder, counter.hooks():
        outputs = call(leaves, head, buffers)
    return outputs, counter


def _same_outputs(
    call: ModelCall, leaves: dict[str, torch.Tensor], head: batch.Inputs, outputs: torch.Tensor
) -> bool:
    """Whether ``outputs`` equal a forward on ``head`` without hooks, to the rule check's tolerance."""
    with torch.no_grad():
        torch.manual_seed(SEED)
        reference = call(leaves, head)
    if reference.shape != outputs.shape:
        return False
    rtol = CHECK_RTOL.get(call.precision, CHECK_RTOL[torch.float32])
    atol = rtol * float(reference.abs().max()) if reference.numel() else 0.0
    return bool(torch.allclose(outputs.detach(), reference, rtol=rtol, atol=atol))


def profile_set(
    call: ModelCall,
    blocks: list[ParamBlock],
    modules: dict[str, tuple[nn.Module, LayerRule]],
    inputs: batch.Inputs,
) -> SetProfile:
    """Run the probe pass on the first examples of ``inputs`` (see the module docstring).

    Args:
        call: The functional model.
        blocks: All selected blocks; the covered ones are checked.
        modules: The watched layers (uses of covered blocks), ``name -> (module, rule)``.
        inputs: Prepared inputs of one set.

    Returns:
        The set's profile.
    """
    n = batch.batch_size(inputs)
    m = min(2, n)
    head = batch.select(inputs, slice(0, m))
    leaves = {name: call.params[name].detach().requires_grad_() for b in blocks for name in b.param_names}
    recorder, outputs, counter = _recorded_pass(call, leaves, modules, head)
    usable = [name for name in modules if recorder.batch_first(name, m)]
    recorded = sum(r.numel() * r.element_size() + z.numel() * z.element_size()
                   for calls in recorder.calls.values() for r, z in calls)
    profile = SetProfile(n=n, k=outputs.shape[1], activation_bytes=-(-(counter.total + recorded) // m),
                         expanded=dict(recorder.expanded))
    candidates = [b for b in blocks if b.covered and all(name in usable for name in b.use_modules)]
    profile.failed = {b.name for b in blocks if b.covered and b not in candidates}
    if not candidates:
        return profile
    signs = _signs(profile.k, outputs)
    watched = list(dict.fromkeys(name for b in candidates for name in b.use_modules))
    zs = recorder.outputs(watched)
    grads = torch.autograd.grad((outputs[0] * signs).sum(), zs, retain_graph=False, allow_unused=True)
    grads = [torch.zeros_like(z) if g is None else g for z, g in zip(zs, grads)]
    z_grads: dict[str, torch.Tensor] = {}
    leaking: set[str] = set()
    position = 0
    for name in watched:
        module, rule = modules[name]
        own = grads[position : position + len(recorder.calls[name])]
        position += len(own)
        if any(bool((g[1:] != 0).any()) for g in own):
            leaking.add(name)
        tokens = [rule.grad_tokens(module, g[:1].unsqueeze(0)) for g in own]
        z_grads[name] = torch.cat(tokens, dim=2).transpose(0, 1)
    torch.manual_seed(SEED)
    single = call(leaves, batch.select(inputs, slice(0, 1)))
    names = [name for b in candidates for name in b.param_names]
    expected = torch.autograd.grad((single[0] * signs).sum(), [leaves[name] for name in names], allow_unused=True)
    expected_by_name = dict(zip(names, expected))
    rtol = CHECK_RTOL.get(call.precision, CHECK_RTOL[torch.float32])
    norms = [g.norm() for g in expected if g is not None]
    floor = rtol * torch.stack(norms).norm().item() if norms else 0.0
    for block in candidates:
        exact = not any(name in leaking for name in block.use_modules)
        gradients = [expected_by_name[name] for name in block.param_names if expected_by_name[name] is not None]
        if exact and not any(bool(g.any()) for g in gradients):
            profile.decisive = False
        for index, name in enumerate(block.param_names):
            if not exact:
                break
            actual = _rule_gradient(block, index, modules, recorder, z_grads)
            target = expected_by_name[name]
            target = torch.zeros_like(actual) if target is None else target.reshape(-1)
            scale = max(actual.norm().item(), target.norm().item(), torch.finfo(call.precision).tiny)
            exact = (actual - target).norm().item() <= max(rtol * scale, floor)
        if not exact:
            logger.info("Block %r: a layer rule is not exact here (batch not leading, examples mixed, or a "
                        "parameter used outside its layer's forward); it takes the generic path.", block.name)
            profile.failed.add(block.name)
    profile.layers = {
        name: _shape(recorder, name, z_grads[name])
        for name in watched
        if name not in leaking
    }
    return profile


def _shape(recorder: Recorder, name: str, grads: torch.Tensor) -> LayerShape:
    record = recorder.records(name)
    return LayerShape(
        tokens=record.shape[1],
        record_width=record.shape[2] if record.dim() == 3 else 1,
        record_itemsize=record.element_size(),
        grad_width=grads.shape[-1],
    )
