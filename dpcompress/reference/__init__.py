"""Readable numpy twins of the compiled kernels, and the exact uncompressed evaluator."""
