"""Preprocessing of 3D T1 images: MNI alignment, intensity normalisation, brain mask, eTIV.

Public API
----------
load_template(kind)             MNI152 2009a sym 1 mm maps bundled with nilearn
align_to_mni(img)               affine alignment -> MNIAlignment (resample_to_mni / resample_to_subject)
alignment_distance_mm(a, b)     mean distance (mm) between two alignments over the template brain
normalize_intensity(img, ...)   float32, white matter 1.0, background 0
brain_mask(img, alignment)      uint8 mask on the input grid
estimate_etiv_ml(alignment)     eTIV (mL) from the alignment's scaling
prepare_t1(img)                 all of the above -> PreparedT1
check_brain_t1(prepared)        refuse what is not a brain T1 (FLAIR, T2, noise, boxes)
"""

from wmhkit.preprocess.alignment import QUALITY_THRESHOLD, MNIAlignment, align_to_mni, alignment_distance_mm
from wmhkit.preprocess.brainmask import brain_mask
from wmhkit.preprocess.content_check import check_brain_t1
from wmhkit.preprocess.etiv import TEMPLATE_ICV_ML, estimate_etiv_ml
from wmhkit.preprocess.intensity import normalize_intensity
from wmhkit.preprocess.prepare import PreparedT1, prepare_t1
from wmhkit.preprocess.templates import TEMPLATE_AFFINE, TEMPLATE_SHAPE, load_template

__all__ = [
    "QUALITY_THRESHOLD",
    "TEMPLATE_AFFINE",
    "TEMPLATE_ICV_ML",
    "TEMPLATE_SHAPE",
    "MNIAlignment",
    "PreparedT1",
    "align_to_mni",
    "alignment_distance_mm",
    "brain_mask",
    "check_brain_t1",
    "estimate_etiv_ml",
    "load_template",
    "normalize_intensity",
    "prepare_t1",
]
