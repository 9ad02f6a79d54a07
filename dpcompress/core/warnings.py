"""Warnings dpcompress emits (all subclasses of the matching built-in category)."""


class NeighborOverflowWarning(RuntimeWarning):
    """An atom had more neighbors of a type inside rcut than the model's ``sel`` holds."""


class TableOverflowWarning(RuntimeWarning):
    """Neighbors were closer than anything in the training set: their table input left the fine grid or the table."""


class TableAccuracyWarning(UserWarning):
    """A table reproduces its net less accurately than usual (kinks of relu/relu6, or a coarse step)."""
