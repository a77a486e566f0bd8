"""Shrinkage per group: no pooling, complete pooling and the partially pooled posterior."""

from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr

from ..spec.terms import Design, GroupFactor
from .parameters import SAMPLE_DIMS, elementwise_summary

__all__ = ["shrinkage_table"]


def _ols(X: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Least squares; NaN when the columns are not identified in this group."""
    if X.shape[0] < X.shape[1] or np.linalg.matrix_rank(X) < X.shape[1]:
        return np.full(X.shape[1], np.nan)
    return np.linalg.lstsq(X, y, rcond=None)[0]


def shrinkage_table(
    posterior: xr.Dataset, design: Design, factor: GroupFactor, prob: float = 0.95
) -> pd.DataFrame:
    r"""Per level and term: n, no-pooling, complete-pooling and partial-pooling estimates.

    Notes
    -----
    Let :math:`Z` be the factor's term columns and :math:`r = y - X_o \hat\beta_o` the response
    less the posterior-mean contribution of the fixed effects *not* among the factor's terms.
    The no-pooling estimate of level :math:`j` is the least-squares fit of :math:`r` on
    :math:`Z` within level :math:`j`; complete pooling is the same fit on all rows. The
    partially pooled estimate is the posterior of the level's coefficient: the fixed effect
    of the term (when the model has one) plus the level's random effect. The shrinkage
    factor is :math:`(\hat b^{np}_j - \bar b^{pp}_j) / (\hat b^{np}_j - \hat b^{cp})`:
    0 for no pooling, 1 for complete pooling. Other grouping factors are ignored in the
    no- and complete-pooling fits. With known SDs (``y | se(s)``) both fits are weighted by
    :math:`1/s_i^2` (the inverse-variance weighted mean for an intercept: the fixed-effect
    meta-analysis estimate).
    """
    terms = list(factor.terms)
    beta = posterior.get("beta")
    others = [n for n in design.fixed_names if n not in terms]
    r = design.y.copy()
    if beta is not None and others:
        idx = [design.fixed_names.index(n) for n in others]
        r -= design.X[:, idx] @ beta.sel(coef=others).mean(("chain", "draw")).values
    Z = factor.values
    if design.known_sd is not None:  # y | se(s): weighted least squares, weights 1 / s_i^2
        weight = 1.0 / design.known_sd
        Z, r = Z * weight[:, None], r * weight
    complete = _ols(Z, r)
    term_dim = f"{factor.name}__term"
    coef = posterior[f"re_{factor.name}"]  # each level's coefficient: fixed effect (if any) + random effect
    shared = [t for t in terms if t in design.fixed_names]
    if beta is not None and shared:
        fixed = beta.sel(coef=shared).rename({"coef": term_dim})
        coef = coef + fixed.reindex({term_dim: terms}, fill_value=0.0)
    partial = elementwise_summary(coef.transpose(*SAMPLE_DIMS, factor.name, term_dim), prob)
    rows = []
    for j, level in enumerate(factor.levels):
        mask = factor.index == j
        no_pool = _ols(Z[mask], r[mask])
        for k, term in enumerate(terms):
            mean = float(partial["mean"][j, k])
            denom = no_pool[k] - complete[k]
            rows.append(
                {
                    "level": level,
                    "term": term,
                    "n": int(mask.sum()),
                    "no_pooling": no_pool[k],
                    "complete_pooling": complete[k],
                    "partial_pooling": mean,
                    "lower": float(partial["lower"][j, k]),
                    "upper": float(partial["upper"][j, k]),
                    "shrinkage": (no_pool[k] - mean) / denom if denom != 0 else np.nan,
                }
            )
    return pd.DataFrame(rows).set_index(["level", "term"])
