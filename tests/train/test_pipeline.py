"""``wmhkit train`` end to end on a small 2 mm phantom given as a user manifest."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from wmhkit.cli import main
from wmhkit.segmentation.network import load_checkpoint, predict_volume
from wmhkit.synth import make_phantom
from wmhkit.train.cases import load_case

TINY_SETTINGS = [
    "--set", 'network={"base_channels": 4, "levels": 2, "in_slices": 3}',
    "--set", "training.patch_size=[32,32,8]", "--set", "training.batch_patches=1",
    "--set", "training.validate_every=2", "--set", "training.checkpoint_every=2",
    "--set", "training.warmup_steps=1", "--set", "data.validation_phantoms=0", "--workers", "0", "--threads", "1",
]


@pytest.fixture(scope="module")
def phantom_manifest(tmp_path_factory):
    folder = tmp_path_factory.mktemp("manifest")
    phantom = make_phantom(11, voxel_size_mm=2.0, lesion_burden=2.0)
    paths = phantom.save(folder, stem="p11")
    np.savetxt(folder / "identity.txt", np.eye(4))
    manifest = folder / "cases.csv"
    pd.DataFrame({"case_id": ["p11"], "t1": [paths["t1"].name], "flair": [paths["flair"].name],
                  "label": [paths["flair_label"].name], "transform": ["identity.txt"]}).to_csv(manifest, index=False)
    return manifest


@pytest.mark.slow
def test_train_from_manifest_cli(phantom_manifest, tmp_path, capsys):
    out = tmp_path / "run"
    code = main(["train", "--manifest", str(phantom_manifest), "--out", str(out), "--steps", "2", *TINY_SETTINGS])
    assert code == 0, capsys.readouterr().err
    assert (out / "model.pt").is_file() and (out / "config.json").is_file()
    cases = pd.read_csv(out / "cases.tsv", sep="\t")
    assert cases["case_id"].tolist() == ["p11"] and cases.loc[0, "registration_quality"] > 0.05
    case = load_case(cases.loc[0, "case_dir"])
    assert case.label.max() == 1.0 and len(case.lesion_points) > 0
    net, config, metadata = load_checkpoint(out / "model.pt")
    assert metadata["step"] == 2 and config["base_channels"] == 4
    assert predict_volume(net, np.asarray(case.t1)[:40, :40, :20]).shape == (40, 40, 20)
    # A finished run is not silently overwritten.
    assert main(["train", "--manifest", str(phantom_manifest), "--out", str(out), "--steps", "2", *TINY_SETTINGS]) == 2
    assert "--resume" in capsys.readouterr().err
    # Fine-tuning starts from the trained weights and keeps their architecture, whatever the config says.
    tuned = tmp_path / "tuned"
    code = main(["train", "--manifest", str(phantom_manifest), "--out", str(tuned), "--steps", "2",
                 "--init-from", str(out / "model.pt"), "--set", "training.lr=0", "--set", "training.weight_decay=0",
                 *_without_network(TINY_SETTINGS)])
    assert code == 0, capsys.readouterr().err
    tuned_net, tuned_config, _ = load_checkpoint(tuned / "model.pt")
    assert tuned_config["base_channels"] == 4 and tuned_config["in_slices"] == 3
    start = dict(net.named_parameters())
    # lr 0: the weights are exactly the starting model's (batch-norm statistics may move).
    assert all(np.array_equal(p.detach().numpy(), start[n].detach().numpy()) for n, p in tuned_net.named_parameters())
    assert main(["train", "--manifest", str(phantom_manifest), "--out", str(tmp_path / "x"),
                 "--init-from", str(tmp_path / "missing.pt"), *_without_network(TINY_SETTINGS)]) == 2
    assert "missing.pt" in capsys.readouterr().err


@pytest.mark.slow
def test_subject_space_run_keeps_its_own_cases(phantom_manifest, tmp_path, capsys):
    out, cache = tmp_path / "subject", tmp_path / "cache"
    code = main(["train", "--manifest", str(phantom_manifest), "--out", str(out), "--steps", "1", *TINY_SETTINGS,
                 "--set", 'data.space="subject"', "--set", f'data.cache_dir="{cache}"'])
    assert code == 0, capsys.readouterr().err
    case = load_case(cache / "p11")
    assert case.meta["space"] == "subject" and len(case.lesion_points) > 0
    assert case.t1.shape != load_case(_mni_case(phantom_manifest, tmp_path)).t1.shape
    assert load_checkpoint(out / "model.pt")[2]["space"] == "subject"
    # Fine-tuning a subject-space model stays in subject space (it reuses those cases).
    code = main(["train", "--manifest", str(phantom_manifest), "--out", str(tmp_path / "tuned"), "--steps", "1",
                 "--init-from", str(out / "model.pt"), *_without_network(TINY_SETTINGS),
                 "--set", f'data.cache_dir="{cache}"'])
    assert code == 0, capsys.readouterr().err
    assert load_checkpoint(tmp_path / "tuned" / "model.pt")[2]["space"] == "subject"
    # An MNI run must not silently reuse those cases.
    code = main(["train", "--manifest", str(phantom_manifest), "--out", str(tmp_path / "mni"), "--steps", "1",
                 *TINY_SETTINGS, "--set", f'data.cache_dir="{cache}"'])
    assert code == 2 and "cache_dir" in capsys.readouterr().err


def _mni_case(manifest, tmp_path):
    from wmhkit.train.pipeline import build_cases

    config = {"data": {"phantoms": 0, "real_anatomy_per_head": 0, "validation_phantoms": 0,
                       "validation_fraction": 0.0, "space": "mni"}, "training": {"seed": 0}}
    return build_cases(config, tmp_path / "mni_cache", manifest=manifest, progress=False)["case_dir"][0]


def _without_network(settings: list[str]) -> list[str]:
    """The tiny settings minus the network override (a fine-tuned run takes its starting model's)."""
    out, skip = [], False
    for i, item in enumerate(settings):
        if skip:
            skip = False
            continue
        if item == "--set" and settings[i + 1].startswith("network="):
            skip = True
            continue
        out.append(item)
    return out


def test_cli_needs_manifest_or_config(tmp_path, capsys):
    assert main(["train", "--out", str(tmp_path / "x")]) == 2
    assert "--manifest" in capsys.readouterr().err
    assert main(["train", "--config", "default", "--out", str(tmp_path / "x"), "--set", "training.nope=1"]) == 2
    assert "nope" in capsys.readouterr().err


def test_cases_built_by_other_code_are_reused_with_one_warning(phantom_manifest, tmp_path, caplog):
    import json
    import logging

    from wmhkit.io import code_fingerprint

    folder = tmp_path / "mni_cache" / "p11"
    _mni_case(phantom_manifest, tmp_path)
    info = json.loads((folder / "case.json").read_text())
    assert info["code_fingerprint"] == code_fingerprint()
    with caplog.at_level(logging.WARNING, logger="wmhkit.train.pipeline"):
        _mni_case(phantom_manifest, tmp_path)
    assert "other wmhkit code" not in caplog.text
    (folder / "case.json").write_text(json.dumps({**info, "code_fingerprint": "0" * 12}))
    stamp = (folder / "t1.npy").stat().st_mtime_ns
    with caplog.at_level(logging.WARNING, logger="wmhkit.train.pipeline"):
        _mni_case(phantom_manifest, tmp_path)
    assert caplog.text.count("1 of 1 cached cases") == 1 and "p11" in caplog.text
    assert (folder / "t1.npy").stat().st_mtime_ns == stamp  # reused, not rebuilt


def test_training_heads_leave_out_the_held_out_head(tmp_path):
    from wmhkit.synth.real_masks import HELD_OUT_HEADS
    from wmhkit.train.pipeline import training_heads

    for name in ["head_a", "head_b", *HELD_OUT_HEADS]:
        (tmp_path / f"{name}.nii.gz").write_bytes(b"")
    assert [h.name for h in training_heads(tmp_path, HELD_OUT_HEADS)] == ["head_a.nii.gz", "head_b.nii.gz"]
    assert len(training_heads(tmp_path)) == 3
    assert training_heads(tmp_path / "missing") == [] and training_heads(None) == []


def test_mask_placements_put_every_training_mask_on_several_heads(tmp_path):
    import nibabel as nib

    from wmhkit.synth.real_masks import HELD_OUT_MASKS
    from wmhkit.train.pipeline import _mask_placement_jobs
    from wmhkit.train.recipe import draw_acquisition

    train_names = ["ms_lesions_90", "ms_lesions_91", "ms_lesions_92", "ms_lesions_93"]
    for name in [*train_names, HELD_OUT_MASKS[0]]:
        nib.save(nib.Nifti1Image(np.zeros((4, 5, 6), np.uint8), np.eye(4)), tmp_path / f"{name}.nii.gz")
    heads = [tmp_path / f"head_{k}.nii.gz" for k in range(3)]
    options = {"real_mask_dir": str(tmp_path), "space": "subject"}
    data = {"real_mask_placements": 2, "phantom_seed_start": 100}
    jobs = _mask_placement_jobs(data, options, heads, tmp_path / "cache")
    fixed = [job[2]["real_mask_fixed"].split("/")[-1].split(".")[0] for job in jobs]
    assert sorted(fixed) == sorted(train_names * 2)
    seeds = [job[1][1] for job in jobs]
    assert len(set(seeds)) == len(jobs) and len({job[4] for job in jobs}) == len(jobs)
    for name in train_names:  # the two placements of a mask go to two different heads
        assert len({job[1][0] for job, f in zip(jobs, fixed) if f == name}) == 2
    # The named mask is the one drawn, even where the random share would have given none.
    drawn = draw_acquisition(seeds[0], {**options, "real_mask_share": 0.0, "real_mask_fixed": jobs[0][2]["real_mask_fixed"]})
    assert drawn["real_lesion_mask"] == jobs[0][2]["real_mask_fixed"]
    assert _mask_placement_jobs({**data, "real_mask_placements": 0}, options, heads, tmp_path) == []
