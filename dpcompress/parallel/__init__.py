"""MPI parallelism: training-set scan and domain-decomposed evaluation.

``partition`` (pure Python: the work-balanced split of the scan's frames over
ranks) and ``domain`` (spatial decomposition of a frame).  mpi4py is imported
lazily, only by the functions that need a communicator, so
``import dpcompress`` never needs MPI.
"""
