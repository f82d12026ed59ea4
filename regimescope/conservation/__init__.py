"""Layer-balance conserved quantities: which pairs have them, their values, and why they drift (theory.md section 2)."""

from regimescope.conservation.attention import HeadPair, attention_pairs, find_attention_pairs
from regimescope.conservation.balance_pair import BalancePair
from regimescope.conservation.conserved import LayerBalance, conserved_quantities, find_pairs
from regimescope.conservation.diagnosis import (
    DriftCause,
    DriftDiagnoser,
    DriftDiagnosis,
    OptimizerFacts,
    diagnose_drift,
    diagnosis_markdown,
    optimizer_facts,
)
from regimescope.conservation.discovery import find_layer_pairs
from regimescope.conservation.learning_rates import (
    LearningRates,
    PairRates,
    learning_rates_from_optimizer,
    pair_rates,
    resolve_learning_rates,
)
from regimescope.conservation.pairs import Break, LayerPair, layer_pair, outgoing_weights
from regimescope.conservation.quantities import (
    PairSquares,
    UnitSquares,
    balance_drift,
    balance_matrix,
    mean_balance,
    unit_balances,
    unit_deltas,
    unit_scales,
    unit_squares,
)

__all__ = [
    "BalancePair",
    "Break",
    "DriftCause",
    "DriftDiagnoser",
    "DriftDiagnosis",
    "HeadPair",
    "LayerBalance",
    "LayerPair",
    "LearningRates",
    "OptimizerFacts",
    "PairRates",
    "PairSquares",
    "UnitSquares",
    "attention_pairs",
    "balance_drift",
    "balance_matrix",
    "conserved_quantities",
    "diagnose_drift",
    "diagnosis_markdown",
    "find_attention_pairs",
    "find_layer_pairs",
    "find_pairs",
    "layer_pair",
    "learning_rates_from_optimizer",
    "mean_balance",
    "optimizer_facts",
    "outgoing_weights",
    "pair_rates",
    "resolve_learning_rates",
    "unit_balances",
    "unit_deltas",
    "unit_scales",
    "unit_squares",
]
