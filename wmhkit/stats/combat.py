"""ComBat harmonisation of regional measures across sites (scanners), vectorised over features.

ComBat (Johnson, Li & Rabinovic 2007; Fortin et al. 2017/2018) models each feature as
``y = alpha + X beta + gamma_site + delta_site * e``: an additive (gamma) and multiplicative
(delta) site effect on top of covariates whose effects are kept (age, sex, ...). The site
effects are shrunk towards their across-feature mean with empirical Bayes, parametric
(normal / inverse-gamma priors, iterated to convergence) or non-parametric (a likelihood
weighted average over the other features).

This implementation reproduces neuroCombat 0.2.12 (``neuroCombat.neuroCombat``) to
floating-point precision, with four deliberate differences: continuous covariates are kept
in float64 (neuroCombat casts them to float32); the non-parametric likelihoods are computed
on the log scale, so they do not underflow for sites with hundreds of subjects (where
neuroCombat returns NaN); constant features, single-subject sites and covariates confounded
with site raise :class:`~wmhkit.errors.TableError` instead of giving NaN or silent nonsense;
and a fitted :class:`ComBat` applies the same adjustment to new subjects with their own
covariates (:meth:`ComBat.transform`).

``smooth=["age"]`` models a covariate with a penalised cubic B-spline instead of a straight
line, as ComBat-GAM (Pomponio et al. 2020; the neuroHarmonize package) does, so that an
accelerating age curve (WMH grows faster with age) is not mistaken for a site effect when
sites recruit different ages. The basis and penalty are statsmodels' ``BSplines`` (10
columns, cubic), as in neuroHarmonize; the penalty weight is chosen per feature by
generalised cross-validation (neuroHarmonize: random 5-fold cross-validation) or given
(``smooth_alpha``), and with the same weights both give the same harmonised values
(``benchmarks/combat_gam_reference.py``).

Everything is vectorised over features with numpy; the only loops run over sites and
empirical-Bayes iterations.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd

from wmhkit.errors import OptionError, TableError
from wmhkit.stats._smooth import SmoothTerm
from wmhkit.stats._combat_core import (
    _apply_combat,
    _ConfoundedError,
    _fit_combat,
    _is_rank_deficient,
    _NoVarianceError,
    combat_arrays,
)
from wmhkit.stats._validation import (
    as_list,
    drop_missing,
    empty_dropped,
    is_number_dtype,
    require_columns,
    require_numeric,
    require_table,
    require_unique_ids,
)

__all__ = ["ComBat", "HarmonizationResult", "combat_arrays", "harmonize"]

logger = logging.getLogger(__name__)

@dataclass
class HarmonizationResult:
    """Output of :func:`harmonize`.

    Attributes
    ----------
    table : pandas.DataFrame
        Input rows with harmonised feature columns (NaN for dropped rows).
    model : ComBat
        The fitted model (apply it to new subjects with ``model.transform``).
    dropped : pandas.DataFrame
        Rows left out for missing values (``row``, ``subject``, ``reason``).
    """

    table: pd.DataFrame
    model: "ComBat"
    dropped: pd.DataFrame

    @property
    def summary(self) -> pd.DataFrame:
        """Site effects per site and feature (see :attr:`ComBat.site_effects`)."""
        return self.model.site_effects


class ComBat:
    """ComBat harmonisation with a fit/transform interface.

    Parameters
    ----------
    site_column : str, default "site"
        Column naming the site (scanner) of each subject.
    covariates : list of str, optional
        Columns whose effects are preserved (e.g. ``["age", "sex"]``).
    categorical : list of str, optional
        Which covariates are categorical (one-hot, first sorted level dropped). Default:
        covariates that are not numeric.
    eb : bool, default True
        Shrink the site effects with empirical Bayes.
    parametric : bool, default True
        Parametric (normal/inverse-gamma) or non-parametric empirical Bayes.
    mean_only : bool, default False
        Adjust only the additive site effect.
    reference_site : optional
        Site whose data are kept unchanged; the others are mapped onto it.
    subject_column : str or None, default "subject_id"
        Names subjects in error messages and reports.
    smooth : list of str, optional
        Numeric covariates modelled with a penalised cubic B-spline (ComBat-GAM), e.g.
        ``["age"]``; they are added to ``covariates`` if not there. Default: none (straight lines).
    smooth_df : int, default 10
        B-spline basis size before removing the constant (neuroHarmonize's 10).
    smooth_degree : int, default 3
        Spline degree.
    smooth_alpha : float or array of float, optional
        Roughness penalty weight, one for all features or one per feature (statsmodels
        ``GLMGam`` scale: ``(X'X + 2 alpha S) b = X'y``). Default: chosen per feature by
        generalised cross-validation; the values used are in ``smooth_alpha_``.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> t = pd.DataFrame({"site": np.repeat(["a", "b", "c"], 30), "age": rng.uniform(60, 90, 90)})
    >>> t["x"] = 0.05 * t["age"] + np.repeat([0.0, 2.0, -1.0], 30) + rng.normal(0, 0.3, 90)
    >>> t["y"] = rng.normal(0, 1, 90) + np.repeat([1.0, 0.0, 0.5], 30)
    >>> out = ComBat(covariates=["age"]).fit_transform(t, ["x", "y"])
    >>> bool(np.ptp(out.groupby("site")["x"].mean()) < 0.3)
    True
    """

    def __init__(
        self,
        *,
        site_column: str = "site",
        covariates=None,
        categorical=None,
        eb: bool = True,
        parametric: bool = True,
        mean_only: bool = False,
        reference_site=None,
        subject_column: str | None = "subject_id",
        smooth=None,
        smooth_df: int = 10,
        smooth_degree: int = 3,
        smooth_alpha=None,
    ):
        self.site_column = site_column
        self.smooth = as_list(smooth)
        self.covariates = list(dict.fromkeys(as_list(covariates) + self.smooth))
        self.smooth_df, self.smooth_degree, self.smooth_alpha = int(smooth_df), int(smooth_degree), smooth_alpha
        self.categorical = None if categorical is None else as_list(categorical)
        self.eb = bool(eb)
        self.parametric = bool(parametric)
        self.mean_only = bool(mean_only)
        self.reference_site = reference_site
        self.subject_column = subject_column
        self.dropped_: pd.DataFrame | None = None

    # ------------------------------------------------------------------ arrays
    def _extract(self, table: pd.DataFrame, *, fitting: bool):
        """Validated arrays of the complete rows: positions, data, site codes, covariate design, dropped."""
        table = require_table(table)
        numeric_cov = [c for c in self.covariates if c not in self.categorical_]
        numeric = self.features_ + numeric_cov
        require_columns(table, [self.site_column] + self.covariates + self.features_)
        require_numeric(table, numeric)
        require_unique_ids(table, self.subject_column)
        dtypes = table.dtypes
        # one copy, column by column: cheaper than selecting a sub-frame and consolidating it
        data = np.empty((len(table), len(self.features_)))
        for j, column in enumerate(self.features_):
            series = table[column]
            data[:, j] = series.to_numpy(dtype=float) if is_number_dtype(dtypes[column]) else pd.to_numeric(series, errors="coerce")
        covariates = {
            c: (table[c].to_numpy(dtype=float) if is_number_dtype(dtypes[c]) else pd.to_numeric(table[c], errors="coerce").to_numpy(dtype=float))
            for c in numeric_cov
        }
        labels = {c: table[c].to_numpy() for c in [self.site_column] + self.categorical_}
        if fitting:
            site_codes, uniques = pd.factorize(labels[self.site_column], sort=True)  # -1 for missing
            self.sites_ = list(uniques)
            self.levels_ = {c: sorted(pd.unique(labels[c][~pd.isna(labels[c])]), key=str) for c in self.categorical_}
        else:
            site_codes = pd.Index(self.sites_).get_indexer(labels[self.site_column])
        codes = {self.site_column: site_codes}
        codes.update({c: pd.Index(self.levels_[c]).get_indexer(labels[c]) for c in self.categorical_})
        ok = np.isfinite(data).all(axis=1)
        for values in covariates.values():
            ok &= np.isfinite(values)
        for column, column_codes in codes.items():
            unknown = column_codes < 0
            if unknown.any():
                missing = pd.isna(labels[column][unknown])
                if not missing.all():
                    value = labels[column][unknown][int(np.argmin(missing))]
                    what = "Site" if column == self.site_column else f"Covariate {column!r} level"
                    raise TableError(
                        f"{what} {value!r} in column {column!r} was not in the table ComBat was fitted on; "
                        "fit on a table that includes it (or recode it)."
                    )
                ok &= ~unknown
        dropped = empty_dropped()
        if not ok.all():
            _, dropped = drop_missing(table, numeric + [self.site_column] + self.categorical_,
                                      subject_column=self.subject_column, what="ComBat")
            keep = np.flatnonzero(ok)
            data = data[keep]
            covariates = {c: v[keep] for c, v in covariates.items()}
            codes = {c: v[keep] for c, v in codes.items()}
        blocks = []
        for column in self.covariates:
            if column in self.smooth:
                if fitting:
                    self.smooth_terms_[column] = SmoothTerm(column, self.smooth_df, self.smooth_degree)
                    blocks.append(self.smooth_terms_[column].fit(covariates[column]))
                else:
                    blocks.append(self.smooth_terms_[column].transform(covariates[column]))
            elif column in self.levels_:
                blocks.append((codes[column][:, None] == np.arange(1, len(self.levels_[column]))[None, :]).astype(float))
            else:
                blocks.append(covariates[column][:, None])
        design = np.hstack(blocks) if blocks else np.zeros((len(data), 0))
        return np.flatnonzero(ok), data, codes[self.site_column].astype(np.intp), design, dropped

    def _check_design(self, covariate_design: np.ndarray, gram: np.ndarray, n_sites: int) -> None:
        """Refuse constant covariates and covariates (nearly) confounded with site.

        Works on the Gram matrix ``X'X`` of the design (site columns first), adding one
        covariate's columns at a time, so the first confounded covariate can be named.
        """
        start = 0
        for column in self.covariates:
            width = self._width(column)
            block = covariate_design[:, start : start + width]
            if width == 0 or np.all(block.max(axis=0) == block.min(axis=0)):
                raise TableError(f"Covariate {column!r} is constant (one value only); drop it from the covariates.")
            start += width
        end = n_sites
        for column in self.covariates:
            end += self._width(column)
            if _is_rank_deficient(gram[:end, :end]):
                raise TableError(
                    f"Covariate {column!r} is confounded with site (or with earlier covariates) in column "
                    f"{self.site_column!r}; ComBat cannot separate them: drop the covariate or harmonise within strata."
                )

    def _width(self, column: str) -> int:
        """Design columns of one covariate: levels - 1, spline columns, or 1."""
        if column in self.smooth:
            return self.smooth_terms_[column].splines_.basis.shape[1]
        return len(self.levels_[column]) - 1 if column in self.levels_ else 1

    def _penalty(self, n_cov: int) -> np.ndarray | None:
        """Roughness penalty over the covariate columns (None without smooth terms)."""
        if not self.smooth:
            return None
        penalty, start = np.zeros((n_cov, n_cov)), 0
        for column in self.covariates:
            width = self._width(column)
            if column in self.smooth:
                penalty[start : start + width, start : start + width] = self.smooth_terms_[column].penalty_
            start += width
        return penalty

    # --------------------------------------------------------------------- fit
    def fit(self, table: pd.DataFrame, features) -> "ComBat":
        """Estimate site effects of ``features`` in ``table``.

        Parameters
        ----------
        table : pandas.DataFrame
            One row per subject with the site, covariate and feature columns.
        features : list of str
            Numeric columns to harmonise (e.g. regional ``log(1 + mL)`` volumes).

        Returns
        -------
        ComBat
            ``self``, fitted. Rows with missing values are left out and listed in
            ``dropped_`` (also logged).
        """
        table = require_table(table)
        self.features_ = as_list(features)
        if not self.features_:
            raise OptionError("ComBat needs at least one feature column to harmonise.")
        require_columns(table, [self.site_column] + self.covariates + self.features_)
        if self.eb and len(self.features_) < 2:
            raise OptionError(
                "ComBat empirical Bayes pools site effects across features and needs at least 2 features; "
                "pass more features or eb=False."
            )
        if self.categorical is None:
            dtypes = table.dtypes
            self.categorical_ = [c for c in self.covariates if not is_number_dtype(dtypes[c])]
        else:
            self.categorical_ = list(self.categorical)
        not_cov = [c for c in self.categorical_ if c not in self.covariates]
        if not_cov:
            raise OptionError(f"Categorical column {not_cov[0]!r} is not among the covariates {self.covariates}.")
        both = [c for c in self.smooth if c in self.categorical_]
        if both:
            raise TableError(f"Column {both[0]!r} is categorical and cannot be a smooth term; "
                             "pass a numeric column in smooth=.")
        self.levels_, self.smooth_terms_ = {}, {}
        positions, data, batch, covariate_design, dropped = self._extract(table, fitting=True)
        self.dropped_ = dropped
        if len(self.sites_) < 2:
            raise TableError(
                f"Column {self.site_column!r} holds a single site ({self.sites_[0]!r}); ComBat needs two or more sites."
            )
        if self.reference_site is not None and self.reference_site not in self.sites_:
            raise OptionError(f"reference_site={self.reference_site!r} is not a site in column {self.site_column!r}.")
        counts = np.bincount(batch, minlength=len(self.sites_))
        if counts.min() < 2:
            raise TableError(
                f"Site {self.sites_[int(np.argmin(counts))]!r} has fewer than 2 subjects with complete data; "
                "merge it with another site or drop it."
            )
        ref = None if self.reference_site is None else self.sites_.index(self.reference_site)
        n_sites = len(self.sites_)
        try:
            fit = _fit_combat(data, batch, counts, covariate_design, ref,
                              eb=self.eb, parametric=self.parametric, mean_only=self.mean_only,
                              penalty=self._penalty(covariate_design.shape[1]), alphas=self.smooth_alpha)
        except _NoVarianceError as exc:
            raise TableError(
                f"Feature {self.features_[exc.args[0]]!r} has no variance left (constant, or fully explained by "
                "site and covariates); drop it from the features."
            ) from None
        except _ConfoundedError:
            batch_design = np.zeros((len(batch), n_sites))
            batch_design[np.arange(len(batch)), batch] = 1.0
            design = np.hstack([batch_design, covariate_design])
            self._check_design(covariate_design, design.T @ design, n_sites)  # names the covariate
            raise
        self._fit = fit
        self.beta_ = fit["beta"]
        self.grand_mean_ = fit["grand_mean"]
        self.var_pooled_ = fit["var_pooled"]
        self.gamma_hat_, self.delta_hat_ = fit["gamma_hat"], fit["delta_hat"]
        self.gamma_star_, self.delta_star_ = fit["gamma_star"], fit["delta_star"]
        self.smooth_alpha_ = fit["alphas"]
        # handed to fit_transform (then dropped), which so needs no second pass over the table
        self._last = (positions, batch, data, covariate_design)
        logger.info("ComBat fitted on %d subjects, %d sites, %d features", len(batch), n_sites, len(self.features_))
        return self

    # --------------------------------------------------------------- transform
    def transform(self, table: pd.DataFrame, *, suffix: str | None = None) -> pd.DataFrame:
        """Harmonise subjects (fitted or new) with the fitted site effects.

        Parameters
        ----------
        table : pandas.DataFrame
            Rows with the site, covariate and feature columns; sites must have been seen in
            :meth:`fit`.
        suffix : str, optional
            Write harmonised values to ``<feature><suffix>`` columns; default: replace the
            feature columns.

        Returns
        -------
        pandas.DataFrame
            A copy of ``table``; rows with missing values get NaN harmonised values.
        """
        if not hasattr(self, "gamma_star_"):
            raise OptionError("This ComBat model is not fitted; call fit(table, features) first.")
        positions, data, batch, covariate_design, _ = self._extract(table, fitting=False)
        return self._assemble(table, positions, _apply_combat(data, batch, covariate_design, self._fit), suffix)

    def _assemble(self, table, positions, values, suffix) -> pd.DataFrame:
        """A new table: ``table``'s columns with harmonised values at row ``positions`` (NaN elsewhere)."""
        if len(positions) != len(table):
            full = np.full((len(table), len(self.features_)), np.nan)
            full[positions] = values
            values = full
        # assemble from column references: the input's own arrays are never written to
        columns = {c: table[c] for c in table.columns}
        for j, feature in enumerate(self.features_):
            columns[feature + (suffix or "")] = values[:, j]
        out = pd.DataFrame(columns, index=table.index, copy=False)
        out.attrs = dict(table.attrs)
        return out

    def fit_transform(self, table: pd.DataFrame, features, *, suffix: str | None = None) -> pd.DataFrame:
        """:meth:`fit` then :meth:`transform` on the same table (one pass over the table)."""
        self.fit(table, features)
        positions, batch, data, covariate_design = self._last
        del self._last
        return self._assemble(table, positions, _apply_combat(data, batch, covariate_design, self._fit), suffix)

    @property
    def site_effects(self) -> pd.DataFrame:
        """Tidy table of site effects: site, feature, gamma_hat, delta_hat, gamma_star, delta_star.

        gamma is in units of the pooled SD of the feature; delta is a variance ratio.
        """
        if not hasattr(self, "gamma_star_"):
            raise OptionError("This ComBat model is not fitted; call fit(table, features) first.")
        n_sites, n_features = self.gamma_star_.shape
        return pd.DataFrame(
            {
                "site": np.repeat(np.asarray(self.sites_, dtype=object), n_features),
                "feature": np.tile(self.features_, n_sites),
                "gamma_hat": self.gamma_hat_.ravel(),
                "delta_hat": self.delta_hat_.ravel(),
                "gamma_star": self.gamma_star_.ravel(),
                "delta_star": self.delta_star_.ravel(),
            }
        )


def harmonize(
    table: pd.DataFrame,
    features,
    *,
    site_column: str = "site",
    covariates=None,
    suffix: str | None = None,
    **options,
) -> HarmonizationResult:
    """Harmonise feature columns across sites with ComBat (one call).

    Parameters
    ----------
    table : pandas.DataFrame
        One row per subject.
    features : list of str
        Columns to harmonise (on the scale you will analyse, e.g. ``log(1 + mL)``).
    site_column : str, default "site"
        Site (scanner) column.
    covariates : list of str, optional
        Columns whose effects are preserved, e.g. ``["age", "sex"]``.
    suffix : str, optional
        Add ``<feature><suffix>`` columns instead of replacing the features.
    **options
        Passed to :class:`ComBat` (``eb``, ``parametric``, ``mean_only``, ``reference_site``,
        ``categorical``, ``subject_column``, and ``smooth=["age"]`` with ``smooth_df``,
        ``smooth_degree``, ``smooth_alpha`` for a smooth age term, as ComBat-GAM).

    Returns
    -------
    HarmonizationResult
        Harmonised table, fitted model and dropped rows.
    """
    model = ComBat(site_column=site_column, covariates=covariates, **options)
    out = model.fit_transform(table, features, suffix=suffix)
    return HarmonizationResult(table=out, model=model, dropped=model.dropped_)
