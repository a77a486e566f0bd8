"""The ML/REML linear mixed model engine against lme4, glmmTMB, statsmodels and exact identities.

Reference files live in ``tests/reference`` (see ``make_lme4_references.R`` there and
``data/README.md``); ``lme4_sleepstudy.json`` is the project's shared lme4 1.1-31 reference.

Tolerances: log-likelihoods 1e-6 relative; everything else 1e-3 relative, because lme4's
optimizer stops with estimates good to about 1e-5 on flat likelihoods (its ML sleepstudy
SDs differ from glmmTMB's by 3e-5) while the log-likelihood is flat there. Quantities
that can be near zero (fixed effects, conditional modes) also get an absolute allowance of
1e-3 of their standard error or SD, which is the same optimizer slack on an absolute scale.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import scipy.stats as st
import statsmodels.formula.api as smf

import bayesmix.datasets
from bayesmix.compare.lmm import LMMResult, fit_lmm, marginal_loglik, profiled_deviance
from bayesmix.spec.terms import Design, GroupFactor

REFERENCE = Path(__file__).parent / "reference"
RTOL_LOGLIK = 1e-6
RTOL = 1e-3
#: lme4 names some factors differently (nesting reversed; a second term of a factor gets ".1").
R_FACTOR_NAMES = {"cask:batch": "batch:cask"}


def _load_json(name: str) -> dict[str, Any]:
    with open(REFERENCE / name) as fh:
        data: dict[str, Any] = json.load(fh)
    return data


def _assert_close(actual: np.ndarray, desired: np.ndarray, atol: np.ndarray) -> None:
    """``|actual - desired| <= atol + RTOL |desired|`` elementwise, with an elementwise ``atol``."""
    both_nan = np.isnan(actual) & np.isnan(desired)
    excess = np.abs(actual - desired) - (atol + RTOL * np.abs(desired))
    assert np.all(both_nan | (excess <= 0)), f"not close: actual {actual}, desired {desired}, atol {atol}"


def _factor(
    name: str, labels: pd.Series, terms: dict[str, np.ndarray], correlated: tuple[str, ...] = ()
) -> GroupFactor:
    codes, uniques = pd.factorize(labels, sort=True)
    return GroupFactor(
        name=name,
        levels=tuple(str(u) for u in uniques),
        index=codes.astype(np.int64),
        terms=tuple(terms),
        values=np.column_stack([np.asarray(v, dtype=float) for v in terms.values()]),
        correlated=correlated,
    )


def _sleepstudy(kind: str) -> Design:
    df = bayesmix.datasets.load("sleepstudy")
    ones, days = np.ones(len(df)), df["Days"].to_numpy(float)
    terms = {"Intercept": ones, "Days": days}
    if kind == "mixed_block":
        terms["Days2"] = (days - 4.5) ** 2
    correlated = () if kind == "uncorrelated" else ("Intercept", "Days")
    subject = _factor("Subject", df["Subject"], terms, correlated)
    return Design(
        response_name="Reaction",
        y=df["Reaction"].to_numpy(float),
        X=np.column_stack([ones, days]),
        fixed_names=("Intercept", "Days"),
        factors=(subject,),
    )


def _intercept_only(df: pd.DataFrame, response: str, factors: dict[str, pd.Series]) -> Design:
    ones = np.ones(len(df))
    return Design(
        response_name=response,
        y=df[response].to_numpy(float),
        X=ones[:, None],
        fixed_names=("Intercept",),
        factors=tuple(_factor(name, labels, {"Intercept": ones}) for name, labels in factors.items()),
    )


def _cake() -> Design:
    """``angle ~ recipe * temperature + (1 | recipe:replicate)``, treatment contrasts, R's column order."""
    df = pd.read_csv(
        REFERENCE / "data" / "cake.csv", dtype={"replicate": str, "recipe": str, "temperature": str}
    )
    recipes, temps = ["B", "C"], ["185", "195", "205", "215", "225"]
    cols = {"Intercept": np.ones(len(df))}
    cols |= {f"recipe[{r}]": (df["recipe"] == r).to_numpy(float) for r in recipes}
    cols |= {f"temperature[{t}]": (df["temperature"] == t).to_numpy(float) for t in temps}
    for t in temps:
        for r in recipes:
            cols[f"recipe[{r}]:temperature[{t}]"] = cols[f"recipe[{r}]"] * cols[f"temperature[{t}]"]
    batch = _factor("recipe:replicate", df["recipe"] + ":" + df["replicate"], {"Intercept": np.ones(len(df))})
    return Design(
        response_name="angle",
        y=df["angle"].to_numpy(float),
        X=np.column_stack(list(cols.values())),
        fixed_names=tuple(cols),
        factors=(batch,),
    )


def _design(name: str) -> Design:
    if name.startswith("sleepstudy_"):
        return _sleepstudy(name.removeprefix("sleepstudy_"))
    if name == "penicillin":
        df = pd.read_csv(REFERENCE / "data" / "penicillin.csv", dtype={"plate": str, "sample": str})
        return _intercept_only(df, "diameter", {"plate": df["plate"], "sample": df["sample"]})
    if name == "pastes":
        df = pd.read_csv(REFERENCE / "data" / "pastes.csv", dtype={"batch": str, "cask": str})
        return _intercept_only(
            df, "strength", {"batch": df["batch"], "batch:cask": df["batch"] + ":" + df["cask"]}
        )
    if name == "cake":
        return _cake()
    if name == "singular":
        df = pd.read_csv(REFERENCE / "data" / "singular.csv", dtype={"g": str})
        ones, x = np.ones(len(df)), df["x"].to_numpy(float)
        factor = _factor("g", df["g"], {"Intercept": ones, "x": x}, ("Intercept", "x"))
        return Design(
            response_name="y",
            y=df["y"].to_numpy(float),
            X=np.column_stack([ones, x]),
            fixed_names=("Intercept", "x"),
            factors=(factor,),
        )
    raise ValueError(name)


@functools.cache
def _fit(name: str, reml: bool) -> LMMResult:
    return fit_lmm(_design(name), reml=reml)


# ---------------------------------------------------------------------------------------------
# The project's shared lme4 reference: Reaction ~ Days + (Days | Subject)


@pytest.mark.parametrize("key", ["lme4_REML", "lme4_ML"])
def test_sleepstudy_matches_lme4(key: str) -> None:
    # lmer(Reaction ~ Days + (Days | Subject), REML = TRUE / FALSE), lme4 1.1-31
    ref = _load_json("lme4_sleepstudy.json")[key]
    fit = _fit("sleepstudy_correlated", ref["REML"])
    if ref["REML"]:
        np.testing.assert_allclose(fit.loglik, -871.8141359799, rtol=RTOL_LOGLIK)
    np.testing.assert_allclose(fit.loglik, ref["logLik"], rtol=RTOL_LOGLIK)
    np.testing.assert_allclose(fit.beta, ref["fixef"]["estimate"], rtol=RTOL)
    np.testing.assert_allclose(np.sqrt(np.diag(fit.beta_cov)), ref["fixef"]["se"], rtol=RTOL)
    np.testing.assert_allclose(fit.beta_cov, ref["fixef"]["vcov"]["values"], rtol=RTOL)
    vc = ref["varcorr"]["Subject"]
    np.testing.assert_allclose(fit.sd["Subject"], vc["sd"], rtol=RTOL)
    np.testing.assert_allclose(fit.corr["Subject"], vc["correlation"]["values"], rtol=RTOL)
    np.testing.assert_allclose(fit.sigma, ref["residual_sd"], rtol=RTOL)
    np.testing.assert_allclose(fit.theta, ref["theta"]["values"], rtol=RTOL)
    re = ref["ranef"]["Subject"]
    modes = fit.ranef["Subject"].loc[re["levels"]].to_numpy().T
    for row, desired, sd in zip(modes, re["conditional_mode"], fit.sd["Subject"], strict=True):
        np.testing.assert_allclose(row, desired, rtol=RTOL, atol=RTOL * sd)
    np.testing.assert_allclose(
        fit.ranef_sd["Subject"].loc[re["levels"]].to_numpy().T, re["conditional_sd"], rtol=RTOL
    )
    assert fit.converged


# ---------------------------------------------------------------------------------------------
# Reference fits made by tests/reference/make_lme4_references.R (lme4 1.1-31, glmmTMB 1.1.5, R 4.2.2)

CASES = [
    # (reference file, design, fits): the calls are stored in each file under "call"
    ("lme4_penicillin.json", "penicillin", ("REML", "ML")),  # diameter ~ 1 + (1|plate) + (1|sample)
    ("lme4_pastes.json", "pastes", ("REML", "ML")),  # strength ~ 1 + (1|batch/cask)
    ("lme4_sleepstudy_uncorrelated.json", "sleepstudy_uncorrelated", ("REML", "ML")),  # (Days || Subject)
    ("lme4_sleepstudy_correlated.json", "sleepstudy_correlated", ("REML", "ML")),  # (Days | Subject)
    ("lme4_sleepstudy_mixed_block.json", "sleepstudy_mixed_block", ("REML", "ML")),  # + (0 + Days2 | Subject)
    ("lme4_cake.json", "cake", ("REML",)),  # angle ~ recipe * temperature + (1|recipe:replicate)
    ("lme4_singular.json", "singular", ("REML", "ML")),  # y ~ x + (x | g), sd((Intercept)|g) = 0
]
PARAMS = [(file, design, tag) for file, design, tags in CASES for tag in tags]
#: glmmTMB cannot give standard errors at a singular fit (its Hessian is not positive definite).
PARAMS_TMB = [param for param in PARAMS if param[1] != "singular"]


def _r_term(name: str) -> str:
    return "Intercept" if name == "(Intercept)" else name


def _r_factor(name: str) -> str:
    name = re.sub(r"\.\d+$", "", name)
    return R_FACTOR_NAMES.get(name, name)


def _r_level(factor: str, label: str) -> str:
    """lme4 writes the nested factor batch:cask as cask:batch, with levels like ``a:A``."""
    return ":".join(reversed(label.split(":"))) if factor == "batch:cask" else label


def _r_variance_parameters(grp: list[str], var1: list[str | None], var2: list[str | None]) -> list[str]:
    """Our parameter names for lme4's / glmmTMB's long VarCorr rows."""
    names = []
    for g, a, b in zip(grp, var1, var2, strict=True):
        if g == "Residual":
            names.append("sigma")
        elif b is None and a is not None:
            names.append(f"sd({_r_term(a)}|{_r_factor(g)})")
        elif a is not None and b is not None:
            names.append(f"corr({_r_term(a)},{_r_term(b)}|{_r_factor(g)})")
    return names


def _r_fixed_name(name: str) -> str:
    return re.sub(r"\[(\w+)\]", r"\1", "(Intercept)" if name == "Intercept" else name)


@pytest.mark.parametrize(("file", "design", "tag"), PARAMS)
def test_matches_lme4(file: str, design: str, tag: str) -> None:
    ref = _load_json(file)[f"lme4_{tag}"]
    fit = _fit(design, tag == "REML")
    assert fit.converged, fit.optimizer_message
    np.testing.assert_allclose(fit.loglik, ref["logLik"], rtol=RTOL_LOGLIK)
    assert [_r_fixed_name(n) for n in fit.fixed_names] == list(np.atleast_1d(ref["fixef"]["names"]))
    se = np.atleast_1d(ref["fixef"]["se"])
    _assert_close(fit.beta, np.atleast_1d(ref["fixef"]["estimate"]), atol=RTOL * se)
    np.testing.assert_allclose(np.sqrt(np.diag(fit.beta_cov)), se, rtol=RTOL)
    _assert_close(fit.beta_cov, np.asarray(ref["fixef"]["vcov"]), atol=RTOL * np.outer(se, se))
    vc = ref["varcorr"]
    names = _r_variance_parameters(vc["grp"], vc["var1"], vc["var2"])
    assert sorted(names) == sorted(fit.estimates.index[len(fit.fixed_names) :])
    desired = np.array(vc["sdcor"], dtype=float)  # null (an undefined correlation) -> NaN
    # a thousandth of a standard error absolute: lme4 stops early on flat likelihoods (e.g. its
    # REML correlation for the mixed block is 0.022945, glmmTMB's and ours 0.022876, SE 0.3)
    atol = RTOL * np.nan_to_num(fit.std_errors[names].to_numpy())
    _assert_close(fit.estimates[names].to_numpy(), desired, atol=atol)
    assert fit.singular == ("boundary (singular) fit: see help('isSingular')" in str(ref["conv_messages"]))


@pytest.mark.parametrize(("file", "design", "tag"), PARAMS)
def test_conditional_modes_match_lme4(file: str, design: str, tag: str) -> None:
    ref = pd.DataFrame(_load_json(file)[f"lme4_{tag}"]["ranef"])
    fit = _fit(design, tag == "REML")
    for (grpvar, term), rows in ref.groupby(["grpvar", "term"]):
        factor, ours = _r_factor(str(grpvar)), _r_term(str(term))
        levels = [_r_level(factor, g) for g in rows["grp"]]
        sd = fit.sd[factor][list(fit.ranef[factor].columns).index(ours)]
        modes = fit.ranef[factor].loc[levels, ours].to_numpy()
        np.testing.assert_allclose(modes, rows["condval"], rtol=RTOL, atol=RTOL * sd)
        np.testing.assert_allclose(fit.ranef_sd[factor].loc[levels, ours], rows["condsd"], rtol=RTOL)


@pytest.mark.parametrize(("file", "design", "tag"), PARAMS)
def test_profiled_deviance_at_lme4_theta(file: str, design: str, tag: str) -> None:
    """Our deviance at lme4's optimum equals lme4's REMLcrit / deviance (an exact identity)."""
    ref = _load_json(file)[f"lme4_{tag}"]
    fit = _fit(design, tag == "REML")
    r_names = [n.replace("(Intercept)", "Intercept") for n in np.atleast_1d(ref["theta"]["names"])]
    for r_name, ours in R_FACTOR_NAMES.items():
        r_names = [n.replace(f"{r_name}.", f"{ours}.") for n in r_names]
    theta = pd.Series(np.atleast_1d(ref["theta"]["values"]), index=r_names)[list(fit.theta_names)]
    value = profiled_deviance(_design(design), theta.to_numpy(), reml=tag == "REML")
    np.testing.assert_allclose(value, ref["criterion"], rtol=1e-10)


@pytest.mark.parametrize(("file", "design", "tag"), PARAMS_TMB)
def test_variance_standard_errors_match_glmmtmb(file: str, design: str, tag: str) -> None:
    # glmmTMB(<same model>, REML = ...): sdreport errors of log SD / corr parameter / log sigma^2,
    # moved to the natural scale by the delta method in make_lme4_references.R
    ref = _load_json(file)[f"glmmTMB_{tag}"]
    fit = _fit(design, tag == "REML")
    np.testing.assert_allclose(fit.loglik, ref["logLik"], rtol=RTOL_LOGLIK)
    vse = ref["variance_se"]
    names = _r_variance_parameters(vse["grp"], vse["var1"], vse["var2"])
    np.testing.assert_allclose(fit.estimates[names], vse["estimate"], rtol=RTOL)
    np.testing.assert_allclose(fit.std_errors[names], vse["std_error"], rtol=RTOL)


# ---------------------------------------------------------------------------------------------
# statsmodels and exact identities


@pytest.mark.parametrize("reml", [True, False])
def test_sleepstudy_loglik_matches_statsmodels(reml: bool) -> None:
    df = bayesmix.datasets.load("sleepstudy")
    # statsmodels MixedLM with its default optimizer (not Nelder-Mead, which returns nonsense)
    sm = smf.mixedlm("Reaction ~ Days", df, groups=df["Subject"], re_formula="~Days").fit(reml=reml)
    fit = _fit("sleepstudy_correlated", reml)
    np.testing.assert_allclose(fit.loglik, sm.llf, rtol=RTOL_LOGLIK)
    np.testing.assert_allclose(fit.beta, sm.fe_params.to_numpy(), rtol=RTOL)


def test_marginal_loglik_is_the_dense_gaussian_density() -> None:
    design = _sleepstudy("mixed_block")
    fit = _fit("sleepstudy_mixed_block", False)
    f = design.factors[0]
    z_blocks = np.zeros((design.n_obs, f.n_levels * f.n_terms))
    for j in range(f.n_terms):
        z_blocks[np.arange(design.n_obs), f.index * f.n_terms + j] = f.values[:, j]
    cov_b = np.kron(
        np.eye(f.n_levels),
        np.diag(fit.sd[f.name]) @ fit.corr[f.name] @ np.diag(fit.sd[f.name]),
    )
    cov_y = fit.sigma**2 * np.eye(design.n_obs) + z_blocks @ cov_b @ z_blocks.T
    dense = st.multivariate_normal(design.X @ fit.beta, cov_y).logpdf(design.y)
    value = marginal_loglik(design, fit.beta, fit.sd, fit.corr, fit.sigma)
    np.testing.assert_allclose(value, dense, rtol=1e-10)
    # at the ML estimates the marginal log-likelihood is the maximized one
    np.testing.assert_allclose(value, fit.loglik, rtol=1e-10)


def test_table_has_wald_columns() -> None:
    fit = _fit("sleepstudy_correlated", True)
    table = fit.table()
    assert list(table.columns) == ["estimate", "std_error", "z", "p_value", "ci_lower", "ci_upper"]
    assert list(table.index) == _sleepstudy("correlated").parameter_names()
    assert table.loc["Days", "z"] == pytest.approx(10.467285959596 / 1.54578964390598, rel=RTOL)
    assert table.loc[["sigma", "sd(Days|Subject)"], ["z", "p_value"]].isna().all().all()
    assert (table["ci_lower"] < table["estimate"]).all() and (table["estimate"] < table["ci_upper"]).all()


@pytest.mark.parametrize("reml", [True, False])
def test_boundary_fit_gives_nan_errors_without_crashing(reml: bool) -> None:
    fit = _fit("singular", reml)
    assert fit.singular and fit.converged
    assert fit.sd["g"][0] == 0.0 and np.isnan(fit.corr["g"][0, 1])
    on_boundary = ["sd(Intercept|g)", "corr(Intercept,x|g)"]
    assert fit.std_errors[on_boundary].isna().all() and fit.conf_int.loc[on_boundary].isna().all().all()
    assert np.isfinite(fit.std_errors[["Intercept", "x", "sd(x|g)", "sigma"]]).all()
    assert fit.table().shape == (6, 6)
    # the NaN correlation next to the zero SD is accepted by marginal_loglik
    value = marginal_loglik(_design("singular"), fit.beta, fit.sd, fit.corr, fit.sigma)
    if not reml:
        np.testing.assert_allclose(value, fit.loglik, rtol=1e-10)


def test_term_order_does_not_matter() -> None:
    """An independent term placed before the correlated block gives the same fit."""
    design = _sleepstudy("mixed_block")
    f = design.factors[0]
    order = [2, 0, 1]  # Days2, Intercept, Days
    permuted = GroupFactor(
        name=f.name,
        levels=f.levels,
        index=f.index,
        terms=tuple(f.terms[i] for i in order),
        values=f.values[:, order],
        correlated=f.correlated,
    )
    fit = fit_lmm(dataclasses.replace(design, factors=(permuted,)), reml=True)
    ref = _fit("sleepstudy_mixed_block", True)
    np.testing.assert_allclose(fit.loglik, ref.loglik, rtol=1e-9)
    np.testing.assert_allclose(fit.estimates[ref.estimates.index], ref.estimates, rtol=RTOL)
    np.testing.assert_allclose(fit.std_errors[ref.estimates.index], ref.std_errors, rtol=RTOL)
