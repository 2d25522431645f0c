"""Header fuzzing: a corrupted NIfTI header of a valid head ends in a clean refusal (one sentence,
no output) or a correct result (a usable image, complete outputs), never a traceback, a hang or a
partial file.

Corruptions are seeded: random single bytes and runs of bytes anywhere in the 348-byte header
and the 4-byte extension flag, special values (0, -1, NaN, inf, huge) written into every field,
and truncations at every field boundary (plain and gzip-compressed). Every corrupted file goes
through :func:`wmhkit.io.check_img`; those it accepts with other voxels or another affine than the
intact file go through ``wmhkit segment`` end to end (a few by default, all of them when slow).
"""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from wmhkit.errors import InputImageError
from wmhkit.io import check_img, new_img_like

HEADER_BYTES = 348
#: The header, the extension flag after it, and where the voxels start in a single-file NIfTI.
FUZZ_BYTES = 352
_FIELDS = nib.Nifti1Header.template_dtype
#: (name, offset, numpy dtype of one element, element count) of every header field.
FIELDS = [
    (name, _FIELDS.fields[name][1], _FIELDS.fields[name][0].base, max(1, int(np.prod(_FIELDS.fields[name][0].shape))))
    for name in _FIELDS.names
]
_SPECIAL = {
    "f": [0.0, -1.0, np.nan, np.inf, -np.inf, 1e30, -1e30, 1e-30, 3.0],
    "i": [0, -1, 1, 7, 32767, -32768],
    "u": [0, 1, 4, 255],
    "S": [b"", b"\xff" * 4, b"n+2\x00", b"ni1\x00"],
}
#: Outputs of ``wmhkit segment --no-regions`` for a complete result.
_OUTPUTS = ("_desc-wmh_mask.nii.gz", "_desc-wmh_probseg.nii.gz", "_desc-brain_mask.nii.gz", "_wmh.json", "_lesions.tsv")


@pytest.fixture(scope="module")
def intact(tmp_path_factory):
    """A valid 2 mm phantom head as an uncompressed NIfTI: its bytes, voxels and affine."""
    from wmhkit.synth import make_phantom

    path = tmp_path_factory.mktemp("fuzz") / "head.nii"
    nib.save(make_phantom(3, voxel_size_mm=2.0).t1, str(path))
    checked = check_img(path)
    return path.read_bytes(), np.asanyarray(checked.dataobj).copy(), checked.affine.copy()


def random_corruptions(raw: bytes, seed: int, n: int):
    """``n`` seeded corruptions: one byte, or 2-8 bytes at random places, or a run of 2-16 bytes."""
    rng = np.random.default_rng(seed)
    for index in range(n):
        data = bytearray(raw)
        kind = ("single", "multi", "run")[index % 3]
        if kind == "single":
            data[int(rng.integers(0, FUZZ_BYTES))] = int(rng.integers(0, 256))
        elif kind == "multi":
            for position in rng.choice(FUZZ_BYTES, size=int(rng.integers(2, 9)), replace=False):
                data[int(position)] = int(rng.integers(0, 256))
        else:
            start, length = int(rng.integers(0, FUZZ_BYTES - 2)), int(rng.integers(2, 17))
            stop = min(FUZZ_BYTES, start + length)
            data[start:stop] = rng.integers(0, 256, stop - start, dtype=np.uint8).tobytes()
        yield f"{kind} #{index}", bytes(data)


def field_corruptions(raw: bytes):
    """Special values written into every element of every header field."""
    for name, offset, dtype, count in FIELDS:
        for value in _SPECIAL[dtype.kind]:
            for element in range(count):
                data = bytearray(raw)
                start = offset + element * dtype.itemsize
                if dtype.kind == "S":
                    data[start:start + dtype.itemsize] = value.ljust(dtype.itemsize, b"\x00")[: dtype.itemsize]
                else:
                    data[start:start + dtype.itemsize] = np.asarray(value).astype(dtype).tobytes()
                yield f"{name}[{element}]={value!r}", bytes(data)


def field_boundaries() -> list[int]:
    """Every offset where a header field starts, the header's end, and where the voxels start."""
    return sorted({offset for _, offset, _, _ in FIELDS} | {HEADER_BYTES, FUZZ_BYTES, FUZZ_BYTES + 1})


def outcome(path: Path, data: np.ndarray, affine: np.ndarray) -> str:
    """``"refused"``, ``"same"`` (accepted, same voxels and affine) or ``"changed"`` (accepted,
    something else); any other exception propagates and fails the test."""
    try:
        img = check_img(path)
    except InputImageError as exc:
        message = str(exc)
        assert str(path) in message and "\n" not in message and message.endswith("."), message
        return "refused"
    assert img.ndim == 3 and np.all(np.isfinite(img.affine))
    # What every output goes through: an image on the input's grid, written to disk.
    out = new_img_like(img, np.zeros(img.shape, np.uint8))
    nib.save(out, str(path.with_name("written.nii.gz")))
    voxels = np.asanyarray(img.dataobj)
    if voxels.shape == data.shape and np.array_equal(voxels, data) and np.allclose(img.affine, affine):
        return "same"
    return "changed"


def _fuzz(intact, tmp_path, cases) -> tuple[dict, list]:
    raw, data, affine = intact
    counts, changed = {"refused": 0, "same": 0, "changed": 0}, []
    path = tmp_path / "sub-01_T1w.nii"
    for label, corrupted in cases:
        path.write_bytes(corrupted)
        result = outcome(path, data, affine)
        counts[result] += 1
        if result == "changed":
            changed.append((label, corrupted))
    return counts, changed


def assert_segment_clean(path: Path, out: Path, capsys) -> str:
    """``wmhkit segment`` on one file: exit 2 with one sentence and no file, or exit 0 with every output."""
    from wmhkit.cli import main

    code = main(["segment", str(path), "--out", str(out), "--method", "baseline", "--no-regions"])
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    written = sorted(p.name for p in out.iterdir()) if out.exists() else []
    if code == 2:
        errors = [line for line in captured.err.splitlines() if line.startswith("wmhkit: error:")]
        assert len(errors) == 1 and errors[0].rstrip().endswith("."), captured.err
        assert written == [], written
        return "refused"
    assert code == 0, captured.err
    from wmhkit.io.outputs import output_prefix

    stem = output_prefix(path.name.removesuffix(".nii.gz").removesuffix(".nii"))
    assert written == sorted(stem + suffix for suffix in _OUTPUTS), written
    for name in written:
        if name.endswith(".nii.gz"):
            nib.load(out / name).get_fdata()
    return "segmented"


@pytest.mark.timeout(120)
def test_random_and_field_corruptions_never_raise_anything_else(intact, tmp_path):
    cases = list(random_corruptions(intact[0], seed=0, n=300)) + list(field_corruptions(intact[0]))
    counts, changed = _fuzz(intact, tmp_path, cases)
    assert sum(counts.values()) == len(cases) > 600
    # The corpus reaches every outcome (a fuzzer that only ever hits padding proves nothing).
    assert counts["refused"] > 50 and counts["same"] > 50 and counts["changed"] > 10, counts


@pytest.mark.timeout(60)
@pytest.mark.parametrize("compressed", [False, True], ids=["nii", "nii.gz"])
def test_truncation_at_every_field_boundary_is_refused(intact, tmp_path, compressed):
    raw = intact[0]
    path = tmp_path / ("cut.nii.gz" if compressed else "cut.nii")
    for size in field_boundaries() + [len(raw) // 2, len(raw) - 1]:
        cut = raw[:size]
        path.write_bytes(gzip.compress(cut, mtime=0) if compressed else cut)
        with pytest.raises(InputImageError, match="cut.nii"):
            check_img(path)
    if compressed:  # the compressed stream itself cut short, at a few places
        stream = gzip.compress(raw, mtime=0)
        for size in (10, 100, 400, len(stream) // 2, len(stream) - 12):
            path.write_bytes(stream[:size])
            with pytest.raises(InputImageError, match="cut.nii"):
                check_img(path)
        # Only the 8-byte trailer (CRC, length) cut: every voxel is there, and read correctly.
        path.write_bytes(stream[:-4])
        assert outcome(path, intact[1], intact[2]) in ("refused", "same")


@pytest.mark.timeout(300)
def test_corrupt_units_and_geometry_end_to_end(intact, tmp_path, capsys):
    # An unknown xyzt_units code once ended in a KeyError traceback while writing the outputs; a
    # voxel size of 1e31 mm, an origin 1e22 mm away or voxels constant to single precision (scale
    # factors) in SimpleITK or numpy errors.
    raw = intact[0]
    units = bytearray(raw)
    units[123] = 4
    huge_voxel = bytearray(raw)
    huge_voxel[284:288] = struct.pack("<f", 4e31)  # srow_x[1]
    far = bytearray(raw)
    far[316:328] = struct.pack("<fff", 0.0, 0.0, 1.8e22)[:12]  # srow_z[1:4]
    scaled = bytearray(raw)  # found by the long fuzz: every voxel 5.75e19 plus a tiny variation
    scaled[112:120] = struct.pack("<ff", 1e-9, 5.75e19)  # scl_slope, scl_inter
    outcomes = {}
    for name, corrupted in (("units", units), ("huge_voxel", huge_voxel), ("far", far), ("scaled", scaled)):
        path = tmp_path / name / "sub-01_T1w.nii"
        path.parent.mkdir()
        path.write_bytes(bytes(corrupted))
        outcomes[name] = assert_segment_clean(path, tmp_path / name / "out", capsys)
    assert outcomes == {"units": "segmented", "huge_voxel": "refused", "far": "refused", "scaled": "refused"}


@pytest.mark.timeout(300)
def test_a_few_accepted_changed_headers_end_to_end(intact, tmp_path, capsys):
    _, changed = _fuzz(intact, tmp_path, random_corruptions(intact[0], seed=0, n=60))
    assert len(changed) >= 3
    for index, (label, corrupted) in enumerate(changed[:3]):
        path = tmp_path / f"case{index}" / "sub-01_T1w.nii"
        path.parent.mkdir()
        path.write_bytes(corrupted)
        assert_segment_clean(path, tmp_path / f"case{index}" / "out", capsys)


@pytest.mark.slow
@pytest.mark.timeout(1500)
@pytest.mark.parametrize("seed", [1])
def test_long_fuzz_every_accepted_change_end_to_end(intact, tmp_path, capsys, seed):
    counts, changed = _fuzz(intact, tmp_path, random_corruptions(intact[0], seed=seed, n=600))
    results = {"refused": 0, "segmented": 0}
    for index, (label, corrupted) in enumerate(changed[:20]):
        path = tmp_path / f"case{index}" / "sub-01_T1w.nii"
        path.parent.mkdir()
        path.write_bytes(corrupted)
        results[assert_segment_clean(path, tmp_path / f"case{index}" / "out", capsys)] += 1
    assert sum(results.values()) == min(20, len(changed)) > 10, (counts, results)
