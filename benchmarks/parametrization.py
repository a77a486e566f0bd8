"""Automatic (centered) against fixed non-centered random effects: minimum bulk ESS per gradient.

Run from the repository root: ``.venv/bin/python benchmarks/parametrization.py [seed]``. The data
are those of ``tests/test_parametrization.py::test_auto_beats_noncentered_with_many_rows_per_group``
(25 groups x 120 rows); cost is counted in gradient evaluations (nutpie's ``n_steps``), not seconds.
"""

from __future__ import annotations

import sys

import numpy as np
import pandas as pd

sys.path.insert(0, ".")
import bayesmix as bx
from tests.test_parametrization import _efficiency


def main(seed: int = 1) -> None:
    """Fit both forms on one simulated data set and print their efficiency."""
    rng = np.random.default_rng(seed)
    g = np.repeat(np.arange(25), 120)
    x = rng.normal(size=g.size)
    y = 1.0 + 0.3 * x + rng.normal(0, 0.5, 25)[g] + rng.normal(size=g.size)
    df = pd.DataFrame({"y": y, "x": x, "g": [f"g{k:02d}" for k in g]})
    settings = {"draws": 1000, "tune": 1000, "chains": 4, "random_seed": seed, "progressbar": False}
    auto = bx.hierarchical("y ~ x + (1 | g)", df)
    fixed = bx.hierarchical("y ~ x + (1 | g)", df, centered=[])
    print(auto.parametrization())
    fit_auto, fit_fixed = auto.fit(**settings), fixed.fit(**settings)
    (ess_a, steps_a), (ess_f, steps_f) = _efficiency(fit_auto), _efficiency(fit_fixed)
    print(
        f"auto: min ESS {ess_a:.0f} / {steps_a} gradients = {ess_a / steps_a:.4f}, "
        f"{fit_auto.diagnostics().divergences} divergences; non-centered: {ess_f:.0f} / {steps_f} = "
        f"{ess_f / steps_f:.4f}, {fit_fixed.diagnostics().divergences} divergences; "
        f"ratio {(ess_a / steps_a) / (ess_f / steps_f):.1f}"
    )


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1)
