"""Shared fixtures. NUTS fits are expensive (compilation ~15-20 s): share them per session."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import bayesmix as bx


@pytest.fixture(scope="session")
def sleep() -> pd.DataFrame:
    return bx.datasets.load("sleepstudy")


@pytest.fixture(scope="session")
def sleep_mixed_fit(sleep: pd.DataFrame) -> bx.Fit:
    """lme4's sleepstudy as a mixed model (flat fixed-effect priors), 4 x 1000 draws."""
    model = bx.mixed("Reaction ~ Days + (Days | Subject)", sleep)
    return model.fit(random_seed=20261122, progressbar=False)


def simulate_lmm(
    rng: np.random.Generator,
    *,
    n_groups: int,
    n_per: int,
    beta: tuple[float, float],
    sd: tuple[float, float],
    corr: float,
    sigma: float,
) -> pd.DataFrame:
    """y = b0 + b1 x + u0[g] + u1[g] x + e with (u0, u1) ~ N(0, Sigma), e ~ N(0, sigma^2)."""
    cov = np.array([[sd[0] ** 2, corr * sd[0] * sd[1]], [corr * sd[0] * sd[1], sd[1] ** 2]])
    u = rng.multivariate_normal(np.zeros(2), cov, size=n_groups)
    g = np.repeat(np.arange(n_groups), n_per)
    x = rng.normal(size=g.size)
    y = beta[0] + beta[1] * x + u[g, 0] + u[g, 1] * x + rng.normal(0, sigma, size=g.size)
    return pd.DataFrame({"y": y, "x": x, "g": [f"g{k:02d}" for k in g]})
