"""Standard errors and Wald intervals for the variance parameters of a linear mixed model.

The observed information is the numerical Hessian of the (RE)ML log-likelihood in
an unconstrained parametrization (``log sd``, ``atanh corr``, ``log sigma``); the
fixed effects are profiled out (ML) or integrated out (REML), so for ML the result
equals the variance-parameter block of the inverse of the full observed information.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd
import scipy.stats as st

from bayesmix.compare.lmm_deviance import ProfiledDeviance, relative_templates

__all__ = ["variance_inference", "wald_intervals", "wald_table"]


def wald_intervals(
    estimates: pd.Series, std_errors: pd.Series, fixed_names: tuple[str, ...], prob: float
) -> pd.DataFrame:
    """Wald intervals at ``prob`` for every parameter, on the scale its intervals are drawn on.

    ``g^{-1}(g(estimate) +/- z se_g)`` with ``se_g = g'(estimate) se``: ``g`` the identity for
    the coefficients (``fixed_names``), ``atanh`` for correlations (``corr(...)``) and ``log``
    for every other parameter (SDs, ``sigma`` and the families' other auxiliaries, all
    positive): the intervals of :func:`variance_inference` and of the Laplace fit, at any
    level. A parameter without a standard error gets none.
    """
    if not 0.0 < prob < 1.0:
        raise ValueError(f"prob must lie strictly between 0 and 1, got {prob!r}")
    z = st.norm.isf((1.0 - prob) / 2.0)
    est, se = estimates.to_numpy(dtype=float), std_errors.to_numpy(dtype=float)
    names = [str(n) for n in estimates.index]
    fixed = np.isin(names, list(fixed_names))
    corr = np.array([n.startswith("corr(") for n in names]) & ~fixed
    lower, upper = est - z * se, est + z * se
    with np.errstate(divide="ignore", invalid="ignore"):
        positive = ~fixed & ~corr
        half = z * se / est
        lower = np.where(positive, est * np.exp(-half), lower)
        upper = np.where(positive, est * np.exp(half), upper)
        centre, half = np.arctanh(est), z * se / (1.0 - est**2)
        lower = np.where(corr, np.tanh(centre - half), lower)
        upper = np.where(corr, np.tanh(centre + half), upper)
    return pd.DataFrame({"lower": lower, "upper": upper}, index=estimates.index)


def wald_table(
    estimates: pd.Series, std_errors: pd.Series, conf_int: pd.DataFrame, fixed_names: tuple[str, ...]
) -> pd.DataFrame:
    """The ML/REML table: estimate, SE, Wald ``z`` and ``p`` (fixed effects only), interval bounds."""
    z = pd.Series(np.nan, index=estimates.index)
    fixed = list(fixed_names)
    z[fixed] = estimates[fixed] / std_errors[fixed]
    p = pd.Series(2.0 * st.norm.sf(np.abs(z.to_numpy())), index=z.index)
    return pd.DataFrame(
        {
            "estimate": estimates,
            "std_error": std_errors,
            "z": z,
            "p_value": p,
            "ci_lower": conf_int["lower"],
            "ci_upper": conf_int["upper"],
        }
    )


FloatArray = npt.NDArray[np.float64]

#: Step on the unconstrained scale for the central-difference Hessian.
HESSIAN_STEP = 2e-3


@dataclass(frozen=True, slots=True)
class _Param:
    """One variance parameter: its public name, kind and position."""

    name: str
    kind: str  # "sd", "corr" or "sigma"
    factor: str
    i: int
    j: int


def _variance_params(dev: ProfiledDeviance) -> list[_Param]:
    """List the variance parameters in :meth:`Design.parameter_names` order."""
    out = []
    for f in dev.design.factors:
        out += [_Param(f.sd_name(t), "sd", f.name, i, i) for i, t in enumerate(f.terms)]
        out += [
            _Param(f.corr_name(f.terms[i], f.terms[j]), "corr", f.name, i, j)
            for i, j in f.correlation_pairs()
        ]
    out.append(_Param("sigma", "sigma", "", 0, 0))
    return out


def _on_boundary(
    dev: ProfiledDeviance,
    params: list[_Param],
    templates: list[FloatArray],
    sds: dict[str, FloatArray],
    sigma: float,
    tol: float,
) -> list[bool]:
    """Which parameters sit on the boundary: a zero SD, or a correlation in a singular block."""
    singular_block = {}
    for f, t in zip(dev.design.factors, templates, strict=True):
        pos = list(f.correlated_positions)
        singular_block[f.name] = bool(pos) and bool(np.any(np.diag(t)[pos] < tol))
    flags = []
    for prm in params:
        if prm.kind == "sigma":
            flags.append(False)
            continue
        rel = sds[prm.factor] / sigma
        zero_sd = rel[prm.i] < tol or rel[prm.j] < tol
        flags.append(bool(zero_sd or (prm.kind == "corr" and singular_block[prm.factor])))
    return flags


def _hessian(fun: Callable[[FloatArray], float], x: FloatArray, h: float) -> FloatArray:
    """Central-difference Hessian of ``fun`` at ``x``."""
    k = x.size
    hess = np.empty((k, k))
    f0 = fun(x)
    eye = np.eye(k) * h
    for i in range(k):
        hess[i, i] = (fun(x + eye[i]) - 2.0 * f0 + fun(x - eye[i])) / h**2
        for j in range(i):
            fpp = fun(x + eye[i] + eye[j])
            fpm = fun(x + eye[i] - eye[j])
            fmp = fun(x - eye[i] + eye[j])
            fmm = fun(x - eye[i] - eye[j])
            hess[i, j] = hess[j, i] = (fpp - fpm - fmp + fmm) / (4.0 * h**2)
    return hess


def _to_unconstrained(prm: _Param, value: float) -> float:
    return float(np.arctanh(value)) if prm.kind == "corr" else float(np.log(value))


def _from_unconstrained(prm: _Param, phi: FloatArray) -> FloatArray:
    return np.tanh(phi) if prm.kind == "corr" else np.exp(phi)


def _loglik_function(
    dev: ProfiledDeviance,
    params: list[_Param],
    free: list[int],
    sds: dict[str, FloatArray],
    corrs: dict[str, FloatArray],
    sigma: float,
) -> Callable[[FloatArray], float]:
    """Return the (RE)ML log-likelihood as a function of the free parameters, unconstrained."""
    base_sds = {k: v.copy() for k, v in sds.items()}
    base_corrs = {k: np.nan_to_num(v, nan=0.0) for k, v in corrs.items()}

    def loglik(phi: FloatArray) -> float:
        s = {k: v.copy() for k, v in base_sds.items()}
        c = {k: v.copy() for k, v in base_corrs.items()}
        sig = sigma
        for value, idx in zip(phi, free, strict=True):
            prm = params[idx]
            nat = float(_from_unconstrained(prm, np.asarray(value)))
            if prm.kind == "sigma":
                sig = nat
            elif prm.kind == "sd":
                s[prm.factor][prm.i] = nat
            else:
                c[prm.factor][prm.i, prm.j] = c[prm.factor][prm.j, prm.i] = nat
        return dev.loglik(relative_templates(dev.design, s, c, sig), sig)

    return loglik


def variance_inference(
    dev: ProfiledDeviance,
    templates: list[FloatArray],
    estimates: pd.Series,
    sds: dict[str, FloatArray],
    corrs: dict[str, FloatArray],
    sigma: float,
    *,
    singular_tol: float,
) -> tuple[pd.Series, pd.DataFrame]:
    """Compute standard errors and 95% Wald intervals of the variance parameters.

    Parameters
    ----------
    dev
        The profiled deviance of the fitted model (its ``reml`` flag picks the likelihood).
    templates
        The relative covariance templates at the optimum.
    estimates
        All estimates, indexed by :meth:`Design.parameter_names`.
    sds, corrs, sigma
        The variance-parameter estimates.
    singular_tol
        A relative SD or template diagonal below this puts a parameter on the boundary.

    Returns
    -------
    tuple of pandas.Series and pandas.DataFrame
        Standard errors and intervals (columns ``lower``, ``upper``) on the index of
        ``estimates``; NaN for fixed effects (filled in by the caller) and for parameters
        on the boundary, which are held at their estimates while the others are perturbed.

    Notes
    -----
    With ``phi`` = (``log sd``, ``atanh corr``, ``log sigma``) and ``H`` the central-difference
    Hessian of the log-likelihood in ``phi`` (step :data:`HESSIAN_STEP`), ``Var(phi) = (-H)^{-1}``
    and, by the delta method, ``se(sd) = sd se(log sd)``, ``se(corr) = (1 - corr^2)
    se(atanh corr)``, ``se(sigma) = sigma se(log sigma)``. Intervals are
    ``g(phi +/- 1.96 se(phi))`` for the inverse transform ``g``.

    References
    ----------
    Pinheiro, J. C. and Bates, D. M. (2000). Mixed-Effects Models in S and S-PLUS,
    section 2.4.3 (approximate distribution of the variance parameters). Springer.
    """
    se = pd.Series(np.nan, index=estimates.index, name="std_error")
    ci = pd.DataFrame(np.nan, index=estimates.index, columns=["lower", "upper"])
    params = _variance_params(dev)
    boundary = _on_boundary(dev, params, templates, sds, sigma, singular_tol)
    free = [k for k, on in enumerate(boundary) if not on]
    phi0 = np.array([_to_unconstrained(params[k], float(estimates[params[k].name])) for k in free])
    hess = _hessian(_loglik_function(dev, params, free, sds, corrs, sigma), phi0, HESSIAN_STEP)
    try:
        cov = np.linalg.inv(-hess)
    except np.linalg.LinAlgError:
        return se, ci
    var = np.diag(cov)
    z = st.norm.isf(0.025)
    for value, v, k in zip(phi0, var, free, strict=True):
        if not (np.isfinite(v) and v > 0):
            continue
        prm, se_phi = params[k], float(np.sqrt(v))
        nat = float(_from_unconstrained(prm, np.asarray(value)))
        se[prm.name] = se_phi * ((1.0 - nat**2) if prm.kind == "corr" else nat)
        ci.loc[prm.name, "lower"] = float(_from_unconstrained(prm, np.asarray(value - z * se_phi)))
        ci.loc[prm.name, "upper"] = float(_from_unconstrained(prm, np.asarray(value + z * se_phi)))
    return se, ci
