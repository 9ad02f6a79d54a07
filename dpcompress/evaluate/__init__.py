"""Evaluation of compressed models with the compiled kernels (CPU)."""
