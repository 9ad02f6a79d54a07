"""Numpy twin of the fitting-net kernel (``src_c/dpc_fitting.c``): per-atom energies and dE/dD.

Same name and outputs as :func:`dpcompress._ext.fitting_net.fitting_forward_backward` (which
takes the packed nets; this takes the model).  The exact evaluator's numpy fitting is that twin,
so it is the one function, kept where the evaluator lives.
"""

from ..evaluators.exact.fitting import fitting_forward_backward

__all__ = ["fitting_forward_backward"]
