"""What an op between two layers does to the per-unit rescaling symmetry behind ``delta_k``.

``delta_k`` is conserved when the loss is unchanged by ``(w_k, b_k, a_k) -> (c w_k, c b_k, a_k / c)`` for every
``c > 0``: every op between the layers must map unit ``k`` to unit ``k`` (or to its own block of positions) and be
positively 1-homogeneous, ``op(c z) = c op(z)``. This module sorts traced ``torch.fx`` nodes accordingly.
"""

from __future__ import annotations

import builtins
import enum
import operator
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import fx, nn

from regimescope.conservation.pairs import LAYER_TYPES, Break


class OpKind(enum.Enum):
    """How a node treats the hidden units flowing through it."""

    LAYER = "layer"
    """A ``Linear``/``Conv`` module reading the units: the end of a path."""
    HOMOGENEOUS = "homogeneous"
    """Unit-wise and positively 1-homogeneous (ReLU, leaky ReLU, |.|, dropout, scaling): keeps conservation."""
    POOL = "pool"
    """Pooling over the spatial dimensions of each channel: keeps conservation for convolution channels."""
    REDUCE = "reduce"
    """``mean``/``sum``/``amax`` over dimensions: keeps conservation when only spatial dimensions are reduced."""
    RESHAPE = "reshape"
    """Flatten/view/reshape/squeeze: keeps conservation, units become blocks of columns."""
    BREAKS = "breaks"
    """Keeps the unit mapping but breaks the symmetry (tanh, GELU, norms, gating)."""
    RESIDUAL = "residual"
    """Adds a second tensor (skip connection): breaks the symmetry; a path crosses at most one."""
    METADATA = "metadata"
    """Reads only the tensor's shape (``x.size(0)``, ``x.shape``): not a consumer."""
    UNKNOWN = "unknown"
    """Unit mapping unknown (matmul, cat, permute, other modules): the path ends without a pair."""


@dataclass(frozen=True)
class OpInfo:
    """The classification of one node.

    Attributes:
        kind: What the node does to the units.
        label: Human-readable op, e.g. ``"GELU ('act')"`` or ``"torch.tanh"``.
        explanation: For :attr:`OpKind.BREAKS` and :attr:`OpKind.RESIDUAL`, why conservation is lost (completes
            "<label> between A and B ...").
        linear: Whether the op is linear and commutes with mixing units (identity, flatten, scaling by a number,
            average pooling), so that the whole matrix ``Delta`` stays conserved.
        dims: For :attr:`OpKind.REDUCE`, the reduced dimensions (possibly negative).
        keepdim: For :attr:`OpKind.REDUCE`, whether reduced dimensions are kept.
    """

    kind: OpKind
    label: str
    explanation: str = ""
    linear: bool = False
    dims: tuple[int, ...] = ()
    keepdim: bool = False

    @property
    def cause(self) -> Break | None:
        """Why the op breaks conservation (``None`` when it does not)."""
        return CAUSES.get(self.explanation)


NOT_HOMOGENEOUS = "is not positively homogeneous: delta_k has no conservation meaning"
"""Why a non-homogeneous op (tanh, GELU, ...) breaks a pair."""
_MIXES_UNITS = "normalises across units: delta_k has no conservation meaning"
_NORM = (
    "makes the incoming weights scale-invariant, so the unit's in/out balance is lost (the conserved pair is the "
    "norm's (gamma, beta) with the outgoing weights)"
)
_RESIDUAL = "mixes a second input into each unit (residual addition): delta_k is not conserved"
_CONSTANT_SHIFT = "shifts each unit by a constant, which breaks positive homogeneity: delta_k is not conserved"
_GATING = "multiplies or divides each unit by another tensor (gating/normalisation): delta_k is not conserved"
CAUSES = {
    NOT_HOMOGENEOUS: Break.NON_HOMOGENEOUS,
    _MIXES_UNITS: Break.MIXES_UNITS,
    _NORM: Break.NORMALISATION,
    _RESIDUAL: Break.RESIDUAL,
    _CONSTANT_SHIFT: Break.CONSTANT_SHIFT,
    _GATING: Break.GATING,
}
"""The cause behind each explanation an op can give."""

_HOMOGENEOUS_MODULES: tuple[type[nn.Module], ...] = (
    nn.ReLU,
    nn.LeakyReLU,
    nn.PReLU,
    nn.Dropout,
    nn.Dropout1d,
    nn.Dropout2d,
    nn.Dropout3d,
)
_MAX_POOL_MODULES: tuple[type[nn.Module], ...] = (
    nn.MaxPool1d,
    nn.MaxPool2d,
    nn.MaxPool3d,
    nn.AdaptiveMaxPool1d,
    nn.AdaptiveMaxPool2d,
    nn.AdaptiveMaxPool3d,
)
_AVG_POOL_MODULES: tuple[type[nn.Module], ...] = (
    nn.AvgPool1d,
    nn.AvgPool2d,
    nn.AvgPool3d,
    nn.AdaptiveAvgPool1d,
    nn.AdaptiveAvgPool2d,
    nn.AdaptiveAvgPool3d,
)
_NON_HOMOGENEOUS_MODULES: tuple[type[nn.Module], ...] = (
    nn.Tanh,
    nn.GELU,
    nn.SiLU,
    nn.Sigmoid,
    nn.ELU,
    nn.SELU,
    nn.CELU,
    nn.Softplus,
    nn.Mish,
    nn.Hardtanh,
    nn.Hardswish,
    nn.Hardsigmoid,
    nn.LogSigmoid,
    nn.Softsign,
    nn.Tanhshrink,
    nn.Softshrink,
    nn.Hardshrink,
    nn.Threshold,
    nn.AlphaDropout,
    nn.FeatureAlphaDropout,
)
_SOFTMAX_MODULES: tuple[type[nn.Module], ...] = (nn.Softmax, nn.LogSoftmax, nn.Softmin, nn.Softmax2d)
_NORM_MODULES: tuple[type[nn.Module], ...] = (
    nn.BatchNorm1d,
    nn.BatchNorm2d,
    nn.BatchNorm3d,
    nn.SyncBatchNorm,
    nn.LayerNorm,
    nn.GroupNorm,
    nn.InstanceNorm1d,
    nn.InstanceNorm2d,
    nn.InstanceNorm3d,
    nn.LocalResponseNorm,
    *(getattr(nn, name) for name in ("RMSNorm",) if hasattr(nn, name)),  # torch >= 2.4
)

_HOMOGENEOUS_FUNCTIONS: frozenset[Any] = frozenset(
    {
        F.relu,
        F.relu_,
        torch.relu,
        torch.relu_,
        F.leaky_relu,
        F.leaky_relu_,
        F.prelu,
        torch.prelu,
        torch.abs,
        torch.abs_,
        F.dropout,
        F.dropout1d,
        F.dropout2d,
        F.dropout3d,
        torch.dropout,
    }
)
_LINEAR_FUNCTIONS: frozenset[Any] = frozenset({operator.neg, torch.neg})
_MAX_POOL_FUNCTIONS: frozenset[Any] = frozenset(
    {
        F.max_pool1d,
        F.max_pool2d,
        F.max_pool3d,
        F.adaptive_max_pool1d,
        F.adaptive_max_pool2d,
        F.adaptive_max_pool3d,
    }
)
_AVG_POOL_FUNCTIONS: frozenset[Any] = frozenset(
    {F.avg_pool1d, F.avg_pool2d, F.avg_pool3d, F.adaptive_avg_pool1d, F.adaptive_avg_pool2d, F.adaptive_avg_pool3d}
)
_RESHAPE_FUNCTIONS: frozenset[Any] = frozenset({torch.flatten, torch.reshape, torch.squeeze})
_REDUCE_FUNCTIONS: dict[Any, bool] = {torch.mean: True, torch.sum: True, torch.amax: False}
_NON_HOMOGENEOUS_FUNCTIONS: frozenset[Any] = frozenset(
    {
        torch.tanh,
        F.tanh,
        torch.sigmoid,
        F.sigmoid,
        F.gelu,
        F.silu,
        F.elu,
        F.selu,
        F.celu,
        F.softplus,
        F.mish,
        F.hardtanh,
        F.relu6,
        F.hardswish,
        F.hardsigmoid,
        F.logsigmoid,
        F.softsign,
        F.alpha_dropout,
        F.feature_alpha_dropout,
        torch.exp,
        torch.square,
    }
)
_SOFTMAX_FUNCTIONS: frozenset[Any] = frozenset({F.softmax, torch.softmax, F.log_softmax, torch.log_softmax})
_NORM_FUNCTIONS: frozenset[Any] = frozenset(
    {F.batch_norm, F.layer_norm, F.group_norm, F.instance_norm, F.normalize}
    | {getattr(F, name) for name in ("rms_norm",) if hasattr(F, name)}  # torch >= 2.4
)
_ADD_FUNCTIONS: frozenset[Any] = frozenset(
    {operator.add, operator.iadd, operator.sub, operator.isub, torch.add, torch.sub}
)
_MUL_FUNCTIONS: frozenset[Any] = frozenset({operator.mul, operator.imul, torch.mul})
_DIV_FUNCTIONS: frozenset[Any] = frozenset({operator.truediv, operator.itruediv, torch.div})

_HOMOGENEOUS_METHODS = frozenset({"relu", "relu_", "abs", "abs_"})
_LINEAR_METHODS = frozenset({"contiguous", "clone", "neg"})
_RESHAPE_METHODS = frozenset({"flatten", "view", "reshape", "squeeze"})
_REDUCE_METHODS = {"mean": True, "sum": True, "amax": False}
_NON_HOMOGENEOUS_METHODS = frozenset({"tanh", "tanh_", "sigmoid", "sigmoid_", "exp", "exp_", "square"})
_SOFTMAX_METHODS = frozenset({"softmax", "log_softmax"})
_ADD_METHODS = frozenset({"add", "add_", "sub", "sub_"})
_MUL_METHODS = frozenset({"mul", "mul_"})
_DIV_METHODS = frozenset({"div", "div_"})
_METADATA_METHODS = frozenset({"size", "dim", "numel", "ndimension"})


def _data_arg(node: fx.Node) -> Any:
    if node.args:
        return node.args[0]
    return node.kwargs.get("input", node.kwargs.get("self"))


def _function_label(target: Any) -> str:
    module = getattr(target, "__module__", None) or ""
    name = getattr(target, "__name__", repr(target))
    if module.startswith("torch.nn.functional"):
        return f"F.{name}"
    if module == "_operator":
        return f"operator.{name}"
    return f"torch.{name}" if module.startswith("torch") or not module else f"{module}.{name}"


def _reduce_info(node: fx.Node, label: str, linear: bool) -> OpInfo:
    dims = node.args[1] if len(node.args) > 1 else node.kwargs.get("dim")
    keepdim = node.args[2] if len(node.args) > 2 else node.kwargs.get("keepdim", False)
    if isinstance(dims, int):
        dims = (dims,)
    if not isinstance(dims, (tuple, list)) or not all(isinstance(d, int) for d in dims) or not dims:
        return OpInfo(OpKind.UNKNOWN, label)
    return OpInfo(OpKind.REDUCE, label, linear=linear, dims=tuple(dims), keepdim=bool(keepdim))


def _arithmetic_info(node: fx.Node, source: fx.Node, label: str, family: str) -> OpInfo:
    operands = list(node.args[:2])
    if len(operands) < 2 or source not in operands:
        return OpInfo(OpKind.UNKNOWN, label)
    other = operands[1] if operands[0] is source else operands[0]
    if other is source:
        if family == "add":
            return OpInfo(OpKind.HOMOGENEOUS, label, linear=True)
        return OpInfo(OpKind.BREAKS, label, NOT_HOMOGENEOUS)
    constant_number = isinstance(other, (int, float)) and not isinstance(other, bool)
    constant_tensor = isinstance(other, fx.Node) and other.op == "get_attr"
    if family == "add":
        if constant_number or constant_tensor:
            return OpInfo(OpKind.BREAKS, label, _CONSTANT_SHIFT)
        return OpInfo(OpKind.RESIDUAL, label, _RESIDUAL)
    if family == "div" and operands[0] is not source:
        return OpInfo(OpKind.BREAKS, label, NOT_HOMOGENEOUS)
    if constant_number:
        return OpInfo(OpKind.HOMOGENEOUS, label, linear=True)
    if constant_tensor:
        return OpInfo(OpKind.HOMOGENEOUS, label)
    return OpInfo(OpKind.BREAKS, label, _GATING)


def _module_info(node: fx.Node, module: nn.Module) -> OpInfo:
    label = f"{type(module).__name__} ({node.target!r})"
    if isinstance(module, LAYER_TYPES):
        return OpInfo(OpKind.LAYER, label)
    if isinstance(module, nn.Identity):
        return OpInfo(OpKind.HOMOGENEOUS, label, linear=True)
    if isinstance(module, _HOMOGENEOUS_MODULES):
        return OpInfo(OpKind.HOMOGENEOUS, label)
    if isinstance(module, _MAX_POOL_MODULES):
        return OpInfo(OpKind.POOL, label)
    if isinstance(module, _AVG_POOL_MODULES):
        return OpInfo(OpKind.POOL, label, linear=True)
    if isinstance(module, nn.Flatten):
        return OpInfo(OpKind.RESHAPE, label, linear=True) if module.start_dim == 1 else OpInfo(OpKind.UNKNOWN, label)
    if isinstance(module, _NON_HOMOGENEOUS_MODULES):
        return OpInfo(OpKind.BREAKS, label, NOT_HOMOGENEOUS)
    if isinstance(module, _SOFTMAX_MODULES):
        return OpInfo(OpKind.BREAKS, label, _MIXES_UNITS)
    if isinstance(module, _NORM_MODULES):
        return OpInfo(OpKind.BREAKS, label, _NORM)
    return OpInfo(OpKind.UNKNOWN, label)


def _function_info(node: fx.Node, source: fx.Node) -> OpInfo:
    target = node.target
    label = _function_label(target)
    if target is builtins.getattr:
        return OpInfo(OpKind.METADATA, label)
    if target in _ADD_FUNCTIONS:
        return _arithmetic_info(node, source, label, "add")
    if target in _MUL_FUNCTIONS:
        return _arithmetic_info(node, source, label, "mul")
    if target in _DIV_FUNCTIONS:
        return _arithmetic_info(node, source, label, "div")
    if _data_arg(node) is not source:
        return OpInfo(OpKind.UNKNOWN, label)
    if target in _HOMOGENEOUS_FUNCTIONS:
        return OpInfo(OpKind.HOMOGENEOUS, label)
    if target in _LINEAR_FUNCTIONS:
        return OpInfo(OpKind.HOMOGENEOUS, label, linear=True)
    if target in _MAX_POOL_FUNCTIONS:
        return OpInfo(OpKind.POOL, label)
    if target in _AVG_POOL_FUNCTIONS:
        return OpInfo(OpKind.POOL, label, linear=True)
    if target in _RESHAPE_FUNCTIONS:
        return OpInfo(OpKind.RESHAPE, label, linear=True)
    if target in _REDUCE_FUNCTIONS:
        return _reduce_info(node, label, _REDUCE_FUNCTIONS[target])
    if target in _NON_HOMOGENEOUS_FUNCTIONS:
        return OpInfo(OpKind.BREAKS, label, NOT_HOMOGENEOUS)
    if target in _SOFTMAX_FUNCTIONS:
        return OpInfo(OpKind.BREAKS, label, _MIXES_UNITS)
    if target in _NORM_FUNCTIONS:
        return OpInfo(OpKind.BREAKS, label, _NORM)
    return OpInfo(OpKind.UNKNOWN, label)


def _method_info(node: fx.Node, source: fx.Node) -> OpInfo:
    name = str(node.target)
    label = f"Tensor.{name}"
    if name in _METADATA_METHODS:
        return OpInfo(OpKind.METADATA, label)
    if name in _ADD_METHODS:
        return _arithmetic_info(node, source, label, "add")
    if name in _MUL_METHODS:
        return _arithmetic_info(node, source, label, "mul")
    if name in _DIV_METHODS:
        return _arithmetic_info(node, source, label, "div")
    if _data_arg(node) is not source:
        return OpInfo(OpKind.UNKNOWN, label)
    if name in _HOMOGENEOUS_METHODS:
        return OpInfo(OpKind.HOMOGENEOUS, label)
    if name in _LINEAR_METHODS:
        return OpInfo(OpKind.HOMOGENEOUS, label, linear=True)
    if name in _RESHAPE_METHODS:
        return OpInfo(OpKind.RESHAPE, label, linear=True)
    if name in _REDUCE_METHODS:
        return _reduce_info(node, label, _REDUCE_METHODS[name])
    if name in _NON_HOMOGENEOUS_METHODS:
        return OpInfo(OpKind.BREAKS, label, NOT_HOMOGENEOUS)
    if name in _SOFTMAX_METHODS:
        return OpInfo(OpKind.BREAKS, label, _MIXES_UNITS)
    return OpInfo(OpKind.UNKNOWN, label)


def classify(node: fx.Node, source: fx.Node, modules: dict[str, nn.Module]) -> OpInfo:
    """Classify ``node``, a user of ``source``, by what it does to the units carried by ``source``.

    Args:
        node: A node that uses ``source``.
        source: The node carrying the hidden units.
        modules: ``qualified name -> module`` of the traced graph module.

    Returns:
        The node's :class:`OpInfo`. Ops that read ``source`` in a non-data position (e.g. as a size argument)
        are :attr:`OpKind.UNKNOWN`, except arithmetic, where either operand may carry the units.
    """
    if node.op == "call_module":
        module = modules[str(node.target)]
        if _data_arg(node) is not source:
            return OpInfo(OpKind.UNKNOWN, f"{type(module).__name__} ({node.target!r})")
        return _module_info(node, module)
    if node.op == "call_function":
        return _function_info(node, source)
    if node.op == "call_method":
        return _method_info(node, source)
    return OpInfo(OpKind.UNKNOWN, "the model output" if node.op == "output" else node.name)
