"""MPI parallelism: training-set scan and domain-decomposed evaluation.

mpi4py is imported lazily, only by the functions that need a communicator, so
``import dpcompress`` never needs MPI.
"""
