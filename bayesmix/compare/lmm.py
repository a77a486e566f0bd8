"""Frequentist linear mixed models by ML or REML, in the lme4 formulation.

>>> import numpy as np
>>> from bayesmix.spec.terms import Design, GroupFactor
>>> rng = np.random.default_rng(1)
>>> g = np.repeat(np.arange(6), 5)
>>> y = 1.0 + rng.normal(size=6)[g] + rng.normal(scale=0.5, size=30)
>>> ones = np.ones((30, 1))
>>> factor = GroupFactor(name="g", levels=tuple("abcdef"), index=g, terms=("Intercept",), values=ones)
>>> design = Design(response_name="y", y=y, X=ones, fixed_names=("Intercept",), factors=(factor,))
>>> fit = fit_lmm(design)
>>> fit.converged, list(fit.estimates.index)
(True, ['Intercept', 'sd(Intercept|g)', 'sigma'])
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd
import scipy.optimize as opt
import scipy.stats as st

from bayesmix.compare.lmm_deviance import (
    PLSSolution,
    ProfiledDeviance,
    blas_threads,
    marginal_loglik,
    profiled_deviance,
)
from bayesmix.compare.lmm_inference import variance_inference, wald_table
from bayesmix.spec.terms import Design

__all__ = ["LMMResult", "ProfiledDeviance", "fit_lmm", "marginal_loglik", "profiled_deviance"]

FloatArray = npt.NDArray[np.float64]
Float1D = np.ndarray[tuple[int], np.dtype[np.float64]]

#: A template diagonal below this (relative to the residual SD) is on the boundary (lme4's isSingular).
SINGULAR_TOL = 1e-4
#: Largest absolute projected gradient of the deviance (in theta units) accepted as converged.
GRADIENT_TOL = 1e-3


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class LMMResult:
    """A linear mixed model fitted by ML or REML.

    Attributes
    ----------
    reml
        Whether the REML criterion was maximized.
    loglik
        The maximized REML log-likelihood (lme4's ``logLik`` of a REML fit) or ML log-likelihood.
    deviance
        ``-2 * loglik``: lme4's ``REMLcrit`` or ML ``deviance``.
    fixed_names
        Names of the fixed effects.
    beta, beta_cov
        Fixed effects and their covariance ``sigma^2 (R_X'R_X)^{-1}`` (lme4's ``vcov``).
    sigma
        Residual standard deviation (``sqrt(r2 / (n - p))`` for REML, ``sqrt(r2 / n)`` for ML).
    sd, corr
        Per grouping factor, the ``(q,)`` random-effect SDs and the ``(q, q)`` correlation
        matrix (identity entries for independent terms; within the correlated block, NaN
        next to an SD of 0).
    theta, theta_names
        The relative Cholesky-factor parameters at the optimum, in lme4's order.
    ranef, ranef_sd
        Per factor, conditional modes of the random effects and their conditional SDs
        (lme4's ``ranef(condVar = TRUE)``): index = levels, columns = terms.
    estimates, std_errors
        All parameters by :meth:`Design.parameter_names`; variance-parameter errors are
        NaN on the boundary.
    conf_int
        95% Wald intervals (columns ``lower``, ``upper``); variance parameters on the
        log / atanh scale, transformed back.
    n_obs
        Number of observations.
    singular
        Whether the fit is on the boundary (a template diagonal below :data:`SINGULAR_TOL`).
    converged, optimizer_message
        The optimizer's verdict.
    """

    reml: bool
    loglik: float
    deviance: float
    fixed_names: tuple[str, ...]
    beta: FloatArray
    beta_cov: FloatArray
    sigma: float
    sd: dict[str, FloatArray]
    corr: dict[str, FloatArray]
    theta: FloatArray
    theta_names: tuple[str, ...]
    ranef: dict[str, pd.DataFrame]
    ranef_sd: dict[str, pd.DataFrame]
    estimates: pd.Series
    std_errors: pd.Series
    conf_int: pd.DataFrame
    n_obs: int
    singular: bool
    converged: bool
    optimizer_message: str

    def table(self) -> pd.DataFrame:
        """Estimates, standard errors, Wald ``z`` and ``p`` (fixed effects only) and 95% intervals."""
        return wald_table(self.estimates, self.std_errors, self.conf_int, self.fixed_names)


def _numeric_gradient(fun: ProfiledDeviance, x: FloatArray) -> FloatArray:
    """Central-difference gradient (the deviance is smooth across the theta bounds)."""
    grad = np.empty_like(x)
    for i in range(x.size):
        h = 1e-6 * max(1.0, abs(float(x[i])))
        e = np.zeros_like(x)
        e[i] = h
        grad[i] = (fun(x + e) - fun(x - e)) / (2.0 * h)
    return grad


def _cobyqa(dev: ProfiledDeviance, start: FloatArray) -> opt.OptimizeResult:
    """One bounded derivative-free run (COBYQA, the successor of lme4's default BOBYQA)."""

    def objective(x: Float1D) -> float:
        return dev(x)

    lower = dev.theta_lower
    return opt.minimize(
        objective,
        start,
        method="COBYQA",
        bounds=opt.Bounds(lower, np.full_like(lower, np.inf)),
        options={"final_tr_radius": 1e-10, "maxfev": 200 * (start.size + 1) ** 2},
    )


def _escape_direction(dev: ProfiledDeviance, theta: FloatArray, value: float) -> FloatArray | None:
    """Return a point that beats ``theta`` by moving a zero template diagonal up, if there is one.

    The deviance depends on a diagonal entry only through its square when the entries
    below it are 0, so ``theta_ii = 0`` is a stationary point that need not be a minimum.
    """
    for i in np.flatnonzero((dev.theta_lower == 0.0) & (theta == 0.0)):
        for step in (1e-1, 1e-2):
            trial = theta.copy()
            trial[i] = step
            if dev(trial) < value - 1e-9:
                return trial
    return None


def _minimize(dev: ProfiledDeviance) -> tuple[FloatArray, bool, str]:
    """Minimize the profiled deviance from lme4's start and a shrunken one; check the optimum."""
    runs = [_cobyqa(dev, dev.theta_start * scale) for scale in (1.0, 0.1)]
    best = min(runs, key=lambda r: float(r.fun))
    theta = _snap_to_boundary(dev, np.asarray(best.x, dtype=np.float64))
    escape = _escape_direction(dev, theta, dev(theta))
    if escape is not None:
        best = _cobyqa(dev, escape)
        theta = _snap_to_boundary(dev, np.asarray(best.x, dtype=np.float64))
    grad = _numeric_gradient(dev, theta)
    at_bound = (theta <= dev.theta_lower) & (grad > 0)
    worst = float(np.max(np.abs(np.where(at_bound, 0.0, grad))))
    converged = bool(best.success) and worst < GRADIENT_TOL
    message = (
        f"COBYQA: {best.message} ({best.nfev} evaluations); "
        f"max |projected gradient| of the deviance {worst:.2g} (tolerance {GRADIENT_TOL:g})"
    )
    return theta, converged, message


def _snap_to_boundary(dev: ProfiledDeviance, theta: FloatArray) -> FloatArray:
    """Set template diagonals within ``1e-6`` of 0 to exactly 0 when the deviance does not rise."""
    near = (dev.theta_lower == 0.0) & (theta < 1e-6) & (theta != 0.0)
    if not near.any():
        return theta
    snapped = np.where(near, 0.0, theta)
    return snapped if dev(snapped) <= dev(theta) + 1e-9 else theta


def _variance_components(
    design: Design, templates: list[FloatArray], sigma: float
) -> tuple[dict[str, FloatArray], dict[str, FloatArray]]:
    """Random-effect SDs and correlations from the relative factors.

    Terms outside the correlation block have structural correlation 0; a correlation
    within the block involving an SD of 0 is undefined (NaN), as in lme4's ``VarCorr``.
    """
    sds, corrs = {}, {}
    for f, t in zip(design.factors, templates, strict=True):
        cov = t @ t.T
        sd = np.sqrt(np.diag(cov))
        corr = np.eye(f.n_terms)
        pos = list(f.correlated_positions)
        with np.errstate(invalid="ignore", divide="ignore"):
            block = cov[np.ix_(pos, pos)] / np.outer(sd[pos], sd[pos])
        np.fill_diagonal(block, 1.0)
        corr[np.ix_(pos, pos)] = block
        sds[f.name] = sigma * sd
        corrs[f.name] = corr
    return sds, corrs


def _conditional_modes(
    design: Design, dev: ProfiledDeviance, sol: PLSSolution, templates: list[FloatArray], sigma: float
) -> tuple[dict[str, pd.DataFrame], dict[str, pd.DataFrame]]:
    """Conditional modes ``b = Lambda u`` and SDs from ``sigma^2 Lambda (L L')^{-1} Lambda'``."""
    modes, sds = {}, {}
    linv = np.linalg.inv(sol.chol)
    for f, lay, t in zip(design.factors, dev.layouts, templates, strict=True):
        cols = slice(lay.offset, lay.offset + lay.n_levels * lay.n_terms)
        index = pd.Index(list(f.levels), name=f.name)
        b = sol.b[cols].reshape(lay.n_levels, lay.n_terms)
        # rows of L^{-1} Lambda' restricted to this factor's levels: (Q, J, q) per level
        w = (linv[:, cols].reshape(-1, lay.n_levels, lay.n_terms) @ t.T).transpose(1, 0, 2)
        var = sigma**2 * np.einsum("jkq,jkq->jq", w, w)
        modes[f.name] = pd.DataFrame(b, index=index, columns=list(f.terms))
        sds[f.name] = pd.DataFrame(np.sqrt(var), index=index, columns=list(f.terms))
    return modes, sds


def _estimate_series(
    design: Design, beta: FloatArray, sds: dict[str, FloatArray], corrs: dict[str, FloatArray], sigma: float
) -> pd.Series:
    """All estimates in :meth:`Design.parameter_names` order."""
    values = list(beta)
    for f in design.factors:
        values += list(sds[f.name])
        values += [corrs[f.name][i, j] for i, j in f.correlation_pairs()]
    values.append(sigma)
    return pd.Series(np.asarray(values, dtype=np.float64), index=design.parameter_names(), name="estimate")


def fit_lmm(design: Design, *, reml: bool = True) -> LMMResult:
    """Fit a linear mixed model by REML or ML.

    Parameters
    ----------
    design
        The evaluated model: response, fixed-effect design and grouping factors.
    reml
        Maximize the REML criterion (default) or the likelihood.

    Returns
    -------
    LMMResult
        Estimates, standard errors, intervals, conditional modes and the optimizer's verdict.

    Notes
    -----
    The model is ``y = X beta + Z b + e`` with ``b ~ N(0, Sigma)``, ``e ~ N(0, sigma^2 I)`` and
    ``Sigma = sigma^2 Lambda Lambda'``. The profiled deviance (see
    :class:`~bayesmix.compare.lmm_deviance.ProfiledDeviance`) is minimized over ``theta``,
    the free entries of ``Lambda``'s templates, by COBYQA (bounded, derivative-free, like
    lme4's BOBYQA) from lme4's start and from a shrunken one, keeping the better; a zero
    template diagonal is probed for descent, and convergence is declared when the projected
    finite-difference gradient is below :data:`GRADIENT_TOL`. ``beta`` and ``sigma`` follow in closed
    form; ``Var(beta) = sigma^2 (R_X'R_X)^{-1}``. Standard errors of the variance parameters
    come from the numerical Hessian of the (RE)ML log-likelihood in ``(log sd, atanh corr,
    log sigma)`` by the delta method, with parameters on the boundary held fixed (their
    errors are NaN); intervals are Wald on that scale, transformed back.

    References
    ----------
    Bates, D., Maechler, M., Bolker, B. and Walker, S. (2015). Fitting linear
    mixed-effects models using lme4. Journal of Statistical Software 67(1), 1-48.
    """
    dev = ProfiledDeviance(design, reml=reml)
    with blas_threads(dev.ZtZ.shape[0]):
        theta, converged, message = _minimize(dev)
        deviance = dev(theta)
        templates = dev.templates(theta)
        sol = dev.solve(templates)
        n, p = design.X.shape
        sigma = float(np.sqrt(sol.r2 / (n - p if reml else n)))
        sds, corrs = _variance_components(design, templates, sigma)
        rx_inv = np.linalg.inv(sol.rx)
        beta_cov = sigma**2 * rx_inv @ rx_inv.T
        modes, mode_sds = _conditional_modes(design, dev, sol, templates, sigma)
        estimates = _estimate_series(design, sol.beta, sds, corrs, sigma)
        singular = any(np.any(np.diag(t) < SINGULAR_TOL) for t in templates)
        se, ci = variance_inference(dev, templates, estimates, sds, corrs, sigma, singular_tol=SINGULAR_TOL)
    fixed = list(design.fixed_names)
    fixed_se = np.sqrt(np.diag(beta_cov))
    se[fixed] = fixed_se
    z = st.norm.isf(0.025)
    ci.loc[fixed, "lower"] = sol.beta - z * fixed_se
    ci.loc[fixed, "upper"] = sol.beta + z * fixed_se
    return LMMResult(
        reml=reml,
        loglik=-0.5 * deviance,
        deviance=deviance,
        fixed_names=design.fixed_names,
        beta=sol.beta,
        beta_cov=beta_cov,
        sigma=sigma,
        sd=sds,
        corr=corrs,
        theta=theta,
        theta_names=dev.theta_names,
        ranef=modes,
        ranef_sd=mode_sds,
        estimates=estimates,
        std_errors=se,
        conf_int=ci,
        n_obs=design.n_obs,
        singular=singular,
        converged=converged,
        optimizer_message=message,
    )
