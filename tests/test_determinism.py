"""Issue 7, item 3: the same data, model and ``random_seed`` give bit-identical draws.

Checked for every sampler bayesmix offers: nutpie under its numba and JAX compilers, with a
freshly compiled model and with one reused from bayesmix's per-process cache
(:mod:`bayesmix.compiled`, which swaps the data into the compiled model of an earlier fit);
PyMC's own NUTS; numpyro. blackjax cannot run here at all (see its test). The models: a
Gaussian model whose random effects are integrated out and drawn after sampling (those
draws must repeat too), a Poisson GLMM and a finite mixture (chains started at the ML fit,
whose search is seeded as well). A different seed must give different draws.

"Bit-identical" means equal bytes: every posterior variable (and the sample statistics that
do not measure time) compared with ``ndarray.tobytes``. Draws are few; determinism does not
depend on their number.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr

import bayesmix as bx
from bayesmix import compiled

TINY = {"draws": 25, "tune": 40, "chains": 2, "progressbar": False}
# sample statistics that record wall or process time differ from run to run by nature
TIMING = ("perf_counter", "process_time", "time", "duration")


def _gaussian() -> pd.DataFrame:
    rng = np.random.default_rng(11)
    g = np.repeat(np.arange(6), 6)
    x = rng.normal(size=g.size)
    y = 1.0 + 0.5 * x + rng.normal(0, 0.7, 6)[g] + rng.normal(0, 0.5, g.size)
    return pd.DataFrame({"y": y, "x": x, "g": [f"g{k}" for k in g]})


def _counts() -> pd.DataFrame:
    data = _gaussian()
    rng = np.random.default_rng(12)
    return data.assign(y=rng.poisson(np.exp(0.3 + 0.4 * data["x"])))


def _two_classes() -> pd.DataFrame:
    rng = np.random.default_rng(13)
    return pd.DataFrame({"y": np.concatenate([rng.normal(0.0, 1.0, 40), rng.normal(5.0, 0.8, 60)])})


def _groups(fit: bx.Fit | bx.MixtureFit) -> dict[str, xr.Dataset]:
    post = fit.idata["posterior"].to_dataset()
    stats = fit.idata["sample_stats"].to_dataset()
    stats = stats.drop_vars([v for v in stats.data_vars if any(t in str(v) for t in TIMING)])
    return {"posterior": post, "sample_stats": stats}


def assert_identical(a: bx.Fit | bx.MixtureFit, b: bx.Fit | bx.MixtureFit) -> None:
    """Every posterior variable and every timing-free sample statistic has the same bytes."""
    for group, (da, db) in {k: (v, _groups(b)[k]) for k, v in _groups(a).items()}.items():
        assert sorted(da.data_vars) == sorted(db.data_vars), group
        for name in da.data_vars:
            x, y = da[name].to_numpy(), db[name].to_numpy()
            assert x.dtype == y.dtype and x.shape == y.shape, f"{group}/{name}"
            if x.dtype == object:  # divergence messages: compare the texts (the bytes are pointers)
                assert x.tolist() == y.tolist(), f"{group}/{name} differs between two fits with the same seed"
            elif x.tobytes() != y.tobytes():
                diff = np.nanmax(np.abs(x.astype(float) - y.astype(float)))
                pytest.fail(
                    f"{group}/{name} differs between two fits with the same seed (max |diff| {diff:.3g})"
                )


def assert_different(a: bx.Fit | bx.MixtureFit, b: bx.Fit | bx.MixtureFit, names: list[str]) -> None:
    for name in names:
        x, y = a.posterior[name].to_numpy(), b.posterior[name].to_numpy()
        assert not np.any(x == y), f"{name}: draws with different seeds coincide"


def _reused(fit: bx.Fit | bx.MixtureFit) -> int:
    return int(fit.idata["posterior"].attrs["compiled_model_reused"])


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["numba", "jax"])
def test_nutpie_marginalized_fresh_and_reused_compile(backend: str) -> None:
    """The random effects drawn after sampling (``re_g``) repeat too, compiled anew or reused."""
    data = _gaussian()
    compiled.clear_cache()
    first = bx.hierarchical("y ~ x + (1 | g)", data).fit(random_seed=5, backend=backend, **TINY)
    assert first.spec.marginalized and "re_g" in first.posterior
    again = bx.hierarchical("y ~ x + (1 | g)", data).fit(random_seed=5, backend=backend, **TINY)
    # numba models are reused (the data swapped in); JAX ones are compiled anew for every fit, their
    # data frozen into the graph (bayesmix.compiled), so under JAX both fits are fresh compiles
    assert (_reused(first), _reused(again)) == (0, int(backend == "numba"))
    assert_identical(first, again)
    compiled.clear_cache()
    fresh = bx.hierarchical("y ~ x + (1 | g)", data).fit(random_seed=5, backend=backend, **TINY)
    assert _reused(fresh) == 0
    assert_identical(first, fresh)
    other = bx.hierarchical("y ~ x + (1 | g)", data).fit(random_seed=6, backend=backend, **TINY)
    assert_different(first, other, ["beta", "sigma", "re_g"])


@pytest.mark.slow
def test_nutpie_glmm() -> None:
    data = _counts()
    model = bx.hierarchical("y ~ x + (1 | g)", data, family="poisson")
    first = model.fit(random_seed=5, backend="numba", **TINY)
    again = bx.hierarchical("y ~ x + (1 | g)", data, family="poisson").fit(
        random_seed=5, backend="numba", **TINY
    )
    assert _reused(again) == 1
    assert_identical(first, again)
    assert_different(first, model.fit(random_seed=6, backend="numba", **TINY), ["beta", "re_g"])


@pytest.mark.slow
def test_nutpie_mixture() -> None:
    """Two model objects: the ML search that starts the chains (seeded by fit_ml) repeats too."""
    data = _two_classes()
    first = bx.fmm(2, "y ~ 1", data).fit(random_seed=5, backend="jax", **TINY)
    again = bx.fmm(2, "y ~ 1", data).fit(random_seed=5, backend="jax", **TINY)
    assert first.starts == again.starts
    assert_identical(first, again)
    assert_different(first, bx.fmm(2, "y ~ 1", data).fit(random_seed=6, backend="jax", **TINY), ["beta"])


@pytest.mark.slow
def test_pymc_sampler() -> None:
    """PyMC seeds each chain from ``random_seed`` and runs it in its own process; one chain keeps
    this test at 2 s instead of 15 s of process start-up, and exercises the same seeding."""
    data = _gaussian()
    settings = {**TINY, "chains": 1, "sampler": "pymc"}
    first = bx.hierarchical("y ~ x + (1 | g)", data).fit(random_seed=5, **settings)
    again = bx.hierarchical("y ~ x + (1 | g)", data).fit(random_seed=5, **settings)
    assert_identical(first, again)
    other = bx.hierarchical("y ~ x + (1 | g)", data).fit(random_seed=6, **settings)
    assert_different(first, other, ["beta", "re_g"])


@pytest.mark.slow
def test_numpyro_sampler() -> None:
    """Both chains, vectorized on one device; each fit compiles with JAX (about 9 s), so no third fit."""
    data = _gaussian()
    first = bx.hierarchical("y ~ x + (1 | g)", data).fit(random_seed=5, sampler="numpyro", **TINY)
    again = bx.hierarchical("y ~ x + (1 | g)", data).fit(random_seed=5, sampler="numpyro", **TINY)
    assert_identical(first, again)


@pytest.mark.slow
@pytest.mark.xfail(
    raises=TypeError,
    strict=True,
    reason="blackjax cannot be run at all, so its determinism cannot be checked: PyMC 6.4's blackjax "
    "driver passes progress_bar= to a blackjax 1.7 kernel that no longer takes it (TypeError inside "
    "pymc.sampling.jax; see tests/test_samplers.py). When that is fixed, this test checks it like numpyro",
)
def test_blackjax() -> None:
    data = _gaussian()
    first = bx.hierarchical("y ~ x + (1 | g)", data).fit(random_seed=5, sampler="blackjax", **TINY)
    again = bx.hierarchical("y ~ x + (1 | g)", data).fit(random_seed=5, sampler="blackjax", **TINY)
    assert_identical(first, again)
