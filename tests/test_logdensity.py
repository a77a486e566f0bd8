"""The built model's log density equals an independent numpy/scipy computation (rtol 1e-8)."""

from __future__ import annotations

import numpy as np
import pymc as pm
import pytest
from scipy import stats

import bayesmix as bx

from .helpers import logp_at


def _point(rng, model):
    d = model.design
    (f,) = d.factors
    return {
        "beta": rng.normal(size=len(d.fixed_names)) * [10, 1] + [250, 10],
        "sd_Subject": np.array([20.0, 5.0]),
        "z_Subject": rng.normal(size=(f.n_levels, f.n_terms)),
        "sigma": np.array(25.0),
    }


def _likelihood(design, beta, re, sigma):
    (f,) = design.factors
    mu = design.X @ beta + np.sum(re[f.index] * f.values, axis=1)
    return stats.norm.logpdf(design.y, mu, sigma).sum()


def test_uncorrelated_model_exact(sleep):
    model = bx.hierarchical("Reaction ~ Days + (Days || Subject)", sleep, centered=[], marginalize=False)
    rng = np.random.default_rng(3)
    v = _point(rng, model)
    pri = model.spec.priors
    expected = (
        stats.norm.logpdf(
            v["beta"], [pri["Intercept"].mu, pri["Days"].mu], [pri["Intercept"].sigma, pri["Days"].sigma]
        ).sum()
        + stats.halfnorm.logpdf(
            v["sd_Subject"], scale=[pri["sd(Intercept|Subject)"].sigma, pri["sd(Days|Subject)"].sigma]
        ).sum()
        + stats.norm.logpdf(v["z_Subject"]).sum()
        + stats.expon.logpdf(v["sigma"], scale=1 / pri["sigma"].lam)
        + _likelihood(model.design, v["beta"], v["z_Subject"] * v["sd_Subject"], v["sigma"])
    )
    np.testing.assert_allclose(logp_at(model.pymc_model, v), expected, rtol=1e-8)


def test_correlated_model_exact(sleep):
    """re = z L' with L = diag(sd) chol(R); the LKJ term is PyMC's own and is added as is."""
    model = bx.mixed("Reaction ~ Days + (Days | Subject)", sleep, centered=[], marginalize=False)
    rng = np.random.default_rng(4)
    v = _point(rng, model)
    r = 0.3
    chol = np.linalg.cholesky(np.array([[1.0, r], [r, 1.0]]))
    v["chol_corr_Subject"] = chol
    pri = model.spec.priors
    lkj = pm.logp(pm.LKJCorr.dist(n=2, eta=pri["corr(Subject)"].eta), chol).eval()
    L = np.diag(v["sd_Subject"]) @ chol
    expected = (
        0.0  # flat fixed effects
        + stats.halfnorm.logpdf(
            v["sd_Subject"], scale=[pri["sd(Intercept|Subject)"].sigma, pri["sd(Days|Subject)"].sigma]
        ).sum()
        + lkj
        + stats.norm.logpdf(v["z_Subject"]).sum()
        + stats.expon.logpdf(v["sigma"], scale=1 / pri["sigma"].lam)
        + _likelihood(model.design, v["beta"], v["z_Subject"] @ L.T, v["sigma"])
    )
    np.testing.assert_allclose(logp_at(model.pymc_model, v), expected, rtol=1e-8)


def test_centered_equals_noncentered_after_jacobian(sleep):
    """Centered coefficients u = beta + z L' have density N(u; beta, L L').

    The non-centered N(z; 0, I) differs from it by log|L| per level.

    Both fixed effects (Intercept, Days) are also Subject terms, so the centered model centres each
    subject's coefficients on them and leaves them out of the fixed part of the mean.
    """
    nc = bx.hierarchical("Reaction ~ Days + (Days | Subject)", sleep, centered=[], marginalize=False)
    c = bx.hierarchical("Reaction ~ Days + (Days | Subject)", sleep, centered=["Subject"], marginalize=False)
    rng = np.random.default_rng(5)
    v = _point(rng, nc)
    v["chol_corr_Subject"] = np.linalg.cholesky(np.array([[1.0, -0.2], [-0.2, 1.0]]))
    L = np.diag(v["sd_Subject"]) @ v["chol_corr_Subject"]
    vc = {k: val for k, val in v.items() if k != "z_Subject"} | {
        "coef_Subject": v["z_Subject"] @ L.T + v["beta"]
    }
    n_levels = v["z_Subject"].shape[0]
    log_det = np.log(np.diag(L)).sum()
    np.testing.assert_allclose(
        logp_at(c.pymc_model, vc) + n_levels * log_det, logp_at(nc.pymc_model, v), rtol=1e-8
    )


@pytest.mark.parametrize("formula", ["y ~ x + (1 | a) + (1 | b)", "y ~ x + (1 | a/b)"])
def test_crossed_and_nested_exact(formula):
    rng = np.random.default_rng(6)
    n = 48
    df = {
        "y": rng.normal(size=n),
        "x": rng.normal(size=n),
        "a": np.repeat(["a1", "a2", "a3", "a4"], 12),
        "b": np.tile(["b1", "b2", "b3"], 16),
    }
    import pandas as pd

    model = bx.mixed(formula, pd.DataFrame(df), centered=[], marginalize=False)
    d = model.design
    v = {"beta": np.array([0.1, 0.5]), "sigma": np.array(0.9)}
    mu = d.X @ v["beta"]
    expected = stats.expon.logpdf(0.9, scale=1 / model.spec.priors["sigma"].lam)
    for f in d.factors:
        sd = np.array([0.7])
        z = rng.normal(size=(f.n_levels, 1))
        v[f"sd_{f.name}"] = sd
        v[f"z_{f.name}"] = z
        mu = mu + (z * sd)[f.index, 0]
        expected += stats.halfnorm.logpdf(sd, scale=model.spec.priors[f.sd_name("Intercept")].sigma).sum()
        expected += stats.norm.logpdf(z).sum()
    expected += stats.norm.logpdf(d.y, mu, 0.9).sum()
    np.testing.assert_allclose(logp_at(model.pymc_model, v), expected, rtol=1e-8)
