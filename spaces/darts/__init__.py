"""The DARTS cell search space (Liu et al., 2019), with TE-NAS's proxy networks."""

from teg_plugin.spaces.darts._genotype import (
    DARTS_V1,
    DARTS_V2,
    GENOTYPE_OPS,
    OPS,
    DartsGenotype,
    GenotypeError,
    as_genotype,
    parse_genotype,
)
from teg_plugin.spaces.darts._mask import MASK_KEYS
from teg_plugin.spaces.darts._network import (
    DartsCell,
    DartsEvalNetwork,
    DartsNetwork,
    build_eval_network,
    count_parameters,
)
from teg_plugin.spaces.darts._space import DartsSpace

__all__ = [
    "DARTS_V1",
    "DARTS_V2",
    "GENOTYPE_OPS",
    "MASK_KEYS",
    "OPS",
    "DartsCell",
    "DartsEvalNetwork",
    "DartsGenotype",
    "DartsNetwork",
    "DartsSpace",
    "GenotypeError",
    "as_genotype",
    "build_eval_network",
    "count_parameters",
    "parse_genotype",
]
