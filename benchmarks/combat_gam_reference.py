"""ComBat with a smooth age term: wmhkit.stats.ComBat(smooth=["age"]) against neuroHarmonize (ComBat-GAM).

Usage::

    python benchmarks/combat_gam_reference.py [--subjects 1500] [--seed 5] [--out benchmarks/results/combat_gam_reference.md]

Data: a synthetic cohort from ``wmhkit.synth.make_cohort`` (seed 3, ages 45-95, 8 sites), the
11 measured regional and total volumes as ``log(1 + mL)`` features, covariates age (smooth)
and sex (as a 0/1 column). neuroHarmonize 2.5.2 (``harmonizationLearn(..., smooth_terms=["AGE"],
seed=...)``) fits, per feature, statsmodels' ``GLMGam`` with a 10-column cubic ``BSplines``
basis of age and picks the penalty weight by 5-fold cross-validation with random folds.
wmhkit builds the same basis and penalty; the rows compare:

1. wmhkit given the penalty weights neuroHarmonize picked (recovered by replaying its
   cross-validation: the same statsmodels call with the same seeded generator, feature by
   feature), i.e. the same smoother: the difference is floating-point only.
2. wmhkit choosing its own weights by generalised cross-validation (the default): the
   difference is the smoother's penalty weight, not the method.
3. wmhkit's linear ComBat (age as a straight line): the difference the smooth term makes.

neuroHarmonize 2.5.2 declares ``numpy<2``; it is installed here with
``pip install --no-deps neuroharmonize==2.5.2`` and runs unchanged on numpy 2.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import time
from pathlib import Path

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from bench_environment import environment_line  # noqa: E402


def make_data(n_subjects: int):
    from wmhkit.synth.cohort import make_cohort

    table = make_cohort(n_subjects, seed=3, age_range=(45.0, 95.0)).table
    measured = [c for c in table.columns if c.startswith("wmh_") and c.endswith("_ml") and "true" not in c]
    features = []
    for column in measured:
        table[f"log_{column}"] = np.log1p(table[column])
        features.append(f"log_{column}")
    table["male"] = (table["sex"] == "M").astype(float)
    return table, features


def run_neuroharmonize(table, features, seed):
    from neuroHarmonize import harmonizationLearn

    covars = pd.DataFrame({"SITE": table["site"].to_numpy(), "AGE": table["age"].to_numpy(),
                           "MALE": table["male"].to_numpy()})
    with contextlib.redirect_stdout(io.StringIO()):
        model, out = harmonizationLearn(table[features].to_numpy(), covars, smooth_terms=["AGE"], seed=seed)
    return model, out


def replay_alphas(model, table, features, seed):
    """The penalty weights neuroHarmonize chose: its k-fold search, same calls, same generator."""
    from statsmodels.gam.api import GLMGam

    smooth = model["smooth_model"]
    rng = np.random.default_rng(seed)
    alphas = []
    for feature in features:
        frame = smooth["df_gam"].copy()
        frame["y"] = table[feature].to_numpy()
        gam = GLMGam.from_formula(smooth["formula"], data=frame, smoother=smooth["bsplines_constructor"],
                                  alpha=np.array([1.0]))
        gam.fit()
        alphas.append(float(gam.select_penweight_kfold(rng=rng)[0][0]))
    return np.array(alphas)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subjects", type=int, default=1500)
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "combat_gam_reference.md")
    args = parser.parse_args(argv)
    import neuroHarmonize  # noqa: F401  (fail early when it is absent)
    from importlib.metadata import version

    from wmhkit.stats import ComBat

    load_before = os.getloadavg()[0]
    table, features = make_data(args.subjects)
    start = time.perf_counter()
    model, reference = run_neuroharmonize(table, features, args.seed)
    nh_seconds = time.perf_counter() - start
    alphas = replay_alphas(model, table, features, args.seed)

    rows = []

    def compare(name, combat, note):
        start = time.perf_counter()
        out = combat.fit_transform(table, features)[features].to_numpy()
        seconds = time.perf_counter() - start
        diff = np.abs(out - reference)
        rows.append({"wmhkit configuration": name, "max abs diff": f"{diff.max():.1e}",
                     "mean abs diff": f"{diff.mean():.1e}", "wmhkit (s)": f"{seconds:.3f}", "note": note})
        return combat

    compare("smooth age, neuroHarmonize's penalty weights", ComBat(covariates=["male"], smooth=["age"],
                                                                     smooth_alpha=alphas),
            "same smoother: floating-point differences only")
    gcv = compare("smooth age, GCV penalty weights (default)", ComBat(covariates=["male"], smooth=["age"]),
                  "same basis and penalty, other penalty weights")
    compare("linear age (plain ComBat)", ComBat(covariates=["male", "age"]), "age as a straight line")
    load_after = os.getloadavg()[0]

    header = "| " + " | ".join(rows[0]) + " |\n|" + "---|" * len(rows[0]) + "\n"
    body = "".join("| " + " | ".join(str(v) for v in row.values()) + " |\n" for row in rows)
    weights = "| feature | neuroHarmonize k-fold weight | wmhkit GCV weight |\n|---|---|---|\n" + "".join(
        f"| {f} | {a:.4g} | {g:.4g} |\n" for f, a, g in zip(features, alphas, gcv.smooth_alpha_))
    text = f"""# ComBat with a smooth age term: wmhkit vs neuroHarmonize (ComBat-GAM)

{environment_line()} neuroHarmonize {version("neuroharmonize")}, statsmodels {version("statsmodels")}.

Machine: shared 2-core CPU (another job was training on both cores); load average at start {load_before:.1f}, at end {load_after:.1f}.

Command: `python benchmarks/combat_gam_reference.py --subjects {args.subjects} --seed {args.seed}`

Data: `make_cohort({args.subjects}, seed=3, age_range=(45, 95))`, {len(features)} features (`log(1 + mL)` of the measured total and regional volumes), 8 sites; covariates: age as a smooth term, sex as a 0/1 column. neuroHarmonize `harmonizationLearn(data, covars, smooth_terms=["AGE"], seed={args.seed})` took {nh_seconds:.1f} s (its per-feature k-fold search of the penalty weight).

{header}{body}
Penalty weights (statsmodels `GLMGam` scale, `(X'X + 2 alpha S) b = X'y`):

{weights}"""
    args.out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
