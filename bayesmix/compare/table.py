"""Side-by-side tables: the posterior beside a frequentist fit of the same model."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd

from .mlfit import fit_ml
from .statsmodels_ref import fit_statsmodels

if TYPE_CHECKING:
    from ..results.fit import Fit

__all__ = ["REFERENCES", "beside", "side_by_side"]

REFERENCES = ("ml", "statsmodels")


def side_by_side(fit: Fit, *, reference: str = "ml", reml: bool = True, prob: float = 0.95) -> pd.DataFrame:
    """One row per parameter: posterior mean, sd, interval; estimate, SE, CI; difference in posterior SDs.

    ``diff_sd = (posterior mean - estimate) / posterior sd``: how far, in units of the
    posterior's own uncertainty, the Bayesian and frequentist answers lie apart.
    """
    if reference not in REFERENCES:
        raise ValueError(f"unknown reference {reference!r}; choose one of {', '.join(REFERENCES)}")
    freq = (
        fit_ml(fit.design, reml=reml).table() if reference == "ml" else fit_statsmodels(fit.design, reml=reml)
    )
    return beside(fit.summary(prob=prob), freq, f"{reference} ({'REML' if reml else 'ML'})")


def beside(summary: pd.DataFrame, freq: pd.DataFrame, reference: str) -> pd.DataFrame:
    """Posterior summary (``mean, sd, lower, upper``) joined to a frequentist table, with ``diff_sd``.

    ``freq`` has ``estimate, std_error, ci_lower, ci_upper`` on the same parameter names;
    ``reference`` names it in ``table.attrs["reference"]``.
    """
    table = summary[["mean", "sd", "lower", "upper"]].join(
        freq[["estimate", "std_error", "ci_lower", "ci_upper"]], how="left"
    )
    table["diff_sd"] = (table["mean"] - table["estimate"]) / table["sd"]
    table.index.name = "parameter"
    table.attrs["reference"] = reference
    return table
