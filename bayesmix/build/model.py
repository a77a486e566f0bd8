"""Spec + design -> ``pm.Model``."""

from __future__ import annotations

import pymc as pm
import pytensor.tensor as pt

from ..spec.model import ModelSpec
from ..spec.terms import Design
from .priors import prior_dist, vector_variable
from .random_effects import add_factor, dims_of

__all__ = ["build_model", "coords_of"]


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


def build_model(spec: ModelSpec, design: Design) -> pm.Model:
    """Build the Gaussian hierarchical model.

    Variables (see the parameter-naming table in the docs): ``beta`` (dims ``coef``),
    per grouping factor ``g``: ``sd_g``, ``chol_corr_g``/``corr_g`` (correlated block),
    ``z_g`` (non-centered) and ``re_g``; residual ``sigma``; the observed response
    under its column name.
    """
    with pm.Model(coords=coords_of(design)) as model:
        mu = pt.zeros(design.n_obs)
        if design.fixed_names:
            beta = vector_variable("beta", [spec.priors[n] for n in design.fixed_names], dims="coef")
            mu = mu + pt.dot(design.X, beta)
        for factor in design.factors:
            mu = mu + add_factor(factor, spec)
        cls, kwargs = prior_dist(spec.priors["sigma"])
        sigma = cls("sigma", **kwargs)
        pm.Normal(design.response_name, mu=mu, sigma=sigma, observed=design.y, dims="obs")
    return model
