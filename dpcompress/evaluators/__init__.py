"""Evaluators: each computes frames of one model behind one interface (:mod:`.base`).

* :class:`~.runtime.RuntimeEvaluator` — compressed DP and NEP models, the C model runtime;
* :class:`~.decomposed.DecomposedEvaluator` — the runtime over MPI ranks (spatial domains);
* :class:`~.exact.ExactEvaluator` — uncompressed DeePMD-kit models, readable numpy;
* :class:`~.gpu.GpuEvaluator` — compressed models on a CUDA GPU.
"""

from .base import Evaluator, FrameResult, Overflow

__all__ = ["Evaluator", "FrameResult", "Overflow"]
