"""The derivatives folder is BIDS: dataset files, a sidecar per image, and the BIDS validator's verdict."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import nibabel as nib
import numpy as np
import pytest

from wmhkit import __version__
from wmhkit.cohort.derivatives import BIDSIGNORE, write_dataset_description, write_sidecars
from wmhkit.io import OutputPaths, save_img

_VALIDATOR = "import sys; from bids_validator_deno import cli; sys.argv[0] = 'bids-validator'; cli()"


def _validate(folder) -> tuple[int, list[dict]]:
    """Run the BIDS validator (bids-validator-deno, offline) on ``folder``: exit code and issues."""
    pytest.importorskip("bids_validator_deno", reason="bids-validator-deno is not installed (dev extra)")
    result = subprocess.run([sys.executable, "-c", _VALIDATOR, str(folder), "--format", "json"],
                            capture_output=True, text=True, timeout=300)
    assert result.stdout.strip(), result.stderr
    return result.returncode, json.loads(result.stdout)["issues"]["issues"]


def test_sidecars_name_their_sources(tmp_path):
    paths = OutputPaths(tmp_path / "sub-01" / "anat", "sub-01_T1w")
    image = nib.Nifti1Image(np.zeros((5, 6, 7), np.uint8), np.eye(4))
    for name in ("wmh_mask", "wmh_probseg", "brain_mask", "mni_mask"):
        save_img(image, getattr(paths, name))
    source = "bids:raw:sub-01/anat/sub-01_T1w.nii.gz"
    written = write_sidecars(paths, source, "sub-01/anat")
    assert sorted(p.name for p in written) == [
        "sub-01_desc-brain_mask.json", "sub-01_desc-wmh_mask.json", "sub-01_desc-wmh_probseg.json",
        "sub-01_space-MNI152NLin2009aSym_desc-wmh_mask.json"]  # no MNI probability map here: no sidecar
    sidecars = {p.name: json.loads(p.read_text()) for p in written}
    mask = sidecars["sub-01_desc-wmh_mask.json"]
    assert mask["Type"] == "Lesion" and mask["Sources"] == [source] and mask["SpatialReference"] == source
    assert sidecars["sub-01_desc-brain_mask.json"]["Type"] == "Brain"
    assert "Type" not in sidecars["sub-01_desc-wmh_probseg.json"]
    mni = sidecars["sub-01_space-MNI152NLin2009aSym_desc-wmh_mask.json"]
    assert mni["Sources"] == ["bids::sub-01/anat/sub-01_desc-wmh_mask.nii.gz"]


def test_dataset_description_links_a_bids_source(tmp_path):
    bids = tmp_path / "bids"
    bids.mkdir()
    write_dataset_description(tmp_path / "deriv", str(bids), bids_root=bids)
    description = json.loads((tmp_path / "deriv" / "dataset_description.json").read_text())
    assert description["DatasetType"] == "derivative" and description["GeneratedBy"][0]["Version"] == __version__
    assert description["DatasetLinks"] == {"raw": bids.resolve().as_uri()}
    assert (tmp_path / "deriv" / ".bidsignore").read_text().split() == list(BIDSIGNORE)
    assert __version__ in (tmp_path / "deriv" / "README.md").read_text()
    write_dataset_description(tmp_path / "other", "/data/*/t1.nii.gz")  # a glob: no link
    assert "DatasetLinks" not in json.loads((tmp_path / "other" / "dataset_description.json").read_text())


@pytest.mark.slow
def test_cohort_output_passes_the_bids_validator(reference_run, tmp_path):
    """The reference run (two subjects, one with a session, one failed) validates with no error."""
    code, issues = _validate(reference_run.out_dir)
    errors = [issue for issue in issues if issue["severity"] == "error"]
    assert code == 0 and not errors, errors
    # The validator really reads derivative names: a raw suffix left in a mask's name is an error.
    copy = shutil.copytree(reference_run.out_dir, tmp_path / "deriv")
    mask = copy / "sub-01" / "anat" / "sub-01_desc-wmh_mask.nii.gz"
    mask.rename(mask.with_name("sub-01_T1w_desc-wmh_mask.nii.gz"))
    code, issues = _validate(copy)
    assert code != 0 and "FILENAME_MISMATCH" in {issue["code"] for issue in issues}
