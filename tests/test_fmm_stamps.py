"""The 1872 Hidalgo stamps against Stata's ``fmm`` (FMM manual, intro entry), by ML and by NUTS.

Reference: ``bayesmix/datasets/data/stata_fmm_stamps.json``, read with
``bx.datasets.reference("stata_fmm_stamps")`` (``source``, ``software``, ``call`` inside); the
demo prints the same comparison.

Precision. Stata prints estimates with 7 decimals (``.1942968``) or, below 1e-4, with 3 significant
digits (``1.71e-06``). An estimate is compared to one unit of its last printed digit
(:func:`_unit`): half a unit for the rounding, half a unit for where Stata's Newton iterations
stopped (its default stops once the scaled gradient g'H^-1 g is below 1e-5, which leaves the last of
7 decimals uncertain; the class-3 logit is 0.55 units off). Stata's standard errors come from its
own derivatives of the log-likelihood, ours from the analytic Hessian: they get 1e-4 relative more.

Float storage. Stata keeps ``thickness`` as float32. The printed digits are those of the float32
values, so the comparisons at printed precision use the data cast to float32 and back; the
float64 data give the same maximum moved by about 2e-6 relative (logL 1518.848325 instead of
1518.848385, which Stata prints as 1518.8484).
"""

from __future__ import annotations

import hashlib
import math
from importlib import resources
from typing import Any

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from scipy import special, stats

import bayesmix as bx
from bayesmix.compare.fmm import CloseMaximaWarning, MixtureMLFit
from bayesmix.results.modes import SEPARATION, chain_modes

#: family-wise false-alarm rate of each Bayes-vs-ML check (Bonferroni over the scalars it checks)
ALPHA = 0.01
#: the float64 data's maximum (bayesmix; Stata's 1518.8484 is the float32 data's)
FLOAT64_LOGLIK = 1518.848325
#: the stamps are recorded to 0.001 mm; a class with SD below a tenth of that has collapsed onto ties
RESOLUTION = 0.001


def _stata() -> dict[str, Any]:
    return bx.datasets.reference("stata_fmm_stamps")


def _unit(printed: float) -> float:
    """One unit of the last digit Stata prints: 7 decimals, or 3 significant digits below 1e-4."""
    if printed != 0 and abs(printed) < 1e-4:
        return 10.0 ** (math.floor(math.log10(abs(printed))) - 2)
    return 1e-7


def _assert_printed(actual: float, printed: float, *, se: bool = False, extra: float = 0.0) -> None:
    """``actual`` is within one unit of Stata's last printed digit; standard errors get 1e-4 relative more."""
    tol = _unit(printed) + (1e-4 * abs(printed) if se else 0.0) + extra
    assert abs(actual - printed) <= tol, f"{actual!r} vs Stata's {printed!r} (tolerance {tol:.3g})"


def _first_rows(thickness: pd.Series, values: np.ndarray) -> np.ndarray:
    """Position of the first stamp with each listed thickness (rows are equal within a thickness)."""
    return np.array(
        [np.flatnonzero(np.isclose(thickness.to_numpy(), v, rtol=0, atol=1e-9))[0] for v in values]
    )


def _component_sds(ml: MixtureMLFit, lognormal: bool) -> np.ndarray:
    """SD of each class's distribution of thickness (mm) at a maximum."""
    est = ml.estimates
    mu = np.array([est[f"Intercept[{j}]"] for j in ml.spec.classes])
    sigma = np.array([est[f"sigma[{j}]"] for j in ml.spec.classes])
    if lognormal:
        return np.exp(mu + sigma**2 / 2) * np.sqrt(np.expm1(sigma**2))
    return sigma


@pytest.fixture(scope="module")
def float32_ml(stamps: pd.DataFrame) -> MixtureMLFit:
    """The normal k = 3 mixture refitted on the thickness values Stata holds (float32)."""
    data = stamps.assign(thickness=stamps["thickness"].astype(np.float32).astype(np.float64))
    return bx.fmm(3, "thickness ~ 1", data).fit_ml()


# ----- provenance -------------------------------------------------------------------------------


def test_reference_names_the_shipped_data(stamps: pd.DataFrame) -> None:
    ref = _stata()
    assert {"source", "software", "version", "data"} <= set(ref)
    path = resources.files("bayesmix.datasets").joinpath("data", "stamps.csv")
    assert hashlib.sha256(path.read_bytes()).hexdigest() == ref["data"]["sha256"]
    assert len(stamps) == ref["normal_k3"]["nobs"] == 485
    assert ref["normal_k3"]["call"] == "fmm 3: regress thickness"


# ----- ML, normal k = 3 ----------------------------------------------------------------------------


def test_ml_normal_loglik_on_float64_data(stamps: pd.DataFrame, stamps_normal_ml: MixtureMLFit) -> None:
    ml = stamps_normal_ml
    assert ml.loglik == pytest.approx(FLOAT64_LOGLIK, abs=1e-5)  # 1e-5: the reference's last digit
    # the reported value is the mixture likelihood at the reported estimates (scipy, rtol 1e-10)
    est, y = ml.estimates, stamps["thickness"].to_numpy()
    weights = ml.class_probabilities()["probability"].to_numpy()
    dens = sum(
        w * stats.norm.pdf(y, est[f"Intercept[{j}]"], est[f"sigma[{j}]"])
        for w, j in zip(weights, "123", strict=True)
    )
    assert np.log(dens).sum() == pytest.approx(ml.loglik, rel=1e-10)
    # and it does not round to Stata's printed 1518.8484: Stata fitted other (float32) numbers
    assert abs(ml.loglik - _stata()["normal_k3"]["loglik"]) > 0.5e-4


def test_ml_normal_matches_stata_on_float32_data(float32_ml: MixtureMLFit, stamps_normal_ml: MixtureMLFit):
    """``fmm 3: regress thickness`` then ``estat lcprob``: every printed number."""
    ref, ml = _stata()["normal_k3"], float32_ml
    # half a unit of the 4th decimal: the log-likelihood is flat at the maximum, so only rounding
    assert ml.loglik == pytest.approx(ref["loglik"], abs=0.5e-4)
    est, se, table = ml.estimates, ml.std_errors, ml.table()
    # Point estimates: one printed unit plus a millionth of a standard error. Two optimizers
    # stop at slightly different points of a flat maximum: the search (standardized units since
    # issue 7) and Stata's each locate it only to their convergence tolerance; a class logit
    # moved 1.3e-7 (0.4e-6 of its SE of ~0.34) when the search's units changed.
    for j, row in ref["class_logit"].items():
        _assert_printed(est[f"class[{j}]:Intercept"], row["coef"], extra=1e-6 * row["se"])
        _assert_printed(se[f"class[{j}]:Intercept"], row["se"], se=True)
    for j, row in ref["mean"].items():
        _assert_printed(est[f"Intercept[{j}]"], row["coef"], extra=1e-6 * row["se"])
        _assert_printed(se[f"Intercept[{j}]"], row["se"], se=True)
    z = stats.norm.isf(0.025)
    for j, row in ref["variance"].items():
        # Stata reports variances: sigma^2 with SE 2 sigma SE(sigma) (delta method) and a log-scale
        # interval, i.e. the square of our log-scale interval for sigma
        sigma, sd_sigma = est[f"sigma[{j}]"], se[f"sigma[{j}]"]
        _assert_printed(sigma**2, row["coef"])
        _assert_printed(2 * sigma * sd_sigma, row["se"], se=True)
        lower, upper = table.loc[f"sigma[{j}]", ["ci_lower", "ci_upper"]] ** 2
        # an interval end moves by z * 2 * (relative SE tolerance 1e-4) * SE(log variance) of itself
        for end, printed in zip((lower, upper), row["ci95"], strict=True):
            _assert_printed(end, printed, extra=end * z * 2e-4 * sd_sigma / sigma)
    probs = ml.class_probabilities()
    for j, row in ref["class_probability"].items():
        p, sd = probs.loc[j, "probability"], probs.loc[j, "std_error"]
        _assert_printed(p, row["margin"])
        _assert_printed(sd, row["se"], se=True)
        # logit-scale interval: an end moves by z * (1e-4 * SE) through the SE tolerance
        for end, printed in zip(probs.loc[j, ["ci_lower", "ci_upper"]], row["ci95"], strict=True):
            _assert_printed(end, printed, extra=z * 1e-4 * sd)
    # float64 data: the same maximum, moved by float32 rounding of the data only (~2e-6 relative)
    np.testing.assert_allclose(stamps_normal_ml.estimates, est, rtol=1e-4)


def test_ml_normal_posterior_class_table(stamps: pd.DataFrame, stamps_normal_ml: MixtureMLFit) -> None:
    """``predict pr*, classposteriorpr``, listed by thickness in the manual."""
    ref = _stata()["normal_k3"]["class_posterior_probability"]
    rows = np.array(ref["rows"])
    post = stamps_normal_ml.posterior_class_probabilities().to_numpy()
    ours = post[_first_rows(stamps["thickness"], rows[:, 0])]
    # printed to 3 decimals: half a unit (0.0005), plus as much again for both optimizers' stopping
    # rules and the float32 data (each moves these probabilities by < 1e-5 here)
    np.testing.assert_allclose(ours, rows[:, 1:], rtol=0, atol=1e-3)


def test_ml_normal_best_maximum_is_found_from_other_starts(
    stamps_normal_model: bx.MixtureModel, stamps_normal_ml: MixtureMLFit
) -> None:
    other = stamps_normal_model.fit_ml(random_seed=1)
    assert other.loglik == pytest.approx(stamps_normal_ml.loglik, abs=1e-6)
    np.testing.assert_allclose(other.estimates, stamps_normal_ml.estimates, rtol=1e-5)
    for ml in (stamps_normal_ml, other):
        assert ml.local_maxima[0].loglik == ml.loglik
        assert all(m.loglik < ml.loglik - 1 for m in ml.local_maxima[1:])  # the others are far lower


# ----- ML, lognormal k = 3 -----------------------------------------------------------------------


def test_ml_lognormal_best_maximum(stamps_lognormal_ml: tuple[MixtureMLFit, tuple[Any, ...]]) -> None:
    """``fmm 3: glm thickness, family(lognormal)``: the best maximum (Stata's table is another one).

    Stata prints no estimates for this model; the values below are this engine's, to the digits
    given (cross-checked by scikit-learn's EM in test_fmm_sklearn.py).
    """
    ml, record = stamps_lognormal_ml
    assert ml.loglik == pytest.approx(1511.958, abs=0.5e-3)
    est, probs = ml.estimates, ml.class_probabilities()["probability"]
    medians = np.exp([est[f"Intercept[{j}]"] for j in "123"])
    np.testing.assert_allclose(medians, [0.0713, 0.0786, 0.0972], rtol=0, atol=0.5e-4)
    np.testing.assert_allclose(
        [est[f"sigma[{j}]"] for j in "123"], [0.0191, 0.0294, 0.1505], rtol=0, atol=0.5e-4
    )
    np.testing.assert_allclose(probs, [0.199, 0.350, 0.451], rtol=0, atol=0.5e-3)
    # the runner-up is 0.57 units lower: the search must say that the maxima are close
    close = [w for w in record if issubclass(w.category, CloseMaximaWarning)]
    assert close and "1511.9583" in str(close[0].message)


def test_ml_lognormal_stata_table_is_a_local_maximum(
    stamps: pd.DataFrame, stamps_lognormal_ml: tuple[MixtureMLFit, tuple[Any, ...]]
) -> None:
    """Stata's lognormal posterior-probability table comes from a local maximum, not the best one.

    The maximum is picked by matching: the listed local maximum whose table is closest to Stata's.
    """
    ml, _ = stamps_lognormal_ml
    rows = np.array(_stata()["lognormal_k3"]["class_posterior_probability"]["rows"])
    first = _first_rows(stamps["thickness"], rows[:, 0])
    gaps = [
        np.abs(m.posterior_class_probabilities().to_numpy()[first] - rows[:, 1:]).max()
        for m in ml.local_maxima
    ]
    match = ml.local_maxima[int(np.argmin(gaps))]
    assert min(gaps) <= 1e-3  # 3 decimals printed: as for the normal table
    assert match.loglik == pytest.approx(1511.311, abs=0.5e-3)
    assert ml.loglik - match.loglik > 0.5  # not the best maximum


@pytest.mark.parametrize("family", ["gaussian", "lognormal"])
def test_ml_local_maxima_are_not_degenerate(
    family: str,
    stamps_normal_ml: MixtureMLFit,
    stamps_lognormal_ml: tuple[MixtureMLFit, tuple[Any, ...]],
) -> None:
    ml = stamps_normal_ml if family == "gaussian" else stamps_lognormal_ml[0]
    assert len(ml.local_maxima) >= 2
    smallest = [_component_sds(m, family == "lognormal").min() for m in ml.local_maxima]
    assert min(smallest) > RESOLUTION / 10, smallest


@pytest.mark.parametrize("family", ["gaussian", "lognormal"])
def test_ml_local_maxima_are_maxima(
    family: str,
    stamps_normal_ml: MixtureMLFit,
    stamps_lognormal_ml: tuple[MixtureMLFit, tuple[Any, ...]],
) -> None:
    ml = stamps_normal_ml if family == "gaussian" else stamps_lognormal_ml[0]
    top = [np.linalg.eigvalsh(m.objective.hessian(m.maximum.theta)).max() for m in ml.local_maxima]
    assert max(top) < 0, top
    # the saddle points the search meets (two coinciding classes) are refused, with the reason
    assert any("saddle point" in why for _, why in ml.refused)


# ----- Bayes, normal k = 3 -----------------------------------------------------------------------


@pytest.mark.slow
def test_bayes_normal_agrees_with_ml_and_stata(
    stamps_normal_fit: bx.MixtureFit, stamps_normal_ml: MixtureMLFit
) -> None:
    """Gate on the diagnostics, then the posterior against the ML fit and Stata's class margins.

    The posterior mean and the MLE differ by the prior's pull and the posterior's skewness, both
    of the order of the posterior SD with ~90-210 stamps per class (up to 0.8 SD for the skewed
    sigma[1] on this seed). Treating the MLE as a point of an approximately normal posterior, the
    chance that any of m scalars lies beyond z_crit = norm.isf(ALPHA / (2 m)) posterior SDs is at
    most ALPHA; the Monte Carlo error of the means (at most 0.05 SD at ESS 400) is negligible.
    """
    fit = stamps_normal_fit
    diag = fit.diagnostics()
    assert list(diag.table.index) == list(fit.summary().index)  # checked under the public names
    assert diag.max_rhat <= 1.01 and diag.min_ess_bulk >= 400 and diag.divergences == 0, str(diag)
    assert not fit.modes().multimodal, fit.modes().table
    assert diag.ok, diag.problems

    summary = fit.summary()
    mle = stamps_normal_ml.estimates
    assert list(summary.index) == list(mle.index)
    z_crit = stats.norm.isf(ALPHA / (2 * len(mle)))
    z = (summary["mean"] - mle).abs() / summary["sd"]
    assert (z < z_crit).all(), f"max |z| = {z.max():.2f} at {z.idxmax()} (z_crit {z_crit:.2f})"

    probs = fit.class_probabilities()
    stata = pd.Series({j: row["margin"] for j, row in _stata()["normal_k3"]["class_probability"].items()})
    z_crit = stats.norm.isf(ALPHA / (2 * len(stata)))
    z = (probs["probability"] - stata).abs() / probs["sd"]
    assert (z < z_crit).all(), f"class probabilities: max |z| = {z.max():.2f} (z_crit {z_crit:.2f})"


# ----- multimodality ------------------------------------------------------------------------------


@pytest.mark.slow
def test_modes_flags_chains_in_different_modes() -> None:
    """Two classes of one family without an ordering constraint: every mode has a relabelled twin.

    With the classes 5 SDs apart the twins are separated by a wall of low density that NUTS does
    not cross; ``init="modes"`` starts chains 0, 1 at one labelling and 2, 3 at the other (the
    search finds both, at the same log-likelihood), and the mode check must report them.
    """
    rng = np.random.default_rng(5)
    n = 200
    thin = rng.random(n) < 0.3
    df = pd.DataFrame({"y": np.where(thin, rng.normal(0.0, 1.0, n), rng.normal(5.0, 1.0, n))})
    model = bx.fmm(2, "y ~ 1", df, order_by=None)
    with pytest.warns(CloseMaximaWarning):
        ml = model.fit_ml()
    first, second = ml.local_maxima[:2]
    assert second.estimates["Intercept[1]"] == pytest.approx(first.estimates["Intercept[2]"], rel=1e-4)
    fit = model.fit(random_seed=3, draws=300, tune=300, progressbar=False)
    modes = fit.modes()
    assert modes.multimodal
    assert sorted(modes.groups) == [(0, 1), (2, 3)]
    assert modes.worst[0] > 10 * SEPARATION  # the twins are tens of within-chain SDs apart
    assert any("different modes" in p for p in fit.diagnostics().problems)
    assert not fit.diagnostics().ok


def _synthetic(offsets: list[float], draws: int = 500) -> tuple[xr.Dataset, xr.DataArray]:
    """Chains with exactly zero-mean, unit-SD noise around ``offsets`` (the same for both parameters)."""
    rng = np.random.default_rng(0)
    noise = rng.normal(size=(len(offsets), draws, 2))
    noise = (noise - noise.mean(axis=1, keepdims=True)) / noise.std(axis=1, ddof=1, keepdims=True)
    values = noise + np.asarray(offsets)[:, None, None]
    dims = ("chain", "draw")
    ds = xr.Dataset({"a": (dims, values[..., 0]), "b": (dims, 2 * values[..., 1])})
    # chains further from 0 get a lower log-likelihood
    loglik = xr.DataArray(-np.abs(values[..., 0]), dims=dims)
    return ds, loglik


def test_chain_modes_groups_synthetic_chains() -> None:
    modes = chain_modes(*_synthetic([0.0, 0.0, 10.0, 10.0]))
    assert modes.multimodal and modes.groups == ((0, 1), (2, 3))
    assert list(modes.table["mode"]) == [0, 0, 1, 1]
    assert modes.worst[0] == pytest.approx(10.0)  # means 10 apart, pooled within-chain SD 1
    problem = modes.problem()
    assert problem is not None and "2 different modes" in problem

    single = chain_modes(*_synthetic([0.0, 0.0, 0.0, 0.0]))
    assert not single.multimodal and single.groups == ((0, 1, 2, 3),) and single.problem() is None


def test_chain_modes_separation_threshold() -> None:
    """Chain means 0.9 within-chain SDs apart share a mode, 1.1 SDs apart do not (SEPARATION = 1)."""
    assert SEPARATION == 1.0
    assert not chain_modes(*_synthetic([0.0, 0.9 * SEPARATION])).multimodal
    assert chain_modes(*_synthetic([0.0, 1.1 * SEPARATION])).groups == ((0,), (1,))


def test_class_probability_margins_are_the_softmax_of_the_logits(stamps_normal_ml: MixtureMLFit) -> None:
    """Without class covariates ``estat lcprob`` is the softmax of (0, logits): an exact identity."""
    est = stamps_normal_ml.estimates
    logits = np.array([0.0, est["class[2]:Intercept"], est["class[3]:Intercept"]])
    probs = stamps_normal_ml.class_probabilities()["probability"].to_numpy()
    np.testing.assert_allclose(probs, special.softmax(logits), rtol=1e-12)
