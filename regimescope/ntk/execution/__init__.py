"""Execution: carrying out a plan (:mod:`~regimescope.ntk.execution.execute`): collection passes and layer-rule
block kernels, generic ``torch.func`` Jacobian rows, sketches, and the assembly of kernel chunks."""
