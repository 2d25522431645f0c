"""Discovery of cohort inputs: BIDS (sessions, missing T1, other files), folders, globs, manifests."""

from __future__ import annotations

import logging

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from wmhkit.cohort import discover_inputs
from wmhkit.cohort.discover import select_inputs
from wmhkit.errors import OptionError, TableError


def _touch_img(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(nib.Nifti1Image(np.zeros((5, 6, 7), np.float32), np.eye(4)), path)
    return path


@pytest.fixture
def bids(tmp_path):
    root = tmp_path / "bids"
    _touch_img(root / "sub-01/anat/sub-01_T1w.nii.gz")
    _touch_img(root / "sub-01/anat/sub-01_FLAIR.nii.gz")
    (root / "sub-01/anat/sub-01_T1w.json").write_text("{}")
    _touch_img(root / "sub-02/ses-1/anat/sub-02_ses-1_T1w.nii")
    _touch_img(root / "sub-02/ses-2/anat/sub-02_ses-2_T1w.nii.gz")
    _touch_img(root / "sub-02/ses-2/anat/sub-02_ses-2_T2w.nii.gz")
    _touch_img(root / "sub-03/anat/sub-03_FLAIR.nii.gz")  # no T1: left out
    (root / "participants.tsv").write_text("participant_id\tage\tsex\tsite\nsub-01\t71\tF\tA\nsub-02\t80.5\tM\tB\n")
    return root


def test_bids_sessions_participants_and_ignored_files(bids, caplog):
    with caplog.at_level(logging.WARNING, logger="wmhkit.cohort"):
        table = discover_inputs(bids)
    assert table["stem"].tolist() == ["sub-01_T1w", "sub-02_ses-1_T1w", "sub-02_ses-2_T1w"]
    assert table["session"].tolist() == ["", "1", "2"]
    assert table["out_subdir"].tolist() == ["sub-01/anat", "sub-02/ses-1/anat", "sub-02/ses-2/anat"]
    assert table["age"].tolist() == [71.0, 80.5, 80.5]
    assert table["sex"].tolist() == ["F", "M", "M"]
    assert table["site"].tolist() == ["A", "B", "B"]
    assert "sub-03" in caplog.text


def test_bids_duplicate_t1_refused(bids):
    _touch_img(bids / "sub-01/anat/sub-01_T1w.nii")  # same stem as sub-01_T1w.nii.gz
    with pytest.raises(TableError, match="sub-01_T1w"):
        discover_inputs(bids)


def test_participants_duplicate_id_refused(bids):
    (bids / "participants.tsv").write_text("participant_id\tage\nsub-01\t70\nsub-01\t71\n")
    with pytest.raises(TableError, match="sub-01 twice"):
        discover_inputs(bids)


def test_folder_and_glob(tmp_path):
    for name in ("a/case_1.nii.gz", "b/case_2.nii", "b/notes.txt"):
        _touch_img(tmp_path / name) if name.endswith((".nii", ".nii.gz")) else (tmp_path / name).write_text("x")
    table = discover_inputs(tmp_path)
    assert table["subject"].tolist() == ["case1", "case2"]
    assert table["out_subdir"].tolist() == ["sub-case1/anat", "sub-case2/anat"]
    assert discover_inputs(str(tmp_path / "*" / "case_2.nii"))["stem"].tolist() == ["case_2"]


def test_folder_duplicate_names_refused(tmp_path):
    _touch_img(tmp_path / "site1/t1.nii.gz")
    _touch_img(tmp_path / "site2/t1.nii.gz")
    with pytest.raises(TableError, match="same subject"):
        discover_inputs(tmp_path)


def test_manifest_relative_paths_and_extra_columns(tmp_path):
    _touch_img(tmp_path / "img/x.nii.gz")
    _touch_img(tmp_path / "img/y.nii.gz")
    manifest = tmp_path / "cohort.csv"
    manifest.write_text("subject,session,path,age,site\nP1,,img/x.nii.gz,70,S1\nP1,2,img/y.nii.gz,72,S1\n")
    table = discover_inputs(manifest)
    assert table["subject"].tolist() == ["P1", "P1"]
    assert table["session"].tolist() == ["", "2"]
    assert table["input_path"].tolist() == [str((tmp_path / "img" / n).resolve()) for n in ("x.nii.gz", "y.nii.gz")]
    assert table["age"].tolist() == [70, 72]


def test_manifest_duplicate_subject_refused(tmp_path):
    manifest = tmp_path / "m.csv"
    manifest.write_text("subject,path\nP1,a/t1.nii.gz\nP1,b/t1.nii.gz\n")
    with pytest.raises(TableError, match="same subject"):
        discover_inputs(manifest)


def test_manifest_without_path_column(tmp_path):
    manifest = tmp_path / "m.csv"
    manifest.write_text("subject,image\nP1,a.nii\n")
    with pytest.raises(TableError, match="path column"):
        discover_inputs(manifest)


def test_missing_source(tmp_path):
    with pytest.raises(TableError, match="does not exist"):
        discover_inputs(tmp_path / "nothing")
    with pytest.raises(TableError, match="No NIfTI"):
        discover_inputs(str(tmp_path / "*.nii.gz"))


def test_bids_sessions_tsv_carries_dates_and_ages_per_session(bids):
    (bids / "sub-02/sub-02_sessions.tsv").write_text(
        "session_id\tacq_time\tage\nses-1\t2012-03-01T10:00:00\t80.5\nses-2\t2015-04-02T09:30:00\t83.6\n")
    table = discover_inputs(bids)
    assert table["acq_time"].tolist()[1:] == ["2012-03-01T10:00:00", "2015-04-02T09:30:00"]
    assert pd.isna(table["acq_time"].iloc[0])
    # the session's age wins; the participant's moves aside
    assert table["age"].tolist()[1:] == [80.5, 83.6] and table["participants_age"].tolist() == [71, 80.5, 80.5]
    (bids / "sub-02/sub-02_sessions.tsv").write_text("session_id\tage\nses-1\t80\nses-1\t81\n")
    with pytest.raises(TableError, match="ses-1 twice"):
        discover_inputs(bids)
    (bids / "sub-02/sub-02_sessions.tsv").write_text("session\tage\n1\t80\n")
    with pytest.raises(TableError, match="no session_id column"):
        discover_inputs(bids)


def test_select_participants_and_sessions_with_or_without_prefix(bids):
    table = discover_inputs(bids)
    assert select_inputs(table, ["sub-02"])["stem"].tolist() == ["sub-02_ses-1_T1w", "sub-02_ses-2_T1w"]
    assert select_inputs(table, ["01", "sub-02"], ["ses-2"])["stem"].tolist() == ["sub-02_ses-2_T1w"]
    assert select_inputs(table, None, [])["stem"].tolist() == table["stem"].tolist()
    with pytest.raises(OptionError, match=r"--participant-label sub-03 matches no T1 in .* \(it has sub-01, sub-02\)"):
        select_inputs(table, ["01", "03"], source=str(bids))
    with pytest.raises(OptionError, match="--session-label ses-3 matches no T1"):
        select_inputs(table, ["02"], ["3"])
