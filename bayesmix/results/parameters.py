"""Posterior draws under the public parameter names.

Graph variables carry roles (``beta``, ``sd_Subject``, ``corr_Subject``); the
public names carry the statistics (``Days``, ``sd(Days|Subject)``,
``corr(Intercept,Days|Subject)``). This module is the one bridge between them.
"""

from __future__ import annotations

import xarray as xr

from ..spec.terms import Design

__all__ = ["parameter_draws"]


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
        c = factor.correlated
        if not c:
            continue
        corr = posterior[f"corr_{factor.name}"]
        for i in range(len(c)):
            for j in range(i + 1, len(c)):
                out[factor.corr_name(c[i], c[j])] = corr.sel(
                    {f"{factor.name}__corr_term": c[i], f"{factor.name}__corr_term_": c[j]}, drop=True
                )
    out["sigma"] = posterior["sigma"]
    return xr.Dataset(out)
