r"""The numbers behind a forest plot: each group's own estimate, its pooled posterior, the pooled mean.

For a Gaussian model with a random intercept per level of a grouping factor (a meta-analysis:
``y | se(s) ~ 1 + (1 | study)``), per level :math:`j`:

* the **observed** estimate: with known SDs, the inverse-variance weighted mean of the level's
  rows, :math:`\hat\theta_j = \sum_i w_i y_i / \sum_i w_i`, :math:`w_i = 1/s_i^2`, with standard
  error :math:`(\sum_i w_i)^{-1/2}` (one row per study: :math:`y_j` and :math:`s_j`); otherwise
  the level's mean response with standard error :math:`\hat\sigma_w / \sqrt{n_j}`,
  :math:`\hat\sigma_w` the pooled within-level SD. Its interval is :math:`\hat\theta_j \pm z\,
  \mathrm{se}_j`, :math:`z = \Phi^{-1}((1 + p)/2)`;
* the **partially pooled** posterior: the level's mean linear predictor over its rows,
  :math:`x_i'\beta + b_j` (offsets included), draw by draw; mean and equal-tailed interval;

and for the model as a whole:

* the **pooled** estimate: the population mean at the rows' average covariates,
  :math:`\mu = \bar x'\beta` (the ``Intercept`` when there are no moderators);
* the **prediction** interval of a new level's true value,
  :math:`\theta_{new} \mid \text{data} \sim \int N(\mu, \tau^2)\, p(\mu, \tau \mid \text{data})`:
  the quantiles of the mixture of :math:`N(\mu_s, \tau_s^2)` over the posterior draws
  :math:`s`, found by solving :math:`S^{-1} \sum_s \Phi((x - \mu_s)/\tau_s) = \alpha` (exact for
  the draws at hand: no further random numbers).

References
----------
Higgins, J. P. T., Thompson, S. G. and Spiegelhalter, D. J. (2009). A re-evaluation of
random-effects meta-analysis. *J. R. Stat. Soc. A* 172, 137-159 (prediction intervals).
"""

from __future__ import annotations

import numbers
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from scipy import optimize, stats

from ..spec.terms import FloatArray, GroupFactor
from .predict import linear_predictor

if TYPE_CHECKING:
    from .fit import Fit

__all__ = ["forest_table"]


def _factor(fit: Fit, group: str | None) -> GroupFactor:
    factors = fit.design.factors
    names = [f.name for f in factors]
    if group is None:
        if len(factors) != 1:
            raise ValueError(f"the model has the grouping factors {names}: name one with group=")
        return factors[0]
    for factor in factors:
        if factor.name == group:
            return factor
    raise ValueError(f"no grouping factor {group!r} in this model; factors: {names}")


def _observed(fit: Fit, factor: GroupFactor) -> tuple[FloatArray, FloatArray]:
    """Each level's own estimate and its standard error (NaN for a level without rows)."""
    design = fit.design
    J, idx, y = factor.n_levels, factor.index, design.y
    counts = factor.counts.astype(float)
    with np.errstate(divide="ignore", invalid="ignore"):
        if design.known_sd is not None:
            w = 1.0 / design.known_sd**2
            total = np.bincount(idx, weights=w, minlength=J)
            return np.bincount(idx, weights=w * y, minlength=J) / total, 1.0 / np.sqrt(total)
        mean = np.bincount(idx, weights=y, minlength=J) / counts
        dof = design.n_obs - int((factor.counts > 0).sum())
        within = float(np.sum((y - mean[idx]) ** 2)) / dof if dof > 0 else np.nan
        return mean, np.sqrt(within / counts)


def _mixture_quantile(mu: FloatArray, tau: FloatArray, level: float) -> float:
    """The ``level`` quantile of the equal-weight mixture of ``N(mu_s, tau_s^2)``."""
    spread = np.maximum(tau, 0.0)
    lo = float(np.min(mu - 10 * spread)) - 1e-9
    hi = float(np.max(mu + 10 * spread)) + 1e-9
    with np.errstate(divide="ignore", invalid="ignore"):

        def cdf(x: float) -> float:
            point = np.where(x >= mu, np.inf, -np.inf)  # a draw with tau = 0 is a point mass at mu
            z = np.where(spread > 0, (x - mu) / np.where(spread > 0, spread, 1.0), point)
            return float(np.mean(stats.norm.cdf(z))) - level

        return float(optimize.brentq(cdf, lo, hi, xtol=1e-10 * max(1.0, abs(hi - lo))))


def forest_table(fit: Fit, group: str | None = None, *, prob: float = 0.95) -> pd.DataFrame:
    """Per level: the observed estimate and the partially pooled posterior; then the pooled rows.

    Parameters
    ----------
    fit
        A Gaussian fit whose factor ``group`` has a random intercept only (``(1 | g)``).
    group
        The grouping factor; may be left out when the model has one.
    prob
        Probability of every interval (observed, posterior, prediction).

    Returns
    -------
    pandas.DataFrame
        Indexed by the levels, then ``"pooled"`` and ``"prediction"``. Columns: ``kind``
        (``"level"``, ``"pooled"``, ``"prediction"``), ``n`` (rows), ``observed``,
        ``observed_se``, ``observed_lower``, ``observed_upper`` (NaN on the pooled rows),
        ``mean``, ``lower``, ``upper`` (posterior). See the module notes for the definitions.
    """
    if isinstance(prob, bool) or not isinstance(prob, numbers.Real) or not 0 < prob < 1:
        raise ValueError(f"prob must be a number strictly between 0 and 1, got {prob!r}")
    fit.spec.require_gaussian("the forest plot")
    factor = _factor(fit, group)
    if factor.terms != ("Intercept",):
        raise ValueError(
            f"the forest plot shows one value per level: the grouping factor {factor.name!r} has the terms "
            f"{list(factor.terms)}; it needs a random intercept only, (1 | {factor.name})"
        )
    design, posterior = fit.design, fit.posterior
    alpha = (1.0 - prob) / 2.0
    z = float(stats.norm.isf(alpha))
    eta = linear_predictor(posterior, design, design, np.random.default_rng(0))  # (S, n); no new levels
    J = factor.n_levels
    sums = np.zeros((J, eta.shape[0]))
    np.add.at(sums, factor.index, eta.T)
    with np.errstate(invalid="ignore", divide="ignore"):
        level_draws = sums / factor.counts[:, None]  # (J, S)
    observed, se = _observed(fit, factor)
    offset = 0.0 if design.offset is None else float(np.mean(design.offset))
    size = eta.shape[0]
    if design.fixed_names:
        beta = posterior["beta"].transpose("chain", "draw", "coef").values.reshape(size, -1)
        pooled = beta @ design.X.mean(axis=0) + offset
    else:
        pooled = np.full(size, offset)
    tau = posterior[f"sd_{factor.name}"].transpose("chain", "draw", ...).values.reshape(size)
    rows = []
    for j in range(J):
        draws = level_draws[j]
        rows.append(
            {
                "kind": "level",
                "n": int(factor.counts[j]),
                "observed": observed[j],
                "observed_se": se[j],
                "mean": float(np.mean(draws)),
                "lower": float(np.quantile(draws, alpha)),
                "upper": float(np.quantile(draws, 1 - alpha)),
            }
        )
    rows.append(
        {
            "kind": "pooled",
            "n": design.n_obs,
            "mean": float(np.mean(pooled)),
            "lower": float(np.quantile(pooled, alpha)),
            "upper": float(np.quantile(pooled, 1 - alpha)),
        }
    )
    rows.append(
        {
            "kind": "prediction",
            "n": design.n_obs,
            "mean": float(np.mean(pooled)),
            "lower": _mixture_quantile(pooled, tau, alpha),
            "upper": _mixture_quantile(pooled, tau, 1 - alpha),
        }
    )
    table = pd.DataFrame(rows, index=pd.Index([*factor.levels, "pooled", "prediction"], name=factor.name))
    table["observed_lower"] = table["observed"] - z * table["observed_se"]
    table["observed_upper"] = table["observed"] + z * table["observed_se"]
    columns = ["kind", "n", "observed", "observed_se", "observed_lower", "observed_upper"]
    return table[[*columns, "mean", "lower", "upper"]]
