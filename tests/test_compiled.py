"""Reuse of compiled models across fits of the same structure (bayesmix.compiled).

A reused compiled model must sample the *new* data: the second fit's response is the
first's plus 100, so its intercept must move by 100. The bound is 5 posterior SDs of the
difference of two independent posterior means' errors, i.e. 5 * sqrt(mcse_1^2 + mcse_2^2)
plus the exact shift, which holds unless a fit sampled the wrong data (then the
intercept is off by about 100, dozens of SDs).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import bayesmix as bx
from bayesmix import compiled

FAST = {"draws": 300, "tune": 300, "chains": 2, "random_seed": 3, "progressbar": False}


@pytest.fixture(autouse=True)
def _empty_cache() -> None:
    compiled.clear_cache()


def _intercept(fit: bx.Fit) -> tuple[float, float]:
    row = fit.summary().loc["Intercept"]
    return float(row["mean"]), float(row["mcse_mean"])


@pytest.mark.parametrize(
    ("marginalize", "backend", "reused"), [(True, "numba", 1), (False, "numba", 1), (True, "jax", 0)]
)
def test_second_fit_of_the_same_structure_samples_its_own_data(
    marginalize: bool, backend: str, reused: int
) -> None:
    """numba models are reused with the new data swapped in; JAX models are frozen and compiled anew."""
    sleep = bx.datasets.load("sleepstudy")
    shifted = sleep.assign(Reaction=sleep["Reaction"] + 100.0)
    formula = "Reaction ~ Days + (Days | Subject)"
    first = bx.mixed(formula, sleep, marginalize=marginalize).fit(**FAST, backend=backend)
    second = bx.mixed(formula, shifted, marginalize=marginalize).fit(**FAST)  # "auto" finds the cached one
    assert first.backend == second.backend == backend
    assert first.idata["posterior"].attrs["compiled_model_reused"] == 0
    assert second.idata["posterior"].attrs["compiled_model_reused"] == reused
    (m1, e1), (m2, e2) = _intercept(first), _intercept(second)
    assert abs((m2 - m1) - 100.0) < 5 * np.hypot(e1, e2)
    # the observed data recorded on the result are the second model's, not the first's
    observed = second.idata["observed_data"]["Reaction"].to_numpy()
    np.testing.assert_array_equal(observed, shifted["Reaction"].to_numpy())


def test_a_different_structure_is_compiled_anew() -> None:
    sleep = bx.datasets.load("sleepstudy")
    bx.mixed("Reaction ~ Days + (Days | Subject)", sleep).fit(**FAST, backend="numba")
    other_prior = bx.hierarchical(
        "Reaction ~ Days + (Days | Subject)", sleep, priors={"sigma": bx.priors.HalfNormal(10.0)}
    ).fit(**FAST, backend="numba")
    assert other_prior.idata["posterior"].attrs["compiled_model_reused"] == 0


def test_renamed_levels_are_compiled_anew() -> None:
    # the compiled model labels its draws with its own coordinates: new labels need a new one
    sleep = bx.datasets.load("sleepstudy")
    renamed = sleep.assign(Subject="s" + sleep["Subject"].astype(str))
    bx.mixed("Reaction ~ Days + (1 | Subject)", sleep, marginalize=False).fit(**FAST)
    fit = bx.mixed("Reaction ~ Days + (1 | Subject)", renamed, marginalize=False).fit(**FAST)
    assert fit.idata["posterior"].attrs["compiled_model_reused"] == 0
    assert str(fit.posterior["re_Subject"]["Subject"].to_numpy()[0]).startswith("s")


def test_backend_is_validated() -> None:
    model = bx.mixed("Reaction ~ Days + (1 | Subject)", bx.datasets.load("sleepstudy"))
    with pytest.raises(ValueError, match="unknown backend 'llvm'"):
        model.fit(backend="llvm")
    with pytest.raises(ValueError, match="chooses nutpie's compiler"):
        model.fit(backend="jax", sampler="pymc")


def test_a_count_response_is_part_of_the_structure() -> None:
    """Poisson's log y! is folded as a constant, so new counts mean a new compiled model."""
    rng = np.random.default_rng(4)
    df = pd.DataFrame({"g": np.repeat([f"g{k}" for k in range(8)], 10), "y": rng.poisson(3.0, 80)})
    bx.hierarchical("y ~ 1 + (1 | g)", df, family="poisson").fit(**FAST, backend="numba")
    again = bx.hierarchical("y ~ 1 + (1 | g)", df.assign(y=df["y"] + 1), family="poisson")
    fit = again.fit(**FAST, backend="numba")
    assert fit.idata["posterior"].attrs["compiled_model_reused"] == 0
    np.testing.assert_array_equal(fit.idata["observed_data"]["y"].to_numpy(), df["y"].to_numpy() + 1)
