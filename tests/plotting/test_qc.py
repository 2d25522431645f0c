"""QC figures: the cohort's overlay thumbnail and frequency overview, the benchmark review mosaic."""

from __future__ import annotations

import nibabel as nib
import numpy as np
from matplotlib.figure import Figure

from wmhkit.plotting.qc import plot_review_mosaic, write_thumbnail


def _head(seed: int = 1):
    """A 30x36x26 LAS image (2 x 2 x 2.5 mm) with a lesion block and a brain box."""
    rng = np.random.default_rng(seed)
    data = rng.uniform(0.4, 0.6, (30, 36, 26)).astype(np.float32)
    mask = np.zeros(data.shape, np.uint8)
    mask[10:14, 12:16, 5:22] = 1
    affine = np.diag([-2.0, 2.0, 2.5, 1.0])  # LAS, anisotropic
    return nib.Nifti1Image(data, affine), nib.Nifti1Image(mask, affine)


def test_thumbnail_marks_the_lesion_in_red(tmp_path):
    from matplotlib.image import imread

    t1, mask = _head()
    path = write_thumbnail(t1, mask, tmp_path / "t.png", n_slices=3)
    image = imread(path)
    red = (image[..., 0] > 0.8) & (image[..., 1] < 0.4)
    assert image.shape[1] > image.shape[0] and 100 <= image.shape[0] <= 140
    assert red.sum() > 0 and red.mean() < 0.1
    assert not list(tmp_path.glob(".*"))


def test_review_mosaic_has_one_panel_per_slice():
    t1, mask = _head()
    probability = nib.Nifti1Image(np.asanyarray(mask.dataobj) * np.float32(0.9), t1.affine)
    brain = nib.Nifti1Image(np.ones(t1.shape, np.uint8), t1.affine)
    fig = plot_review_mosaic(t1, mask, probability, brain, title="phantom", n_slices=4)
    assert isinstance(fig, Figure) and len(fig.axes) == 4
    assert "lesion voxels" in fig.axes[0].get_title() and fig._suptitle.get_text() == "phantom"
