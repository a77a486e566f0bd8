"""Cost of one gradient of the Poisson GLMM of ``speed_vs_bambi.py`` under nutpie's compilers.

Run from the repository root: ``.venv/bin/python benchmarks/gradient_cost.py``.

Builds ``bx.hierarchical("y ~ x + (1 | g)", family="poisson")`` on the ``poisson-100k`` data
(100,000 rows, 1,000 groups) and samples its PyMC graph with nutpie directly, 2 chains x 200
draws after 200 tuning steps, compiled six ways: numba and JAX, each with the data frozen
into the graph as constants, with the data as inputs (shared variables) and the counts as
constants (what bayesmix builds), and with the counts as inputs too. Prints compile time,
sampling time, leapfrog steps and sampling time per step. These are the measurements
behind ``bayesmix.compiled`` (JAX models frozen) and ``bayesmix.build.model.SHARED_RESPONSE``
(a count response stays a constant).
"""

from __future__ import annotations

import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import nutpie

import bayesmix as bx
from bayesmix.build import model as build_model

sys.path.insert(0, str(Path(__file__).resolve().parent))
import speed_vs_bambi  # the benchmark's data, from this folder

NUMBA = {"backend": "numba"}
JAX = {"backend": "jax", "gradient_backend": "jax"}
WAYS = {  # label: (counts as an input?, compile options)
    "numba, data frozen": (False, {**NUMBA, "freeze_model": True}),
    "numba, data as inputs": (False, {**NUMBA, "freeze_model": False}),
    "numba, counts as inputs": (True, {**NUMBA, "freeze_model": False}),
    "jax, data frozen": (False, {**JAX, "freeze_model": True}),
    "jax, data as inputs": (False, {**JAX, "freeze_model": False}),
    "jax, counts as inputs": (True, {**JAX, "freeze_model": False}),
}


def main() -> None:
    """Compile and sample the model each way; print one line per way."""
    warnings.simplefilter("ignore")
    case = speed_vs_bambi.CASES["poisson-100k"]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "data.npz"
        np.savez(path, **speed_vs_bambi.simulate(case))
        df = speed_vs_bambi.frame(path)
    models = {False: bx.hierarchical("y ~ x + (1 | g)", df, family="poisson").pymc_model}
    shared = build_model.SHARED_RESPONSE
    build_model.SHARED_RESPONSE = shared | {"poisson"}  # the response as pm.Data
    try:
        models[True] = bx.hierarchical("y ~ x + (1 | g)", df, family="poisson").pymc_model
    finally:
        build_model.SHARED_RESPONSE = shared
    for label, (counts_as_input, options) in WAYS.items():
        model = models[counts_as_input]
        start = time.perf_counter()
        compiled = nutpie.compile_pymc_model(model, **options)
        compiled_at = time.perf_counter()
        trace = nutpie.sample(compiled, draws=200, tune=200, chains=2, progress_bar=False, seed=1)
        end = time.perf_counter()
        steps = int(trace.sample_stats["n_steps"].sum())
        print(
            f"{label:24s} compile {compiled_at - start:5.1f} s  sample {end - compiled_at:6.1f} s  "
            f"steps {steps}  {(end - compiled_at) / steps * 1e6:6.0f} us per step"
        )


if __name__ == "__main__":
    main()
