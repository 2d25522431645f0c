"""``wmhkit segment``: good inputs processed, every bad input refused in one sentence (exit 2)."""

from __future__ import annotations

import gzip
import json
import struct
import subprocess
import sys

import nibabel as nib
import numpy as np
import pytest

from wmhkit.cli import main


def _head(rng, shape=(50, 60, 45), zoom=2.0):
    data = rng.normal(100.0, 10.0, size=shape).astype(np.float32)
    return nib.Nifti1Image(data, np.diag([zoom, zoom, zoom, 1.0]))


def _save(img, path):
    nib.save(img, str(path))
    return path


def _bad_pixdim(tmp_path, rng):
    head = _head(rng)
    img = nib.Nifti1Image(np.asarray(head.dataobj), head.affine)
    raw = bytearray(img.header.binaryblock) + bytearray(4) + bytearray(np.asarray(head.dataobj).tobytes())
    raw[80:84] = struct.pack("<f", 0.0)
    path = tmp_path / "pix.nii.gz"
    path.write_bytes(gzip.compress(bytes(raw)))
    return path


def _truncated(tmp_path, rng):
    full = _save(_head(rng), tmp_path / "full.nii.gz")
    cut = tmp_path / "cut.nii.gz"
    cut.write_bytes(full.read_bytes()[: full.stat().st_size // 2])
    full.unlink()
    return cut


def _with_voxel(tmp_path, rng, name, value):
    data = np.asarray(_head(rng).dataobj).copy()
    data[3, 4, 5] = value
    return _save(nib.Nifti1Image(data, np.diag([2.0, 2.0, 2.0, 1.0])), tmp_path / name)


BAD_INPUTS = {
    "missing": lambda tmp, rng: tmp / "nope.nii.gz",
    "empty": lambda tmp, rng: (tmp / "empty.nii.gz").write_bytes(b"") or tmp / "empty.nii.gz",
    "not_an_image": lambda tmp, rng: (tmp / "notes.nii").write_text("text " * 200) and tmp / "notes.nii",
    "wrong_suffix": lambda tmp, rng: (tmp / "scan.dcm").write_bytes(b"DICM" * 100) and tmp / "scan.dcm",
    "folder": lambda tmp, rng: (tmp / "adir.nii").mkdir() or tmp / "adir.nii",
    "truncated": _truncated,
    "2d": lambda tmp, rng: _save(nib.Nifti1Image(rng.random((40, 50)).astype(np.float32), np.eye(4)), tmp / "flat.nii.gz"),
    "4d": lambda tmp, rng: _save(
        nib.Nifti1Image(rng.random((50, 60, 45, 3)).astype(np.float32), np.diag([2, 2, 2, 1.0])), tmp / "four.nii.gz"
    ),
    "zero_voxel_size": _bad_pixdim,
    "nan": lambda tmp, rng: _with_voxel(tmp, rng, "nan.nii.gz", np.nan),
    "inf": lambda tmp, rng: _with_voxel(tmp, rng, "inf.nii.gz", np.inf),
    "constant": lambda tmp, rng: _save(
        nib.Nifti1Image(np.full((50, 60, 45), 7, np.int16), np.diag([2, 2, 2, 1.0])), tmp / "const.nii.gz"
    ),
    "too_small": lambda tmp, rng: _save(nib.Nifti1Image(rng.random((30, 40, 20)).astype(np.float32), np.eye(4)), tmp / "small.nii.gz"),
    "too_coarse": lambda tmp, rng: _save(
        nib.Nifti1Image(rng.random((20, 22, 18)).astype(np.float32), np.diag([7.0, 7.0, 7.0, 1.0])), tmp / "coarse.nii.gz"
    ),
}


@pytest.mark.parametrize("kind", sorted(BAD_INPUTS))
def test_bad_input_refused_in_one_sentence(kind, tmp_path, rng, capsys):
    (tmp_path / "in").mkdir()
    path = BAD_INPUTS[kind](tmp_path / "in", rng)
    out = tmp_path / "out"
    code = main(["segment", str(path), "--out", str(out), "--method", "baseline"])
    captured = capsys.readouterr()
    assert code == 2
    lines = [line for line in captured.err.splitlines() if line.startswith("wmhkit: error:")]
    assert len(lines) == 1 and "Traceback" not in captured.err
    assert lines[0].rstrip().endswith(".")
    assert not out.exists() or not any(out.iterdir())


def test_missing_model_file_refused(tmp_path, capsys):
    code = main(["segment", str(tmp_path / "x.nii.gz"), "--out", str(tmp_path / "o"), "--model", str(tmp_path / "m.pt")])
    assert code == 2 and "does not exist" in capsys.readouterr().err


def test_bad_threshold_refused(tmp_path, capsys):
    code = main(["segment", str(tmp_path / "x.nii.gz"), "--out", str(tmp_path / "o"), "--threshold", "2", "--method", "baseline"])
    assert code == 2 and "--threshold" in capsys.readouterr().err


@pytest.mark.slow
def test_one_bad_input_does_not_stop_the_others(phantom_2mm, tiny_model_path, tmp_path):
    good = tmp_path / "sub-01_T1w.nii.gz"
    nib.save(phantom_2mm.t1, str(good))
    bad = tmp_path / "sub-02_T1w.nii.gz"
    bad.write_bytes(b"")
    out = tmp_path / "out"
    proc = subprocess.run(
        [sys.executable, "-m", "wmhkit", "segment", str(bad), str(good), "--out", str(out),
         "--model", str(tiny_model_path), "--no-regions", "--flip-average"],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2, proc.stderr
    assert "sub-02_T1w.nii.gz is an empty file" in proc.stderr and "Traceback" not in proc.stderr
    summary = json.loads((out / "sub-01_wmh.json").read_text())
    assert summary["model"]["name"] == "tiny" and summary["flip_average"] is True
    assert not list(out.glob("sub-02*"))
    assert "mL WMH" in proc.stdout


def test_bad_cortex_contact_refused(tmp_path, capsys):
    code = main(["segment", str(tmp_path / "x.nii.gz"), "--out", str(tmp_path / "o"), "--max-cortex-contact", "1.5"])
    assert code == 2 and "--max-cortex-contact" in capsys.readouterr().err


def test_bad_speck_volume_refused(tmp_path, capsys):
    code = main(["segment", str(tmp_path / "x.nii.gz"), "--out", str(tmp_path / "o"), "--max-speck-mm3", "-3"])
    assert code == 2 and "--max-speck-mm3" in capsys.readouterr().err
