"""Correctness of :func:`regimescope.empirical_ntk` against the float64 reference, over the model zoo.

Every implementation is checked against :func:`tests.reference.ntk_reference.reference_ntk` (itself checked in
``test_reference_self_check.py``) with dtype-keyed tolerances, and every call must leave the model, its hooks and
the random state exactly as they were.
"""

from __future__ import annotations

import functools
import random
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

from regimescope import empirical_ntk
from regimescope.ntk import Implementation
from tests._models import LAYOUT_TRAP_NAMES, MODEL_NAMES, build, inputs_for, mlp
from tests.ntk._faults import FailInBackward
from tests.reference.ntk_reference import Kernel, assert_kernels_close, reference_ntk, relative_error

IMPLEMENTATIONS = tuple(member.value for member in Implementation)
"""Every implementation, from the enum, so that a new member is tested without anyone remembering to add it."""
TRAIN_IMPLEMENTATIONS = (Implementation.AUTO.value, Implementation.FULL_BATCH.value)
"""The implementations valid in train mode; the others assume independent examples and are refused."""
KINDS = ("trace", "full")
RTOL = {torch.float64: 1e-10, torch.float32: 1e-4}
N1, N2 = 4, 3


def _x1(name: str) -> Any:
    return inputs_for(name, N1, seed=1)


def _x2(name: str, cross: bool) -> Any:
    return inputs_for(name, N2, seed=2) if cross else None


@functools.cache
def _reference(name: str, kind: str, per_layer: bool, cross: bool, mode: str = "eval",
               include_frozen: bool = False) -> Kernel:
    """Cached reference kernel of zoo model ``name`` on the standard probe batches."""
    return reference_ntk(build(name), _x1(name), _x2(name, cross), kind=kind, per_layer=per_layer, mode=mode,
                         include_frozen=include_frozen)


def _as_matrix(kernel: torch.Tensor) -> torch.Tensor:
    """A trace kernel as is; a full ``(n, n, k, k)`` kernel as the ``(n k, n k)`` matrix J J^T."""
    if kernel.dim() == 2:
        return kernel
    n, _, k, _ = kernel.shape
    return kernel.permute(0, 2, 1, 3).reshape(n * k, n * k)


@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
@pytest.mark.parametrize("per_layer", [False, True], ids=["whole", "per_layer"])
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("cross", [False, True], ids=["self", "cross"])
@pytest.mark.parametrize("name", MODEL_NAMES + LAYOUT_TRAP_NAMES)
def test_eval_mode_matches_reference(name: str, cross: bool, kind: str, per_layer: bool, implementation: str) -> None:
    kernel = empirical_ntk(build(name), _x1(name), _x2(name, cross), kind=kind, per_layer=per_layer,
                           dtype=torch.float64, implementation=implementation)

    assert all(block.dtype == torch.float64 for block in (kernel.values() if per_layer else [kernel]))
    assert_kernels_close(kernel, _reference(name, kind, per_layer, cross), RTOL[torch.float64])


@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(
    ("name", "x1", "x2"),
    [
        ("seq_mlp", torch.randn(4, 5, 4, generator=torch.Generator().manual_seed(5)),
         torch.randn(3, 2, 4, generator=torch.Generator().manual_seed(6))),
        ("cnn_bn", torch.randn(4, 3, 8, 8, generator=torch.Generator().manual_seed(5)),
         torch.randn(3, 3, 12, 10, generator=torch.Generator().manual_seed(6))),
    ],
    ids=["sequence_length", "image_size"],
)
def test_cross_kernel_between_inputs_of_different_sizes(name: str, x1: torch.Tensor, x2: torch.Tensor, kind: str,
                                                        implementation: str) -> None:
    """x1 and x2 may differ in every dimension but the batch: 5 vs 2 positions, 8x8 vs 12x10 images."""
    model = build(name)
    kernel = empirical_ntk(model, x1, x2, kind=kind, dtype=torch.float64, implementation=implementation)

    assert_kernels_close(kernel, reference_ntk(model, x1, x2, kind=kind), RTOL[torch.float64])


@pytest.mark.parametrize("implementation", TRAIN_IMPLEMENTATIONS)
@pytest.mark.parametrize("per_layer", [False, True], ids=["whole", "per_layer"])
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("cross", [False, True], ids=["self", "cross"])
@pytest.mark.parametrize("name", MODEL_NAMES)
def test_train_mode_matches_reference(name: str, cross: bool, kind: str, per_layer: bool, implementation: str) -> None:
    kernel = empirical_ntk(build(name), _x1(name), _x2(name, cross), kind=kind, per_layer=per_layer, mode="train",
                           dtype=torch.float64, implementation=implementation)

    assert_kernels_close(kernel, _reference(name, kind, per_layer, cross, mode="train"), RTOL[torch.float64])


def test_train_mode_uses_batch_statistics() -> None:
    """With BatchNorm, train and eval kernels differ (so the train-mode comparison above has teeth)."""
    model, x = build("cnn_bn"), _x1("cnn_bn")
    train = empirical_ntk(model, x, mode="train", dtype=torch.float64)
    evaluation = empirical_ntk(model, x, mode="eval", dtype=torch.float64)

    assert relative_error(train, evaluation) > 1e-2


@pytest.mark.parametrize("implementation", sorted(set(IMPLEMENTATIONS) - set(TRAIN_IMPLEMENTATIONS)))
def test_train_mode_refuses_sample_independent_implementations(implementation: str) -> None:
    with pytest.raises(ValueError, match="train mode"):
        empirical_ntk(build("cnn_bn"), _x1("cnn_bn"), mode="train", implementation=implementation)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
@pytest.mark.parametrize("name", MODEL_NAMES)
def test_kernel_is_symmetric_psd_and_sums_over_layers(name: str, implementation: str, kind: str) -> None:
    model, x = build(name), _x1(name)
    whole = empirical_ntk(model, x, kind=kind, dtype=torch.float64, implementation=implementation)
    blocks = empirical_ntk(model, x, kind=kind, per_layer=True, dtype=torch.float64, implementation=implementation)
    matrix = _as_matrix(whole)
    eigenvalues = torch.linalg.eigvalsh(0.5 * (matrix + matrix.T))

    assert relative_error(matrix.T, matrix) <= 1e-12
    assert eigenvalues.min() >= -1e-10 * eigenvalues.max()
    assert relative_error(torch.stack(list(blocks.values())).sum(0), whole) <= 1e-12


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
@pytest.mark.parametrize("name", MODEL_NAMES)
def test_float32_default_is_close_to_float64(name: str, implementation: str, kind: str) -> None:
    kernel = empirical_ntk(build(name), _x1(name), _x2(name, True), kind=kind, implementation=implementation)

    assert kernel.dtype == torch.float32
    assert_kernels_close(kernel, _reference(name, kind, False, True), RTOL[torch.float32])


@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
@pytest.mark.parametrize("per_layer", [False, True], ids=["whole", "per_layer"])
@pytest.mark.parametrize("kind", KINDS)
def test_include_frozen_differentiates_frozen_parameters(kind: str, per_layer: bool, implementation: str) -> None:
    model = build("frozen_mlp")
    kernel = empirical_ntk(model, _x1("frozen_mlp"), kind=kind, per_layer=per_layer, dtype=torch.float64,
                           implementation=implementation, include_frozen=True)
    expected = _reference("frozen_mlp", kind, per_layer, False, include_frozen=True)

    assert_kernels_close(kernel, expected, RTOL[torch.float64])
    assert [p.requires_grad for p in model.parameters()] == [False, False, True, True, True, True]
    if per_layer:
        assert "0" in kernel


@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
@pytest.mark.parametrize(
    ("name", "output_fn"),
    [("dict_output_model", lambda out: out["aux"]), ("two_input_model", lambda out: out[1])],
    ids=["dict_aux", "tuple_second"],
)
def test_output_fn_selects_the_output(name: str, output_fn: Callable[[Any], torch.Tensor],
                                      implementation: str) -> None:
    model, x1, x2 = build(name), _x1(name), _x2(name, True)
    kernel = empirical_ntk(model, x1, x2, kind="full", per_layer=True, output_fn=output_fn, dtype=torch.float64,
                           implementation=implementation)

    expected = reference_ntk(model, x1, x2, kind="full", per_layer=True, output_fn=output_fn)
    assert_kernels_close(kernel, expected, RTOL[torch.float64])


@pytest.mark.parametrize("max_memory", [1, 4096])
@pytest.mark.parametrize("cross", [False, True], ids=["self", "cross"])
@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
@pytest.mark.parametrize("name", MODEL_NAMES)
def test_small_memory_budget_chunks_without_changing_the_kernel(name: str, implementation: str, cross: bool,
                                                                max_memory: int) -> None:
    kernel = empirical_ntk(build(name), _x1(name), _x2(name, cross), kind="full", per_layer=True,
                           dtype=torch.float64, implementation=implementation, max_memory=max_memory)

    assert_kernels_close(kernel, _reference(name, "full", True, cross), RTOL[torch.float64])


@pytest.mark.parametrize("mode", ["eval", "train"])
def test_works_inside_no_grad(mode: str) -> None:
    with torch.no_grad():
        kernel = empirical_ntk(build("cnn_bn"), _x1("cnn_bn"), mode=mode, dtype=torch.float64)
        assert not torch.is_grad_enabled()

    assert_kernels_close(kernel, _reference("cnn_bn", "trace", False, False, mode=mode), RTOL[torch.float64])


def _hooks(model: nn.Module) -> list[Any]:
    """Every module, parameter and global hook registry, by key."""
    registries = ("_forward_hooks", "_forward_pre_hooks", "_backward_hooks", "_backward_pre_hooks",
                  "_forward_hooks_with_kwargs", "_forward_pre_hooks_with_kwargs", "_state_dict_hooks",
                  "_load_state_dict_pre_hooks")
    modules = [(name, [tuple(getattr(m, r)) for r in registries]) for name, m in model.named_modules()]
    params = [(name, tuple(p._backward_hooks or ()), tuple(getattr(p, "_post_accumulate_grad_hooks", None) or ()))
              for name, p in model.named_parameters()]
    module_globals = torch.nn.modules.module
    global_hooks = [tuple(getattr(module_globals, r)) for r in ("_global_forward_hooks", "_global_forward_pre_hooks",
                                                                  "_global_backward_hooks",
                                                                  "_global_backward_pre_hooks")]
    return [modules, params, global_hooks]


def _snapshot(model: nn.Module) -> dict[str, Any]:
    """Everything a measurement must not change."""
    return {
        "state": {key: value.clone() for key, value in model.state_dict().items()},
        "parameters": [(name, p, p.requires_grad, p.dtype, None if p.grad is None else p.grad.clone())
                       for name, p in model.named_parameters()],
        "training": [(name, m.training) for name, m in model.named_modules()],
        "hooks": _hooks(model),
        "torch_rng": torch.get_rng_state(),
        "numpy_rng": np.random.get_state()[1].copy(),
        "python_rng": random.getstate(),
        "grad_enabled": torch.is_grad_enabled(),
        "default_dtype": torch.get_default_dtype(),
    }


def _assert_unchanged(model: nn.Module, before: dict[str, Any]) -> None:
    after = _snapshot(model)
    for key, value in before["state"].items():
        assert after["state"][key].dtype == value.dtype, f"{key} dtype changed"
        assert torch.equal(after["state"][key], value), f"{key} changed"
    for (name, p, requires_grad, dtype, grad), (_, q, requires_grad_now, dtype_now, grad_now) in zip(
        before["parameters"], after["parameters"]
    ):
        assert p is q and requires_grad == requires_grad_now and dtype == dtype_now, f"parameter {name} replaced"
        assert (grad is None) == (grad_now is None), f"{name}.grad was {grad} and is now {grad_now}"
        assert grad is None or torch.equal(grad, grad_now), f"{name}.grad changed"
    assert after["training"] == before["training"]
    assert after["hooks"] == before["hooks"]
    assert torch.equal(after["torch_rng"], before["torch_rng"])
    assert np.array_equal(after["numpy_rng"], before["numpy_rng"])
    assert after["python_rng"] == before["python_rng"]
    assert after["grad_enabled"] == before["grad_enabled"]
    assert after["default_dtype"] == before["default_dtype"]


def _same_inputs(a: Any, b: Any) -> bool:
    """Same structure, and tensor leaves equal with the same dtype."""
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b)
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(_same_inputs(a[key], b[key]) for key in a)
    return type(a) is type(b) and len(a) == len(b) and all(_same_inputs(u, v) for u, v in zip(a, b))


def _mix_training_flags(model: nn.Module) -> None:
    """Alternate train/eval flags over the module tree so restoring one global flag is not enough."""
    for index, module in enumerate(model.modules()):
        module.training = index % 2 == 0


def _valid_cases() -> list[tuple[str, str]]:
    return [("eval", i) for i in IMPLEMENTATIONS] + [("train", i) for i in TRAIN_IMPLEMENTATIONS]


@pytest.mark.parametrize("dtype", [None, torch.float64], ids=["default", "float64"])
@pytest.mark.parametrize(("mode", "implementation"), _valid_cases())
@pytest.mark.parametrize("name", MODEL_NAMES)
def test_model_inputs_and_random_state_are_untouched(name: str, mode: str, implementation: str,
                                                     dtype: torch.dtype | None) -> None:
    model, x = build(name), _x1(name)
    _mix_training_flags(model)
    inputs_before = inputs_for(name, N1, seed=1)
    before = _snapshot(model)

    empirical_ntk(model, x, kind="full", per_layer=True, mode=mode, dtype=dtype, implementation=implementation)

    _assert_unchanged(model, before)
    assert _same_inputs(x, inputs_before)


def _register_user_hooks(model: nn.Sequential, backward: bool) -> None:
    model[0].register_forward_hook(lambda module, args, output: None)
    model[4].register_forward_pre_hook(lambda module, args: None)
    if backward:
        model[8].register_full_backward_hook(lambda module, grad_in, grad_out: None)


@pytest.mark.parametrize("backward_hook", [False, True], ids=["forward_hooks", "full_backward_hook"])
@pytest.mark.parametrize(("mode", "implementation"), _valid_cases())
def test_existing_grads_and_user_hooks_survive(mode: str, implementation: str, backward_hook: bool) -> None:
    model, x = build("cnn_bn"), _x1("cnn_bn")
    for index, parameter in enumerate(model.parameters()):
        parameter.grad = torch.full_like(parameter, float(index + 1))
    _register_user_hooks(model, backward_hook)
    before = _snapshot(model)

    kernel = empirical_ntk(model, x, mode=mode, dtype=torch.float64, implementation=implementation)

    _assert_unchanged(model, before)
    assert_kernels_close(kernel, _reference("cnn_bn", "trace", False, False, mode=mode), RTOL[torch.float64])


@pytest.mark.parametrize(("mode", "implementation"), _valid_cases())
def test_model_is_untouched_after_a_failure(mode: str, implementation: str) -> None:
    model = nn.Sequential(*mlp(), FailInBackward(), nn.BatchNorm1d(3))
    _mix_training_flags(model)
    before = _snapshot(model)

    with pytest.raises(RuntimeError, match="injected"):
        empirical_ntk(model, _x1("mlp"), mode=mode, implementation=implementation)

    _assert_unchanged(model, before)
