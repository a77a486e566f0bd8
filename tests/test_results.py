"""Results objects: names, shapes and the advice printed when a check fails."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr

import bayesmix as bx
from bayesmix.results.diagnostics import diagnose

NAMES = [
    "Intercept",
    "Days",
    "sd(Intercept|Subject)",
    "sd(Days|Subject)",
    "corr(Intercept,Days|Subject)",
    "sigma",
]


@pytest.mark.slow
def test_summary_and_compare_use_public_names(sleep_mixed_fit):
    summary = sleep_mixed_fit.summary()
    assert list(summary.index) == NAMES
    assert list(summary.columns) == [
        "mean",
        "sd",
        "lower",
        "upper",
        "mcse_mean",
        "ess_bulk",
        "ess_tail",
        "r_hat",
    ]
    table = sleep_mixed_fit.compare()
    assert list(table.index) == NAMES
    assert {"estimate", "std_error", "ci_lower", "ci_upper", "diff_sd"} <= set(table.columns)
    np.testing.assert_allclose(table["diff_sd"], (table["mean"] - table["estimate"]) / table["sd"])
    assert list(sleep_mixed_fit.model.fit_ml().estimates.index) == NAMES


@pytest.mark.slow
def test_statsmodels_reference_agrees_with_own_reml(sleep_mixed_fit):
    """Two independent REML implementations; lme4 and statsmodels agree to ~1e-5 on sleepstudy."""
    own = sleep_mixed_fit.compare("ml")
    sm = sleep_mixed_fit.compare("statsmodels")
    np.testing.assert_allclose(sm["estimate"], own["estimate"], rtol=1e-4)


@pytest.mark.slow
def test_compare_draws_both_intervals_at_prob(sleep_mixed_fit):
    """prob= sets the posterior interval and the frequentist one: 90% Wald intervals on each side."""
    z90, z95 = 1.6448536269514722, 1.959963984540054  # norm.isf(0.05), norm.isf(0.025)
    wide, narrow = sleep_mixed_fit.compare(prob=0.95), sleep_mixed_fit.compare(prob=0.9)
    assert (narrow["upper"] - narrow["lower"] < wide["upper"] - wide["lower"]).all()
    for table in (narrow, sleep_mixed_fit.compare("statsmodels", prob=0.9)):
        half = (table.loc["Days", "ci_upper"] - table.loc["Days", "ci_lower"]) / 2
        assert half == pytest.approx(z90 * table.loc["Days", "std_error"], rel=1e-12)
    # a SD's interval is symmetric on the log scale, a correlation's on the atanh scale
    for name, g in (("sd(Days|Subject)", np.log), ("corr(Intercept,Days|Subject)", np.arctanh)):
        w95 = g(wide.loc[name, "ci_upper"]) - g(wide.loc[name, "ci_lower"])
        w90 = g(narrow.loc[name, "ci_upper"]) - g(narrow.loc[name, "ci_lower"])
        assert w90 / w95 == pytest.approx(z90 / z95, rel=1e-9)


def test_wald_intervals_redraw_the_engines_own_95_percent_intervals(sleep):
    """At 95% the general formula gives the REML and Laplace fits' stored intervals exactly."""
    from bayesmix.compare.lmm_inference import wald_intervals

    gaussian = bx.mixed("Reaction ~ Days + (Days | Subject)", sleep).fit_ml()
    counts = sleep.assign(n=np.round(sleep["Reaction"] / 25).astype(int))
    poisson = bx.hierarchical("n ~ Days + (1 | Subject)", counts, family="poisson").fit_ml()
    for ml in (gaussian, poisson):
        table = ml.result.table()
        ci = wald_intervals(table["estimate"], table["std_error"], ml.result.fixed_names, 0.95)
        np.testing.assert_allclose(ci["lower"], table["ci_lower"], rtol=1e-12)
        np.testing.assert_allclose(ci["upper"], table["ci_upper"], rtol=1e-12)
    with pytest.raises(ValueError, match="prob must lie strictly between 0 and 1"):
        gaussian.table(1.5)


@pytest.mark.slow
def test_idata_has_levels_as_coordinates(sleep_mixed_fit, sleep):
    post = sleep_mixed_fit.idata["posterior"]
    assert list(post["re_Subject"].dims) == ["chain", "draw", "Subject", "Subject__term"]
    assert sorted(post["Subject"].values.tolist()) == sorted(sleep["Subject"].unique().tolist())
    assert list(post["beta"].coords["coef"].values) == ["Intercept", "Days"]


@pytest.mark.slow
def test_random_effects_and_shrinkage(sleep_mixed_fit):
    re = sleep_mixed_fit.random_effects()
    assert re.shape == (36, 4) and re.index.names == ["factor", "level", "term"]
    # the posterior means of the random effects are close to lme4's conditional modes (flat fixed priors)
    ml = sleep_mixed_fit.model.fit_ml().random_effects()
    gap = (re["mean"] - ml["mode"]).abs() / re["sd"]
    assert gap.max() < 0.5, gap.sort_values().tail()
    shrink = sleep_mixed_fit.shrinkage("Subject")
    assert shrink.shape[0] == 36
    assert (shrink["n"] == 10).all()
    # partial pooling lies between no pooling and complete pooling for most subjects
    assert (shrink["shrinkage"].between(0, 1)).mean() > 0.7
    with pytest.raises(ValueError, match="no grouping factor 'Days' in this model; factors: \\['Subject'\\]"):
        sleep_mixed_fit.shrinkage("Days")


@pytest.mark.slow
def test_priors_recorded(sleep_mixed_fit):
    priors = sleep_mixed_fit.priors()
    assert priors.loc["Intercept", "prior"] == "Flat()"
    assert priors.loc["corr(Subject)", "prior"] == "LKJ(2)"
    assert (priors["source"] == "default").all()


def _fake_idata(rng, *, shift: float, diverging: int, draws: int = 200) -> xr.DataTree:
    chains = 4
    theta = rng.normal(size=(chains, draws)) + shift * np.arange(chains)[:, None]
    div = np.zeros((chains, draws), bool)
    div.flat[:diverging] = True
    energy = rng.normal(size=(chains, draws)).cumsum(axis=1)  # a random walk: E-BFMI far below 0.3
    return xr.DataTree.from_dict(
        {
            "posterior": xr.Dataset({"theta": (("chain", "draw"), theta)}),
            "sample_stats": xr.Dataset(
                {
                    "diverging": (("chain", "draw"), div),
                    "energy": (("chain", "draw"), energy),
                    "maxdepth_reached": (("chain", "draw"), np.zeros((chains, draws), bool)),
                }
            ),
        }
    )


def test_diagnostics_report_problems_with_advice():
    diag = diagnose(_fake_idata(np.random.default_rng(0), shift=3.0, diverging=5))
    assert not diag.ok
    text = str(diag)
    assert "R-hat up to" in text and "chains disagree" in text
    assert "effective sample size" in text
    assert "5 divergent transitions" in text and "target_accept" in text
    assert "E-BFMI below 0.3" in text
    page = diag._repr_html_()
    assert "&lt; 400" in page and "< 400" not in page


def test_diagnostics_pass_on_clean_draws():
    rng = np.random.default_rng(1)
    # 4 x 4000 independent draws: R-hat within 1.01 with overwhelming probability
    idata = _fake_idata(rng, shift=0.0, diverging=0, draws=4000)
    energy = rng.normal(size=(4, 4000))  # independent energies: E-BFMI near 2
    idata["sample_stats"]["energy"] = xr.DataArray(energy, dims=("chain", "draw"))
    diag = diagnose(idata)
    assert diag.ok, str(diag)
    assert "All checks passed" in str(diag)


def test_dropped_rows_recorded_on_fit_spec(sleep):
    df = sleep.copy()
    df.loc[[3, 40], "Reaction"] = np.nan
    with pytest.warns(bx.DroppedRowsWarning):
        model = bx.mixed("Reaction ~ Days + (Days | Subject)", df, missing="drop")
    assert list(pd.Index(model.spec.dropped)) == [3, 40]
