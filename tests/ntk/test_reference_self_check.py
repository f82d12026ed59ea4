"""The float64 reference NTK checked on its own: closed forms (theory.md section 3) and an independent autodiff path.

The engine's tests trust :func:`tests.reference.ntk_reference.reference_ntk`; these tests are why.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest
import torch
from torch import nn
from torch.func import functional_call, jacrev, replace_all_batch_norm_modules_

from tests._models import LAYOUT_TRAP_NAMES, MODEL_NAMES, build, inputs_for
from tests.reference.ntk_reference import ROOT_NAME, parameter_owners, reference_ntk, relative_error

CLOSED_FORM_RTOL = 1e-12


def _generator(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _bias_free_chain(*sizes: int, seed: int = 0) -> nn.Sequential:
    """Linear maps without bias, sizes ``(d, h, ..., c)``, float64, seeded."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        layers = [nn.Linear(a, b, bias=False) for a, b in zip(sizes[:-1], sizes[1:])]
    return nn.Sequential(*layers).double()


def _output_major(full: torch.Tensor) -> torch.Tensor:
    """``(n1, n2, k, k)`` -> ``(k n1, k n2)`` with rows ordered (output, sample), as in theory.md."""
    n1, n2, k, _ = full.shape
    return full.permute(2, 0, 3, 1).reshape(k * n1, k * n2)


def test_minimal_model_matches_closed_form() -> None:
    """f(x) = a w^T x: K = X (a^2 I + w w^T) X'^T."""
    model = _bias_free_chain(4, 1, 1)
    x1 = torch.randn(6, 4, generator=_generator(1), dtype=torch.float64)
    x2 = torch.randn(3, 4, generator=_generator(2), dtype=torch.float64)
    w = model[0].weight.detach().reshape(-1)
    a = model[1].weight.detach().item()
    metric = a**2 * torch.eye(4, dtype=torch.float64) + torch.outer(w, w)

    assert relative_error(reference_ntk(model, x1, x2), x1 @ metric @ x2.T) <= CLOSED_FORM_RTOL


@pytest.mark.parametrize("cross", [False, True], ids=["self", "cross"])
def test_two_layer_linear_matches_closed_form(cross: bool) -> None:
    """f = A W x: K = I_c (x) (X W^T W X'^T) + (A A^T) (x) (X X'^T); the first term is A's block, the second W's."""
    model = _bias_free_chain(5, 7, 3)
    x1 = torch.randn(6, 5, generator=_generator(1), dtype=torch.float64)
    x2 = torch.randn(4, 5, generator=_generator(2), dtype=torch.float64) if cross else None
    other = x1 if x2 is None else x2
    w, a = model[0].weight.detach(), model[1].weight.detach()
    block_a = torch.kron(torch.eye(3, dtype=torch.float64), x1 @ w.T @ w @ other.T)
    block_w = torch.kron(a @ a.T, x1 @ other.T)

    blocks = reference_ntk(model, x1, x2, kind="full", per_layer=True)
    whole = reference_ntk(model, x1, x2, kind="full")

    assert list(blocks) == ["0", "1"]
    assert relative_error(_output_major(blocks["1"]), block_a) <= CLOSED_FORM_RTOL
    assert relative_error(_output_major(blocks["0"]), block_w) <= CLOSED_FORM_RTOL
    assert relative_error(_output_major(whole), block_a + block_w) <= CLOSED_FORM_RTOL


@pytest.mark.parametrize("cross", [False, True], ids=["self", "cross"])
def test_two_layer_relu_matches_closed_form(cross: bool) -> None:
    """f(x) = sum_k a_k relu(w_k^T x + b_k) + c:
    K(x, x') = sum_k [relu(z_k) relu(z'_k) + a_k^2 1[z_k > 0] 1[z'_k > 0] (x^T x' + 1)] + 1."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(3)
        model = nn.Sequential(nn.Linear(4, 9), nn.ReLU(), nn.Linear(9, 1)).double()
    x1 = torch.randn(7, 4, generator=_generator(1), dtype=torch.float64)
    x2 = torch.randn(5, 4, generator=_generator(2), dtype=torch.float64) if cross else None
    other = x1 if x2 is None else x2
    z1, z2 = model[0](x1).detach(), model[0](other).detach()
    a = model[2].weight.detach().reshape(-1)
    outer_block = torch.relu(z1) @ torch.relu(z2).T + 1.0
    inner_block = ((z1 > 0).double() * a**2) @ (z2 > 0).double().T * (x1 @ other.T + 1.0)

    blocks = reference_ntk(model, x1, x2, per_layer=True)

    assert relative_error(blocks["2"], outer_block) <= CLOSED_FORM_RTOL
    assert relative_error(blocks["0"], inner_block) <= CLOSED_FORM_RTOL
    assert relative_error(reference_ntk(model, x1, x2), outer_block + inner_block) <= CLOSED_FORM_RTOL


def _float64_inputs(inputs: Any) -> Any:
    if isinstance(inputs, torch.Tensor):
        return inputs.double() if inputs.is_floating_point() else inputs
    if isinstance(inputs, dict):
        return {key: _float64_inputs(value) for key, value in inputs.items()}
    return tuple(_float64_inputs(value) for value in inputs)


def _jacrev_ntk(model: nn.Module, inputs: Any, mode: str) -> torch.Tensor:
    """Full kernel ``(n, n, k, k)`` from ``torch.func.jacrev`` of the whole-batch function of a float64 copy.

    Tied parameters appear once in ``named_parameters`` and ``functional_call`` ties them again. In train mode
    BatchNorm stops tracking running statistics (its output, from batch statistics, is unchanged).
    """
    model = copy.deepcopy(model).double().train(mode == "train")
    if mode == "train":
        replace_all_batch_norm_modules_(model)
    params = {name: p.detach() for name, p in model.named_parameters() if p.requires_grad}
    inputs = _float64_inputs(inputs)
    args = () if isinstance(inputs, dict) else inputs if isinstance(inputs, tuple) else (inputs,)
    kwargs = inputs if isinstance(inputs, dict) else {}

    def outputs(p: dict[str, torch.Tensor]) -> torch.Tensor:
        out = functional_call(model, p, args, kwargs)
        out = out["logits"] if isinstance(out, dict) else out[0] if isinstance(out, tuple) else out
        return out.reshape(out.shape[0], -1)

    jacobian = torch.cat([j.flatten(2) for j in jacrev(outputs)(params).values()], dim=-1)
    return torch.einsum("iop,jqp->ijoq", jacobian, jacobian)


@pytest.mark.parametrize("name", MODEL_NAMES + LAYOUT_TRAP_NAMES)
def test_reference_matches_jacrev_in_eval_mode(name: str) -> None:
    """Per-sample autograd rows agree with torch.func's whole-batch Jacobian (samples are independent in eval)."""
    model, x = build(name), inputs_for(name, 3)

    assert relative_error(reference_ntk(model, x, kind="full"), _jacrev_ntk(model, x, "eval")) <= 1e-12


def test_reference_matches_jacrev_in_train_mode_with_batchnorm() -> None:
    """In train mode the rows are those of the whole-batch Jacobian, BatchNorm batch statistics included."""
    model, x = build("cnn_bn"), inputs_for("cnn_bn", 4)
    train = reference_ntk(model, x, kind="full", mode="train")

    assert relative_error(train, _jacrev_ntk(model, x, "train")) <= 1e-12
    assert relative_error(train, reference_ntk(model, x, kind="full")) > 1e-2


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_trace_is_the_diagonal_sum_of_full(name: str) -> None:
    model, x1, x2 = build(name), inputs_for(name, 3), inputs_for(name, 2, seed=2)
    full = reference_ntk(model, x1, x2, kind="full")

    assert relative_error(reference_ntk(model, x1, x2), full.diagonal(dim1=2, dim2=3).sum(-1)) <= 1e-14


def test_tied_weight_is_counted_once_under_its_first_owner() -> None:
    model = build("tied_lm")

    assert list(parameter_owners(model)) == ["embed", "mix"]
    assert list(reference_ntk(model, inputs_for("tied_lm", 2), per_layer=True)) == ["embed", "mix"]


def test_root_parameters_are_grouped_under_root_name() -> None:
    model = build("transformer_block")
    owners = parameter_owners(model)

    assert len(owners[ROOT_NAME]) == 1 and owners[ROOT_NAME][0] is model.position
    assert [p is model.attention.in_proj_weight for p in owners["attention"]] == [True, False]


def test_frozen_parameters_are_excluded_unless_asked() -> None:
    model, x = build("frozen_mlp"), inputs_for("frozen_mlp", 3)

    assert "0" not in reference_ntk(model, x, per_layer=True)
    with_frozen = reference_ntk(model, x, per_layer=True, include_frozen=True)
    assert relative_error(with_frozen["0"], reference_ntk(build("mlp"), x, per_layer=True)["0"]) == 0.0


def test_reference_leaves_the_model_untouched() -> None:
    model, x = build("cnn_bn"), inputs_for("cnn_bn", 4)
    before = {key: value.clone() for key, value in model.state_dict().items()}

    reference_ntk(model, x, mode="train")

    after = model.state_dict()
    assert all(torch.equal(before[key], after[key]) and before[key].dtype == after[key].dtype for key in before)
    assert model.training and all(p.grad is None for p in model.parameters())


def test_reference_copies_a_legacy_weight_norm_model_and_agrees_with_the_parametrize_one() -> None:
    """``copy.deepcopy`` refuses a legacy ``nn.utils.weight_norm`` module (its ``weight`` is not a graph leaf); the
    reference copies it anyway, and its kernel in ``(g, v, bias)`` equals that of the ``parametrize`` version,
    whose ``original0``/``original1`` are the same ``g`` and ``v``."""
    legacy, modern = _bias_free_chain(3, 4, 2, seed=3), _bias_free_chain(3, 4, 2, seed=3)
    nn.utils.weight_norm(legacy[0])
    nn.utils.parametrizations.weight_norm(modern[0])
    x = torch.randn(3, 3, generator=_generator(4), dtype=torch.float64)
    with pytest.raises(RuntimeError, match="deepcopy"):
        copy.deepcopy(legacy)

    legacy_kernel = reference_ntk(legacy, x, per_layer=True)
    modern_kernel = reference_ntk(modern, x, per_layer=True)

    assert relative_error(legacy_kernel["0"], modern_kernel["0.parametrizations.weight"]) <= CLOSED_FORM_RTOL
    assert relative_error(legacy_kernel["1"], modern_kernel["1"]) <= CLOSED_FORM_RTOL
