"""Test helpers: evaluate a bayesmix model's PyMC log density at constrained values."""

from __future__ import annotations

import numpy as np
import pymc as pm
import pytensor.tensor as pt


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
