"""Summing binomial rows that share their linear predictor (bayesmix.spec.aggregate)."""

from __future__ import annotations

import arviz_stats as azs
import numpy as np
import pandas as pd
import pytest
from scipy import stats

import bayesmix as bx
from bayesmix.spec import aggregate
from bayesmix.spec.aggregate import aggregate_binomial

ALPHA = 0.01  # family-wise false-alarm rate of the posterior comparison


def _bernoulli_frame(seed: int, n: int = 2000, groups: int = 20) -> pd.DataFrame:
    """Binary responses with a two-level treatment and a three-level dose: 6 cells per group."""
    rng = np.random.default_rng(seed)
    g = rng.integers(0, groups, n)
    treat = rng.integers(0, 2, n)
    dose = rng.choice(["low", "mid", "high"], n)
    u = rng.normal(0, 0.7, groups)
    eta = -0.5 + 0.8 * treat + np.where(dose == "high", 0.6, 0.0) + u[g]
    y = rng.binomial(1, 1 / (1 + np.exp(-eta)))
    return pd.DataFrame({"y": y, "treat": treat, "dose": dose, "g": [f"g{k:02d}" for k in g]})


def test_summed_rows_keep_the_likelihood_up_to_a_constant() -> None:
    """sum_i log Bin(s_i | n_i, p_i) - log Bin(S_k | N_k, p_k) is free of the parameters.

    Checked at two random linear predictors that are constant within the summed rows: the
    difference must be the same at both (to rounding, 1e-9 relative).
    """
    df = _bernoulli_frame(seed=1)
    model = bx.hierarchical("y ~ treat + dose + (1 | g)", df, family="bernoulli")
    agg = model.aggregated
    assert agg is not None and agg.family.name == "binomial"
    assert agg.design.n_obs <= 2 * 3 * 20 < model.design.n_obs
    assert agg.design.y.sum() == df["y"].sum() and agg.design.trials.sum() == len(df)
    rng = np.random.default_rng(2)
    gaps = []
    for _ in range(2):
        eta_summed = rng.normal(size=agg.design.n_obs)
        p_summed = 1 / (1 + np.exp(-eta_summed))
        p_rows = p_summed[agg.row_of]
        full = stats.bernoulli.logpmf(model.design.y, p_rows).sum()
        summed = stats.binom.logpmf(agg.design.y, agg.design.trials, p_summed).sum()
        gaps.append(full - summed)
    assert gaps[0] == pytest.approx(gaps[1], rel=1e-9)


def test_rows_are_summed_only_where_it_pays() -> None:
    rng = np.random.default_rng(3)
    df = pd.DataFrame({"y": rng.integers(0, 2, 300), "x": rng.normal(size=300), "g": rng.integers(0, 5, 300)})
    # a continuous covariate: every row distinct
    assert bx.hierarchical("y ~ x + (1 | g)", df, family="bernoulli").aggregated is None
    # not a binomial family
    counts = df.assign(y=rng.poisson(2.0, 300))
    assert bx.hierarchical("y ~ 1 + (1 | g)", counts, family="poisson").aggregated is None
    # the Gaussian family is integrated out instead
    assert bx.hierarchical("y ~ 1 + (1 | g)", df.assign(y=df["x"])).aggregated is None


def test_an_offset_and_random_slopes_separate_rows() -> None:
    df = _bernoulli_frame(seed=4).assign(w=lambda d: np.where(d["treat"] == 1, 0.0, 0.5))
    model = bx.hierarchical("y ~ dose + offset(w) + (treat | g)", df, family="bernoulli")
    agg = aggregate_binomial(model.design, model.spec.family_def)
    assert agg is not None
    # within a summed row, every original row has the same offset, level and slope value
    design = model.design
    for column in (design.offset, design.factors[0].index, design.factors[0].values[:, 1]):
        np.testing.assert_array_equal(
            column, np.asarray(column)[np.unique(agg.row_of, return_index=True)[1]][agg.row_of]
        )


@pytest.mark.slow
def test_summed_and_row_by_row_posteriors_agree(monkeypatch: pytest.MonkeyPatch) -> None:
    """The same posterior both ways: means within z * sqrt(mcse_1^2 + mcse_2^2) for every parameter.

    z = norm.isf(ALPHA / (2 m)) over the m parameters (random effects included): a
    family-wise false-alarm rate of ALPHA when both MCSEs are honest.
    """
    df = _bernoulli_frame(seed=5)
    settings = {"draws": 1000, "tune": 1000, "chains": 4, "random_seed": 7, "progressbar": False}
    summed = bx.hierarchical("y ~ treat + dose + (1 | g)", df, family="bernoulli")
    monkeypatch.setattr(aggregate, "AGGREGATE_MAX_SHARE", 0.0)
    rows = bx.hierarchical("y ~ treat + dose + (1 | g)", df, family="bernoulli")
    assert summed.aggregated is not None and rows.aggregated is None
    fits = [summed.fit(**settings), rows.fit(**settings)]
    assert fits[0].idata["posterior"].attrs["aggregated_rows"] == summed.aggregated.design.n_obs
    np.testing.assert_array_equal(fits[0].idata["observed_data"]["y"].to_numpy(), df["y"].to_numpy())
    tables = []
    for fit in fits:
        diag = fit.diagnostics()
        assert diag.max_rhat <= 1.01 and diag.divergences == 0, str(diag)
        re = fit.posterior["re_g"]
        effects = pd.DataFrame(
            {
                "mean": re.mean(("chain", "draw")).to_numpy().ravel(),
                "mcse_mean": azs.mcse(re, sample_dims=["chain", "draw"]).to_numpy().ravel(),
            },
            index=[f"re[{level}]" for level in re["g"].to_numpy()],
        )
        tables.append(pd.concat([fit.summary()[["mean", "mcse_mean"]], effects]))
    a, b = tables
    z = (a["mean"] - b["mean"]).abs() / np.sqrt(a["mcse_mean"] ** 2 + b["mcse_mean"] ** 2)
    assert z.max() < stats.norm.isf(ALPHA / (2 * len(z))), z.sort_values().tail()
    # pointwise log-likelihood (LOO) stays per original row
    assert fits[0].loo().n_data_points == len(df)
