"""Perivascular spaces as lesion mimics: how much of them the network calls WMH, with and without the speck rule.

Synthetic perivascular spaces (``wmhkit.synth.pvs``: CSF-dark tubes 0.7-2 mm across, 3-15 mm
long) are drawn into the white matter of each unmodified real head of ``../shared/data/real_t1``;
each head is segmented before and after, with the CSF-dark speck rule off (the default) and on
(``max_speck_mm3=30``). Reported: the false lesion volume in the head without and with the spaces,
and the share of the spaces' voxels marked as lesion.

Usage::

    python benchmarks/pvs_mimics.py [--count 100] [--seed 3] [--out-suffix S]

Writes ``benchmarks/results/pvs_mimics<S>.md``.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from bench_environment import environment_line, markdown_table

ROOT = Path(__file__).resolve().parents[1]
REAL = Path(os.environ.get("WMHKIT_REAL_T1_DIR", ROOT.parent / "shared" / "data" / "real_t1"))
RESULTS = ROOT / "benchmarks" / "results"
RULES = {"speck rule off (default)": None, "speck rule on (max_speck_mm3=30)": 30}


def head_rows(head: Path, count: int, seed: int) -> list[dict]:
    """One row per rule setting: false lesions without and with ``count`` spaces, share of the spaces marked."""
    import nibabel as nib

    from wmhkit import segment
    from wmhkit.io import check_img, voxel_volume_ml
    from wmhkit.synth.pvs import add_perivascular_spaces
    from wmhkit.synth.real_masks import stem
    from wmhkit.train.recipe import _prepared_head, head_white_matter

    img = check_img(head)
    wm = nib.Nifti1Image(head_white_matter(img, _prepared_head(str(head))).astype(np.uint8), img.affine)
    with_spaces, spaces, params = add_perivascular_spaces(img, wm, count=count, seed=seed)
    inside = np.asanyarray(spaces.dataobj) > 0
    rows = []
    for rule, max_speck in RULES.items():
        clean = segment(img, regions=False, max_speck_mm3=max_speck)
        spaced = segment(with_spaces, regions=False, max_speck_mm3=max_speck)
        marked = np.asanyarray(spaced.mask.dataobj) > 0
        rows.append({"head": stem(head), "rule": rule, "spaces": count, "spaces_ml": round(params["pvs_ml"], 2),
                     "false_ml_without_spaces": round(clean.lesion_ml, 2),
                     "false_ml_with_spaces": round(spaced.lesion_ml, 2),
                     "spaces_marked_percent": round(100.0 * float(marked[inside].mean()), 1),
                     "marked_on_spaces_ml": round(float(np.count_nonzero(marked & inside) * voxel_volume_ml(img)), 2)})
        print(rows[-1], flush=True)
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=100, help="spaces drawn per head")
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("--out-suffix", default="")
    args = parser.parse_args(argv)
    heads = sorted(REAL.glob("*.nii*"))
    if not heads:
        print("pvs_mimics: no real heads (../shared/data/real_t1); nothing to do.")
        return 1
    table = pd.DataFrame([row for head in heads for row in head_rows(head, args.count, args.seed)])
    lines = ["# Perivascular spaces as lesion mimics", "",
             "Command: `python benchmarks/pvs_mimics.py " + " ".join(sys.argv[1:]) + "`", "", environment_line(), "",
             f"{args.count} synthetic perivascular spaces (CSF-dark tubes, `wmhkit.synth.pvs`, seed {args.seed}) drawn"
             " into the white matter of each unmodified real head; the default model with the CSF-dark speck rule"
             " (`wmhkit.segmentation.mimics`) off (default) and on. `spaces_ml`: the spaces' partial-volume sum;"
             " `spaces_marked_percent`: share of the spaces' voxels (more than half fluid) marked as lesion.", "",
             markdown_table(table), ""]
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"pvs_mimics{args.out_suffix}.md"
    out.write_text("\n".join(lines))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
