"""Run NUTS on a built model and return a :class:`~bayesmix.results.Fit`.

nutpie is the default sampler; ``"pymc"``, ``"numpyro"`` and ``"blackjax"`` go
through ``pm.sample``'s own dispatch. Every argument is checked before any
compilation starts.
"""

from __future__ import annotations

import numbers
import os
import time
import warnings
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pymc as pm
import xarray as xr
from numba.core.errors import NumbaWarning

from .compiled import compile_model

__all__ = ["SAMPLERS", "SampleSettings", "check_seed", "run_nuts", "run_nuts_from"]

SAMPLERS = ("nutpie", "pymc", "numpyro", "blackjax")
#: nutpie's compilers: ``"auto"`` lets the model choose (see :func:`run_nuts`)
BACKENDS = ("auto", "numba", "jax")
_JAX_SAMPLERS = ("numpyro", "blackjax")


def check_seed(seed: object, name: str = "random_seed") -> None:
    """A seed is None or an integer in ``[0, 2**32)`` (numpy integers included); raise naming it otherwise."""
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, numbers.Integral)):
        raise TypeError(f"{name} must be an integer or None, got {seed!r}")
    if seed is not None and not 0 <= int(seed) < 2**32:
        raise ValueError(f"{name} must lie in [0, 2**32), got {seed}")


@dataclass(frozen=True, slots=True, kw_only=True)
class SampleSettings:
    """Validated sampler settings, recorded on the result."""

    draws: int = 1000
    tune: int = 1000
    chains: int = 4
    random_seed: int | None = None
    sampler: str = "nutpie"
    target_accept: float = 0.8
    progressbar: bool = True
    backend: str = "auto"

    def __post_init__(self) -> None:
        for name in ("draws", "tune", "chains"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, numbers.Integral):
                raise TypeError(f"{name} must be an integer, got {value!r}")
            if value < (0 if name == "tune" else 1):
                raise ValueError(f"{name} must be {'>= 0' if name == 'tune' else '>= 1'}, got {value}")
        check_seed(self.random_seed)
        if not isinstance(self.progressbar, bool):
            raise TypeError(f"progressbar must be True or False, got {self.progressbar!r}")
        if not isinstance(self.sampler, str) or self.sampler not in SAMPLERS:
            raise ValueError(f"unknown sampler {self.sampler!r}; choose one of {', '.join(SAMPLERS)}")
        if isinstance(self.target_accept, bool) or not isinstance(self.target_accept, numbers.Real):
            raise TypeError(f"target_accept must be a number in (0, 1), got {self.target_accept!r}")
        if not 0 < self.target_accept < 1:
            raise ValueError(f"target_accept must lie in (0, 1), got {self.target_accept}")
        if not isinstance(self.backend, str) or self.backend not in BACKENDS:
            raise ValueError(f"unknown backend {self.backend!r}; choose one of {', '.join(BACKENDS)}")
        if self.backend != "auto" and self.sampler != "nutpie":
            raise ValueError(
                f"backend={self.backend!r} chooses nutpie's compiler; sampler={self.sampler!r} compiles "
                "its own way: leave backend='auto' or use sampler='nutpie'"
            )
        if self.sampler in _JAX_SAMPLERS:
            try:
                __import__(self.sampler)
            except ImportError as err:
                raise ValueError(
                    f"sampler={self.sampler!r} needs the optional package {self.sampler}: "
                    "pip install 'bayesmix[jax]'"
                ) from err


def shrink_for_tests(settings: SampleSettings) -> SampleSettings:
    """Honour ``BAYESMIX_FAST=1`` (notebooks and docs in ``make test``): fewer draws and tuning steps."""
    if os.environ.get("BAYESMIX_FAST") != "1":
        return settings
    return replace(settings, draws=min(settings.draws, 300), tune=min(settings.tune, 300))


def run_nuts(
    model: pm.Model,
    settings: SampleSettings,
    initvals: dict[str, Any] | None = None,
    nutpie_options: dict[str, Any] | None = None,
    auto_backend: str = "numba",
) -> tuple[Any, float]:
    """Sample ``model``; return the DataTree and the wall time of sampling.

    ``initvals`` starts every chain there (no jitter); ``nutpie_options`` go to
    ``nutpie.sample`` when the sampler is nutpie (e.g. ``{"adaptation": "low_rank"}``);
    ``auto_backend`` is the compiler that ``settings.backend="auto"`` stands for when no
    model of the same structure has been compiled in this process (:mod:`bayesmix.compiled`).
    """
    if settings.sampler == "nutpie":
        return _run_nutpie(model, settings, initvals, nutpie_options or {}, auto_backend)
    kwargs: dict[str, Any] = {
        "initvals": initvals,
        "draws": settings.draws,
        "tune": settings.tune,
        "chains": settings.chains,
        "random_seed": settings.random_seed,
        "progressbar": settings.progressbar,
        "model": model,
        "nuts_sampler": settings.sampler,
        "compute_convergence_checks": False,  # bayesmix reports its own diagnostics
    }
    if settings.sampler == "pymc":
        kwargs["target_accept"] = settings.target_accept
        kwargs["cores"] = min(settings.chains, os.cpu_count() or 1)
        # PyMC's chains run in child processes; forking a process in which JAX has started
        # (backend="jax" fits) can deadlock, so the children start from a fork server
        kwargs["mp_ctx"] = "forkserver"
    else:
        # one CPU device: run the chains vectorized (pmap needs one device per chain)
        kwargs["nuts"] = {"target_accept": settings.target_accept, "chain_method": "vectorized"}
    if initvals is not None:
        # Start exactly there: the samplers' default jitter (uniform +-1 on the unconstrained
        # scale) can throw a mixture's chains out of the mode they were started in.
        if settings.sampler == "pymc":
            kwargs["init"] = "adapt_diag"
        else:
            kwargs["nuts"]["jitter"] = False
    start = time.perf_counter()
    with warnings.catch_warnings():
        # pip-installed PyTensor has no BLAS for its C backend; the JAX samplers compile with
        # JAX, which brings its own, so the warning does not apply.
        warnings.filterwarnings("ignore", message="PyTensor could not link to a BLAS", category=UserWarning)
        idata = pm.sample(**kwargs)
    return idata, time.perf_counter() - start


def _run_nutpie(
    model: pm.Model,
    settings: SampleSettings,
    initvals: dict[str, Any] | None,
    options: dict[str, Any],
    auto_backend: str,
) -> tuple[xr.DataTree, float]:
    """Compile (or reuse) and sample with nutpie directly; record backend and compile time.

    Calling nutpie directly rather than through ``pm.sample`` lets a compiled model be
    reused across fits, and measured 11 s against 17 s of sampling for the same 1M-row
    model (``benchmarks/nutpie_backends.py``).
    """
    import nutpie
    from pymc.backends.arviz import patch_nutpie_idata

    with warnings.catch_warnings():
        # pip-installed PyTensor has no BLAS for its C backend; nutpie compiles with numba or
        # JAX, which bring their own, so the warning does not apply.
        warnings.filterwarnings("ignore", message="PyTensor could not link to a BLAS", category=UserWarning)
        # numba cannot cache on disk a function with data folded in as constants (a constant
        # response, see bayesmix.build.model.SHARED_RESPONSE); it compiles it all the same.
        warnings.filterwarnings("ignore", message="Cannot cache compiled function", category=NumbaWarning)
        compiled = compile_model(model, settings.backend, fallback=auto_backend, initial_point=initvals)
    seed = settings.random_seed
    if seed is None:
        seed = int(np.random.default_rng().integers(2**32))
    start = time.perf_counter()
    tree = nutpie.sample(
        compiled.model,
        draws=settings.draws,
        tune=max(settings.tune, 1),  # nutpie needs at least one tuning step
        chains=settings.chains,
        cores=min(settings.chains, os.cpu_count() or 1),
        seed=seed,
        save_warmup=False,
        progress_bar=settings.progressbar,
        target_accept=settings.target_accept,
        **options,
    )
    wall = time.perf_counter() - start
    patch_nutpie_idata(tree, model, sampling_time=wall)
    _drop_internal_data(tree)
    tree["posterior"].attrs.update(
        nutpie_backend=compiled.backend,
        compile_time=compiled.compile_time,
        compiled_model_reused=int(compiled.reused),
    )
    return tree, wall


def _drop_internal_data(tree: xr.DataTree) -> None:
    """Remove bayesmix's own data containers (``data__*``) from ``constant_data``."""
    if "constant_data" not in tree.children:
        return
    data = tree["constant_data"].to_dataset()
    data = data.drop_vars([v for v in data.data_vars if str(v).startswith("data__")])
    data = data.drop_vars([c for c in data.coords if not any(c in data[v].dims for v in data.data_vars)])
    if data.data_vars:
        tree["constant_data"] = xr.DataTree(data)
    else:
        del tree["constant_data"]


def run_nuts_from(
    model: pm.Model,
    settings: SampleSettings,
    starts: list[dict[str, Any]],
    nutpie_options: dict[str, Any] | None = None,
    auto_backend: str = "numba",
) -> tuple[xr.DataTree, float, list[int]]:
    """Sample the chains spread evenly over ``starts`` (the first starts get the extra chains).

    Chains sharing a start run in one call (nutpie takes one start per call), and the
    calls' chains are joined in order. Returns the DataTree, the wall time, and for every
    chain of the DataTree the index of its start.
    """
    used = min(len(starts), settings.chains)
    sizes = [settings.chains // used + (i < settings.chains % used) for i in range(used)]
    chain_starts = [i for i, size in enumerate(sizes) for _ in range(size)]
    if used == 1:
        tree, wall = run_nuts(model, settings, starts[0], nutpie_options, auto_backend)
        return tree, wall, chain_starts
    trees, total = [], 0.0
    for i, size in enumerate(sizes):
        seed = None if settings.random_seed is None else (settings.random_seed + 7919 * i) % 2**32
        tree, wall = run_nuts(
            model, replace(settings, chains=size, random_seed=seed), starts[i], nutpie_options, auto_backend
        )
        trees.append(tree)
        total += wall
    return _join_chains(trees), total, chain_starts


def _join_chains(trees: list[xr.DataTree]) -> xr.DataTree:
    """One DataTree whose chains are those of ``trees`` in order (other groups from the first)."""
    out = {}
    for name in trees[0].children:
        ds = trees[0][name].to_dataset()
        if "chain" in ds.dims:
            ds = xr.concat([t[name].to_dataset() for t in trees], dim="chain", combine_attrs="override")
            ds = ds.assign_coords(chain=range(ds.sizes["chain"]))
        out[f"/{name}"] = ds
    if "sampling_time" in out.get("/posterior", xr.Dataset()).attrs:
        out["/posterior"].attrs["sampling_time"] = sum(
            float(t["posterior"].attrs["sampling_time"]) for t in trees
        )
    return xr.DataTree.from_dict(out)
