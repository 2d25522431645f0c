"""The 36-region bullseye table of a synthetic cohort: names as wmhkit.regions, volumes adding up, shares kept."""

from __future__ import annotations

import numpy as np
import pytest

from wmhkit.errors import OptionError, TableError
from wmhkit.synth.cohort import make_cohort
from wmhkit.synth.regional import BULLSEYE_REGION_NAMES, bullseye_regions


def test_names_match_the_regions_table_and_volumes_add_up():
    from wmhkit.regions.bullseye import bullseye_names

    assert list(BULLSEYE_REGION_NAMES) == bullseye_names()
    table = make_cohort(200, seed=2).table
    regions = bullseye_regions(table, seed=0)
    assert len(regions) == 200 * 36 and (regions["scheme"] == "bullseye").all()
    totals = regions.groupby("subject", sort=False)["lesion_ml"].sum()
    np.testing.assert_allclose(totals.to_numpy(), table["wmh_ml"].to_numpy())
    assert (regions["lesion_ml"] >= 0).all() and {"age", "sex", "site", "dementia"} <= set(regions.columns)
    # lobar and depth shares are the cohort's, hemispheres split about evenly, a few % in the deep grey
    true = bullseye_regions(table, value="wmh_true_ml", seed=0)
    true["lobe"] = true["region"].str.split("_").str[0]
    frontal = true[true["lobe"] == "frontal"].groupby("subject", sort=False)["lesion_ml"].sum()
    np.testing.assert_allclose(frontal.to_numpy(), table["wmh_frontal_true_ml"].to_numpy() * (1 - _bg_share(true, table)))
    left = true[true["region"].str.contains("_left_")]["lesion_ml"].sum() / true["lesion_ml"].sum()
    assert 0.4 < left < 0.6
    assert 0.02 < _bg_share(true, table).mean() < 0.06


def _bg_share(regions, table):
    bg = regions[regions["region"].str.startswith("basal_ganglia")].groupby("subject", sort=False)["lesion_ml"].sum()
    return bg.to_numpy() / table["wmh_true_ml"].to_numpy()


def test_errors():
    table = make_cohort(5, seed=0).table
    with pytest.raises(TableError, match="'wmh_frontal_true_ml'"):
        bullseye_regions(table.drop(columns="wmh_frontal_true_ml"))
    with pytest.raises(OptionError, match="bg_share"):
        bullseye_regions(table, bg_share=1.5)
