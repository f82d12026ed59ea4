"""Find the layer pairs of a model by tracing it with ``torch.fx``.

Each ``Linear``/``Conv`` module's output is followed forward through the traced graph until it reaches the next
``Linear``/``Conv`` module; every such path gives a pair. Functional calls (``F.relu``, ``torch.tanh``,
``x.flatten(1)``) are seen because the graph records them. Whether ``delta_k`` is conserved depends on the ops met on
the way (see :mod:`regimescope.conservation.ops`); a path through an op whose unit mapping is unknown (``matmul``,
``cat``, ``permute``, an attention module), or through a second residual addition, ends there and yields no pair
(logged at DEBUG).
"""

from __future__ import annotations

import dataclasses
import logging
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

from torch import fx, nn

from regimescope.conservation.ops import CAUSES, NOT_HOMOGENEOUS, OpInfo, OpKind, classify
from regimescope.conservation.pairs import LAST_AXIS_NORMS, LAYER_TYPES, Break, LayerPair, affine_norm, layer_pair
from regimescope.conservation.transformer_layers import TRANSFORMER_LAYERS, activation_label
from regimescope.guards import shadow_copy

logger = logging.getLogger(__name__)

_FAN_OUT = "splits each unit's outgoing weights over several consumers: this pair's delta_k alone is not conserved"
_BREAK_OF = {**CAUSES, _FAN_OUT: Break.FAN_OUT}


@dataclass(frozen=True)
class _Path:
    """Where the units sit in the tensor flowing along a path, and what the path has met so far.

    ``axis``: ``"last"`` (units are the last dimension), ``"channel"`` (dimension 1, followed by ``spatial`` spatial
    dimensions) or ``"flat"`` (flattened into blocks/strides of the last dimension). ``residual``: whether the path
    crossed a residual addition already; it crosses at most one, so that a skip chain pairs each layer with the
    layers of the next block only, not with every later layer.
    """

    axis: Literal["last", "channel", "flat"]
    spatial: int
    breaks: tuple[tuple[str, str], ...] = ()
    linear: bool = True
    residual: bool = False

    def through(self, info: OpInfo) -> _Path | None:
        """The path after ``info``, or ``None`` when the unit mapping is lost."""
        if info.kind is OpKind.HOMOGENEOUS:
            return dataclasses.replace(self, linear=self.linear and info.linear)
        if info.kind is OpKind.RESIDUAL and self.residual:
            return None
        if info.kind in (OpKind.BREAKS, OpKind.RESIDUAL):
            breaks = (*self.breaks, (info.label, info.explanation))
            residual = self.residual or info.kind is OpKind.RESIDUAL
            return dataclasses.replace(self, breaks=breaks, linear=False, residual=residual)
        if info.kind is OpKind.RESHAPE:
            return dataclasses.replace(self, axis="flat", linear=self.linear and info.linear)
        if self.axis != "channel":
            return None
        if info.kind is OpKind.POOL:
            return dataclasses.replace(self, linear=self.linear and info.linear)
        if info.kind is OpKind.REDUCE:
            ndim = 2 + self.spatial
            dims = {d % ndim for d in info.dims if -ndim <= d < ndim}
            if len(dims) != len(info.dims) or min(dims) < 2:
                return None
            spatial = self.spatial if info.keepdim else self.spatial - len(dims)
            axis = "channel" if spatial > 0 else "last"
            return dataclasses.replace(self, axis=axis, spatial=spatial, linear=self.linear and info.linear)
        return None


def _trace(model: nn.Module) -> fx.GraphModule:
    """Trace a :func:`~regimescope.guards.shadow_copy` of ``model``: tracing runs its Python ``forward``, whose side
    effects on buffers and attributes (a running mean, a call counter) then land on the copy, never on the model."""
    try:
        return fx.symbolic_trace(shadow_copy(model))
    except Exception as exc:  # fx raises many types; all mean "not traceable"
        raise ValueError(
            f"Could not trace {type(model).__name__} with torch.fx to find its layer pairs ({type(exc).__name__}: "
            f"{exc}). Name the pairs yourself: build them with regimescope.conservation.layer_pair(model, "
            "'fc1', 'fc2') and pass pairs=[...] to conserved_quantities or BalanceIndicator."
        ) from exc


def _unwrap(model: nn.Module) -> tuple[nn.Module, str]:
    """The module to trace and the prefix its names carry in the wrapped model (DDP, DataParallel, compile)."""
    if isinstance(model, (nn.parallel.DistributedDataParallel, nn.DataParallel)):
        inner, prefix = _unwrap(model.module)
        return inner, f"module.{prefix}"
    if type(model).__name__ == "OptimizedModule" and isinstance(getattr(model, "_orig_mod", None), nn.Module):
        inner, prefix = _unwrap(model._orig_mod)
        return inner, f"_orig_mod.{prefix}"
    return model, ""


def _consumers(node: fx.Node, modules: dict[str, nn.Module]) -> list[fx.Node]:
    return [user for user in node.users if classify(user, node, modules).kind is not OpKind.METADATA]


def _fan_out_label(node: fx.Node, consumers: list[fx.Node]) -> str:
    names = ", ".join("model output" if c.op == "output" else repr(c.name) for c in consumers)
    return f"the fan-out of {node.name!r} to {len(consumers)} consumers ({names})"


def _norm_start(module: nn.Module, path: _Path) -> _Path | None:
    """The path starting at a norm layer met on ``path``, when the norm's affine acts per unit on its units."""
    if not affine_norm(module):
        return None
    if isinstance(module, LAST_AXIS_NORMS):
        return _Path(axis="last", spatial=0) if path.axis == "last" and len(module.normalized_shape) == 1 else None
    if path.axis == "channel" or (path.axis == "last" and path.spatial == 0):
        return _Path(axis=path.axis, spatial=path.spatial)
    return None


def _follow(
    node: fx.Node, path: _Path, modules: dict[str, nn.Module], norms: dict[fx.Node, _Path]
) -> Iterator[tuple[fx.Node, _Path]]:
    """Yield every layer node reached from ``node`` with the path state on arrival.

    Norm layers met on the way, whose affine acts on the path's units, are added to ``norms`` with the path
    they start (their ``(gamma, beta)`` pair with the layers after them).
    """
    consumers = _consumers(node, modules)
    if len(consumers) > 1:
        path = dataclasses.replace(path, breaks=(*path.breaks, (_fan_out_label(node, consumers), _FAN_OUT)))
    for user in consumers:
        info = classify(user, node, modules)
        if info.kind is OpKind.LAYER:
            yield user, path
            continue
        if user.op == "call_module" and info.kind is OpKind.BREAKS:
            start = _norm_start(modules[str(user.target)], path)
            if start is not None:
                norms.setdefault(user, start)
        after = path.through(info)
        if after is None:
            if user.op != "output":
                logger.debug("Path from %r ends at %s: unit mapping unknown, no pair.", node.name, info.label)
            continue
        yield from _follow(user, after, modules, norms)


def _reads_units(path: _Path, layer_in: nn.Module, layer_out: nn.Module) -> bool:
    """Whether ``layer_out`` reads the units of ``layer_in`` in the layout the path arrives with."""
    units = layer_in.weight.shape[0]
    if isinstance(layer_out, nn.Linear):
        if path.axis == "last":
            return layer_out.in_features == units
        return path.axis == "flat" and layer_out.in_features % units == 0
    return path.axis == "channel" and path.spatial == layer_out.weight.dim() - 2 and layer_out.in_channels == units


def _start(layer: nn.Module) -> _Path:
    if isinstance(layer, nn.Linear):
        return _Path(axis="last", spatial=0)
    return _Path(axis="channel", spatial=layer.weight.dim() - 2)


def _reasons(in_name: str, out_name: str, breaks: tuple[tuple[str, str], ...], shared: list[str]) -> list[str]:
    reasons = [f"{label} between {in_name} and {out_name} {explanation}" for label, explanation in breaks]
    reasons += [
        f"{name} is called more than once (weight sharing): its units are not one hidden layer, so delta_k is "
        "not conserved"
        for name in shared
    ]
    return list(dict.fromkeys(reasons))


def _causes(breaks: tuple[tuple[str, str], ...], shared: list[str]) -> frozenset[Break]:
    causes = {_BREAK_OF[explanation] for _, explanation in breaks}
    return frozenset(causes | ({Break.SHARED} if shared else set()))


@dataclass
class _Found:
    """What the paths between one (incoming, outgoing) pair of layers met, merged."""

    reasons: list[str]
    causes: frozenset[Break]
    linear: bool


def find_layer_pairs(model: nn.Module) -> list[LayerPair]:
    """Find every (incoming, outgoing) ``Linear``/``Conv`` pair joined through hidden units.

    Conserved pairs have only positively 1-homogeneous, unit-preserving ops between them: ReLU, LeakyReLU, PReLU,
    identity, ``abs``, max/average pooling, dropout, scaling by a constant, flatten/reshape/view, and spatial
    ``mean``/``sum``/``amax`` after a convolution. A deep MLP gives one pair per hidden layer, a CNN one per
    convolution read by the next, a residual block ``x + fc2(relu(fc1(x)))`` the pair ``fc1-fc2`` of its inner units.
    A convolution read by a ``Linear`` through a flatten pairs channel ``c`` with the columns reading that channel's
    positions.

    A norm layer with a per-unit affine (BatchNorm, GroupNorm, InstanceNorm after a layer; LayerNorm or RMSNorm
    anywhere on the last dimension) makes the layer before it scale-invariant; its ``(gamma_k, beta_k)`` are then
    the incoming side of a pair with the layer reading its units (theory.md section 2).

    Pairs with anything else between (tanh, GELU, SiLU, sigmoid, softmax, BatchNorm/LayerNorm, residual
    additions, a unit feeding two consumers, a module called twice) are reported with ``conserved=False``, a
    reason naming the op and its :class:`~regimescope.conservation.pairs.Break` causes. Pairs reading a parameter
    with ``requires_grad=False`` are reported with ``conserved=False`` (see
    :func:`~regimescope.conservation.pairs.layer_pair`). Wrapped models (DDP, ``DataParallel``, ``torch.compile``)
    are traced through; names keep the wrapper's prefix so that they match ``model.named_parameters()``. Tensors
    are assumed batch-first. ``nn.TransformerEncoderLayer``/``DecoderLayer`` (fx leaves) give their feed-forward
    pair ``linear1-linear2``. Attention heads are found by
    :func:`~regimescope.conservation.attention.find_attention_pairs`.

    Args:
        model: The model (a copy of it is traced, sharing its parameters; it is left unchanged).

    Returns:
        The pairs in graph order, each once (several paths between the same two layers merge their reasons).

    Raises:
        ValueError: When the model cannot be traced by ``torch.fx`` (the message says how to name pairs by hand).
    """
    inner, prefix = _unwrap(model)
    graph_module = _trace(inner)
    modules = dict(graph_module.named_modules())
    module_nodes = [node for node in graph_module.graph.nodes if node.op == "call_module"]
    last = _Path(axis="last", spatial=0)
    layers = [node for node in module_nodes if isinstance(modules[str(node.target)], LAYER_TYPES)]
    starts = {node: _start(modules[str(node.target)]) for node in layers}
    norms = {  # LayerNorm/RMSNorm start pairs wherever they are; channel norms only when met after a layer
        node: last
        for node in module_nodes
        if isinstance(modules[str(node.target)], LAST_AXIS_NORMS) and _norm_start(modules[str(node.target)], last)
    }
    calls = Counter(str(node.target) for node in module_nodes)
    found: dict[tuple[str, str], _Found] = {}
    pending = list(starts.items())
    seen: set[fx.Node] = set()
    while pending:
        node, start = pending.pop(0)
        seen.add(node)
        in_target = str(node.target)
        for end, path in _follow(node, start, modules, norms):
            out_target = str(end.target)
            if not _reads_units(path, modules[in_target], modules[out_target]):
                logger.debug("%s does not read the units of %s in a known layout; no pair.", out_target, in_target)
                continue
            shared = [t for t in (in_target, out_target) if calls[t] > 1]
            reasons = _reasons(prefix + in_target, prefix + out_target, path.breaks, shared)
            known = found.get((in_target, out_target), _Found([], frozenset(), True))
            found[(in_target, out_target)] = _Found(
                list(dict.fromkeys(known.reasons + reasons)),
                known.causes | _causes(path.breaks, shared),
                known.linear and path.linear,
            )
        if not pending:
            pending = [(n, p) for n, p in norms.items() if n not in seen]
    order = {node.target: index for index, node in enumerate(module_nodes)}
    for node in module_nodes:  # torch's transformer layers are fx leaves: their feed-forward pair, by name
        layer = modules[str(node.target)]
        if isinstance(layer, TRANSFORMER_LAYERS):
            first, second = f"{node.target}.linear1", f"{node.target}.linear2"
            label = activation_label(layer)
            breaks = () if label is None else ((label, NOT_HOMOGENEOUS),)
            shared = [str(node.target)] if calls[str(node.target)] > 1 else []
            reasons = _reasons(prefix + first, prefix + second, breaks, shared)
            found[(first, second)] = _Found(reasons, _causes(breaks, shared), False)
            order[first] = order[node.target]
    pairs = []
    for (in_target, out_target), merged in sorted(found.items(), key=lambda item: order[item[0][0]]):
        pairs.append(
            layer_pair(
                model,
                prefix + in_target,
                prefix + out_target,
                conserved=not merged.reasons,
                reason="; ".join(merged.reasons),
                matrix_conserved=not merged.reasons and merged.linear,
                breaks=merged.causes,
            )
        )
    return pairs
