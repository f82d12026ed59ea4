"""The public empirical-NTK function: per-layer exact kernels, chunked to a memory budget."""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal, TypeVar

import torch
from torch import nn

from regimescope import batch
from regimescope.guards import no_autocast, preserved_modes, preserved_rng
from regimescope.ntk.blocks import ParamBlock, block_size, parameter_blocks
from regimescope.ntk.collect import collect_factors
from regimescope.ntk.factored import LayerFactors, block_kernel, select_rows
from regimescope.ntk.implementation import Implementation, parse_implementation
from regimescope.ntk.jacobian import batch_jacobian, jacobian_kernel, per_sample_jacobian
from regimescope.ntk.memory import default_budget, rows_per_chunk
from regimescope.ntk.model_call import ModelCall
from regimescope.outputs import OutputFn

Kind = Literal["trace", "full"]
Mode = Literal["eval", "train"]
_Rows = TypeVar("_Rows")

SEED = 0
"""Torch seed set before every forward pass of one computation, so random layers agree across passes."""


def _transpose(kernel: torch.Tensor, full: bool) -> torch.Tensor:
    return kernel.permute(1, 0, 3, 2) if full else kernel.T


def _pairwise(
    n1: int,
    n2: int,
    chunk: int,
    symmetric: bool,
    rows_a: Callable[[slice], _Rows],
    rows_b: Callable[[slice], _Rows],
    pair: Callable[[_Rows, _Rows], torch.Tensor],
    full: bool,
) -> torch.Tensor:
    """Assemble a kernel from chunk pairs; a symmetric kernel computes the upper triangle of chunks only."""
    starts_a = list(range(0, n1, chunk))
    starts_b = list(range(0, n2, chunk))
    row_blocks = []
    computed: dict[tuple[int, int], torch.Tensor] = {}
    for ia, a0 in enumerate(starts_a):
        sa = slice(a0, min(a0 + chunk, n1))
        ra = rows_a(sa)
        pieces = []
        for ib, b0 in enumerate(starts_b):
            if symmetric and ib < ia:
                pieces.append(_transpose(computed[(ib, ia)], full))
                continue
            rb = ra if symmetric and ib == ia else rows_b(slice(b0, min(b0 + chunk, n2)))
            computed[(ia, ib)] = pair(ra, rb)
            pieces.append(computed[(ia, ib)])
        row_blocks.append(torch.cat(pieces, dim=1))
    return torch.cat(row_blocks, dim=0)


def _validate(model: nn.Module, kind: str, mode: str, inputs: list[batch.Inputs]) -> torch.device:
    if not isinstance(model, nn.Module):
        raise TypeError(f"`model` must be a torch.nn.Module; received {type(model).__name__}.")
    if kind not in ("trace", "full"):
        raise ValueError(f"`kind` must be 'trace' or 'full'; received {kind!r}.")
    if mode not in ("eval", "train"):
        raise ValueError(f"`mode` must be 'eval' or 'train'; received {mode!r}.")
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


class _Computation:
    """State of one :func:`empirical_ntk` call."""

    def __init__(
        self, call: ModelCall, full: bool, budget: int, sets: list[batch.Inputs], symmetric: bool, k: int
    ) -> None:
        self.call, self.full, self.budget, self.sets, self.symmetric, self.k = call, full, budget, sets, symmetric, k
        self.n1 = batch.batch_size(sets[0])
        self.n2 = batch.batch_size(sets[-1])

    def from_factors(self, name: str, factors: list[dict[str, LayerFactors]]) -> torch.Tensor:
        fa, fb = factors[0][name], factors[-1][name]
        per_row = fa.grads[:, :1].numel() * fa.tokens.shape[2] * self.call.params_itemsize
        chunk = rows_per_chunk(per_row, self.budget, max(self.n1, self.n2))
        return _pairwise(
            self.n1,
            self.n2,
            chunk,
            self.symmetric,
            lambda s: select_rows(fa, s),
            lambda s: select_rows(fb, s),
            lambda a, b: block_kernel(a, b, self.full),
            self.full,
        )

    def from_jacobians(self, block: ParamBlock, per_sample: bool) -> torch.Tensor:
        if not per_sample:
            ja = self._seeded(batch_jacobian, block, self.sets[0])
            jb = ja if self.symmetric else self._seeded(batch_jacobian, block, self.sets[-1])
            return jacobian_kernel(ja, jb, self.full)
        per_row = self.k * block_size(block, self.call.params) * self.call.params_itemsize
        chunk = rows_per_chunk(per_row, self.budget, max(self.n1, self.n2))
        return _pairwise(
            self.n1,
            self.n2,
            chunk,
            self.symmetric,
            lambda s: per_sample_jacobian(self.call, block, batch.select(self.sets[0], s)),
            lambda s: per_sample_jacobian(self.call, block, batch.select(self.sets[-1], s)),
            lambda a, b: jacobian_kernel(a, b, self.full),
            self.full,
        )

    def _seeded(self, fn: Callable[..., torch.Tensor], *args: object) -> torch.Tensor:
        torch.manual_seed(SEED)
        return fn(self.call, *args)


def _compute(
    call: ModelCall,
    blocks: list[ParamBlock],
    sets: list[batch.Inputs],
    full: bool,
    implementation: Implementation,
    budget: int,
) -> dict[str, torch.Tensor]:
    torch.manual_seed(SEED)
    with torch.no_grad():
        k = call({}, sets[0]).shape[1]
    work = _Computation(call, full, budget, sets, symmetric=len(sets) == 1, k=k)
    generic = blocks
    kernels: dict[str, torch.Tensor] = {}
    if implementation in (Implementation.AUTO, Implementation.FACTORED):
        factorable = [b for b in blocks if b.factorable]
        collected = []
        for x in sets:
            torch.manual_seed(SEED)
            collected.append(collect_factors(call, factorable, x))
        fallback = {b.name for _, rest in collected for b in rest}
        factors = [f for f, _ in collected]
        for block in factorable:
            if block.name not in fallback:
                kernels[block.name] = work.from_factors(block.name, factors)
        generic = [b for b in blocks if b.name not in kernels]
    for block in generic:
        kernels[block.name] = work.from_jacobians(block, per_sample=implementation != Implementation.FULL_BATCH)
    return {b.name: kernels[b.name] for b in blocks}


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
    implementation: str | Implementation = "auto",
    include_frozen: bool = False,
    max_memory: int | None = None,
) -> torch.Tensor | dict[str, torch.Tensor]:
    """Exact empirical neural tangent kernel of ``model`` on ``x1`` (and ``x2``).

    With ``J(x)`` the ``(k, P)`` Jacobian of the ``k`` outputs with respect to the ``P`` trainable parameters,

        full:  K[i, j, o, q] = sum_p J(x1_i)[o, p] J(x2_j)[q, p]      shape (n1, n2, k, k)
        trace: K[i, j] = sum_o K[i, j, o, o]                            shape (n1, n2)

    The kernel is additive over parameters, ``K = sum_l K_l``; it is computed layer by layer (never holding the
    whole Jacobian) by the rule :class:`~regimescope.ntk.implementation.Implementation` names.

    Args:
        model: The network. It is not modified: no parameter, buffer, ``.grad``, mode flag, hook or random
            state is changed.
        x1: Inputs, batch first: a tensor (``model(x)``), a tuple (``model(*x)``) or a dict (``model(**x)``).
        x2: Second inputs for a cross kernel; ``None`` for the kernel of ``x1`` with itself.
        kind: ``"trace"`` (summed over outputs) or ``"full"``.
        per_layer: Return ``{layer name: kernel}`` (summing to the whole kernel) instead of the sum. Layers are
            the modules owning parameters; the root's own parameters are under ``"(root)"``.
        output_fn: Maps the model's return value to the output tensor (default: a tensor as is, a mapping's
            ``"logits"``, a tuple's first element). Trailing dimensions are flattened into ``k``.
        mode: ``"eval"`` (default): modules in eval mode, examples independent. ``"train"``: train-mode
            behaviour (BatchNorm batch statistics, dropout with a fixed seed); the kernel is the Jacobian of the
            whole batch function and BatchNorm running statistics stay untouched.
        dtype: Compute dtype (``torch.float32`` by default; ``torch.float64`` for reference precision). The
            computation runs outside autocast.
        implementation: See :class:`~regimescope.ntk.implementation.Implementation`; in train mode only
            ``"auto"`` and ``"full_batch"`` are valid.
        include_frozen: Also differentiate parameters with ``requires_grad=False``.
        max_memory: Byte budget for the chunks the engine holds (default: a quarter of free memory, at most
            4 GiB).

    Returns:
        The kernel, or a dict of per-layer kernels when ``per_layer`` is true.

    Raises:
        ValueError: On an unknown ``kind``/``mode``/``implementation``, a model without parameters, inputs on
            another device, or an implementation that cannot work in train mode.
    """
    implementation = parse_implementation(implementation)
    sets = [x1] if x2 is None else [x1, x2]
    device = _validate(model, kind, mode, sets)
    if mode == "train" and implementation not in (Implementation.AUTO, Implementation.FULL_BATCH):
        raise ValueError(
            f"implementation={implementation.value!r} assumes independent examples, which train mode does not "
            "give (BatchNorm batch statistics, dropout). Use implementation='auto' or 'full_batch', or mode='eval'."
        )
    if mode == "train":
        implementation = Implementation.FULL_BATCH
    blocks = parameter_blocks(model, include_frozen)
    if not blocks:
        raise ValueError(
            "No trainable parameters: every parameter has requires_grad=False. Unfreeze some, or pass "
            "include_frozen=True to differentiate the frozen ones."
        )
    budget = max_memory if max_memory is not None else default_budget(device)
    with preserved_modes(model, train=mode == "train"), preserved_rng([device]), no_autocast(device.type):
        call = ModelCall.build(model, dtype or torch.float32, output_fn)
        prepared = [call.prepare(x) for x in sets]
        kernels = _compute(call, blocks, prepared, kind == "full", implementation, budget)
    if per_layer:
        return kernels
    return torch.stack(list(kernels.values())).sum(0)
