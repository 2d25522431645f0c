"""Penalised B-spline terms for ComBat with a smooth covariate (as ComBat-GAM / neuroHarmonize).

A smooth term replaces a covariate's straight line with ``df`` cubic B-spline columns
(statsmodels ``BSplines``: interior knots at quantiles, boundary knots at the data range, one
column dropped so that the basis holds no constant) and a roughness penalty ``alpha * S``,
``S`` the sum over the data of the squared second derivatives of the basis. For every
feature the coefficients solve ``(X'X + 2 alpha S) b = X'y``, which is what statsmodels'
``GLMGam`` (Gaussian, identity link) and so neuroHarmonize solve. The penalty weight is
chosen per feature by generalised cross-validation unless given.

Everything is computed from ``X'X``, ``X'y`` and ``y'y``: with ``X'X = L L'`` and the
eigen-decomposition ``L^-1 (2 S) L^-T = U diag(d) U'``, the fit for any ``alpha`` is
``b = L^-T U (c / (1 + alpha d))`` with ``c = U' L^-1 X'y``, its effective degrees of freedom
``sum 1 / (1 + alpha d)`` and its residual sum of squares
``y'y - sum c^2 (2 / (1 + alpha d) - 1 / (1 + alpha d)^2)``; a grid of ``alpha`` for every
feature at once costs a few small matrix products.
"""

from __future__ import annotations

import logging

import numpy as np

from wmhkit.errors import OptionError, TableError

logger = logging.getLogger(__name__)

#: Number of penalty weights tried by generalised cross-validation, log-spaced over 14 decades.
GCV_GRID_POINTS = 169


class SmoothTerm:
    """A cubic B-spline basis of one covariate and its roughness penalty.

    Parameters
    ----------
    column : str
        Covariate name (for messages).
    df : int, default 10
        Number of basis columns before the constant is removed (as neuroHarmonize's 10).
    degree : int, default 3
        Spline degree.
    """

    def __init__(self, column: str, df: int = 10, degree: int = 3):
        if int(df) < int(degree) + 1:
            raise OptionError(f"smooth_df={df} must be at least the spline degree + 1 ({int(degree) + 1}).")
        self.column, self.df, self.degree = column, int(df), int(degree)

    def fit(self, values: np.ndarray) -> np.ndarray:
        """Place the knots on ``values`` and return the basis (n, df - 1)."""
        from statsmodels.gam.api import BSplines

        values = np.asarray(values, dtype=float)
        if np.unique(values).size < self.df:
            raise TableError(f"Column {self.column!r} has fewer distinct values than smooth_df={self.df}; "
                             "lower smooth_df or model it as a straight line.")
        self.splines_ = BSplines(values, df=self.df, degree=self.degree)
        self.low_, self.high_ = float(values.min()), float(values.max())
        self.penalty_ = np.asarray(self.splines_.smoothers[0].cov_der2, dtype=float)
        return np.asarray(self.splines_.basis, dtype=float)

    def transform(self, values: np.ndarray) -> np.ndarray:
        """The basis at new values; values outside the fitted range are held at its ends."""
        values = np.asarray(values, dtype=float)
        outside = (values < self.low_) | (values > self.high_)
        if outside.any():
            logger.warning("ComBat smooth term %r: %d values outside the fitted range %.4g-%.4g are held at its ends",
                           self.column, int(outside.sum()), self.low_, self.high_)
        return np.asarray(self.splines_.transform(np.clip(values, self.low_, self.high_)), dtype=float)


def penalised_fit(xtx, xty, yy, n, penalty, alphas=None):
    """Penalised least squares for every feature from the cross-products.

    Parameters
    ----------
    xtx : ndarray (p, p)
        ``X'X`` of the full design.
    xty : ndarray (p, n_features)
    yy : ndarray (n_features,)
        Sums of squares ``y'y``.
    n : int
        Number of rows (for GCV).
    penalty : ndarray (p, p)
        ``S`` (zero outside the smooth columns); the fit penalises ``2 alpha S`` as statsmodels does.
    alphas : None, float or ndarray (n_features,)
        Penalty weights; None chooses each by generalised cross-validation.

    Returns
    -------
    beta : ndarray (p, n_features)
    alphas : ndarray (n_features,)
    edf : ndarray (n_features,)
        Effective degrees of freedom of each fit.
    """
    n_features = xty.shape[1]
    chol = np.linalg.cholesky(xtx)
    chol_inv = np.linalg.inv(chol)
    d, u = np.linalg.eigh(chol_inv @ (2.0 * penalty) @ chol_inv.T)
    d = np.clip(d, 0.0, None)  # the unpenalised directions (sites, linear covariates) are exactly 0
    c = u.T @ chol_inv @ xty
    if alphas is None:
        top = float(d.max()) if d.max() > 0 else 1.0
        grid = np.logspace(-8, 6, GCV_GRID_POINTS) / top
        shrink = 1.0 / (1.0 + grid[:, None] * d[None, :])  # (grid, p)
        edf = shrink.sum(axis=1)
        fitted_ss = (2.0 * shrink - shrink**2) @ (c**2)  # (grid, features)
        rss = np.maximum(yy[None, :] - fitted_ss, 1e-300)
        gcv = n * rss / (n - edf[:, None]) ** 2
        alphas = grid[np.argmin(gcv, axis=0)]
    else:
        alphas = np.broadcast_to(np.asarray(alphas, dtype=float), (n_features,)).copy()
        if np.any(~np.isfinite(alphas)) or np.any(alphas < 0):
            raise OptionError("smooth_alpha must be one non-negative number or one per feature.")
    shrink = 1.0 / (1.0 + alphas[None, :] * d[:, None])  # (p, features)
    beta = chol_inv.T @ u @ (c * shrink)
    return beta, alphas, shrink.sum(axis=0)
