"""Conserved quantities of attention heads (theory.md section 2, extended to ``softmax(Q K^T) V W_O``).

Per head ``h`` the scores ``x W_Q^h (x' W_K^h)^T`` are unchanged by ``W_Q^h -> G W_Q^h``, ``W_K^h -> G^{-T} W_K^h`` and
the head's output ``A V^h W_O^h`` by ``W_V^h -> G W_V^h``, ``W_O^h -> W_O^h G^{-1}`` for any invertible
``d_head x d_head`` matrix ``G`` (PyTorch's row convention: ``W_Q^h`` is the head's ``d_head`` rows of the query
projection, ``W_O^h`` its ``d_head`` columns of the output projection). By Noether's theorem gradient flow conserves,
per head, with equal rates (biases appended as columns of the rows they act on):

- query/key: ``W_Q^h W_Q^h^T - W_K^h W_K^h^T`` (theory.md: ``W_Q^T W_Q - W_K^T W_K`` in the ``x W`` convention);
- value/output: ``W_O^h^T W_O^h - W_V^h W_V^h^T`` (the negative of theory.md's ``W_V^T W_V - W_O W_O^T``, so that,
  as for layer pairs, the outgoing side counts positive).

Their diagonals give one ``delta_k`` per row ``k`` of the projections (``units`` = the embedding width); with
per-parameter rates every term is divided by its rate. :class:`HeadPair` exposes these as a
:class:`~regimescope.conservation.balance_pair.BalancePair`, so every function of
:mod:`regimescope.conservation.quantities` and the balance indicator handle them like layer pairs.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from regimescope.conservation.pairs import Break, Rows, read_weight
from regimescope.conservation.parameters import ParameterIndex, computed_reason, holds_tensor, symmetry_reasons

Span = tuple[int, int]
"""``(start, stop)`` rows of a packed parameter."""


@dataclass(frozen=True)
class HeadPair:
    """The query/key or value/output projections of the heads of one attention layer.

    Attributes:
        module: Qualified name of the attention layer (or of the module holding the projections).
        kind: ``"qk"`` (``delta_k = |q_k|^2 + b_{q,k}^2 - |k_k|^2 - b_{k,k}^2``) or ``"vo"``
            (``delta_k = |o_k|^2 - |v_k|^2 - b_{v,k}^2``, ``o_k`` column ``k`` of the output projection).
        heads: Number of heads; ``units`` is a multiple of it.
        units: Rows per projection (``heads * d_head``).
        in_weight: Parameter holding the incoming-side rows (keys for ``qk``, values for ``vo``).
        in_rows: Its rows ``(start, stop)``.
        in_bias: Parameter holding the incoming-side bias, or ``None``.
        in_bias_rows: Its entries ``(start, stop)``.
        out_weight: Parameter holding the outgoing side: the query rows (``qk``) or the output projection, whose
            columns are read (``vo``).
        out_rows: The query rows ``(start, stop)`` for ``qk``; ``None`` for ``vo`` (all columns).
        out_bias: The query bias parameter (``qk``), or ``None``.
        out_bias_rows: Its entries ``(start, stop)``.
        conserved: Whether ``delta_k`` is conserved.
        reason: Why not.
        matrix_conserved: Whether the per-head blocks of the matrix are conserved (as ``delta_k``).
        breaks: Causes behind ``reason``.
    """

    module: str
    kind: Literal["qk", "vo"]
    heads: int
    units: int
    in_weight: str
    in_rows: Span
    in_bias: str | None
    in_bias_rows: Span
    out_weight: str
    out_rows: Span | None
    out_bias: str | None = None
    out_bias_rows: Span = (0, 0)
    conserved: bool = True
    reason: str = ""
    matrix_conserved: bool = True
    breaks: frozenset[Break] = frozenset()

    @property
    def name(self) -> str:
        """Pair name ``"<module>.qk"`` or ``"<module>.vo"``, used in tags."""
        return f"{self.module}.{self.kind}" if self.module else self.kind

    @property
    def has_balance(self) -> bool:
        """Whether ``delta_k`` can be evaluated at all (``False`` when a parametrization computes a projection)."""
        return Break.PARAMETRIZED not in self.breaks

    @property
    def parameter_names(self) -> tuple[str, ...]:
        """Every parameter the pair's quantities read (a packed projection once)."""
        names = [self.in_weight, self.in_bias, self.out_weight, self.out_bias]
        return tuple(dict.fromkeys(name for name in names if name is not None))

    @property
    def matrix_blocks(self) -> int:
        """One diagonal block per head."""
        return self.heads

    def _rows(
        self, weights: Mapping[str, torch.Tensor], name: str, span: Span, columns: int, dtype: torch.dtype | None
    ) -> torch.Tensor:
        tensor = read_weight(self.name, weights, name, dtype)
        start, stop = span
        if tensor.dim() != (2 if columns else 1) or tensor.shape[0] < stop:
            raise ValueError(
                f"{name} has shape {tuple(tensor.shape)}; expected at least {stop} rows for {self.heads} heads of "
                f"the {self.kind} projections. Pass the weights of the model the pair was found on."
            )
        return tensor[start:stop].reshape(self.units, -1)

    def unit_rows(self, weights: Mapping[str, torch.Tensor], dtype: torch.dtype | None = torch.float64) -> Rows:
        """Each unit's rows by role: projection rows, bias entries, and (``vo``) output-projection columns, in
        ``dtype`` (``None``: the weights' own).

        Raises:
            ValueError: When a parameter is missing or too small for the heads.
        """
        rows = {"in_weight": self._rows(weights, self.in_weight, self.in_rows, 1, dtype)}
        if self.in_bias is not None:
            rows["in_bias"] = self._rows(weights, self.in_bias, self.in_bias_rows, 0, dtype)
        if self.out_rows is not None:
            rows["out_weight"] = self._rows(weights, self.out_weight, self.out_rows, 1, dtype)
        else:
            out = read_weight(self.name, weights, self.out_weight, dtype)
            if out.dim() != 2 or out.shape[1] != self.units:
                raise ValueError(
                    f"{self.out_weight} has shape {tuple(out.shape)}; expected (out, {self.units}) reading the "
                    f"{self.units} value rows. Pass the weights of the model the pair was found on."
                )
            rows["out_weight"] = out.T
        if self.out_bias is not None:
            rows["out_bias"] = self._rows(weights, self.out_bias, self.out_bias_rows, 0, dtype)
        return rows


def _checked(model: nn.Module, pair: HeadPair) -> HeadPair:
    """``pair`` marked not conserved when a parameter is computed (no balance), frozen or tied (see
    :mod:`regimescope.conservation.parameters`)."""
    index = ParameterIndex.of(model)
    computed = [name for name in pair.parameter_names if name not in index.parameters]
    if computed:
        owner, _, tensor = computed[0].rpartition(".")
        reason = computed_reason(model.get_submodule(owner), computed[0], tensor) or (
            f"{computed[0]} is not a parameter of the model, so the pair has no balance"
        )
        causes = {Break.PARAMETRIZED}
    else:
        reasons, frozen, tied = symmetry_reasons(index, pair.parameter_names, "the head rescaling")
        reason = "; ".join(reasons)
        causes = ({Break.FROZEN} if frozen else set()) | ({Break.SHARED} if tied else set())
    if not causes:
        return pair
    reason = f"{pair.reason}; {reason}" if pair.reason else reason
    return dataclasses.replace(
        pair, conserved=False, reason=reason, matrix_conserved=False, breaks=pair.breaks | causes
    )


def _multihead_pairs(model: nn.Module, name: str, module: nn.MultiheadAttention) -> list[HeadPair]:
    prefix = f"{name}." if name else ""
    e, heads = module.embed_dim, module.num_heads
    packed = holds_tensor(module, "in_proj_weight")
    weights = [f"{prefix}in_proj_weight"] * 3 if packed else [f"{prefix}{p}_proj_weight" for p in "qkv"]
    spans = [(0, e), (e, 2 * e), (2 * e, 3 * e)] if packed else [(0, e)] * 3
    bias = f"{prefix}in_proj_bias" if holds_tensor(module, "in_proj_bias") else None
    thirds = [(0, e), (e, 2 * e), (2 * e, 3 * e)]
    extra = holds_tensor(module, "bias_k")
    common = {
        "conserved": not extra,
        "reason": "add_bias_kv appends learnt key/value vectors that this delta_k leaves out" if extra else "",
        "matrix_conserved": not extra,
        "breaks": frozenset({Break.UNMODELLED}) if extra else frozenset(),
    }
    qk = HeadPair(
        module=name,
        kind="qk",
        heads=heads,
        units=e,
        in_weight=weights[1],
        in_rows=spans[1],
        in_bias=bias,
        in_bias_rows=thirds[1],
        out_weight=weights[0],
        out_rows=spans[0],
        out_bias=bias,
        out_bias_rows=thirds[0],
        **common,
    )
    vo = HeadPair(
        module=name,
        kind="vo",
        heads=heads,
        units=e,
        in_weight=weights[2],
        in_rows=spans[2],
        in_bias=bias,
        in_bias_rows=thirds[2],
        out_weight=f"{prefix}out_proj.weight",
        out_rows=None,
        **common,
    )
    return [_checked(model, qk), _checked(model, vo)]


def find_attention_pairs(model: nn.Module) -> list[HeadPair]:
    """The query/key and value/output pairs of every ``nn.MultiheadAttention`` in ``model`` (also inside
    ``nn.TransformerEncoderLayer`` and friends), in module order.

    Packed (``in_proj_weight``) and separate (``q_proj_weight``, ...) projections are handled; layers with
    ``add_bias_kv`` are reported with ``conserved=False``. For attention written with separate ``nn.Linear``
    projections, build the pairs with :func:`attention_pairs`.
    """
    pairs = []
    for name, module in model.named_modules():
        if isinstance(module, nn.MultiheadAttention):
            pairs.extend(_multihead_pairs(model, name, module))
    return pairs


def _linear(model: nn.Module, name: str, role: str) -> nn.Linear:
    try:
        module = model.get_submodule(name)
    except AttributeError as exc:
        raise ValueError(f"The {role} projection {name!r} is not a submodule of the model.") from exc
    if not isinstance(module, nn.Linear):
        raise ValueError(f"The {role} projection {name!r} is a {type(module).__name__}; expected an nn.Linear.")
    return module


def attention_pairs(model: nn.Module, *, q: str, k: str, v: str, o: str, heads: int, name: str = "") -> list[HeadPair]:
    """The query/key and value/output pairs of attention written with separate ``nn.Linear`` projections.

    The caller vouches that the heads use these projections as ``softmax(q(x) k(x')^T) v(x')``, head ``h`` reading
    rows ``h d_head ... (h + 1) d_head`` of each and ``o`` reading them back (no rotary or other per-position
    transform of ``q`` and ``k``, which would break the ``qk`` symmetry).

    Args:
        model: The model.
        q: Query projection module name.
        k: Key projection module name.
        v: Value projection module name.
        o: Output projection module name.
        heads: Number of heads.
        name: Pair name prefix (default: the common prefix of the projection names).

    Returns:
        ``[qk, vo]``.

    Raises:
        ValueError: For unknown or non-``Linear`` projections, or shapes that do not split into ``heads`` heads.
    """
    layers = {
        role: _linear(model, module, role) for role, module in (("query", q), ("key", k), ("value", v), ("output", o))
    }
    units = layers["query"].out_features
    if (
        units % heads
        or layers["key"].out_features != units
        or layers["value"].out_features != units
        or layers["output"].in_features != units
    ):
        raise ValueError(
            f"Projections q/k/v give {layers['query'].out_features}/{layers['key'].out_features}/"
            f"{layers['value'].out_features} features and o reads {layers['output'].in_features}; expected equal "
            f"widths divisible by heads = {heads}."
        )
    if not name:
        parts = [p.split(".") for p in (q, k, v, o)]
        common = [segment for segment, *rest in zip(*parts) if all(r == segment for r in rest)]
        name = ".".join(common)

    def bias(module_name: str, role: str) -> str | None:
        return f"{module_name}.bias" if holds_tensor(layers[role], "bias") else None

    full = (0, units)
    qk = HeadPair(
        module=name,
        kind="qk",
        heads=heads,
        units=units,
        in_weight=f"{k}.weight",
        in_rows=full,
        in_bias=bias(k, "key"),
        in_bias_rows=full,
        out_weight=f"{q}.weight",
        out_rows=full,
        out_bias=bias(q, "query"),
        out_bias_rows=full,
    )
    vo = HeadPair(
        module=name,
        kind="vo",
        heads=heads,
        units=units,
        in_weight=f"{v}.weight",
        in_rows=full,
        in_bias=bias(v, "value"),
        in_bias_rows=full,
        out_weight=f"{o}.weight",
        out_rows=None,
    )
    return [_checked(model, qk), _checked(model, vo)]
