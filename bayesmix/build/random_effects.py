"""Random effects of one grouping factor, indexed by group codes (no dense design)."""

from __future__ import annotations

from typing import Any

import pymc as pm
import pytensor.tensor as pt

from ..spec.model import ModelSpec
from ..spec.priors import LKJ
from ..spec.terms import GroupFactor
from .priors import vector_variable

__all__ = ["add_factor", "dims_of"]


def dims_of(factor: GroupFactor) -> dict[str, str]:
    """Dimension names of a factor's variables (documented in the parameter-naming table)."""
    return {
        "levels": factor.name,
        "terms": f"{factor.name}__term",
        "corr_rows": f"{factor.name}__corr_term",
        "corr_cols": f"{factor.name}__corr_term_",
    }


def _cholesky(factor: GroupFactor, spec: ModelSpec, sd: Any) -> Any:
    """Lower-triangular ``L`` with ``L L' = Sigma``: ``diag(sd)`` times the correlation factor."""
    q = factor.n_terms
    if not factor.correlated:
        return pt.diag(sd)
    dims = dims_of(factor)
    prior = spec.priors[f"corr({factor.name})"]
    if not isinstance(prior, LKJ):  # guaranteed by the spec's checks
        raise TypeError(f"corr({factor.name}) needs an LKJ prior")
    pos = list(factor.correlated_positions)
    chol_corr = pm.LKJCorr(
        f"chol_corr_{factor.name}", n=len(pos), eta=prior.eta, dims=(dims["corr_rows"], dims["corr_cols"])
    )
    pm.Deterministic(
        f"corr_{factor.name}", chol_corr @ chol_corr.T, dims=(dims["corr_rows"], dims["corr_cols"])
    )
    R = pt.eye(q)
    R = pt.set_subtensor(R[tuple(zip(*[(i, j) for i in pos for j in pos], strict=True))], chol_corr.ravel())
    return sd[:, None] * R


def add_factor(factor: GroupFactor, spec: ModelSpec) -> Any:
    """Add one grouping factor's random effects; return its ``(n,)`` contribution to the mean.

    Non-centered (default): ``z ~ N(0, 1)``, ``re = z L'``. Centered (listed in
    ``spec.centered``): ``re ~ MvNormal(0, L L')``. Either way ``re_{factor}`` has
    dims ``(factor, factor__term)``.
    """
    dims = dims_of(factor)
    sd = vector_variable(
        f"sd_{factor.name}", [spec.priors[factor.sd_name(t)] for t in factor.terms], dims=dims["terms"]
    )
    L = _cholesky(factor, spec, sd)
    re_dims = (dims["levels"], dims["terms"])
    if factor.name in spec.centered:
        re = pm.MvNormal(f"re_{factor.name}", mu=pt.zeros(factor.n_terms), chol=L, dims=re_dims)
    else:
        z = pm.Normal(f"z_{factor.name}", 0.0, 1.0, dims=re_dims)
        re = pm.Deterministic(f"re_{factor.name}", z @ L.T, dims=re_dims)
    return pt.sum(re[factor.index] * factor.values, axis=1)
