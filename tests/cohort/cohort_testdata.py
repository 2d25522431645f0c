"""Small cohorts on disk for the cohort tests (imported by the tests and by worker processes)."""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np


def phantom_t1(seed: int) -> nib.Nifti1Image:
    """A small 2 mm phantom T1 (wmhkit.synth.make_phantom; the MNI template cut while it is absent)."""
    try:
        from wmhkit.synth import make_phantom
    except ImportError:
        return template_t1(seed)
    return make_phantom(seed, voxel_size_mm=2.0).t1


def write_bids(root: Path, subjects: dict[str, list[str | None]], *, seed: int = 0, participants: bool = True,
               corrupt: tuple[str, ...] = ()) -> Path:
    """A BIDS tree: ``subjects`` maps a label to its sessions (None: no session level).

    Every T1 is a different seeded phantom; a FLAIR and a JSON sidecar sit beside each T1
    (they must be ignored). The T1 files of the ``corrupt`` labels are truncated.
    """
    root.mkdir(parents=True, exist_ok=True)
    (root / "dataset_description.json").write_text(json.dumps({"Name": "test", "BIDSVersion": "1.9.0"}))
    count = 0
    for label, sessions in subjects.items():
        for session in sessions:
            anat = root / f"sub-{label}" / (f"ses-{session}" if session else "") / "anat"
            anat.mkdir(parents=True, exist_ok=True)
            stem = f"sub-{label}" + (f"_ses-{session}" if session else "")
            t1_path = anat / f"{stem}_T1w.nii.gz"
            nib.save(phantom_t1(seed + count), t1_path)
            if label in corrupt:
                t1_path.write_bytes(t1_path.read_bytes()[:4000])
            (anat / f"{stem}_T1w.json").write_text("{}")
            nib.save(nib.Nifti1Image(np.zeros((8, 9, 4), np.float32), np.eye(4)), anat / f"{stem}_FLAIR.nii.gz")
            count += 1
    if participants:
        rows = ["participant_id\tage\tsex\tsite"]
        rows += [f"sub-{label}\t{60 + 3 * i}\t{'FM'[i % 2]}\tsite{i % 2}" for i, label in enumerate(subjects)]
        (root / "participants.tsv").write_text("\n".join(rows) + "\n")
    return root


def template_t1(seed: int) -> nib.Nifti1Image:
    """A 2 mm T1 cut from the MNI template (in MNI coordinates), with seeded noise and dark blobs."""
    from wmhkit.preprocess import load_template

    template = load_template("t1")
    data = np.asanyarray(template.dataobj, dtype=np.float32)[::2, ::2, ::2].copy()
    rng = np.random.default_rng(seed)
    data += rng.normal(0, 0.02, data.shape).astype(np.float32)
    affine = template.affine.copy()
    affine[:3, :3] *= 2
    return nib.Nifti1Image(data, affine)

