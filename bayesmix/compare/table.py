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


def side_by_side(
    fit: Fit,
    *,
    reference: str = "ml",
    reml: bool | None = None,
    method: str | None = None,
    prob: float = 0.95,
) -> pd.DataFrame:
    """One row per parameter: posterior mean, sd, interval; estimate, SE, CI; difference in posterior SDs.

    ``diff_sd = (posterior mean - estimate) / posterior sd``: how far, in units of the
    posterior's own uncertainty, the Bayesian and frequentist answers lie apart. With
    ``reference="ml"`` the frequentist side is :func:`~bayesmix.compare.mlfit.fit_ml` (exact
    (RE)ML for the Gaussian family, Laplace ML for the others; ``reml=None`` picks REML for
    the Gaussian; a model with known standard errors gets the meta-analysis fit, REML or, with
    ``reml=False``, ML); ``"statsmodels"`` (MixedLM) fits the Gaussian family only.
    """
    if reference not in REFERENCES:
        raise ValueError(f"unknown reference {reference!r}; choose one of {', '.join(REFERENCES)}")
    if method is not None and reference != "ml":
        raise ValueError(f"method={method!r} chooses the meta-analysis estimator of reference='ml'")
    summary = fit.summary(prob=prob)  # checks prob
    if reference == "ml":
        ml = fit_ml(fit.design, reml=reml, family=fit.spec.family_def, method=method, level=prob)
        return beside(summary, ml.table(), f"ml ({ml.method})")
    if fit.design.known_sd is not None:
        raise ValueError(
            "statsmodels' MixedLM has no known standard errors (y | se(s) ~ ...): use reference='ml' "
            "(the random-effects meta-analysis, as metafor's rma)"
        )
    if fit.spec.family != "gaussian":
        raise ValueError(
            f"statsmodels' MixedLM fits the gaussian family only; this model's family is "
            f"{fit.spec.family!r}: use reference='ml' (maximum likelihood by the Laplace approximation)"
        )
    use_reml = True if reml is None else reml
    freq = fit_statsmodels(fit.design, reml=use_reml, prob=prob)
    return beside(summary, freq, f"statsmodels ({'REML' if use_reml else 'ML'})")


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
