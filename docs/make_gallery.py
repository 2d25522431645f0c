"""Write a PNG of every wmhkit figure type into docs/gallery/, from synthetic data only.

Usage::

    python docs/make_gallery.py [--out docs/gallery] [--dpi 150]

Every figure is built from data wmhkit makes itself: a synthetic cohort
(:func:`wmhkit.synth.cohort.make_cohort`) for the statistics figures, and brain phantoms
(:func:`wmhkit.synth.make_phantom`, 2 mm) for the image figures. The phantom figures show the
phantom's true lesion mask (smoothed, where a probability map is shown), not a segmentation,
so the gallery does not depend on trained weights. Took 94-299 s on the shared 2-core
machine (load average 12-15 from other jobs).
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
import warnings
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import nibabel as nib  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from scipy import ndimage  # noqa: E402

from wmhkit import plotting, stats  # noqa: E402
from wmhkit.synth.cohort import make_cohort  # noqa: E402
from wmhkit.synth.regional import bullseye_regions  # noqa: E402

logger = logging.getLogger("make_gallery")


def cohort_figures(out: Path, dpi: int) -> None:
    """Statistics figures from one synthetic cohort of 3000 people aged 45-95."""
    table = make_cohort(3000, seed=0, age_range=(45.0, 95.0)).table
    regions = [c for c in table.columns if c.startswith("wmh_") and c.endswith("_ml") and "true" not in c]
    for column in regions:
        table[f"log_{column}"] = stats.log1p_ml(table[column])
    features = [f"log_{c}" for c in regions]
    # age as a smooth term (ComBat-GAM): WMH grows faster with age, a straight line would misfit it
    harmonised = stats.harmonize(table, features, covariates=["sex"], smooth=["age"], suffix="_h").table
    harmonised["wmh_ml_harmonised"] = np.expm1(harmonised["log_wmh_ml_h"])
    plotting.save_figure(plotting.plot_site_effect(harmonised), out / "site_effect.png", dpi=dpi)

    # location-scale-shape centiles, drawn over each sex's observed ages only
    curves = stats.fit_centiles(harmonised, "log_wmh_ml_h").curves()
    trajectory = stats.fit_trajectory(harmonised, "log_wmh_ml_h", site=None, back_transform="log1p").predict()
    fig = plotting.plot_burden_vs_age(harmonised, value="wmh_ml_harmonised", centiles=curves, centile_value="value",
                                      back_transform="log1p", trajectory=trajectory,
                                      value_label="WMH volume, harmonised (mL)")
    plotting.save_figure(fig, out / "burden_vs_age.png", dpi=dpi)

    covariates = ["age", "sex", "hypertension"]
    logistic = stats.logistic_risk(harmonised, "dementia", "log_wmh_ml_h", covariates)
    cox = stats.cox_risk(harmonised, "followup_years", "dementia", "log_wmh_ml_h", covariates)
    both = pd.concat([logistic.summary.assign(model="Odds ratio"), cox.summary.assign(model="Hazard ratio")])
    labels = {"log_wmh_ml_h": "WMH (per SD)", "age": "Age (per year)", "sex[T.M]": "Male sex", "sex[M]": "Male sex",
              "hypertension": "Hypertension", **{f"log_wmh_ml_h Q{q}": f"WMH quartile {q}" for q in (2, 3, 4)}}
    fig = plotting.plot_forest(both, group="model", p_value="p_value", labels=labels, xlabel="Ratio (95% CI)")
    plotting.save_figure(fig, out / "forest.png", dpi=dpi)

    km = stats.kaplan_meier(harmonised, "followup_years", "dementia", exposure="wmh_ml", n_groups=3)
    fig = plotting.plot_kaplan_meier(km.curves, n_at_risk="n_at_risk",
                                     group_labels={"T1": "WMH lowest third", "T2": "middle third",
                                                   "T3": "highest third"})
    plotting.save_figure(fig, out / "kaplan_meier.png", dpi=dpi)

    fig = plotting.plot_agreement(table, "wmh_ml", "wmh_true_ml", a_label="Measured", b_label="True",
                                  title="Measured versus true WMH (synthetic site effects)")
    plotting.save_figure(fig, out / "agreement.png", dpi=dpi)

    # The 36-region bullseye table (both hemispheres, basal ganglia/thalamus) of 400 synthetic subjects.
    regions = bullseye_regions(table.sample(400, random_state=0), seed=0)
    regions["dementia"] = np.where(regions["dementia"] == 1, "yes", "no")
    fig = plotting.plot_bullseye(regions, group="dementia", statistic="median",
                                 title="Median regional WMH by dementia status")
    plotting.save_figure(fig, out / "bullseye_group.png", dpi=dpi)


def _phantom_on_mni(phantom, template) -> nib.Nifti1Image:
    """The phantom's true lesion mask on the MNI grid, through its known linear subject-to-MNI map."""
    from nilearn.image import resample_to_img

    mask = phantom.lesion_mask
    in_mni_world = nib.Nifti1Image(np.asanyarray(mask.dataobj).astype(np.float32), phantom.subject_to_mni @ mask.affine)
    with warnings.catch_warnings():  # nilearn warns on linear resampling of a 0/1 image: intended here
        warnings.simplefilter("ignore", UserWarning)
        return resample_to_img(in_mni_world, template, interpolation="linear", force_resample=True,
                               copy_header=True)


def phantom_figures(out: Path, dpi: int, n_phantoms: int) -> None:
    """Image figures from 2 mm phantoms: mosaics, the viewer, a bullseye and a frequency map."""
    from wmhkit.preprocess.templates import load_template
    from wmhkit.synth import make_phantom
    from wmhkit.widgets import SliceViewer

    phantoms = [make_phantom(seed=seed, voxel_size_mm=2.0, lesion_burden=2.0) for seed in range(n_phantoms)]
    first = phantoms[0]
    mask = np.asanyarray(first.lesion_mask.dataobj).astype(np.float32)
    probability = nib.Nifti1Image(np.clip(ndimage.gaussian_filter(mask, 0.8) * 1.6, 0, 1), first.lesion_mask.affine)
    fig = plotting.plot_lesion_mosaic(first.t1, probability, title="Lesion probability on the T1 (phantom)")
    plotting.save_figure(fig, out / "mosaic_probability.png", dpi=dpi)
    fig = plotting.plot_lesion_mosaic(first.t1, first.lesion_mask, axis="coronal", n_slices=6, contour=True,
                                      title="Lesion outlines, coronal (phantom)")
    plotting.save_figure(fig, out / "mosaic_contour.png", dpi=dpi)

    viewer = SliceViewer(first.t1, probability)
    viewer.next_lesion()
    viewer.to_png(out / "slice_viewer.png", dpi=dpi)

    try:
        from wmhkit.regions import quantify_subject

        regions = quantify_subject(first.lesion_mask, first.t1, subject="phantom-0").regions
        fig = plotting.plot_bullseye(regions, title="Regional WMH of one subject (phantom)")
        plotting.save_figure(fig, out / "bullseye_subject.png", dpi=dpi)
    except ImportError as exc:  # wmhkit.regions is optional for the gallery
        logger.warning("bullseye of one subject skipped: %s", exc)

    template = load_template("t1")
    masks = [_phantom_on_mni(p, template) for p in phantoms]
    frequency = nib.Nifti1Image(np.mean([m.get_fdata() > 0.5 for m in masks], axis=0).astype(np.float32),
                                template.affine)
    fig = plotting.plot_lesion_frequency(frequency, title=f"Lesion frequency, {n_phantoms} phantoms in MNI space")
    plotting.save_figure(fig, out / "lesion_frequency.png", dpi=dpi)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "gallery")
    parser.add_argument("--dpi", type=int, default=150)
    parser.add_argument("--phantoms", type=int, default=6, help="phantoms behind the frequency map")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    start = time.perf_counter()
    cohort_figures(args.out, args.dpi)
    phantom_figures(args.out, args.dpi, args.phantoms)
    for path in sorted(args.out.glob("*.png")):
        print(path)
    print(f"gallery written in {time.perf_counter() - start:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
