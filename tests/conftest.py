"""Shared fixtures. NUTS fits are expensive (compilation ~15-20 s): share them per session."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import bayesmix as bx
from bayesmix.compare.fmm import CloseMaximaWarning, MixtureMLFit


@pytest.fixture(scope="session")
def sleep() -> pd.DataFrame:
    return bx.datasets.load("sleepstudy")


@pytest.fixture(scope="session")
def sleep_mixed_fit(sleep: pd.DataFrame) -> bx.Fit:
    """lme4's sleepstudy as a mixed model (flat fixed-effect priors), 4 x 1000 draws."""
    model = bx.mixed("Reaction ~ Days + (Days | Subject)", sleep)
    return model.fit(random_seed=20261122, progressbar=False)


# ----- finite mixtures on the stamps data (shared by tests/test_fmm_*.py) --------------------


@pytest.fixture(scope="session")
def stamps() -> pd.DataFrame:
    return bx.datasets.load("stamps")


@pytest.fixture(scope="session")
def stamps_normal_model(stamps: pd.DataFrame) -> bx.MixtureModel:
    """Stata's ``fmm 3: regress thickness``; its ML fit is cached on the model object."""
    return bx.fmm(3, "thickness ~ 1", stamps)


@pytest.fixture(scope="session")
def stamps_normal_ml(stamps_normal_model: bx.MixtureModel) -> MixtureMLFit:
    """The default ML search (50 starts, seed 0): the maximum ``fit()`` also starts from."""
    return stamps_normal_model.fit_ml()


@pytest.fixture(scope="session")
def stamps_normal_fit(stamps_normal_model: bx.MixtureModel) -> bx.MixtureFit:
    """The Bayesian stamps mixture with default settings: 4 chains x 1000 draws after 1000 tuning."""
    return stamps_normal_model.fit(random_seed=20261122, progressbar=False)


@pytest.fixture(scope="session")
def stamps_lognormal_ml(stamps: pd.DataFrame) -> tuple[MixtureMLFit, tuple[warnings.WarningMessage, ...]]:
    """Stata's ``fmm 3: glm thickness, family(lognormal)`` by ML, with the warnings its search raised.

    Its two best maxima are 0.57 log-likelihood units apart, so a CloseMaximaWarning is expected.
    """
    model = bx.fmm(3, "thickness ~ 1", stamps, family="lognormal")
    with pytest.warns(CloseMaximaWarning) as record:
        ml = model.fit_ml()
    return ml, tuple(record)


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
