"""The cortex-contact rule: lesions against the cortex are dropped, enclosed ones are kept."""

from __future__ import annotations

import numpy as np
import pytest

from wmhkit.errors import OptionError
from wmhkit.segmentation.cortex import DARK_BELOW, check_max_contact, cortex_attached, drop_cortex_attached

SHAPE = (36, 40, 31)  # unequal axes


@pytest.fixture()
def brain():
    """White matter (1.0) with noise, a cortex band (0.7) at the top and a ventricle (0.2) inside."""
    rng = np.random.default_rng(8)
    t1 = np.clip(1.0 + rng.normal(0, 0.02, SHAPE), 0.9, 1.1).astype(np.float32)
    t1[:, :, 26:] = 0.7
    envelope = np.zeros(SHAPE, bool)
    envelope[:, :, :26] = True
    t1[14:22, 16:24, 8:12] = 0.2  # the ventricle, inside the envelope
    zone = np.zeros(SHAPE, bool)
    zone[12:24, 14:26, 6:14] = True
    return t1, envelope, zone


def _lesion(t1, probability, where, value=0.9):
    t1[where] = 0.75
    probability[where] = value


def test_enclosed_periventricular_and_cortical_lesions(brain):
    t1, envelope, zone = brain
    p = np.zeros(SHAPE, np.float32)
    deep, cap, cortical = np.s_[4:8, 4:8, 15:19], np.s_[15:19, 17:21, 12:15], np.s_[26:30, 30:34, 22:26]
    for where in (deep, cap, cortical):
        _lesion(t1, p, where)
    dropped = cortex_attached(p, t1, envelope, zone, 0.5)
    assert not dropped[deep].any()
    assert not dropped[cap].any()  # touches the ventricle, not the surface
    assert dropped[cortical].all()
    assert dropped.sum() == np.prod([s.stop - s.start for s in cortical])


def test_dark_outside_the_ventricle_zone_is_surface(brain):
    """The same ventricle outside the template zone is a CSF space reached from the surface."""
    t1, envelope, zone = brain
    t1[21, 23, 12:27] = 0.2  # a sulcus-like channel from the cortex down to the CSF space
    p = np.zeros(SHAPE, np.float32)
    cap = np.s_[15:19, 17:21, 12:15]
    _lesion(t1, p, cap)
    assert cortex_attached(p, t1, envelope, np.zeros(SHAPE, bool), 0.5)[cap].all()
    # With the zone, the ventricle and its 2-voxel rim do not carry the surface to the cap.
    assert not cortex_attached(p, t1, envelope, zone, 0.5)[cap].any()


def test_lesion_fringe_does_not_carry_the_surface(brain):
    """A confluent load: a marked core deep in white matter, joined to the cortex by dark lesion
    tissue the network gives less than the threshold. The fringe is lesion, not cortex."""
    t1, envelope, zone = brain
    p = np.zeros(SHAPE, np.float32)
    core, band = np.s_[4:10, 4:10, 12:16], np.s_[6:8, 6:8, 16:26]
    _lesion(t1, p, core)
    _lesion(t1, p, band, value=0.3)  # dark, below the threshold 0.5, reaching the cortex at z = 26
    # Any contact at all would drop the core (max_contact 0): the fringe makes none.
    assert not cortex_attached(p, t1, envelope, zone, 0.5, max_contact=0.0)[core].any()
    # Where the network gives the band almost nothing, it is dark tissue like any other.
    p[band] = 0.2
    assert cortex_attached(p, t1, envelope, zone, 0.5, max_contact=0.0)[core].all()


def test_contact_share_and_threshold(brain):
    t1, envelope, zone = brain
    p = np.zeros(SHAPE, np.float32)
    # A 4x4x6 lesion whose top face touches the cortex: 36 of its 192 shell voxels (0.19).
    where = np.s_[4:8, 4:8, 20:26]
    _lesion(t1, p, where)
    assert not cortex_attached(p, t1, envelope, zone, 0.5, max_contact=0.2).any()
    assert cortex_attached(p, t1, envelope, zone, 0.5, max_contact=0.15)[where].all()
    assert not cortex_attached(p, t1, envelope, zone, 0.5, max_contact=1.0).any()
    assert not cortex_attached(p, t1, envelope, zone, 0.95).any()  # no candidate at 0.95


def test_drop_zeroes_only_the_candidates(brain):
    t1, envelope, zone = brain
    p = np.zeros(SHAPE, np.float32)
    cortical = np.s_[26:30, 30:34, 22:26]
    _lesion(t1, p, cortical)
    p[25, 30:34, 22:26] = 0.3  # sub-threshold halo
    before = p.copy()
    count = drop_cortex_attached(p, t1, envelope, zone, 0.5)
    assert count == 64 and p[cortical].max() == 0.0
    np.testing.assert_array_equal(p[25], before[25])


def test_dark_below_is_between_grey_and_white_matter():
    assert 0.7 < DARK_BELOW < 1.0


@pytest.mark.parametrize("bad", [1.5, -0.1, "x"])
def test_bad_share_refused(bad):
    with pytest.raises(OptionError, match="--max-cortex-contact"):
        check_max_contact(bad)
    assert check_max_contact(None) == 0.2 and check_max_contact(1) == 1.0


def test_judging_below_the_threshold_keeps_a_higher_threshold_from_marking_more(brain):
    t1, envelope, zone = brain
    p = np.zeros(SHAPE, np.float32)
    # A speck against the cortex (z = 26 up): its outer layers at 0.9, its deepest layer at 0.97.
    _lesion(t1, p, np.s_[10:14, 28:32, 23:26])
    _lesion(t1, p, np.s_[10:14, 28:32, 22:23], value=0.97)
    deepest = np.s_[10:14, 28:32, 22]
    assert cortex_attached(p, t1, envelope, zone, 0.5)[deepest].all()
    # Alone at 0.95, the deepest layer's shell is the speck's own fringe: it no longer touches the cortex.
    assert not cortex_attached(p, t1, envelope, zone, 0.95).any()
    judged = cortex_attached(p, t1, envelope, zone, 0.95, judge_at=0.5)
    assert judged[deepest].all()
    assert not (judged & (p < 0.95)).any()  # only voxels at or above the threshold are returned
    # A judging level above the threshold changes nothing.
    assert np.array_equal(cortex_attached(p, t1, envelope, zone, 0.5, judge_at=0.9),
                          cortex_attached(p, t1, envelope, zone, 0.5))
