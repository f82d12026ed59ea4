"""Layer-balance conserved quantities: which layer pairs have them, and their values (theory.md section 2)."""

from regimescope.conservation.conserved import LayerBalance, conserved_quantities
from regimescope.conservation.discovery import find_layer_pairs
from regimescope.conservation.learning_rates import (
    LearningRates,
    PairRates,
    learning_rates_from_optimizer,
    pair_rates,
    resolve_learning_rates,
)
from regimescope.conservation.pairs import LayerPair, layer_pair, outgoing_weights
from regimescope.conservation.quantities import (
    UnitSquares,
    balance_drift,
    balance_matrix,
    unit_balances,
    unit_deltas,
    unit_scales,
    unit_squares,
)

__all__ = [
    "LayerBalance",
    "LayerPair",
    "LearningRates",
    "PairRates",
    "UnitSquares",
    "balance_drift",
    "balance_matrix",
    "conserved_quantities",
    "find_layer_pairs",
    "layer_pair",
    "learning_rates_from_optimizer",
    "outgoing_weights",
    "pair_rates",
    "resolve_learning_rates",
    "unit_balances",
    "unit_deltas",
    "unit_scales",
    "unit_squares",
]
