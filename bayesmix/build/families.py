"""Family name -> PyMC log-density of each observation, in one place.

The registry (:mod:`bayesmix.spec.families`) says what a family is; this module
says how PyMC computes it. Each entry takes the linear predictor ``eta`` (a tensor
broadcasting against the response), the auxiliary parameters by name, the response
(a numpy constant) and the binomial trials, and returns the elementwise log-density.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any

import numpy as np
import pymc as pm
import pytensor.tensor as pt

from ..spec.families import Family

__all__ = ["LIKELIHOODS", "family_logp", "inverse_link"]

Tensor = Any


def inverse_link(link: str, eta: Tensor) -> Tensor:
    """The mean of the response (or of ``log y``) given the linear predictor."""
    if link == "identity":
        return eta
    if link == "log":
        return pt.exp(eta)
    if link == "logit":
        return pt.sigmoid(eta)
    if link == "probit":
        return 0.5 * pt.erfc(-eta / np.sqrt(2.0))
    raise ValueError(f"unknown link {link!r}")


def _beta(mu: Tensor, aux: Mapping[str, Tensor], y: np.ndarray, trials: Any) -> Tensor:
    phi = aux["phi"]
    return pm.logp(pm.Beta.dist(alpha=mu * phi, beta=(1 - mu) * phi), y)


LIKELIHOODS: Mapping[str, Callable[[Tensor, Mapping[str, Tensor], np.ndarray, Any], Tensor]] = (
    MappingProxyType(
        {
            "gaussian": lambda mu, aux, y, n: pm.logp(pm.Normal.dist(mu=mu, sigma=aux["sigma"]), y),
            "lognormal": lambda mu, aux, y, n: pm.logp(pm.LogNormal.dist(mu=mu, sigma=aux["sigma"]), y),
            "studentt": lambda mu, aux, y, n: pm.logp(
                pm.StudentT.dist(nu=aux["nu"], mu=mu, sigma=aux["sigma"]), y
            ),
            "poisson": lambda mu, aux, y, n: pm.logp(pm.Poisson.dist(mu=mu), y),
            "negbinomial": lambda mu, aux, y, n: pm.logp(
                pm.NegativeBinomial.dist(mu=mu, alpha=aux["alpha"]), y
            ),
            "gamma": lambda mu, aux, y, n: pm.logp(
                pm.Gamma.dist(alpha=aux["alpha"], beta=aux["alpha"] / mu), y
            ),
            "bernoulli": lambda mu, aux, y, n: pm.logp(pm.Bernoulli.dist(p=mu), y),
            "binomial": lambda mu, aux, y, n: pm.logp(pm.Binomial.dist(n=n, p=mu), y),
            "beta": _beta,
        }
    )
)

# A value inside each support, put where an observation lies outside it (the point mass's value):
# the density there is replaced by -inf, and the gradient stays finite.
_SAFE = {"real": 0.0, "positive": 1.0, "count": 0.0, "binary": 0.0, "unit": 0.5, "any": 0.0}


def family_logp(
    family: Family, eta: Tensor, aux: Mapping[str, Tensor], y: np.ndarray, trials: np.ndarray | None
) -> Tensor:
    """Elementwise log-density of ``y``; ``-inf`` where ``y`` is outside the family's support."""
    inside = ~family.outside(y)
    y_safe = np.where(inside, y, _SAFE[family.support])
    logp = LIKELIHOODS[family.name](inverse_link(family.link, eta), aux, y_safe, trials)
    if inside.all():
        return logp
    return pt.switch(inside, logp, -np.inf)
