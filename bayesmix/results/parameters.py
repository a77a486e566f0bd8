"""Posterior draws under the public parameter names.

Graph variables carry roles (``beta``, ``sd_Subject``, ``corr_Subject``); the
public names carry the statistics (``Days``, ``sd(Days|Subject)``,
``corr(Intercept,Days|Subject)``). This module is the one bridge between them.
"""

from __future__ import annotations

import numbers

import arviz_stats as azs
import numpy as np
import pandas as pd
import xarray as xr

from ..spec.terms import Design

__all__ = ["elementwise_summary", "parameter_draws", "summarize"]

SAMPLE_DIMS = ("chain", "draw")


def elementwise_summary(draws: xr.DataArray, prob: float) -> dict[str, np.ndarray]:
    """Posterior mean, sd and equal-tailed ``prob`` interval of every element of ``draws``.

    The arrays keep the non-sample dimensions of ``draws`` in their order.
    """
    bounds = azs.eti(draws, prob=prob, dim=list(SAMPLE_DIMS))
    return {
        "mean": draws.mean(SAMPLE_DIMS).values,
        "sd": draws.std(SAMPLE_DIMS, ddof=1).values,
        "lower": bounds.isel(ci_bound=0).values,
        "upper": bounds.isel(ci_bound=1).values,
    }


def summarize(draws: xr.Dataset, prob: float) -> pd.DataFrame:
    """Posterior summary per scalar variable of ``draws``.

    Columns: mean, sd, equal-tailed interval bounds at ``prob`` (``lower``, ``upper``),
    mcse_mean, ess_bulk, ess_tail, r_hat.
    """
    if isinstance(prob, bool) or not isinstance(prob, numbers.Real) or not 0 < prob <= 1:
        raise ValueError(f"prob (the interval's probability) must be a number in (0, 1], got {prob!r}")
    table = azs.summary(draws, ci_prob=prob, ci_kind="eti", round_to="none")
    lo, hi = [c for c in table.columns if str(c).startswith("eti")][:2]
    table = table.rename(columns={lo: "lower", hi: "upper"})
    return table[["mean", "sd", "lower", "upper", "mcse_mean", "ess_bulk", "ess_tail", "r_hat"]]


def parameter_draws(posterior: xr.Dataset, design: Design) -> xr.Dataset:
    """One ``(chain, draw)`` variable per public parameter, in canonical order.

    Parameters
    ----------
    posterior
        The ``posterior`` group of a fit.
    design
        The evaluated design (names of fixed effects and grouping factors).
    """
    out: dict[str, xr.DataArray] = {}
    for name in design.fixed_names:
        out[name] = posterior["beta"].sel(coef=name, drop=True)
    for factor in design.factors:
        sd = posterior[f"sd_{factor.name}"]
        for term in factor.terms:
            out[factor.sd_name(term)] = sd.sel({f"{factor.name}__term": term}, drop=True)
        for i, j in factor.correlation_pairs():
            a, b = factor.terms[i], factor.terms[j]
            out[factor.corr_name(a, b)] = posterior[f"corr_{factor.name}"].sel(
                {f"{factor.name}__corr_term": a, f"{factor.name}__corr_term_": b}, drop=True
            )
    for aux in design.auxiliary:
        out[aux] = posterior[aux]
    return xr.Dataset(out)
