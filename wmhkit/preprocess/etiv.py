"""Estimated total intracranial volume (eTIV) from the MNI alignment.

In the spirit of FreeSurfer's atlas scaling factor (Buckner et al. 2004, NeuroImage 23:724):
the head is assumed to differ from the template by the linear part of its affine alignment,
so its intracranial volume is the template's intracranial volume divided by the determinant
of the linear part of ``subject_to_mni`` (the factor by which the alignment expands the
subject's volumes). The template intracranial volume, :data:`TEMPLATE_ICV_ML`, is the
volume of the MNI152 2009a whole-brain mask (nilearn's template T1 above 0.2, enclosed
holes filled): 1882.995 mL on the 1 mm grid.
"""

from __future__ import annotations

import numpy as np

from wmhkit.preprocess.alignment import MNIAlignment

__all__ = ["estimate_etiv_ml", "TEMPLATE_ICV_ML"]

#: Intracranial volume of the MNI152 2009a template: voxels of its whole-brain mask (T1 > 0.2,
#: holes filled) x 1 mm^3, in mL. A test recomputes it from the template.
TEMPLATE_ICV_ML = 1882.995


def estimate_etiv_ml(alignment: MNIAlignment) -> float:
    """Estimated total intracranial volume in mL.

    ``eTIV = TEMPLATE_ICV_ML / |det(A)|`` with ``A`` the 3x3 linear part of
    ``alignment.subject_to_mni``. A head that the alignment must enlarge by 10 % along
    every axis to fit the template has ``1882.995 / 1.331 = 1414.7`` mL.

    Parameters
    ----------
    alignment : MNIAlignment
        The subject's affine alignment to MNI (from :func:`wmhkit.preprocess.align_to_mni`).

    Returns
    -------
    float
        eTIV in mL.

    Examples
    --------
    >>> import numpy as np
    >>> estimate_etiv_ml(MNIAlignment(np.eye(4)))
    1882.995
    >>> round(estimate_etiv_ml(MNIAlignment(np.diag([1.1, 1.1, 1.1, 1.0]))), 1)
    1414.7
    """
    determinant = abs(float(np.linalg.det(np.asarray(alignment.subject_to_mni, float)[:3, :3])))
    return TEMPLATE_ICV_ML / determinant
