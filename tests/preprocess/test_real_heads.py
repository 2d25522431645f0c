"""The two real skull-on heads: alignment, brain mask and eTIV are plausible."""

from __future__ import annotations

import pytest

from wmhkit.io import mask_volume_ml
from wmhkit.preprocess import QUALITY_THRESHOLD, prepare_t1

pytestmark = [pytest.mark.real_data, pytest.mark.slow]


@pytest.mark.parametrize("fixture", ["real_t1_1p75mm", "real_t1_1mm"])
def test_real_head_preparation_is_plausible(fixture, request):
    prepared = prepare_t1(request.getfixturevalue(fixture))
    assert prepared.alignment.quality > QUALITY_THRESHOLD
    assert 1000.0 < mask_volume_ml(prepared.brain_mask) < 1800.0
    assert 1200.0 < prepared.etiv_ml < 2000.0
    assert prepared.t1_mni.shape == (197, 233, 189)
