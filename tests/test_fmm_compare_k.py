"""Choosing the number of classes: ``bx.compare_k`` puts ML information criteria beside PSIS-LOO."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import bayesmix as bx


@pytest.fixture(scope="module")
def two_classes() -> pd.DataFrame:
    """200 draws from 0.4 N(0, 1) + 0.6 N(4, 1): two well-separated classes."""
    rng = np.random.default_rng(11)
    first = rng.random(200) < 0.4
    return pd.DataFrame({"y": np.where(first, rng.normal(0.0, 1.0, 200), rng.normal(4.0, 1.0, 200))})


@pytest.mark.slow
def test_compare_k_prefers_the_true_number_of_classes(two_classes: pd.DataFrame) -> None:
    table = bx.compare_k(2, "y ~ 1", two_classes, fit_kwargs={"random_seed": 3, "progressbar": False})
    assert list(table.index) == [1, 2]
    expected = [
        "loglik",
        "df",
        "AIC",
        "BIC",
        "elpd_loo",
        "se",
        "p_loo",
        "pareto_k_high",
        "diagnostics_ok",
        "elpd_diff",
        "dse",
    ]
    assert list(table.columns) == expected
    assert table["df"].tolist() == [2, 5]  # k=1: mean, sd; k=2: two means, two sds, one class logit
    # The classes are 4 SDs apart: one normal (SD about 2.2) fits each point about 0.13 log units
    # worse than the mixture, about 26 units over n = 200, far above the 3 extra parameters'
    # penalties, so every criterion picks k = 2.
    assert table["BIC"].idxmin() == 2
    assert table["AIC"].idxmin() == 2
    assert table["elpd_loo"].idxmax() == 2
    # The paired SE of the difference (dse) is the right yardstick; two of them leave a one-sided
    # false-alarm rate of 2.3% under a normal approximation of the difference.
    assert table.loc[2, "elpd_diff"] == 0.0
    gap, dse = -table.loc[1, "elpd_diff"], table.loc[1, "dse"]
    assert gap == pytest.approx(table.loc[2, "elpd_loo"] - table.loc[1, "elpd_loo"])
    assert gap > 2 * dse, f"elpd gap {gap:.1f} is within noise (dse {dse:.1f})"
    assert np.allclose(table["AIC"], -2 * table["loglik"] + 2 * table["df"])
    assert np.allclose(table["BIC"], -2 * table["loglik"] + np.log(200) * table["df"])
    assert table["diagnostics_ok"].all()


def test_compare_k_rejects_bad_ks(two_classes: pd.DataFrame) -> None:
    with pytest.raises(ValueError, match="ks must be a positive integer"):
        bx.compare_k(0, "y ~ 1", two_classes)
    with pytest.raises(ValueError, match="ks must be a positive integer"):
        bx.compare_k([1, 2.5], "y ~ 1", two_classes)  # type: ignore[list-item]


def test_compare_k_passes_the_search_settings_on(two_classes: pd.DataFrame) -> None:
    """ml_kwargs reach fit_ml: a bad one stops the first k before anything is sampled."""
    with pytest.raises(ValueError, match="n_starts must be a positive integer"):
        bx.compare_k(2, "y ~ 1", two_classes, ml_kwargs={"n_starts": 0})
