"""Side-by-side tables: the posterior beside a frequentist fit of the same model."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd

from .mlfit import fit_ml
from .statsmodels_ref import fit_statsmodels

if TYPE_CHECKING:
    from ..results.fit import Fit

__all__ = ["REFERENCES", "side_by_side"]

REFERENCES = ("ml", "statsmodels")


def side_by_side(fit: Fit, *, reference: str = "ml", reml: bool = True, prob: float = 0.95) -> pd.DataFrame:
    """One row per parameter: posterior mean, sd, interval; estimate, SE, CI; difference in posterior SDs.

    ``diff_sd = (posterior mean - estimate) / posterior sd``: how far, in units of the
    posterior's own uncertainty, the Bayesian and frequentist answers lie apart.
    """
    if reference not in REFERENCES:
        raise ValueError(f"unknown reference {reference!r}; choose one of {', '.join(REFERENCES)}")
    if reference == "ml":
        ml = fit_ml(fit.design, reml=reml)
        freq = ml.table()[["estimate", "std_error", "ci_lower", "ci_upper"]]
    else:
        freq = fit_statsmodels(fit.design, reml=reml)[["estimate", "std_error", "ci_lower", "ci_upper"]]
    post = fit.summary(prob=prob)[["mean", "sd", "lower", "upper"]]
    table = post.join(freq, how="left")
    table["diff_sd"] = (table["mean"] - table["estimate"]) / table["sd"]
    table.index.name = "parameter"
    table.attrs["reference"] = f"{reference} ({'REML' if reml else 'ML'})"
    return table
