"""Synthetic data with known ground truth: brain phantoms (T1, thick-slice FLAIR, masks).

>>> from wmhkit.synth import make_phantom, TISSUE_LABELS
>>> TISSUE_LABELS["lesion"]
4
"""

from wmhkit.synth.cohort import SyntheticCohort, make_cohort
from wmhkit.synth.insertion import insert_lesions
from wmhkit.synth.longitudinal import LongitudinalCohort, make_longitudinal_cohort
from wmhkit.synth.phantom import TISSUE_LABELS, Phantom, make_phantom
from wmhkit.synth.regional import bullseye_regions

__all__ = ["make_phantom", "Phantom", "insert_lesions", "TISSUE_LABELS", "make_cohort", "SyntheticCohort",
           "make_longitudinal_cohort", "LongitudinalCohort", "bullseye_regions"]
