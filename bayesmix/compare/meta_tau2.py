"""The between-study variance of a random-effects meta-analysis: REML, ML and DerSimonian-Laird.

The model is ``y_i ~ N(x_i' beta, s_i^2 + tau^2)`` with known ``s_i``. Every quantity here is
computed from ``p x p`` matrices (``p`` the number of coefficients): the ``k x k`` projection
``P = W - W X (X'WX)^-1 X'W`` of the literature is never formed, so ``k`` may be large.
:mod:`bayesmix.compare.meta` builds the user-facing fit on these functions.

>>> import numpy as np
>>> y = np.array([28.0, 8, -3, 7, -1, 1, 18, 12])
>>> v = np.array([15.0, 10, 16, 11, 9, 11, 10, 18]) ** 2
>>> tau2_likelihood(y, v, np.ones((8, 1)), reml=True)  # eight schools: REML tau^2 is on its boundary
(0.0, True)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import scipy.optimize as opt
import scipy.stats as st
from threadpoolctl import threadpool_limits

__all__ = ["WLS", "q_profile", "se_tau2", "tau2_dl", "tau2_likelihood"]

FloatArray = npt.NDArray[np.float64]

#: Relative tolerance of the score root (the polished ML/REML estimate): near double precision.
ROOT_RTOL = 1e-13
#: Doublings allowed when bracketing a root from above (tau^2 grows by 2^200 at most).
MAX_DOUBLINGS = 200
#: Log-spaced points at which the (restricted) likelihood is evaluated to find its global maximum.
GRID_POINTS = 120
#: The grid starts at this fraction of the smallest sampling variance (below it tau^2 is as good as 0).
GRID_LOW = 1e-6


@dataclass(frozen=True, slots=True)
class WLS:
    """Weighted least squares at one ``tau^2``: weights ``w = 1 / (v + tau^2)`` and what follows.

    Attributes
    ----------
    w
        The weights.
    beta
        ``(X'WX)^-1 X'W y``.
    vcov
        ``(X'WX)^-1``, the covariance of ``beta`` given ``tau^2``.
    resid
        ``y - X beta``.
    """

    w: FloatArray
    beta: FloatArray
    vcov: FloatArray
    resid: FloatArray

    @classmethod
    def at(cls, y: FloatArray, v: FloatArray, X: FloatArray, tau2: float) -> WLS:
        """The weighted least-squares fit with weights ``1 / (v + tau2)``."""
        w = 1.0 / (v + tau2)
        vcov = np.linalg.inv(X.T @ (w[:, None] * X))
        beta = vcov @ (X.T @ (w * y))
        return cls(w, beta, vcov, y - X @ beta)

    @property
    def rss(self) -> float:
        """``y'Py = sum w r^2``: the generalized Q statistic at this ``tau^2``."""
        return float(np.sum(self.w * self.resid**2))

    def trace_p(self, X: FloatArray) -> float:
        """``tr P = sum w - tr((X'WX)^-1 X'W^2 X)``."""
        b = X.T @ (self.w[:, None] ** 2 * X)
        return float(np.sum(self.w) - np.trace(self.vcov @ b))

    def trace_pp(self, X: FloatArray) -> float:
        """``tr(P P) = sum w^2 - 2 tr(A^-1 X'W^3 X) + tr(A^-1 B A^-1 B)``, ``A = X'WX``, ``B = X'W^2 X``."""
        b = X.T @ (self.w[:, None] ** 2 * X)
        c = X.T @ (self.w[:, None] ** 3 * X)
        ab = self.vcov @ b
        return float(np.sum(self.w**2) - 2.0 * np.trace(self.vcov @ c) + np.trace(ab @ ab))

    def loglik(self, v: FloatArray, X: FloatArray, tau2: float, *, reml: bool) -> float:
        """The ML log-likelihood, or the REML one including ``+ log det(X'X) / 2`` (metafor's ``REMLf``)."""
        k, p = X.shape
        if not reml:
            return -0.5 * (k * np.log(2.0 * np.pi) + float(np.sum(np.log(v + tau2))) + self.rss)
        logdet_a = -np.linalg.slogdet(self.vcov)[1]
        logdet_xx = np.linalg.slogdet(X.T @ X)[1]
        return -0.5 * (
            (k - p) * np.log(2.0 * np.pi) - logdet_xx + float(np.sum(np.log(v + tau2))) + logdet_a + self.rss
        )

    def score(self, X: FloatArray, *, reml: bool) -> float:
        """``d loglik / d tau^2``: ``(y'PPy - sum w) / 2`` (ML), ``(y'PPy - tr P) / 2`` (REML)."""
        ppy = float(np.sum((self.w * self.resid) ** 2))
        return 0.5 * (ppy - (self.trace_p(X) if reml else float(np.sum(self.w))))


def _bracket_above(fun: Callable[[float], float], start: float) -> float:
    """Double ``start`` until the decreasing function ``fun`` is negative there."""
    upper = start
    for _ in range(MAX_DOUBLINGS):
        if fun(upper) < 0.0:
            return upper
        upper *= 2.0
    raise RuntimeError(f"no sign change of the function below tau^2 = {upper:.3g}")


def tau2_likelihood(y: FloatArray, v: FloatArray, X: FloatArray, *, reml: bool) -> tuple[float, bool]:
    """The ML or REML estimate of ``tau^2 >= 0`` and whether its search converged.

    ``beta`` is profiled out (it is the weighted least-squares fit at each ``tau^2``), which
    leaves a 1-D problem on ``[0, U]``, ``U`` a point where the score is negative. The
    (restricted) likelihood can have more than one maximum, so it is first evaluated at 0 and
    at :data:`GRID_POINTS` log-spaced values from ``GRID_LOW`` times the smallest sampling
    variance to ``U``. If 0 is the best point and the score there is not positive, the
    estimate is exactly 0 (the boundary). Otherwise the best point's neighbours bracket the
    maximum: the root of the score between them is polished by Brent's root finder to near
    double precision (or, without a sign change there, a bounded Brent search maximizes).
    """

    def loglik(t: float) -> float:
        return WLS.at(y, v, X, t).loglik(v, X, t, reml=reml)

    def score(t: float) -> float:
        return WLS.at(y, v, X, t).score(X, reml=reml)

    k, p = X.shape
    with threadpool_limits(limits=1):
        spread = WLS.at(y, v, X, 0.0)
        start = max(float(np.sum(spread.resid**2)) / (k - p), float(np.mean(v)))
        upper = _bracket_above(score, start)
        low = min(GRID_LOW * float(np.min(v)), 1e-3 * upper)
        grid = np.concatenate([[0.0], np.geomspace(low, upper, GRID_POINTS)])
        best = int(np.argmax([loglik(float(t)) for t in grid]))
        if best == 0 and score(0.0) <= 0.0:
            return 0.0, True
        lower, higher = float(grid[max(best - 1, 0)]), float(grid[min(best + 1, grid.size - 1)])
        if score(lower) > 0.0 > score(higher):
            root, info = opt.brentq(
                score, lower, higher, xtol=np.finfo(float).tiny, rtol=ROOT_RTOL, full_output=True
            )
            return float(root), bool(info.converged)
        found = opt.minimize_scalar(
            lambda t: -loglik(t),
            bounds=(lower, higher),
            method="bounded",
            options={"xatol": ROOT_RTOL * higher},
        )
    return float(found.x), bool(found.success)


def tau2_dl(y: FloatArray, v: FloatArray, X: FloatArray) -> float:
    """DerSimonian-Laird: ``max(0, (Q - (k - p)) / tr P)`` with the fixed-effect weights ``1 / v``."""
    k, p = X.shape
    fixed = WLS.at(y, v, X, 0.0)
    return max(0.0, (fixed.rss - (k - p)) / fixed.trace_p(X))


def se_tau2(method: str, y: FloatArray, v: FloatArray, X: FloatArray, tau2: float) -> float:
    """Metafor's standard error of ``tau^2`` for each estimator.

    REML: ``sqrt(2 / tr(PP))`` and ML: ``sqrt(2 / sum w^2)``, both the expected (Fisher)
    information at the estimate. DL: the square root of the variance of the moment estimator
    ``(Q - (k - p)) / tr P_0`` (``P_0`` with weights ``1 / v``), ``(2 (k - p) + 4 tau^2 tr P_0 +
    2 tau^4 tr(P_0 P_0)) / (tr P_0)^2``.
    """
    k, p = X.shape
    if method == "REML":
        return float(np.sqrt(2.0 / WLS.at(y, v, X, tau2).trace_pp(X)))
    if method == "ML":
        return float(np.sqrt(2.0 / np.sum(1.0 / (v + tau2) ** 2)))
    fixed = WLS.at(y, v, X, 0.0)
    tr_p = fixed.trace_p(X)
    var = 2.0 * (k - p) + 4.0 * tau2 * tr_p + 2.0 * tau2**2 * fixed.trace_pp(X)
    return float(np.sqrt(var) / tr_p)


def q_profile(y: FloatArray, v: FloatArray, X: FloatArray, level: float) -> tuple[float, float]:
    """The Q-profile interval of ``tau^2`` (Viechtbauer 2007; metafor's ``confint`` default).

    The generalized ``Q(tau^2) = sum w (y - X beta)^2`` decreases in ``tau^2`` and is
    chi-squared with ``k - p`` degrees of freedom at the true value: the interval holds the
    ``tau^2`` where ``Q`` lies between the ``(1 - level)/2`` and ``(1 + level)/2`` quantiles. A
    bound whose equation has no root in ``tau^2 >= 0`` is 0 (both are 0 when even ``Q(0)`` is
    below the lower quantile, which metafor calls the null set).
    """
    k, p = X.shape
    alpha = 1.0 - level
    q_at_zero = WLS.at(y, v, X, 0.0).rss

    def bound(crit: float) -> float:
        if q_at_zero <= crit:
            return 0.0

        def gap(t: float) -> float:
            return WLS.at(y, v, X, t).rss - crit

        with threadpool_limits(limits=1):
            upper = _bracket_above(gap, max(float(np.mean(v)), 1e-12))
            return float(opt.brentq(gap, 0.0, upper, xtol=np.finfo(float).tiny, rtol=ROOT_RTOL))

    return bound(float(st.chi2.isf(alpha / 2, k - p))), bound(float(st.chi2.ppf(alpha / 2, k - p)))
