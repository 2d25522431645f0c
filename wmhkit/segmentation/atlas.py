"""Former home of the segmentation's MNI masks, now in :mod:`wmhkit.anatomy.atlas`.

Kept so that code written against this name (the training loop, older scripts) still imports;
new code imports :mod:`wmhkit.anatomy.atlas` (the masks) and
:data:`wmhkit.preprocess.templates.MNI_BRAIN_BOX` (the brain box).
"""

from wmhkit.anatomy.atlas import (  # noqa: F401 - the same objects, re-exported
    DEEP_GM_LABELS,
    ENVELOPE_DILATION_MM,
    ENVELOPE_WM_PRIOR,
    VENTRICLE_LABELS,
    VENTRICLE_ZONE_MM,
    aseg_labels_mni,
    deep_gm_mni,
    label_mask_mni,
    ventricle_zone_mni,
    wm_envelope_mni,
)

__all__ = ["DEEP_GM_LABELS", "ENVELOPE_DILATION_MM", "ENVELOPE_WM_PRIOR", "VENTRICLE_LABELS", "VENTRICLE_ZONE_MM",
           "aseg_labels_mni", "deep_gm_mni", "label_mask_mni", "ventricle_zone_mni", "wm_envelope_mni"]
