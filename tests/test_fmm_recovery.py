"""Recovery of finite mixtures of regressions with class covariates, on simulated data.

First a gate on the diagnostics (R-hat <= 1.01, bulk ESS >= 400, no divergences, chains in one
mode), then every true value within a z-bound of its posterior: family-wise false-alarm rate
ALPHA per fit, split over the scalars checked (Bonferroni), z_crit = norm.isf(ALPHA / (2 n)).

Draws: 4 chains x 500 after 500 tuning. Chains start at the ML maximum and these posteriors are
nearly normal, so the bulk ESS is 1,700-1,900 for 2,000 draws (measured), well above the gate;
1000 x 1000 would double the time for no stronger test.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import special

import bayesmix as bx
from tests.helpers import assert_recovered

ALPHA = 0.01
N = 600


def _check(fit: bx.MixtureFit, truth: dict[str, float]) -> None:
    assert_recovered(fit, truth, alpha=ALPHA)
    assert not fit.modes().multimodal, fit.modes().table


@pytest.mark.slow
def test_recovers_gaussian_regressions_with_class_covariate() -> None:
    """Class 1: y = 1 + 2x + N(0, 0.5^2); class 2: y = 4 - x + N(0, 1); logit P(class 2) = 0.3 + 1.2 z."""
    rng = np.random.default_rng(31)
    x, z = rng.normal(size=N), rng.normal(size=N)
    second = rng.random(N) < special.expit(0.3 + 1.2 * z)
    y = np.where(second, 4.0 - 1.0 * x + rng.normal(0, 1.0, N), 1.0 + 2.0 * x + rng.normal(0, 0.5, N))
    model = bx.fmm(2, "y ~ x", pd.DataFrame({"y": y, "x": x, "z": z}), class_formula="~ z")
    fit = model.fit(draws=500, tune=500, random_seed=31, progressbar=False)
    # classes are labelled by increasing intercept: the truth's class 1 (intercept 1) is class 1
    _check(
        fit,
        {
            "Intercept[1]": 1.0,
            "x[1]": 2.0,
            "sigma[1]": 0.5,
            "Intercept[2]": 4.0,
            "x[2]": -1.0,
            "sigma[2]": 1.0,
            "class[2]:Intercept": 0.3,
            "class[2]:z": 1.2,
        },
    )


@pytest.mark.slow
def test_recovers_poisson_regressions_with_class_covariate() -> None:
    """Class 1: log mu = 0.5 + 0.3x; class 2: log mu = 2 - 0.4x; logit P(class 2) = -0.5 + z."""
    rng = np.random.default_rng(32)
    x, z = rng.normal(size=N), rng.normal(size=N)
    second = rng.random(N) < special.expit(-0.5 + 1.0 * z)
    y = rng.poisson(np.exp(np.where(second, 2.0 - 0.4 * x, 0.5 + 0.3 * x)))
    model = bx.fmm(2, "y ~ x", pd.DataFrame({"y": y, "x": x, "z": z}), family="poisson", class_formula="~ z")
    fit = model.fit(draws=500, tune=500, random_seed=32, progressbar=False)
    _check(
        fit,
        {
            "Intercept[1]": 0.5,
            "x[1]": 0.3,
            "Intercept[2]": 2.0,
            "x[2]": -0.4,
            "class[2]:Intercept": -0.5,
            "class[2]:z": 1.0,
        },
    )
