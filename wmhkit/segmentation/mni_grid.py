"""The MNI grid: the brain box of the MNI152 1 mm grid, reached through the affine alignment.

The normalised T1 is sampled (trilinear) into :data:`~wmhkit.preprocess.templates.MNI_BRAIN_BOX`
(157 x 193 x 162 voxels, the template brain plus about 6 mm), where the MNI masks are simply
cropped; the probability goes back onto the input grid with one more trilinear sampling, only
inside the part of the input grid the box covers, so a large input costs no more than its brain.
The classical baseline always runs here (its tissue priors live on this grid); the network does
when its model was trained here (``LoadedModel.space == "mni"``).
"""

from __future__ import annotations

from dataclasses import dataclass

import nibabel as nib
import numpy as np

from wmhkit.segmentation.spaces import Grid

__all__ = ["MniGrid", "mni_grid", "box_affine"]


def box_affine(box: tuple[slice, slice, slice]) -> np.ndarray:
    """Voxel-to-MNI-mm affine of a box of the 1 mm template grid."""
    from wmhkit.preprocess.templates import TEMPLATE_AFFINE

    affine = TEMPLATE_AFFINE.copy()
    affine[:3, 3] += [s.start for s in box]
    return affine


@dataclass
class MniGrid(Grid):
    """:class:`~wmhkit.segmentation.spaces.Grid` on the MNI brain box.

    Attributes
    ----------
    box : tuple of slice
        The box's slices of the template grid (index the MNI priors with it).
    alignment : MNIAlignment
        The subject's alignment (the way back).
    reference : nibabel.Nifti1Image
        The input image (its grid is where the probability goes).
    """

    box: tuple = ()
    alignment: object = None
    reference: nib.Nifti1Image = None

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return tuple(self.reference.shape[:3])

    def to_input(self, probability: np.ndarray) -> tuple[tuple[slice, slice, slice], np.ndarray]:
        """Trilinear sampling of the box's probability onto the input grid, only where the box reaches."""
        return _onto(probability, self.affine, self.reference, self.alignment)

    def to_image(self, probability: np.ndarray, img: nib.Nifti1Image) -> tuple[tuple[slice, slice, slice], np.ndarray]:
        """The probability sampled straight onto another grid of the subject (the input grid of a run on a
        working grid: one interpolation, not two), only where it is non-zero."""
        from wmhkit.io.arrays import grown_box

        found = grown_box(probability > 0, 0)
        if found is None:
            return (slice(0, 0),) * 3, np.zeros((0, 0, 0), dtype=np.float32)
        affine = self.affine.copy()
        affine[:3, 3] += affine[:3, :3] @ np.array([s.start for s in found], float)
        return _onto(probability[found], affine, img, self.alignment)


def _onto(probability: np.ndarray, affine: np.ndarray, reference, alignment) -> tuple[tuple, np.ndarray]:
    """Trilinear sampling of an MNI-grid probability (voxel-to-MNI ``affine``) onto ``reference``'s grid, in the
    part of it the probability's box reaches."""
    from wmhkit.preprocess.resampling import box_on_grid, resample_array

    # The box's voxel corners widened by one voxel, then one more voxel of margin on the input grid.
    corners = np.array(np.meshgrid(*[[-1, n] for n in probability.shape], indexing="ij")).reshape(3, -1).T
    world_mni = corners @ affine[:3, :3].T + affine[:3, 3]
    to_voxels = np.linalg.inv(np.asarray(reference.affine, float)) @ alignment.mni_to_subject
    sub = box_on_grid(world_mni, to_voxels, reference.shape[:3], pad=(1, 2))
    sub_shape = tuple(max(s.stop - s.start, 0) for s in sub)
    if 0 in sub_shape:
        return sub, np.zeros(sub_shape, dtype=np.float32)
    sub_affine = np.asarray(reference.affine, float).copy()
    sub_affine[:3, 3] = reference.affine[:3, :3] @ np.array([s.start for s in sub], float) + sub_affine[:3, 3]
    # The map of MNIAlignment.resample_to_subject, restricted to the sub-grid the box covers.
    part = resample_array(probability, affine, sub_shape, sub_affine, alignment.subject_to_mni, order=1,
                          dtype=np.float32)
    return sub, np.clip(part, 0.0, 1.0, out=part)


def mni_grid(prepared) -> MniGrid:
    """The brain box of the MNI grid for a prepared T1 (:class:`wmhkit.preprocess.PreparedT1`)."""
    from wmhkit.anatomy.atlas import ventricle_zone_mni, wm_envelope_mni
    from wmhkit.io import img_label
    from wmhkit.preprocess.prepare import mni_t1_region, normalised_t1_mni
    from wmhkit.preprocess.templates import MNI_BRAIN_BOX

    img, alignment = prepared.img, prepared.alignment
    # A run on a working grid samples the T1 from the input itself: one interpolation, as for any input.
    source = img if getattr(prepared, "input_img", None) is None else prepared.input_img
    region = mni_t1_region()
    t1 = normalised_t1_mni(np.asanyarray(source.dataobj), source.affine, alignment, prepared.intensity_levels,
                           label=img_label(img))
    crop = tuple(slice(b.start - r.start, b.stop - r.start) for b, r in zip(MNI_BRAIN_BOX, region))
    return MniGrid(space="mni", t1=np.ascontiguousarray(t1[crop]), envelope=wm_envelope_mni()[MNI_BRAIN_BOX],
                   ventricle_zone=ventricle_zone_mni()[MNI_BRAIN_BOX], affine=box_affine(MNI_BRAIN_BOX),
                   box=MNI_BRAIN_BOX, alignment=alignment, reference=img)
