"""Accuracy of the Laplace ML fit against the stored glmer references.

Run from the repository root: ``.venv/bin/python scripts/glmer_accuracy.py``. Prints, per
reference, the relative differences in log-likelihood, fixed effects and their SEs, and the
fit time. The models are those of ``tests/test_glmm_laplace.py``.
"""

from __future__ import annotations

import sys
import time
import warnings

import numpy as np

sys.path.insert(0, ".")
from tests.test_glmm_laplace import _load, _model

REFERENCES = ("glmer_cbpp", "glmer_cbpp_probit", "glmer_grouseticks")


def _max_relative(ours: np.ndarray, theirs: list[float]) -> float:
    theirs_arr = np.asarray(theirs, dtype=float)
    return float(np.max(np.abs(ours - theirs_arr) / np.abs(theirs_arr)))


def main() -> None:
    """Print the accuracy of each reference fit."""
    for name in REFERENCES:
        ref = _load(name)["lme4"]
        start = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # a boundary warning is not what is measured here
            fit = _model(name).fit_ml()
        seconds = time.perf_counter() - start
        fixed = list(fit.result.fixed_names)
        loglik = abs(fit.log_likelihood - ref["logLik"]) / abs(ref["logLik"])
        fixef = _max_relative(fit.estimates[fixed].to_numpy(), ref["fixef"]["estimate"])
        se = _max_relative(fit.std_errors[fixed].to_numpy(), ref["fixef"]["se"])
        print(
            f"{name:20s} logLik {fit.log_likelihood:.6f} (lme4 {ref['logLik']:.6f}) rel {loglik:.1e}; "
            f"fixef max rel {fixef:.1e}; SE max rel {se:.1e}; {seconds:.2f} s"
        )


if __name__ == "__main__":
    main()
