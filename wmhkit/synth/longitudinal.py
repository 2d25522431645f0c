"""Synthetic longitudinal cohorts: repeated WMH scans with known subject-level growth rates.

:func:`make_longitudinal_cohort` starts from a cross-sectional baseline drawn by
:func:`wmhkit.synth.cohort.make_cohort` (age, sex, site, eTIV, hypertension, true WMH) and
follows each person over 2-5 scan sessions. Every subject grows at their own rate on the log
scale; scanners are replaced at some sites during the study (a new scanner with its own
multiplicative bias, so the site of a subject can change between visits); people with more
WMH or with dementia are more likely to miss later visits; incident dementia depends on the
baseline burden and on the growth rate. Every generating value is returned, so tests and
notebooks can check that :func:`wmhkit.stats.fit_progression` recovers it.

Generating model (natural logs; ``t`` years since baseline; ``c`` subject covariates)::

    log_rate_i   = log_rate_mean_per_year
                   + log_rate_per_log_ml * (log wmh0_i - log(reference_ml))
                   + log_rate_age_per_year * (age0_i - age_center)
                   + log_rate_hypertension * hypertension_i + N(0, log_rate_sd_per_year)
    log true(t)  = log wmh0_i + log_rate_i * t
    wmh_ml(t)    = true(t) * scanner_scale[scanner at t] * exp(N(0, measurement_sd))
    P(miss visit k >= 3 and all later | history)
                 = logistic(dropout_logit_intercept + dropout_logit_per_log_ml * (log wmh at k-1 - log(reference_ml))
                            + dropout_logit_dementia * dementia_before_visit_k)
    dementia hazard = Weibull(weibull_shape, baseline_rate_per_year)
                      * exp(log_hr_baseline_per_sd * z(log wmh0) + log_hr_rate_per_sd * z(log_rate)
                            + log_hr_age_per_year * (age0 - age_center))

The defaults are in the range of published population studies of WMH progression (relative
growth of about 5-10 % a year in people over 60, faster with larger baseline loads and with
hypertension; scan-rescan variability of about 10 % on volumes): mean log-rate 0.07 / year
(7.3 % / year), between-subject SD 0.035 / year. Dementia is ascertained until the end of the
study whether or not a person keeps coming to the scanner (registry follow-up), so its
follow-up runs from baseline to diagnosis or to the end of the study.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from wmhkit.errors import OptionError
from wmhkit.synth.cohort import make_cohort

__all__ = ["DEFAULT_LONGITUDINAL_PARAMS", "LongitudinalCohort", "make_longitudinal_cohort"]

logger = logging.getLogger(__name__)

#: Every generating parameter and its default; ``make_longitudinal_cohort(**params)`` overrides any of them.
DEFAULT_LONGITUDINAL_PARAMS: dict = {
    # baseline (passed to make_cohort)
    "baseline_age_range": (60.0, 85.0),  # years
    "n_sites": 6,
    "age_center": 70.0,  # years; centre of the age terms below
    "reference_ml": 2.0,  # mL; centre of the log-burden terms below
    # visits
    "n_visits_range": (2, 5),  # planned sessions per person, baseline included, uniform
    "visit_interval_years": 2.0,
    "interval_jitter_years": 0.4,  # SD of each interval around its planned length
    "recruitment_years": 3.0,  # baseline dates spread uniformly over this window
    "study_start": "2010-01-01",
    # growth (log scale, per year)
    "log_rate_mean_per_year": 0.07,
    "log_rate_sd_per_year": 0.035,
    "log_rate_per_log_ml": 0.015,
    "log_rate_age_per_year": 0.002,
    "log_rate_hypertension": 0.015,
    # measurement and scanners
    "measurement_sd": 0.10,  # log-scale scan-rescan noise
    "upgrade_fraction": 0.5,  # share of sites that replace their scanner during the study
    "upgrade_year_range": (2.0, 7.0),  # years after study start
    "upgrade_scale_sd": 0.15,  # log-normal spread of the new scanner's bias relative to the old one
    # dropout before sessions 3, 4, 5 (everyone has sessions 1 and 2)
    "dropout_logit_intercept": -2.2,
    "dropout_logit_per_log_ml": 0.4,
    "dropout_logit_dementia": 2.5,
    # incident dementia
    "log_hr_baseline_per_sd": float(np.log(1.5)),
    "log_hr_rate_per_sd": float(np.log(1.4)),
    "log_hr_age_per_year": float(np.log(2.5) / 10.0),
    "baseline_rate_per_year": 0.012,
    "weibull_shape": 1.3,
    "study_years": 12.0,  # dementia ascertained until this many years after study start
}


@dataclass
class LongitudinalCohort:
    """A synthetic longitudinal cohort and every value that generated it.

    Attributes
    ----------
    table : pandas.DataFrame
        One row per scan session: ``subject_id``, ``session`` (BIDS label ``ses-01``..),
        ``visit`` (1..), ``scan_date`` (ISO date), ``age`` (years at the scan),
        ``age_baseline`` (years), ``years_since_baseline``, ``sex``, ``site`` (the scanner of
        that session: ``site03`` before an upgrade, ``site03b`` after), ``hypertension``,
        ``etiv_ml``, ``wmh_true_ml`` and the measured ``wmh_ml``, and the subject's
        ``dementia`` (0/1) and ``dementia_years`` (baseline to diagnosis or end of study).
    subjects : pandas.DataFrame
        One row per subject with the truth: ``subject_id``, ``age_baseline``, ``sex``,
        ``hypertension``, ``wmh_baseline_true_ml``, ``log_rate_true`` (per year),
        ``percent_per_year_true``, ``n_visits``, ``dementia``, ``dementia_years``.
    params : dict
        Every generating parameter, the seed, the scanner biases actually drawn
        (``scanner_scale``), the upgrade years, and ``baseline_params`` (those of the
        cross-sectional baseline cohort).
    """

    table: pd.DataFrame
    subjects: pd.DataFrame
    params: dict = field(default_factory=dict)

    def __repr__(self) -> str:
        return (f"LongitudinalCohort(n_subjects={len(self.subjects)}, n_sessions={len(self.table)}, "
                f"seed={self.params.get('seed')})")


def _check_params(params: dict) -> dict:
    unknown = sorted(set(params) - set(DEFAULT_LONGITUDINAL_PARAMS))
    if unknown:
        raise OptionError(f"make_longitudinal_cohort got unknown parameter(s) {unknown}; "
                          "use names from DEFAULT_LONGITUDINAL_PARAMS.")
    merged = {**DEFAULT_LONGITUDINAL_PARAMS, **params}
    low, high = (int(v) for v in merged["n_visits_range"])
    if not 2 <= low <= high:
        raise OptionError(f"make_longitudinal_cohort n_visits_range={merged['n_visits_range']} must be (low, high) "
                          "with 2 <= low <= high.")
    return merged


def _logistic(x):
    return 1.0 / (1.0 + np.exp(-x))


def make_longitudinal_cohort(n_subjects: int = 800, seed: int = 0, **params) -> LongitudinalCohort:
    """Draw a synthetic longitudinal cohort: 2-5 WMH scans per person with known growth rates.

    Parameters
    ----------
    n_subjects : int, default 800
        Number of people at baseline.
    seed : int, default 0
        Seed of the random generator; the same seed gives the same cohort.
    **params
        Any key of :data:`DEFAULT_LONGITUDINAL_PARAMS` (e.g. ``log_rate_mean_per_year=0.05``,
        ``measurement_sd=0.2``); unknown keys raise ``OptionError``.

    Returns
    -------
    LongitudinalCohort
        ``table`` (one row per session), ``subjects`` (the truth per subject) and ``params``.

    Examples
    --------
    >>> cohort = make_longitudinal_cohort(50, seed=1)
    >>> bool(cohort.table.groupby("subject_id").size().between(2, 5).all())
    True
    >>> cohort.table["session"].iloc[:2].tolist()
    ['ses-01', 'ses-02']
    """
    n = int(n_subjects)
    if n < 2:
        raise OptionError(f"make_longitudinal_cohort n_subjects={n_subjects} must be at least 2.")
    p = _check_params(params)
    base = make_cohort(n, seed=seed, age_range=tuple(p["baseline_age_range"]), n_sites=int(p["n_sites"]),
                       age_center=float(p["age_center"]))
    rng = np.random.default_rng([seed, 23])
    b = base.table
    age0 = b["age"].to_numpy()
    log_wmh0 = np.log(b["wmh_true_ml"].to_numpy())
    htn = b["hypertension"].to_numpy()
    burden = log_wmh0 - np.log(p["reference_ml"])

    # subject-level growth rates
    log_rate = (p["log_rate_mean_per_year"] + p["log_rate_per_log_ml"] * burden
                + p["log_rate_age_per_year"] * (age0 - p["age_center"]) + p["log_rate_hypertension"] * htn
                + p["log_rate_sd_per_year"] * rng.standard_normal(n))

    # scanners: some sites replace theirs during the study, with a new bias
    sites = list(base.params["site_names"])
    scale = dict(base.params["site_scale"])
    upgraded = rng.random(len(sites)) < p["upgrade_fraction"]
    upgrade_year = {s: float(rng.uniform(*p["upgrade_year_range"])) for s, u in zip(sites, upgraded) if u}
    for s in upgrade_year:
        scale[f"{s}b"] = scale[s] * float(np.exp(p["upgrade_scale_sd"] * rng.standard_normal()))

    # dementia (Weibull proportional hazards), ascertained until the end of the study
    z_base = (log_wmh0 - log_wmh0.mean()) / log_wmh0.std(ddof=1)
    z_rate = (log_rate - log_rate.mean()) / log_rate.std(ddof=1)
    lp = (p["log_hr_baseline_per_sd"] * z_base + p["log_hr_rate_per_sd"] * z_rate
          + p["log_hr_age_per_year"] * (age0 - p["age_center"]))
    shape = float(p["weibull_shape"])
    event_time = (-np.log(rng.random(n)) / np.exp(lp)) ** (1.0 / shape) / p["baseline_rate_per_year"]
    start = rng.uniform(0.0, p["recruitment_years"], n)  # baseline, years after study start
    end_of_study = p["study_years"] - start
    dementia = (event_time <= end_of_study).astype(np.int8)
    dementia_years = np.minimum(event_time, end_of_study)

    # sessions
    low, high = (int(v) for v in p["n_visits_range"])
    planned = rng.integers(low, high + 1, n)
    rows = []
    study_start = pd.Timestamp(p["study_start"])
    n_visits = np.zeros(n, dtype=int)
    for i in range(n):
        t, last_log = 0.0, None
        for k in range(1, planned[i] + 1):
            if k > 1:
                t += max(0.5, p["visit_interval_years"] + p["interval_jitter_years"] * rng.standard_normal())
                if t > end_of_study[i]:
                    break
            if k >= 3:
                logit = (p["dropout_logit_intercept"] + p["dropout_logit_per_log_ml"] * (last_log - np.log(p["reference_ml"]))
                         + p["dropout_logit_dementia"] * float(event_time[i] <= t))
                if rng.random() < _logistic(logit):
                    break
            site = b["site"].iat[i]
            if site in upgrade_year and start[i] + t >= upgrade_year[site]:
                site = f"{site}b"
            true_log = log_wmh0[i] + log_rate[i] * t
            measured_log = true_log + np.log(scale[site]) + p["measurement_sd"] * rng.standard_normal()
            last_log = measured_log
            rows.append((b["subject_id"].iat[i], f"ses-{k:02d}", k,
                         (study_start + pd.Timedelta(days=round(365.25 * (start[i] + t)))).date().isoformat(),
                         age0[i] + t, age0[i], t, site, float(np.exp(true_log)), float(np.exp(measured_log))))
            n_visits[i] = k
    table = pd.DataFrame(rows, columns=["subject_id", "session", "visit", "scan_date", "age", "age_baseline",
                                        "years_since_baseline", "site", "wmh_true_ml", "wmh_ml"])
    per_subject = pd.DataFrame({
        "subject_id": b["subject_id"], "sex": b["sex"], "hypertension": htn, "etiv_ml": b["etiv_ml"],
        "dementia": dementia, "dementia_years": dementia_years,
    })
    table = table.merge(per_subject, on="subject_id", how="left", validate="many_to_one")
    table = table[["subject_id", "session", "visit", "scan_date", "age", "age_baseline", "years_since_baseline", "sex",
                   "site", "hypertension", "etiv_ml", "wmh_true_ml", "wmh_ml", "dementia", "dementia_years"]]
    subjects = pd.DataFrame({
        "subject_id": b["subject_id"], "age_baseline": age0, "sex": b["sex"], "hypertension": htn,
        "wmh_baseline_true_ml": np.exp(log_wmh0), "log_rate_true": log_rate,
        "percent_per_year_true": 100.0 * np.expm1(log_rate), "n_visits": n_visits,
        "dementia": dementia, "dementia_years": dementia_years,
    })
    out_params = dict(p)
    out_params.update({
        "n_subjects": n, "seed": seed, "scanner_scale": scale, "upgrade_year": upgrade_year,
        "log_rate_true_mean": float(log_rate.mean()), "baseline_params": base.params,
    })
    logger.debug("longitudinal cohort: %d subjects, %d sessions, %d incident dementia", n, len(table), int(dementia.sum()))
    return LongitudinalCohort(table=table, subjects=subjects, params=out_params)
