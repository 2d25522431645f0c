"""Synthetic multi-site cohorts with known white-matter hyperintensity (WMH) statistics.

:func:`make_cohort` draws one row per subject: age, sex, site, eTIV, white-matter volume,
hypertension, the true WMH volume (exponential growth with age, women higher), regional
volumes, the volumes a site's scanner would *measure* (multiplicative and additive site
effects plus site-specific noise, for harmonisation to remove), follow-up time and incident
dementia whose hazard rises with WMH. Every generating parameter is returned with the table,
so tests and notebooks can check that the statistics recover it.

Generating model (log is natural log; ``female`` is 0/1; ages centred at ``age_center``)::

    log(wmh_true_ml) = log_wmh_intercept + age_slope_per_year * (age - age_center)
                       + age_quadratic_per_year2 * (age - age_center)**2
                       + female_effect + female_age_slope_per_year * female * (age - age_center)
                       + hypertension_effect * hypertension
                       + etiv_exponent * log(etiv_ml / etiv_reference_ml) + N(0, log_wmh_sd)
    wmh_ml (measured) = wmh_true_ml * site_scale[site] * exp(N(0, site_noise_sd[site]))
                        + site_offset_ml[site]          (clipped at 0)
    dementia hazard   = Weibull(shape) baseline * exp(log_hr_per_sd * z(log wmh_true_ml)
                        + log_hr_age_per_year * (age - age_center) + log_hr_hypertension * hypertension)

``z(log wmh_true_ml)`` uses the sample mean and standard deviation (``params['log_wmh_true_mean']``,
``params['log_wmh_true_sd']``), so the hazard ratio per SD of log true WMH is exactly
``exp(log_hr_per_sd)`` conditional on age and hypertension.

The defaults match published figures: median WMH about 2 mL in people aged 65+, about
0.25 mL under 45, about 7 mL in men and 13 mL in women over 85, and a hazard ratio of
dementia per SD of WMH of about 1.7.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from wmhkit.errors import OptionError

__all__ = ["SyntheticCohort", "make_cohort", "DEFAULT_COHORT_PARAMS", "REGION_GROUPS"]

logger = logging.getLogger(__name__)

#: Regional partitions of the total lesion volume; each group's volumes sum to ``wmh_true_ml``.
#: Values are the mean share of each region (Dirichlet means).
REGION_GROUPS: dict[str, dict[str, float]] = {
    "location": {"periventricular": 0.6, "deep": 0.4},
    "depth": {"depth1": 0.45, "depth2": 0.30, "depth3": 0.17, "depth4": 0.08},
    "lobe": {"frontal": 0.45, "parietal": 0.30, "temporal": 0.12, "occipital": 0.13},
}

#: Every generating parameter and its default; ``make_cohort(**params)`` overrides any of them.
DEFAULT_COHORT_PARAMS: dict = {
    # demographics
    "age_range": (65.0, 95.0),  # years; (20, 95) gives a lifespan cohort
    "age_beta_shape": (1.2, 2.5),  # age = lo + (hi - lo) * Beta(a, b): most subjects young-old
    "female_fraction": 0.56,
    "n_sites": 8,
    "site_weights": None,  # None: unequal sizes drawn from Dirichlet(5) with the seed
    "etiv_mean_ml": {"M": 1560.0, "F": 1380.0},
    "etiv_sd_ml": 110.0,
    "wm_fraction_of_etiv_at_center": 0.31,
    "wm_fraction_slope_per_year": -0.0012,
    "wm_fraction_sd": 0.015,
    "hypertension_logit_intercept": 0.0,
    "hypertension_logit_per_year": 0.04,
    # true WMH (log scale)
    "age_center": 70.0,
    "log_wmh_intercept": float(np.log(0.95)),  # men without hypertension at age_center, eTIV reference
    "age_slope_per_year": 0.079,  # at age_center
    "age_quadratic_per_year2": 0.0008,  # growth accelerates with age
    "female_effect": 0.35,
    "female_age_slope_per_year": 0.015,
    "hypertension_effect": 0.30,
    "etiv_exponent": 1.0,
    "etiv_reference_ml": 1450.0,
    "log_wmh_sd": 0.9,
    # regional shares: larger loads are more periventricular
    "region_concentration": 20.0,
    "periventricular_logit_per_log_ml": 0.5,
    # scanner/site effects on measured volumes
    "site_scale_sd": 0.20,  # log-normal spread of the multiplicative site factor
    "site_offset_ml_range": (-0.3, 0.6),  # additive site offset, uniform
    "site_noise_sd_range": (0.05, 0.35),  # site-specific measurement noise on the log scale
    "region_scale_sd": 0.10,  # extra per-region, per-site spread of the multiplicative factor
    # follow-up and dementia
    "log_hr_per_sd": float(np.log(1.7)),
    "log_hr_age_per_year": float(np.log(2.5) / 10.0),
    "log_hr_hypertension": float(np.log(1.3)),
    "baseline_rate_per_year": 0.012,  # Weibull scale at the reference profile
    "weibull_shape": 1.3,
    "followup_range_years": (3.0, 10.0),  # administrative censoring, uniform
    "dropout_rate_per_year": 0.03,  # exponential loss to follow-up
}


@dataclass
class SyntheticCohort:
    """A synthetic cohort table and every parameter that generated it.

    Attributes
    ----------
    table : pandas.DataFrame
        One row per subject. Columns: ``subject_id``, ``age`` (years), ``sex`` ("F"/"M"),
        ``site`` ("site01".."site08"), ``etiv_ml``, ``wm_ml``, ``hypertension`` (0/1),
        ``wmh_true_ml`` and the measured ``wmh_ml``, regional ``wmh_<region>_true_ml`` and
        ``wmh_<region>_ml`` (regions in :data:`REGION_GROUPS`), ``followup_years`` and
        ``dementia`` (1 = incident dementia observed, 0 = censored).
    params : dict
        Every generating parameter (defaults overridden by the caller), the seed, and the
        per-site effects actually drawn (``site_scale``, ``site_offset_ml``, ``site_noise_sd``,
        ``region_site_scale``) and derived constants (``log_wmh_true_mean``, ``log_wmh_true_sd``).
    """

    table: pd.DataFrame
    params: dict = field(default_factory=dict)

    def __repr__(self) -> str:
        return f"SyntheticCohort(n_subjects={len(self.table)}, seed={self.params.get('seed')})"


def _check_params(params: dict) -> dict:
    unknown = sorted(set(params) - set(DEFAULT_COHORT_PARAMS))
    if unknown:
        raise OptionError(
            f"make_cohort got unknown parameter(s) {unknown}; use names from DEFAULT_COHORT_PARAMS."
        )
    merged = {**DEFAULT_COHORT_PARAMS, **params}
    lo, hi = merged["age_range"]
    if not 0 <= lo < hi:
        raise OptionError(f"make_cohort age_range={merged['age_range']} must be (low, high) with 0 <= low < high.")
    if int(merged["n_sites"]) < 1:
        raise OptionError(f"make_cohort n_sites={merged['n_sites']} must be at least 1.")
    return merged


def _regional_shares(rng, log_load: np.ndarray, p: dict) -> dict[str, np.ndarray]:
    """Per-subject shares of the total load in each region, one Dirichlet per group."""
    shares: dict[str, np.ndarray] = {}
    conc = float(p["region_concentration"])
    n = log_load.size
    for group, means in REGION_GROUPS.items():
        names = list(means)
        base = np.log(np.array([means[r] for r in names]))
        logits = np.broadcast_to(base, (n, len(names))).copy()
        if group == "location":
            # the periventricular share grows with the total load (caps and bands become confluent)
            logits[:, 0] += p["periventricular_logit_per_log_ml"] * log_load
        alpha_mean = np.exp(logits - logits.max(axis=1, keepdims=True))
        alpha_mean /= alpha_mean.sum(axis=1, keepdims=True)
        gam = rng.gamma(conc * alpha_mean)
        gam = np.maximum(gam, 1e-12)
        frac = gam / gam.sum(axis=1, keepdims=True)
        for i, name in enumerate(names):
            shares[name] = frac[:, i]
    return shares


def make_cohort(n_subjects: int = 1000, seed: int = 0, **params) -> SyntheticCohort:
    """Draw a synthetic multi-site cohort with WMH volumes, site effects and dementia follow-up.

    Parameters
    ----------
    n_subjects : int, default 1000
        Number of subjects (rows).
    seed : int, default 0
        Seed of the random generator; the same seed gives the same cohort.
    **params
        Any key of :data:`DEFAULT_COHORT_PARAMS` (e.g. ``age_range=(20, 95)``,
        ``log_hr_per_sd=0.5``, ``n_sites=3``); unknown keys raise ``OptionError``.

    Returns
    -------
    SyntheticCohort
        ``table`` (one row per subject) and ``params`` (everything that generated it).

    Examples
    --------
    >>> cohort = make_cohort(200, seed=1)
    >>> len(cohort.table), cohort.table["subject_id"].is_unique
    (200, True)
    >>> sorted(cohort.table["site"].unique())[:2]
    ['site01', 'site02']
    """
    n_subjects = int(n_subjects)
    if n_subjects < 1:
        raise OptionError(f"make_cohort n_subjects={n_subjects} must be at least 1.")
    p = _check_params(params)
    rng = np.random.default_rng(seed)
    n = n_subjects

    # demographics
    lo, hi = (float(v) for v in p["age_range"])
    a, b = p["age_beta_shape"]
    age = lo + (hi - lo) * rng.beta(a, b, size=n)
    female = (rng.random(n) < p["female_fraction"]).astype(np.int8)
    sex = np.where(female == 1, "F", "M")
    n_sites = int(p["n_sites"])
    if p["site_weights"] is None:
        site_weights = rng.dirichlet(np.full(n_sites, 5.0))
    else:
        site_weights = np.asarray(p["site_weights"], dtype=float)
        if site_weights.shape != (n_sites,) or np.any(site_weights < 0) or site_weights.sum() <= 0:
            raise OptionError(f"make_cohort site_weights must be {n_sites} non-negative numbers.")
        site_weights = site_weights / site_weights.sum()
    site_index = rng.choice(n_sites, size=n, p=site_weights)
    site_names = np.array([f"site{i + 1:02d}" for i in range(n_sites)])
    etiv_mean = np.where(female == 1, p["etiv_mean_ml"]["F"], p["etiv_mean_ml"]["M"])
    etiv_ml = etiv_mean + p["etiv_sd_ml"] * rng.standard_normal(n)
    centred_age = age - p["age_center"]
    wm_frac = (
        p["wm_fraction_of_etiv_at_center"]
        + p["wm_fraction_slope_per_year"] * centred_age
        + p["wm_fraction_sd"] * rng.standard_normal(n)
    )
    wm_ml = etiv_ml * np.clip(wm_frac, 0.05, 0.6)
    htn_logit = p["hypertension_logit_intercept"] + p["hypertension_logit_per_year"] * centred_age
    hypertension = (rng.random(n) < 1.0 / (1.0 + np.exp(-htn_logit))).astype(np.int8)

    # true WMH
    log_wmh = (
        p["log_wmh_intercept"]
        + p["age_slope_per_year"] * centred_age
        + p["age_quadratic_per_year2"] * centred_age**2
        + p["female_effect"] * female
        + p["female_age_slope_per_year"] * female * centred_age
        + p["hypertension_effect"] * hypertension
        + p["etiv_exponent"] * np.log(etiv_ml / p["etiv_reference_ml"])
        + p["log_wmh_sd"] * rng.standard_normal(n)
    )
    wmh_true_ml = np.exp(log_wmh)
    shares = _regional_shares(rng, log_wmh - np.log(2.0), p)

    # site effects: multiplicative, additive, and site-specific noise on the measured volume
    site_scale = np.exp(p["site_scale_sd"] * rng.standard_normal(n_sites))
    off_lo, off_hi = p["site_offset_ml_range"]
    site_offset_ml = rng.uniform(off_lo, off_hi, size=n_sites)
    sd_lo, sd_hi = p["site_noise_sd_range"]
    site_noise_sd = rng.uniform(sd_lo, sd_hi, size=n_sites)

    def measure(true_ml: np.ndarray, scale: np.ndarray, offset_share: float) -> np.ndarray:
        noise = site_noise_sd[site_index] * rng.standard_normal(n)
        measured = true_ml * scale[site_index] * np.exp(noise) + offset_share * site_offset_ml[site_index]
        return np.maximum(measured, 0.0)

    columns: dict[str, np.ndarray] = {
        "subject_id": np.array([f"sub-{i + 1:05d}" for i in range(n)]),
        "age": age,
        "sex": sex,
        "site": site_names[site_index],
        "etiv_ml": etiv_ml,
        "wm_ml": wm_ml,
        "hypertension": hypertension,
        "wmh_true_ml": wmh_true_ml,
        "wmh_ml": measure(wmh_true_ml, site_scale, 1.0),
    }
    region_site_scale: dict[str, list[float]] = {}
    for group, means in REGION_GROUPS.items():
        for region, mean_share in means.items():
            scale = site_scale * np.exp(p["region_scale_sd"] * rng.standard_normal(n_sites))
            region_site_scale[region] = scale.tolist()
            true_ml = wmh_true_ml * shares[region]
            columns[f"wmh_{region}_true_ml"] = true_ml
            columns[f"wmh_{region}_ml"] = measure(true_ml, scale, mean_share)

    # follow-up and incident dementia (Weibull proportional hazards, censoring by dropout and end of study)
    log_wmh_mean = float(log_wmh.mean())
    log_wmh_sd = float(log_wmh.std(ddof=1)) if n > 1 else 1.0
    z_wmh = (log_wmh - log_wmh_mean) / log_wmh_sd
    linear_predictor = (
        p["log_hr_per_sd"] * z_wmh
        + p["log_hr_age_per_year"] * centred_age
        + p["log_hr_hypertension"] * hypertension
    )
    shape = float(p["weibull_shape"])
    # S(t) = exp(-(rate * t)^shape * exp(lp))  =>  t = (-log U / exp(lp))^(1/shape) / rate
    event_time = (-np.log(rng.random(n)) / np.exp(linear_predictor)) ** (1.0 / shape) / p["baseline_rate_per_year"]
    f_lo, f_hi = p["followup_range_years"]
    end_of_study = rng.uniform(f_lo, f_hi, size=n)
    dropout = rng.exponential(1.0 / p["dropout_rate_per_year"], size=n) if p["dropout_rate_per_year"] > 0 else np.full(n, np.inf)
    censor_time = np.minimum(end_of_study, dropout)
    columns["followup_years"] = np.minimum(event_time, censor_time)
    columns["dementia"] = (event_time <= censor_time).astype(np.int8)

    table = pd.DataFrame(columns)
    table["sex"] = table["sex"].astype(str)
    table["site"] = table["site"].astype(str)

    out_params = dict(p)
    out_params.update(
        {
            "n_subjects": n,
            "seed": seed,
            "site_names": site_names.tolist(),
            "site_weights": site_weights.tolist(),
            "site_scale": dict(zip(site_names.tolist(), site_scale.tolist())),
            "site_offset_ml": dict(zip(site_names.tolist(), site_offset_ml.tolist())),
            "site_noise_sd": dict(zip(site_names.tolist(), site_noise_sd.tolist())),
            "region_site_scale": {r: dict(zip(site_names.tolist(), s)) for r, s in region_site_scale.items()},
            "regions": {g: list(m) for g, m in REGION_GROUPS.items()},
            "log_wmh_true_mean": log_wmh_mean,
            "log_wmh_true_sd": log_wmh_sd,
            "hr_per_sd": float(np.exp(p["log_hr_per_sd"])),
        }
    )
    logger.debug("synthetic cohort: %d subjects, %d sites, %d events", n, n_sites, int(columns["dementia"].sum()))
    return SyntheticCohort(table=table, params=out_params)
