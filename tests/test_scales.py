"""Issue 7, item 5: numerical robustness across the units of the response, and degenerate mixtures.

How scale invariance is achieved (docs/user-guide/priors.md, "The units of the response"):
the default priors are set in units of the response (``spec.response_scale``), so multiplying
the response by ``c`` multiplies every default prior's location and scale by ``c``, and the
posterior of every coefficient, SD and ``sigma`` is the old one times ``c``; nutpie adapts a
mass matrix to each parameter's scale, and double precision holds 1e-3 and 1e6 equally well.
The mixtures' maximum-likelihood search, which starts their chains, works in the same units
(:func:`bayesmix.compare.fmm_engine.units`). So: the exact checks below (priors, ML fits) hold
to rounding, and the sampled posteriors, divided by the scale, agree within Monte Carlo error.

Degenerate mixtures (a class with next to no data, a class whose SD collapses onto tied values)
must not crash NUTS, and the fit must say what happened, with advice.
"""

from __future__ import annotations

import arviz_stats as azs
import numpy as np
import pandas as pd
import pytest
from scipy import special, stats

import bayesmix as bx
from tests.helpers import assert_recovered

SCALES = (1e-3, 1.0, 1e3, 1e6)  # stamps are ~0.07 mm, incomes ~1e5
TRUTH = {"Intercept": 2.0, "x": 0.5, "sd(Intercept|g)": 0.8, "sigma": 0.6}
FIT = {"draws": 500, "tune": 500, "chains": 4, "random_seed": 5, "progressbar": False}


def _hierarchical_data(scale: float) -> pd.DataFrame:
    """y = scale * (2 + 0.5 x + u_g + e), u_g ~ N(0, 0.8^2), e ~ N(0, 0.6^2): 12 groups of 15."""
    rng = np.random.default_rng(11)
    g = np.repeat(np.arange(12), 15)
    x = rng.normal(size=g.size)
    y = TRUTH["Intercept"] + TRUTH["x"] * x + rng.normal(0, 0.8, 12)[g] + rng.normal(0, 0.6, g.size)
    return pd.DataFrame({"y": scale * y, "x": x, "g": [f"g{k:02d}" for k in g]})


# ----- exact: the model, the priors and the ML fits scale with the response ----------------------------


@pytest.mark.parametrize("scale", [s for s in SCALES if s != 1.0])
def test_default_priors_and_recorded_scale_follow_the_units(scale: float) -> None:
    unit = bx.hierarchical("y ~ x + (x | g)", _hierarchical_data(1.0))
    scaled = bx.hierarchical("y ~ x + (x | g)", _hierarchical_data(scale))
    np.testing.assert_allclose(scaled.spec.response_scale, np.multiply(unit.spec.response_scale, scale))
    for name, prior in unit.spec.priors.items():
        other = scaled.spec.priors[name]
        assert type(other) is type(prior), name
        if isinstance(prior, bx.priors.LKJ):
            assert other == prior  # correlations have no units
        elif isinstance(prior, bx.priors.Exponential):
            np.testing.assert_allclose(other.lam, prior.lam / scale, rtol=1e-12, err_msg=name)
        else:
            np.testing.assert_allclose(
                [getattr(other, f) for f in ("mu", "sigma") if hasattr(prior, f)],
                [scale * getattr(prior, f) for f in ("mu", "sigma") if hasattr(prior, f)],
                rtol=1e-12,
                err_msg=name,
            )


@pytest.mark.parametrize("scale", [1e-3, 1e6])
def test_reml_fit_follows_the_units(scale: float) -> None:
    unit = bx.mixed("y ~ x + (x | g)", _hierarchical_data(1.0)).fit_ml()
    scaled = bx.mixed("y ~ x + (x | g)", _hierarchical_data(scale)).fit_ml()
    units = np.array([1.0 if name.startswith("corr") else scale for name in unit.estimates.index])
    # the optimizer stops at a relative gradient tolerance: agreement to 1e-6, far inside a standard error
    np.testing.assert_allclose(scaled.estimates / units, unit.estimates, rtol=1e-6)
    np.testing.assert_allclose(scaled.std_errors / units, unit.std_errors, rtol=1e-5)


def _two_classes(scale: float, n: int = 300) -> pd.DataFrame:
    """40% N(0, 1) and 60% N(4, 0.7^2), times ``scale``."""
    rng = np.random.default_rng(3)
    first = rng.random(n) < 0.4
    y = np.where(first, rng.normal(0.0, 1.0, n), rng.normal(4.0, 0.7, n))
    return pd.DataFrame({"y": scale * y, "x": rng.normal(size=n)})


@pytest.mark.slow
def test_mixture_ml_search_follows_the_units() -> None:
    """The search works in units of the data: the same one maximum at 1e-3, 1 and 1e5.

    Before it did (coefficients compared and stepped in absolute terms), 50 starts at 1e5
    returned 13 copies of the best maximum and a CloseMaximaWarning about them, and standard
    errors at 1e-5 were 3% off (a Hessian step of a tenth of a standard error).
    """
    fits = {s: bx.fmm(2, "y ~ x", _two_classes(s)).fit_ml(n_starts=20) for s in (1e-3, 1.0, 1e5)}
    unit = fits[1.0]
    for scale, ml in fits.items():
        assert len(ml.local_maxima) == 1 and not ml.refused, (scale, [m.loglik for m in ml.local_maxima])
        units = np.array([1.0 if n.startswith("class") else scale for n in ml.estimates.index])
        # the searches stop at a gradient tolerance: they agree to a ten-thousandth of a standard error
        z = np.abs(ml.estimates / units - unit.estimates) / unit.std_errors
        assert z.max() < 1e-4, z
        # central differences of the exact gradient: a standard error to 1e-4 of itself
        np.testing.assert_allclose(ml.std_errors / units, unit.std_errors, rtol=1e-4)
        # the density of y = s * y1 is that of y1 divided by s, at every row
        np.testing.assert_allclose(ml.loglik, unit.loglik - ml.nobs * np.log(scale), rtol=1e-9)


# ----- sampled: the posterior, divided by the scale, is the same -----------------------------------------


@pytest.fixture(scope="module")
def scaled_fits() -> dict[tuple[float, bool], bx.Fit]:
    """The random-intercept model at every scale, random effects integrated out; sampled at the extremes."""
    fits = {}
    for scale in SCALES:
        for marginalize in (True, False) if scale in (SCALES[0], SCALES[-1]) else (True,):
            model = bx.hierarchical("y ~ x + (1 | g)", _hierarchical_data(scale), marginalize=marginalize)
            # sampled random effects mix more slowly: twice the draws keep R-hat clear of its 1.01 gate
            draws = FIT["draws"] if marginalize else 2 * FIT["draws"]
            fits[scale, marginalize] = model.fit(backend="jax", **{**FIT, "draws": draws})
    return fits


@pytest.mark.slow
@pytest.mark.parametrize(
    ("scale", "marginalize"), [(s, True) for s in SCALES] + [(SCALES[0], False), (SCALES[-1], False)]
)
def test_hierarchical_recovered_at_every_scale(
    scaled_fits: dict[tuple[float, bool], bx.Fit], scale: float, marginalize: bool
) -> None:
    fit = scaled_fits[scale, marginalize]
    assert fit.spec.marginalized is marginalize
    # the gate (R-hat <= 1.01, bulk ESS >= 400, no divergences), then each truth within a z-bound
    assert_recovered(fit, {name: scale * value for name, value in TRUTH.items()}, alpha=0.01)


@pytest.mark.slow
def test_scaled_posteriors_agree_within_monte_carlo_error(
    scaled_fits: dict[tuple[float, bool], bx.Fit],
) -> None:
    """Divided by the scale, every posterior mean is the scale-1 one up to Monte Carlo error.

    The posteriors are exactly the same (the priors scale, see above), so the difference of two
    means is the difference of two independent Monte Carlo errors: its SD is
    sqrt(mcse_s^2 + mcse_1^2), in units of the scale. Compared: the 4 parameters and the 12
    random effects (drawn after sampling when integrated out) of 5 fits, family-wise
    false-alarm rate 0.01: z = norm.isf(0.01 / (2 * 80)) = 3.83.
    """
    reference = scaled_fits[1.0, True]
    others = {key: fit for key, fit in scaled_fits.items() if key != (1.0, True)}
    z_crit = stats.norm.isf(0.01 / (2 * 16 * len(others)))
    for (scale, marginalize), fit in others.items():
        means, errors = _means(fit, scale), _means(reference, 1.0)
        z = (means["mean"] - errors["mean"]).abs() / np.hypot(means["mcse"], errors["mcse"])
        assert len(z) == 16 and (z < z_crit).all(), (
            f"scale {scale:g} ({marginalize=}): {z.round(2).to_dict()}"
        )


def _means(fit: bx.Fit, scale: float) -> pd.DataFrame:
    """Posterior means and their MCSE, divided by ``scale``: the parameters, then the random effects."""
    table = fit.summary().loc[list(TRUTH), ["mean", "mcse_mean"]].set_axis(["mean", "mcse"], axis=1) / scale
    effects = fit.posterior["re_g"].sel(g__term="Intercept", drop=True) / scale
    errors = azs.mcse(effects)
    re = pd.DataFrame(
        {"mean": effects.mean(("chain", "draw")).to_numpy(), "mcse": np.asarray(errors)},
        index=[f"re[{level}]" for level in effects["g"].to_numpy()],
    )
    return pd.concat([table, re])


@pytest.mark.slow
@pytest.mark.parametrize("scale", [1e-3, 1e5])
def test_mixture_recovered_at_extreme_scales(scale: float) -> None:
    model = bx.fmm(2, "y ~ 1", _two_classes(scale))
    fit = model.fit(backend="jax", **FIT)
    truth = {
        "Intercept[1]": 0.0,
        "sigma[1]": scale * 1.0,
        "Intercept[2]": scale * 4.0,
        "sigma[2]": scale * 0.7,
        "class[2]:Intercept": float(special.logit(0.6)),
    }
    assert_recovered(fit, truth, alpha=0.01)
    np.testing.assert_allclose(model.spec.response_scale[0][1], scale * np.std(_two_classes(1.0)["y"]))


# ----- degenerate mixtures: NUTS finishes, and the fit says what happened -------------------------------

DEGENERATE = {
    "draws": 300,
    "tune": 300,
    "chains": 2,
    "random_seed": 5,
    "progressbar": False,
    "backend": "jax",
}


def _finished(fit: bx.MixtureFit, k: int) -> list[str]:
    """Every draw is there and finite; the problems the diagnostics report."""
    draws = fit.draws().to_array()
    assert draws.sizes["chain"] == 2 and draws.sizes["draw"] == 300
    assert np.isfinite(draws.to_numpy()).all()
    assert fit.class_probabilities().shape == (k, 4)
    diag = fit.diagnostics()
    assert not diag.ok
    return diag.problems


@pytest.mark.slow
def test_more_classes_than_the_data_have() -> None:
    """3 classes fitted to 2: the ML search says its maxima are close; the fit reports failed mixing."""
    model = bx.fmm(3, "y ~ 1", _two_classes(1.0))
    with pytest.warns(bx.CloseMaximaWarning):
        ml = model.fit_ml(n_starts=20)
    problems = _finished(model.fit(ml=ml, **DEGENERATE), 3)
    assert any("R-hat" in p or "nearly empty class" in p for p in problems), problems


@pytest.mark.slow
def test_a_class_of_three_points_is_reported_as_nearly_empty() -> None:
    data = _two_classes(1.0)
    data.loc[:2, "y"] = np.random.default_rng(7).normal(12.0, 0.3, 3)  # 3 of 300 points far away
    model = bx.fmm(3, "y ~ 1", data)
    fit = model.fit(ml=model.fit_ml(n_starts=20), **DEGENERATE)
    problems = _finished(fit, 3)
    assert any(p.startswith("nearly empty class: class 3 falls to 3.0 observations") for p in problems), (
        problems
    )
    assert fit.summary().loc["Intercept[3]", "mean"] == pytest.approx(12.0, abs=1.5)


def _tied(seed: int) -> pd.DataFrame:
    """300 values from two classes (as :func:`_two_classes`), 40 of them replaced by 8.0."""
    rng = np.random.default_rng(seed)
    first = rng.random(300) < 0.4
    y = np.where(first, rng.normal(0.0, 1.0, 300), rng.normal(4.0, 0.7, 300))
    y[:40] = 8.0
    return pd.DataFrame({"y": y})


@pytest.mark.slow
def test_a_chain_in_the_spike_of_tied_values_is_reported() -> None:
    """40 of 300 values tied at 8: a class there has an unbounded likelihood as its SD goes to 0.

    The ML search refuses those maxima and the chains start at the one it accepts, but one
    chain finds the spike (its mean log-likelihood lies far above that maximum); NUTS still
    finishes, and the fit names the spike, the tied value and the floor to put on ``sigma``.
    """
    model = bx.fmm(3, "y ~ 1", _tied(7))
    ml = model.fit_ml()  # 20 starts find no maximum but collapsed ones here; 50 find one
    assert len(ml.local_maxima) == 1 and any("collapsed" in why for _, why in ml.refused)
    problems = " ".join(_finished(model.fit(ml=ml, **DEGENERATE), 3))
    assert "spike of the likelihood" in problems or "collapsed onto tied values" in problems, problems
    assert "the most repeated response value is 8, in 40 rows" in problems
    assert "bx.priors.Uniform(" in problems


@pytest.mark.slow
def test_a_floor_on_sigma_makes_tied_values_a_proper_class() -> None:
    """When every maximum collapses, fit() stops with advice; the floor it advises then samples.

    The floor is the documented one (docs/user-guide/mixtures.md, "Tied data"): a Uniform
    prior on ``sigma`` bounded below, which the ML search respects, so the tied values become
    a class of SD near the floor instead of a spike.
    """
    data = _tied(3)
    with pytest.raises(RuntimeError, match=r"class 3 has collapsed.*priors=\{'sigma': bx.priors.Uniform"):
        bx.fmm(3, "y ~ 1", data).fit_ml(n_starts=20)
    floor = 0.05
    model = bx.fmm(3, "y ~ 1", data, priors={"sigma": bx.priors.Uniform(floor, 20.0)})
    fit = model.fit(ml=model.fit_ml(n_starts=20), **DEGENERATE)
    summary = fit.summary()
    assert summary.loc["Intercept[3]", "mean"] == pytest.approx(8.0, abs=0.05)
    assert fit.draws()["sigma[3]"].min() >= floor
    problems = " ".join(fit.diagnostics().problems)
    assert "spike" not in problems and "collapsed" not in problems and "divergent" not in problems


@pytest.mark.slow
def test_a_prior_start_needs_no_maximum() -> None:
    """init='prior' samples when the search finds only collapsed maxima; the fit says compare() cannot run."""
    model = bx.fmm(3, "y ~ 1", _tied(3))
    short = {**DEGENERATE, "draws": 100, "tune": 100}  # the start is under test, not the posterior
    with pytest.warns(UserWarning, match=r"no maximum-likelihood fit to compare with \(every maximum"):
        fit = model.fit(init="prior", **short)
    assert fit.ml is None
    assert fit.posterior.sizes["chain"] == 2 and fit.posterior.sizes["draw"] == 100
    with pytest.raises(ValueError, match=r"no maximum-likelihood counterpart.*fit_ml"):
        fit.compare()
    fit.diagnostics()  # the spike check needs the ML maximum: skipped, not an error
