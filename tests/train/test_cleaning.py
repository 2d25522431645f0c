"""Two-step cleaning: agreement of A(p) with the label, robust-z flagging."""

from __future__ import annotations

import numpy as np
import pandas as pd

from wmhkit.train.cleaning import case_agreement, case_weights, flag_outliers
from wmhkit.train.cases import load_case

from .train_cases import template_case, template_cases  # noqa: F401 (fixture)


def test_agreement_high_for_true_map_and_low_for_shifted_label(template_cases):
    case = load_case(template_cases[0], mmap=False)
    truth = case.lesion_mni.astype(np.float32)
    good = case_agreement(truth, case)
    assert good["agreement"] > 0.8
    assert good["label_voxels"] > 0
    shifted = template_case(1, shift_label_mm=8.0)
    bad = case_agreement(shifted.lesion_mni.astype(np.float32), shifted)
    assert bad["agreement"] < 0.5 * good["agreement"]
    empty = case_agreement(np.zeros_like(truth), case)
    assert empty["agreement"] == 0.0 and empty["predicted_voxels"] == 0.0


def test_flagging_rule_and_reasons():
    rng = np.random.default_rng(0)
    n = 20
    table = pd.DataFrame({"agreement": rng.uniform(0.7, 0.8, n), "label_voxels": np.full(n, 100.0),
                          "predicted_voxels": np.full(n, 100.0)})
    table.loc[3, ["agreement", "label_voxels"]] = [0.2, 20.0]  # missed lesions
    table.loc[7, ["agreement", "label_voxels"]] = [0.25, 400.0]  # spurious blobs
    table.loc[11, "agreement"] = 0.1  # displaced
    flagged = flag_outliers(table, z_threshold=2.5)
    assert flagged.index[flagged["flagged"]].tolist() == [3, 7, 11]
    assert "misses" in flagged.loc[3, "reason"] and "does not find" in flagged.loc[7, "reason"]
    assert "displaced" in flagged.loc[11, "reason"] and flagged.loc[0, "reason"] == ""
    assert case_weights(flagged).sum() == n - 3
    assert np.allclose(case_weights(flagged, "downweight", 0.2)[[3, 7, 11]], 0.2)
