"""Maximum likelihood for generalized linear mixed models by the Laplace approximation (lme4's glmer).

:func:`fit_laplace` maximizes the Laplace log-likelihood of
:class:`~bayesmix.compare.laplace_likelihood.LaplaceLikelihood` over ``(theta, beta, log aux)``
and reports estimates, lme4-style standard errors, Wald intervals and the conditional modes
of the random effects. ``model.fit_ml()`` calls it for every family but the Gaussian (whose
exact ML/REML engine is :mod:`bayesmix.compare.lmm`).
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd
import scipy.linalg as la
import scipy.optimize as opt
import scipy.stats as st
from threadpoolctl import threadpool_limits

from ..spec.families import Family
from ..spec.terms import Design
from .laplace_likelihood import LOG_AUX_BOUND, LaplaceLikelihood, LaplaceMode, fisher_scoring
from .lmm import _variance_components
from .lmm_inference import _hessian, wald_table

__all__ = ["LaplaceFitWarning", "LaplaceResult", "fit_laplace"]

FloatArray = npt.NDArray[np.float64]
Float1D = np.ndarray[tuple[int], np.dtype[np.float64]]

#: Relative step of the central-difference gradient of the Laplace log-likelihood.
GRADIENT_STEP = 1e-5
#: Step of the central-difference Hessian behind the standard errors (lme4's ``deriv12`` delta).
HESSIAN_STEP = 1e-4
#: Largest absolute projected gradient of the log-likelihood accepted as converged.
GRADIENT_TOL = 1e-3
#: A Cholesky diagonal ``theta_ii`` below this is on the boundary (lme4's ``isSingular`` tolerance).
SINGULAR_TOL = 1e-4


class LaplaceFitWarning(UserWarning):
    """The Laplace ML fit did not converge, or a variance is estimated on its boundary (0)."""


def _glm_start(like: LaplaceLikelihood) -> tuple[FloatArray, FloatArray]:
    """``beta`` and ``log aux`` of the model without random effects: IRLS, alternating with aux."""
    design = like.design
    centre, _ = like.family.location(design.y, design.trials)
    beta = np.linalg.lstsq(design.X, centre - like.offset, rcond=None)[0]
    log_aux = np.zeros(len(design.auxiliary))
    for _ in range(3):
        aux = np.exp(log_aux)
        beta = fisher_scoring(
            like.log_density(aux), like.weights(aux), like.X, like.offset, beta, penalty=False
        ).v
        if not design.auxiliary:
            break
        eta = like.offset + like.X @ beta

        def negative(a: Float1D, eta: FloatArray = eta) -> float:
            value = float(np.sum(like.density(eta, np.exp(a))[0]))
            return -value if np.isfinite(value) else np.inf

        bounds = [(-LOG_AUX_BOUND, LOG_AUX_BOUND)] * log_aux.size
        log_aux = np.asarray(opt.minimize(negative, log_aux, method="Nelder-Mead", bounds=bounds).x)
    return beta, log_aux


def _gradient(
    like: LaplaceLikelihood, x: FloatArray, free: npt.NDArray[np.bool_] | None = None
) -> FloatArray:
    """Central-difference gradient of the log-likelihood (smooth across the theta bounds)."""
    grad = np.zeros_like(x)
    for i in np.flatnonzero(np.ones(x.size, bool) if free is None else free):
        h = GRADIENT_STEP * max(1.0, abs(float(x[i])))
        e = np.zeros_like(x)
        e[i] = h
        grad[i] = (like(x + e) - like(x - e)) / (2.0 * h)
    return grad


def _restricted(
    like: LaplaceLikelihood, x: FloatArray, free: npt.NDArray[np.bool_]
) -> Callable[[FloatArray], float]:
    """The log-likelihood as a function of the free coordinates, the others held at ``x``."""

    def loglik(z: FloatArray) -> float:
        full = x.copy()
        full[free] = z
        return like(full)

    return loglik


def _lbfgsb(like: LaplaceLikelihood, start: FloatArray) -> opt.OptimizeResult:
    """One bounded quasi-Newton run on ``-log L`` with central-difference gradients."""

    def objective(x: Float1D) -> tuple[float, FloatArray]:
        value = like(x)
        if not np.isfinite(value):
            return np.inf, np.zeros_like(x)
        return -value, -_gradient(like, x)

    return opt.minimize(
        objective,
        start,
        jac=True,
        method="L-BFGS-B",
        bounds=opt.Bounds(like.lower, like.upper),
        options={"maxiter": 2000, "ftol": 1e-15, "gtol": 1e-7},
    )


def _polish(like: LaplaceLikelihood, x: FloatArray) -> FloatArray:
    """Newton steps on the free coordinates with one finite-difference Hessian; keep improvements."""
    free = x > like.lower
    hess = _hessian(_restricted(like, x, free), x[free], HESSIAN_STEP)
    value = like(x)
    for _ in range(10):
        grad = _gradient(like, x, free)[free]
        if np.max(np.abs(grad), initial=0.0) < 1e-9:
            break
        try:
            step = la.solve(-hess, grad, assume_a="pos")
        except (la.LinAlgError, ValueError):
            break
        trial = x.copy()
        trial[free] = np.clip(x[free] + step, like.lower[free], like.upper[free])
        trial_value = like(trial)
        if not trial_value > value:
            break
        x, value = trial, trial_value
    return x


def _escape(like: LaplaceLikelihood, x: FloatArray) -> FloatArray | None:
    """A point that beats ``x`` by moving a zero template diagonal up, if there is one.

    The likelihood depends on a diagonal entry only through its square when the entries
    below it are 0, so ``theta_ii = 0`` is a stationary point that need not be a maximum.
    """
    value = like(x)
    for i in np.flatnonzero((like.lower == 0.0) & (x == 0.0)):
        for step in (1e-1, 1e-2):
            trial = x.copy()
            trial[i] = step
            if like(trial) > value + 1e-9:
                return trial
    return None


def _maximize(like: LaplaceLikelihood) -> tuple[FloatArray, bool, str]:
    """Maximize the Laplace log-likelihood from the GLM start; polish; check the optimum."""
    beta, log_aux = _glm_start(like)
    _, scale = like.family.location(like.design.y, like.design.trials)
    theta = np.where(like.lower[: like.n_theta] == 0.0, scale, 0.0)
    best = _lbfgsb(like, np.concatenate([theta, beta, log_aux]))
    x = np.asarray(best.x, dtype=np.float64)
    escape = _escape(like, x)
    if escape is not None:
        best = _lbfgsb(like, escape)
        x = np.asarray(best.x, dtype=np.float64)
    x = _polish(like, x)
    grad = _gradient(like, x)
    at_bound = ((x <= like.lower) & (grad < 0)) | ((x >= like.upper) & (grad > 0))
    worst = float(np.max(np.abs(np.where(at_bound, 0.0, grad))))
    mode = like.mode(x)
    converged = worst < GRADIENT_TOL and mode.converged and np.isfinite(mode.loglik)
    message = (
        f"L-BFGS-B: {best.message} ({best.nfev} evaluations), then Newton polish; max |projected "
        f"gradient| of the log-likelihood {worst:.2g} (tolerance {GRADIENT_TOL:g}); "
        f"PIRLS {'converged' if mode.converged else 'did not converge'} at the optimum"
    )
    return x, converged, message


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class LaplaceResult:
    """A generalized linear mixed model fitted by maximum likelihood (Laplace approximation).

    Attributes
    ----------
    family, link
        The family and the link in use.
    loglik
        The maximized Laplace log-likelihood (lme4's ``logLik`` of a ``glmer`` fit).
    fixed_names, beta, beta_cov
        Fixed effects and their covariance: the ``beta`` block of the inverse of the negative
        finite-difference Hessian over all parameters (lme4's default ``vcov``).
    sd, corr
        Per grouping factor, the ``(q,)`` random-effect SDs and the ``(q, q)`` correlations
        (identity entries for independent terms; NaN next to an SD of 0 in the block).
    aux
        The auxiliary parameters by name (empty for poisson, bernoulli, binomial).
    theta, theta_names
        The Cholesky elements of each factor's covariance at the optimum, in lme4's order.
    vcov
        Covariance of all optimization parameters (``theta``, ``beta``, ``log aux``), NaN for
        those held on a boundary.
    ranef, ranef_sd
        Per factor, conditional modes ``b = Lambda u*`` and conditional SDs (the diagonal of
        ``Lambda (Lambda'Z'WZ Lambda + I)^{-1} Lambda'``, lme4's ``ranef(condVar = TRUE)``):
        index = levels, columns = terms.
    estimates, std_errors, conf_int
        All parameters by :meth:`Design.parameter_names`, standard errors (delta method on the
        variance parameters; NaN on the boundary) and 95% Wald intervals (columns ``lower``,
        ``upper``): on the link scale for fixed effects, the log scale for SDs and auxiliary
        parameters, the atanh scale for correlations.
    n_obs
        Number of observations.
    singular
        Whether a template diagonal is below :data:`SINGULAR_TOL` (a variance on its boundary).
    converged, optimizer_message
        The optimizer's verdict.
    """

    family: str
    link: str
    loglik: float
    fixed_names: tuple[str, ...]
    beta: FloatArray
    beta_cov: FloatArray
    sd: dict[str, FloatArray]
    corr: dict[str, FloatArray]
    aux: dict[str, float]
    theta: FloatArray
    theta_names: tuple[str, ...]
    vcov: pd.DataFrame
    ranef: dict[str, pd.DataFrame]
    ranef_sd: dict[str, pd.DataFrame]
    estimates: pd.Series
    std_errors: pd.Series
    conf_int: pd.DataFrame
    n_obs: int
    singular: bool
    converged: bool
    optimizer_message: str

    @property
    def reml(self) -> bool:
        """Always False: REML is defined for the Gaussian linear mixed model only."""
        return False

    def table(self) -> pd.DataFrame:
        """Estimates, standard errors, Wald ``z`` and ``p`` (fixed effects only) and 95% intervals."""
        return wald_table(self.estimates, self.std_errors, self.conf_int, self.fixed_names)


def _variance_values(like: LaplaceLikelihood, theta: FloatArray) -> FloatArray:
    """The SDs and correlations, factor after factor, in :meth:`Design.parameter_names` order."""
    sds, corrs = _variance_components(like.design, like.templates(theta), 1.0)
    values: list[float] = []
    for f in like.design.factors:
        values += list(sds[f.name])
        values += [corrs[f.name][i, j] for i, j in f.correlation_pairs()]
    return np.asarray(values, dtype=np.float64)


def _covariance(like: LaplaceLikelihood, x: FloatArray) -> FloatArray:
    """Inverse negative Hessian over the coordinates off their bounds; NaN rows for the others."""
    free = (x > like.lower) & (x < like.upper)
    cov = np.full((x.size, x.size), np.nan)
    hess = _hessian(_restricted(like, x, free), x[free], HESSIAN_STEP)
    with contextlib.suppress(np.linalg.LinAlgError):  # a singular Hessian leaves the errors NaN
        cov[np.ix_(free, free)] = np.linalg.inv(-hess)
    return cov


def _on_boundary(like: LaplaceLikelihood, theta: FloatArray) -> npt.NDArray[np.bool_]:
    """Per variance parameter: an SD below :data:`SINGULAR_TOL`, or a correlation in a singular block."""
    flags: list[bool] = []
    for f, t in zip(like.design.factors, like.templates(theta), strict=True):
        sd = np.sqrt(np.sum(t**2, axis=1))
        pos = list(f.correlated_positions)
        block_singular = bool(pos) and bool(np.any(np.abs(np.diag(t)[pos]) < SINGULAR_TOL))
        flags += [bool(s < SINGULAR_TOL) for s in sd]
        flags += [block_singular] * len(f.correlation_pairs())
    return np.asarray(flags, dtype=bool)


def _standard_errors(like: LaplaceLikelihood, x: FloatArray, cov: FloatArray) -> FloatArray:
    """Standard errors of all public parameters: Wald for beta, delta method for the others."""
    theta, _, aux = like.split(x)
    k, p = like.n_theta, like.n_fixed
    var_beta = np.diag(cov)[k : k + p]
    jac = np.empty((_variance_values(like, theta).size, k))
    for i in range(k):
        e = np.zeros(k)
        e[i] = 1e-6
        jac[:, i] = (_variance_values(like, theta + e) - _variance_values(like, theta - e)) / 2e-6
    var_var = np.diag(jac @ np.nan_to_num(cov[:k, :k]) @ jac.T).copy()
    var_var[_on_boundary(like, theta)] = np.nan
    var_aux = aux**2 * np.diag(cov)[k + p :]
    with np.errstate(invalid="ignore"):
        return np.sqrt(np.concatenate([var_beta, var_var, var_aux]))


def _intervals(design: Design, estimates: pd.Series, se: pd.Series) -> pd.DataFrame:
    """95% Wald intervals: link scale (beta), log scale (SDs, aux), atanh scale (correlations)."""
    z = st.norm.isf(0.025)
    est, err = estimates.to_numpy(), se.to_numpy()
    lower, upper = est - z * err, est + z * err
    kinds = ["fixed"] * len(design.fixed_names)
    for f in design.factors:
        kinds += ["positive"] * f.n_terms + ["corr"] * len(f.correlation_pairs())
    kinds += ["positive"] * len(design.auxiliary)
    with np.errstate(divide="ignore", invalid="ignore"):
        for i, kind in enumerate(kinds):
            if kind == "positive":
                half = z * err[i] / est[i]
                lower[i], upper[i] = est[i] * np.exp(-half), est[i] * np.exp(half)
            elif kind == "corr":
                centre, half = np.arctanh(est[i]), z * err[i] / (1.0 - est[i] ** 2)
                lower[i], upper[i] = np.tanh(centre - half), np.tanh(centre + half)
    return pd.DataFrame({"lower": lower, "upper": upper}, index=estimates.index)


def _conditional_modes(
    like: LaplaceLikelihood, mode: LaplaceMode
) -> tuple[dict[str, pd.DataFrame], dict[str, pd.DataFrame]]:
    """Conditional modes ``b = Lambda u*`` and SDs from ``Lambda (L L')^{-1} Lambda'``, per factor."""
    b = mode.lam @ mode.u
    var = np.sum(la.solve_triangular(mode.chol, mode.lam.T.toarray(), lower=True) ** 2, axis=0)
    modes, sds = {}, {}
    for f, lay in zip(like.design.factors, like.layouts, strict=True):
        cols = slice(lay.offset, lay.offset + lay.n_levels * lay.n_terms)
        index = pd.Index(list(f.levels), name=f.name)
        shape = (lay.n_levels, lay.n_terms)
        modes[f.name] = pd.DataFrame(b[cols].reshape(shape), index=index, columns=list(f.terms))
        sds[f.name] = pd.DataFrame(np.sqrt(var[cols]).reshape(shape), index=index, columns=list(f.terms))
    return modes, sds


def _warn(result: LaplaceResult, boundary: list[str]) -> None:
    """Say when the fit did not converge or variance parameters (named in ``boundary``) sit on a boundary."""
    if not result.converged:
        warnings.warn(
            f"the Laplace ML fit did not converge: {result.optimizer_message}",
            LaplaceFitWarning,
            stacklevel=3,
        )
    if boundary:
        warnings.warn(
            "singular fit: the random-effect covariance is estimated on its boundary (an SD of 0, or a "
            "correlation block of less than full rank such as a correlation of +/-1): "
            f"{', '.join(boundary)}; their standard errors and intervals are not available (NaN)",
            LaplaceFitWarning,
            stacklevel=3,
        )


def fit_laplace(design: Design, family: Family) -> LaplaceResult:
    """Fit a generalized linear mixed model by maximum likelihood, Laplace approximation (lme4's glmer).

    Parameters
    ----------
    design
        The evaluated model, with at least one grouping factor and at most
        :data:`MAX_RANDOM_EFFECTS` random effects.
    family
        The family with the link in use (``model.spec.family_def``).

    Returns
    -------
    LaplaceResult
        Estimates, standard errors, intervals, conditional modes and the optimizer's verdict.

    Warns
    -----
    LaplaceFitWarning
        When the optimizer did not converge, or a variance is estimated at 0.

    Notes
    -----
    The Laplace log-likelihood (:class:`LaplaceLikelihood`) is maximized over ``x = (theta,
    beta, log aux)`` by L-BFGS-B with central-difference gradients and bounds ``theta_ii >= 0``,
    from the GLM without random effects (IRLS) and ``theta`` = 1 on the diagonals (the SD of
    the response for identity links), then polished by Newton steps with a finite-difference
    Hessian; a zero ``theta_ii`` is probed for ascent. Convergence is declared when the
    projected gradient is below :data:`GRADIENT_TOL`. ``Var(x)`` is the inverse of the negative
    central-difference Hessian (step :data:`HESSIAN_STEP`) over the parameters off their bounds,
    as lme4's default ``vcov``; the SDs and correlations get their errors by the delta method
    from ``Var(theta)``, the auxiliary parameters from ``Var(log aux)``. BLAS runs on one thread.

    References
    ----------
    Bates, D., Maechler, M., Bolker, B. and Walker, S. (2015). Fitting linear mixed-effects
    models using lme4. Journal of Statistical Software 67(1), 1-48.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> import bayesmix as bx
    >>> rng = np.random.default_rng(1)
    >>> g = np.repeat(np.arange(10), 8)
    >>> df = pd.DataFrame({"y": rng.poisson(np.exp(1 + 0.5 * rng.normal(size=10)[g])), "g": g.astype(str)})
    >>> model = bx.hierarchical("y ~ 1 + (1 | g)", df, family="poisson")
    >>> result = fit_laplace(model.design, model.spec.family_def)
    >>> result.converged, list(result.estimates.index)
    (True, ['Intercept', 'sd(Intercept|g)'])
    """
    if not isinstance(family, Family):
        raise TypeError(f"family must be a bayesmix Family (model.spec.family_def), got {family!r}")
    with threadpool_limits(limits=1):
        like = LaplaceLikelihood(design, family)
        x, converged, message = _maximize(like)
        mode = like.mode(x)
        cov = _covariance(like, x)
        se_values = _standard_errors(like, x, cov)
        ranef, ranef_sd = _conditional_modes(like, mode)
    theta, beta, aux = like.split(x)
    names = design.parameter_names()
    estimates = pd.Series(
        np.concatenate([beta, _variance_values(like, theta), aux]), index=names, name="estimate"
    )
    se = pd.Series(se_values, index=names, name="std_error")
    sds, corrs = _variance_components(design, like.templates(theta), 1.0)
    k, p = like.n_theta, like.n_fixed
    on_boundary = _on_boundary(like, theta)
    variance_names = [n for f in design.factors for n in f.parameter_names()]
    result = LaplaceResult(
        family=family.name,
        link=family.link,
        loglik=mode.loglik,
        fixed_names=design.fixed_names,
        beta=beta,
        beta_cov=cov[k : k + p, k : k + p],
        sd=sds,
        corr=corrs,
        aux={name: float(a) for name, a in zip(design.auxiliary, aux, strict=True)},
        theta=theta,
        theta_names=like.names[:k],
        vcov=pd.DataFrame(cov, index=like.names, columns=like.names),
        ranef=ranef,
        ranef_sd=ranef_sd,
        estimates=estimates,
        std_errors=se,
        conf_int=_intervals(design, estimates, se),
        n_obs=design.n_obs,
        singular=bool(np.any(on_boundary)),
        converged=converged,
        optimizer_message=message,
    )
    _warn(result, [name for name, flag in zip(variance_names, on_boundary, strict=True) if flag])
    return result
