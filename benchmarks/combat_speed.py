"""ComBat speed and agreement: wmhkit.stats.ComBat against neuroCombat on 10,000 subjects x 40 features.

Usage::

    python benchmarks/combat_speed.py [--subjects 10000] [--features 40] [--repeats 3] [--out benchmarks/results/combat_speed.md]

Data: a synthetic cohort from ``wmhkit.synth.make_cohort`` (8 sites) with 40 features built
from its regional log(1 + mL) volumes plus feature-specific site shifts and scales; ages are
rounded to 1/4 year so that neuroCombat's float32 cast of continuous covariates is exact.
Each configuration is timed ``--repeats`` times (wall clock, best of the repeats, BLAS
single-threaded for both), and the maximum absolute
difference between the two harmonised matrices is reported. neuroCombat's non-parametric
empirical Bayes underflows to NaN for sites with hundreds of subjects, so that
configuration runs on a 1,000-subject subset.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import platform
import time
from pathlib import Path

# Single-threaded BLAS for both tools: on a shared 2-core machine, multi-threaded OpenBLAS
# turns the small matrix products of either implementation into thread contention.
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from bench_environment import environment_line


def make_data(n_subjects: int, n_features: int, seed: int = 0) -> tuple[pd.DataFrame, list[str]]:
    from wmhkit.synth.cohort import make_cohort

    cohort = make_cohort(n_subjects, seed=seed)
    table = cohort.table.copy()
    table["age"] = np.round(table["age"] * 4) / 4
    regional = [c for c in table.columns if c.startswith("wmh_") and c.endswith("_ml") and not c.endswith("true_ml")]
    rng = np.random.default_rng(seed)
    sites = sorted(table["site"].unique())
    site_idx = table["site"].map({s: i for i, s in enumerate(sites)}).to_numpy()
    features = []
    for j in range(n_features):
        base = np.log1p(table[regional[j % len(regional)]].to_numpy())
        shift = rng.normal(0, 0.3, len(sites))[site_idx]
        scale = np.exp(rng.normal(0, 0.2, len(sites)))[site_idx]
        name = f"feature_{j:02d}"
        table[name] = base * scale + shift + rng.normal(0, 0.1, len(table))
        features.append(name)
    return table, features


def array_inputs(table, features):
    """What each tool takes as arrays: neuroCombat features x subjects + covariate frame; wmhkit subjects x features + design."""
    data = table[features].to_numpy(dtype=float)
    design = np.column_stack([table["age"].to_numpy(float), (table["sex"] == "M").to_numpy(float)])
    return {"data_t": np.ascontiguousarray(data.T), "covars": table[["site", "age", "sex"]].copy(),
            "data": data, "sites": table["site"].to_numpy(), "design": design}


def run_neurocombat(inputs, **options):
    from neuroCombat import neuroCombat

    if not hasattr(np, "int"):  # neuroCombat 0.2.12 still calls np.int for ref_batch
        np.int = int  # type: ignore[attr-defined]
    with contextlib.redirect_stdout(io.StringIO()):
        out = neuroCombat(inputs["data_t"].copy(), inputs["covars"], "site",
                          categorical_cols=["sex"], continuous_cols=["age"], **options)
    return out["data"].T


def run_neurocombat_table(table, features, **options):
    return run_neurocombat(array_inputs(table, features), **options)


def run_wmhkit_arrays(inputs, **options):
    from wmhkit.stats.combat import combat_arrays

    ref = options.pop("ref_batch", None)
    return combat_arrays(inputs["data"], inputs["sites"], inputs["design"], reference_site=ref, **options)


def run_wmhkit_table(table, features, **options):
    from wmhkit.stats.combat import ComBat

    ref = options.pop("ref_batch", None)
    model = ComBat(covariates=["age", "sex"], reference_site=ref, **options)
    return model.fit_transform(table, features)[features].to_numpy()


def timed(fn, repeats):
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return float(np.min(times)), result


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subjects", type=int, default=10000)
    parser.add_argument("--features", type=int, default=40)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "combat_speed.md")
    args = parser.parse_args(argv)

    load_before = os.getloadavg()[0]
    table, features = make_data(args.subjects, args.features)
    small = table.iloc[:1000].copy()
    configs = [
        ("parametric EB (default)", table, {}),
        ("parametric EB, reference site", table, {"ref_batch": "site01"}),
        ("no EB", table, {"eb": False}),
        ("mean only, parametric EB", table, {"mean_only": True}),
        ("non-parametric EB (1,000 subjects)", small, {"parametric": False}),
    ]
    rows = []
    for name, data, options in configs:
        inputs = array_inputs(data, features)
        times, results = {}, {}
        for key, fn in [("neuroCombat arrays", lambda: run_neurocombat(inputs, **dict(options))),
                        ("wmhkit arrays", lambda: run_wmhkit_arrays(inputs, **dict(options))),
                        ("neuroCombat table", lambda: run_neurocombat_table(data, features, **dict(options))),
                        ("wmhkit table", lambda: run_wmhkit_table(data, features, **dict(options)))]:
            times[key], results[key] = timed(fn, args.repeats)
        diff = max(float(np.nanmax(np.abs(results["neuroCombat arrays"] - results[k]))) for k in ("wmhkit arrays", "wmhkit table"))
        rows.append({"configuration": name, "subjects": len(data), "features": len(features), **times,
                     "speed-up arrays": times["neuroCombat arrays"] / times["wmhkit arrays"],
                     "speed-up table": times["neuroCombat table"] / times["wmhkit table"], "max_abs_diff": diff})
        print(rows[-1], flush=True)
    frame = pd.DataFrame(rows)
    lines = [
        "# ComBat: wmhkit.stats.ComBat vs neuroCombat",
        "",
        environment_line(),
        "",
        f"Machine: shared 2-core CPU, 24 GB RAM, no GPU ({platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} logical CPUs visible). Load average at start {load_before:.1f}, at end "
        f"{os.getloadavg()[0]:.1f}: other jobs shared the 2 cores, so absolute times are inflated and noisy; "
        f"the ratios are the comparison. Python {platform.python_version()}, "
        f"numpy {np.__version__}.",
        "",
        f"Command: `python benchmarks/combat_speed.py --subjects {args.subjects} --features {args.features} --repeats {args.repeats}`",
        "",
        "Synthetic cohort (make_cohort, seed 0, 8 sites) with covariates age (continuous) and sex (categorical) preserved. "
        "Times are the best wall-clock time of the repeats for fit + transform of all subjects, with BLAS "
        "single-threaded (OPENBLAS_NUM_THREADS=1) for both tools.",
        "",
        "Two levels are timed. *Arrays*: each tool gets its own array inputs prepared before the clock starts "
        "(neuroCombat: features x subjects array and the covariate DataFrame it requires; wmhkit `combat_arrays`: "
        "subjects x features array, site labels and a numeric covariate design) and returns the harmonised array. "
        "*Table*: from the cohort DataFrame to harmonised values, every conversion included (for neuroCombat the "
        "conversion to its inputs; for wmhkit `ComBat(covariates=['age', 'sex']).fit_transform(table, features)` "
        "with its validation and missing-value report).",
        "",
        "| configuration | subjects | features | neuroCombat arrays (s) | wmhkit arrays (s) | speed-up | neuroCombat table (s) | wmhkit table (s) | speed-up | max abs diff |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(f"| {r['configuration']} | {r['subjects']} | {r['features']} | {r['neuroCombat arrays']:.3f} | "
                     f"{r['wmhkit arrays']:.4f} | {r['speed-up arrays']:.1f}x | {r['neuroCombat table']:.3f} | "
                     f"{r['wmhkit table']:.4f} | {r['speed-up table']:.1f}x | {r['max_abs_diff']:.1e} |")
    lines.append("")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines))
    print(frame.to_string())


if __name__ == "__main__":
    main()
