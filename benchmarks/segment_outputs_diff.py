"""How far two ``wmhkit segment`` output folders differ for one input: volumes, masks, regional tables.

Used to check that a change leaves the outputs of the real heads identical, or to measure what it
changed (``benchmarks/results/segment_speed.md``, "What changed on fine inputs"): run ``wmhkit
segment`` on the same input with the code before and after into two folders, then::

    python benchmarks/segment_outputs_diff.py BEFORE_DIR AFTER_DIR STEM

Prints one Markdown list: lesion volume (and the working grid's, where recorded), lesion count, eTIV
and brain volume before -> after, the Dice of the two lesion masks and of the two brain masks, the
largest probability difference, and per regional scheme the largest absolute difference of a
region's lesion volume (mL). "identical" when the three images, both tables and the JSON's numbers
agree exactly.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd

#: JSON keys that differ between any two runs (clock, memory, code).
VOLATILE = {"timings_s", "cpu_s", "peak_rss_gb_after", "created_utc", "code_fingerprint", "outputs", "input"}


def _image(folder: Path, stem: str, kind: str) -> np.ndarray:
    return np.asanyarray(nib.load(str(folder / f"{stem}_{kind}.nii.gz")).dataobj)


def _dice(first: np.ndarray, second: np.ndarray) -> float:
    total = first.sum() + second.sum()
    return 1.0 if total == 0 else float(2 * (first & second).sum() / total)


def _same_json(before: dict, after: dict) -> bool:
    """The two records agree on everything but :data:`VOLATILE` (a key one lacks counts as null)."""
    def summary(record: dict) -> dict:
        return {k: v for k, v in (record.get("regions_summary") or {}).items() if k != "seconds"}

    keys = (set(before) | set(after)) - VOLATILE - {"regions_summary"}
    return summary(before) == summary(after) and all(before.get(k) == after.get(k) for k in keys)


def compare(before: Path, after: Path, stem: str) -> list[str]:
    """The Markdown lines of the comparison of ``stem``'s outputs in two folders."""
    jb, ja = (json.loads((folder / f"{stem}_wmh.json").read_text()) for folder in (before, after))
    mb, ma = (_image(folder, stem, "desc-wmh_mask") > 0 for folder in (before, after))
    bb, ba = (_image(folder, stem, "desc-brain_mask") > 0 for folder in (before, after))
    pb, pa = (_image(folder, stem, "desc-wmh_probseg") for folder in (before, after))
    tables = {name: [pd.read_csv(folder / f"{stem}_{name}.tsv", sep="\t") for folder in (before, after)]
              for name in ("regions", "lesions") if (before / f"{stem}_{name}.tsv").exists()}
    identical = (mb.shape == ma.shape and np.array_equal(mb, ma) and np.array_equal(bb, ba) and np.array_equal(pb, pa)
                 and all(b.equals(a) for b, a in tables.values()) and _same_json(jb, ja))
    if identical:
        return [f"- {stem}: identical (masks, probability, brain mask, tables, JSON numbers)"]
    working = f" (working grid {ja['working_lesion_ml']})" if ja.get("working_lesion_ml") is not None else ""
    lines = [f"- {stem}: lesion {jb['lesion_ml']} -> {ja['lesion_ml']} mL{working}, {jb['lesion_count']} -> "
             f"{ja['lesion_count']} lesions; eTIV {jb['etiv_ml']} -> {ja['etiv_ml']} mL; brain {jb['brain_ml']} -> "
             f"{ja['brain_ml']} mL"]
    if mb.shape == ma.shape:
        lines.append(f"  - Dice of the lesion masks {_dice(mb, ma):.3f} ({mb.sum()} -> {ma.sum()} voxels), of the "
                     f"brain masks {_dice(bb, ba):.4f}; probability: largest difference {np.abs(pb - pa).max():.3f}")
    if "regions" in tables:
        rb, ra = tables["regions"]
        merged = rb.merge(ra, on=["scheme", "region"], suffixes=("_b", "_a"))
        merged["diff"] = (merged.lesion_ml_a - merged.lesion_ml_b).abs()
        parts = []
        for scheme, group in merged.groupby("scheme", sort=False):
            row = group.loc[group["diff"].idxmax()]
            parts.append(f"{scheme} {row['diff']:.3f} ({row['region']}: {row.lesion_ml_b:.3f} -> "
                         f"{row.lesion_ml_a:.3f})")
        lines.append("  - regional lesion mL, largest absolute difference per scheme: " + "; ".join(parts))
    return lines


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("before", type=Path)
    parser.add_argument("after", type=Path)
    parser.add_argument("stem", nargs="+", help="output stems (the input file names without their ending)")
    args = parser.parse_args(argv)
    for stem in args.stem:
        print("\n".join(compare(args.before, args.after, stem)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
