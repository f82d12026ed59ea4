"""A layer pair joined through hidden units, and how each unit's incoming and outgoing weights are laid out."""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn
from torch.nn.utils import parametrize

from regimescope.conservation.parameters import (
    ParameterIndex,
    computed_reason,
    holds_tensor,
    incoming_weight,
    symmetry_reasons,
)
from regimescope.guards import shadow_copy

LAYER_TYPES: tuple[type[nn.Module], ...] = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)
"""Modules whose outputs are hidden units (rows of the weight) and whose inputs are read by weight columns."""

NORM_TYPES: tuple[type[nn.Module], ...] = (
    nn.BatchNorm1d,
    nn.BatchNorm2d,
    nn.BatchNorm3d,
    nn.SyncBatchNorm,
    nn.GroupNorm,
    nn.InstanceNorm1d,
    nn.InstanceNorm2d,
    nn.InstanceNorm3d,
    nn.LayerNorm,
    *(getattr(nn, name) for name in ("RMSNorm",) if hasattr(nn, name)),  # torch >= 2.4
)
"""Normalisation modules whose per-unit affine ``(gamma_k, beta_k)`` can be the incoming side of a pair."""

LAST_AXIS_NORMS: tuple[type[nn.Module], ...] = (nn.LayerNorm, *(getattr(nn, n) for n in ("RMSNorm",) if hasattr(nn, n)))
"""Norms acting on the last dimension (their units are the last axis); the others act on channels (dimension 1)."""

LayerKind = Literal["linear", "conv", "norm"]
ColumnLayout = Literal["block", "stride"]
Rows = dict[str, torch.Tensor]
"""``role -> (units, m)`` rows of one unit's parameters (float64 unless asked otherwise); roles ``out_weight``,
``out_bias``, ``in_weight``, ``in_bias`` (the names of :class:`~regimescope.conservation.learning_rates.PairRates`)."""


class Break(enum.Enum):
    """Why a pair's ``delta_k`` is not conserved."""

    NON_HOMOGENEOUS = "non-homogeneous"
    """A non-homogeneous activation (tanh, GELU, SiLU, ...): ``delta_k`` drifts at first order."""
    MIXES_UNITS = "mixes units"
    """An op mixing units (softmax)."""
    NORMALISATION = "normalisation"
    """A norm layer: the incoming weights are scale-invariant; the conserved pair is the norm's affine."""
    CONSTANT_SHIFT = "constant shift"
    """A constant added to each unit."""
    GATING = "gating"
    """Units multiplied or divided by another tensor."""
    RESIDUAL = "residual"
    """A residual addition mixes a second input into each unit."""
    FAN_OUT = "fan-out"
    """A unit feeds several consumers, so its outgoing weights are split."""
    SHARED = "shared"
    """A layer is called more than once, or a parameter is tied between modules (weight sharing)."""
    FROZEN = "frozen"
    """A parameter of the pair does not train."""
    UNMODELLED = "unmodelled"
    """The symmetry also moves parameters ``delta_k`` leaves out (attention's ``add_bias_kv``)."""
    PARAMETRIZED = "parametrized"
    """A parametrization computes a weight of the pair (``spectral_norm``, ``orthogonal``, a weight-normed outgoing
    layer: no per-unit rescaling leaves the model unchanged; or one regimescope does not know), so the pair has no
    balance at all (:mod:`regimescope.conservation.parameters`)."""


def read_weight(
    pair_name: str, weights: Mapping[str, torch.Tensor], name: str, dtype: torch.dtype | None = torch.float64
) -> torch.Tensor:
    """``weights[name]`` detached in ``dtype`` (``None``: its own, not copied; on CPU for MPS tensors).

    Raises:
        ValueError: When ``name`` is missing (the message names the pair that needs it).
    """
    if name not in weights:
        raise ValueError(
            f"weights has no entry {name!r}, needed by pair {pair_name}; expected the names of "
            "model.named_parameters(). Frozen parameters are absent from snapshots: leave such pairs out."
        )
    tensor = weights[name]
    device = tensor.device if tensor.device.type != "mps" else torch.device("cpu")
    return tensor.detach().to(device=device, dtype=dtype or tensor.dtype)


@dataclass(frozen=True)
class LayerPair:
    """An incoming layer and the outgoing layer that reads its units.

    Unit ``k`` is output ``k`` of the incoming layer (row ``k`` of its weight and entry ``k`` of its bias; for a
    convolution, output channel ``k``; for a norm layer, its affine ``(gamma_k, beta_k)``). Its outgoing weights
    ``a_k`` are every weight of the outgoing layer that reads it:

    - outgoing ``Linear``: ``positions`` columns per unit. ``"block"`` layout (a convolution flattened channel-first):
      columns ``k * positions ... (k + 1) * positions - 1``; ``"stride"`` layout (a linear layer's last dimension
      flattened): columns ``k + units * j`` for ``j < positions``. With ``positions == 1`` both are column ``k``.
    - outgoing convolution with ``groups``: input channel ``k`` of every filter of its group.

    Attributes:
        in_name: Qualified name of the incoming module (as in ``model.named_modules()``).
        out_name: Qualified name of the outgoing module.
        in_kind: ``"linear"``, ``"conv"`` or ``"norm"`` (a norm layer's affine ``(gamma, beta)``, theory.md section 2).
        out_kind: ``"linear"`` or ``"conv"``.
        units: Number of hidden units (incoming layer outputs).
        has_bias: Whether the incoming layer has a bias (its ``b_k`` enter ``delta_k``).
        positions: Columns of an outgoing ``Linear`` per unit (1 for an outgoing convolution).
        layout: Column layout of an outgoing ``Linear`` (see above).
        groups: Groups of an outgoing convolution (1 for an outgoing ``Linear``).
        conserved: Whether ``delta_k`` is conserved under gradient flow for this pair.
        reason: Why it is not (empty when ``conserved``).
        matrix_conserved: Whether the whole matrix ``Delta`` is conserved (only linear, unit-mixing-equivariant
            ops such as identity, flatten or scaling by a constant lie between); with ReLU only its diagonal is.
        breaks: Why ``delta_k`` is not conserved, one cause per kind of op met (empty when conserved).
        in_magnitude: The parameter holding the per-unit magnitude ``g_k`` of a weight-normed incoming layer
            (``w_k = g_k v_k / |v_k|``); it then stands for ``w_k`` in ``delta_k = |a_k|^2 - g_k^2 - b_k^2``
            (:mod:`regimescope.conservation.parameters`). Empty for a layer whose weight is trained directly.
    """

    in_name: str
    out_name: str
    in_kind: LayerKind
    out_kind: LayerKind
    units: int
    has_bias: bool
    positions: int = 1
    layout: ColumnLayout = "stride"
    groups: int = 1
    conserved: bool = True
    reason: str = ""
    matrix_conserved: bool = False
    breaks: frozenset[Break] = frozenset()
    in_magnitude: str = ""

    @property
    def name(self) -> str:
        """Pair name ``"<in_name>-<out_name>"``, used in tags."""
        return f"{self.in_name}-{self.out_name}"

    @property
    def has_balance(self) -> bool:
        """Whether ``delta_k`` can be evaluated at all (``False`` when a parametrization computes a weight)."""
        return Break.PARAMETRIZED not in self.breaks

    @property
    def in_weight(self) -> str:
        """Parameter name of the incoming weight (the magnitude ``g`` of a weight-normed layer)."""
        return self.in_magnitude or f"{self.in_name}.weight"

    @property
    def in_bias(self) -> str | None:
        """Parameter name of the incoming bias, or ``None`` when the layer has none."""
        return f"{self.in_name}.bias" if self.has_bias else None

    @property
    def out_weight(self) -> str:
        """Parameter name of the outgoing weight (output biases belong to no ``delta_k``)."""
        return f"{self.out_name}.weight"

    @property
    def out_bias(self) -> None:
        """Always ``None``: the outgoing layer's bias belongs to no ``delta_k``."""
        return None

    @property
    def parameter_names(self) -> tuple[str, ...]:
        """Every parameter the pair's quantities read."""
        names = [self.in_weight, self.out_weight]
        if self.in_bias is not None:
            names.insert(1, self.in_bias)
        return tuple(names)

    @property
    def matrix_blocks(self) -> int | None:
        """Diagonal blocks of the matrix form: 1 for a Linear-Linear pair with one column per unit whose incoming
        weight is trained directly, else ``None``."""
        if self.in_kind == "linear" and self.out_kind == "linear" and self.positions == 1 and not self.in_magnitude:
            return 1
        return None

    def unit_rows(self, weights: Mapping[str, torch.Tensor], dtype: torch.dtype | None = torch.float64) -> Rows:
        """Each unit's parameters as rows by role (see :data:`Rows`), in ``dtype`` (``None``: the weights' own).

        Raises:
            ValueError: When a parameter is missing or its shape does not match the pair.
        """
        w_in = read_weight(self.name, weights, self.in_weight, dtype)
        if w_in.shape[0] != self.units:
            raise ValueError(
                f"Incoming weight {self.in_weight} has {w_in.shape[0]} rows; expected {self.units} units. Pass the "
                "weights of the model the pair was found on."
            )
        rows = {
            "out_weight": outgoing_weights(self, read_weight(self.name, weights, self.out_weight, dtype)),
            "in_weight": w_in.reshape(self.units, -1),
        }
        if self.in_bias is not None:
            rows["in_bias"] = read_weight(self.name, weights, self.in_bias, dtype).reshape(self.units, 1)
        return rows


def _weight_shape(module: nn.Module) -> torch.Size | None:
    """``module.weight``'s shape (``None`` without a tensor weight), read without running a parametrization on
    ``module`` (``spectral_norm`` updates its power-iteration buffers whenever the weight is computed in train mode):
    a computed weight is evaluated on a :func:`~regimescope.guards.shadow_copy`."""
    if parametrize.is_parametrized(module, "weight"):
        with torch.no_grad():
            return shadow_copy(module).weight.shape
    weight = getattr(module, "weight", None)
    return weight.shape if isinstance(weight, torch.Tensor) else None


def affine_norm(module: nn.Module) -> bool:
    """Whether ``module`` is a norm layer with a per-unit affine weight ``gamma`` (one entry per unit)."""
    if not isinstance(module, NORM_TYPES):
        return False
    shape = _weight_shape(module)
    return shape is not None and len(shape) == 1


def _layer(model: nn.Module, name: str, role: str) -> nn.Module:
    norms = role == "incoming"
    accepted = "Linear/Conv or affine norm" if norms else "Linear/Conv"
    try:
        module = model.get_submodule(name)
    except AttributeError as exc:
        candidates = [n for n, m in model.named_modules() if isinstance(m, LAYER_TYPES)]
        raise ValueError(
            f"The {role} layer {name!r} is not a submodule of the model; expected one of {candidates} "
            "(names as in model.named_modules())."
        ) from exc
    if not isinstance(module, LAYER_TYPES) and not (norms and affine_norm(module)):
        alternative = " or a norm layer with a per-unit affine" if norms else ""
        raise ValueError(
            f"The {role} layer {name!r} is a {type(module).__name__}; expected one of "
            f"{[t.__name__ for t in LAYER_TYPES]}{alternative}. Pair the {accepted} layers on either side of the "
            "hidden units."
        )
    return module


def _kind(module: nn.Module) -> LayerKind:
    if isinstance(module, nn.Linear):
        return "linear"
    return "norm" if isinstance(module, NORM_TYPES) else "conv"


def _parameter_checks(model: nn.Module, pair: LayerPair, layer_in: nn.Module, layer_out: nn.Module) -> LayerPair:
    """``pair`` with its incoming weight resolved (weight norm) and the causes its parameters add: a
    parametrization computing a weight (no balance), frozen or tied parameters (not conserved)."""
    index = ParameterIndex.of(model)
    in_weight, computed = incoming_weight(layer_in, pair.in_name, pair.units, index)
    if in_weight is not None and in_weight != f"{pair.in_name}.weight":
        pair = dataclasses.replace(pair, in_magnitude=in_weight, matrix_conserved=False)
    if pair.has_bias:
        computed = computed or computed_reason(layer_in, f"{pair.in_name}.bias", "bias", "incoming")
    computed = computed or computed_reason(layer_out, pair.out_weight, "weight", "outgoing")
    reasons = [pair.reason] if pair.reason else []
    causes = set(pair.breaks)
    if computed:
        reasons.append(computed)
        causes.add(Break.PARAMETRIZED)
    else:
        found, frozen, tied = symmetry_reasons(index, pair.parameter_names, "the rescaling symmetry")
        reasons += found
        causes |= {Break.FROZEN} if frozen else set()
        causes |= {Break.SHARED} if tied else set()
    if causes == set(pair.breaks):
        return pair
    return dataclasses.replace(
        pair, conserved=False, reason="; ".join(reasons), matrix_conserved=False, breaks=frozenset(causes)
    )


def layer_pair(
    model: nn.Module,
    in_name: str,
    out_name: str,
    *,
    conserved: bool = True,
    reason: str = "",
    matrix_conserved: bool = False,
    breaks: frozenset[Break] = frozenset(),
) -> LayerPair:
    """Build the pair of two layers, inferring the unit layout from their shapes.

    Use it to name pairs by hand (``pairs=``) when a model cannot be traced. An outgoing ``Linear`` reading ``P``
    columns per unit is taken to read a flattened tensor: a convolution's (or a channel norm's) channels in
    ``"block"`` layout (``x.flatten(1)`` of ``(n, C, *spatial)``), a linear layer's (or a LayerNorm's) units in
    ``"stride"`` layout. The incoming layer may be a norm layer with a per-unit affine (BatchNorm, LayerNorm,
    GroupNorm, ...): its ``(gamma_k, beta_k)`` with the outgoing weights form the conserved pair when the norm sits
    between a linear map and a homogeneous activation (theory.md section 2).

    Parameters with ``requires_grad=False`` make the pair non-conserved: a frozen layer cannot take part in the
    rescaling symmetry, and snapshots (which hold trainable parameters only) do not carry its weights. So does a
    Parameter tied between modules (:attr:`Break.SHARED`). A weight computed by a parametrization has no per-unit
    rescaling (:attr:`Break.PARAMETRIZED`, :attr:`LayerPair.has_balance` is ``False``), except an incoming layer
    weight-normed per unit, whose magnitude ``g_k`` takes the place of ``w_k`` (:attr:`LayerPair.in_magnitude`).
    Only metadata and shapes are read: no parametrization runs on ``model``.

    Args:
        model: The model holding both layers.
        in_name: Qualified name of the incoming ``Linear``/``Conv`` module.
        out_name: Qualified name of the outgoing ``Linear``/``Conv`` module.
        conserved: Whether only positively homogeneous ops lie between (``delta_k`` is conserved).
        reason: Why the pair is not conserved (required when ``conserved`` is ``False``).
        matrix_conserved: Whether only linear ops lie between (the matrix ``Delta`` is conserved).
        breaks: The causes behind ``reason`` (see :class:`Break`).

    Returns:
        The pair, with ``conserved=False`` and the reason extended when a parameter is frozen, tied or computed.

    Raises:
        ValueError: When a name is not a ``Linear``/``Conv`` submodule, or the shapes do not connect.
    """
    if not conserved and not reason:
        raise ValueError(
            f"Pair {in_name}-{out_name} is marked not conserved but received no reason; pass reason='...' "
            "saying what lies between the layers."
        )
    layer_in, layer_out = _layer(model, in_name, "incoming"), _layer(model, out_name, "outgoing")
    units = _weight_shape(layer_in)[0]
    if isinstance(layer_out, nn.Linear):
        if layer_out.in_features % units:
            raise ValueError(
                f"{out_name} reads {layer_out.in_features} features, not a multiple of the {units} units of "
                f"{in_name}; expected in_features = units * positions. Check that {out_name} reads {in_name}."
            )
        positions, groups = layer_out.in_features // units, 1
    else:
        if layer_out.in_channels != units:
            raise ValueError(
                f"{out_name} reads {layer_out.in_channels} channels but {in_name} has {units} output units; "
                f"expected them equal. Check that {out_name} reads {in_name}."
            )
        positions, groups = 1, layer_out.groups
    pair = LayerPair(
        in_name=in_name,
        out_name=out_name,
        in_kind=_kind(layer_in),
        out_kind=_kind(layer_out),
        units=units,
        has_bias=holds_tensor(layer_in, "bias"),
        positions=positions,
        layout="stride" if isinstance(layer_in, (nn.Linear, *LAST_AXIS_NORMS)) else "block",
        groups=groups,
        conserved=conserved,
        reason=reason,
        matrix_conserved=matrix_conserved and _kind(layer_in) != "norm",
        breaks=frozenset(breaks),
    )
    return _parameter_checks(model, pair, layer_in, layer_out)


def outgoing_weights(pair: LayerPair, weight: torch.Tensor) -> torch.Tensor:
    """Row ``k`` holds every outgoing weight ``a_k`` of unit ``k``.

    Args:
        pair: The layer pair.
        weight: The outgoing layer's weight, ``(out, units * positions)`` or ``(out, units / groups, *kernel)``.

    Returns:
        A ``(units, m)`` tensor.

    Raises:
        ValueError: When the weight's shape does not match the pair.
    """
    units = pair.units
    if pair.out_kind == "linear":
        if weight.dim() != 2 or weight.shape[1] != units * pair.positions:
            raise ValueError(
                f"Outgoing weight {pair.out_weight} has shape {tuple(weight.shape)}; expected (out, "
                f"{units * pair.positions}) for {units} units x {pair.positions} positions. Pass the weights of "
                "the model the pair was found on."
            )
        outs = weight.shape[0]
        if pair.layout == "block":
            return weight.reshape(outs, units, pair.positions).permute(1, 0, 2).reshape(units, -1)
        return weight.reshape(outs, pair.positions, units).permute(2, 0, 1).reshape(units, -1)
    groups = pair.groups
    if weight.dim() < 3 or weight.shape[1] * groups != units or weight.shape[0] % groups:
        raise ValueError(
            f"Outgoing weight {pair.out_weight} has shape {tuple(weight.shape)}; expected (out, {units // groups}, "
            f"*kernel) for {units} input channels in {groups} groups. Pass the weights of the model the pair was "
            "found on."
        )
    per_group_in = units // groups
    per_group_out = weight.shape[0] // groups
    grouped = weight.reshape(groups, per_group_out, per_group_in, -1)
    return grouped.permute(0, 2, 1, 3).reshape(units, -1)
