"""End to end on phantoms: outputs on the input grid, consistent volumes, robustness to geometry."""

from __future__ import annotations

import json
import warnings

import nibabel as nib
import numpy as np
import pytest
from scipy import ndimage

from wmhkit.errors import ModelError, OptionError
from wmhkit.io import code_fingerprint, file_sha256, voxel_volume_ml
from wmhkit.segmentation import SegmentationResult, available_models, load_model, segment, segment_file


def _data(img):
    return np.asanyarray(img.dataobj)


def _check_on_grid(result: SegmentationResult, img):
    for out in (result.mask, result.probseg, result.brain_mask):
        assert out.shape == img.shape[:3]
        np.testing.assert_allclose(out.affine, img.affine, atol=1e-5)
    assert result.mask.get_data_dtype() == np.uint8 and result.probseg.get_data_dtype() == np.float32
    mask, prob, brain = _data(result.mask), _data(result.probseg), _data(result.brain_mask)
    assert set(np.unique(mask)) <= {0, 1}
    assert prob.min() >= 0.0 and prob.max() <= 1.0
    thr = result.metadata["thresholds"]["probability"]
    assert (prob[mask > 0] >= thr).all()  # the mask is the thresholded probability (minus small lesions)
    assert not (mask.astype(bool) & ~brain.astype(bool)).any()
    assert result.lesion_ml == pytest.approx(mask.sum() * voxel_volume_ml(img))


@pytest.fixture(scope="module")
def baseline_result(phantom_2mm):
    return segment(phantom_2mm.t1, method="baseline")


def test_baseline_on_phantom(baseline_result, phantom_2mm):
    result = baseline_result
    _check_on_grid(result, phantom_2mm.t1)
    assert result.etiv_ml > 800
    assert result.metadata["model"]["name"] == "baseline"
    assert result.metadata["input"]["sha256"] and result.metadata["input"]["path"] is None
    assert set(result.metadata["timings_s"]) >= {"load", "prepare", "infer", "postprocess", "quantify", "total"}
    assert set(result.metadata["cpu_s"]) >= {"prepare", "infer", "postprocess", "total"}
    # What the baseline calls lesion lies at or next to true lesions (precision, not recall).
    truth = _data(phantom_2mm.lesion_mask) > 0
    found = _data(result.mask) > 0
    if found.any():
        near = ndimage.binary_dilation(truth, iterations=2)
        assert (found & near).sum() >= 0.5 * found.sum()
    assert result.lesions is not None and len(result.lesions) == result.metadata["lesion_count"]


def test_save_writes_exactly_the_outputs(baseline_result, phantom_2mm, tmp_path):
    paths = baseline_result.save(tmp_path / "out", stem="sub-01_T1w")
    names = sorted(p.name for p in (tmp_path / "out").iterdir())
    expected = ["sub-01_desc-brain_mask.nii.gz", "sub-01_desc-wmh_mask.nii.gz",
                "sub-01_desc-wmh_probseg.nii.gz", "sub-01_lesions.tsv", "sub-01_wmh.json"]
    if baseline_result.regions is not None:
        expected.append("sub-01_regions.tsv")
    assert names == sorted(expected)
    summary = json.loads(paths.summary_json.read_text())
    assert summary["lesion_ml"] == pytest.approx(baseline_result.lesion_ml, abs=1e-3)
    assert summary["thresholds"]["min_lesion_mm3"] == 5.0 and "write" in summary["timings_s"]
    assert summary["wmhkit_version"] and summary["model"]["version"]
    from importlib.metadata import version

    assert summary["code_fingerprint"] == code_fingerprint()
    assert summary["libraries"]["nibabel"] == version("nibabel") and "SimpleITK" in summary["libraries"]
    mask = nib.load(str(paths.wmh_mask))
    assert mask.get_data_dtype() == np.uint8
    np.testing.assert_allclose(mask.affine, phantom_2mm.t1.affine, atol=1e-5)
    np.testing.assert_array_equal(np.asanyarray(mask.dataobj), _data(baseline_result.mask))


def test_failed_save_leaves_nothing(baseline_result, tmp_path):
    broken = SegmentationResult(**{**baseline_result.__dict__, "lesions": object()})  # cannot be written
    with pytest.raises(Exception):
        broken.save(tmp_path / "out", stem="s")
    assert not any((tmp_path / "out").iterdir())


def test_save_never_overwrites_the_input(baseline_result, tmp_path):
    from wmhkit.errors import OutputError

    source = tmp_path / "s_desc-wmh_mask.nii.gz"
    nib.save(baseline_result.mask, str(source))
    before = file_sha256(source)
    result = SegmentationResult(**{**baseline_result.__dict__, "metadata": {**baseline_result.metadata, "input": {"path": str(source)}}})
    with pytest.raises(OutputError, match="overwrite the input"):
        result.save(tmp_path, stem="s")
    assert file_sha256(source) == before


@pytest.mark.slow
def test_segment_file_returns_the_json(phantom_2mm, tmp_path):
    path = tmp_path / "sub-02_T1w.nii.gz"
    nib.save(phantom_2mm.t1, str(path))
    summary = segment_file(path, tmp_path / "out", method="baseline", regions=False, threshold=0.6, min_lesion_mm3=10)
    assert summary["input"]["sha256"] == file_sha256(path)
    assert summary["thresholds"]["probability"] == 0.6 and summary["thresholds"]["min_lesion_mm3"] == 10.0
    written = json.loads((tmp_path / "out" / "sub-02_wmh.json").read_text())
    assert written["lesion_ml"] == summary["lesion_ml"] and "regions_tsv" not in written["outputs"]
    assert not (tmp_path / "out" / "sub-02_regions.tsv").exists()


@pytest.mark.slow
def test_tiny_model_runs(phantom_2mm, tiny_model_path):
    result = segment(phantom_2mm.t1, model=tiny_model_path, regions=False)
    _check_on_grid(result, phantom_2mm.t1)
    assert result.metadata["model"]["name"] == "tiny" and result.metadata["model"]["version"] == "test-0"
    # Nothing outside the white-matter envelope, whatever the (random) network says.
    assert _data(result.probseg)[_data(result.brain_mask) == 0].max() == 0.0


@pytest.mark.slow
def test_fine_input_runs_on_the_working_grid(phantom_2mm, tmp_path):
    """A 0.75 mm axis: the stages run on about 1 mm voxels, the outputs come back onto the input grid."""
    img = _resampled(phantom_2mm.t1, (2.0, 0.75, 2.0))
    path = tmp_path / "sub-03_T1w.nii.gz"
    nib.save(img, str(path))
    result = segment(path, method="baseline")
    _check_on_grid(result, img)  # lesion_ml is the written mask's volume
    meta = result.metadata
    sizes = np.sqrt((img.affine[:3, :3] ** 2).sum(axis=0))
    fov = img.shape[1] * sizes[1]  # the 0.75 mm axis: whole voxels of about 1 mm over the same field of view
    np.testing.assert_allclose(meta["working_voxel_mm"], [sizes[0], fov / round(fov), sizes[2]], atol=1e-3)
    assert meta["input"]["shape"] == list(img.shape) and meta["input"]["path"] == str(path)
    assert "to_input" in meta["timings_s"] and meta["timings_s"]["prepare_stages"]["working_grid"] >= 0
    # The tables are the working grid's: they sum to its lesion volume, which the JSON records beside lesion_ml.
    assert meta["regions_summary"]["lesion_ml"] == pytest.approx(meta["working_lesion_ml"], abs=1e-4)
    assert result.lesions["lesion_ml"].sum() == pytest.approx(meta["working_lesion_ml"], abs=1e-4)
    assert meta["brain_ml"] == pytest.approx(_data(result.brain_mask).sum() * voxel_volume_ml(img), abs=0.01)
    assert json.loads(result.save(tmp_path / "out").summary_json.read_text())["lesion_ml"] == round(result.lesion_ml, 4)


def test_inputs_at_1mm_and_coarser_are_not_resampled(baseline_result):
    meta = baseline_result.metadata
    assert meta["working_voxel_mm"] is None and meta["working_lesion_ml"] is None
    assert "to_input" not in meta["timings_s"] and "working_grid" not in meta["timings_s"]["prepare_stages"]


def test_bad_options(phantom_2mm):
    with pytest.raises(OptionError, match="--method"):
        segment(phantom_2mm.t1, method="magic")
    with pytest.raises(OptionError, match="--threshold"):
        segment(phantom_2mm.t1, method="baseline", threshold=1.5)


def test_missing_default_model_is_explained(phantom_2mm):
    if "default" in available_models():
        pytest.skip("the default model is installed")
    with pytest.raises(ModelError, match="--method baseline"):
        segment(phantom_2mm.t1)


def _reoriented(img, codes):
    from nibabel.orientations import apply_orientation, axcodes2ornt, inv_ornt_aff, io_orientation, ornt_transform

    data = _data(img)
    transform = ornt_transform(io_orientation(img.affine), axcodes2ornt(codes))
    return nib.Nifti1Image(apply_orientation(data, transform), img.affine @ inv_ornt_aff(transform, data.shape))


def _rotated(img, degrees):
    angle = np.deg2rad(degrees)
    rotation = np.eye(4)
    rotation[1:3, 1:3] = [[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]]
    return nib.Nifti1Image(_data(img), rotation @ img.affine)


@pytest.mark.slow
@pytest.mark.parametrize("variant", ["LAS", "LIA", "RAS", "oblique"])
def test_orientations_give_the_same_answer(phantom_2mm, baseline_result, variant):
    img = _rotated(phantom_2mm.t1, 15.0) if variant == "oblique" else _reoriented(phantom_2mm.t1, variant)
    result = segment(img, method="baseline", regions=False)
    _check_on_grid(result, img)
    assert result.etiv_ml == pytest.approx(baseline_result.etiv_ml, rel=0.05)
    assert result.lesion_ml == pytest.approx(baseline_result.lesion_ml, rel=0.35, abs=0.3)


@pytest.mark.slow
@pytest.mark.parametrize("dtype", [np.uint8, np.int16, np.float64])
def test_dtypes(phantom_2mm, baseline_result, dtype):
    data = _data(phantom_2mm.t1).astype(np.float64)
    top = 250.0 if dtype == np.uint8 else 3000.0
    scaled = (data - data.min()) / (data.max() - data.min()) * top
    img = nib.Nifti1Image(np.round(scaled).astype(dtype) if dtype != np.float64 else scaled, phantom_2mm.t1.affine)
    result = segment(img, method="baseline", regions=False)
    _check_on_grid(result, img)
    assert result.lesion_ml == pytest.approx(baseline_result.lesion_ml, rel=0.35, abs=0.3)


def _resampled(img, voxel_mm):
    from wmhkit.preprocess.resampling import resample_array

    sizes = np.sqrt((img.affine[:3, :3] ** 2).sum(axis=0))
    extent = sizes * np.array(img.shape)
    voxel_mm = np.broadcast_to(np.asarray(voxel_mm, float), (3,))
    shape = tuple(int(n) for n in np.floor(extent / voxel_mm))
    affine = img.affine.copy()
    affine[:3, :3] = img.affine[:3, :3] / sizes * voxel_mm
    return nib.Nifti1Image(resample_array(_data(img).astype(np.float32), img.affine, shape, affine, order=1), affine)


@pytest.mark.slow
@pytest.mark.parametrize("voxel_mm", [0.7, 1.5, (1.0, 1.0, 3.0)], ids=["0.7mm", "1.5mm", "1x1x3mm"])
def test_resolutions(phantom_2mm, voxel_mm):
    img = _resampled(phantom_2mm.t1, voxel_mm)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # 0.7-3 mm inputs are valid: no warning
        result = segment(img, method="baseline", regions=False)
    _check_on_grid(result, img)
    truth = _data(phantom_2mm.lesion_mask) > 0
    assert result.lesion_ml < 3 * truth.sum() * voxel_volume_ml(phantom_2mm.t1) + 0.5


@pytest.mark.slow
def test_skull_on_phantom(phantom_2mm_skull):
    result = segment(phantom_2mm_skull.t1, method="baseline")
    _check_on_grid(result, phantom_2mm_skull.t1)
    brain = _data(phantom_2mm_skull.brain_mask) > 0
    found = _data(result.mask) > 0
    assert not (found & ~ndimage.binary_dilation(brain, iterations=1)).any()  # never in skull or scalp


@pytest.mark.slow
@pytest.mark.real_data
@pytest.mark.parametrize("which", ["real_t1_1p75mm", "real_t1_1mm"])
def test_real_heads_end_to_end(request, which, tiny_model_path, tmp_path):
    path = request.getfixturevalue(which)
    img = nib.load(str(path))
    baseline = segment(path, method="baseline")
    _check_on_grid(baseline, img)
    assert baseline.lesion_ml <= 2.0  # healthy heads
    assert baseline.alignment.quality > 0.5
    model = "default" if "default" in available_models() else tiny_model_path
    result = segment(path, model=model, regions=False)
    _check_on_grid(result, img)
    if model == "default":
        assert result.lesion_ml <= 2.0  # the shipped model's false positives on healthy heads
    paths = result.save(tmp_path)
    assert json.loads(paths.summary_json.read_text())["input"]["sha256"] == file_sha256(path)


def test_envelope_slices_match_the_whole_box(tiny_model_path):
    from wmhkit.anatomy.atlas import wm_envelope_mni
    from wmhkit.preprocess.templates import MNI_BRAIN_BOX
    from wmhkit.segmentation.inference import predict_envelope_slices
    from wmhkit.segmentation.models import load_model
    from wmhkit.segmentation.network import predict_volume

    loaded = load_model(tiny_model_path)
    rng = np.random.default_rng(0)
    box = MNI_BRAIN_BOX
    envelope = wm_envelope_mni()[box][:, :, ::4]  # a thinner stack keeps the test fast
    volume = rng.random(envelope.shape).astype(np.float32)
    fast = predict_envelope_slices(loaded.net, volume, envelope, "cpu")
    full = predict_volume(loaded.net, volume)
    np.testing.assert_allclose(fast[envelope], full[envelope], atol=1e-6)


@pytest.mark.slow
def test_the_model_declares_its_threshold(phantom_2mm, tiny_model_path, tmp_path):
    from wmhkit.train.export import export_model

    declared = export_model(tiny_model_path, tmp_path / "tuned.pt", name="tuned", version="t-1",
                            metadata={"threshold": 0.7})
    result = segment(phantom_2mm.t1, model=declared, regions=False)
    assert result.metadata["thresholds"]["probability"] == 0.7
    assert (_data(result.probseg)[_data(result.mask) > 0] >= 0.7).all()
    chosen = segment(phantom_2mm.t1, model=declared, regions=False, threshold=0.3)
    assert chosen.metadata["thresholds"]["probability"] == 0.3
    assert segment(phantom_2mm.t1, method="baseline", regions=False).metadata["thresholds"]["probability"] == 0.5


def test_the_model_declares_flip_averaging(phantom_2mm, random_checkpoint):
    plain_path = random_checkpoint("plain.pt", 3, version="p-1")
    declared = random_checkpoint("flip.pt", 3, version="f-1", flip_average=True, flip_threshold=0.7)
    plain = segment(phantom_2mm.t1, model=plain_path, regions=False)
    assert plain.metadata["flip_average"] is False
    flipped = segment(phantom_2mm.t1, model=declared, regions=False)
    assert flipped.metadata["flip_average"] is True
    assert flipped.metadata["thresholds"]["probability"] == 0.7  # the threshold declared for flip averaging
    assert plain.metadata["thresholds"]["probability"] == 0.5
    # The tiny random model is not mirror-symmetric: averaging changes the map.
    assert np.abs(_data(flipped.probseg) - _data(plain.probseg)).max() > 1e-5
    forced_off = segment(phantom_2mm.t1, model=declared, regions=False, flip_average=False)
    assert forced_off.metadata["flip_average"] is False
    assert forced_off.metadata["thresholds"]["probability"] == 0.5
    assert np.allclose(_data(forced_off.probseg), _data(plain.probseg), atol=1e-6)


def test_the_model_declares_a_peak_probability(phantom_2mm, random_checkpoint):
    plain_path = random_checkpoint("plain.pt", 3, version="p-1")
    plain = segment(phantom_2mm.t1, model=plain_path, regions=False, threshold=0.3, max_cortex_contact=1)
    probability, plain_mask = _data(plain.probseg), _data(plain.mask) > 0
    assert plain.metadata["thresholds"]["min_peak_probability"] is None
    # A peak between the weakest and the strongest lesion's maximum: some lesions go, none are cut.
    from scipy import ndimage
    labels, count = ndimage.label(plain_mask, structure=np.ones((3, 3, 3)))
    peaks = ndimage.maximum(probability, labels, index=np.arange(1, count + 1))
    assert count >= 2 and peaks.min() < peaks.max()
    peak = float((peaks.min() + peaks.max()) / 2)
    declared = random_checkpoint("peak.pt", 3, version="k-1", peak_threshold=peak)
    ruled = segment(phantom_2mm.t1, model=declared, regions=False, threshold=0.3, max_cortex_contact=1)
    assert ruled.metadata["thresholds"]["min_peak_probability"] == pytest.approx(peak)
    ruled_mask = _data(ruled.mask) > 0
    assert np.array_equal(ruled_mask, np.isin(labels, 1 + np.flatnonzero(peaks >= peak)))
    assert 0 < ruled.lesion_ml < plain.lesion_ml
    off = segment(phantom_2mm.t1, model=declared, regions=False, threshold=0.3, max_cortex_contact=1,
                  min_peak_probability=0)
    assert np.array_equal(_data(off.mask) > 0, plain_mask)


@pytest.mark.slow
@pytest.mark.parametrize("space", ["subject", "mni"])
def test_cortex_contact_rule_only_removes(phantom_2mm, random_checkpoint, space):
    path = random_checkpoint("plain.pt", 3, version="p-1")
    off = segment(phantom_2mm.t1, model=path, regions=False, space=space, threshold=0.3, max_cortex_contact=1)
    ruled = segment(phantom_2mm.t1, model=path, regions=False, space=space, threshold=0.3)
    assert off.metadata["thresholds"]["cortex_attached_ml"] == 0.0
    thresholds = ruled.metadata["thresholds"]
    assert thresholds["max_cortex_contact"] == 0.2 and thresholds["cortex_attached_ml"] > 0
    removed = (_data(off.mask) > 0) & ~(_data(ruled.mask) > 0)
    assert removed.any() and not ((_data(ruled.mask) > 0) & ~(_data(off.mask) > 0)).any()
    assert "max_cortex_contact" not in segment(phantom_2mm.t1, method="baseline", regions=False).metadata["thresholds"]
    with pytest.raises(OptionError, match="--max-cortex-contact"):
        segment(phantom_2mm.t1, model=path, max_cortex_contact=2)


@pytest.mark.slow
def test_speck_rule_removes_the_perivascular_spaces_the_model_marks():
    """The shipped model marks CSF-dark tubes drawn into a 1 mm phantom; the speck rule takes
    half or more of that back, and only removes (never adds) lesion voxels. What else it removes
    is reported in the model card, not asserted: with model 0.11.0 most of it lies away from the
    spaces."""
    import nibabel as nib
    from scipy import ndimage

    from wmhkit.synth import TISSUE_LABELS, make_phantom
    from wmhkit.synth.pvs import add_perivascular_spaces

    phantom = make_phantom(seed=21, voxel_size_mm=1.0, lesion_burden=0.5)
    wm = nib.Nifti1Image((_data(phantom.tissue) == TISSUE_LABELS["wm"]).astype(np.uint8), phantom.t1.affine)
    t1, spaces, _ = add_perivascular_spaces(phantom.t1, wm, count=150, seed=1, keep_out_mask=phantom.lesion_mask)
    ruled = segment(t1, regions=False, max_speck_mm3=30)
    off = segment(t1, regions=False)  # off unless asked
    assert ruled.metadata["thresholds"]["max_speck_mm3"] == 30.0 and off.metadata["thresholds"]["max_speck_mm3"] == 0.0
    assert off.metadata["thresholds"]["csf_dark_specks_ml"] == 0.0
    on_mask, off_mask = _data(ruled.mask) > 0, _data(off.mask) > 0
    assert not (on_mask & ~off_mask).any()
    removed = off_mask & ~on_mask
    near_spaces = ndimage.binary_dilation(_data(spaces) > 0, iterations=2)
    assert ruled.metadata["thresholds"]["csf_dark_specks_ml"] > 0
    assert (off_mask & near_spaces).any()
    assert (removed & near_spaces).sum() >= 0.5 * (off_mask & near_spaces).sum()
    with pytest.raises(OptionError, match="--max-speck-mm3"):
        segment(t1, max_speck_mm3=-1)


@pytest.mark.slow
def test_a_threshold_above_the_models_only_removes(phantom_2mm):
    if "default" not in available_models():
        pytest.skip("the default model is not installed")
    own = segment(phantom_2mm.t1, regions=False)
    assert own.metadata["thresholds"]["cortex_attached_ml"] > 0  # the rule is at work on this phantom
    own_mask = _data(own.mask) > 0
    own_threshold = load_model("default").threshold
    for higher in (own_threshold + (1 - own_threshold) / 4, own_threshold + (1 - own_threshold) / 2):
        stricter = _data(segment(phantom_2mm.t1, regions=False, threshold=higher).mask) > 0
        assert stricter.any() and not (stricter & ~own_mask).any()  # judged at the model's own threshold


@pytest.mark.slow
def test_the_model_declares_where_the_cortex_rule_judges(phantom_2mm, tmp_path):
    if "default" not in available_models():
        pytest.skip("the default model is not installed")
    from wmhkit.segmentation.models import load_model, model_path
    from wmhkit.train.export import export_model

    shipped = load_model("default")
    if shipped.cortex_judge_threshold >= shipped.threshold:
        pytest.skip("the default model judges cortex contact at its own threshold")
    judge_at, threshold = shipped.cortex_judge_threshold, shipped.threshold
    undeclared = export_model(model_path("default"), tmp_path / "undeclared.pt", name="undeclared", version="u-1",
                              metadata={"cortex_judge_threshold": 0})
    judged_low = segment(phantom_2mm.t1, regions=False)
    judged_own = segment(phantom_2mm.t1, model=undeclared, regions=False)
    assert judged_low.metadata["thresholds"]["cortex_judged_at"] == judge_at
    assert judged_own.metadata["thresholds"]["cortex_judged_at"] == threshold
    assert judged_low.metadata["thresholds"]["probability"] == threshold
    # Judged whole at the lower level, a candidate leaves only what the rule keeps there, cut at the threshold.
    at_judge_level = _data(segment(phantom_2mm.t1, regions=False, threshold=judge_at).mask) > 0
    kept = _data(judged_low.mask) > 0
    assert kept.any() and not (kept & ~at_judge_level).any()
