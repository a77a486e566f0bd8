"""GLMM families in ``bx.hierarchical``: the built likelihood equals a scipy computation (rtol 1e-8).

The observed variable's log-density is evaluated at chosen values of the fixed effects, the
random intercepts and the family's auxiliary parameters, and compared with scipy's densities in
the parametrizations of ``bayesmix/spec/families.py`` (PyMC's).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import special, stats

import bayesmix as bx
from tests.helpers import value_point

N_GROUPS, PER_GROUP = 6, 5
BETA = np.array([0.4, -0.3])
RE = np.linspace(-0.5, 0.5, N_GROUPS)
AUX = {"sigma": 0.7, "nu": 5.0, "alpha": 3.0, "phi": 8.0}

#: family -> (simulate y from the linear predictor, scipy log-density of y given it)
FAMILIES = {
    "gaussian": (
        lambda rng, eta: rng.normal(eta, AUX["sigma"]),
        lambda y, eta: stats.norm.logpdf(y, eta, AUX["sigma"]),
    ),
    "lognormal": (
        lambda rng, eta: np.exp(rng.normal(eta, AUX["sigma"])),
        lambda y, eta: stats.lognorm.logpdf(y, AUX["sigma"], scale=np.exp(eta)),
    ),
    "studentt": (
        lambda rng, eta: eta + AUX["sigma"] * rng.standard_t(AUX["nu"], eta.size),
        lambda y, eta: stats.t.logpdf(y, AUX["nu"], eta, AUX["sigma"]),
    ),
    "poisson": (
        lambda rng, eta: rng.poisson(np.exp(eta)).astype(float),
        lambda y, eta: stats.poisson.logpmf(y, np.exp(eta)),
    ),
    "negbinomial": (
        lambda rng, eta: rng.poisson(np.exp(eta)).astype(float),
        lambda y, eta: stats.nbinom.logpmf(y, AUX["alpha"], AUX["alpha"] / (np.exp(eta) + AUX["alpha"])),
    ),
    "gamma": (
        lambda rng, eta: rng.gamma(AUX["alpha"], np.exp(eta) / AUX["alpha"]),
        lambda y, eta: stats.gamma.logpdf(y, AUX["alpha"], scale=np.exp(eta) / AUX["alpha"]),
    ),
    "bernoulli": (
        lambda rng, eta: (rng.random(eta.size) < special.expit(eta)).astype(float),
        lambda y, eta: stats.bernoulli.logpmf(y, special.expit(eta)),
    ),
    "beta": (
        lambda rng, eta: rng.beta(special.expit(eta) * AUX["phi"], (1 - special.expit(eta)) * AUX["phi"]),
        lambda y, eta: stats.beta.logpdf(
            y, special.expit(eta) * AUX["phi"], (1 - special.expit(eta)) * AUX["phi"]
        ),
    ),
}


def _frame(family: str, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    g = np.repeat(np.arange(N_GROUPS), PER_GROUP)
    x = rng.normal(size=g.size)
    eta = BETA[0] + BETA[1] * x + RE[g]
    return pd.DataFrame({"g": [f"g{i}" for i in g], "x": x, "y": FAMILIES[family][0](rng, eta)})


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_glmm_likelihood_exact(family: str) -> None:
    df = _frame(family, seed=sorted(FAMILIES).index(family))
    model = bx.hierarchical("y ~ x + (1 | g)", df, family=family, centered=["g"], marginalize=False)
    pm_model = model.pymc_model
    values: dict[str, np.ndarray] = {
        "beta": BETA,
        "sd_g": np.array([0.8]),
        "coef_g": BETA[0] + RE[:, None],  # centered: each group's own intercept
    }
    for aux in model.design.auxiliary:
        values[aux] = np.asarray(AUX[aux])
    observed = pm_model.observed_RVs
    assert [rv.name for rv in observed] == ["y"]
    logp = pm_model.compile_logp(vars=observed, jacobian=False)(value_point(pm_model, values))
    levels = pd.Index(model.design.factors[0].levels)
    eta = BETA[0] + BETA[1] * df["x"].to_numpy() + RE[levels.get_indexer(df["g"])]
    expected = FAMILIES[family][1](df["y"].to_numpy(), eta).sum()
    np.testing.assert_allclose(logp, expected, rtol=1e-8)


@pytest.mark.parametrize(
    ("family", "aux"), [("poisson", []), ("gamma", ["alpha"]), ("studentt", ["sigma", "nu"])]
)
def test_auxiliary_parameters_follow_the_family(family: str, aux: list[str]) -> None:
    model = bx.hierarchical("y ~ x + (1 | g)", _frame(family, seed=1), family=family)
    assert list(model.design.auxiliary) == aux
    assert model.design.parameter_names() == ["Intercept", "x", "sd(Intercept|g)", *aux]
    assert [n for n in model.spec.priors if n in aux] == aux


def test_binomial_needs_trials_syntax() -> None:
    with pytest.raises(ValueError, match="the binomial family needs the number of trials"):
        bx.hierarchical("y ~ x + (1 | g)", _frame("poisson", seed=2), family="binomial")


def test_reml_is_gaussian_only() -> None:
    """REML is defined for the Gaussian likelihood only; a GLMM's ML fit is the Laplace one."""
    model = bx.hierarchical("y ~ x + (1 | g)", _frame("poisson", seed=3), family="poisson")
    with pytest.raises(ValueError, match="REML"):
        model.fit_ml(reml=True)


@pytest.mark.parametrize(("link", "inverse"), [("logit", special.expit), ("probit", special.ndtr)])
@pytest.mark.parametrize("centered", [["g"], []])
def test_binomial_with_offset_exact(link, inverse, centered) -> None:
    """Binomial successes out of trials (``cbind``), with an offset, in both parametrizations."""
    rng = np.random.default_rng(7)
    g = np.repeat(np.arange(N_GROUPS), PER_GROUP)
    x, size = rng.normal(size=g.size), rng.integers(1, 12, size=g.size)
    offset = rng.normal(scale=0.3, size=g.size)
    eta = offset + BETA[0] + BETA[1] * x + RE[g]
    s = rng.binomial(size, inverse(eta))
    df = pd.DataFrame({"g": [f"g{i}" for i in g], "x": x, "s": s, "f": size - s, "o": offset})
    model = bx.hierarchical(
        "cbind(s, f) ~ x + offset(o) + (1 | g)", df, family="binomial", link=link, centered=centered
    )
    values = {"beta": BETA, "sd_g": np.array([0.8])}
    if centered:
        values["coef_g"] = BETA[0] + RE[:, None]
    else:
        values["z_g"] = RE[:, None] / 0.8
    pm_model = model.pymc_model
    logp = pm_model.compile_logp(vars=pm_model.observed_RVs, jacobian=False)(value_point(pm_model, values))
    np.testing.assert_allclose(logp, stats.binom.logpmf(s, size, inverse(eta)).sum(), rtol=1e-8)
