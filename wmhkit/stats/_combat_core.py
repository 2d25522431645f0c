"""ComBat numerics on arrays, vectorised over features (the engine behind :mod:`wmhkit.stats.combat`).

The estimates reproduce neuroCombat 0.2.12 to floating-point precision. All that ComBat
needs from the data are per-site sums of ``y``, ``y^2`` and ``y * c`` (covariates), taken
in one blocked pass; the normal equations, pooled variance, standardised site moments and
both empirical-Bayes variants follow from those small matrices, and the adjustment is a
second blocked pass.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from wmhkit.errors import OptionError, TableError
from wmhkit.stats._smooth import penalised_fit

__all__ = ["combat_arrays"]

#: Relative change at which the parametric empirical-Bayes iteration stops (as neuroCombat).
EB_CONVERGENCE = 1e-4
#: Most parametric empirical-Bayes iterations before giving up.
EB_MAX_ITERATIONS = 1000


def _parametric_eb(s1, s2, n, g_hat, d_hat, g_bar, t2, a, b):
    """Iterate the normal/inverse-gamma posterior means, all sites and features at once.

    ``s1``/``s2`` (sites, features) are the per-site sums of the standardised data and of
    its squares, so an iteration costs O(sites x features). Each site stops at the first
    iteration whose largest signed relative change is at most :data:`EB_CONVERGENCE`, exactly
    as neuroCombat iterates one site at a time; converged sites are frozen.
    """
    n, g_bar, t2, a, b = n[:, None], g_bar[:, None], t2[:, None], a[:, None], b[:, None]
    g_old, d_old = g_hat.copy(), d_hat.copy()
    active = np.ones(len(g_hat), dtype=bool)
    for _ in range(EB_MAX_ITERATIONS):
        g_new = (t2 * n * g_hat + d_old * g_bar) / (t2 * n + d_old)
        sum2 = s2 - 2.0 * g_new * s1 + n * g_new**2
        d_new = (0.5 * sum2 + b) / (n / 2.0 + a - 1.0)
        # signed relative change, as neuroCombat (and R sva) measure it; a zero gamma gives inf
        with np.errstate(divide="ignore", invalid="ignore"):
            change = np.maximum((np.abs(g_new - g_old) / g_old).max(axis=1), (np.abs(d_new - d_old) / d_old).max(axis=1))
        g_old[active], d_old[active] = g_new[active], d_new[active]
        active &= change > EB_CONVERGENCE
        if not active.any():
            return g_old, d_old
    raise TableError("ComBat empirical Bayes did not converge; check the features for outliers or use eb=False.")


def _nonparametric_eb(s1, s2, n, g_hat, d_hat):
    """Leave-one-feature-out likelihood-weighted site effects for one site (log-space weights).

    ``s1``/``s2`` are the per-feature sums of the site's standardised data and their squares.
    """
    # sum2[i, j] = sum_k (x_ki - g_j)^2: feature i's data under feature j's gamma
    sum2 = s2[:, None] - 2.0 * s1[:, None] * g_hat[None, :] + n * g_hat[None, :] ** 2
    log_lh = -0.5 * n * np.log(2.0 * np.pi * d_hat)[None, :] - sum2 / (2.0 * d_hat[None, :])
    np.fill_diagonal(log_lh, -np.inf)
    weights = np.exp(log_lh - log_lh.max(axis=1, keepdims=True))
    total = weights.sum(axis=1)
    return weights @ g_hat / total, weights @ d_hat / total


#: Rows per block in the passes over the data: keeps temporaries small and in cache.
_CHUNK_ROWS = 2048


def _site_moments(data, batch, n_sites, covariate_design):
    """Per-site sums in one blocked pass over the data.

    Returns ``sum_y`` (sites, features), ``sum_yc`` (covariates, sites, features) = per-site
    sums of ``y * c_k``, ``sum_yy`` (sites, features), ``sum_c`` (sites, covariates) and
    ``sum_cc`` (sites, covariates, covariates). Everything ComBat needs from the data
    (normal equations, residual variance, standardised site moments) follows from these.
    """
    n, n_features = data.shape
    n_cov = covariate_design.shape[1]
    cross = np.zeros((n_sites * (1 + n_cov), n_features))
    sum_yy = np.zeros((n_sites, n_features))
    for start in range(0, n, _CHUNK_ROWS):
        rows = slice(start, start + _CHUNK_ROWS)
        block, codes = data[rows], batch[rows]
        # columns [site indicators, site indicators x covariate 1, ...], filled in place
        weights = np.zeros((len(block), n_sites * (1 + n_cov)))
        at = np.arange(len(block))
        weights[at, codes] = 1.0
        for k in range(n_cov):
            weights[at, n_sites * (k + 1) + codes] = covariate_design[rows, k]
        cross += weights.T @ block
        sum_yy += weights[:, :n_sites].T @ (block * block)
    onehot = np.zeros((n, n_sites))
    onehot[np.arange(n), batch] = 1.0
    pairs = (covariate_design[:, :, None] * covariate_design[:, None, :]).reshape(n, n_cov * n_cov)
    sum_cc = (onehot.T @ pairs).reshape(n_sites, n_cov, n_cov)
    return (cross[:n_sites], cross[n_sites:].reshape(n_cov, n_sites, n_features), sum_yy,
            onehot.T @ covariate_design, sum_cc)


def _fit_combat(data, batch, counts, covariate_design, ref, *, eb, parametric, mean_only, penalty=None, alphas=None):
    """ComBat estimates from arrays: data (n, features), batch codes (n,), covariates (n, p).

    Returns the covariate coefficients, grand mean, pooled variance and the site effects
    before (``gamma_hat``, ``delta_hat``) and after (``gamma_star``, ``delta_star``)
    empirical Bayes, as neuroCombat defines them. The design is ``[site indicators,
    covariates]`` (with a reference site, its indicator column is all ones). ``penalty``
    (p, p), a roughness penalty on the covariate columns (smooth terms), makes the
    covariate fit penalised least squares with weights ``alphas`` (one per feature; None:
    generalised cross-validation), see :mod:`wmhkit.stats._smooth`; the weights used are
    returned as ``alphas``.
    """
    n, n_features = data.shape
    n_sites, n_cov = len(counts), covariate_design.shape[1]
    sum_y, sum_yc, sum_yy, sum_c, sum_cc = _site_moments(data, batch, n_sites, covariate_design)
    counts_f = counts.astype(float)

    # normal equations X'X beta = X'y assembled from the per-site sums
    site_block = np.diag(counts_f)
    site_cov = sum_c.copy()
    site_y = sum_y.copy()
    if ref is not None:
        site_block[ref, :] = counts_f
        site_block[:, ref] = counts_f
        site_block[ref, ref] = n
        site_cov[ref] = sum_c.sum(axis=0)
        site_y[ref] = sum_y.sum(axis=0)
    xtx = np.block([[site_block, site_cov], [site_cov.T, sum_cc.sum(axis=0)]])
    xty = np.vstack([site_y, sum_yc.sum(axis=1)])
    if _is_rank_deficient(xtx):
        raise _ConfoundedError("ComBat covariates are constant or confounded with site; drop the offending columns.")
    if penalty is None:
        beta = np.linalg.solve(xtx, xty)
    else:
        full_penalty = np.zeros_like(xtx)
        full_penalty[n_sites:, n_sites:] = penalty
        beta, alphas, _ = penalised_fit(xtx, xty, sum_yy.sum(axis=0), n, full_penalty, alphas)
    beta_cov = beta[n_sites:]
    if ref is None:
        grand_mean = (counts_f / n) @ beta[:n_sites]
        if penalty is None:
            rss = sum_yy.sum(axis=0) - np.einsum("kj,kj->j", beta, xty)  # y'y - beta'X'y
        else:  # penalised: y'y - 2 beta'X'y + beta'X'X beta
            rss = sum_yy.sum(axis=0) - 2 * np.einsum("kj,kj->j", beta, xty) + np.einsum("kj,kl,lj->j", beta, xtx, beta)
        var_pooled = rss / n
    else:
        # residuals of the reference rows only: their design row is [e_ref, c]
        grand_mean = beta[ref]
        xr_y = np.vstack([sum_y[ref], sum_yc[:, ref]])
        xr_x = np.block([[np.array([[counts_f[ref]]]), sum_c[ref][None, :]], [sum_c[ref][:, None], sum_cc[ref]]])
        b_ref = np.vstack([beta[ref], beta_cov])
        rss = sum_yy[ref] - 2 * np.einsum("kj,kj->j", b_ref, xr_y) + np.einsum("kj,kl,lj->j", b_ref, xr_x, b_ref)
        var_pooled = rss / counts_f[ref]

    # constant features (or ones fully explained by site and covariates): no scale to standardise by
    flat = np.flatnonzero(var_pooled <= 1e-12 * np.maximum(sum_yy.sum(axis=0) / n, 1e-300))
    if flat.size:
        raise _NoVarianceError(int(flat[0]))

    # per-site sums of the standardised data z = (y - o) / s, o = grand_mean + c' beta_cov
    cov_effect = sum_c @ beta_cov
    sum_o = counts_f[:, None] * grand_mean + cov_effect
    sum_yo = grand_mean * sum_y + np.einsum("kbj,kj->bj", sum_yc, beta_cov)
    sum_oo = (counts_f[:, None] * grand_mean**2 + 2 * grand_mean * cov_effect
              + np.einsum("kj,bkl,lj->bj", beta_cov, sum_cc, beta_cov))
    s1 = (sum_y - sum_o) / np.sqrt(var_pooled)
    s2 = (sum_yy - 2 * sum_yo + sum_oo) / var_pooled
    batch_gram = site_block

    if ref is None:
        gamma_hat = s1 / counts[:, None]
    else:  # the reference column is an intercept: solve the small normal equations
        rhs = s1.copy()
        rhs[ref] = s1.sum(axis=0)
        gamma_hat = np.linalg.solve(batch_gram, rhs)
    if mean_only:
        delta_hat = np.ones((n_sites, n_features))
    else:
        # sum of squares about the site mean / (n - 1): the ddof=1 variance of each site
        delta_hat = (s2 - s1**2 / counts[:, None]) / (counts[:, None] - 1)
    delta_hat[delta_hat == 0] = 1.0

    if not eb:
        gamma_star, delta_star = gamma_hat.copy(), delta_hat.copy()
    else:
        gamma_bar = gamma_hat.mean(axis=1)
        t2 = gamma_hat.var(axis=1, ddof=1)
        if not parametric:
            pairs = [_nonparametric_eb(s1[i], s2[i], counts[i], gamma_hat[i], delta_hat[i]) for i in range(n_sites)]
            gamma_star = np.array([g for g, _ in pairs])
            delta_star = np.array([d for _, d in pairs])
        elif mean_only:
            gamma_star = (t2[:, None] * gamma_hat + gamma_bar[:, None]) / (t2[:, None] + 1.0)
            delta_star = np.ones_like(delta_hat)
        else:
            m, v = delta_hat.mean(axis=1), delta_hat.var(axis=1, ddof=1)
            a_prior, b_prior = (2 * v + m**2) / v, (m * v + m**3) / v
            gamma_star, delta_star = _parametric_eb(s1, s2, counts_f, gamma_hat, delta_hat, gamma_bar, t2, a_prior, b_prior)
    if ref is not None:
        gamma_star[ref], delta_star[ref] = 0.0, 1.0
    return {
        "beta": beta_cov, "grand_mean": grand_mean, "var_pooled": var_pooled,
        "gamma_hat": gamma_hat, "delta_hat": delta_hat, "gamma_star": gamma_star, "delta_star": delta_star,
        "alphas": alphas,
    }


def _apply_combat(data, batch, covariate_design, fit) -> np.ndarray:
    """Harmonised data: ``(y - o) / sqrt(delta*) - gamma* * s / sqrt(delta*) + o`` per site.

    Written as ``y * A[site] + o * (1 - A[site]) - G[site]`` with ``A = 1 / sqrt(delta*)``,
    ``G = gamma* * s / sqrt(delta*)`` and ``o = grand_mean + c' beta``; for a reference site
    A = 1 and G = 0, so its data come back unchanged. Blocked over rows.
    """
    inv_sd = 1.0 / np.sqrt(fit["delta_star"])
    shift = fit["gamma_star"] * np.sqrt(fit["var_pooled"]) * inv_sd
    out = np.empty_like(data)
    for start in range(0, len(data), _CHUNK_ROWS):
        rows = slice(start, start + _CHUNK_ROWS)
        sites = batch[rows]
        scale = inv_sd[sites]
        offset = covariate_design[rows] @ fit["beta"]
        offset += fit["grand_mean"]
        np.multiply(data[rows], scale, out=out[rows])
        np.subtract(1.0, scale, out=scale)
        offset *= scale
        offset -= shift[sites]
        out[rows] += offset
    return out


class _NoVarianceError(TableError):
    """A feature has no residual variance; ``args[0]`` is its index."""


class _ConfoundedError(TableError):
    """The design [sites, covariates] is singular (the class names the covariate)."""


def _is_rank_deficient(gram: np.ndarray) -> bool:
    """Whether a Gram matrix X'X is (numerically) singular, judged after scaling to unit diagonal.

    Scaling makes the tolerance independent of the units of the covariates.
    """
    scale = 1.0 / np.sqrt(np.maximum(np.diag(gram), 1e-300))
    eigen = np.linalg.eigvalsh(gram * scale[:, None] * scale[None, :])
    return bool(eigen.min() < 1e-10 * eigen.max())


def combat_arrays(
    data,
    sites,
    covariates=None,
    *,
    eb: bool = True,
    parametric: bool = True,
    mean_only: bool = False,
    reference_site=None,
) -> np.ndarray:
    """ComBat on plain arrays (the same estimates as :class:`ComBat`, without a table).

    Parameters
    ----------
    data : array-like, shape (n_subjects, n_features)
        Values to harmonise; must be finite.
    sites : array-like, shape (n_subjects,)
        Site label of each subject.
    covariates : array-like, shape (n_subjects, n_covariates), optional
        Numeric design of the effects to preserve (code categorical covariates as 0/1
        indicators, one level left out).
    eb, parametric, mean_only, reference_site
        As for :class:`ComBat`.

    Returns
    -------
    numpy.ndarray
        Harmonised data, shape (n_subjects, n_features).

    Examples
    --------
    >>> rng = np.random.default_rng(1)
    >>> sites = np.repeat(["a", "b"], 40)
    >>> data = rng.normal(size=(80, 3)) + (sites == "b")[:, None] * 2.0
    >>> out = combat_arrays(data, sites)
    >>> bool(abs(out[sites == "a"].mean() - out[sites == "b"].mean()) < 0.3)
    True
    """
    # Row-major, so that the blocked passes read contiguous rows: a DataFrame's to_numpy() is
    # column-major, and the copy (0.2 ms for 10,000 x 40) halves the time of both passes.
    data = np.ascontiguousarray(data, dtype=float)
    if data.ndim != 2 or not np.isfinite(data).all():
        raise TableError("ComBat data must be a finite 2D array (subjects x features).")
    codes, uniques = pd.factorize(np.asarray(sites), sort=True)
    if len(codes) != len(data) or np.any(codes < 0):
        raise TableError("ComBat sites must give one (non-missing) site per row of the data.")
    covariate_design = np.zeros((len(data), 0)) if covariates is None else np.asarray(covariates, dtype=float)
    if covariate_design.ndim == 1:
        covariate_design = covariate_design[:, None]
    if covariate_design.shape[0] != len(data) or not np.isfinite(covariate_design).all():
        raise TableError("ComBat covariates must be a finite array with one row per subject.")
    if eb and data.shape[1] < 2:
        raise OptionError("ComBat empirical Bayes needs at least 2 features; pass more features or eb=False.")
    counts = np.bincount(codes, minlength=len(uniques))
    if len(uniques) < 2 or counts.min() < 2:
        raise TableError("ComBat needs two or more sites with at least 2 subjects each.")
    ref = None
    if reference_site is not None:
        if reference_site not in list(uniques):
            raise OptionError(f"reference_site={reference_site!r} is not one of the sites.")
        ref = list(uniques).index(reference_site)
    try:
        fit = _fit_combat(data, codes, counts, covariate_design, ref, eb=eb, parametric=parametric, mean_only=mean_only)
    except _NoVarianceError as exc:
        raise TableError(f"ComBat feature column {exc.args[0]} has no variance left; drop it.") from None
    return _apply_combat(data, codes, covariate_design, fit)
