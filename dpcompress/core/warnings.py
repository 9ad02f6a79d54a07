"""Warnings dpcompress emits (all subclasses of the matching built-in category)."""


class NeighborOverflowWarning(RuntimeWarning):
    """An atom had more neighbors of a type inside rcut than the model's ``sel`` holds."""


class TableOverflowWarning(RuntimeWarning):
    """Neighbors were closer than anything in the training set: their table input left the fine grid or the table."""


class TableAccuracyWarning(UserWarning):
    """A table reproduces its net less accurately than usual (kinks of relu/relu6, or a coarse step)."""


class ForkThreadsWarning(RuntimeWarning):
    """A process forked from one that had loaded dpcompress asked for several threads: it runs one."""


class CoordinatePrecisionWarning(RuntimeWarning):
    """Coordinates so large that float64 keeps them (and the pair vectors made of them) only to about 1e-4 Å."""
