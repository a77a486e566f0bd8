"""Test helpers: a model's PyMC log density at constrained values, and the recovery check."""

from __future__ import annotations

import numpy as np
import pymc as pm
import pytensor.tensor as pt
from scipy import stats


def value_point(model: pm.Model, values: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Map constrained values by variable name to the model's value-variable point."""
    point = {}
    for rv in model.free_RVs:
        value_var = model.rvs_to_values[rv]
        transform = model.rvs_to_transforms.get(rv)
        value = np.asarray(values[rv.name], dtype=float)
        if transform is not None:
            value = transform.forward(pt.as_tensor(value), *rv.owner.inputs).eval()
        point[value_var.name] = value
    return point


def logp_at(model: pm.Model, values: dict[str, np.ndarray], *, jacobian: bool = False) -> float:
    """Joint log density (no Jacobian by default) at constrained values."""
    return float(model.compile_logp(jacobian=jacobian)(value_point(model, values)))


def assert_recovered(
    fit: object, truth: dict[str, float], *, alpha: float = 0.01, every: bool = True
) -> None:
    """The recovery check: a diagnostics gate, then each true value within a Bonferroni z-bound.

    The gate: R-hat <= 1.01, bulk ESS >= 400, no divergences. Then
    ``|posterior mean - truth| / posterior sd < norm.isf(alpha / (2 * len(truth)))``: a
    family-wise false-alarm rate ``alpha`` over the scalars checked. ``every=True`` also
    asserts that ``truth`` names every parameter of the summary.
    """
    diag = fit.diagnostics()  # type: ignore[attr-defined]
    assert diag.max_rhat <= 1.01 and diag.min_ess_bulk >= 400 and diag.divergences == 0, str(diag)
    summary = fit.summary()  # type: ignore[attr-defined]
    if every:
        assert set(truth) == set(summary.index)  # every parameter checked, under its public name
    z_crit = stats.norm.isf(alpha / (2 * len(truth)))
    z = {
        name: abs(summary.loc[name, "mean"] - value) / summary.loc[name, "sd"]
        for name, value in truth.items()
    }
    worst = max(z, key=z.__getitem__)
    assert z[worst] < z_crit, f"{worst}: |z| = {z[worst]:.2f} >= {z_crit:.2f}; all: {z}"
