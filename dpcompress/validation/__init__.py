"""``dpcompress test``: a model's errors against labelled data, computed and weighted as DeePMD-kit's
``dp test`` does (:mod:`.metrics`), its detail files (:mod:`.detail`), the batched and MPI-parallel
evaluation (:mod:`.runner`), parity plots (:mod:`.plots`) and the command (:mod:`.command`).
docs/test.md describes the command."""

from .metrics import as_metrics, differences, merge, system_errors
from .runner import SystemResult, TestResult, run_test

__all__ = ["run_test", "TestResult", "SystemResult", "system_errors", "merge", "as_metrics", "differences"]
