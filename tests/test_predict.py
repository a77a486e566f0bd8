"""Predictions, posterior predictive checks and PSIS-LOO of hierarchical fits (bayesmix.results.predict)."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pymc as pm
import pytest
import xarray as xr
from scipy import special, stats

import bayesmix as bx
from bayesmix.results.predict import log_likelihood

TINY = {"draws": 200, "tune": 200, "chains": 2, "progressbar": False}
# Bound on |z| of a Monte Carlo comparison: each check has a false-alarm rate of 6e-5 (two-sided).
Z_MC = 4.0
PARETO = r"Pareto"  # bayesmix's "... have a Pareto k above ..." and arviz-stats' own (mixture fits)


# ----- data and fits ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def gaussian_data() -> tuple[pd.DataFrame, pd.DataFrame]:
    """y = 1 + 0.5 x + 0.8 [c = b] + (b0 + b1 x)[g] + a[h] + e; h has a known K with a level without data."""
    rng = np.random.default_rng(11)
    n_groups, per = 10, 8
    g = np.repeat(np.arange(n_groups), per)
    x = rng.normal(size=g.size)
    c = rng.choice(["a", "b", "c"], size=g.size)
    h = rng.integers(0, 4, size=g.size)
    u = rng.multivariate_normal([0, 0], [[1.0, 0.3], [0.3, 0.5]], size=n_groups)
    a = rng.normal(0, 0.5, size=5)
    y = 1 + 0.5 * x + (c == "b") * 0.8 + u[g, 0] + u[g, 1] * x + a[h] + rng.normal(0, 0.5, size=g.size)
    data = pd.DataFrame({"y": y, "x": x, "c": c, "g": [f"g{k}" for k in g], "h": [f"h{k}" for k in h]})
    data.index = [f"row{i}" for i in range(len(data))]
    labels = [f"h{k}" for k in range(5)]  # h4 has no data
    K = pd.DataFrame(0.5 * np.eye(5) + 0.5, index=labels, columns=labels)
    return data, K


@pytest.fixture(scope="module")
def gaussian_fit(gaussian_data: tuple[pd.DataFrame, pd.DataFrame]) -> bx.Fit:
    data, K = gaussian_data
    model = bx.hierarchical("y ~ x + c + (x | g) + (1 | h)", data, covariances={"h": K})
    return model.fit(random_seed=3, **TINY)


@pytest.fixture(scope="module")
def counts() -> pd.DataFrame:
    """Poisson counts with exposure and one outlier (so that PSIS-LOO flags it: a high Pareto k)."""
    rng = np.random.default_rng(5)
    g = np.repeat(np.arange(12), 10)
    x = rng.normal(size=g.size)
    exposure = rng.uniform(1, 3, size=g.size)
    y = rng.poisson(exposure * np.exp(0.3 + 1.0 * x + rng.normal(0, 0.4, size=12)[g]))
    y[np.argmin(np.abs(x))] = 25  # where both models expect about 2
    return pd.DataFrame({"y": y, "x": x, "exposure": exposure, "g": [f"g{k}" for k in g]})


@pytest.fixture(scope="module")
def poisson_fits(counts: pd.DataFrame) -> dict[str, bx.Fit]:
    """The true model and one without its covariate."""
    return {
        "with x": bx.hierarchical("y ~ x + offset(log(exposure)) + (1 | g)", counts, family="poisson").fit(
            random_seed=1, **TINY
        ),
        "without x": bx.hierarchical("y ~ 1 + offset(log(exposure)) + (1 | g)", counts, family="poisson").fit(
            random_seed=1, **TINY
        ),
    }


@pytest.fixture(scope="module")
def binomial() -> tuple[pd.DataFrame, bx.Fit]:
    rng = np.random.default_rng(7)
    g = np.repeat(np.arange(10), 8)
    x = rng.normal(size=g.size)
    n = rng.integers(1, 12, size=g.size)
    s = rng.binomial(n, special.expit(0.3 + 0.8 * x + rng.normal(0, 0.5, size=10)[g]))
    data = pd.DataFrame({"s": s, "n": n, "x": x, "g": [f"g{k}" for k in g]})
    fit = bx.hierarchical("s | trials(n) ~ x + (1 | g)", data, family="binomial").fit(random_seed=2, **TINY)
    return data, fit


def _fixed_by_hand(post: xr.Dataset, data: pd.DataFrame) -> xr.DataArray:
    """Intercept + x + treatment-coded c, from the posterior draws and the data columns."""
    beta = {name: post["beta"].sel(coef=name, drop=True) for name in ("Intercept", "x", "c[b]", "c[c]")}
    obs = xr.DataArray(data.index.to_numpy(), dims="obs")
    col = {k: xr.DataArray(data[k].to_numpy(), dims="obs", coords={"obs": obs}) for k in ("x", "c")}
    return (
        beta["Intercept"]
        + beta["x"] * col["x"]
        + beta["c[b]"] * (col["c"] == "b")
        + beta["c[c]"] * (col["c"] == "c")
    )


# ----- predictions on the fitting data and on new data --------------------------------------------


@pytest.mark.slow
def test_link_on_fitting_data_is_eta_by_hand(gaussian_fit, gaussian_data):
    data, _ = gaussian_data
    post = gaussian_fit.posterior
    obs = xr.DataArray(data.index.to_numpy(), dims="obs")
    re_g = post["re_g"].sel(g=xr.DataArray(data["g"].to_numpy(), dims="obs", coords={"obs": obs}))
    re_h = post["re_h"].sel(h=xr.DataArray(data["h"].to_numpy(), dims="obs", coords={"obs": obs}))
    x = xr.DataArray(data["x"].to_numpy(), dims="obs", coords={"obs": obs})
    eta = (
        _fixed_by_hand(post, data)
        + re_g.sel(g__term="Intercept", drop=True)
        + re_g.sel(g__term="x", drop=True) * x
        + re_h.sel(h__term="Intercept", drop=True)
    ).transpose("chain", "draw", "obs")

    fitted = gaussian_fit.predict(kind="link")
    assert fitted.dims == ("chain", "draw", "obs") and fitted.shape == (2, 200, len(data))
    np.testing.assert_array_equal(fitted["obs"], gaussian_fit.idata["observed_data"]["obs"])
    np.testing.assert_allclose(fitted.values, eta.values, rtol=1e-12, atol=1e-12)
    # the same rows as new data: the same numbers, labelled by the data's index
    again = gaussian_fit.predict(data.drop(columns="y").assign(unused=1.0), kind="link", random_seed=1)
    assert list(again["obs"].values) == list(data.index)
    np.testing.assert_allclose(again.values, fitted.values, rtol=1e-12, atol=1e-12)
    # gaussian: the mean is the linear predictor
    np.testing.assert_allclose(gaussian_fit.predict(kind="mean").values, fitted.values)


@pytest.mark.slow
def test_poisson_mean_is_exp_eta_with_the_offset_of_new_data(poisson_fits, counts):
    fit = poisson_fits["with x"]
    eta = fit.predict(kind="link")
    np.testing.assert_allclose(fit.predict(kind="mean").values, np.exp(eta.values), rtol=1e-12)
    # the offset is evaluated on the new rows: doubling the exposure adds log 2 to eta
    new = counts.drop(columns="y").assign(exposure=2 * counts["exposure"])
    # atol: eta sums O(1) terms, so rounding leaves ~1e-16 absolute error, relative error near eta = 0
    np.testing.assert_allclose(
        fit.predict(new, kind="link").values, eta.values + np.log(2), rtol=1e-12, atol=1e-12
    )


@pytest.mark.slow
def test_new_levels_carry_the_population_variance(gaussian_fit):
    """Unseen levels of (x | g): their effects (b0, b1) have the posterior's Sigma of g.

    With L new levels and S draws, b_sl ~ N(0, Sigma_s). Given the Sigma draws,
    mean_{s,l}(b_0 b_1) estimates mean_s(Sigma_s[0, 1]) with variance
    mean_s(Sigma_00 Sigma_11 + Sigma_01^2) / (S L) (and 2 Sigma_00^2 for b_0^2), so each
    comparison is a z-test at Z_MC. The SD of a new level's effect is sqrt(E[sd^2]): the
    posterior mean of sd plus its posterior variance, not E[sd] itself.
    """
    n_new = 50
    new = pd.DataFrame(
        {
            "x": np.tile([0.0, 1.0], n_new),
            "c": "a",
            "g": np.repeat([f"new{k}" for k in range(n_new)], 2),
            "h": "h0",
        }
    )
    post = gaussian_fit.posterior
    eta = gaussian_fit.predict(new, kind="link", random_seed=4).values.reshape(-1, n_new, 2)
    fixed = _fixed_by_hand(post, new).values.reshape(-1, n_new, 2)
    known = post["re_h"].sel(h="h0", h__term="Intercept").values.reshape(-1, 1, 1)
    effect = eta - fixed - known
    b0, b1 = effect[:, :, 0], effect[:, :, 1] - effect[:, :, 0]

    sd = post["sd_g"].values.reshape(-1, 2)
    rho = post["corr_g"].sel(g__corr_term="Intercept", g__corr_term_="x").values.reshape(-1)
    s00, s11, s01 = sd[:, 0] ** 2, sd[:, 1] ** 2, rho * sd[:, 0] * sd[:, 1]
    size = b0.size
    for name, estimate, target, variance in [
        ("var(b0)", (b0**2).mean(), s00.mean(), (2 * s00**2).mean() / size),
        ("var(b1)", (b1**2).mean(), s11.mean(), (2 * s11**2).mean() / size),
        ("cov(b0, b1)", (b0 * b1).mean(), s01.mean(), (s00 * s11 + s01**2).mean() / size),
    ]:
        z = (estimate - target) / np.sqrt(variance)
        assert abs(z) < Z_MC, f"{name}: {estimate:.4f} against {target:.4f} (z = {z:.2f})"
    # independent effects for different new levels
    assert np.corrcoef(b0[:, 0], b0[:, 1])[0, 1] < 0.2

    population = gaussian_fit.predict(new, kind="link", include_new_levels=False)
    np.testing.assert_allclose(population.values.reshape(-1, n_new, 2), fixed + known, rtol=1e-12, atol=1e-12)


@pytest.mark.slow
def test_known_covariance_levels_and_reproducibility(gaussian_fit, gaussian_data):
    data, _ = gaussian_data
    row = data.drop(columns="y").iloc[[0, 1]].assign(h="h4")  # h4 is in K but had no data
    one = gaussian_fit.predict(row, kind="link", random_seed=1)
    two = gaussian_fit.predict(row, kind="link", random_seed=2)
    np.testing.assert_array_equal(one.values, two.values)  # nothing random: h4's draws exist
    base = gaussian_fit.predict(row.assign(h=data["h"].iloc[[0, 1]]), kind="link")
    post = gaussian_fit.posterior["re_h"].sel(h__term="Intercept", drop=True)
    shift = (post.sel(h="h4", drop=True) - post.sel(h=data["h"].iloc[0], drop=True)).values
    np.testing.assert_allclose(one.values[:, :, 0] - base.values[:, :, 0], shift, rtol=1e-10, atol=1e-12)

    new = row.assign(g="unseen")
    first = gaussian_fit.predict(new, kind="response", random_seed=9)
    np.testing.assert_array_equal(
        first.values, gaussian_fit.predict(new, kind="response", random_seed=9).values
    )
    assert not np.array_equal(first.values, gaussian_fit.predict(new, kind="response", random_seed=10).values)


@pytest.mark.slow
def test_binomial_mean_and_response_respect_the_trials(binomial):
    data, fit = binomial
    new = (
        data.drop(columns="s")
        .iloc[:6]
        .assign(g=["g0", "new1", "new2", "g3", "new1", "g9"], n=[1, 2, 5, 10, 20, 40])
    )
    p = special.expit(fit.predict(new, kind="link", random_seed=1).values)
    mean = fit.predict(new, kind="mean", random_seed=1)
    np.testing.assert_allclose(mean.values, p * new["n"].to_numpy(), rtol=1e-12)
    draws = fit.predict(new, kind="response", random_seed=1).values
    assert draws.min() >= 0 and (draws <= new["n"].to_numpy()).all()
    assert np.array_equal(draws, np.round(draws))
    with pytest.raises(
        ValueError, match=r"lack the column\(s\) \['n'\].*number of trials, from the column\(s\) \['n'\]"
    ):
        fit.predict(new.drop(columns="n"))


@pytest.mark.slow
def test_prediction_errors(gaussian_fit, gaussian_data):
    data, _ = gaussian_data
    new = data.drop(columns="y").iloc[:4].copy()
    with pytest.raises(ValueError, match=r"lack the column\(s\) \['x'\].*columns present: \['c', 'g', 'h'\]"):
        gaussian_fit.predict(new.drop(columns="x"))
    with pytest.raises(ValueError, match=r"'x': 2 rows \(first labels 'row0', 'row2'\)"):
        gaussian_fit.predict(new.assign(x=[np.nan, 1.0, np.inf, 0.0]))
    with pytest.raises(ValueError, match=r"levels \(zz\) in 'c'.*only take the levels it had"):
        gaussian_fit.predict(new.assign(c=["a", "zz", "b", "b"]))
    with pytest.raises(
        ValueError, match=r"1 level\(s\) of 'h' that its known covariance K does not have.*'h9'"
    ):
        gaussian_fit.predict(new.assign(h="h9"))
    with pytest.raises(ValueError, match="kind must be one of"):
        gaussian_fit.predict(new, kind="expected")
    with pytest.raises(TypeError, match="pandas DataFrame"):
        gaussian_fit.predict(new.to_dict())


# ----- posterior predictive checks ----------------------------------------------------------------


@pytest.mark.slow
def test_ppc_adds_the_posterior_predictive_group(poisson_fits):
    fit = poisson_fits["with x"]
    group = fit.ppc(random_seed=1)
    assert "posterior_predictive" in fit.idata.children
    draws = fit.idata["posterior_predictive"]["y"]
    observed = fit.idata["observed_data"]["y"]
    assert draws.dims == ("chain", "draw", "obs") and draws.shape == (2, 200, observed.size)
    np.testing.assert_array_equal(draws["obs"], observed["obs"])
    assert draws.dtype == observed.dtype and int(draws.min()) >= 0
    np.testing.assert_array_equal(group["y"].values, draws.values)
    np.testing.assert_array_equal(fit.ppc(random_seed=1)["y"].values, draws.values)
    plot = fit.plot_ppc()
    assert type(plot).__name__ == "PlotCollection"
    plt.close("all")


# ----- PSIS-LOO and model comparison --------------------------------------------------------------


@pytest.mark.slow
def test_log_likelihood_is_the_models(poisson_fits, gaussian_fit, gaussian_data):
    fit = poisson_fits["with x"]
    reference = pm.compute_log_likelihood(
        fit.idata, model=fit.model.pymc_model, extend_inferencedata=False, progressbar=False
    )["y"]
    np.testing.assert_allclose(log_likelihood(fit).values, reference.values, rtol=1e-10)
    # a model with an LKJ correlation (where PyMC's compute_log_likelihood fails): scipy's normal density
    data, _ = gaussian_data
    eta = gaussian_fit.predict(kind="link").values
    sigma = gaussian_fit.posterior["sigma"].values[:, :, None]
    expected = stats.norm.logpdf(data["y"].to_numpy(), eta, sigma)
    np.testing.assert_allclose(log_likelihood(gaussian_fit).values, expected, rtol=1e-10)


@pytest.mark.slow
def test_loo_and_compare_fits(poisson_fits, counts):
    fit = poisson_fits["with x"]
    with pytest.warns(UserWarning, match=r"\d+ of 120 observations have a Pareto k above") as record:
        loo = fit.loo(pointwise=True)
    assert np.isfinite(loo.elpd) and np.isfinite(loo.se) and loo.se > 0
    assert np.isfinite(loo.elpd_i.values).all() and loo.elpd_i.size == len(counts)
    high = int((loo.pareto_k.values > loo.good_k).sum())
    assert high >= 1 and str(record[0].message).startswith(f"{high} of 120")
    assert loo.pareto_k.values[np.argmax(counts["y"].to_numpy())] > loo.good_k  # the outlier
    with pytest.warns(UserWarning, match=PARETO):
        summary = fit.loo()
    assert summary.elpd == loo.elpd and summary.elpd_i is None

    mixture = bx.fmm(1, "y ~ x + np.log(exposure)", counts, family="poisson")
    mixture_fit = mixture.fit(ml=mixture.fit_ml(n_starts=5), random_seed=1, **TINY)
    with pytest.warns(UserWarning, match=PARETO):
        table = bx.compare_fits({**poisson_fits, "mixture": mixture_fit})
    assert table.index[0] == "with x"
    assert list(table.index).index("with x") < list(table.index).index("without x")
    # the SE of the paired difference, from the pointwise values (positional: the fits share the rows)
    with pytest.warns(UserWarning, match=PARETO):
        other = poisson_fits["without x"].loo(pointwise=True)
    diff = loo.elpd_i.values - other.elpd_i.values
    assert table.loc["without x", "elpd_diff"] == pytest.approx(-diff.sum(), rel=1e-10)  # worse: negative
    assert table.loc["without x", "dse"] == pytest.approx(np.sqrt(diff.size) * diff.std(ddof=0), rel=1e-10)
    assert -table.loc["without x", "elpd_diff"] > 3 * table.loc["without x", "dse"]


@pytest.mark.slow
def test_compare_fits_refuses_different_data(poisson_fits, binomial, gaussian_fit):
    with pytest.raises(ValueError, match=r"fitted to different data \(120 and 80 observations\)"):
        bx.compare_fits({"poisson": poisson_fits["with x"], "gaussian": gaussian_fit})
    with pytest.raises(ValueError, match=r"their response values differ \(first at position 0\)"):
        bx.compare_fits({"binomial": binomial[1], "gaussian": gaussian_fit})
    with pytest.raises(ValueError, match="two or more fits"):
        bx.compare_fits({"one": gaussian_fit})
    with pytest.raises(TypeError, match=r"fits\['b'\] must be a bayesmix Fit"):
        bx.compare_fits({"a": gaussian_fit, "b": "fit"})
