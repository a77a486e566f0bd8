"""The frequentist meta-analysis fit (REML, ML, DL) against metafor 3.8.1, and its wiring into fit_ml.

References: ``tests/reference/metafor_*.json``, written by ``Rscript scripts/metafor_references.R``
(each file records the R calls, the R and metafor versions, the data and the publications).
Each fit is stored twice: the ``default`` call as a user types it, and the ``tight`` one
(``control = list(threshold = 1e-12, maxiter = 10000)``, Q-profile roots at ``tol = 1e-12``).

Tolerances (the derivations):

* Against the ``tight`` call, ``RTOL = 1e-6`` relative on everything. Both sides solve the same
  equations: metafor's Fisher scoring stops when ``tau^2`` moves by less than 1e-12, bayesmix
  polishes the score root to 1e-13 relative, so ``tau^2`` agrees to about 1e-12 / 0.007 (the
  smallest positive ``tau^2`` here) = 1.5e-10 relative; every other number is a smooth
  closed form of ``tau^2``. Measured: 5e-10 at most (``scripts/metafor_accuracy.py``). The
  issue's acceptance bound is 1e-4 relative on the estimates; 1e-6 is tighter.
* Log-likelihoods ``ATOL_LOGLIK = 1e-6`` absolute (they can be near 0, so relative is unfit;
  the log-likelihood is flat at the optimum, so the ``tau^2`` slack above moves it by far less).
* Against the ``default`` call, ``tau^2`` within ``ATOL_DEFAULT_TAU2 = 1e-4``: metafor stops
  when a Fisher-scoring step is below 1e-5, and near a small ``tau^2`` the steps shrink
  linearly, so its answer can lie several steps from the optimum (measured: 2.4e-5 on
  ``bcg_ablat_year`` ML, 8.9e-4 relative).
* At the boundary (``tau^2`` of the tight call below ``BOUNDARY_TAU2``) bayesmix's ``tau^2`` is
  exactly 0 and within 1e-8 absolute of metafor's (which creeps towards 0 by halved steps).
"""

from __future__ import annotations

import doctest
import functools
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import scipy.stats as st

import bayesmix as bx
from bayesmix.compare import meta, meta_tau2
from bayesmix.compare.meta import BOUNDARY_NOTE, MetaFit, fit_meta, fit_meta_design
from bayesmix.compare.meta_tau2 import WLS

REFERENCE = Path(__file__).parent / "reference"
NAMES = sorted(p.stem.removeprefix("metafor_") for p in REFERENCE.glob("metafor_*.json"))
METHODS = ("REML", "ML", "DL")
RTOL = 1e-6
ATOL_LOGLIK = 1e-6
ATOL_DEFAULT_TAU2 = 1e-4
BOUNDARY_TAU2 = 1e-8
EIGHT_SCHOOLS = pd.DataFrame(
    {
        "school": list("ABCDEFGH"),
        "y": [28.0, 8, -3, 7, -1, 1, 18, 12],
        "sigma": [15.0, 10, 16, 11, 9, 11, 10, 18],
    }
)


@functools.cache
def _load(name: str) -> dict[str, Any]:
    with open(REFERENCE / f"metafor_{name}.json") as fh:
        data: dict[str, Any] = json.load(fh)
    return data


def _fit(name: str, method: str) -> MetaFit:
    """bayesmix's fit of the reference's data: intercept plus the recorded moderators."""
    ref = _load(name)
    data = ref["data"]
    columns = [np.ones(len(data["yi"]))] + [np.asarray(data[m], dtype=float) for m in ref["moderators"]]
    names = ("Intercept", *ref["moderators"])
    return fit_meta(data["yi"], data["sei"], np.column_stack(columns), names, method=method)


def _close(actual: object, desired: object, what: str) -> None:
    np.testing.assert_allclose(np.asarray(actual, float), np.asarray(desired, float), rtol=RTOL, err_msg=what)


def test_every_reference_file_is_checked() -> None:
    assert len(NAMES) >= 8, NAMES
    for name in NAMES:
        ref = _load(name)
        assert ref["software"] == "metafor" and ref["version"] == "3.8.1"
        assert ref["provenance"] and ref["preparation"]
        assert set(ref["fits"]) == set(METHODS)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("name", NAMES)
def test_matches_converged_metafor(name: str, method: str) -> None:
    # rma(yi, vi, [mods = ~ ...,] data = dat, method = method,
    #     control = list(threshold = 1e-12, maxiter = 10000)); confint(res, control = list(tol = 1e-12, ...))
    ref = _load(name)["fits"][method]["tight"]
    fit = _fit(name, method)
    assert fit.converged
    assert ref["beta"]["names"][0] == "intrcpt" and fit.k == ref["k"]
    if ref["tau2"] < BOUNDARY_TAU2:
        assert fit.tau2 == 0.0 and fit.boundary
        assert abs(fit.tau2 - ref["tau2"]) < BOUNDARY_TAU2
        assert fit.i2 == 0.0 and fit.h2 == 1.0
    else:
        assert not fit.boundary
        _close(fit.tau2, ref["tau2"], "tau2")
        _close(fit.tau, ref["tau"], "tau")
        _close(fit.i2, ref["I2"], "I2")
        _close(fit.h2, ref["H2"], "H2")
    beta = ref["beta"]
    _close(fit.beta, beta["estimate"], "beta")
    _close(fit.beta_se, beta["se"], "se")
    _close(fit.z, beta["zval"], "z")
    _close(fit.p_value, beta["pval"], "p")
    _close(fit.ci[:, 0], beta["ci_lb"], "ci.lb")
    _close(fit.ci[:, 1], beta["ci_ub"], "ci.ub")
    _close(fit.se_tau2, ref["se_tau2"], "se.tau2")
    _close(fit.q, ref["QE"], "QE")
    assert fit.q_df == ref["QE_df"]
    _close(fit.q_p_value, ref["QEp"], "QEp")
    _close(fit.qm, ref["QM"], "QM")
    assert fit.qm_df == ref["QM_df"]
    _close(fit.qm_p_value, ref["QMp"], "QMp")
    np.testing.assert_allclose(fit.loglik, ref["logLik"], rtol=0, atol=ATOL_LOGLIK)
    np.testing.assert_allclose(fit.loglik_ml, ref["logLik_ML"], rtol=0, atol=ATOL_LOGLIK)
    np.testing.assert_allclose(fit.loglik_reml, ref["logLik_REML"], rtol=0, atol=ATOL_LOGLIK)
    # Q-profile interval; a bound at 0 is exactly 0 on both sides
    assert ref["tau2_ci_signs"] == {"lb": "", "ub": ""}  # no bound cut at metafor's search limit
    _close(fit.tau2_ci, [ref["tau2_ci"]["lb"], ref["tau2_ci"]["ub"]], "tau2 CI")
    _close(fit.tau_ci, [ref["tau_ci"]["lb"], ref["tau_ci"]["ub"]], "tau CI")


@pytest.mark.parametrize("method", ("REML", "ML"))
@pytest.mark.parametrize("name", NAMES)
def test_default_metafor_call_within_its_stopping_rule(name: str, method: str) -> None:
    # rma(yi, vi, [mods = ~ ...,] data = dat, method = method): Fisher scoring to |step| < 1e-5
    ref = _load(name)["fits"][method]["default"]
    assert abs(_fit(name, method).tau2 - ref["tau2"]) < ATOL_DEFAULT_TAU2


@pytest.mark.parametrize("name", NAMES)
def test_dl_equals_default_metafor_call(name: str) -> None:
    # rma(yi, vi, [mods = ~ ...,] data = dat, method = "DL"): closed form, no search
    ref = _load(name)["fits"]["DL"]["default"]
    fit = _fit(name, "DL")
    _close(fit.tau2, ref["tau2"], "tau2")
    _close(fit.se_tau2, ref["se_tau2"], "se.tau2")
    _close(fit.beta, ref["beta"]["estimate"], "beta")


@pytest.mark.parametrize("method", ("REML", "ML"))
@pytest.mark.parametrize("name", NAMES)
def test_estimate_is_a_maximum(name: str, method: str) -> None:
    """Independent of metafor: the score vanishes inside, is <= 0 at a boundary 0, and nearby is lower."""
    fit = _fit(name, method)
    ref = _load(name)
    data = ref["data"]
    X = np.column_stack([np.ones(len(data["yi"]))] + [np.asarray(data[m], float) for m in ref["moderators"]])
    y, v, reml = np.asarray(data["yi"]), np.asarray(data["sei"]) ** 2, method == "REML"
    score = WLS.at(y, v, X, fit.tau2).score(X, reml=reml)
    info = 0.5 * np.sum(1.0 / (v + fit.tau2) ** 2)  # the score's natural scale
    if fit.boundary:
        assert score <= 0.0
    else:
        assert abs(score) < 1e-9 * info * max(fit.tau2, 1.0)
    best = WLS.at(y, v, X, fit.tau2).loglik(v, X, fit.tau2, reml=reml)
    for t in (fit.tau2 * 0.99, fit.tau2 * 1.01 + 1e-6, 0.0):
        assert WLS.at(y, v, X, t).loglik(v, X, t, reml=reml) <= best + 1e-12


#: Three studies whose restricted likelihood has two maxima (found by a random search against a
#: fine grid; values rounded to 4 decimals, which keeps both): the global one at tau^2 = 1.09e-4,
#: a lower one at 2.1e-3. metafor's Fisher scoring, started at the Hedges estimate, stops at the
#: lower one; started near 0 it finds the global one.
TWO_MAXIMA: dict[str, Any] = {
    "y": [2.7496, 2.8789, 2.7338],
    "sei": [0.0096, 0.0578, 0.0093],
    "software": "metafor",
    "version": "3.8.1",
    "default": {"call": "rma(y, sei = s)", "tau2": 0.002142208569, "logLik": 2.47334043},
    "from_zero": {
        "call": "rma(y, sei = s, control = list(tau2.init = 1e-5, threshold = 1e-12, maxiter = 10000))",
        "tau2": 0.0001087954945,
        "logLik": 2.477146152,
    },
}


def test_the_global_maximum_of_a_two_peaked_likelihood() -> None:
    fit = fit_meta(TWO_MAXIMA["y"], TWO_MAXIMA["sei"], np.ones((3, 1)), ("Intercept",))
    best = TWO_MAXIMA["from_zero"]  # rma(y, sei = s, control = list(tau2.init = 1e-5, ...))
    # metafor's stored values have 10 significant digits, its tau^2 is good to its 1e-12 threshold
    np.testing.assert_allclose(fit.tau2, best["tau2"], rtol=1e-6)
    np.testing.assert_allclose(fit.loglik, best["logLik"], atol=ATOL_LOGLIK)
    assert fit.loglik > TWO_MAXIMA["default"]["logLik"] + 3e-3  # rma(y, sei = s): the lower peak


def test_eight_schools_is_reported_at_the_boundary() -> None:
    fit = fit_meta(
        EIGHT_SCHOOLS["y"], EIGHT_SCHOOLS["sigma"], np.ones((8, 1)), ("Intercept",), group="school"
    )
    assert fit.boundary and fit.tau2 == 0.0 and fit.converged
    text = str(fit)
    assert BOUNDARY_NOTE in text and "failed" not in text and "did not converge" not in text
    assert "Random-effects model (k = 8; tau^2 estimator: REML" in text
    assert "Q(df = 7) = 4.7071, p-val = 0.6957" in text
    table = fit.table()
    assert list(table.columns) == ["estimate", "std_error", "z", "p_value", "ci_lower", "ci_upper"]
    tau = table.loc["sd(Intercept|school)"]
    assert tau["estimate"] == 0.0 and np.isnan(tau["std_error"]) and tau["ci_lower"] == 0.0
    assert tau["ci_upper"] > 0.0  # Q-profile: tau up to about 16.4 is compatible with the data
    assert BOUNDARY_NOTE in fit._repr_html_()


def test_meta_regression_prints_like_metafor() -> None:
    fit = _fit("bcg_ablat", "REML")
    text = str(fit)
    assert text.startswith("Mixed-effects model (k = 13; tau^2 estimator: REML")
    assert "residual heterogeneity" in text and "QE(df = 11) = 30.7331, p-val = 0.0012" in text
    assert "QM(df = 1) = 16.3582, p-val < .0001" in text  # metafor's default call: 16.3571
    assert BOUNDARY_NOTE not in text
    lines = [line for line in text.splitlines() if line.startswith(("tau", "I^2", "H^2"))]
    assert len({line.index(":") for line in lines}) == len(lines)  # labels differ in length ...
    assert len({len(line.split(":")[0].ljust(60)) for line in lines}) == 1  # ... values aligned
    assert text.splitlines()[2].rstrip().endswith("(SE = 0.0590)")
    tau = fit.table().loc["sd(Intercept|study)"]
    np.testing.assert_allclose(tau["std_error"], fit.se_tau2 / (2 * fit.tau))
    assert "<table" in fit._repr_html_()


def test_level_sets_every_interval() -> None:
    wide, narrow = (
        _fit("bcg", "REML"),
        fit_meta(
            *(np.asarray(_load("bcg")["data"][c]) for c in ("yi", "sei")),
            np.ones((13, 1)),
            ("Intercept",),
            level=0.5,
        ),
    )
    half = st.norm.isf(0.25) * narrow.beta_se
    np.testing.assert_allclose(narrow.ci[:, 1] - narrow.beta, half)
    assert wide.tau2_ci[0] < narrow.tau2_ci[0] < narrow.tau2 < narrow.tau2_ci[1] < wide.tau2_ci[1]


def test_docstring_examples_run() -> None:
    for module in (meta, meta_tau2):
        failed, tried = doctest.testmod(module)
        assert tried > 0 and failed == 0, module.__name__


# ----- through the formula: y | se(s) ~ ... -----------------------------------------------------


def test_formula_dispatches_to_the_meta_fit() -> None:
    model = bx.hierarchical("y | se(sigma) ~ 1 + (1 | school)", EIGHT_SCHOOLS)
    direct = fit_meta(
        EIGHT_SCHOOLS["y"], EIGHT_SCHOOLS["sigma"], np.ones((8, 1)), ("Intercept",), group="school"
    )
    for kwargs, method in (
        ({}, "REML"),
        ({"reml": True}, "REML"),
        ({"reml": False}, "ML"),
        ({"method": "DL"}, "DL"),
    ):
        fit = model.fit_ml(**kwargs)
        assert isinstance(fit, MetaFit) and fit.method == method
    pd.testing.assert_frame_equal(model.fit_ml().table(), direct.table())
    assert list(model.fit_ml().estimates.index) == ["Intercept", "sd(Intercept|school)"]


def test_formula_meta_regression_matches_metafor() -> None:
    ref = _load("bcg_ablat")
    data = pd.DataFrame({k: ref["data"][k] for k in ("study", "yi", "sei", "ablat")})
    model = bx.hierarchical("yi | se(sei) ~ ablat + (1 | study)", data)
    fit = model.fit_ml(method="ML")
    tight = ref["fits"]["ML"]["tight"]
    _close(fit.estimates[["Intercept", "ablat"]], tight["beta"]["estimate"], "beta")
    _close(fit.estimates["sd(Intercept|study)"], tight["tau"], "tau")


def test_method_errors() -> None:
    meta_model = bx.hierarchical("y | se(sigma) ~ 1 + (1 | school)", EIGHT_SCHOOLS)
    with pytest.raises(ValueError, match=r"unknown method 'PM'; choose one of REML, ML, DL"):
        meta_model.fit_ml(method="PM")
    with pytest.raises(ValueError, match="either reml= or method="):
        meta_model.fit_ml(reml=True, method="ML")
    with pytest.raises(ValueError, match="unknown method 'reml'"):
        fit_meta([1.0, 2.0, 3.0], [1.0, 1.0, 1.0], np.ones((3, 1)), ("Intercept",), method="reml")
    data = EIGHT_SCHOOLS.assign(g=list("aabbccdd"))
    plain = bx.hierarchical("y ~ 1 + (1 | g)", data)
    with pytest.raises(ValueError, match=r"method='DL' chooses the tau\^2 estimator of a meta-analysis"):
        plain.fit_ml(method="DL")
    with pytest.raises(ValueError, match="exactly one random intercept per study"):
        bx.hierarchical("y | se(sigma) ~ 1", EIGHT_SCHOOLS).fit_ml()
    with pytest.raises(ValueError, match="one row per level of 'g'"):
        bx.hierarchical("y | se(sigma) ~ 1 + (1 | g)", data).fit_ml()


@pytest.mark.parametrize(
    ("y", "se", "X", "message"),
    [
        ([1.0, 2.0, 3.0], [1.0, 0.0, 1.0], np.ones((3, 1)), "positive and finite"),
        ([1.0, 2.0], [1.0, 1.0], np.ones((2, 2)), "tau\\^2 needs k > p"),
        ([1.0, 2.0, 3.0], [1.0, 1.0, 1.0], np.ones((3, 2)), "linearly dependent"),
        ([1.0, np.nan, 3.0], [1.0, 1.0, 1.0], np.ones((3, 1)), "must be finite"),
    ],
)
def test_bad_input(y: list[float], se: list[float], X: np.ndarray, message: str) -> None:
    names = tuple(f"x{j}" for j in range(X.shape[1]))
    with pytest.raises(ValueError, match=message):
        fit_meta(y, se, X, names)


@pytest.mark.slow
def test_compare_puts_the_meta_fit_beside_the_posterior() -> None:
    model = bx.hierarchical("y | se(sigma) ~ 1 + (1 | school)", EIGHT_SCHOOLS)
    fit = model.fit(draws=200, tune=300, chains=2, random_seed=8, progressbar=False)
    table = fit.compare()
    assert table.attrs["reference"] == "ml (REML)"
    ml = model.fit_ml().table()
    for name in ("Intercept", "sd(Intercept|school)"):
        assert table.loc[name, "estimate"] == ml.loc[name, "estimate"]
    assert np.isfinite(table.loc["Intercept", "diff_sd"])
    assert table.loc["sd(Intercept|school)", "ci_upper"] == ml.loc["sd(Intercept|school)", "ci_upper"]
    # DerSimonian-Laird beside the same posterior; method= belongs to the meta-analysis fit only
    dl = fit.compare(method="DL")
    assert dl.attrs["reference"] == "ml (DL)"
    assert dl.loc["Intercept", "estimate"] == model.fit_ml(method="DL").table().loc["Intercept", "estimate"]
    with pytest.raises(ValueError, match="method='DL' chooses the meta-analysis estimator"):
        fit.compare("statsmodels", method="DL")
    # prob= draws tau's Q-profile interval at that level too
    narrow = fit.compare(prob=0.8)
    ml80 = fit_meta_design(model.design, model.design.known_sd, method="REML", level=0.8).table()
    assert narrow.loc["sd(Intercept|school)", "ci_upper"] == ml80.loc["sd(Intercept|school)", "ci_upper"]
    assert narrow.loc["Intercept", "ci_upper"] < table.loc["Intercept", "ci_upper"]
