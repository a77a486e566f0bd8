"""Recovery on simulated data: diagnostics gate first, then each true value within a z-bound.

Family-wise false-alarm rate ALPHA = 0.01 per fit, split over the scalars checked
(Bonferroni): z_crit = norm.isf(ALPHA / (2 * n_scalars)).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import bayesmix as bx
from tests.helpers import assert_recovered

from .conftest import simulate_lmm

ALPHA = 0.01


def _check(fit: bx.Fit, truth: dict[str, float]) -> None:
    assert_recovered(fit, truth, alpha=ALPHA, every=False)


@pytest.mark.slow
def test_recovers_correlated_slopes():
    rng = np.random.default_rng(11)
    df = simulate_lmm(rng, n_groups=40, n_per=15, beta=(2.0, -1.0), sd=(1.0, 0.5), corr=0.4, sigma=0.8)
    # The population intercept mixes slowly against 40 group intercepts (ESS ~350 per 4000 draws
    # in either parametrization): draw 2 x 4000 so that the ESS gate is met, not loosened.
    fit = bx.hierarchical("y ~ x + (x | g)", df).fit(draws=2000, tune=1500, random_seed=11, progressbar=False)
    _check(
        fit,
        {
            "Intercept": 2.0,
            "x": -1.0,
            "sd(Intercept|g)": 1.0,
            "sd(x|g)": 0.5,
            "corr(Intercept,x|g)": 0.4,
            "sigma": 0.8,
        },
    )


@pytest.mark.slow
def test_recovers_crossed():
    """Crossed random intercepts, one row per (a, b) cell: 12 rows per level of a, 30 per level of b.

    The population intercept is weakly identified against two sets of group means. With 48 and
    120 rows per level this model mixed badly in both parametrizations (min bulk ESS 36-359,
    R-hat up to 1.09 over 4 x 1000-2000 draws): the marginalized sampler of the speed issue is the
    cure. This test keeps groups less informative, where the non-centered default suits both.
    """
    rng = np.random.default_rng(12)
    n_a, n_b = 30, 12
    a = np.repeat(np.arange(n_a), n_b)
    b = np.tile(np.arange(n_b), n_a)
    ua, ub = rng.normal(0, 0.8, n_a), rng.normal(0, 0.6, n_b)
    x = rng.normal(size=a.size)
    y = 1.0 + 0.5 * x + ua[a] + ub[b] + rng.normal(0, 1.0, a.size)
    df = pd.DataFrame({"y": y, "x": x, "a": [f"a{i}" for i in a], "b": [f"b{i}" for i in b]})
    fit = bx.hierarchical("y ~ x + (1 | a) + (1 | b)", df).fit(
        draws=2000, tune=1500, random_seed=12, progressbar=False
    )
    _check(fit, {"Intercept": 1.0, "x": 0.5, "sd(Intercept|a)": 0.8, "sd(Intercept|b)": 0.6, "sigma": 1.0})
