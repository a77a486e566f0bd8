"""Compile and sampling time of the marginalized Gaussian model under nutpie's numba and JAX backends.

Run from the repository root: ``.venv/bin/python benchmarks/nutpie_backends.py [n] [J]``
(default 1,000,000 rows and 10,000 groups, ``y ~ x + (x | g)``). nutpie is called directly,
4 chains x 1000 draws after 1000 tuning steps; prints compile, sampling and their sum.
"""

from __future__ import annotations

import sys
import time
import warnings

import numpy as np
import nutpie
import pandas as pd

import bayesmix as bx


def main(n: int = 1_000_000, n_groups: int = 10_000) -> None:
    """Build the model once, then compile and sample it under each backend."""
    warnings.simplefilter("ignore")
    rng = np.random.default_rng(0)
    g = rng.integers(0, n_groups, n)
    x = rng.normal(size=n)
    u = rng.multivariate_normal([0, 0], [[1, 0.3], [0.3, 0.25]], size=n_groups)
    y = 1 + 0.5 * x + u[g, 0] + u[g, 1] * x + rng.normal(size=n)
    model = bx.hierarchical("y ~ x + (x | g)", pd.DataFrame({"y": y, "x": x, "g": g}))
    for backend in ("jax", "numba"):
        options = {"backend": "jax", "gradient_backend": "jax"} if backend == "jax" else {}
        start = time.perf_counter()
        compiled = nutpie.compile_pymc_model(model.pymc_model, **options)
        compiled_at = time.perf_counter()
        nutpie.sample(compiled, draws=1000, tune=1000, chains=4, progress_bar=False, seed=1)
        end = time.perf_counter()
        print(
            f"{backend}: compile {compiled_at - start:.1f} s, sample {end - compiled_at:.1f} s, "
            f"total {end - start:.1f} s"
        )


if __name__ == "__main__":
    main(*(int(a) for a in sys.argv[1:3]))
