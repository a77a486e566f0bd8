r"""Centered or non-centered random effects, chosen per grouping factor from the data.

Given its standard deviation :math:`\tau`, a random effect :math:`b_j` has the prior
:math:`N(0, \tau^2)` and the data of group :math:`j` carry the (expected, Fisher)
information :math:`I_j` about it. Its conditional posterior has variance
:math:`1 / (I_j + 1/\tau^2)`, so the ratio

.. math:: r_j = I_j \tau^2

says which of the two dominates. When the data dominate (:math:`r_j \gg 1`) the
posterior of :math:`b_j` barely depends on :math:`\tau`: the centered form
:math:`b_j \sim N(0, \tau^2)` has no funnel, while the non-centered form
:math:`b_j = \tau z_j` ties :math:`z_j` tightly to :math:`\tau` and mixes slowly. When
the prior dominates (:math:`r_j \ll 1`) it is the other way round.

The rule: for each term of a factor, :math:`I_{jt} = \sum_{i \in j} w_i x_{it}^2`
with :math:`w_i` the family's information about the linear predictor per row
(:attr:`bayesmix.spec.families.Family.information`) evaluated at the pooled fit (the
response's centre on the link scale; auxiliary parameters at their moment values), and
:math:`\tau` the median of the term's SD prior. A factor is centered when the median
over its groups of :math:`r_{jt}` is at least 1 for every term. Factors with a known
covariance ``K`` are judged the same way with :math:`\tau^2` scaled by the mean of
``diag(K)``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from scipy import stats

from .families import Family
from .priors import Exponential, Gamma, HalfCauchy, HalfNormal, HalfStudentT, Prior, Uniform
from .terms import Design, GroupFactor

__all__ = ["Choice", "choose", "information_ratio", "prior_median"]

THRESHOLD = 1.0


@dataclass(frozen=True, slots=True)
class Choice:
    """The parametrization of one grouping factor and why."""

    factor: str
    centered: bool
    ratio: float
    source: str  # "auto" or "user"

    def describe(self) -> str:
        """One line for reports."""
        form = "centered" if self.centered else "non-centered"
        if self.source == "user":
            return f"{self.factor}: {form} (chosen by the user; information ratio {self.ratio:.3g})"
        return (
            f"{self.factor}: {form} (median information ratio I_j tau^2 = {self.ratio:.3g} "
            f"{'>=' if self.centered else '<'} {THRESHOLD:g})"
        )


def prior_median(prior: Prior) -> float:
    """Median of a positive prior (the typical size of a standard deviation under it)."""
    if isinstance(prior, HalfNormal):
        return float(stats.halfnorm.median(scale=prior.sigma))
    if isinstance(prior, HalfCauchy):
        return float(prior.beta)
    if isinstance(prior, HalfStudentT):
        return float(prior.sigma * stats.t.ppf(0.75, prior.nu))
    if isinstance(prior, Exponential):
        return float(np.log(2.0) / prior.lam)
    if isinstance(prior, Gamma):
        return float(stats.gamma.median(prior.alpha, scale=1.0 / prior.beta))
    if isinstance(prior, Uniform):
        return float((prior.lower + prior.upper) / 2)
    raise TypeError(f"no median for the prior {prior.describe()}")


def _aux_at_moments(family: Family, design: Design) -> dict[str, np.ndarray]:
    """Rough values of the auxiliary parameters from the response's moments (for the rule only)."""
    y = design.y
    values: dict[str, float] = {}
    for name in family.auxiliary:
        if name == "sigma":
            values[name] = float(np.std(np.log(y) if family.log_response else y)) or 1.0
        elif name == "nu":
            values[name] = 4.0
        elif name == "alpha" and family.support == "count":  # negative binomial: var = mu + mu^2 / alpha
            m, v = float(np.mean(y)), float(np.var(y))
            values[name] = m**2 / (v - m) if v > m else 1e6
        elif name == "alpha":  # gamma shape: mean^2 / var
            values[name] = float(np.mean(y) ** 2 / max(np.var(y), 1e-300))
        else:  # beta precision: mean (1 - mean) / var - 1
            m = float(np.mean(y))
            values[name] = max(m * (1 - m) / max(float(np.var(y)), 1e-300) - 1, 1e-3)
    return {k: np.asarray(v) for k, v in values.items()}


def information_ratio(
    factor: GroupFactor, design: Design, family: Family, priors: Mapping[str, Prior]
) -> float:
    """The smallest over terms of the median over groups of ``I_jt tau_t^2`` (see the module notes)."""
    centre, _ = family.location(design.y, design.trials)
    eta = np.full(design.n_obs, centre)
    if design.offset is not None:
        eta = eta + design.offset - float(np.mean(design.offset))
    w = family.information(eta, _aux_at_moments(family, design), design.trials, family.link)
    scale = 1.0 if factor.covariance is None else float(np.mean(np.diag(factor.covariance)))
    observed = factor.counts > 0
    ratios = []
    for t, term in enumerate(factor.terms):
        info = np.bincount(factor.index, weights=w * factor.values[:, t] ** 2, minlength=factor.n_levels)
        tau = prior_median(priors[factor.sd_name(term)])
        ratios.append(float(np.median(info[observed] * tau**2 * scale)))
    return min(ratios)


def choose(
    design: Design,
    family: Family,
    priors: Mapping[str, Prior],
    centered: str | object,
) -> tuple[Choice, ...]:
    """Resolve the user's ``centered`` argument into one :class:`Choice` per factor.

    ``"auto"``: the rule above for every factor; a list or tuple of names: those factors
    centered, the others not; a dict ``{name: bool}``: the rule, overridden where named.
    """
    names = [f.name for f in design.factors]
    if isinstance(centered, str):
        if centered != "auto":
            raise ValueError(
                "centered must be 'auto', a list of grouping factors or a dict factor -> bool; "
                f"got {centered!r}"
            )
        overrides: dict[str, bool] = {}
    elif isinstance(centered, Mapping):
        if not all(isinstance(v, bool) for v in centered.values()):
            raise TypeError(f"centered as a dict maps grouping factors to True/False, got {dict(centered)!r}")
        overrides = dict(centered)
    elif isinstance(centered, list | tuple | set | frozenset):
        if not all(isinstance(c, str) for c in centered):
            raise TypeError(f"centered must be a list of grouping-factor names, got {centered!r}")
        overrides = {name: name in centered for name in names} | {c: True for c in centered}
    else:
        raise TypeError(
            f"centered must be 'auto', a list of grouping factors or a dict factor -> bool; got {centered!r}"
        )
    unknown = set(overrides) - set(names)
    if unknown:
        raise ValueError(
            f"centered names unknown grouping factors {sorted(unknown)}; factors: {sorted(names)}"
        )
    choices = []
    for factor in design.factors:
        ratio = information_ratio(factor, design, family, priors)
        if factor.name in overrides:
            choices.append(Choice(factor.name, overrides[factor.name], ratio, "user"))
        else:
            choices.append(Choice(factor.name, ratio >= THRESHOLD, ratio, "auto"))
    return tuple(choices)
