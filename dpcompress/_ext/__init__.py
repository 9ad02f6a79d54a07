"""Compiled extensions (private). Thin Cython wrappers over the C kernels in ``src_c/``."""
