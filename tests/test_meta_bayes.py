"""Bayesian meta-analysis (issue 8): known SDs ``y | se(s)``, priors by name, the forest plot.

* exact: with known SDs the marginal log-likelihood is the dense normal density with
  covariance ``diag(s^2) + Z Sigma Z'`` (rtol 1e-9), the full model's likelihood is
  ``sum_i log N(y_i | mu_i, s_i)``, and the random effects drawn after sampling follow their
  exact conditional; a Dirichlet prior on mixture weights is the Dirichlet density of the
  class probabilities times the Jacobian of the softmax, computed here by finite differences;
* reference: eight schools with ``Intercept ~ Normal(0, 5)`` and ``sd(Intercept|school) ~
  HalfCauchy(5)``. With the school effects integrated out, ``y_j ~ N(mu, sigma_j^2 + tau^2)``
  and, given ``tau``, ``mu`` is conjugate normal, so the posterior of ``(mu, tau)`` reduces to
  one-dimensional adaptive quadrature over ``tau`` (cross-checked on a 2-D grid). The
  posterior mean, SD and 10/50/90% quantiles of ``mu`` and ``tau`` from NUTS, with the
  random effects integrated out and sampled, lie within ``z * MCSE`` of the reference;
* recovery: a meta-regression on simulated studies recovers its moderator's coefficient;
* errors: ``se()`` with other families, bad SDs, unknown or unsuitable priors.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from functools import cache

import arviz_stats as azs
import numpy as np
import pandas as pd
import pytensor
import pytensor.tensor as pt
import pytest
from scipy import integrate, optimize, stats

import bayesmix as bx
from bayesmix.build.marginal import SufficientStatistics, marginal_loglik
from bayesmix.results.forest import forest_table
from bayesmix.results.marginal import _draw_block
from bayesmix.spec.data import DroppedRowsWarning
from tests.helpers import assert_recovered

#: family-wise false-alarm rate of every Monte Carlo check in this file
ALPHA = 0.01
#: the priors of the issue's acceptance test
PRIORS = {"Intercept": bx.priors.Normal(0, 5), "sd(Intercept|school)": bx.priors.HalfCauchy(5)}
PROBS = (0.1, 0.5, 0.9)
FORMULA = "y | se(sigma) ~ 1 + (1 | school)"


# ----- the reference posterior of eight schools ---------------------------------------------


def _given_tau(tau: float, y: np.ndarray, s: np.ndarray) -> tuple[float, float, float]:
    """``log p(y | tau) + log p(tau)`` (mu integrated out), and the conditional mean and variance of mu.

    mu ~ N(0, 5^2) and y_j | mu, tau ~ N(mu, s_j^2 + tau^2): with precision a = 1/25 + sum 1/v_j and
    b = sum y_j / v_j, mu | tau, y ~ N(b/a, 1/a), and the integral over mu is the normal one below.
    """
    v = s**2 + tau**2
    a = 1 / 25 + np.sum(1 / v)
    b = np.sum(y / v)
    log_marginal = (
        -0.5 * np.sum(np.log(2 * np.pi * v))
        - 0.5 * np.log(2 * np.pi * 25)
        - 0.5 * (np.sum(y**2 / v) - b**2 / a)
        + 0.5 * np.log(2 * np.pi / a)
    )
    return float(log_marginal + stats.halfcauchy.logpdf(tau, scale=5)), float(b / a), float(1 / a)


@cache
def reference() -> dict[str, float]:
    """Posterior mean, SD and 10/50/90% quantiles of mu and tau by quadrature, and ``error``.

    ``error`` bounds the integration error of every statistic: quad's error estimates of each
    normalized integral, propagated to first order (a mean E from the integrals N and Z:
    dE <= dN/Z + |E| dZ/Z; an SD from the variance: d sd <= (dE2 + 2|E| dE) / (2 sd)); the
    quantiles are solved to 1e-9 on CDFs whose own errors are of order 1e-12. The tail of
    p(tau | y) falls as tau^-10 (eight likelihood factors 1/tau, the prior 1/tau^2), so every
    moment used is finite.
    """
    data = bx.datasets.load("eight_schools")
    y, s = data["y"].to_numpy(float), data["sigma"].to_numpy(float)
    shift = _given_tau(3.0, y, s)[0]  # the density scaled to order 1, so that quad's errors are relative

    def density(tau: float) -> float:
        return float(np.exp(_given_tau(tau, y, s)[0] - shift))

    opts = {"epsabs": 1e-12, "epsrel": 1e-12, "limit": 500}
    Z, z_err = integrate.quad(density, 0, np.inf, **opts)

    def expect(f: Callable[[float], float]) -> tuple[float, float]:
        value, err = integrate.quad(lambda t: density(t) * f(t), 0, np.inf, **opts)
        return value / Z, err / Z + abs(value / Z) * z_err / Z

    out: dict[str, float] = {}
    errors = [1e-9]
    for name, f in (("mu", lambda t: _given_tau(t, y, s)[1]), ("tau", lambda t: t)):
        mean, d_mean = expect(f)
        if name == "mu":  # E[mu^2 | tau] = V(tau) + m(tau)^2
            square, d_square = expect(lambda t: _given_tau(t, y, s)[2] + _given_tau(t, y, s)[1] ** 2)
        else:
            square, d_square = expect(lambda t: t * t)
        sd = float(np.sqrt(square - mean**2))
        out[f"{name}_mean"], out[f"{name}_sd"] = mean, sd
        errors += [d_mean, (d_square + 2 * abs(mean) * d_mean) / (2 * sd)]

    def tau_cdf(x: float) -> float:
        return integrate.quad(density, 0, x, **opts)[0] / Z

    def mu_cdf(x: float) -> float:
        def part(t: float) -> float:
            _, m, v = _given_tau(t, y, s)
            return density(t) * float(stats.norm.cdf((x - m) / np.sqrt(v)))

        return integrate.quad(part, 0, np.inf, **opts)[0] / Z

    for p in PROBS:
        out[f"tau_q{p}"] = optimize.brentq(lambda x, p=p: tau_cdf(x) - p, 0.0, 200.0, xtol=1e-9)
        out[f"mu_q{p}"] = optimize.brentq(lambda x, p=p: mu_cdf(x) - p, -40.0, 40.0, xtol=1e-9)
    out["error"] = float(max(errors))
    return out


def test_reference_quadrature_agrees_with_a_2d_grid() -> None:
    """The independent 2-D grid (trapezoid over mu in +-8 prior SDs, tau = 400 t^2) agrees to 5e-4.

    The grid's own error (spacing 0.04 in mu, tau dense near 0) is of order 1e-4 here; the
    quadrature's is below 1e-8, so the bound is set by the grid. Both are far below the Monte Carlo
    errors of the fits (about 0.08).
    """
    ref = reference()
    assert ref["error"] < 1e-6
    data = bx.datasets.load("eight_schools")
    mu = np.linspace(-40, 40, 2001)
    t = np.linspace(0, 1, 2001)
    MU, TAU = np.meshgrid(mu, 400 * t**2, indexing="ij")
    logp = stats.norm.logpdf(MU, 0, 5) + stats.halfcauchy.logpdf(TAU, scale=5)
    for yj, sj in zip(data["y"], data["sigma"], strict=True):
        logp += stats.norm.logpdf(yj, MU, np.sqrt(sj**2 + TAU**2))
    w = np.exp(logp - logp.max()) * (800 * t)[None, :]  # d tau = 800 t dt

    def expect(f: np.ndarray) -> float:
        return float(integrate.trapezoid(integrate.trapezoid(w * f, t, axis=1), mu))

    Z = expect(np.ones_like(w))
    grid = {"mu_mean": expect(MU) / Z, "tau_mean": expect(TAU) / Z}
    grid["mu_sd"] = np.sqrt(expect(MU**2) / Z - grid["mu_mean"] ** 2)
    grid["tau_sd"] = np.sqrt(expect(TAU**2) / Z - grid["tau_mean"] ** 2)
    for name, value in grid.items():
        assert abs(value - ref[name]) < 5e-4, (name, value, ref[name])


# ----- the fits ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def schools() -> pd.DataFrame:
    return bx.datasets.load("eight_schools")


@pytest.fixture(scope="module")
def marginal_fit(schools: pd.DataFrame) -> bx.Fit:
    """The default: school effects integrated out (sampled: mu and tau only), 4 x 1000 draws."""
    return bx.hierarchical(FORMULA, schools, priors=PRIORS).fit(random_seed=8, progressbar=False)


@pytest.fixture(scope="module")
def full_fit(schools: pd.DataFrame) -> bx.Fit:
    """School effects sampled (non-centered, chosen automatically), target_accept 0.95 for the funnel."""
    model = bx.hierarchical(FORMULA, schools, priors=PRIORS, marginalize=False)
    return model.fit(random_seed=8, progressbar=False, target_accept=0.95, draws=1500)


def _moments(fit: bx.Fit) -> pd.DataFrame:
    """Per statistic of mu and tau: the estimate from the draws and its MCSE (arviz-stats)."""
    draws = fit.draws()
    rows = {}
    for short, name in (("mu", "Intercept"), ("tau", "sd(Intercept|school)")):
        x = draws[name]
        rows[f"{short}_mean"] = (float(x.mean()), float(azs.mcse(x, method="mean")))
        rows[f"{short}_sd"] = (float(x.std(ddof=1)), float(azs.mcse(x, method="sd")))
        for p in PROBS:
            rows[f"{short}_q{p}"] = (
                float(np.quantile(x.to_numpy(), p)),
                float(azs.mcse(x, method="quantile", prob=p)),
            )
    return pd.DataFrame.from_dict(rows, orient="index", columns=["estimate", "mcse"])


@pytest.mark.parametrize("which", ["marginal", "full"])
def test_eight_schools_matches_the_reference_posterior(which: str, request: pytest.FixtureRequest) -> None:
    """Each of 10 statistics (mean, SD, 10/50/90% quantiles of mu and tau) within z * MCSE + error.

    z = norm.isf(ALPHA / (2 * 20)) = 3.48: a family-wise false-alarm rate of ALPHA = 0.01 over the
    20 statistics of the two fits, when the MCSEs are honest. The reference's integration error
    (``reference()["error"]``, below 1e-6) is added to each bound. The gate first: R-hat <= 1.01,
    bulk ESS >= 400, no divergences (reported in the message).
    """
    fit = request.getfixturevalue(f"{which}_fit")
    assert fit.spec.marginalized is (which == "marginal")
    diag = fit.diagnostics()
    assert diag.max_rhat <= 1.01 and diag.min_ess_bulk >= 400 and diag.divergences == 0, str(diag)
    ref = reference()
    table = _moments(fit)
    table["reference"] = [ref[name] for name in table.index]
    table["z"] = (table["estimate"] - table["reference"]).abs() / table["mcse"]
    bound = stats.norm.isf(ALPHA / (2 * 20))
    excess = (table["estimate"] - table["reference"]).abs() - (bound * table["mcse"] + ref["error"])
    assert (excess < 0).all(), f"{which}: divergences {diag.divergences}\n{table}"


def test_fit_records_the_priors_and_has_no_sigma(marginal_fit: bx.Fit, full_fit: bx.Fit) -> None:
    for fit in (marginal_fit, full_fit):
        table = fit.priors()
        assert list(table.index) == ["Intercept", "sd(Intercept|school)"]
        assert list(table["prior"]) == ["Normal(0, 5)", "HalfCauchy(5)"]
        assert list(table["source"]) == ["user", "user"]
        assert "sigma" not in fit.posterior and list(fit.summary().index) == list(table.index)
    assert "z_school" in full_fit.posterior  # eight schools: the non-centered form
    assert set(marginal_fit.posterior["re_school"].coords["school"].values) == set("ABCDEFGH")


def test_forest_table_and_plot(marginal_fit: bx.Fit, schools: pd.DataFrame) -> None:
    import matplotlib

    matplotlib.use("Agg")
    table = forest_table(marginal_fit, prob=0.9)
    z = stats.norm.isf(0.05)
    studies = table[table["kind"] == "level"]
    np.testing.assert_allclose(studies["observed"], schools["y"], rtol=1e-12)
    np.testing.assert_allclose(
        studies["observed_upper"] - studies["observed"], z * schools["sigma"], rtol=1e-12
    )
    # one row per school: the school's posterior is mu + its effect
    theta = marginal_fit.posterior["beta"].sel(coef="Intercept") + marginal_fit.posterior["re_school"].sel(
        school__term="Intercept"
    )
    np.testing.assert_allclose(studies["mean"], theta.mean(("chain", "draw")).values, rtol=1e-10)
    pooled, pred = table.loc["pooled"], table.loc["prediction"]
    assert pooled["mean"] == pytest.approx(float(marginal_fit.summary(0.9).loc["Intercept", "mean"]))
    # the prediction interval holds the pooled one, and matches mu + tau * N(0, 1) drawn per draw
    assert pred["lower"] < pooled["lower"] < pooled["upper"] < pred["upper"]
    draws = marginal_fit.draws()
    rng = np.random.default_rng(0)
    mu, tau = draws["Intercept"].values.ravel(), draws["sd(Intercept|school)"].values.ravel()
    new = (mu + tau * rng.standard_normal((50, mu.size))).ravel()
    # 200,000 simulated values: a 5% quantile's Monte Carlo SD is sqrt(0.05 * 0.95 / 200,000) / f(q),
    # about 0.03 with the predictive density f(q) near 0.016 here; 0.2 is more than 6 of those
    assert np.quantile(new, [0.05, 0.95]) == pytest.approx([pred["lower"], pred["upper"]], abs=0.2)
    ax = marginal_fit.plot_forest(prob=0.9)
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert labels == [*"ABCDEFGH", "pooled", "prediction"]
    with pytest.raises(ValueError, match="no grouping factor 'district'"):
        forest_table(marginal_fit, "district")


def test_save_and_load_keep_the_known_sds(marginal_fit: bx.Fit, tmp_path: object) -> None:
    path = marginal_fit.save(tmp_path / "schools.nc")  # type: ignore[operator]
    loaded = bx.load(path)
    np.testing.assert_array_equal(loaded.design.known_sd, marginal_fit.design.known_sd)
    pd.testing.assert_frame_equal(loaded.priors(), marginal_fit.priors())


# ----- exact identities ---------------------------------------------------------------------


def _studies(seed: int, n: int = 30, per: int = 1) -> pd.DataFrame:
    """n studies (per rows each), a moderator, known SDs; y = 0.2 + 0.05 lat + u_study + e.

    u ~ N(0, 0.5^2) and e_i ~ N(0, s_i^2) with s_i in [0.1, 0.3]: the between-study SD dominates
    (I^2 about 0.85), so that tau is estimated away from its boundary at 0.
    """
    rng = np.random.default_rng(seed)
    study = np.repeat(np.arange(n), per)
    lat = rng.uniform(0, 60, size=n)[study]
    s = rng.uniform(0.1, 0.3, size=study.size)
    u = rng.normal(0, 0.5, size=n)[study]
    y = 0.2 + 0.05 * lat + u + rng.normal(0, s)
    return pd.DataFrame(
        {"y": y, "s": s, "latitude": lat, "x": rng.normal(size=study.size), "study": study.astype(str)}
    )


def test_marginal_likelihood_with_known_sds_is_the_dense_normal() -> None:
    """Several rows per study and a correlated random slope: N(X beta, diag(s^2) + Z Sigma Z'), rtol 1e-9."""
    df = _studies(1, n=6, per=4)
    model = bx.mixed("y | se(s) ~ latitude + (x | study)", df)
    assert model.spec.marginalized and model.design.auxiliary == ()
    design, (factor,) = model.design, model.design.factors
    beta = np.array([0.3, 0.04])
    Sigma = np.array([[0.5, 0.1], [0.1, 0.2]])
    b, ll = pt.dvector("beta"), pt.dmatrix("L")
    fn = pytensor.function([b, ll], marginal_loglik(SufficientStatistics.of(design), factor, b, ll, None))
    J, q = factor.n_levels, factor.n_terms
    Z = np.zeros((design.n_obs, J * q))
    for i, j in enumerate(factor.index):
        Z[i, j * q : (j + 1) * q] = factor.values[i]
    V = np.diag(df["s"].to_numpy() ** 2) + Z @ np.kron(np.eye(J), Sigma) @ Z.T
    expected = stats.multivariate_normal(design.X @ beta, V).logpdf(design.y)
    np.testing.assert_allclose(fn(beta, np.linalg.cholesky(Sigma)), expected, rtol=1e-9)
    # the graph's potential is that function, with no sigma
    assert "sigma" not in model.pymc_model.named_vars and "y_marginal" in model.pymc_model.named_vars


def test_full_likelihood_with_known_sds() -> None:
    """The observed variable's log-density is sum_i log N(y_i | x_i'beta + b_j(i), s_i), rtol 1e-10."""
    df = _studies(2, n=5, per=2)
    model = bx.hierarchical("y | se(s) ~ latitude + (1 | study)", df, marginalize=False, centered=[])
    pm_model = model.pymc_model
    assert "sigma" not in pm_model.named_vars
    beta, sd, z = np.array([0.1, 0.05]), np.array([0.4]), np.linspace(-1, 1, 5)[:, None]
    point = {"beta": beta, "sd_study_log__": np.log(sd), "z_study": z}
    logp = pm_model.compile_logp(vars=[pm_model["y"]], jacobian=False)(point)
    factor = model.design.factors[0]
    mu = model.design.X @ beta + sd[0] * z[factor.index, 0]
    expected = stats.norm.logpdf(model.design.y, mu, df["s"].to_numpy()).sum()
    np.testing.assert_allclose(logp, expected, rtol=1e-10)


def test_recovered_effects_with_known_sds_follow_their_conditional() -> None:
    """10,000 draws at one point: b_j ~ N(M_j^{-1} c_j, M_j^{-1}) with M_j = 1/tau^2 + sum w_i, w_i = 1/s_i^2.

    Computed densely, without the sufficient statistics. Bounds as in tests/test_marginal.py: the
    mean's error has SD sqrt(var / S); 4.5 SDs over 6 numbers keep the false-alarm rate below 1e-4;
    the variance's relative SD is sqrt(2 / S) = 0.014 and 0.07 is 5 of those.
    """
    df = _studies(3, n=6, per=3)
    model = bx.hierarchical("y | se(s) ~ latitude + (1 | study)", df)
    design, (factor,) = model.design, model.design.factors
    S, beta, tau = 10_000, np.array([0.25, 0.045]), 0.35
    draws = np.empty((S, factor.n_levels, 1))
    _draw_block(
        SufficientStatistics.of(design),
        factor,
        np.tile(beta, (S, 1)),
        np.full((S, 1, 1), tau**2),
        np.ones(S),  # known SDs: the sums are weighted, sigma = 1
        np.random.default_rng(4),
        draws,
        np.empty_like(draws),
    )
    w = 1 / df["s"].to_numpy() ** 2
    r = design.y - design.X @ beta
    M = 1 / tau**2 + np.bincount(factor.index, weights=w)
    mean = np.bincount(factor.index, weights=w * r) / M
    z = (draws[:, :, 0].mean(axis=0) - mean) / np.sqrt(1 / M / S)
    assert np.abs(z).max() < 4.5, z
    np.testing.assert_allclose(draws[:, :, 0].var(axis=0), 1 / M, rtol=0.07)


def test_dirichlet_prior_on_mixture_weights_carries_the_jacobian() -> None:
    """log p(gamma) = log Dirichlet(softmax(0, gamma)) + log|det d(pi_2..pi_k)/d gamma|, rtol 1e-9.

    The Jacobian is taken by central differences (step 1e-6, error about 1e-10), not from the
    closed form the model uses (prod_i pi_i).
    """
    stamps = bx.datasets.load("stamps")
    alpha = [2.0, 3.0, 4.0]
    model = bx.fmm(3, "thickness ~ 1", stamps, priors={"class": bx.priors.Dirichlet(alpha)})
    assert "class" in model.spec.priors and "class[2]:Intercept" not in model.spec.priors
    assert model.spec.prior_table().loc["class", "prior"] == "Dirichlet([2, 3, 4])"
    pm_model = model.pymc_model
    (potential,) = pm_model.replace_rvs_by_values(pm_model.potentials)
    fn = pm_model.compile_fn(potential, inputs=pm_model.value_vars, on_unused_input="ignore")

    def probs(g: np.ndarray) -> np.ndarray:
        e = np.exp(np.concatenate([[0.0], g]))
        return e / e.sum()

    for g in (np.array([0.3, -0.5]), np.array([-2.0, 1.5])):
        point = pm_model.initial_point()
        point["gamma"] = g[:, None]
        h = 1e-6
        jac = np.column_stack([(probs(g + h * e)[1:] - probs(g - h * e)[1:]) / (2 * h) for e in np.eye(2)])
        expected = stats.dirichlet.logpdf(probs(g), alpha) + np.log(abs(np.linalg.det(jac)))
        np.testing.assert_allclose(fn(point), expected, rtol=1e-9)


# ----- recovery ------------------------------------------------------------------------------


def test_meta_regression_recovers_the_moderator() -> None:
    """40 simulated studies, y = 0.2 + 0.05 latitude + u, u ~ N(0, 0.5^2), known s in [0.1, 0.3].

    assert_recovered: diagnostics gate, then each of the 3 parameters within norm.isf(0.01 / 6) = 2.93
    posterior SDs of its true value.
    """
    df = _studies(5, n=40)
    fit = bx.hierarchical("y | se(s) ~ latitude + (1 | study)", df).fit(random_seed=3, progressbar=False)
    assert_recovered(fit, {"Intercept": 0.2, "latitude": 0.05, "sd(Intercept|study)": 0.5}, alpha=ALPHA)


# ----- errors and specification -------------------------------------------------------------


def test_se_needs_the_gaussian_family(schools: pd.DataFrame) -> None:
    with pytest.raises(ValueError, match=r"known standard deviations.*family='gaussian'.*family='poisson'"):
        bx.hierarchical(FORMULA, schools.assign(y=schools["y"].abs()), family="poisson")
    with pytest.raises(ValueError, match="mixture formulas cannot have known standard deviations"):
        bx.fmm(2, "y | se(sigma) ~ 1", schools)


def test_bad_standard_deviations_are_counted_and_located(schools: pd.DataFrame) -> None:
    bad = schools.assign(sigma=schools["sigma"].astype(float)).set_axis(list("abcdefgh"))
    bad.loc[["b", "e"], "sigma"] = [0.0, -3.0]
    with pytest.raises(ValueError, match=r"finite and > 0, but 2 of 8 rows.*'b', 'e'.*\[0.0, -3.0\]"):
        bx.hierarchical(FORMULA, bad)
    missing = schools.assign(sigma=schools["sigma"].astype(float))
    missing.loc[3, "sigma"] = np.nan
    with pytest.raises(ValueError, match=r"missing or non-finite values in 'sigma': 1 rows"):
        bx.hierarchical(FORMULA, missing)
    with pytest.warns(DroppedRowsWarning, match="dropped 1 of 8 rows"):
        model = bx.hierarchical(FORMULA, missing, missing="drop")
    assert model.spec.dropped == (3,) and model.design.known_sd is not None
    assert model.design.known_sd.tolist() == [15.0, 10.0, 16.0, 9.0, 11.0, 10.0, 18.0]


def test_prior_names_and_support(schools: pd.DataFrame) -> None:
    with pytest.raises(
        ValueError, match=r"no parameter named 'tau'.*valid names: \['Intercept', 'sd\(Intercept\|school\)'\]"
    ):
        bx.hierarchical(FORMULA, schools, priors={"tau": bx.priors.HalfCauchy(5)})
    with pytest.raises(ValueError, match="has known SDs and no residual sigma"):
        bx.hierarchical(FORMULA, schools, priors={"sigma": bx.priors.HalfCauchy(5)})
    with pytest.raises(
        ValueError, match=r"'sd\(Intercept\|school\)' is positive: use HalfNormal, HalfCauchy"
    ):
        bx.hierarchical(FORMULA, schools, priors={"sd(Intercept|school)": bx.priors.Normal(0, 5)})
    with pytest.raises(ValueError, match=r"'Intercept' is a real-valued coefficient"):
        bx.hierarchical(FORMULA, schools, priors={"Intercept": bx.priors.Gamma(2, 1)})
    with pytest.raises(ValueError, match="class probabilities of a finite mixture"):
        bx.hierarchical(FORMULA, schools, priors={"Intercept": bx.priors.Dirichlet(1)})
    sleep = bx.datasets.load("sleepstudy")
    with pytest.raises(ValueError, match=r"share one LKJ prior, keyed by the factor: 'corr\(Subject\)'"):
        bx.hierarchical(
            "Reaction ~ Days + (Days | Subject)",
            sleep,
            priors={"corr(Intercept,Days|Subject)": bx.priors.LKJ(2)},
        )
    # every listed prior is accepted where it suits, and recorded
    chosen = {
        "Intercept": bx.priors.StudentT(3, 0, 10),
        "sd(Intercept|school)": bx.priors.HalfStudentT(3, 5),
    }
    table = bx.mixed(FORMULA, schools, priors=chosen).spec.prior_table()
    assert table["prior"].tolist() == ["StudentT(3, 0, 10)", "HalfStudentT(3, 5)"]
    for prior in (
        bx.priors.Exponential(0.2),
        bx.priors.Gamma(2, 0.5),
        bx.priors.Uniform(0, 50),
        bx.priors.Beta(2, 2),
        bx.priors.HalfNormal(5),
    ):
        spec = bx.hierarchical(FORMULA, schools, priors={"sd(Intercept|school)": prior}).spec
        assert spec.priors["sd(Intercept|school)"] == prior
    defaults = bx.mixed(FORMULA, schools).spec.prior_table()
    assert defaults["prior"].tolist()[0] == "Flat()" and defaults["source"].tolist() == ["default"] * 2


@pytest.mark.parametrize(
    ("make", "error"),
    [
        (lambda: bx.priors.Beta(0, 1), "Beta: alpha must be a finite positive number"),
        (lambda: bx.priors.Cauchy(0, -1), "Cauchy: beta must be a finite positive number"),
        (lambda: bx.priors.Dirichlet([1.0]), "one concentration per class"),
        (lambda: bx.priors.Dirichlet([1.0, np.inf]), "Dirichlet: alpha must be a finite positive number"),
        (lambda: bx.priors.Dirichlet("1"), "alpha must be a number or a sequence"),
        (lambda: bx.priors.Uniform(1, 0), "must exceed lower"),
    ],
)
def test_prior_constructors_check_their_arguments(make: object, error: str) -> None:
    with pytest.raises((ValueError, TypeError), match=error):
        make()  # type: ignore[operator]


def test_dirichlet_needs_constant_class_probabilities() -> None:
    stamps = bx.datasets.load("stamps").assign(z=lambda d: np.arange(len(d)) % 2)
    with pytest.raises(ValueError, match="class_formula gives them covariates"):
        bx.fmm(2, "thickness ~ 1", stamps, class_formula="~ z", priors={"class": bx.priors.Dirichlet(1)})
    with pytest.raises(ValueError, match="has 3 concentrations, but the mixture has 2 classes"):
        bx.fmm(2, "thickness ~ 1", stamps, priors={"class": bx.priors.Dirichlet([1, 1, 1])})


def test_prediction_of_new_studies(marginal_fit: bx.Fit) -> None:
    new = pd.DataFrame({"school": ["A", "Z"], "sigma": [15.0, 5.0]}, index=["a", "z"])
    mean = marginal_fit.predict(new.drop(columns="sigma"), random_seed=1)
    assert mean.sizes["obs"] == 2
    with pytest.raises(ValueError, match=r"need each new row's SD"):
        marginal_fit.predict(new.drop(columns="sigma"), "response", random_seed=1)
    draws = marginal_fit.predict(new, "response", random_seed=1)
    # a new study's observed estimate: theta_new + N(0, 5^2), so its spread exceeds 5
    assert float(draws.sel(obs="z").std()) > 5.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # Pareto k with eight observations
        assert np.isfinite(marginal_fit.loo().elpd)
