"""Agreement of the regional tables driven by the MNI atlas and by the subject's own parcellation.

For each phantom (``wmhkit.synth.make_phantom(seed, voxel_size_mm=2.0)``: 2 mm to stay cheap on a
shared CPU), its TRUE tissue labels are written as an aseg-style image
(:func:`wmhkit.regions.aseg.phantom_aseg`: FreeSurfer codes, cortex 3/42 without lobes, sides by
MNI x), and the same true lesion mask is quantified twice with the phantom's true alignment:

* ``atlas``: the default, the MNI parcel atlas brought to the subject (ventricles refined on the T1);
* ``aseg``: ``quantify_subject(..., aseg=...)``: ventricles, cortex, white matter and deep grey from
  the true labels (cortex lobes still from the atlas, as for a plain aseg.mgz).

Per scheme: the largest absolute difference of a region's lesion volume (mL, over regions and
phantoms), its median, and the Pearson correlation of the regions' lesion volumes (pooled over
phantoms; the ``other`` rows are left out). The aseg side is the closer one to the truth: the
difference is the error the MNI atlas adds through its anatomy. No timings.

Usage::

    python benchmarks/aseg_agreement.py [--seeds 0 1 2 3] [--out benchmarks/results/aseg_agreement.md]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

from wmhkit.preprocess import MNIAlignment
from wmhkit.regions import quantify_subject
from wmhkit.regions.aseg import phantom_aseg
from wmhkit.synth import make_phantom
from bench_environment import environment_line, markdown_table


def compare(seed: int) -> tuple[pd.DataFrame, dict]:
    """Both regional tables of one phantom side by side, and both summaries."""
    phantom = make_phantom(seed, voxel_size_mm=2.0)
    alignment = MNIAlignment(phantom.subject_to_mni)
    atlas = quantify_subject(phantom.lesion_mask, phantom.t1, alignment=alignment, subject=f"seed{seed}")
    own = quantify_subject(phantom.lesion_mask, phantom.t1, alignment=alignment, subject=f"seed{seed}",
                           aseg=phantom_aseg(phantom))
    both = atlas.regions.merge(own.regions, on=["subject", "scheme", "region"], suffixes=("_atlas", "_aseg"))
    summary = {"seed": seed, "lesion_ml": atlas.summary["lesion_ml"]}
    for key in ("periventricular_ml", "deep_ml", "ventricle_ml"):
        summary[f"{key}_atlas"], summary[f"{key}_aseg"] = atlas.summary[key], own.summary[key]
    return both, summary


def agreement(both: pd.DataFrame) -> pd.DataFrame:
    """Per scheme: max and median |difference| of lesion_ml (mL) and the correlation across regions."""
    rows = []
    for scheme, group in both[both["region"] != "other"].groupby("scheme", sort=False):
        diff = (group["lesion_ml_atlas"] - group["lesion_ml_aseg"]).abs()
        r = np.corrcoef(group["lesion_ml_atlas"], group["lesion_ml_aseg"])[0, 1] if group["lesion_ml_atlas"].std() > 0 else np.nan
        rows.append({"scheme": scheme, "regions": group["region"].nunique(), "max_abs_diff_ml": diff.max(),
                     "median_abs_diff_ml": diff.median(), "pearson_r": r})
    return pd.DataFrame(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3])
    parser.add_argument("--out", default=str(Path(__file__).with_name("results") / "aseg_agreement.md"))
    args = parser.parse_args()
    tables, summaries = zip(*(compare(seed) for seed in args.seeds))
    table = agreement(pd.concat(tables, ignore_index=True))
    summary = pd.DataFrame(summaries)
    lines = [
        "# Regional tables: MNI atlas vs the subject's own (true) labels",
        "",
        f"`python benchmarks/aseg_agreement.py --seeds {' '.join(map(str, args.seeds))}` -- {len(args.seeds)} phantoms at "
        "2 mm (`make_phantom(seed, voxel_size_mm=2.0)`, cheap on a shared CPU), their true lesion masks and true "
        "alignments; the aseg is the phantom's true tissue labels (`wmhkit.regions.aseg.phantom_aseg`, cortex "
        "without lobes: lobes from the atlas). Differences are of each region's lesion volume, over regions and "
        "phantoms; `other` rows left out. Timing: not measured.",
        "",
        environment_line(),
        "",
        "## Per scheme",
        "",
        markdown_table(table.round(3)),
        "",
        "## Per phantom (mL; periventricular/deep by the continuity rule)",
        "",
        markdown_table(summary.round(2)),
        "",
    ]
    Path(args.out).write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
