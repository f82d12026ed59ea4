"""The scenarios of theory.md sections 4-6: the verdict is calibrated and checked on them, and the demo runs five.

Each is small enough to train in about a second on one CPU core. Theory's predictions:

- minimal model ``f = a w^T x`` (section 4): ``delta >> 0`` lazy; ``delta = 0`` from small initialisation rich
  (the kernel turns and grows by ``s / |beta_0|``; only grows when ``w_0`` is aligned with ``beta*``); ``delta << 0``
  lazy when ``w_0`` is aligned with ``beta*``, otherwise lazy first and rich once ``w`` has rotated;
- lambda-balanced linear nets (section 4): ``|lambda| >> 0`` lazy, ``lambda = 0`` from small initialisation rich;
- the trap of section 5.5: a large ``lambda > 0`` net whose small first layer changes its representation
  (CKA to init ~ 0.45) while the NTK stays lazy (``S ~ 1e-6``);
- wide NTK-parametrised nets (6.3), large output scale (6.4), large diagonal nets (6.5): lazy; small output scale
  and small diagonal nets: rich;
- the teacher-student corners of 6.6 (the demo's runs, :data:`DEMO`): small balanced or upstream initialisation
  rich, small downstream lazy early, large or wide lazy.

The teacher-student runs fit the task of :mod:`~regimescope.scenarios.teacher_student` from a mirrored initialisation
(the initial function is zero) and differ only in the initialisation and the step size its kernel allows. Measured
with the closed-form NTK on the 96-point probe (``tests/scenarios/test_teacher_runs.py``): the rich runs end with
``S(K_0, K_T)`` 0.2 and 0.17 (balanced: relative change 22), the lazy ones with ``S < 1e-4`` and relative change
under 0.02, and downstream with ``S = 1.4e-3`` after ``S = 1.6e-4`` at a tenth of its steps; every run brings the
loss below 3% of its initial value. Step sizes keep ``lr * loss_weight * lambda_max(K_train)`` at most 0.47
(gradient descent is stable below 2), so no run owes its kernel change to a large-step (catapult) instability.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from regimescope.exact.lambda_balanced import lambda_balanced_init
from regimescope.probe import Probe
from regimescope.scenarios.initialisation import InitSpec, Parametrisation, make_student
from regimescope.scenarios.models import (
    CentredScaled,
    DiagonalLinear,
    NTKTwoLayer,
    minimal_model,
    two_layer_linear,
    whitened_inputs,
)
from regimescope.scenarios.scenario import Scenario, Setup
from regimescope.scenarios.teacher_student import DEFAULT_DIM, make_probe, make_teacher_student
from regimescope.scenarios.theory import Signature, Theory

BOTH = frozenset({Signature.DIRECTION, Signature.SCALE})


# --------------------------------------------------------------------------------------------- minimal model
MINIMAL_SAMPLES, MINIMAL_DIM = 16, 4


def minimal_task(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Whitened inputs ``X`` (``X^T X = I``, ``16 x 4``) and Gaussian targets ``y``; ``beta* = X^T y``."""
    x = whitened_inputs(MINIMAL_SAMPLES, MINIMAL_DIM, seed)
    y = np.random.default_rng(seed + 1).standard_normal(MINIMAL_SAMPLES)
    return x, y


def minimal_start(a_0: float, w_norm: float, aligned: bool, seed: int = 0) -> tuple[float, np.ndarray]:
    """``(a_0, w_0)`` with ``|w_0| = w_norm``, along ``beta*`` when ``aligned`` else in a fixed random direction
    (with a positive component along ``beta*``)."""
    x, y = minimal_task(seed)
    beta_star = x.T @ y
    direction = beta_star if aligned else np.random.default_rng(seed + 2).standard_normal(MINIMAL_DIM)
    direction = direction * np.sign(direction @ beta_star)
    return a_0, direction / np.linalg.norm(direction) * w_norm


def minimal_setup(a_0: float, w_norm: float, aligned: bool, lr: float, time: float) -> Setup:
    """The minimal model on :func:`minimal_task` from :func:`minimal_start`, ``time / lr`` steps of rate ``lr``."""
    x, y = minimal_task()
    a, w = minimal_start(a_0, w_norm, aligned)
    inputs, targets = torch.from_numpy(x), torch.from_numpy(y)[:, None]
    return Setup(minimal_model(a, w), inputs, targets, lr, round(time / lr), 1.0, Probe(inputs, targets))


def _aligned_balanced_norm() -> float:
    """``|w_0| = a_0`` such that ``|beta_0| = a_0^2 = s / 10``: the kernel must grow tenfold."""
    x, y = minimal_task()
    return float(np.sqrt(np.linalg.norm(x.T @ y) / 10))


# ------------------------------------------------------------------------------------------ lambda-balanced
LAMBDA_SAMPLES, LAMBDA_DIM = 12, 3


def lambda_task(
    dim: int = LAMBDA_DIM, samples: int = LAMBDA_SAMPLES, rank_one: bool = False, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Whitened inputs (``X^T X / P = I``) and targets ``Y = X B^T``; ``B`` Gaussian, or rank one with norm 4."""
    x = whitened_inputs(samples, dim, seed, scale=samples)
    rng = np.random.default_rng(seed + 1)
    if rank_one:
        u, v = rng.standard_normal(dim), rng.standard_normal(dim)
        b = 4.0 * np.outer(u / np.linalg.norm(u), v / np.linalg.norm(v))
    else:
        b = rng.standard_normal((dim, dim))
    return x, x @ b.T


def lambda_setup(lam: float, sigma: float, time: float, rank_one: bool = False, dim: int = LAMBDA_DIM) -> Setup:
    """A lambda-balanced ``dim x dim x dim`` linear net (product singular values ``sigma`` to ``sigma / 2``) on
    :func:`lambda_task`, at rate ``0.02 / (|lambda| + 4)`` for gradient-flow time ``time``."""
    samples = 4 * dim
    x, y = lambda_task(dim, samples, rank_one)
    w_1, w_2 = lambda_balanced_init(lam, np.full(dim, sigma) * np.linspace(1, 0.5, dim), dim, dim, seed=1)
    lr = 0.02 / (abs(lam) + 4)
    inputs, targets = torch.from_numpy(x), torch.from_numpy(y)
    return Setup(two_layer_linear(w_1, w_2), inputs, targets, lr, round(time / lr), 1 / samples, Probe(inputs, targets))


# ------------------------------------------------------------------------------- width, output scale, diagonal
SMOOTH_SAMPLES, SMOOTH_DIM = 32, 8


def smooth_task(seed: int = 5) -> tuple[torch.Tensor, torch.Tensor]:
    """``32`` Gaussian inputs in ``8`` dimensions with targets ``sin(1.5 x_1) + x_2 / 2``."""
    x = torch.randn(SMOOTH_SAMPLES, SMOOTH_DIM, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    return x, torch.sin(1.5 * x[:, :1]) + 0.5 * x[:, 1:2]


def ntk_setup(width: int, activation: nn.Module, steps: int = 200, seed: int = 0) -> Setup:
    """An NTK-parametrised two-layer net of ``width`` units on :func:`smooth_task`, rate 0.5."""
    x, y = smooth_task()
    model = NTKTwoLayer(SMOOTH_DIM, width, activation, seed)
    return Setup(model, x, y, 0.5, steps, 1 / SMOOTH_SAMPLES, Probe(x, y))


def output_scale_setup(alpha: float, lr: float, steps: int) -> Setup:
    """``alpha (g - g_0)`` for a width-64 ReLU net ``g`` on :func:`smooth_task`, trained on ``loss / alpha^2``."""
    x, y = smooth_task()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        net = nn.Sequential(nn.Linear(SMOOTH_DIM, 64), nn.ReLU(), nn.Linear(64, 1)).double()
    model = CentredScaled(net, alpha)
    return Setup(model, x, y, lr, steps, 1 / (SMOOTH_SAMPLES * alpha**2), Probe(x, y))


SPARSE_SAMPLES, SPARSE_DIM, SPARSE_SUPPORT = 20, 40, 3


def sparse_task(seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """``20`` Gaussian inputs in ``40`` dimensions labelled by a 3-sparse ``beta* = (1, 1, 1, 0, ...)``."""
    x = torch.randn(SPARSE_SAMPLES, SPARSE_DIM, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    beta = torch.zeros(SPARSE_DIM, dtype=torch.float64)
    beta[:SPARSE_SUPPORT] = 1.0
    return x, (x @ beta)[:, None]


def diagonal_setup(alpha: float, steps: int = 4000) -> Setup:
    """A diagonal linear net from ``u = v = alpha`` on :func:`sparse_task`, at a stable rate for its kernel."""
    x, y = sparse_task()
    top = float(torch.linalg.eigvalsh(x @ x.T).max())
    lr = 0.5 * SPARSE_SAMPLES / (8 * max(alpha**2, 1.0) * top)
    return Setup(DiagonalLinear(SPARSE_DIM, alpha), x, y, lr, steps, 1 / SPARSE_SAMPLES, Probe(x, y))


# -------------------------------------------------------------------------------------------- teacher-student
TEACHER_SAMPLES, TEACHER_SEED = 256, 0
SMALL_SCALE, SMALL_WIDTH = 0.05, 64
"""``tau`` of the small-scale teacher runs (per-unit weight norms ``|a_k| |(w_k, b_k)| = tau^2``) and their width."""


def teacher_setup(init: InitSpec, lr: float, width: int, steps: int) -> Setup:
    """A two-layer ReLU student of ``width`` units initialised as ``init`` says, on the teacher-student task (256
    examples in 8 dimensions, seed 0) at rate ``lr`` for ``steps`` steps, probed on the task's held-out probe."""
    x, y = make_teacher_student(TEACHER_SAMPLES, DEFAULT_DIM, TEACHER_SEED)
    probe_x, probe_y = make_probe(DEFAULT_DIM, TEACHER_SEED)
    model = make_student(init, DEFAULT_DIM, width, TEACHER_SEED)
    return Setup(model, x, y, lr, steps, 1 / TEACHER_SAMPLES, Probe(probe_x, probe_y))


def _scenario(name: str, section: str, description: str, theory: Theory, build, signatures=frozenset()) -> Scenario:
    return Scenario(name, section, description, theory, build, frozenset(signatures))


SCENARIOS: tuple[Scenario, ...] = (
    _scenario(
        "minimal/upstream",
        "4",
        "a w^T x, delta = +9 (a_0 = 3, |w_0| = 0.1)",
        Theory.LAZY,
        lambda: minimal_setup(3.0, 0.1, False, 1e-3, 2.0),
    ),
    _scenario(
        "minimal/balanced",
        "4",
        "a w^T x, delta = 0, small init (0.05)",
        Theory.RICH,
        lambda: minimal_setup(0.05, 0.05, False, 1e-3, 8.0),
        BOTH,
    ),
    _scenario(
        "minimal/balanced-aligned",
        "4",
        "a w^T x, delta = 0, w_0 along beta*, |beta_0| = s/10",
        Theory.RICH,
        lambda: minimal_setup(_aligned_balanced_norm(), _aligned_balanced_norm(), True, 1e-3, 6.0),
        {Signature.SCALE},
    ),
    _scenario(
        "minimal/downstream",
        "4",
        "a w^T x, delta = -16 (a_0 = 0.05, |w_0| = 4)",
        Theory.DELAYED_RICH,
        lambda: minimal_setup(0.05, 4.0, False, 2e-3, 16.0),
        {Signature.DIRECTION},
    ),
    _scenario(
        "minimal/downstream-aligned",
        "4",
        "a w^T x, delta = -40, w_0 along beta*",
        Theory.LAZY,
        lambda: minimal_setup(0.05, 40**0.5, True, 1e-3, 1.0),
    ),
    _scenario(
        "lambda/balanced-small",
        "4",
        "W_2 W_1 x, lambda = 0, sigma = 0.01",
        Theory.RICH,
        lambda: lambda_setup(0.0, 0.01, 8.0),
        BOTH,
    ),
    _scenario("lambda/upstream", "4", "W_2 W_1 x, lambda = +16", Theory.LAZY, lambda: lambda_setup(16.0, 0.5, 1.0)),
    _scenario("lambda/downstream", "4", "W_2 W_1 x, lambda = -16", Theory.LAZY, lambda: lambda_setup(-16.0, 0.5, 1.0)),
    _scenario(
        "trap/representation",
        "5.5",
        "W_2 W_1 x, lambda = +64, rank-one target: CKA ~0.45, NTK lazy",
        Theory.LAZY,
        lambda: lambda_setup(64.0, 0.5, 0.3, rank_one=True, dim=4),
    ),
    _scenario(
        "width/relu-4096", "6.3", "NTK parametrisation, ReLU, m = 4096", Theory.LAZY, lambda: ntk_setup(4096, nn.ReLU())
    ),
    _scenario(
        "width/tanh-4096", "6.3", "NTK parametrisation, tanh, m = 4096", Theory.LAZY, lambda: ntk_setup(4096, nn.Tanh())
    ),
    _scenario(
        "scale/alpha-30", "6.4", "alpha (f - f_0), alpha = 30", Theory.LAZY, lambda: output_scale_setup(30.0, 0.2, 300)
    ),
    _scenario(
        "scale/alpha-0.1",
        "6.4",
        "alpha (f - f_0), alpha = 0.1",
        Theory.RICH,
        lambda: output_scale_setup(0.1, 0.02, 1500),
        {Signature.DIRECTION},
    ),
    _scenario("diagonal/small", "6.5", "u*u - v*v, alpha = 0.01", Theory.RICH, lambda: diagonal_setup(0.01), BOTH),
    _scenario("diagonal/large", "6.5", "u*u - v*v, alpha = 1", Theory.LAZY, lambda: diagonal_setup(1.0)),
    _scenario(
        "teacher/balanced",
        "6.6",
        "two-layer ReLU, small init, balanced layers (delta_k = 0)",
        Theory.RICH,
        lambda: teacher_setup(InitSpec(SMALL_SCALE, balance=0.0), 0.1, SMALL_WIDTH, 600),
        BOTH,
    ),
    _scenario(
        "teacher/upstream",
        "6.6",
        "two-layer ReLU, small init, small first layer (delta_k = +1)",
        Theory.RICH,
        lambda: teacher_setup(InitSpec(SMALL_SCALE, balance=1.0), 0.015, SMALL_WIDTH, 600),
        {Signature.DIRECTION},
    ),
    _scenario(
        "teacher/downstream",
        "6.6",
        "two-layer ReLU, small init, small readout (delta_k = -2)",
        Theory.LAZY_EARLY,
        lambda: teacher_setup(InitSpec(SMALL_SCALE, balance=-2.0), 0.02, SMALL_WIDTH, 1500),
    ),
    _scenario(
        "teacher/large",
        "6.6",
        "two-layer ReLU, large init, balanced layers (tau = 3)",
        Theory.LAZY,
        lambda: teacher_setup(InitSpec(3.0, balance=0.0), 0.0012, SMALL_WIDTH, 1500),
    ),
    _scenario(
        "teacher/wide-ntk",
        "6.6",
        "two-layer ReLU, NTK parametrisation, Gaussian init, m = 1024",
        Theory.LAZY,
        lambda: teacher_setup(InitSpec(1.0, balance=None, parametrisation=Parametrisation.NTK), 0.5, 1024, 400),
    ),
)
"""Every scenario, in table order."""

DEMO: tuple[Scenario, ...] = tuple(scenario for scenario in SCENARIOS if scenario.name.startswith("teacher/"))
"""The runs of ``regimescope demo``: the teacher-student corners of theory.md 6.6."""


def get(name: str) -> Scenario:
    """The scenario called ``name``.

    Raises:
        KeyError: For an unknown name (the message lists the known ones).
    """
    for scenario in SCENARIOS:
        if scenario.name == name:
            return scenario
    raise KeyError(f"No scenario named {name!r}; expected one of {[s.name for s in SCENARIOS]}.")
