"""Random effects of one grouping factor, indexed by group codes (no dense design)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pymc as pm
import pytensor.tensor as pt

from ..spec.model import ModelSpec
from ..spec.priors import LKJ
from ..spec.terms import Design, GroupFactor
from .priors import vector_variable

__all__ = ["absorbed_terms", "add_factor", "cholesky_factor", "dims_of"]


def dims_of(factor: GroupFactor) -> dict[str, str]:
    """Dimension names of a factor's variables (documented in the parameter-naming table)."""
    return {
        "levels": factor.name,
        "terms": f"{factor.name}__term",
        "corr_rows": f"{factor.name}__corr_term",
        "corr_cols": f"{factor.name}__corr_term_",
    }


def cholesky_factor(factor: GroupFactor, spec: ModelSpec, sd: Any) -> Any:
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


def absorbed_terms(design: Design, spec: ModelSpec) -> dict[str, dict[int, int]]:
    """Per centered factor: term position -> fixed-effect column its group values are centred on.

    A term of a centered factor is centred on the fixed effect of the same column
    (``Intercept`` on the intercept, ``x`` on the slope of ``x``); each fixed effect is
    taken by the first centered factor that has it, so crossed factors do not share one.
    """
    taken: set[int] = set()
    out: dict[str, dict[int, int]] = {}
    for factor in design.factors:
        if factor.name not in spec.centered:
            continue
        pairs = {}
        for t, term in enumerate(factor.terms):
            if term not in design.fixed_names:
                continue
            j = design.fixed_names.index(term)
            if j not in taken and np.array_equal(design.X[:, j], factor.values[:, t]):
                pairs[t] = j
                taken.add(j)
        out[factor.name] = pairs
    return out


def add_factor(
    factor: GroupFactor, spec: ModelSpec, beta: Any = None, absorbed: dict[int, int] | None = None
) -> Any:
    """Add one grouping factor's random effects; return its ``(n,)`` contribution to the mean.

    With ``Sigma = L L'`` the terms' covariance: non-centered, ``z ~ N(0, 1)`` and
    ``re = z L'``; centered (``spec.centered``), each level's coefficients
    ``u_j ~ MvNormal(m, Sigma)`` with ``m`` the fixed effects the terms deviate from
    (``absorbed``: term position -> fixed-effect column; 0 for the other terms), and
    ``re = u - m``. With a known covariance ``K = L_K L_K'`` of the levels,
    ``re = L_K z L'`` (non-centered) or ``vec(u) ~ MvNormal(vec(1 m'), K (x) Sigma)`` with
    the Cholesky factor ``L_K (x) L`` (centered; row-major ``vec``). Either way
    ``re_{factor}`` has dims ``(factor, factor__term)``; the returned contribution is
    ``u`` (centered) or ``re`` (non-centered) times the term values, so that the caller
    leaves the absorbed fixed effects out of the fixed part.
    """
    dims = dims_of(factor)
    sd = vector_variable(
        f"sd_{factor.name}", [spec.priors[factor.sd_name(t)] for t in factor.terms], dims=dims["terms"]
    )
    L = cholesky_factor(factor, spec, sd)
    re_dims = (dims["levels"], dims["terms"])
    name = f"re_{factor.name}"
    J, q = factor.n_levels, factor.n_terms
    if factor.name not in spec.centered:
        z = pm.Normal(f"z_{factor.name}", 0.0, 1.0, dims=re_dims)
        if factor.covariance is not None:
            z = pt.as_tensor(np.linalg.cholesky(factor.covariance)) @ z
        coef = pm.Deterministic(name, z @ L.T, dims=re_dims)
    else:
        m = pt.zeros(q)
        for t, j in (absorbed or {}).items():
            m = pt.set_subtensor(m[t], beta[j])
        if factor.covariance is None:
            coef = pm.MvNormal(f"coef_{factor.name}", mu=m, chol=L, dims=re_dims)
        else:
            L_K = pt.as_tensor(np.linalg.cholesky(factor.covariance))
            flat = pm.MvNormal(f"coef_{factor.name}__vec", mu=pt.tile(m, J), chol=pt.linalg.kron(L_K, L))
            coef = flat.reshape((J, q))
        pm.Deterministic(name, coef - m[None, :], dims=re_dims)
    index = pm.Data(f"data__{factor.name}__index", factor.index)
    values = pm.Data(f"data__{factor.name}__values", factor.values)
    return pt.sum(coef[index] * values, axis=1)
