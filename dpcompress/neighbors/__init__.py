"""Neighbor lists in DeePMD-kit's per-type layout (see :mod:`.neighbor_list`)."""

from .neighbor_list import NeighborList, build_neighbor_list

__all__ = ["NeighborList", "build_neighbor_list"]
