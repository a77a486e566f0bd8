"""Simulation-based calibration (``bx.sbc``) of small models, on one shared Dask LocalCluster.

Each calibration test runs ``bx.sbc`` on a small model and asserts that the ECDF uniformity
test (Säilynoja et al. 2022) rejects no parameter at the family-wise false-alarm rate
``ALPHA`` = 0.01: each parameter is tested at 0.01 / (number of parameters) (Bonferroni),
so a correctly calibrated model fails a test with probability at most 0.01 per seed. The
seeds are fixed, so a passing test keeps passing. ``test_sbc_detects_a_wrong_prior`` checks
the test's power: data simulated from one prior and fitted under another must be rejected.

The fits are deliberately short (2 chains x 200 draws after 200 tuning steps, ranks among at
most ``MAX_DRAWS`` = 49 thinned draws) and the data small (10 groups x 5 rows; mixtures of
60 rows), so that all runs together take 3.5 minutes on two cores (``pytest -p no:xdist -m sbc``,
measured 2026-11-22): each worker compiles a hierarchical model's structure once and reuses it
for every later fit; mixtures compile every fit (with JAX), so they get fewer simulations.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import bayesmix as bx
from bayesmix.calibration.ranks import ecdf_band, ecdf_counts, ecdf_p_value, rank_of
from bayesmix.calibration.simulate import recipe_of, simulator_of

# make test runs these after the rest of the suite and outside xdist (marker sbc): one LocalCluster
# of two worker processes serves them all and has both cores to itself.
pytestmark = pytest.mark.sbc

ALPHA = 0.01  # family-wise false-alarm rate of every calibration test (Bonferroni over parameters)
MAX_DRAWS = 49
SHORT = {"draws": 200, "tune": 200, "chains": 2, "max_draws": MAX_DRAWS, "alpha": ALPHA, "progressbar": False}
MIXTURE_ML = {"n_starts": 10}  # fewer random starts than fit_ml's 50: small data
# Every mixture fit compiles its sampler anew (its start and its response are part of the compiled
# model), 1.2-2.7 s a fit here: 40 simulations find gross errors (a wrong likelihood or ordering)
# within the time budget; benchmarks/sbc.py runs 100 with the default ML search.
MIXTURE_SIMULATIONS = 40

GAUSSIAN_PRIORS = {
    "Intercept": bx.priors.Normal(0, 1),
    "x": bx.priors.Normal(0, 1),
    "sd(Intercept|g)": bx.priors.HalfNormal(1),
    "sigma": bx.priors.HalfNormal(1),
}


def _grouped(seed: int = 1, groups: int = 10, rows: int = 5) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    df = pd.DataFrame(
        {"g": np.repeat([f"g{j:02d}" for j in range(groups)], rows), "x": rng.normal(size=groups * rows)}
    )
    df["y"] = 0.5 * df["x"] + np.repeat(rng.normal(size=groups), rows) + rng.normal(size=len(df))
    df["s"] = rng.binomial(8, 0.4, size=len(df))
    df["f"] = 8 - df["s"]
    df["b"] = rng.integers(0, 2, size=len(df))
    return df


def _mixture_data(seed: int = 2, n: int = 60) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({"x": rng.normal(size=n), "z": rng.normal(size=n)})
    df["y"] = np.where(rng.uniform(size=n) < 0.5, -2.0, 2.0) + rng.normal(size=n)
    df["c"] = rng.poisson(np.exp(1 + 0.3 * df["x"]))
    return df


@pytest.fixture(scope="module")
def client():
    distributed = pytest.importorskip("distributed")
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0"
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        yield client


def _assert_calibrated(result: bx.SBCResult, n_simulations: int, max_failed: int = 0) -> None:
    failed = int(result.fits["error"].notna().sum())
    assert failed <= max_failed, result.fits.loc[result.fits["error"].notna(), "error"].tolist()
    assert (result.tests["n"] >= n_simulations - max_failed).all()
    ranks, kept = result.ranks.dropna(), result.kept.dropna()
    assert ((ranks >= 0) & (ranks <= kept)).all().all()
    assert result.calibrated, f"uniformity rejected at family-wise {ALPHA}:\n{result.tests}"


@pytest.fixture(scope="module")
def gaussian_marginal(client):
    model = bx.hierarchical("y ~ x + (1 | g)", _grouped(), priors=GAUSSIAN_PRIORS)
    assert model.spec.marginalized
    return bx.sbc(model, 120, client=client, random_seed=11, **SHORT)


# ----- calibration ---------------------------------------------------------------------------


@pytest.mark.slow
def test_sbc_gaussian_random_intercept_marginalized(gaussian_marginal):
    """ALPHA = 0.01 family-wise over Intercept, x, sd(Intercept|g), sigma; 120 simulations."""
    _assert_calibrated(gaussian_marginal, 120)
    assert list(gaussian_marginal.tests.index) == ["Intercept", "x", "sd(Intercept|g)", "sigma"]
    assert gaussian_marginal.fits["reused"].sum() >= 120 - 2  # one compile per worker


@pytest.mark.slow
def test_sbc_gaussian_random_intercept_sampled(client):
    """ALPHA = 0.01 family-wise, random effects ranked too; 100 simulations."""
    model = bx.hierarchical("y ~ x + (1 | g)", _grouped(), priors=GAUSSIAN_PRIORS, marginalize=False)
    result = bx.sbc(model, 100, client=client, random_seed=12, random_effects=True, **SHORT)
    _assert_calibrated(result, 100)
    assert "re(Intercept|g)[g03]" in result.tests.index


@pytest.mark.slow
def test_sbc_correlated_random_slopes(client):
    """ALPHA = 0.01 family-wise over the 7 parameters of ``y ~ x + (x | g)``; 100 simulations."""
    priors = {**GAUSSIAN_PRIORS, "sd(x|g)": bx.priors.HalfNormal(0.5), "corr(g)": bx.priors.LKJ(2)}
    model = bx.hierarchical("y ~ x + (x | g)", _grouped(), priors=priors)
    result = bx.sbc(model, 100, client=client, random_seed=13, **SHORT)
    _assert_calibrated(result, 100)
    assert "corr(Intercept,x|g)" in result.tests.index


@pytest.mark.slow
def test_sbc_bernoulli_glmm(client):
    """ALPHA = 0.01 family-wise; logistic random-intercept model of 0/1 rows, 100 simulations.

    The binomial family with one trial per row: bayesmix keeps a Bernoulli response in a shared
    variable, so every fit reuses the worker's compiled model. (A binomial ``cbind(s, f)``
    response is a constant of the graph, so each of its fits compiles anew: too slow for the
    test suite. Its simulation and rebuild are checked below without sampling, and it is one
    of the models of the larger run, ``benchmarks/sbc.py``.)
    """
    priors = {
        "Intercept": bx.priors.Normal(0, 1),
        "x": bx.priors.Normal(0, 1),
        "sd(Intercept|g)": bx.priors.HalfNormal(1),
    }
    model = bx.hierarchical("b ~ x + (1 | g)", _grouped(), family="bernoulli", priors=priors)
    assert model.aggregated is None  # continuous x: no rows to sum
    result = bx.sbc(model, 100, client=client, random_seed=14, **SHORT)
    _assert_calibrated(result, 100)


@pytest.mark.slow
def test_sbc_known_covariance(client):
    """ALPHA = 0.01 family-wise; levels correlated through K[i, j] = 0.6^|i - j|, 100 simulations.

    With the random effects integrated out jointly through K, sd(Intercept|g) near 0 gives the
    sampler trouble (divergences in about a fifth of the default fits, which pushed its p-value
    near the threshold in one run): target_accept=0.95 makes the short fits trustworthy.
    """
    df = _grouped()
    levels = sorted(df["g"].unique())
    lag = np.abs(np.subtract.outer(np.arange(len(levels)), np.arange(len(levels))))
    K = pd.DataFrame(0.6**lag, index=levels, columns=levels)
    model = bx.hierarchical("y ~ x + (1 | g)", df, priors=GAUSSIAN_PRIORS, covariances={"g": K})
    result = bx.sbc(model, 100, client=client, random_seed=15, fit_kwargs={"target_accept": 0.95}, **SHORT)
    _assert_calibrated(result, 100)


@pytest.mark.slow
def test_sbc_gaussian_mixture(client):
    """ALPHA = 0.01 family-wise over the 5 parameters of a 2-class mixture; 40 simulations.

    At most 2 failed fits are allowed (each is reported in ``result.problems``).
    """
    priors = {
        "Intercept": bx.priors.Normal(0, 2),
        "sigma": bx.priors.Gamma(5, 5),
        "class[2]:Intercept": bx.priors.Normal(0, 1),
    }
    model = bx.fmm(2, "y ~ 1", _mixture_data(), priors=priors)
    result = bx.sbc(model, MIXTURE_SIMULATIONS, client=client, random_seed=16, ml_kwargs=MIXTURE_ML, **SHORT)
    _assert_calibrated(result, MIXTURE_SIMULATIONS, max_failed=2)


@pytest.mark.slow
def test_sbc_poisson_mixture_of_regressions(client):
    """ALPHA = 0.01 family-wise over 6 parameters, class probabilities depending on z; 40 simulations."""
    priors = {
        "Intercept": bx.priors.Normal(1, 1),
        "x": bx.priors.Normal(0, 0.5),
        "class[2]:Intercept": bx.priors.Normal(0, 1),
        "class[2]:z": bx.priors.Normal(0, 1),
    }
    model = bx.fmm(2, "c ~ x", _mixture_data(), family="poisson", class_formula="~ z", priors=priors)
    result = bx.sbc(model, MIXTURE_SIMULATIONS, client=client, random_seed=17, ml_kwargs=MIXTURE_ML, **SHORT)
    _assert_calibrated(result, MIXTURE_SIMULATIONS, max_failed=2)


# ----- power: a wrong prior is found ---------------------------------------------------------


@pytest.mark.slow
def test_sbc_detects_a_wrong_prior(client):
    """Truths and data from Intercept ~ N(2, 0.5), fitted under N(0, 1): must reject at ALPHA = 0.01.

    The fitted model is the one of the marginalized test (its compiled model is reused).
    """
    fitted = bx.hierarchical("y ~ x + (1 | g)", _grouped(), priors=GAUSSIAN_PRIORS)
    wrong = bx.hierarchical(
        "y ~ x + (1 | g)", _grouped(), priors={**GAUSSIAN_PRIORS, "Intercept": bx.priors.Normal(2, 0.5)}
    )
    result = bx.sbc(fitted, 40, client=client, random_seed=18, simulate_from=wrong, **SHORT)
    assert not result.calibrated
    assert result.tests.loc["Intercept", "reject"]
    assert result.tests.loc["Intercept", "p_value"] < 1e-3


# ----- the pieces, without sampling ----------------------------------------------------------


def test_ecdf_test_holds_its_level_and_matches_its_band():
    """Uniform samples: rejection rate at 0.05 within the 99.9% binomial interval; band agrees with p."""
    rng = np.random.default_rng(3)
    p = np.array([ecdf_p_value(rng.uniform(size=60)) for _ in range(400)])
    lo, hi = __import__("scipy").stats.binom.interval(0.999, 400, 0.05)
    assert lo <= (p <= 0.05).sum() <= hi
    z, lower, upper = ecdf_band(60, 0.95)
    for _ in range(100):
        u = rng.beta(1.2, 1.0, size=60)
        ecdf = ecdf_counts(u, z) / 60
        inside = bool(np.all((ecdf >= lower) & (ecdf <= upper)))
        assert inside == (ecdf_p_value(u) > 0.05)


def test_rank_of_thins_evenly_and_breaks_ties():
    rng = np.random.default_rng(0)
    draws = np.arange(400.0).reshape(2, 200)
    rank, pit = rank_of(draws, 100.5, 40, rng)
    assert rank == 10 and 10 / 41 <= pit <= 11 / 41
    ranks = {rank_of(np.zeros((1, 10)), 0.0, 10, rng)[0] for _ in range(200)}
    assert ranks == set(range(11))


def test_simulations_are_reproducible_and_keep_the_design():
    df = _grouped()
    model = bx.hierarchical(
        "cbind(s, f) ~ x + (1 | g)", df, family="binomial", priors={"x": bx.priors.Normal(0, 1)}
    )
    simulator = simulator_of(model)
    (t1, y1), (t2, y2) = simulator.draw(5), simulator.draw(5)
    assert t1 == t2 and np.array_equal(y1, y2)
    assert set(t1) == {"Intercept", "x", "sd(Intercept|g)"}
    rebuilt = recipe_of(model).build(y1)
    assert np.array_equal(rebuilt.design.y, y1)
    assert np.array_equal(rebuilt.design.trials, model.design.trials)  # failures rewritten as 8 - successes
    assert dict(rebuilt.spec.priors) == dict(model.spec.priors)


def test_mixture_truths_respect_the_ordering():
    model = bx.fmm(2, "y ~ 1", _mixture_data())
    simulator = simulator_of(model)
    truths = [simulator.draw(seed)[0] for seed in range(50)]
    assert all(t["Intercept[1]"] < t["Intercept[2]"] for t in truths)


def test_sbc_refuses_what_it_cannot_simulate():
    df = _grouped()
    with pytest.raises(ValueError, match="flat"):
        bx.sbc(bx.mixed("y ~ x + (1 | g)", df), 10)
    df["w"] = np.exp(df["y"])
    with pytest.raises(ValueError, match="transformation"):
        bx.sbc(bx.hierarchical("log(w) ~ x + (1 | g)", df), 10)
    with pytest.raises(ValueError, match="n_simulations"):
        bx.sbc(bx.hierarchical("y ~ x + (1 | g)", df), 1)


@pytest.mark.slow
def test_sbc_plots(gaussian_marginal):
    import matplotlib

    matplotlib.use("Agg")
    fig = bx.plots.plot_sbc_ranks(gaussian_marginal)
    assert len([ax for ax in fig.axes if ax.get_visible()]) == 4
    fig = gaussian_marginal.plot_ecdf(["Intercept", "sigma"])
    assert len([ax for ax in fig.axes if ax.get_visible()]) == 2
    with pytest.raises(ValueError, match="unknown parameter"):
        bx.plots.plot_sbc_ecdf(gaussian_marginal, "nope")
    assert "calibrated" in repr(gaussian_marginal)
