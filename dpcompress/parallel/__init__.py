"""MPI parallelism: training-set scan and domain-decomposed evaluation.

``partition`` (pure Python: the work-balanced split of the scan's frames over
ranks), ``domain`` (spatial decomposition of a frame) and ``agreement`` (the
status reduction before every collective of ``Potential(comm=...)``, so that a
failure on one rank ends every rank with the same error).  mpi4py is imported
lazily, only by the functions that need a communicator, so
``import dpcompress`` never needs MPI.
"""
