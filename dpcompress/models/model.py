"""The Deep Potential energy model as plain data: :class:`DPModel` and its :class:`EnergyFitting`.

They hold arrays (float64) and settings only; they know nothing about files (see
:mod:`dpcompress.models.deepmd_reader` and :mod:`dpcompress.modelfile`) or evaluation (see
:mod:`dpcompress.evaluators`).  Type indices follow the model's ``type_map``.
"""

from dataclasses import dataclass, field
from typing import Optional, Tuple

import numpy as np

from ..core.networks import Network
from .fitting_params import FittingParams


@dataclass(frozen=True)
class EnergyFitting(FittingParams):
    r"""Per-type fitting nets of an energy model.

    :math:`e_i = F_{t_i}(D_i \oplus \hat f \oplus \hat a_i) + b_{t_i}`; atoms of ``exclude_types`` get
    :math:`e_i = 0`.  With frame parameters :math:`f` (``numb_fparam`` per frame) and atomic parameters
    :math:`a_i` (``numb_aparam`` per atom) the net's input is the descriptor followed by the normalised
    :math:`\hat f = (f - \bar f)\,\sigma_f^{-1}` and then :math:`\hat a_i = (a_i - \bar a)\,\sigma_a^{-1}`
    (DeePMD-kit's order and statistics).

    Attributes
    ----------
    networks : tuple of Network
        One per atom type, or a single one shared by all types (required: the defaults only
        keep the parameter fields of :class:`FittingParams` first).
    bias_atom_e : ndarray, shape (ntypes,)
    exclude_types : frozenset of int
    numb_fparam, numb_aparam, fparam_avg, fparam_inv_std, aparam_avg, aparam_inv_std, default_fparam
        The frame/atomic parameters (:class:`FittingParams`).
    """

    networks: Tuple[Network, ...] = ()
    bias_atom_e: np.ndarray = None
    exclude_types: frozenset = field(default_factory=frozenset)

    def __post_init__(self):
        if not self.networks or self.bias_atom_e is None:
            raise ValueError("EnergyFitting needs its networks and bias_atom_e")

    def network(self, atom_type):
        return self.networks[0] if len(self.networks) == 1 else self.networks[atom_type]


@dataclass(frozen=True)
class DPModel:
    r"""A standard Deep Potential energy model.

    :math:`E = \sum_i e_i`, :math:`e_i = F_{t_i}(D_i) + b_{t_i} + \beta_{t_i}`
    with :math:`\beta` the ``out_bias``; atoms of ``atom_exclude_types`` contribute 0,
    neighbor pairs of ``pair_exclude_types`` are removed from the neighbor list.

    Attributes
    ----------
    type_map : tuple of str
    descriptor : a descriptor of :mod:`dpcompress.descriptors`
    fitting : EnergyFitting
    out_bias : ndarray, shape (ntypes,)
    pair_exclude_types : frozenset of (int, int)
        Symmetrised.
    atom_exclude_types : frozenset of int
    min_nbor_dist : float or None
        Smallest pair distance of the training set, when the file stores it.
    source : str
        File the model was read from.
    compression : dict or None
        Provenance of a compressed model (source checksum, parameters, version,
        table errors); None when uncompressed.
    """

    type_map: Tuple[str, ...]
    descriptor: object
    fitting: EnergyFitting
    out_bias: np.ndarray
    pair_exclude_types: frozenset = field(default_factory=frozenset)
    atom_exclude_types: frozenset = field(default_factory=frozenset)
    min_nbor_dist: Optional[float] = None
    source: str = ""
    compression: Optional[dict] = None

    @property
    def ntypes(self):
        return len(self.type_map)

    @property
    def rcut(self):
        return self.descriptor.rcut

    @property
    def is_compressed(self):
        return self.descriptor.is_compressed
