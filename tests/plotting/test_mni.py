"""Lesion-frequency maps over a template."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest

from wmhkit.errors import InputImageError
from wmhkit.plotting import lesion_frequency, plot_lesion_frequency


def _masks(shape=(30, 36, 24), n=4):
    affine = np.diag([2.0, 2.0, 2.0, 1.0])
    masks = []
    for i in range(n):
        data = np.zeros(shape, np.uint8)
        data[10:14, 12:16, 8 + i : 12 + i] = 1
        masks.append(nib.Nifti1Image(data, affine))
    return masks


def test_frequency_is_the_share_of_subjects():
    frequency = lesion_frequency(_masks()).get_fdata()
    assert frequency.max() == 1.0  # the core shared by all four
    assert frequency[11, 13, 8] == 0.25  # only the first subject
    assert frequency[0, 0, 0] == 0.0


def test_masks_on_different_grids_raise():
    masks = _masks(n=2)
    masks.append(nib.Nifti1Image(np.zeros((31, 36, 24), np.uint8), np.eye(4)))
    with pytest.raises(InputImageError, match="grid"):
        lesion_frequency(masks)
    with pytest.raises(InputImageError, match="no masks"):
        lesion_frequency([])


def test_plot_over_given_template_has_percent_colour_bar():
    masks = _masks()
    template = nib.Nifti1Image(np.random.default_rng(0).random((30, 36, 24)).astype(np.float32), masks[0].affine)
    fig = plot_lesion_frequency(masks, template=template, n_slices=4, contour_level=0.5)
    labels = [ax.get_ylabel() for ax in fig.axes]
    assert any("% of subjects" in label for label in labels)
    assert len([ax for ax in fig.axes if ax.images]) == 4


def test_plot_over_the_bundled_mni_template():
    masks = _masks()
    mni_affine = np.array([[1.0, 0, 0, -98], [0, 1.0, 0, -134], [0, 0, 1.0, -72], [0, 0, 0, 1]])
    frequency = nib.Nifti1Image(np.zeros((197, 233, 189), np.float32), mni_affine)
    data = frequency.get_fdata()
    data[90:110, 120:140, 90:100] = 0.3
    fig = plot_lesion_frequency(nib.Nifti1Image(data.astype(np.float32), mni_affine), n_slices=3)
    assert len([ax for ax in fig.axes if ax.images]) == 3
    assert masks  # the helper is shared with the test above
