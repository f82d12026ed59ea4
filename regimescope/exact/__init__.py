"""Exact gradient-flow solutions of solvable models: the oracles the monitor's measurements are checked against.

- :class:`MinimalModelSolution`: ``f(x) = a w^T x`` (Kunin et al. 2024, theory.md section 4).
- :class:`LambdaBalancedSolution`, :func:`lambda_balanced_init`: lambda-balanced two-layer linear networks (Dominé et
  al. 2025, theory.md section 4).

Nothing in the runtime monitor or forecast imports this package: tests, examples and benchmarks integrate these
solutions and compare the measured NTK, kernel distance and function with them along the whole run.
"""

from regimescope.exact.lambda_balanced import LambdaBalancedSolution, LambdaBalancedState, lambda_balanced_init
from regimescope.exact.minimal_model import MinimalModelSolution, MinimalModelState

__all__ = [
    "LambdaBalancedSolution",
    "LambdaBalancedState",
    "MinimalModelSolution",
    "MinimalModelState",
    "lambda_balanced_init",
]
