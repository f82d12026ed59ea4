"""Slow, obvious float64 reference for the empirical NTK, and the comparison the engine's tests share.

Every Jacobian row comes from one ``torch.autograd.grad`` call on one scalar output of a float64 deep copy of the
model, so the reference shares no code with the engine it checks and never touches the model it is given.

Conventions (the engine's contract):
    * inputs: a tensor is called as ``model(x)``, a tuple/list as ``model(*x)``, a dict as ``model(**x)``;
      every tensor leaf has the batch dimension first;
    * outputs: ``output_fn`` (default: the tensor itself, a mapping's ``"logits"``, a sequence's first element)
      flattened to ``(n, k)``;
    * ``kind="trace"``: ``K[i, j] = sum_o sum_theta df_o(x_i)/dtheta df_o(x_j)/dtheta``;
      ``kind="full"``: ``K[i, j, o, p] = sum_theta df_o(x_i)/dtheta df_p(x_j)/dtheta``;
    * ``mode="eval"``: every sample on its own, all modules in eval mode; ``mode="train"``: rows of the Jacobian
      of the whole-batch function in train mode (each of ``x1`` and ``x2`` is its own batch);
    * ``per_layer=True``: one block per owning module (the root's own parameters under ``"(root)"``); a shared
      parameter belongs to the first module holding it in ``named_modules`` order.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from typing import Any, Literal

import torch
from torch import nn

ROOT_NAME = "(root)"
"""Key of the root module's own parameters in a per-layer result."""

Kernel = torch.Tensor | dict[str, torch.Tensor]


def parameter_owners(model: nn.Module, include_frozen: bool = False) -> dict[str, list[nn.Parameter]]:
    """Group parameters by the module that owns them, each parameter counted once.

    Args:
        model: The module tree.
        include_frozen: Whether parameters with ``requires_grad=False`` are kept.

    Returns:
        ``{qualified module name or "(root)": [parameters]}`` in ``named_modules`` order; modules left without a
        selected parameter are absent.
    """
    seen: set[int] = set()
    owners: dict[str, list[nn.Parameter]] = {}
    for name, module in model.named_modules():
        for parameter in module.parameters(recurse=False):
            if id(parameter) in seen:
                continue
            seen.add(id(parameter))
            if parameter.requires_grad or include_frozen:
                owners.setdefault(name or ROOT_NAME, []).append(parameter)
    return owners


def _map_tensors(inputs: Any, fn: Callable[[torch.Tensor], torch.Tensor]) -> Any:
    if isinstance(inputs, torch.Tensor):
        return fn(inputs)
    if isinstance(inputs, Mapping):
        return {key: _map_tensors(value, fn) for key, value in inputs.items()}
    if isinstance(inputs, (tuple, list)):
        return type(inputs)(_map_tensors(value, fn) for value in inputs)
    return inputs


def _batch_size(inputs: Any) -> int:
    sizes: list[int] = []
    _map_tensors(inputs, lambda t: sizes.append(t.shape[0]) or t)
    return sizes[0]


def _call(model: nn.Module, inputs: Any) -> Any:
    if isinstance(inputs, torch.Tensor):
        return model(inputs)
    if isinstance(inputs, Mapping):
        return model(**inputs)
    return model(*inputs)


def _default_output(output: Any) -> torch.Tensor:
    if isinstance(output, torch.Tensor):
        return output
    if isinstance(output, Mapping):
        return output["logits"]
    return output[0]


def _output_rows(model: nn.Module, inputs: Any, output_fn: Callable[[Any], torch.Tensor] | None,
                 mode: str) -> list[torch.Tensor]:
    """One ``(k,)`` output vector per sample, each still attached to the autograd graph."""
    pick = output_fn or _default_output
    n = _batch_size(inputs)
    if mode == "train":
        return list(pick(_call(model, inputs)).reshape(n, -1))
    rows = []
    for i in range(n):
        sample = _map_tensors(inputs, lambda t, i=i: t[i : i + 1])
        rows.append(pick(_call(model, sample)).reshape(-1))
    return rows


def _jacobians(rows: list[torch.Tensor], owners: dict[str, list[nn.Parameter]]) -> dict[str, torch.Tensor]:
    """``{owner: (n, k, P_owner)}`` Jacobian of the rows, one ``autograd.grad`` call per scalar output."""
    params = [p for group in owners.values() for p in group]
    sizes = [sum(p.numel() for p in group) for group in owners.values()]
    per_sample = []
    for row in rows:
        per_output = []
        for value in row:
            grads = torch.autograd.grad(value, params, retain_graph=True, allow_unused=True)
            flat = [p.new_zeros(p.numel()) if g is None else g.reshape(-1) for p, g in zip(params, grads)]
            per_output.append(torch.cat(flat))
        per_sample.append(torch.stack(per_output))
    jacobian = torch.stack(per_sample)
    return dict(zip(owners, jacobian.split(sizes, dim=-1)))


def replica(model: nn.Module) -> nn.Module:
    """A deep copy of ``model`` that shares no tensor with it.

    Tensors a module holds as plain attributes and that are not graph leaves (``module.weight`` of the legacy
    hook-based ``nn.utils.weight_norm`` / ``spectral_norm``, which their forward pre-hooks recompute) cannot be
    deep-copied by ``copy.deepcopy``; they are copied detached instead.
    """
    memo: dict[int, Any] = {
        id(value): value.detach().clone()
        for module in model.modules()
        for value in vars(module).values()
        if isinstance(value, torch.Tensor) and not value.is_leaf
    }
    return copy.deepcopy(model, memo)


def reference_ntk(
    model: nn.Module,
    x1: Any,
    x2: Any = None,
    *,
    kind: Literal["trace", "full"] = "trace",
    per_layer: bool = False,
    output_fn: Callable[[Any], torch.Tensor] | None = None,
    mode: Literal["eval", "train"] = "eval",
    include_frozen: bool = False,
) -> Kernel:
    """The empirical NTK in float64, computed one scalar gradient at a time.

    Args:
        model: The network; it is deep-copied and never modified.
        x1: First batch of inputs.
        x2: Second batch (``None``: ``x1``).
        kind: ``"trace"`` for ``(n1, n2)``, ``"full"`` for ``(n1, n2, k, k)``.
        per_layer: Return ``{owning module name: kernel}`` instead of the sum.
        output_fn: Maps the model's return value to the output tensor.
        mode: ``"eval"`` or ``"train"`` behaviour of every module.
        include_frozen: Include parameters with ``requires_grad=False``.

    Returns:
        A float64 kernel, or a dict of them.

    Raises:
        ValueError: For an unknown ``kind`` or ``mode``.
    """
    if kind not in ("trace", "full"):
        raise ValueError(f"kind must be 'trace' or 'full', received {kind!r}")
    if mode not in ("eval", "train"):
        raise ValueError(f"mode must be 'eval' or 'train', received {mode!r}")
    copied = replica(model).to(torch.float64).train(mode == "train")
    owners = parameter_owners(copied, include_frozen)
    for group in owners.values():
        for parameter in group:
            parameter.requires_grad_(True)

    def as_float64(t: torch.Tensor) -> torch.Tensor:
        return t.to(torch.float64) if t.is_floating_point() else t

    def jacobians(inputs: Any) -> dict[str, torch.Tensor]:
        return _jacobians(_output_rows(copied, _map_tensors(inputs, as_float64), output_fn, mode), owners)

    jac1 = jacobians(x1)
    jac2 = jac1 if x2 is None else jacobians(x2)
    equation = "iop,jop->ij" if kind == "trace" else "iop,jqp->ijoq"
    blocks = {name: torch.einsum(equation, jac1[name], jac2[name]) for name in owners}
    if per_layer:
        return blocks
    return torch.stack(list(blocks.values())).sum(dim=0)


def relative_error(actual: torch.Tensor, expected: torch.Tensor) -> float:
    """``||actual - expected||_F / ||expected||_F`` in float64 (absolute error when ``expected`` is zero)."""
    actual, expected = actual.detach().to(torch.float64), expected.detach().to(torch.float64)
    scale = expected.norm().item()
    error = (actual - expected).norm().item()
    return error / scale if scale > 0 else error


def assert_kernels_close(actual: Kernel, expected: Kernel, rtol: float) -> None:
    """Assert a kernel (or per-layer dict of kernels) matches the reference in relative Frobenius norm.

    Each per-layer block is compared with its own reference norm, floored at ``1e-3`` of the whole kernel's norm so
    that a zero block can be checked; a block absent from one side counts as zero there (parameters the output does
    not depend on).

    Raises:
        AssertionError: Naming the block, the shapes or the error found.
    """
    if not isinstance(expected, dict):
        assert isinstance(actual, torch.Tensor), f"expected a tensor, received {type(actual).__name__}"
        assert actual.shape == expected.shape, f"shape {tuple(actual.shape)} != reference {tuple(expected.shape)}"
        error = relative_error(actual, expected)
        assert error <= rtol, f"relative Frobenius error {error:.3e} > {rtol:.0e}"
        return
    assert isinstance(actual, dict), f"expected a per-layer dict, received {type(actual).__name__}"
    total = torch.stack([block.to(torch.float64) for block in expected.values()]).sum(dim=0).norm().item()
    for name in sorted(set(actual) | set(expected)):
        reference = expected.get(name)
        block = actual.get(name)
        reference = torch.zeros_like(block, dtype=torch.float64) if reference is None else reference
        block = torch.zeros_like(reference) if block is None else block
        assert block.shape == reference.shape, f"block {name!r}: shape {tuple(block.shape)} != {tuple(reference.shape)}"
        error = (block.detach().to(torch.float64) - reference).norm().item()
        scale = max(reference.norm().item(), 1e-3 * total)
        assert error <= rtol * scale, f"block {name!r}: Frobenius error {error:.3e} > {rtol:.0e} * {scale:.3e}"
