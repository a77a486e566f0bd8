"""The Laplace-approximation ML fit of GLMMs (lme4's glmer, nAGQ = 1) against lme4 and exact identities.

References: tests/reference/glmer_*.json, written by tests/reference/make_glmer_references.R
(lme4 1.1-31, R 4.2.2); each JSON stores the exact glmer call, quoted beside the asserts.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import bayesmix as bx
from bayesmix.compare.laplace import LaplaceFitWarning, fit_laplace
from bayesmix.compare.lmm import fit_lmm
from bayesmix.compare.mlfit import MLFit
from bayesmix.spec.families import get_family
from bayesmix.spec.terms import Design, GroupFactor

REFERENCE = Path(__file__).parent / "reference"

# The acceptance tolerance of the issue for the log-likelihood and the fixed effects (relative);
# what we achieve is far tighter (see the per-reference comments and test_reference_accuracy_report).
LOGLIK_RTOL = 1e-3
FIXEF_RTOL = 1e-3
SD_RTOL = 1e-2


def _load(name: str) -> dict:
    return json.loads((REFERENCE / f"{name}.json").read_text())


def _cbpp() -> pd.DataFrame:
    # prep as in the JSON: period a factor with levels 1..4 (treatment contrasts), herd a label
    return pd.read_csv(REFERENCE / "data" / "cbpp.csv", dtype={"herd": str, "period": str})


def _grouseticks(prep: str) -> pd.DataFrame:
    df = pd.read_csv(
        REFERENCE / "data" / "grouseticks.csv",
        dtype={"INDEX": str, "BROOD": str, "YEAR": str, "LOCATION": str},
    )
    # R's scale(HEIGHT) with the mean and (n - 1) SD recorded in the JSON's "prep", not recomputed
    mean, sd = "462.24069478908189", "35.956498475249845"
    assert f"scale(HEIGHT) = (HEIGHT - {mean}) / {sd}" in prep
    df["zHEIGHT"] = (df["HEIGHT"] - float(mean)) / float(sd)
    return df


def _model(name: str) -> bx.HierarchicalModel:
    """The bayesmix model of each reference's ``call``."""
    ref = _load(name)
    if name in ("glmer_cbpp", "glmer_cbpp_tight_pirls"):
        # glmer(cbind(incidence, size - incidence) ~ period + (1 | herd), family = binomial)
        # (the tight-PIRLS reference adds control = glmerControl(tolPwrss = 1e-10): same model)
        return bx.hierarchical(
            "cbind(incidence, size - incidence) ~ period + (1 | herd)", _cbpp(), family="binomial"
        )
    if name == "glmer_cbpp_probit":
        # glmer(cbind(incidence, size - incidence) ~ period + (1 | herd), family = binomial(link = "probit"))
        return bx.hierarchical(
            "cbind(incidence, size - incidence) ~ period + (1 | herd)",
            _cbpp(),
            family="binomial",
            link="probit",
        )
    # glmer(TICKS ~ YEAR + scale(HEIGHT) + (1 | BROOD) + (1 | LOCATION), family = poisson)
    return bx.hierarchical(
        "TICKS ~ YEAR + zHEIGHT + (1 | BROOD) + (1 | LOCATION)",
        _grouseticks(ref["data"]["prep"]),
        family="poisson",
    )


REFERENCES = ["glmer_cbpp", "glmer_cbpp_probit", "glmer_grouseticks", "glmer_cbpp_tight_pirls"]


@pytest.fixture(scope="module")
def fits() -> dict[str, MLFit]:
    """The reference models, each fitted once (under a second each); both cbpp-logit references share one."""
    out = {name: _model(name).fit_ml() for name in REFERENCES[:3]}
    out["glmer_cbpp_tight_pirls"] = out["glmer_cbpp"]
    return out


@pytest.mark.parametrize("name", REFERENCES)
def test_matches_glmer(name: str, fits: dict[str, MLFit]) -> None:
    ref = _load(name)["lme4"]
    fit = fits[name]
    assert fit.method == "Laplace" and fit.converged and not fit.result.singular
    assert fit.result.family == ref["family"] and fit.result.link == ref["link"]
    # logLik(m): lme4's Laplace log-likelihood (not deviance(m), which is a conditional deviance)
    np.testing.assert_allclose(fit.log_likelihood, ref["logLik"], rtol=LOGLIK_RTOL)
    np.testing.assert_allclose(fit.aic, ref["AIC"], rtol=LOGLIK_RTOL)
    fixed = list(fit.result.fixed_names)
    np.testing.assert_allclose(fit.estimates[fixed], ref["fixef"]["estimate"], rtol=FIXEF_RTOL)
    sds = [n for n in fit.estimates.index if n.startswith("sd(")]
    np.testing.assert_allclose(fit.estimates[sds], np.atleast_1d(ref["varcorr"]["sdcor"]), rtol=SD_RTOL)
    # Standard errors: lme4's default vcov(m) inverts a central finite-difference Hessian (deriv12,
    # delta 1e-4) of its Laplace deviance in (theta, beta); we do the same with the same step, so
    # the two agree to the accuracy of the optimum and of the deviance itself. lme4's deviance
    # carries its PIRLS tolerance (default tolPwrss = 1e-7: the determinant's weights come from the
    # PIRLS iterate before the converged mode). On cbpp-logit that moves lme4's SEs by 1.3%: the
    # same model with tolPwrss = 1e-10 (glmer_cbpp_tight_pirls.json) has SEs 0.232473, 0.306641,
    # 0.326637, 0.427437 against glmer_cbpp.json's 0.231214, 0.303151, 0.322830, 0.422049. The
    # other references move by < 2e-4 (test_reference_accuracy_report). Hence 2e-2 relative: the
    # measured 1.3% artifact plus margin.
    np.testing.assert_allclose(fit.std_errors[fixed], ref["fixef"]["se"], rtol=2e-2)


@pytest.mark.parametrize("name", REFERENCES)
def test_conditional_modes_match_ranef(name: str, fits: dict[str, MLFit]) -> None:
    """ranef(m, condVar = TRUE): conditional modes and SDs per level (lme4 sorts levels as text)."""
    ref = _load(name)["lme4"]["ranef"]
    table = fits[name].random_effects()
    index = pd.MultiIndex.from_arrays([ref["grpvar"], ref["grp"], ["Intercept"] * len(ref["grp"])])
    # 2e-3 absolute on modes of size ~0.5: the cbpp-logit modes move by 4e-4 with lme4's default
    # PIRLS tolerance (see test_matches_glmer); the others agree to 1e-4.
    np.testing.assert_allclose(table["mode"].reindex(index), ref["condval"], atol=2e-3)
    np.testing.assert_allclose(table["sd"].reindex(index), ref["condsd"], rtol=2e-3)


def test_reference_accuracy_report(fits: dict[str, MLFit]) -> None:
    """Pins what is achieved where lme4's default PIRLS tolerance does not blur the comparison.

    Measured (relative): probit logLik 2e-7, fixef 5e-5, SEs 1.2e-4; grouseticks logLik 3e-9,
    fixef 3.4e-5, SEs 2.7e-5 (lme4's own default and tight-optimizer refits differ by 1.3e-5 and
    3.1e-5 in fixef, so that is lme4's precision); cbpp-logit with tolPwrss = 1e-10: logLik 1e-10,
    fixef 6e-8 and theta 1.4e-8 against the tight-optimizer refit, SEs 1.7e-5 against lme4's vcov.
    """
    for name in ("glmer_cbpp_probit", "glmer_grouseticks"):
        ref = _load(name)["lme4"]
        fit = fits[name]
        fixed = list(fit.result.fixed_names)
        np.testing.assert_allclose(fit.log_likelihood, ref["logLik"], rtol=1e-6)
        np.testing.assert_allclose(fit.estimates[fixed], ref["fixef"]["estimate"], rtol=2e-4)
        np.testing.assert_allclose(fit.std_errors[fixed], ref["fixef"]["se"], rtol=1e-3)
    tight = _load("glmer_cbpp_tight_pirls")
    fit = fits["glmer_cbpp_tight_pirls"]
    np.testing.assert_allclose(fit.log_likelihood, tight["lme4"]["logLik"], rtol=1e-9)
    np.testing.assert_allclose(fit.result.beta, tight["refit_tight"]["fixef"]["estimate"], rtol=1e-6)
    np.testing.assert_allclose(fit.result.theta, tight["refit_tight"]["theta"]["values"], rtol=1e-6)
    np.testing.assert_allclose(
        fit.std_errors[list(fit.result.fixed_names)], tight["lme4"]["fixef"]["se"], rtol=1e-4
    )


def test_gaussian_laplace_is_exact() -> None:
    """Gaussian family: the Laplace approximation is exact, so it equals the ML engine's log-likelihood."""
    model = bx.mixed("Reaction ~ Days + (Days | Subject)", bx.datasets.load("sleepstudy"))
    laplace = fit_laplace(model.design, model.spec.family_def)
    exact = fit_lmm(model.design, reml=False)
    assert laplace.converged
    np.testing.assert_allclose(laplace.loglik, exact.loglik, rtol=1e-6)
    np.testing.assert_allclose(laplace.estimates, exact.estimates[laplace.estimates.index], rtol=1e-5)


def _poisson_frame(seed: int, n_groups: int = 8, per_group: int = 6) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    g = np.repeat(np.arange(n_groups), per_group)
    x = rng.normal(size=g.size)
    y = rng.poisson(np.exp(0.5 + 0.3 * x + rng.normal(scale=0.6, size=n_groups)[g]))
    return pd.DataFrame({"y": y, "x": x, "g": [f"g{i}" for i in g]})


def test_known_covariance_runs_and_scales() -> None:
    """A factor with known K: K = I gives the plain fit; K = 4 I halves the SD, same likelihood."""
    df = _poisson_frame(seed=3)
    levels = [f"g{i}" for i in range(8)]
    plain = bx.hierarchical("y ~ x + (1 | g)", df, family="poisson").fit_ml()
    results = {}
    for c in (1.0, 4.0):
        K = pd.DataFrame(c * np.eye(8), index=levels, columns=levels)
        results[c] = bx.hierarchical("y ~ x + (1 | g)", df, family="poisson", covariances={"g": K}).fit_ml()
    np.testing.assert_allclose(results[1.0].log_likelihood, plain.log_likelihood, rtol=1e-9)
    np.testing.assert_allclose(results[4.0].log_likelihood, plain.log_likelihood, rtol=1e-9)
    sd = "sd(Intercept|g)"
    np.testing.assert_allclose(results[4.0].estimates[sd], plain.estimates[sd] / 2, rtol=1e-4)


def test_known_covariance_binomial_finite() -> None:
    """A binomial model with a correlated K (AR(1)) and a level without data runs; estimates are finite."""
    rng = np.random.default_rng(11)
    levels = [f"s{i}" for i in range(10)]
    K = pd.DataFrame(
        0.6 ** np.abs(np.subtract.outer(np.arange(10), np.arange(10))), index=levels, columns=levels
    )
    b = np.linalg.cholesky(K.to_numpy()) @ rng.normal(scale=0.7, size=10)
    g = np.repeat(np.arange(9), 5)  # level s9 has no rows
    size = rng.integers(5, 15, size=g.size)
    s = rng.binomial(size, 1 / (1 + np.exp(-(-0.3 + b[g]))))
    df = pd.DataFrame({"s": s, "f": size - s, "g": [levels[i] for i in g]})
    model = bx.hierarchical("cbind(s, f) ~ 1 + (1 | g)", df, family="binomial", covariances={"g": K})
    fit = model.fit_ml()
    assert fit.converged
    assert np.isfinite(fit.table()[["estimate", "std_error"]].to_numpy()).all()
    modes = fit.random_effects()
    assert len(modes) == 10 and np.isfinite(modes.to_numpy()).all()


def test_negative_binomial_auxiliary() -> None:
    """The auxiliary parameter is estimated on the log scale with an interval that brackets it."""
    rng = np.random.default_rng(5)
    g = np.repeat(np.arange(12), 10)
    mu = np.exp(1.0 + rng.normal(scale=0.5, size=12)[g])
    y = rng.negative_binomial(3.0, 3.0 / (3.0 + mu))
    df = pd.DataFrame({"y": y, "g": [f"g{i}" for i in g]})
    fit = bx.hierarchical("y ~ 1 + (1 | g)", df, family="negbinomial").fit_ml()
    table = fit.table()
    assert fit.converged and list(table.index) == ["Intercept", "sd(Intercept|g)", "alpha"]
    row = table.loc["alpha"]
    assert row["ci_lower"] < row["estimate"] < row["ci_upper"] and row["std_error"] > 0


def test_singular_fit_warns() -> None:
    """Identical groups: the random-effect SD is estimated at exactly 0, with a warning and NaN errors."""
    counts = np.array([0, 1, 1, 2, 3, 5])
    df = pd.DataFrame({"y": np.tile(counts, 6), "g": np.repeat([f"g{i}" for i in range(6)], 6)})
    model = bx.hierarchical("y ~ 1 + (1 | g)", df, family="poisson")
    with pytest.warns(LaplaceFitWarning, match="singular fit"):
        fit = model.fit_ml()
    assert fit.estimates["sd(Intercept|g)"] == 0.0 and np.isnan(fit.std_errors["sd(Intercept|g)"])
    np.testing.assert_allclose(fit.estimates["Intercept"], np.log(counts.mean()), rtol=1e-6)


def test_reml_is_gaussian_only() -> None:
    model = bx.hierarchical("y ~ x + (1 | g)", _poisson_frame(seed=1), family="poisson")
    with pytest.raises(ValueError, match="REML is defined for the gaussian family"):
        model.fit_ml(reml=True)


def test_too_many_random_effects_is_refused() -> None:
    n = 5001
    factor = GroupFactor(
        name="g",
        levels=tuple(str(i) for i in range(n)),
        index=np.arange(n),
        terms=("Intercept",),
        values=np.ones((n, 1)),
    )
    design = Design(
        response_name="y",
        y=np.ones(n),
        X=np.ones((n, 1)),
        fixed_names=("Intercept",),
        factors=(factor,),
        auxiliary=(),
    )
    with pytest.raises(ValueError, match="at most 5000 random effects"):
        fit_laplace(design, get_family("poisson"))


@pytest.fixture(scope="module")
def poisson_fit() -> bx.Fit:
    model = bx.hierarchical("y ~ x + (1 | g)", _poisson_frame(seed=2), family="poisson")
    return model.fit(draws=200, tune=200, chains=2, random_seed=4, progressbar=False)


def test_compare_poisson(poisson_fit: bx.Fit) -> None:
    table = poisson_fit.compare()
    assert list(table.index) == ["Intercept", "x", "sd(Intercept|g)"]
    assert table.attrs["reference"] == "ml (Laplace)"
    assert np.isfinite(table[["estimate", "std_error", "ci_lower", "ci_upper", "diff_sd"]].to_numpy()).all()
    with pytest.raises(ValueError, match="statsmodels' MixedLM fits the gaussian family only"):
        poisson_fit.compare("statsmodels")


def test_gaussian_with_known_covariance_is_exact_ml() -> None:
    """A Gaussian model with K = I is the plain model: its ML fit (Laplace engine, exact) is the plain one.

    REML is not available with a known covariance: asking for it is an error, not a silent plain fit.
    """
    sleep = bx.datasets.load("sleepstudy")
    levels = sorted(sleep["Subject"].astype(str).unique())
    K = pd.DataFrame(np.eye(len(levels)), index=levels, columns=levels)
    with_k = bx.mixed("Reaction ~ Days + (1 | Subject)", sleep, covariances={"Subject": K})
    plain = bx.mixed("Reaction ~ Days + (1 | Subject)", sleep)
    fit = with_k.fit_ml()
    assert fit.method == "ML"
    np.testing.assert_allclose(fit.log_likelihood, plain.fit_ml(reml=False).log_likelihood, rtol=1e-8)
    with pytest.raises(ValueError, match="REML with a known covariance"):
        with_k.fit_ml(reml=True)
