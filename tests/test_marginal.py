"""Gaussian random effects integrated out exactly (issue 5).

* the marginal log-likelihood equals scipy's multivariate normal density of ``y`` with
  ``V = sigma^2 I + Z (K (x) Sigma) Z'`` built densely (rtol 1e-9);
* the random effects drawn after sampling follow their exact conditional posterior;
* the marginalized and the full model give the same posterior: every parameter and every
  random effect agree within a Bonferroni bound on their Monte Carlo standard errors.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytensor
import pytensor.tensor as pt
import pytest
from scipy import stats

import bayesmix as bx
from bayesmix.build.marginal import SufficientStatistics, marginal_loglik
from bayesmix.results.marginal import _draw_block

ALPHA = 0.01


def _frame(seed: int, n_groups: int = 7) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    g = rng.integers(0, n_groups, size=40)
    g[:n_groups] = np.arange(n_groups)  # every level has data
    x = rng.normal(size=g.size)
    y = 1.0 + 0.5 * x + rng.normal(size=n_groups)[g] + 0.3 * rng.normal(size=n_groups)[g] * x
    return pd.DataFrame({"y": y + rng.normal(size=g.size), "x": x, "g": [f"g{k}" for k in g]})


def _kinship(levels: list[str]) -> pd.DataFrame:
    n = len(levels)
    K = 0.6 * np.eye(n) + 0.4 * np.exp(-np.abs(np.subtract.outer(np.arange(n), np.arange(n))) / 2.0)
    return pd.DataFrame(K, index=levels, columns=levels)


CASES = {
    "intercept": ("y ~ x + (1 | g)", np.array([[0.8]]), False),
    "correlated": ("y ~ x + (x | g)", np.array([[0.8, 0.1], [0.1, 0.3]]), False),
    "uncorrelated": ("y ~ x + (x || g)", np.diag([0.8, 0.3]), False),
    "known K": ("y ~ x + (x | g)", np.array([[0.8, 0.1], [0.1, 0.3]]), True),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_marginal_loglik_equals_dense_normal(case: str) -> None:
    formula, Sigma, with_k = CASES[case]
    df = _frame(seed=sorted(CASES).index(case))
    levels = sorted(df["g"].unique())
    covariances = {"g": _kinship(levels)} if with_k else None
    # with K the default samples the random effects (slower marginal); ask for it explicitly
    model = bx.mixed(formula, df, covariances=covariances, marginalize=True if with_k else None)
    assert model.spec.marginalized
    design, (factor,) = model.design, model.design.factors
    beta, sigma = np.array([0.9, 0.4]), 0.7
    L = np.linalg.cholesky(Sigma)
    b, ll, s = pt.dvector("beta"), pt.dmatrix("L"), pt.dscalar("sigma")
    fn = pytensor.function([b, ll, s], marginal_loglik(SufficientStatistics.of(design), factor, b, ll, s))
    # dense: Z is n x Jq with row i holding the term values in level index(i)'s block
    J, q = factor.n_levels, factor.n_terms
    Z = np.zeros((design.n_obs, J * q))
    for i, j in enumerate(factor.index):
        Z[i, j * q : (j + 1) * q] = factor.values[i]
    K = factor.covariance if factor.covariance is not None else np.eye(J)
    V = sigma**2 * np.eye(design.n_obs) + Z @ np.kron(K, Sigma) @ Z.T
    expected = stats.multivariate_normal(design.X @ beta, V).logpdf(design.y)
    np.testing.assert_allclose(fn(beta, L, sigma), expected, rtol=1e-9)


def test_recovered_effects_follow_their_conditional() -> None:
    """10,000 draws at one parameter point: mean and covariance of b_j are M_j^{-1} c_j and M_j^{-1}.

    Bounds: the sample mean's error has SD sqrt(diag(M^{-1}) / S); with S = 10,000 draws and 14
    numbers checked, 4.5 SDs keep the family-wise false-alarm rate below 1e-4. The sample
    variance's relative SD is sqrt(2 / S) = 0.014; 0.07 is 5 of those.
    """
    df = _frame(seed=11)
    model = bx.mixed("y ~ x + (x | g)", df)
    design, (factor,) = model.design, model.design.factors
    stats_ = SufficientStatistics.of(design)
    S = 10_000
    beta = np.tile([0.9, 0.4], (S, 1))
    Sigma = np.array([[0.8, 0.1], [0.1, 0.3]])
    cov = np.broadcast_to(Sigma, (S, 2, 2)).copy()
    sigma = np.full(S, 0.7)
    draws = np.empty((S, factor.n_levels, factor.n_terms))
    _draw_block(stats_, factor, beta, cov, sigma, np.random.default_rng(3), draws, np.empty_like(draws))
    M = np.linalg.inv(Sigma)[None] + stats_.ZtZ / 0.7**2
    c = (stats_.Zty - stats_.ZtX @ np.array([0.9, 0.4])) / 0.7**2
    mean = np.linalg.solve(M, c[..., None])[..., 0]
    var = np.diagonal(np.linalg.inv(M), axis1=1, axis2=2)
    z = (draws.mean(axis=0) - mean) / np.sqrt(var / S)
    assert np.abs(z).max() < 4.5, z
    np.testing.assert_allclose(draws.var(axis=0), var, rtol=0.07)


@pytest.mark.slow
def test_marginalized_and_full_posteriors_agree() -> None:
    """sleepstudy, ``(Days | Subject)``: both samplers' means agree within MCSE for all 42 scalars.

    |mean_m - mean_f| / sqrt(mcse_m^2 + mcse_f^2) < z with z = norm.isf(ALPHA / (2 * 42)): a
    family-wise false-alarm rate of ALPHA = 0.01 when both chains' MCSEs are honest.
    """
    sleep = bx.datasets.load("sleepstudy")
    settings = {"draws": 1000, "tune": 1000, "chains": 4, "random_seed": 5, "progressbar": False}
    marginal = bx.mixed("Reaction ~ Days + (Days | Subject)", sleep).fit(**settings)
    full = bx.mixed("Reaction ~ Days + (Days | Subject)", sleep, marginalize=False).fit(**settings)
    assert marginal.spec.marginalized and not full.spec.marginalized
    for fit in (marginal, full):
        diag = fit.diagnostics()
        assert diag.max_rhat <= 1.01 and diag.min_ess_bulk >= 400 and diag.divergences == 0, str(diag)
    a = pd.concat([marginal.summary(), _re_summary(marginal)])
    b = pd.concat([full.summary(), _re_summary(full)])
    assert list(a.index) == list(b.index) and len(a) == 42
    z = (a["mean"] - b["mean"]).abs() / np.sqrt(a["mcse_mean"] ** 2 + b["mcse_mean"] ** 2)
    z_crit = stats.norm.isf(ALPHA / (2 * len(z)))
    assert z.max() < z_crit, z.sort_values().tail()


def _re_summary(fit: bx.Fit) -> pd.DataFrame:
    """Mean and MCSE of every random effect, one row per (level, term)."""
    import arviz_stats as azs

    re = fit.posterior["re_Subject"]
    mean = re.mean(("chain", "draw")).to_numpy().ravel()
    mcse = azs.mcse(re, sample_dims=["chain", "draw"]).to_numpy().ravel()
    index = [f"re[{lvl},{t}]" for lvl in re["Subject"].values for t in re["Subject__term"].values]
    return pd.DataFrame({"mean": mean, "mcse_mean": mcse}, index=index)


def test_which_models_are_marginalized() -> None:
    df = _frame(seed=2).assign(
        h=lambda d: np.where(d["x"] > 0, "a", "b"), c=lambda d: (d["y"] > 1).astype(int)
    )
    assert bx.hierarchical("y ~ x + (x | g)", df).spec.marginalized
    crossed = bx.hierarchical("y ~ x + (1 | g) + (1 | h)", df)
    assert not crossed.spec.marginalized and "2 grouping factors" in crossed.spec.marginalization
    assert "z_g" in crossed.pymc_model.named_vars or "coef_g" in crossed.pymc_model.named_vars
    full = bx.hierarchical("y ~ x + (x | g)", df, marginalize=False)
    assert not full.spec.marginalized and full.spec.marginalization == "sampled (marginalize=False)"
    assert not bx.hierarchical("c ~ x + (1 | g)", df, family="bernoulli").spec.marginalized
    levels = sorted(df["g"].astype(str).unique())
    known = bx.hierarchical("y ~ x + (1 | g)", df, covariances={"g": _kinship(levels)})
    assert not known.spec.marginalized and "known covariance K" in known.spec.marginalization
    with pytest.raises(ValueError, match=r"marginalize=True is not possible.*bernoulli"):
        bx.hierarchical("c ~ x + (1 | g)", df, family="bernoulli", marginalize=True)
    with pytest.raises(TypeError, match="marginalize must be True, False or None"):
        bx.hierarchical("y ~ x + (1 | g)", df, marginalize="yes")
