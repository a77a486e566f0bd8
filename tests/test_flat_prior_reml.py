"""'A flat prior recovers the mixed model', in numbers, on lme4's sleepstudy.

Reference: tests/reference/lme4_sleepstudy.json, lme4 1.1-31 on R 4.2.2,
``lmer(Reaction ~ Days + (Days | Subject), REML = TRUE)``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest
from pytensor.graph.replace import graph_replace
from scipy import optimize, stats

import bayesmix as bx

REF = json.loads((Path(__file__).parent / "reference" / "lme4_sleepstudy.json").read_text())["lme4_REML"]


@pytest.mark.slow
def test_flat_prior_fixed_effects_match_reml(sleep_mixed_fit):
    """Posterior means of the fixed effects lie within 0.1 posterior SD of the REML estimates.

    sleepstudy is balanced (every subject has Days 0..9), so the GLS estimate of the fixed
    effects does not depend on the variance parameters and equals the REML estimate for every
    posterior draw of them: the flat-prior posterior mean of beta *is* the REML estimate, and the
    only gap left is Monte Carlo error. Hence the second, sharper bound: |mean - REML| within
    z * MCSE, z for a family-wise false-alarm rate of 0.001 over the 2 coefficients.
    """
    diag = sleep_mixed_fit.diagnostics()
    assert diag.ok, str(diag)
    summary = sleep_mixed_fit.summary()
    reml = dict(zip(["Intercept", "Days"], REF["fixef"]["estimate"], strict=True))
    z_crit = stats.norm.isf(0.001 / (2 * 2))
    for name, estimate in reml.items():
        row = summary.loc[name]
        gap = abs(row["mean"] - estimate)
        assert gap < 0.1 * row["sd"], f"{name}: {gap / row['sd']:.3f} posterior SDs from REML"
        assert gap < z_crit * row["mcse_mean"], f"{name}: {gap / row['mcse_mean']:.2f} MCSEs from REML"


def _laplace_marginal(model: bx.HierarchicalModel):
    """log of the integral over (beta, z) of the PyMC model's density, as a function of (sd, L_corr, sigma).

    The density is Gaussian in (beta, z) once the variance parameters are fixed (flat prior on beta,
    z ~ N(0, I), y linear in both), so the Laplace approximation is exact. Only the terms of beta,
    z and y enter: the variance parameters get a flat prior, as in REML.
    """
    m = model.pymc_model
    rv = {v.name: v for v in m.free_RVs}
    values = {name: m.rvs_to_values[r] for name, r in rv.items()}
    logp = m.logp(vars=[rv["beta"], rv["z_Subject"], m["Reaction"]], jacobian=False)
    x = pt.dvector("x")
    p = model.design.X.shape[1]
    z_shape = model.pymc_model.initial_point()["z_Subject"].shape
    sd, chol, sigma = pt.dvector("sd"), pt.dmatrix("chol"), pt.dscalar("sigma")
    replace = {
        values["beta"]: x[:p],
        values["z_Subject"]: x[p:].reshape(z_shape),
    }
    for name, sym in (("sd_Subject", sd), ("chol_corr_Subject", chol), ("sigma", sigma)):
        r = rv[name]
        replace[values[name]] = m.rvs_to_transforms[r].forward(sym, *r.owner.inputs)
    f = graph_replace(logp, replace, strict=False)
    grad = pt.grad(f, x)
    hess = pytensor.gradient.hessian(f, x)
    fn = pytensor.function([x, sd, chol, sigma], [f, grad, hess])
    d = p + int(np.prod(z_shape))

    def log_marginal(theta: np.ndarray) -> float:
        sds, r, s = np.exp(theta[:2]), np.tanh(theta[2]), np.exp(theta[3])
        L = np.linalg.cholesky(np.array([[1.0, r], [r, 1.0]]))
        f0, g0, H = fn(np.zeros(d), sds, L, s)
        step = np.linalg.solve(-H, g0)  # exact Newton step: the density is quadratic in x
        _, logdet = np.linalg.slogdet(-H)
        return float(f0 + 0.5 * g0 @ step + 0.5 * d * np.log(2 * np.pi) - 0.5 * logdet)

    return log_marginal


@pytest.mark.slow
def test_marginal_posterior_mode_is_reml(sleep):
    """With flat priors, the mode of the variance parameters' marginal posterior is the REML estimate.

    The flat prior sits on (log sd, atanh corr, log sigma); the mode of a density proportional to a
    likelihood does not depend on the parametrization the likelihood is maximized in. The maximum
    of the integrated density also equals lme4's REML log-likelihood: REML *is* the likelihood
    with the fixed effects integrated out under a flat prior.
    """
    model = bx.mixed("Reaction ~ Days + (Days | Subject)", sleep, centered=[], marginalize=False)
    log_marginal = _laplace_marginal(model)
    start = np.array([np.log(10.0), np.log(10.0), 0.0, np.log(10.0)])
    res = optimize.minimize(lambda t: -log_marginal(t), start, method="BFGS", options={"gtol": 1e-7})
    sds, corr, sigma = np.exp(res.x[:2]), np.tanh(res.x[2]), np.exp(res.x[3])
    ref = REF["varcorr"]["Subject"]
    # lme4's estimates move in the fifth digit on flat likelihoods:
    # compare them at 1e-3, the log-likelihood at 1e-6
    np.testing.assert_allclose(sds, ref["sd"], rtol=1e-3)
    np.testing.assert_allclose(corr, ref["correlation"]["values"][0][1], rtol=1e-3)
    np.testing.assert_allclose(sigma, REF["residual_sd"], rtol=1e-3)
    np.testing.assert_allclose(-res.fun, REF["logLik"], rtol=1e-6)
