"""Typed priors -> PyMC distributions, in one place (``functools.singledispatch``)."""

from __future__ import annotations

from collections.abc import Sequence
from functools import singledispatch
from typing import Any

import numpy as np
import pymc as pm
import pytensor.tensor as pt
from scipy.special import gammaln

from ..spec import priors as bp

__all__ = ["dirichlet_logit_logp", "prior_dist", "vector_variable"]


@singledispatch
def prior_dist(prior: bp.Prior) -> tuple[Any, dict[str, float]]:
    """PyMC distribution class and keyword arguments for a prior."""
    raise TypeError(f"no PyMC mapping for prior {prior!r}")


@prior_dist.register
def _(p: bp.Normal) -> tuple[Any, dict[str, float]]:
    return pm.Normal, {"mu": p.mu, "sigma": p.sigma}


@prior_dist.register
def _(p: bp.StudentT) -> tuple[Any, dict[str, float]]:
    return pm.StudentT, {"nu": p.nu, "mu": p.mu, "sigma": p.sigma}


@prior_dist.register
def _(p: bp.Cauchy) -> tuple[Any, dict[str, float]]:
    return pm.Cauchy, {"alpha": p.alpha, "beta": p.beta}


@prior_dist.register
def _(p: bp.Uniform) -> tuple[Any, dict[str, float]]:
    return pm.Uniform, {"lower": p.lower, "upper": p.upper}


@prior_dist.register
def _(p: bp.Flat) -> tuple[Any, dict[str, float]]:
    return pm.Flat, {}


@prior_dist.register
def _(p: bp.HalfNormal) -> tuple[Any, dict[str, float]]:
    return pm.HalfNormal, {"sigma": p.sigma}


@prior_dist.register
def _(p: bp.HalfCauchy) -> tuple[Any, dict[str, float]]:
    return pm.HalfCauchy, {"beta": p.beta}


@prior_dist.register
def _(p: bp.HalfStudentT) -> tuple[Any, dict[str, float]]:
    return pm.HalfStudentT, {"nu": p.nu, "sigma": p.sigma}


@prior_dist.register
def _(p: bp.Gamma) -> tuple[Any, dict[str, float]]:
    return pm.Gamma, {"alpha": p.alpha, "beta": p.beta}


@prior_dist.register
def _(p: bp.Exponential) -> tuple[Any, dict[str, float]]:
    return pm.Exponential, {"lam": p.lam}


@prior_dist.register
def _(p: bp.Beta) -> tuple[Any, dict[str, float]]:
    return pm.Beta, {"alpha": p.alpha, "beta": p.beta}


@prior_dist.register
def _(p: bp.Dirichlet) -> tuple[Any, dict[str, float]]:
    # Only the symmetric form maps to one PyMC distribution without knowing k; bayesmix applies a
    # Dirichlet to a mixture's class logits through dirichlet_logit_logp (with the Jacobian).
    raise TypeError(
        f"{p.describe()} is the prior of a mixture's class probabilities (key 'class'); it has no "
        "PyMC distribution of its own here: see bayesmix.build.priors.dirichlet_logit_logp"
    )


def dirichlet_logit_logp(prior: bp.Dirichlet, logits: Any, k: int) -> Any:
    r"""Log-density of the ``k - 1`` class logits ``gamma`` when ``softmax(0, gamma) ~ Dirichlet``.

    Notes
    -----
    With :math:`\pi = \operatorname{softmax}(0, \gamma)`, the Jacobian of
    :math:`\gamma \mapsto (\pi_2, \dots, \pi_k)` is
    :math:`\det(\operatorname{diag}(p) - p p') = \prod_{i=1}^k \pi_i` (matrix determinant
    lemma, :math:`p = (\pi_2, \dots, \pi_k)`), so
    :math:`\log p(\gamma) = \log\Gamma(\sum\alpha_i) - \sum \log\Gamma(\alpha_i) + \sum \alpha_i \log\pi_i`.
    """
    alpha = np.asarray(prior.concentrations(k), dtype=float)
    full = pt.concatenate([pt.zeros(1), logits])
    log_pi = full - pt.logsumexp(full)
    norm = float(gammaln(alpha.sum()) - gammaln(alpha).sum())
    return norm + pt.sum(pt.as_tensor(alpha) * log_pi)


def vector_variable(name: str, priors: Sequence[bp.Prior], dims: str) -> Any:
    """One vector random variable whose elements may have different priors.

    Elements sharing one prior family become one vectorized PyMC distribution. When
    the families differ, the vector is an unconstrained (or positive) flat variable
    whose log-density is added as a ``Potential`` named ``{name}_prior``, so the graph
    keeps one variable per role whatever priors the user chose.
    """
    kinds = {type(p) for p in priors}
    if len(kinds) == 1:
        cls, _ = prior_dist(priors[0])
        args = [prior_dist(p)[1] for p in priors]
        vectors = {k: np.array([a[k] for a in args]) for k in args[0]}
        return cls(name, **vectors, dims=dims)
    positive = all(p.positive for p in priors)
    var = (pm.HalfFlat if positive else pm.Flat)(name, dims=dims)
    terms = []
    for i, p in enumerate(priors):
        dist, params = prior_dist(p)
        if dist is not pm.Flat:
            terms.append(pm.logp(dist.dist(**params), var[i]))
    if terms:
        pm.Potential(f"{name}_prior", pt.sum(pt.stack(terms)))
    return var
