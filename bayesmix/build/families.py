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

__all__ = ["DISTRIBUTIONS", "family_dist", "family_logp", "inverse_link", "within_support"]

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


DISTRIBUTIONS: Mapping[str, Callable[[Tensor, Mapping[str, Tensor], Any], Any]] = MappingProxyType(
    {
        "gaussian": lambda mu, aux, n: pm.Normal.dist(mu=mu, sigma=aux["sigma"]),
        "lognormal": lambda mu, aux, n: pm.LogNormal.dist(mu=mu, sigma=aux["sigma"]),
        "studentt": lambda mu, aux, n: pm.StudentT.dist(nu=aux["nu"], mu=mu, sigma=aux["sigma"]),
        "poisson": lambda mu, aux, n: pm.Poisson.dist(mu=mu),
        "negbinomial": lambda mu, aux, n: pm.NegativeBinomial.dist(mu=mu, alpha=aux["alpha"]),
        "gamma": lambda mu, aux, n: pm.Gamma.dist(alpha=aux["alpha"], beta=aux["alpha"] / mu),
        "bernoulli": lambda mu, aux, n: pm.Bernoulli.dist(p=mu),
        "binomial": lambda mu, aux, n: pm.Binomial.dist(n=n, p=mu),
        "beta": lambda mu, aux, n: pm.Beta.dist(alpha=mu * aux["phi"], beta=(1 - mu) * aux["phi"]),
    }
)


def family_dist(family: Family, eta: Tensor, aux: Mapping[str, Tensor], trials: Any) -> Any:
    """The (unnamed) PyMC distribution of the response given the linear predictor."""
    return DISTRIBUTIONS[family.name](inverse_link(family.link, eta), aux, trials)


# A value inside each support, put where an observation lies outside it (the point mass's value):
# the density there is replaced by -inf, and the gradient stays finite.
_SAFE = {"real": 0.0, "positive": 1.0, "count": 0.0, "binary": 0.0, "unit": 0.5, "any": 0.0}


def within_support(family: Family, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(y_safe, inside)``: ``y`` with values outside the support set to one inside, and where it was."""
    inside = ~family.outside(y)
    return np.where(inside, y, _SAFE[family.support]), inside


def family_logp(
    family: Family,
    eta: Tensor,
    aux: Mapping[str, Tensor],
    y: Any,
    trials: Any,
    inside: Any = None,
) -> Tensor:
    """Elementwise log-density of ``y``; ``-inf`` where ``y`` is outside the family's support.

    ``y`` is a numpy array, or, with ``inside`` given, the response already inside the
    support (:func:`within_support`) and the mask of where it was: both may then be
    symbolic inputs, so that one compiled function serves every data set of that shape.
    """
    if inside is None:
        y, inside = within_support(family, y)
        if inside.all():
            return pm.logp(family_dist(family, eta, aux, trials), y)
    return pt.switch(inside, pm.logp(family_dist(family, eta, aux, trials), y), -np.inf)
