"""Is this a brain T1? The content check refuses FLAIR, T2/PD-like images, noise and boxes, and
passes T1 phantoms and the real heads."""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pytest

from tests.conftest import REAL_T1_DIR
from wmhkit.errors import InputImageError
from wmhkit.preprocess import MNIAlignment, PreparedT1, check_brain_t1, prepare_t1
from wmhkit.preprocess.content_check import (
    ETIV_RANGE_ML,
    GM_CSF_CONTRAST_MIN,
    QUALITY_FLOOR,
    WM_GM_CONTRAST_MIN,
    content_reasons,
    tissue_statistics,
)
from wmhkit.preprocess.templates import TEMPLATE_AFFINE, template_data

REAL_HEADS = ("1p75mm", "conformed_1mm", "0p7mm_studyforrest", "1mm_colin27")


def _template_image(wm: float, gm: float, csf: float, *, seed: int = 0) -> np.ndarray:
    """Tissue intensities painted on the 2 mm template grid, with noise (MNI coordinates)."""
    data = wm * template_data("wm") + gm * template_data("gm") + csf * template_data("csf")
    data = data[::2, ::2, ::2] * 1000
    return data + np.random.default_rng(seed).normal(0, 20, data.shape) * (data > 0)


_AFFINE_2MM = TEMPLATE_AFFINE @ np.diag([2.0, 2.0, 2.0, 1.0])


def _prepared(data: np.ndarray, *, quality: float = 0.9, etiv_ml: float = 1500.0) -> PreparedT1:
    img = nib.Nifti1Image(data.astype(np.float32), _AFFINE_2MM)
    img._wmhkit_source = "sub-01_T1w.nii.gz"  # noqa: SLF001 - named in the message like a file
    alignment = MNIAlignment(np.eye(4), quality, "given")
    return PreparedT1(img, alignment, img, etiv_ml, None, {}, (0.0, float(data.max())))


@pytest.mark.parametrize(("name", "levels", "passes"), [
    ("t1", (1.0, 0.6, 0.2), True),
    ("t1_low_contrast", (1.0, 0.8, 0.3), True),
    ("flair", (1.0, 1.3, 0.15), False),
    ("t2", (0.4, 0.55, 1.0), False),
    ("pd", (0.8, 1.0, 0.85), False),
    ("bright_csf_t1", (1.0, 0.6, 0.65), False),
    ("flat", (1.0, 1.0, 1.0), False),
])
def test_contrast_rule_on_painted_templates(name, levels, passes):
    stats = tissue_statistics(_template_image(*levels), _AFFINE_2MM, np.eye(4), 0.0)
    assert stats["inside"] == 1.0
    assert (not content_reasons(stats, 0.9, 1500.0)) is passes, stats


def test_brain_rules_quality_etiv_and_field_of_view():
    good = {"inside": 1.0, "wm_gm_contrast": 0.3, "gm_csf_contrast": 0.4}
    assert content_reasons(good, QUALITY_FLOOR, ETIV_RANGE_ML[0]) == []
    assert "alignment quality 0.20" in content_reasons(good, 0.2, 1500.0)[0]
    assert "208 mL" in content_reasons(good, 0.9, 208.0)[0]
    assert "4239 mL" in content_reasons(good, 0.9, 4239.0)[0]
    assert "field of view" in content_reasons({**good, "inside": 0.3}, 0.9, 1500.0)[0]
    assert len(content_reasons({"inside": 1.0, "wm_gm_contrast": float("nan"), "gm_csf_contrast": float("nan")},
                               0.9, 1500.0)) == 2  # NaN (no contrast at all) never passes


def test_refusal_is_one_sentence_naming_the_file_and_force_records_the_override(caplog):
    flair = _prepared(_template_image(1.0, 1.3, 0.15))
    with pytest.raises(InputImageError) as refused:
        check_brain_t1(flair)
    message = str(refused.value)
    assert message.startswith("Input image sub-01_T1w.nii.gz does not look like a brain T1 (or its alignment to MNI "
                              "failed): white matter is not brighter")
    assert "--force" in message and message.endswith(".") and "\n" not in message
    record = check_brain_t1(flair, force=True)
    assert record["passed"] is False and record["forced"] is True and record["reasons"]
    assert record["wm_gm_contrast"] < WM_GM_CONTRAST_MIN
    assert "processed anyway" in caplog.text
    json.dumps(record)  # goes into <stem>_wmh.json as is
    good = check_brain_t1(_prepared(_template_image(1.0, 0.6, 0.2)))
    assert good["passed"] is True and good["forced"] is False and good["reasons"] == []
    assert good["gm_csf_contrast"] > GM_CSF_CONTRAST_MIN
    assert good["rules"]["alignment_quality_floor"] == QUALITY_FLOOR


def _refused_by_cli(path, out, capsys, *extra) -> str:
    from wmhkit.cli import main

    code = main(["segment", str(path), "--out", str(out), "--method", "baseline", "--no-regions", *extra])
    captured = capsys.readouterr()
    errors = [line for line in captured.err.splitlines() if line.startswith("wmhkit: error:")]
    assert code == 2 and len(errors) == 1 and "Traceback" not in captured.err, captured.err
    assert not out.exists() or not any(out.iterdir())
    return errors[0]


def test_flair_given_as_t1_is_refused_and_forced_on_demand(tmp_path, capsys):
    from wmhkit.cli import main
    from wmhkit.synth import make_phantom

    path = tmp_path / "sub-01_T1w.nii.gz"
    nib.save(make_phantom(7, voxel_size_mm=2.0).flair, str(path))
    line = _refused_by_cli(path, tmp_path / "out", capsys)
    assert "sub-01_T1w.nii.gz does not look like a brain T1" in line and "white matter" in line
    assert main(["segment", str(path), "--out", str(tmp_path / "out"), "--method", "baseline", "--no-regions",
                 "--force"]) == 0
    summary = json.loads((tmp_path / "out" / "sub-01_wmh.json").read_text())
    assert summary["content_check"]["forced"] is True and summary["content_check"]["passed"] is False


@pytest.mark.parametrize("kind", ["noise", "box"])
def test_noise_and_constant_box_are_refused(kind, tmp_path, capsys):
    rng = np.random.default_rng(5)
    affine = np.diag([2.0, 2.0, 2.0, 1.0])
    affine[:3, 3] = [-96.0, -120.0, -90.0]
    if kind == "noise":
        data = rng.normal(100, 20, (96, 120, 100)).astype(np.float32)
    else:
        data = np.zeros((96, 120, 100), np.float32)
        data[20:76, 25:95, 20:80] = 500
    path = tmp_path / f"{kind}.nii.gz"
    nib.save(nib.Nifti1Image(data, affine), str(path))
    with pytest.warns(UserWarning):  # the alignment's own quality warning
        line = _refused_by_cli(path, tmp_path / "out", capsys)
    assert "does not look like a brain T1" in line


@pytest.mark.slow
@pytest.mark.parametrize("seed", [7000, 7001, 7002, 7003])
def test_phantoms_of_every_contrast(seed):
    from wmhkit.synth import make_phantom

    phantom = make_phantom(seed, voxel_size_mm=2.0, skull=seed % 2 == 1, lesion_burden=float(seed % 3))
    t1 = check_brain_t1(prepare_t1(phantom.t1, mni_t1=False))
    assert t1["passed"] and t1["wm_gm_contrast"] > 2 * WM_GM_CONTRAST_MIN and t1["gm_csf_contrast"] > 2 * GM_CSF_CONTRAST_MIN
    with pytest.raises(InputImageError, match="white matter is not brighter"):
        check_brain_t1(prepare_t1(phantom.flair, mni_t1=False))


@pytest.mark.slow
@pytest.mark.real_data
@pytest.mark.parametrize("name", REAL_HEADS)
def test_real_heads_pass_with_margin(name):
    path = REAL_T1_DIR / f"head_t1_{name}.nii.gz"
    if not path.exists():
        pytest.skip(f"real T1 {path} is absent (../shared not beside the checkout)")
    record = check_brain_t1(prepare_t1(path, mni_t1=False))
    assert record["passed"]
    assert record["wm_gm_contrast"] > 2 * WM_GM_CONTRAST_MIN and record["gm_csf_contrast"] > 2 * GM_CSF_CONTRAST_MIN
    assert record["alignment_quality"] > QUALITY_FLOOR + 0.2
    assert ETIV_RANGE_ML[0] * 1.5 < record["etiv_ml"] < ETIV_RANGE_ML[1] / 1.3
