"""Spec + design -> ``pm.Model``."""

from __future__ import annotations

import numpy as np
import pymc as pm
import pytensor.tensor as pt

from ..spec.aggregate import Aggregated
from ..spec.model import ModelSpec
from ..spec.terms import Design
from .families import family_dist
from .marginal import build_marginal_model
from .priors import prior_dist, vector_variable
from .random_effects import absorbed_terms, add_factor, dims_of

__all__ = ["SHARED_RESPONSE", "build_model", "coords_of"]

#: families whose log-density has no term in the response alone: their response is ``pm.Data``
SHARED_RESPONSE = frozenset({"gaussian", "bernoulli"})


def coords_of(design: Design) -> dict[str, list[str]]:
    """Coordinates: fixed-effect names, and per factor its levels and terms."""
    coords: dict[str, list[str]] = {
        "coef": list(design.fixed_names),
        "obs": [str(i) for i in range(design.n_obs)],
    }
    for factor in design.factors:
        dims = dims_of(factor)
        coords[dims["levels"]] = list(factor.levels)
        coords[dims["terms"]] = list(factor.terms)
        if factor.correlated:
            coords[dims["corr_rows"]] = list(factor.correlated)
            coords[dims["corr_cols"]] = list(factor.correlated)
    return coords


def build_model(spec: ModelSpec, design: Design, aggregated: Aggregated | None = None) -> pm.Model:
    """Build the hierarchical model (a GLMM for families other than the Gaussian).

    Variables (see the parameter-naming table in the docs): ``beta`` (dims ``coef``),
    per grouping factor ``g``: ``sd_g``, ``chol_corr_g``/``corr_g`` (correlated block),
    ``z_g`` (non-centered) or ``coef_g`` (centered: the groups' own coefficients, centred
    on the fixed effects), and ``re_g`` (deviations from the fixed effects); the family's
    auxiliary parameters (``sigma`` for the Gaussian, absent when each row's SD is known,
    ``y | se(s)``; none for Poisson and Bernoulli); the observed response under its column
    name. The linear predictor is on the family's link scale. With ``aggregated`` (binomial
    rows summed, :mod:`bayesmix.spec.aggregate`) the graph is built on the summed rows.
    """
    if spec.marginalized:
        return build_marginal_model(spec, design, coords_of(design))
    family = spec.family_def
    if aggregated is not None:
        design, family = aggregated.design, aggregated.family
    with pm.Model(coords=coords_of(design)) as model:
        # Data enter as pm.Data ("data__*"), not constants, so that a later fit of the same
        # structure can reuse the compiled model with its own data (bayesmix.compiled).
        mu = pt.zeros(design.n_obs) if design.offset is None else pm.Data("data__offset", design.offset)
        absorbed = absorbed_terms(design, spec)
        beta = None
        if design.fixed_names:
            beta = vector_variable("beta", [spec.priors[n] for n in design.fixed_names], dims="coef")
            # Fixed effects that a centered factor's coefficients are centred on enter the mean
            # through those coefficients (see add_factor), so their columns leave X here.
            keep = sorted(
                set(range(len(design.fixed_names))) - {j for p in absorbed.values() for j in p.values()}
            )
            if keep:
                X = pm.Data("data__X", np.ascontiguousarray(design.X[:, keep]))
                mu = mu + pt.dot(X, beta[keep])
        for factor in design.factors:
            mu = mu + add_factor(factor, spec, beta, absorbed.get(factor.name))
        aux = {}
        for name in family.auxiliary:
            if name == "sigma" and design.known_sd is not None:
                aux[name] = pm.Data("data__known_sd", design.known_sd)  # y | se(s): each row's SD is known
                continue
            cls, kwargs = prior_dist(spec.priors[name])
            aux[name] = cls(name, **kwargs)
        trials = None if design.trials is None else pm.Data("data__trials", design.trials)
        response = family_dist(family, mu, aux, trials)
        # A response in a shared variable keeps per-row terms of y alone (log y!, log C(n, y),
        # log y) out of constant folding: measured 4x slower gradients for a Poisson GLMM of
        # 100k rows. Only families without such terms take it as data.
        y = pm.Data("data__y", design.y) if family.name in SHARED_RESPONSE else design.y
        model.register_rv(response, design.response_name, observed=y, dims=("obs",))
    return model
