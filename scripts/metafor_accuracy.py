"""Agreement of bayesmix's meta-analysis fit (REML, ML, DL) with metafor 3.8.1.

Run from the repository root: ``.venv/bin/python scripts/metafor_accuracy.py``. Prints a
Markdown table (the one in ``docs/user-guide/meta-analysis.md``): per reference file of
``tests/reference/metafor_*.json`` and method, the largest relative differences from metafor's
converged fit (the ``tight`` call) in the estimates (coefficients, ``tau^2``), the standard
errors (coefficients and ``tau^2``), the heterogeneity statistics (``Q``, ``I^2``, ``H^2``) and
the Q-profile interval of ``tau^2``; the absolute difference in the log-likelihood; and the
relative difference in ``tau^2`` from metafor's default call (Fisher scoring to steps below 1e-5).
Where ``tau^2`` is on its boundary 0, the differences in ``tau^2`` and ``I^2`` are absolute.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from bayesmix.compare.meta import METHODS, MetaFit, fit_meta

REFERENCE = Path("tests") / "reference"


def _fit(ref: dict[str, Any], method: str) -> MetaFit:
    data = ref["data"]
    columns = [np.ones(len(data["yi"]))] + [np.asarray(data[m], dtype=float) for m in ref["moderators"]]
    return fit_meta(
        data["yi"], data["sei"], np.column_stack(columns), ("Intercept", *ref["moderators"]), method=method
    )


def _rel(ours: object, theirs: object) -> float:
    """Largest relative difference; where metafor's value is 0, the absolute one."""
    a, b = np.atleast_1d(np.asarray(ours, float)), np.atleast_1d(np.asarray(theirs, float))
    scale = np.where(b == 0.0, 1.0, np.abs(b))
    return float(np.max(np.abs(a - b) / scale))


def _row(name: str, method: str, fit: MetaFit, tight: dict[str, Any], default: dict[str, Any]) -> str:
    boundary = tight["tau2"] < 1e-8  # metafor creeps towards 0 by halved steps; bayesmix gives 0
    if boundary:  # relative differences from (almost) 0 say nothing: absolute ones, marked "abs"
        tau2_diff, i2_diff = abs(fit.tau2 - tight["tau2"]), abs(fit.i2 - tight["I2"])
        vs_default = f"{abs(fit.tau2 - default['tau2']):.1e} abs"
    else:
        tau2_diff, i2_diff = _rel(fit.tau2, tight["tau2"]), _rel(fit.i2, tight["I2"])
        vs_default = f"{_rel(fit.tau2, default['tau2']):.1e}"
    estimates = max(_rel(fit.beta, tight["beta"]["estimate"]), tau2_diff)
    ses = max(_rel(fit.beta_se, tight["beta"]["se"]), _rel(fit.se_tau2, tight["se_tau2"]))
    heterogeneity = max(_rel(fit.q, tight["QE"]), i2_diff, _rel(fit.h2, tight["H2"]))
    interval = _rel(fit.tau2_ci, [tight["tau2_ci"]["lb"], tight["tau2_ci"]["ub"]])
    loglik = abs(fit.loglik - tight["logLik"])
    tau2 = f"{fit.tau2:.6g}" + (" (boundary)" if fit.boundary else "")
    cells = [
        name,
        method,
        tau2,
        f"{estimates:.1e}",
        f"{ses:.1e}",
        f"{heterogeneity:.1e}",
        f"{interval:.1e}",
        f"{loglik:.1e}",
        vs_default,
    ]
    return "| " + " | ".join(cells) + " |"


def main() -> None:
    """Print the agreement table."""
    header = [
        "data set",
        "method",
        "tau^2",
        "estimates",
        "SEs",
        "Q, I^2, H^2",
        "tau^2 CI",
        "logLik (abs)",
        "tau^2 vs default call",
    ]
    print("| " + " | ".join(header) + " |")
    print("|" + "|".join("---" for _ in header) + "|")
    worst = 0.0
    for path in sorted(REFERENCE.glob("metafor_*.json")):
        ref = json.loads(path.read_text())
        for method in METHODS:
            fit = _fit(ref, method)
            tight, default = ref["fits"][method]["tight"], ref["fits"][method]["default"]
            print(_row(path.stem.removeprefix("metafor_"), method, fit, tight, default))
            worst = max(worst, _rel(fit.beta, tight["beta"]["estimate"]))
    print(f"\nlargest relative difference in a coefficient from converged metafor: {worst:.1e}")


if __name__ == "__main__":
    main()
