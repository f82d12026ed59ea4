"""Layer rules: exact per-sample gradients of one layer type from one forward and the output backward passes.

:mod:`~regimescope.ntk.rules.base` holds the contract, one module per layer family implements it, and
:mod:`~regimescope.ntk.rules.registry` (on top) picks the rule of a module.
"""
