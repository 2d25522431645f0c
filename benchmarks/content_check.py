"""Calibration of the "is this a brain T1?" check (:mod:`wmhkit.preprocess.content_check`).

Every input goes through what ``wmhkit segment`` does before segmenting: ``check_img``, the MNI
alignment and intensity levels (``prepare_t1``), then the content statistics: white/grey and
grey/CSF contrasts as shares of the brightest tissue, alignment quality, eTIV and the share of the
tissue samples inside the field of view. Inputs:

* the four real heads of ``../shared/data/real_t1`` (must pass, with margin);
* T1 phantoms of :mod:`wmhkit.synth` (2 mm skull off and on, lesion burdens 0-3, and 1 mm)
  (must pass);
* the FLAIR of the same phantoms, and T2-like / PD-like renderings of their tissue labels
  (must be refused);
* images made wrong on purpose: Gaussian and uniform noise in a head-sized field of view, constant
  boxes and ellipsoids on a zero background, a smoothed noise blob, a phantom with its voxels
  shuffled, the real heads with their intensities inverted (T2-like) (must be refused);
* with ``--suite``, the phantoms the test suite, the demo and the accuracy benchmarks segment
  (2 mm test seeds, the demo's seeds, 1 mm seeds 10000-10019 and 950000-950011) (must pass).

Usage::

    python benchmarks/content_check.py [--phantoms 12] [--no-real] [--suite]

Writes ``benchmarks/results/content_check.md`` and ``content_check.csv``.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
import warnings
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
from scipy import ndimage

ROOT = Path(__file__).resolve().parents[1]
REAL = Path(os.environ.get("WMHKIT_REAL_T1_DIR", ROOT.parent / "shared" / "data" / "real_t1"))
RESULTS = ROOT / "benchmarks" / "results"
#: Tissue intensities (relative) of the T2- and PD-like renderings of a phantom's labels:
#: background, csf, gm, wm, lesion, ventricle, deep_gm, extracerebral (TISSUE_LABELS order).
RENDERINGS = {
    "t2": [0.0, 1.0, 0.55, 0.4, 0.75, 1.0, 0.5, 0.45],
    "pd": [0.0, 0.85, 1.0, 0.8, 0.95, 0.85, 0.95, 0.6],
}


def _render(phantom, kind: str, rng) -> nib.Nifti1Image:
    labels = np.asanyarray(phantom.tissue.dataobj).astype(int)
    values = np.asarray(RENDERINGS[kind], np.float32)[np.clip(labels, 0, len(RENDERINGS[kind]) - 1)]
    values = ndimage.gaussian_filter(values, 0.7)
    values += rng.normal(0, 0.03, values.shape).astype(np.float32) * (values > 0.02)
    return nib.Nifti1Image(np.clip(values, 0, None) * 1000, phantom.t1.affine)


def _wrong_images(rng) -> dict[str, nib.Nifti1Image]:
    affine = np.diag([2.0, 2.0, 2.0, 1.0])
    affine[:3, 3] = [-96.0, -120.0, -90.0]
    shape = (96, 120, 100)
    grid = np.indices(shape).astype(np.float32)
    centre = (np.asarray(shape, np.float32) / 2)[:, None, None, None]
    images = {
        "noise_gaussian": rng.normal(100, 20, shape).astype(np.float32),
        "noise_uniform": rng.uniform(0, 1000, shape).astype(np.float32),
    }
    box = np.zeros(shape, np.float32)
    box[20:76, 25:95, 20:80] = 500
    images["box_constant"] = box.copy()
    small = np.zeros(shape, np.float32)
    small[35:60, 40:80, 35:65] = 800
    images["box_small"] = small
    noisy = box + rng.normal(0, 30, shape).astype(np.float32) * (box > 0)
    images["box_noisy"] = noisy
    radius = np.sqrt((((grid - centre) / np.array([35, 45, 38], np.float32)[:, None, None, None]) ** 2).sum(axis=0))
    images["ellipsoid_constant"] = (radius < 1).astype(np.float32) * 300
    images["ellipsoid_smooth_noise"] = (ndimage.gaussian_filter(rng.normal(0, 1, shape), 3) * (radius < 1) * 1000 + 500 * (radius < 1)).astype(np.float32)
    return {name: nib.Nifti1Image(data, affine) for name, data in images.items()}


#: 2 mm phantoms the test suite segments: (seed, skull, burden).
SUITE_2MM = [(0, False, 1.0), (1, False, 1.0), (2, False, 1.0), (3, False, 2.0), (4, True, 2.0), (7, False, 1.0),
             (11, False, 2.0), (20240, False, 1.0)]
#: 1 mm phantoms: the demo's two (the second skull-on), the accuracy benchmark's test and validation seeds.
SUITE_1MM = [(20240, False, 1.0), (20241, True, 1.0)] + [(10000 + k, False, (0.5, 1.0, 2.0)[k % 3]) for k in range(20)] \
    + [(950000 + k, False, (0.5, 1.0, 2.0)[k % 3]) for k in range(12)]


def _suite_inputs():
    from wmhkit.synth import make_phantom

    for size, seeds in ((2.0, SUITE_2MM), (1.0, SUITE_1MM)):
        for seed, skull, burden in seeds:
            phantom = make_phantom(seed, voxel_size_mm=size, skull=skull, lesion_burden=burden)
            yield f"suite T1 phantom {size:g} mm", f"seed {seed} {'skull' if skull else 'no skull'} burden {burden:g}", \
                phantom.t1, "pass", phantom.subject_to_mni


def _inputs(n_phantoms: int, real: bool):
    """(kind, name, image or path, expected, true subject-to-MNI map or None) for every input."""
    from wmhkit.synth import make_phantom

    rng = np.random.default_rng(2101)
    if real:
        for path in sorted(REAL.glob("head_t1_*.nii.gz")):
            yield "real T1", path.name.removeprefix("head_t1_").removesuffix(".nii.gz"), path, "pass", None
            img = nib.load(path)
            data = np.asanyarray(img.dataobj).astype(np.float32)
            head = ndimage.binary_fill_holes(data > np.percentile(data, 60) * 0.3)
            inverted = np.where(head, data.max() - data, 0).astype(np.float32)
            yield "real inverted (T2-like)", path.name.removeprefix("head_t1_").removesuffix(".nii.gz"), \
                nib.Nifti1Image(inverted, img.affine), "refuse", None
    burdens = (0.0, 1.0, 3.0)
    for i in range(n_phantoms):
        skull = i % 2 == 1
        phantom = make_phantom(7000 + i, voxel_size_mm=2.0, skull=skull, lesion_burden=burdens[i % 3])
        tag = f"seed {7000 + i} {'skull' if skull else 'no skull'} burden {burdens[i % 3]:g}"
        truth = phantom.subject_to_mni
        yield "T1 phantom 2 mm", tag, phantom.t1, "pass", truth
        yield "FLAIR phantom", tag, phantom.flair, "refuse", truth
        if i < 3:
            yield "T2-like phantom", tag, _render(phantom, "t2", rng), "refuse", truth
            yield "PD-like phantom", tag, _render(phantom, "pd", rng), "refuse", truth
        if i == 0:
            data = np.asanyarray(phantom.t1.dataobj).copy()
            shuffled = rng.permutation(data.ravel()).reshape(data.shape)
            yield "shuffled phantom voxels", tag, nib.Nifti1Image(shuffled, phantom.t1.affine), "refuse", None
    for i in range(2):
        phantom = make_phantom(7100 + i, voxel_size_mm=1.0, skull=i == 1, lesion_burden=2.0)
        tag = f"seed {7100 + i} {'skull' if i == 1 else 'no skull'} burden 2"
        yield "T1 phantom 1 mm", tag, phantom.t1, "pass", phantom.subject_to_mni
        yield "FLAIR phantom", tag + " (1 mm T1)", phantom.flair, "refuse", phantom.subject_to_mni
    for name, img in _wrong_images(rng).items():
        yield "wrong on purpose", name, img, "refuse", None


def markdown(table: pd.DataFrame) -> str:
    """A pandas table as GitHub markdown (floats with 3 decimals; no extra dependency)."""
    def cell(value):
        if isinstance(value, float):
            return "" if np.isnan(value) else f"{value:.3f}"
        return str(value).replace("|", "/")
    lines = ["| " + " | ".join(map(str, table.columns)) + " |", "|" + "---|" * len(table.columns)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in table.itertuples(index=False)]
    return "\n".join(lines)


def measure(img, truth=None) -> dict:
    """The content statistics of one input (or the error that stops it earlier); with the true
    subject-to-MNI map of a phantom, also how far the alignment is from it (mm)."""
    from wmhkit.errors import InputImageError
    from wmhkit.preprocess import MNIAlignment, alignment_distance_mm, prepare_t1
    from wmhkit.preprocess.content_check import content_reasons, tissue_statistics

    start = time.perf_counter()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            prepared = prepare_t1(img, mni_t1=False)
    except InputImageError as exc:
        return {"refused_before": str(exc), "seconds": round(time.perf_counter() - start, 2)}
    prep_seconds = time.perf_counter() - start
    check_start = time.perf_counter()
    data = np.asanyarray(prepared.img.dataobj)
    stats = tissue_statistics(data, prepared.img.affine, prepared.alignment.mni_to_subject, prepared.intensity_levels[0])
    reasons = content_reasons(stats, prepared.alignment.quality, prepared.etiv_ml)
    return {
        "wm_gm_contrast": stats["wm_gm_contrast"],
        "gm_csf_contrast": stats["gm_csf_contrast"],
        "alignment_quality": round(float(prepared.alignment.quality), 3),
        "etiv_ml": round(float(prepared.etiv_ml), 0),
        "inside": stats["inside"],
        "alignment_error_mm": round(alignment_distance_mm(prepared.alignment, MNIAlignment(truth)), 1)
        if truth is not None else float("nan"),
        "verdict": "refuse" if reasons else "pass",
        "reasons": "; ".join(reasons),
        "prepare_s": round(prep_seconds, 2),
        "check_s": round(time.perf_counter() - check_start, 3),
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--phantoms", type=int, default=12, help="2 mm T1 phantoms (and their FLAIR); default 12")
    parser.add_argument("--no-real", action="store_true", help="leave out the real heads")
    parser.add_argument("--suite", action="store_true", help="also the phantoms the tests, demo and benchmarks use")
    parser.add_argument("--out-suffix", default="", help="suffix of the results files (content_check<suffix>.md)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from bench_environment import environment_line
    from wmhkit.preprocess import content_check as rules

    rows = []
    inputs = _inputs(args.phantoms, real=not args.no_real and REAL.is_dir())
    if args.suite:
        import itertools

        inputs = itertools.chain(inputs, _suite_inputs())
    for kind, name, img, expected, truth in inputs:
        row = {"kind": kind, "input": name, "expected": expected, **measure(img, truth)}
        if "refused_before" in row:
            row["verdict"] = "refuse"
            row["reasons"] = "check_img: " + row.pop("refused_before")
        row["ok"] = row["verdict"] == expected
        rows.append(row)
        print(f"{kind:26s} {name:36s} wm-gm {row.get('wm_gm_contrast', float('nan')):6.3f} "
              f"gm-csf {row.get('gm_csf_contrast', float('nan')):6.3f} q {row.get('alignment_quality', float('nan')):5.2f} "
              f"eTIV {row.get('etiv_ml', float('nan')):6.0f} -> {row['verdict']:6s} {'' if row['ok'] else 'WRONG'}", flush=True)
    table = pd.DataFrame(rows)
    RESULTS.mkdir(parents=True, exist_ok=True)
    table.to_csv(RESULTS / f"content_check{args.out_suffix}.csv", index=False)
    columns = ["kind", "input", "wm_gm_contrast", "gm_csf_contrast", "alignment_quality", "etiv_ml", "inside",
               "alignment_error_mm", "verdict", "ok", "reasons"]
    summary = table.groupby("kind", sort=False).agg(
        n=("input", "size"), wm_gm_min=("wm_gm_contrast", "min"), wm_gm_max=("wm_gm_contrast", "max"),
        gm_csf_min=("gm_csf_contrast", "min"), gm_csf_max=("gm_csf_contrast", "max"),
        quality_min=("alignment_quality", "min"), quality_max=("alignment_quality", "max"),
        etiv_min=("etiv_ml", "min"), etiv_max=("etiv_ml", "max"),
        refused=("verdict", lambda v: int((v == "refuse").sum())), correct=("ok", "sum"))
    text = [
        "# Is this a brain T1? Calibration of the content check",
        "",
        f"`python benchmarks/content_check.py --phantoms {args.phantoms}{' --suite' if args.suite else ''}`; "
        f"{environment_line()}",
        "",
        f"Rules: white-grey contrast >= {rules.WM_GM_CONTRAST_MIN}, grey-CSF contrast >= {rules.GM_CSF_CONTRAST_MIN} "
        f"(shares of the brightest tissue above background), alignment quality >= {rules.QUALITY_FLOOR}, "
        f"eTIV in {rules.ETIV_RANGE_ML[0]:.0f}-{rules.ETIV_RANGE_ML[1]:.0f} mL, >= {rules.INSIDE_MIN:.0%} of the samples "
        "inside the field of view.",
        "",
        f"{int(table['ok'].sum())} of {len(table)} inputs get the expected verdict.",
        "",
        "`alignment_error_mm`: mean distance between the MNI alignment and the phantom's true map over the "
        "template brain. The check reads tissues through that alignment: where it fails (errors of 10 mm and "
        "more), a T1 can be refused and a FLAIR can read T1-like.",
        "",
        "## By kind",
        "",
        markdown(summary.reset_index()),
        "",
        "## Every input",
        "",
        markdown(table.reindex(columns=columns)),
        "",
    ]
    (RESULTS / f"content_check{args.out_suffix}.md").write_text("\n".join(text))
    print(summary.to_string())
    return 0 if table["ok"].all() else 1


if __name__ == "__main__":
    sys.exit(main())
