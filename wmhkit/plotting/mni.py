"""Lesion-frequency maps in MNI space: the share of subjects with a lesion at each voxel."""

from __future__ import annotations

import logging
from typing import Sequence

import nibabel as nib
import numpy as np
from matplotlib.figure import Figure

from wmhkit.errors import InputImageError, OptionError
from wmhkit.io import ImgLike, check_img, img_label
from wmhkit.plotting.mosaic import draw_mosaic
from wmhkit.plotting.slices import axis_index, choose_slices, load_overlay_volume
from wmhkit.plotting.style import PROBABILITY_CMAP

__all__ = ["lesion_frequency", "plot_lesion_frequency"]

logger = logging.getLogger(__name__)


def lesion_frequency(masks: Sequence[ImgLike], threshold: float = 0.5) -> nib.Nifti1Image:
    """Voxel-wise fraction of subjects whose mask is above ``threshold`` (all masks on one grid).

    Parameters
    ----------
    masks : sequence of image-like
        Lesion masks or probability maps already in MNI space (e.g. the
        ``*_space-MNI152NLin2009aSym_desc-wmh_mask.nii.gz`` outputs of a cohort run).
    threshold : float, default 0.5
        Value above which a voxel counts as lesion.

    Returns
    -------
    nibabel.Nifti1Image
        float32 frequency (0-1) on the masks' grid.

    Raises
    ------
    wmhkit.errors.InputImageError
        When the list is empty or the masks are not all on one grid.

    Examples
    --------
    >>> a = nib.Nifti1Image(np.eye(3)[:, :, None].repeat(2, 2).astype("uint8"), np.eye(4))
    >>> b = nib.Nifti1Image(np.zeros((3, 3, 2), "uint8"), np.eye(4))
    >>> lesion_frequency([a, b]).get_fdata()[0, 0].tolist()
    [0.5, 0.5]
    """
    masks = list(masks)
    if not masks:
        raise InputImageError("lesion_frequency got no masks; pass a list of MNI-space mask images or paths.")
    reference = check_img(masks[0], check_voxels=False)
    counts = np.zeros(reference.shape, dtype=np.float32)
    for mask in masks:
        img = check_img(mask, check_voxels=False)
        if img.shape != reference.shape or not np.allclose(img.affine, reference.affine, atol=1e-3):
            raise InputImageError(
                f"Mask {img_label(mask)} is not on the grid of {img_label(masks[0])}; resample every mask to MNI first."
            )
        counts += np.asanyarray(img.dataobj) > threshold
    logger.info("lesion frequency over %d masks", len(masks))
    return nib.Nifti1Image(counts / len(masks), reference.affine)


def plot_lesion_frequency(
    frequency: ImgLike | Sequence[ImgLike],
    *,
    template: ImgLike | None = None,
    axis: str = "axial",
    n_slices: int = 12,
    n_columns: int = 6,
    display_min: float = 0.01,
    vmax: float | None = None,
    as_percent: bool = True,
    contour_level: float | None = None,
    title: str | None = None,
    width_in: float = 7.0,
) -> Figure:
    """Mosaic of a lesion-frequency map over the MNI152 template.

    Parameters
    ----------
    frequency : image-like, or a sequence of image-likes
        A frequency map (0-1) in MNI space, or a list of MNI-space lesion masks from which
        :func:`lesion_frequency` computes it.
    template : image-like, optional
        Background; default the MNI152 2009a 1 mm T1 bundled with nilearn. The frequency map
        is resampled onto its grid when the grids differ.
    axis : {"axial", "coronal", "sagittal"}, default "axial"
        Direction of the slices.
    n_slices, n_columns : int, default 12, 6
        Number of slices (spread over the slices holding lesions) and slices per row.
    display_min : float, default 0.01
        Smallest frequency painted (fraction of subjects).
    vmax : float, optional
        Top of the colour scale (fraction); default the map's maximum.
    as_percent : bool, default True
        Label the colour bar in % of subjects.
    contour_level : float, optional
        Also outline the voxels above this frequency.
    title : str, optional
        Figure title.
    width_in : float, default 7.0
        Figure width in inches.

    Returns
    -------
    matplotlib.figure.Figure
    """
    if isinstance(frequency, (list, tuple)):
        frequency = lesion_frequency(frequency)
    if template is None:
        from wmhkit.preprocess.templates import load_template

        template = load_template("t1")
    volume = load_overlay_volume(template, frequency)
    if volume.overlay is None or not np.isfinite(volume.overlay).all() or volume.overlay.min() < 0:
        raise InputImageError("The lesion-frequency map holds negative or non-finite values; pass fractions 0-1.")
    top = float(vmax if vmax is not None else max(volume.overlay.max(), display_min * 2))
    if top <= display_min:
        raise OptionError(f"vmax={top} must exceed display_min={display_min}.")
    axis_number = axis_index(axis)
    slices = choose_slices(volume, axis_number, n_slices, threshold=display_min)
    scale = 100.0 if as_percent else 1.0
    volume.overlay = volume.overlay * scale
    label = "Lesion frequency (% of subjects)" if as_percent else "Lesion frequency (fraction)"
    fig = draw_mosaic(
        volume, axis=axis_number, slices=slices, n_columns=n_columns, threshold=display_min * scale,
        display_min=display_min * scale, contour=False, alpha=0.9, as_mask=False, colour="white",
        cmap=PROBABILITY_CMAP, vmax=top * scale, colorbar_label=label, title=title, width_in=width_in,
    )
    if contour_level is not None:
        for ax, index in zip(fig.axes, slices):
            data = volume.slice(axis_number, index, "overlay")
            if (data > contour_level * scale).any():
                ax.contour(data, levels=[contour_level * scale], colors=["white"], linewidths=0.6,
                           origin="lower", extent=volume.extent_mm(axis_number))
    return fig
