r"""Centered or non-centered random effects, chosen per grouping factor from the data.

Given its standard deviation :math:`\tau`, a random effect :math:`b_j` has the prior
:math:`N(0, \tau^2)` and the data of group :math:`j` estimate it with sampling variance
:math:`V_j` (the inverse of the information they carry about it). Its conditional
posterior has variance :math:`1 / (1/V_j + 1/\tau^2)`, so the ratio

.. math:: r_j = \tau^2 / V_j

says which of the two dominates. When the data dominate (:math:`r_j \gg 1`) the
posterior of :math:`b_j` barely depends on :math:`\tau`: the centered form
:math:`b_j \sim N(\beta, \tau^2)` has neither a funnel nor a ridge, while the
non-centered form :math:`b_j = \tau z_j` ties :math:`z_j` tightly to :math:`\tau` and
mixes slowly. When the prior dominates (:math:`r_j \ll 1`) it is the other way round.

Both quantities are estimated from the data, quickly and without sampling:

1. a pooled fit of the fixed effects (iteratively reweighted least squares with the
   family's working weights :attr:`bayesmix.spec.families.Family.information`, offsets
   included) gives the working residuals :math:`r_i` and weights :math:`w_i` on the
   link scale;
2. per group, the weighted least-squares fit of the residuals on the factor's terms gives
   :math:`\hat b_j` and :math:`V_j = (Z_j' W_j Z_j)^{-1}` (for the families with a residual
   scale ``sigma``, :math:`V_j` uses the within-group residual variance);
3. per term, the method of moments gives
   :math:`\hat\tau^2 = \max(0, \overline{\hat b_j^2} - \overline{V_j})`
   (divided by the mean of ``diag(K)`` for a known covariance ``K``).

A factor is centered when the median over its groups of :math:`\hat\tau^2 / V_j` is at
least 1 for every term; a group whose own data cannot estimate its effects (fewer rows
than terms) counts as :math:`r_j = 0`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from .families import INVERSE_LINKS, Family
from .terms import Design, FloatArray, GroupFactor

__all__ = ["Choice", "choose", "information_ratio", "pooled_fit"]

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
            f"{self.factor}: {form} (median information ratio tau^2 / V_j = {self.ratio:.3g} "
            f"{'>=' if self.centered else '<'} {THRESHOLD:g})"
        )


def _aux_at_moments(family: Family, design: Design) -> dict[str, np.ndarray]:
    """Rough values of the auxiliary parameters from the response's moments (for the rule only)."""
    y = design.y
    values: dict[str, float | FloatArray] = {}
    for name in family.auxiliary:
        if name == "sigma" and design.known_sd is not None:
            values[name] = design.known_sd  # y | se(s): the information of row i is 1 / s_i^2
        elif name == "sigma":
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


def _link_slope(link: str, eta: FloatArray) -> FloatArray:
    """``d mu / d eta`` of the inverse link, by central differences (accurate to ~1e-8, plenty here)."""
    h = 1e-5
    inverse = INVERSE_LINKS[link]
    return (inverse(eta + h) - inverse(eta - h)) / (2 * h)


def _working_response(family: Family, design: Design) -> FloatArray:
    """The response on the scale the mean is modelled: ``log y`` (lognormal), shares (binomial), ``y``."""
    if family.log_response:
        return np.log(design.y)
    if design.trials is not None:
        return design.y / design.trials
    return design.y


def pooled_fit(design: Design, family: Family) -> tuple[FloatArray, FloatArray, dict[str, FloatArray]]:
    """Working residuals and weights on the link scale after a pooled IRLS fit of the fixed effects.

    Returns ``(r, w, aux)``: ``r_i = (y_i - mu_i) / mu'(eta_i)``, ``w_i`` the family's
    information about ``eta_i``, and the auxiliary values used.
    """
    y = _working_response(family, design)
    offset = np.zeros(design.n_obs) if design.offset is None else design.offset
    aux = _aux_at_moments(family, design)
    centre, _ = family.location(design.y, design.trials)
    eta = offset + centre
    link = family.link
    for _ in range(25):
        slope = np.maximum(np.abs(_link_slope(link, eta)), 1e-10)
        mu = INVERSE_LINKS[link](eta)
        if design.X.shape[1] == 0:
            break
        w = family.information(eta, aux, design.trials, link)
        z = eta - offset + (y - mu) / slope
        sw = np.sqrt(np.maximum(w, 0.0))
        beta = np.linalg.lstsq(design.X * sw[:, None], z * sw, rcond=None)[0]
        new = offset + design.X @ beta
        if link != "identity":  # keep exp and expit finite on a wild first step
            new = np.clip(new, -30, 30)
        done = float(np.max(np.abs(new - eta))) < 1e-8
        eta = new
        if done:
            break
    slope = np.maximum(np.abs(_link_slope(link, eta)), 1e-10)
    r = (y - INVERSE_LINKS[link](eta)) / slope
    return r, family.information(eta, aux, design.trials, link), aux


def _group_fits(
    factor: GroupFactor, r: FloatArray, w: FloatArray, extra_rows: int = 1
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Per group: ``b_j``, the diagonal of ``V_j`` (``inf`` where not estimable), weighted squared errors.

    A group is estimable with at least ``q + extra_rows`` rows (``extra_rows=0`` when the residual
    variance is known, so that one row per group, as in a meta-analysis, suffices).
    """
    J, q = factor.n_levels, factor.n_terms
    Z = factor.values
    A = np.empty((J, q, q))
    for t in range(q):
        for u in range(t, q):
            A[:, t, u] = A[:, u, t] = np.bincount(factor.index, weights=w * Z[:, t] * Z[:, u], minlength=J)
    c = np.stack([np.bincount(factor.index, weights=w * Z[:, t] * r, minlength=J) for t in range(q)], axis=1)
    b = np.zeros((J, q))
    v = np.full((J, q), np.inf)
    scale = np.maximum(np.abs(A).max(axis=(1, 2)), 1e-300)
    for j in range(J):
        if factor.counts[j] >= q + extra_rows and np.linalg.cond(A[j] / scale[j]) < 1e10:
            inv = np.linalg.inv(A[j])
            b[j], v[j] = inv @ c[j], np.diag(inv)
    fitted = np.sum(b[factor.index] * Z, axis=1)
    return b, v, np.asarray(w * (r - fitted) ** 2)


def information_ratio(
    factor: GroupFactor,
    family: Family,
    residuals: tuple[FloatArray, FloatArray],
    *,
    known_scale: bool = False,
) -> float:
    """The smallest over terms of the median over groups of ``tau^2 / V_j`` (see the module notes).

    ``residuals`` are the working residuals and weights of :func:`pooled_fit`. ``known_scale``:
    the weights are the known inverse variances of the rows (``y | se(s)``), used as they are.
    """
    r, w = residuals
    b, v, weighted_rss = _group_fits(factor, r, w, extra_rows=0 if known_scale else 1)
    ok = np.isfinite(v[:, 0])
    if not ok.any():
        return 0.0
    # identity-link families: replace the total variance by the within one (unless it is known)
    if "sigma" in family.auxiliary and not known_scale:
        rows = ok[factor.index]
        dof = int(rows.sum()) - factor.n_terms * int(ok.sum())
        if dof > 0:
            v = v * float(weighted_rss[rows].sum()) / dof
    kdiag = np.ones(factor.n_levels) if factor.covariance is None else np.diag(factor.covariance)
    observed = factor.counts > 0
    ratios = []
    for t in range(factor.n_terms):
        tau2 = max(float(np.mean(b[ok, t] ** 2) - np.mean(v[ok, t])), 0.0) / float(np.mean(kdiag[ok]))
        ratio = np.where(ok, tau2 * kdiag / np.where(ok, v[:, t], 1.0), 0.0)
        ratios.append(float(np.median(ratio[observed])))
    return min(ratios)


def choose(
    design: Design,
    family: Family,
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
    unknown = {str(k) for k in overrides} - set(names)
    if unknown:
        raise ValueError(
            f"centered names unknown grouping factors {sorted(unknown)}; factors: {sorted(names)}"
        )
    r, w, _ = pooled_fit(design, family)
    choices = []
    for factor in design.factors:
        ratio = information_ratio(factor, family, (r, w), known_scale=design.known_sd is not None)
        if factor.name in overrides:
            choices.append(Choice(factor.name, overrides[factor.name], ratio, "user"))
        else:
            choices.append(Choice(factor.name, ratio >= THRESHOLD, ratio, "auto"))
    return tuple(choices)
