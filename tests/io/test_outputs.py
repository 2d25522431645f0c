"""Atomic writes, naming and guards against overwriting inputs."""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from wmhkit.errors import OutputError
from wmhkit.io import (
    atomic_path,
    bids_stem,
    check_img,
    file_sha256,
    img_sha256,
    output_paths,
    safe_output_path,
    save_img,
    sidecar_path,
    write_json,
    write_tsv,
)


def test_output_names_follow_design(tmp_path):
    paths = output_paths("/data/sub-01/ses-2/anat/sub-01_ses-2_T1w.nii.gz", tmp_path)
    names = {key: path.name for key, path in paths.all().items()}
    assert names == {
        "wmh_mask": "sub-01_ses-2_desc-wmh_mask.nii.gz",
        "wmh_probseg": "sub-01_ses-2_desc-wmh_probseg.nii.gz",
        "brain_mask": "sub-01_ses-2_desc-brain_mask.nii.gz",
        "summary_json": "sub-01_ses-2_wmh.json",
        "regions_tsv": "sub-01_ses-2_regions.tsv",
        "lesions_tsv": "sub-01_ses-2_lesions.tsv",
    }
    # BIDS derivatives drop the source's suffix (_T1w); other names are kept whole.
    assert output_paths("scans/case_01_T1w.nii.gz", tmp_path).wmh_mask.name == "case_01_T1w_desc-wmh_mask.nii.gz"
    assert output_paths("sub-01_desc-wmh_mask.nii.gz", tmp_path).regions_tsv.name == "sub-01_desc-wmh_mask_regions.tsv"
    assert paths.mni_mask.name == "sub-01_ses-2_space-MNI152NLin2009aSym_desc-wmh_mask.nii.gz"
    assert sidecar_path(paths.mni_mask).name == "sub-01_ses-2_space-MNI152NLin2009aSym_desc-wmh_mask.json"
    assert all(path.parent == tmp_path for path in paths.all().values())
    assert bids_stem("x.MGZ") == "x"


def test_atomic_write_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "out" / "table.tsv"
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("killed mid-write")
    assert not target.exists()
    assert list((tmp_path / "out").iterdir()) == []


def test_atomic_write_replaces_whole_file(tmp_path, head_img):
    target = save_img(head_img, tmp_path / "img.nii.gz")
    assert check_img(target).shape == head_img.shape
    write_json({"lesion_ml": np.float32(1.5), "n": np.int64(3), "arr": np.arange(2)}, tmp_path / "s.json")
    assert json.loads((tmp_path / "s.json").read_text()) == {"lesion_ml": 1.5, "n": 3, "arr": [0, 1]}
    write_tsv(pd.DataFrame({"region": ["a", "b"], "lesion_ml": [0.1, None]}), tmp_path / "t.tsv")
    assert (tmp_path / "t.tsv").read_text().splitlines() == ["region\tlesion_ml", "a\t0.1", "b\tn/a"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["img.nii.gz", "s.json", "t.tsv"]


def test_refuses_outside_folder_and_input_overwrite(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(OutputError, match="outside the output folder"):
        safe_output_path(out / ".." / "escape.nii.gz", out)
    source = out / "sub-01_T1w.nii.gz"
    with pytest.raises(OutputError, match="overwrite the input"):
        safe_output_path(source, out, inputs=(source,))
    assert safe_output_path(out / "sub-01_T1w_wmh.json", out, inputs=(source,)).name == "sub-01_T1w_wmh.json"


def test_hashes_use_source_file(tmp_path, head_img):
    path = save_img(head_img, tmp_path / "h.nii.gz")
    assert img_sha256(check_img(path)) == file_sha256(path)
    in_memory = img_sha256(head_img)
    assert in_memory == img_sha256(nib.Nifti1Image(np.asarray(head_img.dataobj).copy(), head_img.affine))
    assert in_memory != file_sha256(path)
