"""Neighbor search: candidate neighbors of a frame (what the model runtime takes, as from LAMMPS)
and DeePMD-kit's per-type neighbor list (the exact evaluator, the scan)."""

from .candidates import Candidates, candidates_of_checked, find_candidates
from .neighbor_list import COINCIDENCE_TOLERANCE, NeighborList, build_neighbor_list, coincidence_message

__all__ = ["Candidates", "candidates_of_checked", "find_candidates", "NeighborList", "build_neighbor_list",
           "coincidence_message", "COINCIDENCE_TOLERANCE"]
