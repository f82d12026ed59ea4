"""Parametrized and shared parameters: the kernel in the trainable leaves, and a model left exactly as it was.

Every ``torch.nn.utils.parametrize`` use (``parametrizations.weight_norm``, ``spectral_norm``, ``orthogonal``), the
legacy hook-based ``nn.utils.weight_norm`` / ``spectral_norm``, and Parameters shared between modules. The kernel is
taken with respect to the leaf parameters the optimizer trains (``parametrizations.weight.original0/1``,
``weight_g``/``weight_v``, ``weight_orig``) and checked against the float64 reference; parameters, buffers (spectral
norm's ``u``/``v``, whose power iteration runs in train mode) and plain tensor attributes (the legacy hooks'
``weight``) are compared bit for bit before and after.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrizations

from regimescope.ntk import empirical_ntk, plan_ntk
from tests._models import wrapped_layer
from tests.reference.ntk_reference import assert_kernels_close, reference_ntk

RTOL = 1e-10


def _mlp() -> nn.Sequential:
    with torch.random.fork_rng():
        torch.manual_seed(0)
        return nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 4), nn.Tanh(), nn.Linear(4, 2)).double()


def _unconverged(vectors: list[torch.Tensor]) -> None:
    """Random unit ``u``/``v`` (not the power iteration's fixed point), so one more iteration changes the output."""
    generator = torch.Generator().manual_seed(5)
    with torch.no_grad():
        for vector in vectors:
            vector.copy_(F.normalize(torch.randn(vector.shape, generator=generator, dtype=vector.dtype), dim=0))


def _spectral_norm() -> nn.Module:
    model = _mlp()
    parametrizations.spectral_norm(model[2])
    norm = model[2].parametrizations.weight[0]
    _unconverged([norm._u, norm._v])
    return model


def _legacy_spectral_norm() -> nn.Module:
    model = _mlp()
    nn.utils.spectral_norm(model[2])
    _unconverged([model[2].weight_u, model[2].weight_v])
    return model


def _conv_weight_norm() -> nn.Module:
    with torch.random.fork_rng():
        torch.manual_seed(1)
        model = nn.Sequential(nn.Conv1d(3, 4, 2), nn.Tanh(), nn.Flatten(), nn.Linear(8, 2)).double()
    parametrizations.weight_norm(model[0])
    return model


class _Tied(nn.Module):
    """``second`` holds the very Parameter ``first.weight``; with ``functional``, the head also reuses it through
    ``F.linear`` (a use no rule sees)."""

    def __init__(self, functional: bool) -> None:
        super().__init__()
        self.functional = functional
        with torch.random.fork_rng():
            torch.manual_seed(2)
            self.first, self.second, self.head = nn.Linear(4, 4), nn.Linear(4, 4), nn.Linear(4, 2)
        self.second.weight = self.first.weight

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.tanh(self.second(torch.tanh(self.first(x))))
        return self.head(h) + (F.linear(h, self.first.weight)[:, :2] if self.functional else 0)


class _Reused(nn.Module):
    """One linear module called twice on the way."""

    def __init__(self) -> None:
        super().__init__()
        with torch.random.fork_rng():
            torch.manual_seed(3)
            self.inp, self.loop, self.head = nn.Linear(3, 4), nn.Linear(4, 4), nn.Linear(4, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.tanh(self.inp(x))
        return self.head(torch.tanh(self.loop(torch.tanh(self.loop(h)))))


CASES: dict[str, tuple[Callable[[], nn.Module], tuple[int, ...]]] = {
    "weight_norm": (wrapped_layer(_mlp, parametrizations.weight_norm), (3,)),
    "spectral_norm": (_spectral_norm, (3,)),
    "orthogonal": (wrapped_layer(_mlp, parametrizations.orthogonal), (3,)),
    "conv_weight_norm": (_conv_weight_norm, (3, 3)),
    "legacy_weight_norm": (wrapped_layer(_mlp, nn.utils.weight_norm), (3,)),
    "legacy_spectral_norm": (_legacy_spectral_norm, (3,)),
    "tied_between_modules": (lambda: _Tied(functional=False).double(), (4,)),
    "tied_and_used_functionally": (lambda: _Tied(functional=True).double(), (4,)),
    "reused_module": (lambda: _Reused().double(), (3,)),
}


def _state(model: nn.Module) -> dict[str, object]:
    """Parameters and buffers (values and identities) and every plain tensor attribute's identity."""
    return {
        "tensors": {name: (t, t.detach().clone()) for name, t in [*model.named_parameters(), *model.named_buffers()]},
        "attributes": {(name, key): value for name, module in model.named_modules()
                       for key, value in vars(module).items() if isinstance(value, torch.Tensor)},
        "training": [m.training for m in model.modules()],
    }


def _assert_untouched(model: nn.Module, before: dict[str, object]) -> None:
    after = _state(model)
    assert after["tensors"].keys() == before["tensors"].keys()
    for name, (tensor, value) in before["tensors"].items():
        assert after["tensors"][name][0] is tensor, f"{name} replaced"
        assert torch.equal(tensor, value) and tensor.dtype == value.dtype, f"{name} changed"
        assert getattr(tensor, "grad", None) is None, f"{name}.grad set"
    assert after["attributes"].keys() == before["attributes"].keys()
    assert all(after["attributes"][key] is value for key, value in before["attributes"].items())
    assert after["training"] == before["training"]


@pytest.mark.parametrize("mode", ["eval", "train"])
@pytest.mark.parametrize("case", list(CASES))
def test_kernel_in_the_trainable_leaves_and_model_untouched(case: str, mode: str) -> None:
    builder, shape = CASES[case]
    model = builder().train()
    x1 = torch.randn(4, *shape, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    x2 = torch.randn(3, *shape, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    expected = reference_ntk(model, x1, None if mode == "train" else x2, kind="full", per_layer=True, mode=mode)
    before = _state(model)

    kernel = empirical_ntk(model, x1, None if mode == "train" else x2, kind="full", per_layer=True, mode=mode)

    _assert_untouched(model, before)
    assert_kernels_close(kernel, expected, RTOL)


@pytest.mark.parametrize(
    ("case", "rules"),
    [
        ("weight_norm", {"2": "linear", "2.parametrizations.weight": "generic"}),
        ("spectral_norm", {"2": "linear", "2.parametrizations.weight": "generic"}),
        ("orthogonal", {"2": "linear", "2.parametrizations.weight": "generic"}),
        ("conv_weight_norm", {"0": "conv", "0.parametrizations.weight": "generic"}),
        ("legacy_weight_norm", {"2": "generic"}),
        ("legacy_spectral_norm", {"2": "generic"}),
        ("tied_between_modules", {"first": "linear", "head": "linear"}),
        ("tied_and_used_functionally", {"first": "generic", "head": "linear"}),
        ("reused_module", {"loop": "linear"}),
    ],
)
def test_rules_leave_what_they_cannot_see_through_to_the_generic_path(case: str, rules: dict[str, str]) -> None:
    """A rule computes only a module's own plain ``weight``/``bias``: the parametrized weight (its
    ``ParametrizationList``), the legacy hooks' ``weight_g``/``weight_v``/``weight_orig`` and a weight also used
    through ``F.linear`` take the generic path; the bias next to a parametrized weight keeps its rule."""
    builder, shape = CASES[case]
    x = torch.randn(4, *shape, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    plan = {block.name: block.rule for block in plan_ntk(builder(), x).blocks}

    assert {name: plan[name] for name in rules} == rules
