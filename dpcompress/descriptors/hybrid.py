"""Hybrid descriptors: several descriptors side by side (their registry handles reading them)."""

from dataclasses import dataclass

TYPE_NAME = "hybrid"


@dataclass(frozen=True)
class DescriptorHybrid:
    r"""Several descriptors side by side: :math:`D_i = [D^{(1)}_i, D^{(2)}_i, \dots]`.

    Each part keeps its own ``rcut``, ``sel`` and neighbor list (DeePMD-kit builds one list for
    the largest cutoff and cuts it per part; nearest-first selection makes that the same).

    Attributes
    ----------
    parts : tuple
        The sub-descriptors, in the order their outputs are concatenated.
    """

    parts: tuple

    type_name = TYPE_NAME

    @property
    def rcut(self):
        return max(p.rcut for p in self.parts)

    @property
    def ntypes(self):
        return self.parts[0].ntypes

    @property
    def dim_out(self):
        return sum(p.dim_out for p in self.parts)

    @property
    def sel(self):
        return tuple(tuple(p.sel) for p in self.parts)

    @property
    def is_compressed(self):
        return all(p.is_compressed for p in self.parts)
