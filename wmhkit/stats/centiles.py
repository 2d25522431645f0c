"""Normative centile curves of lesion burden by age and sex.

Two methods, one model per sex:

``"shash"`` (default)
    A location-scale-shape model (GAMLSS-type; see :mod:`wmhkit.stats._lss`): the outcome
    follows a sinh-arcsinh distribution whose location, log-scale and skewness are natural
    cubic splines of age, fitted by maximum likelihood. Every centile comes from the same
    distribution, so curves never cross and the tails keep their shape at the youngest and
    oldest ages, where data are sparse; beyond the observed ages the splines are linear.
    A subject's z-score is exact (no clipping).
``"quantreg"``
    Separate linear quantile regressions on a patsy B-spline basis of age, sorted at every age
    (Chernozhukov, Fernandez-Val & Galichon's 2010 rearrangement). No distributional
    assumption, but the extreme centiles rest on few subjects at the edges of the age range
    and can dive or climb there. A subject's centile is interpolated on a dense grid of
    fitted quantiles (clipped to 1-99 %); beyond the fitted ages the curves are held flat.

Curves are drawn over each sex's observed age range; :meth:`CentileResult.curves` extends
them on request and flags the extension (``extrapolated``). Bootstrap bands resample
subjects within sex and refit (same knots).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats as sps

from wmhkit.errors import OptionError, TableError
from wmhkit.stats._lss import ShashCurve
from wmhkit.stats._validation import prepare, require_not_constant

__all__ = ["CentileResult", "DEFAULT_QUANTILES", "METHODS", "fit_centiles"]

logger = logging.getLogger(__name__)

#: Centiles drawn by default (as fractions).
DEFAULT_QUANTILES = (0.05, 0.10, 0.25, 0.50, 0.75, 0.90, 0.95)
#: Dense grid used to place individual subjects with quantile regression (fractions).
DENSE_QUANTILES = (0.01, 0.025) + tuple(np.round(np.arange(0.05, 0.951, 0.05), 3)) + (0.975, 0.99)
METHODS = ("shash", "quantreg")


def _fit_quantiles(x: np.ndarray, y: np.ndarray, quantiles) -> np.ndarray:
    """Coefficients (n_quantiles, n_basis) of linear quantile regressions, solved exactly as LPs.

    The dual of the check-loss problem, ``max y'a  s.t.  X'a = (1 - q) X'1, 0 <= a <= 1``,
    is solved with HiGHS; the coefficients are the duals of its equality constraints. This
    gives the exact optimum and is an order of magnitude faster than iterative reweighting.
    """
    from scipy.optimize import linprog

    coefs = []
    column_sums = x.sum(axis=0)
    for q in quantiles:
        res = linprog(-y, A_eq=x.T, b_eq=(1.0 - q) * column_sums, bounds=(0.0, 1.0), method="highs")
        if res.status != 0:
            raise TableError(f"Quantile regression at centile {100 * q:g} failed ({res.message}); check the outcome values.")
        coefs.append(-np.asarray(res.eqlin.marginals))
    return np.array(coefs)


class _QuantRegCurve:
    """Quantile-regression curves of one group: coefficients on a patsy basis for a grid of quantiles.

    A B-spline basis is not defined beyond its boundary knots: ages outside the fitted range
    are held at its ends (flat curves).
    """

    def __init__(self, design_info, age: str, grid, coefs, age_range):
        self.design_info, self.age, self.grid, self.coefs = design_info, age, tuple(grid), coefs
        self.age_range = age_range

    def _basis(self, ages) -> np.ndarray:
        import patsy

        ages = np.clip(np.asarray(ages, dtype=float), *self.age_range)
        return np.asarray(patsy.dmatrix(self.design_info, pd.DataFrame({self.age: ages})))

    def quantiles(self, ages, quantiles) -> np.ndarray:
        values = np.sort(self._basis(ages) @ self.coefs.T, axis=1)  # rearrangement: no crossing
        return values[:, [self.grid.index(q) for q in quantiles]]

    def z_scores(self, ages, y) -> np.ndarray:
        values = np.sort(self._basis(ages) @ self.coefs.T, axis=1)
        position = np.array([np.interp(v, q, self.grid) for v, q in zip(np.asarray(y, dtype=float), values)])
        return sps.norm.ppf(position)


@dataclass
class CentileResult:
    """Fitted centile curves.

    Attributes
    ----------
    quantiles : tuple of float
        The centiles drawn (fractions).
    dropped : pandas.DataFrame
        Rows left out for missing values.
    n_boot : int
        Bootstrap resamples behind the bands (0: no bands).
    outcome, age, sex : str
        The columns fitted (``sex`` None when pooled).
    method : str
        ``"shash"`` or ``"quantreg"``.
    age_range : tuple of float
        Youngest and oldest age fitted (years), all groups together.
    age_ranges : dict
        Per sex (key None when pooled): the youngest and oldest age observed (years).
    dfs : tuple of int
        Degrees of freedom used: ``(df, sigma_df, shape_df, tail_df)`` (``"quantreg"``: ``(df,)``).
    """

    quantiles: tuple
    dropped: pd.DataFrame
    n_boot: int
    outcome: str
    age: str
    sex: str | None
    method: str
    age_range: tuple[float, float]
    age_ranges: dict
    dfs: tuple
    _models: dict  # sex -> curve model (ShashCurve or _QuantRegCurve)
    _boot: dict = field(default_factory=dict)  # sex -> list of curve models

    def curves(self, ages=None, *, n_points: int = 50, level: float = 0.95, extend_to=None) -> pd.DataFrame:
        """Centile curves on an age grid, tidy for plotting.

        Parameters
        ----------
        ages : array-like, optional
            Ages (years) for every sex. Default: ``n_points`` evenly spaced over each sex's
            observed age range (or over ``extend_to``).
        n_points : int, default 50
        level : float, default 0.95
            Width of the bootstrap band (when ``n_boot`` > 0).
        extend_to : tuple of float, optional
            (youngest, oldest) age in years to draw beyond the data; the rows outside a
            sex's observed range get ``extrapolated = True``. Default: no extension.

        Returns
        -------
        pandas.DataFrame
            ``sex``, ``age``, ``quantile`` (fraction), ``centile`` (percent), ``value``,
            ``extrapolated`` (bool) and, with bootstrap, ``ci_low`` and ``ci_high``.
        """
        parts = []
        for sex_value, model in self._models.items():
            low, high = self.age_ranges[sex_value]
            if ages is not None:
                grid = np.asarray(ages, dtype=float)
            elif extend_to is not None:
                lo, hi = (float(a) for a in extend_to)
                inside = np.linspace(low, high, n_points)
                grid = np.unique(np.concatenate([np.linspace(min(lo, low), low, max(2, n_points // 5)), inside,
                                                 np.linspace(high, max(hi, high), max(2, n_points // 5))]))
            else:
                grid = np.linspace(low, high, n_points)
            values = model.quantiles(grid, self.quantiles)
            part = pd.DataFrame({
                "age": np.repeat(grid, len(self.quantiles)),
                "quantile": np.tile(self.quantiles, len(grid)),
                "value": values.ravel(),
                "extrapolated": np.repeat((grid < low - 1e-9) | (grid > high + 1e-9), len(self.quantiles)),
            })
            if self.n_boot:
                boot = np.stack([m.quantiles(grid, self.quantiles) for m in self._boot[sex_value]])
                tail = 50 * (1 - level)
                part["ci_low"] = np.percentile(boot, tail, axis=0).ravel()
                part["ci_high"] = np.percentile(boot, 100 - tail, axis=0).ravel()
            part.insert(0, "sex", sex_value)
            parts.append(part)
        out = pd.concat(parts, ignore_index=True)
        out.insert(3, "centile", 100 * out["quantile"])
        if self.sex is None:
            out = out.drop(columns="sex")
        return out

    def centiles(self, table: pd.DataFrame, *, subject_column: str | None = "subject_id") -> pd.DataFrame:
        """Each subject's centile (percent) and z-score on the fitted curves.

        Parameters
        ----------
        table : pandas.DataFrame
            Rows with the outcome, age and sex columns (new subjects allowed).
        subject_column : str or None, default "subject_id"

        Returns
        -------
        pandas.DataFrame
            Same index as ``table``: ``subject`` (when known), ``centile`` (percent),
            ``z_score`` and ``outside_age_range`` (the age lies beyond the ages the curves
            were fitted on: an extrapolation); NaN for rows with missing values. With
            ``"quantreg"``, centiles beyond the extreme fitted ones are clipped to 1-99 %.
        """
        kept, _ = prepare(table, numeric=[self.outcome, self.age], other=[self.sex] if self.sex else [],
                          subject_column=subject_column, what="centiles")
        if self.sex is not None:
            unknown = kept.loc[~kept[self.sex].isin(list(self._models)), self.sex]
            if len(unknown):
                raise TableError(f"Column {self.sex!r} holds {unknown.iloc[0]!r}, not a sex the centiles were fitted for.")
        z = pd.Series(np.nan, index=table.index)
        outside = pd.Series(False, index=table.index)
        for sex_value, model in self._models.items():
            rows = kept if self.sex is None else kept[kept[self.sex] == sex_value]
            if rows.empty:
                continue
            ages = rows[self.age].to_numpy(dtype=float)
            z[rows.index] = model.z_scores(ages, rows[self.outcome].to_numpy(dtype=float))
            low, high = self.age_ranges[sex_value]
            outside[rows.index] = (ages < low) | (ages > high)
        if outside.any():
            logger.warning("centiles: %d subjects are older or younger than the reference sample; their centiles "
                           "are extrapolated", int(outside.sum()))
        out = pd.DataFrame({"centile": 100 * sps.norm.cdf(z), "z_score": z, "outside_age_range": outside},
                           index=table.index)
        if subject_column and subject_column in table.columns:
            out.insert(0, "subject", table[subject_column])
        return out


def _quantreg_group(x, y, quantiles, design_info, age, rng, n_boot, age_range):
    grid = sorted(set(DENSE_QUANTILES) | set(quantiles))
    model = _QuantRegCurve(design_info, age, grid, _fit_quantiles(x, y, grid), age_range)
    boot = []
    for _ in range(int(n_boot)):
        pick = rng.integers(0, len(y), len(y))
        boot.append(_QuantRegCurve(design_info, age, quantiles, _fit_quantiles(x[pick], y[pick], quantiles), age_range))
    return model, boot


def _shash_group(ages, y, dfs, rng, n_boot):
    model = ShashCurve(*dfs).fit(ages, y)
    if not model.converged_:
        logger.warning("centiles: the SHASH fit stopped before converging (%d subjects)", len(y))
    boot = []
    for _ in range(int(n_boot)):
        pick = rng.integers(0, len(y), len(y))
        boot.append(ShashCurve(*dfs).fit(ages[pick], y[pick], start=model))
    return model, boot


def fit_centiles(
    table: pd.DataFrame,
    outcome: str,
    *,
    age: str = "age",
    sex: str | None = "sex",
    quantiles=DEFAULT_QUANTILES,
    method: str = "shash",
    df: int | None = None,
    sigma_df: int | None = None,
    shape_df: int | None = None,
    tail_df: int | None = None,
    n_boot: int = 0,
    seed: int = 0,
    subject_column: str | None = "subject_id",
) -> CentileResult:
    """Fit normative centile curves of ``outcome`` against age, per sex.

    Parameters
    ----------
    table : pandas.DataFrame
        One row per subject (e.g. a healthy reference sample).
    outcome : str
        Numeric outcome, e.g. ``log(1 + WMH mL)`` or ``log(WMH mL)``.
    age : str, default "age"
        Age column (years).
    sex : str or None, default "sex"
        Separate curves per sex; None pools everyone.
    quantiles : sequence of float, default (0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95)
        Centiles to draw, as fractions in (0, 1).
    method : {"shash", "quantreg"}, default "shash"
        Location-scale-shape model or quantile regression (see the module notes).
    df : int, optional
        Degrees of freedom of the age curve of the location (``"shash"``: restricted cubic
        spline; ``"quantreg"``: patsy B-spline of every quantile, default 4); 1 gives a
        straight line.
    sigma_df : int, optional
        ``"shash"`` only: degrees of freedom of the spline of the log scale (0: constant).
    shape_df : int, optional
        ``"shash"`` only: degrees of freedom of the spline of the skewness (0: constant).
    tail_df : int, optional
        ``"shash"`` only: degrees of freedom of the log tail weight (0: constant, 1: linear
        in age). On ``log(1 + mL)`` the distribution changes shape with age (near-raw and
        skewed at low volumes, near-log and symmetric at high ones), which is what these
        terms follow; on ``log(mL)`` they stay near constant.

        Defaults (``"shash"``) follow the size of the smallest group (sex): (df, sigma_df,
        shape_df, tail_df) = (4, 3, 2, 1) from 1,000 subjects, (3, 2, 1, 0) from 200,
        (2, 1, 0, 0) below; any value given overrides its default.
    n_boot : int, default 0
        Bootstrap resamples for confidence bands (e.g. 200 for a figure).
    seed : int, default 0
        Seed of the bootstrap.
    subject_column : str or None, default "subject_id"

    Returns
    -------
    CentileResult
        ``curves()`` for plotting and ``centiles(table)`` for each subject.
    """
    import patsy

    quantiles = tuple(float(q) for q in quantiles)
    if not quantiles or any(not 0 < q < 1 for q in quantiles):
        raise OptionError(f"quantiles={quantiles} must be fractions strictly between 0 and 1.")
    if method not in METHODS:
        raise OptionError(f"method={method!r} is unknown; use 'shash' or 'quantreg'.")
    kept, dropped = prepare(table, numeric=[outcome, age], other=[sex] if sex else [],
                            subject_column=subject_column, what="centile curves")
    require_not_constant(kept, [outcome, age])
    rng = np.random.default_rng(seed)
    groups = [(None, kept)] if sex is None else [(s, g) for s, g in kept.groupby(sex, sort=True)]
    smallest = min(len(g) for _, g in groups)
    if method == "quantreg":
        df = 4 if df is None else df
    else:
        auto = (4, 3, 2, 1) if smallest >= 1000 else (3, 2, 1, 0) if smallest >= 200 else (2, 1, 0, 0)
        df, sigma_df, shape_df, tail_df = (a if v is None else v for v, a in zip((df, sigma_df, shape_df, tail_df), auto))
        if min(int(sigma_df), int(shape_df), int(tail_df)) < 0:
            raise OptionError(f"sigma_df={sigma_df}, shape_df={shape_df} and tail_df={tail_df} must be 0 (constant) "
                              "or more.")
    if int(df) < 1:
        raise OptionError(f"df={df} must be at least 1.")
    if method == "quantreg":
        rhs = f'Q("{age}")' if int(df) == 1 else f'bs(Q("{age}"), df={int(df)})'
        design_info = patsy.dmatrix(rhs, kept).design_info
        n_params = len(design_info.column_names)
    else:
        dfs = (int(df), int(sigma_df), int(shape_df), int(tail_df))
        n_params = sum(dfs) + 4
        logger.info("centile curves: SHASH with df=%d, sigma_df=%d, shape_df=%d, tail_df=%d", *dfs)
    models, boot, ranges = {}, {}, {}
    for sex_value, rows in groups:
        if len(rows) < 5 * n_params:
            raise TableError(f"Only {len(rows)} subjects with {sex}={sex_value!r}; centile curves need at least "
                             f"{5 * n_params} (or lower df).")
        ages = rows[age].to_numpy(dtype=float)
        y = rows[outcome].to_numpy(dtype=float)
        if np.unique(ages).size < 2:
            raise TableError(f"Column {age!r} holds one age only for {sex}={sex_value!r}; centiles need a range of ages.")
        if method == "quantreg":
            models[sex_value], boot[sex_value] = _quantreg_group(
                np.asarray(patsy.dmatrix(design_info, rows)), y, quantiles, design_info, age, rng, n_boot,
                (float(kept[age].min()), float(kept[age].max())))
        else:
            models[sex_value], boot[sex_value] = _shash_group(ages, y, dfs, rng, n_boot)
        ranges[sex_value] = (float(ages.min()), float(ages.max()))
    logger.info("centile curves (%s): %d subjects, %d groups, %d bootstrap resamples", method, len(kept), len(groups),
                n_boot)
    return CentileResult(
        quantiles=quantiles, dropped=dropped, n_boot=int(n_boot), outcome=outcome, age=age, sex=sex, method=method,
        age_range=(float(kept[age].min()), float(kept[age].max())), age_ranges=ranges,
        dfs=(int(df),) if method == "quantreg" else dfs, _models=models, _boot=boot,
    )
