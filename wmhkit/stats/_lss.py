"""A location-scale-shape model of an outcome against age: the sinh-arcsinh (SHASH) distribution.

The outcome at age ``x`` follows the original sinh-arcsinh distribution of Jones & Pewsey
(2009) (``SHASHo`` in R's gamlss.dist and in the Python gamlss port)::

    z = (y - mu(x)) / sigma(x),   r = sinh(tau * asinh(z) - nu)  ~  N(0, 1)

with ``mu``, ``log sigma``, the skewness ``nu`` and the log tail weight ``log tau`` natural
cubic splines of age (each with its own degrees of freedom; 0 makes a parameter constant),
fitted by maximum likelihood with analytic gradients. The centile ``p``
at age ``x`` is ``mu + sigma * sinh((asinh(Phi^-1(p)) + nu) / tau)``, increasing in ``p`` at
every age, so curves never cross; a subject's z-score is ``r`` itself.

Edge behaviour: the splines are restricted cubic splines with Harrell's knots (outer knots
at the 5th and 95th percentile of age, :data:`HARRELL_KNOT_QUANTILES`), so every parameter is
linear in age in the sparse youngest and oldest 5 % of the data and beyond them: curves cannot
bend sharply where the data thin out. All centiles come from one distribution at each age,
instead of separate regressions of the extreme quantiles (which is what lets a
quantile-regression 5th centile dive or a 95th climb at the edges).
"""

from __future__ import annotations

import numpy as np
from scipy import optimize
from scipy import stats as sps

from wmhkit.errors import TableError

__all__ = ["HARRELL_KNOT_QUANTILES", "ShashCurve", "natural_spline_basis"]

#: Knot positions (quantiles of age) by number of knots, as Harrell (2015, Regression Modeling
#: Strategies, section 2.4.6) recommends for restricted cubic splines: the outer knots sit at
#: the 5th/95th (or 2.5th/97.5th, or 10th/90th) percentile, so the curve is linear in the
#: sparse youngest and oldest ages.
HARRELL_KNOT_QUANTILES = {
    3: (0.10, 0.50, 0.90),
    4: (0.05, 0.35, 0.65, 0.95),
    5: (0.05, 0.275, 0.50, 0.725, 0.95),
    6: (0.05, 0.23, 0.41, 0.59, 0.77, 0.95),
    7: (0.025, 0.1833, 0.3417, 0.50, 0.6583, 0.8167, 0.975),
}


def natural_spline_basis(x: np.ndarray, knots: np.ndarray) -> np.ndarray:
    """Natural cubic spline basis without the constant: ``len(knots) - 1`` columns.

    The truncated-power form of Hastie, Tibshirani & Friedman (2009, eq. 5.4): ``x`` and
    ``d_k(x) - d_{K-1}(x)``, linear below the first and above the last knot.

    >>> natural_spline_basis(np.array([0.0, 0.5, 1.0]), np.array([0.0, 1.0])).ravel().tolist()
    [0.0, 0.5, 1.0]
    """
    x = np.asarray(x, dtype=float)
    knots = np.asarray(knots, dtype=float)
    last = knots[-1]

    def d(k):
        return (np.clip(x - knots[k], 0, None) ** 3 - np.clip(x - last, 0, None) ** 3) / (last - knots[k])

    columns = [x] + [d(k) - d(len(knots) - 2) for k in range(len(knots) - 2)]
    return np.column_stack(columns)


class ShashCurve:
    """SHASH centile curves of one group (e.g. one sex) against age.

    Parameters
    ----------
    df : int, default 4
        Degrees of freedom of the natural spline of ``mu`` (1: a straight line).
    sigma_df : int, default 3
        Degrees of freedom of the natural spline of ``log sigma`` (0: constant).
    nu_df : int, default 2
        Degrees of freedom of the skewness (0: constant).
    tau_df : int, default 1
        Degrees of freedom of the log tail weight (0: constant, bounded to 0.2-5).
    """

    def __init__(self, df: int = 4, sigma_df: int = 3, nu_df: int = 2, tau_df: int = 1):
        self.dfs = (int(df), int(sigma_df), int(nu_df), int(tau_df))

    # ------------------------------------------------------------------ design
    def _scaled(self, ages) -> np.ndarray:
        return (np.asarray(ages, dtype=float) - self.low_) / (self.high_ - self.low_)

    def _designs(self, ages) -> list[np.ndarray]:
        t = self._scaled(ages)
        out = []
        for knots in self.knots_:
            basis = natural_spline_basis(t, knots) if knots is not None else np.zeros((len(t), 0))
            out.append(np.column_stack([np.ones(len(t)), basis]))
        return out

    def _knots(self, t: np.ndarray, df: int):
        if df <= 0:
            return None
        if df == 1:  # a straight line
            return np.array([0.0, 1.0])
        return np.quantile(t, HARRELL_KNOT_QUANTILES.get(df + 1, np.linspace(0.05, 0.95, df + 1)))

    # ---------------------------------------------------------------- likelihood
    @staticmethod
    def _negloglik(theta, designs, y, sizes):
        parts = np.split(theta, np.cumsum(sizes)[:-1])
        mu, log_sigma, nu, log_tau = (x @ p for x, p in zip(designs, parts))
        sigma, tau = np.exp(log_sigma), np.exp(log_tau)
        z = (y - mu) / sigma
        root = np.sqrt(1.0 + z * z)
        s = np.arcsinh(z)
        w = tau * s - nu
        r = np.sinh(w)
        cosh_w = np.cosh(w)
        loglik = log_tau - log_sigma - 0.5 * np.log(2 * np.pi) - np.log(root) + np.log(cosh_w) - 0.5 * r * r
        dw = np.tanh(w) - r * cosh_w  # d loglik / d w
        dz = -z / (root * root) + dw * tau / root
        grads = (-dz / sigma, -1.0 - dz * z, -dw, 1.0 + dw * tau * s)  # d/d mu, log sigma, nu, log tau
        gradient = np.concatenate([-(g @ x) for g, x in zip(grads, designs)])
        return -loglik.sum(), gradient

    def fit(self, ages, y, *, start: "ShashCurve | None" = None) -> "ShashCurve":
        """Maximum-likelihood fit to ``ages`` (years) and outcome ``y``.

        ``start``: a fitted model whose knots, scaling and coefficients are reused as the
        starting point (bootstrap refits).
        """
        ages, y = np.asarray(ages, dtype=float), np.asarray(y, dtype=float)
        if start is not None:
            self.dfs, self.knots_ = start.dfs, start.knots_
            self.low_, self.high_, self.y_center_, self.y_scale_ = start.low_, start.high_, start.y_center_, start.y_scale_
        else:
            self.low_, self.high_ = float(ages.min()), float(ages.max())
            self.y_center_, self.y_scale_ = float(np.mean(y)), float(np.std(y)) or 1.0
            self.knots_ = [self._knots(self._scaled(ages), df) for df in self.dfs]
        raw = self._designs(ages)
        ys = (y - self.y_center_) / self.y_scale_
        sizes = [x.shape[1] for x in raw]
        if start is None:
            # Optimise in orthonormalised coordinates: the truncated-power spline columns are
            # nearly collinear, and L-BFGS needs ~10x fewer steps on an orthonormal design.
            self.transforms_ = [np.linalg.inv(np.linalg.qr(x, mode="r")) * np.sqrt(len(x)) if x.shape[1] > 1
                                else np.ones((1, 1)) for x in raw]
        else:
            self.transforms_ = start.transforms_
        designs = [x @ t for x, t in zip(raw, self.transforms_)]
        if start is not None:
            theta = np.concatenate([np.linalg.solve(t, c) for t, c in zip(self.transforms_, start.coefs_)])
        else:  # least squares for mu, then for log |residual| (sigma; E log|N(0,1)| = -0.635), normal shape
            mu0 = np.linalg.lstsq(designs[0], ys, rcond=None)[0]
            resid = ys - designs[0] @ mu0
            sigma0 = np.linalg.lstsq(designs[1], np.log(np.abs(resid) + 1e-3) + 0.635, rcond=None)[0]
            theta = np.concatenate([mu0, sigma0, np.zeros(sizes[2]), np.zeros(sizes[3])])
        bounds = [(None, None)] * len(theta)
        if sizes[3] == 1:
            bounds[-1] = (np.log(0.2), np.log(5.0))  # a constant tail weight between very heavy and very light
        result = optimize.minimize(self._negloglik, theta, args=(designs, ys, sizes), jac=True, method="L-BFGS-B",
                                   bounds=bounds, options={"maxiter": 5000, "ftol": 1e-13, "gtol": 1e-7})
        if not np.all(np.isfinite(result.x)):
            raise TableError("The SHASH centile model did not converge; check the outcome for extreme values.")
        self.coefs_ = [t @ c for t, c in zip(self.transforms_, np.split(result.x, np.cumsum(sizes)[:-1]))]
        self.converged_ = bool(result.success)
        self.negloglik_ = float(result.fun) + len(y) * np.log(self.y_scale_)
        return self

    # ------------------------------------------------------------------ outputs
    def parameters(self, ages) -> dict[str, np.ndarray]:
        """``mu``, ``sigma``, ``nu``, ``tau`` at each age, on the outcome's scale."""
        mu, log_sigma, nu, log_tau = (x @ c for x, c in zip(self._designs(np.atleast_1d(ages)), self.coefs_))
        return {"mu": self.y_center_ + self.y_scale_ * mu, "sigma": self.y_scale_ * np.exp(log_sigma),
                "nu": nu, "tau": np.exp(log_tau)}

    def quantiles(self, ages, quantiles) -> np.ndarray:
        """Outcome values at each age (rows) and quantile (columns, fractions)."""
        p = self.parameters(ages)
        normal = sps.norm.ppf(np.asarray(quantiles, dtype=float))[None, :]
        shape = np.sinh((np.arcsinh(normal) + p["nu"][:, None]) / p["tau"][:, None])
        return p["mu"][:, None] + p["sigma"][:, None] * shape

    def z_scores(self, ages, y) -> np.ndarray:
        """Standard normal deviate of each outcome at its age (exact, no clipping)."""
        p = self.parameters(ages)
        z = (np.asarray(y, dtype=float) - p["mu"]) / p["sigma"]
        return np.sinh(p["tau"] * np.arcsinh(z) - p["nu"])
