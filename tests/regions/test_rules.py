"""Periventricular/deep rules, lobes, bullseye and reference regions on lesions at known places."""

from __future__ import annotations

import numpy as np
import pytest

from wmhkit.io import mask_volume_ml
from wmhkit.regions import DEFAULT_SCHEMES, bullseye_names, quantify_subject
from wmhkit.regions.parcels import PARCEL_CODES

WM_FRONTAL_LEFT = [PARCEL_CODES["white_matter_frontal_left"]]
WM_OCCIPITAL_RIGHT = [PARCEL_CODES["white_matter_occipital_right"]]


@pytest.fixture(scope="module")
def placed(subject):
    """Three lesions: against the left ventricle, deep frontal left, deep occipital right."""
    pv = subject.pick(WM_FRONTAL_LEFT, (1.0, 2.0), near=(-22, -20, 32))
    deep = subject.pick(WM_FRONTAL_LEFT, (18.0, 26.0), d_cortex_min=6.0, near=(-25, 20, 40))
    occipital = subject.pick(WM_OCCIPITAL_RIGHT, (14.0, 30.0), d_cortex_min=4.0, near=(25, -75, 10))
    mask = subject.mask((pv, 3.0), (deep, 3.0), (occipital, 3.0))
    result = quantify_subject(mask, alignment=subject.alignment, subject="s1")
    return {"pv": pv, "deep": deep, "occipital": occipital, "mask": mask, "result": result}


def _lesion_at(table, centre_mni):
    xyz = table[["centroid_x_mni_mm", "centroid_y_mni_mm", "centroid_z_mni_mm"]].to_numpy()
    return table.iloc[int(np.argmin(np.linalg.norm(xyz - centre_mni, axis=1)))]


def test_grid_covers_the_brain(subject):
    mask = subject.mask((np.zeros(3), 200.0))
    assert mask.get_fdata().mean() > 0.99


def test_each_scheme_sums_to_the_total(placed):
    regions = placed["result"].regions
    total = mask_volume_ml(placed["mask"])
    assert total > 0.3
    sums = regions.groupby("scheme")["lesion_ml"].sum()
    assert set(sums.index) == set(DEFAULT_SCHEMES)
    np.testing.assert_allclose(sums.to_numpy(), total, rtol=1e-9)
    assert placed["result"].summary["lesion_ml"] == pytest.approx(total)
    assert list(regions.columns) == ["subject", "scheme", "region", "lesion_ml", "region_ml", "fraction"]


def test_lesion_table_classes_and_centroids(placed):
    lesions = placed["result"].lesions
    assert len(lesions) == 3 and placed["result"].summary["lesion_count"] == 3
    pv, deep, occipital = (_lesion_at(lesions, placed[k]) for k in ("pv", "deep", "occipital"))
    for row, key in ((pv, "pv"), (deep, "deep"), (occipital, "occipital")):
        centroid = row[["centroid_x_mni_mm", "centroid_y_mni_mm", "centroid_z_mni_mm"]].to_numpy(float)
        assert np.linalg.norm(centroid - placed[key]) < 1.5
    assert pv["pv_class"] == "periventricular" and pv["distance_to_ventricle_mm"] <= 3.0
    assert deep["pv_class"] == "deep" and deep["distance_to_ventricle_mm"] > 13.0
    assert pv["lobe"] == "frontal_left" and deep["lobe"] == "frontal_left"
    assert occipital["lobe"] == "occipital_right" and occipital["bullseye"].startswith("occipital_right_shell")
    assert pv["bullseye"] in ("frontal_left_shell1", "frontal_left_shell2")
    assert not lesions["confluent"].any()


def test_voxelwise_rules(placed):
    regions = placed["result"].regions.set_index(["scheme", "region"])["lesion_ml"]
    total = mask_volume_ml(placed["mask"])
    single = total / 3
    # The ventricle lesion lies within 10 mm; the two deep ones beyond 13 mm.
    assert regions["pv_10mm", "periventricular"] == pytest.approx(single, rel=0.15)
    assert regions["pv_10mm", "deep"] == pytest.approx(2 * single, rel=0.1)
    assert regions["pv_3_13mm", "deep"] == pytest.approx(2 * single, rel=0.1)
    assert regions["pv_3_13mm", "juxtaventricular"] > 0
    assert regions["pv_continuity", "periventricular"] == pytest.approx(single, rel=0.15)
    assert regions["reference4", "periventricular"] == pytest.approx(single, rel=0.15)
    # the ventricle lesion may reach into the ventricle or caudate parcels: most of it is frontal
    assert 1.5 * single < regions["lobes", "frontal_left"] <= 2 * single * 1.1
    assert regions["lobes", "occipital_right"] == pytest.approx(single, rel=0.15)


def test_region_volumes_and_fractions(placed):
    regions = placed["result"].regions
    bullseye = regions[regions["scheme"] == "bullseye"]
    assert bullseye["region"].tolist() == bullseye_names() + ["other"]
    named = bullseye.iloc[:-1]
    assert (named["region_ml"] > 0).all()
    # white matter plus deep grey of an adult brain: a few hundred mL
    assert 300 < named["region_ml"].sum() < 800
    fraction = named["lesion_ml"] / named["region_ml"]
    np.testing.assert_allclose(named["fraction"], fraction)
    continuity = regions[regions["scheme"] == "pv_continuity"]
    assert continuity["region_ml"].isna().all()


def test_confluent_lesion_raises_the_deep_grade(subject):
    deep = subject.pick(WM_FRONTAL_LEFT, (18.0, 26.0), d_cortex_min=6.0, near=(-25, 20, 40))
    chain = [(deep + [0.0, step, 0.0], 3.0) for step in np.arange(-14.0, 15.0, 4.0)]
    result = quantify_subject(subject.mask(*chain), alignment=subject.alignment, schemes=("pv_10mm",))
    assert result.summary["lesion_count"] == 1
    row = result.lesions.iloc[0]
    assert row["confluent"] and row["extent_mm"] == pytest.approx(34.0, abs=4.0)
    assert result.summary["fazekas_deep_estimate"] == 3
    assert set(result.regions["scheme"]) == {"pv_10mm"}
