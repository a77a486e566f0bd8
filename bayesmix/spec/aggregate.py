"""Binomial rows that share every covariate value, summed into one row for sampling.

Rows ``i`` with the same linear predictor have the same success probability ``p``, and
``prod_i Binomial(s_i | n_i, p)`` equals ``Binomial(sum s_i | sum n_i, p)`` up to a factor
free of the parameters (a ratio of binomial coefficients). The posterior is therefore the
same when the model is built on the summed rows, and every gradient touches fewer rows.
"Same linear predictor" is decided on what defines it: the fixed-effect row, the offset,
and per grouping factor the level and the term values. A Bernoulli response is the
binomial one with one trial per row.

Only the sampled graph uses the summed rows; the design on the result keeps every row
(pointwise log-likelihood, LOO, predictions and the observed data are per original row).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from .families import Family, get_family
from .terms import Design, IntArray

__all__ = ["AGGREGATE_MAX_SHARE", "Aggregated", "aggregate_binomial"]

#: sum rows only when the distinct rows are at most this share of all rows
AGGREGATE_MAX_SHARE = 0.5


@dataclass(frozen=True, slots=True)
class Aggregated:
    """The summed design, the family to build it with, and each original row's summed row."""

    design: Design
    family: Family
    row_of: IntArray


def aggregate_binomial(design: Design, family: Family) -> Aggregated | None:
    """Sum the rows of a Bernoulli or binomial design that share their linear predictor.

    Returns None for other families, and when the distinct rows are more than
    :data:`AGGREGATE_MAX_SHARE` of the rows (summing would save little).
    """
    if family.name not in ("bernoulli", "binomial") or design.n_obs == 0:
        return None
    columns = [design.X]
    if design.offset is not None:
        columns.append(design.offset[:, None])
    for factor in design.factors:
        columns += [factor.index[:, None].astype(float), factor.values]
    keys = np.column_stack(columns)
    _, first, row_of = np.unique(keys, axis=0, return_index=True, return_inverse=True)
    row_of = row_of.reshape(-1)
    m = first.size
    if m > AGGREGATE_MAX_SHARE * design.n_obs:
        return None
    trials = np.ones(design.n_obs) if design.trials is None else design.trials
    summed = replace(
        design,
        y=np.bincount(row_of, weights=design.y, minlength=m),
        X=design.X[first],
        factors=tuple(replace(f, index=f.index[first], values=f.values[first]) for f in design.factors),
        trials=np.bincount(row_of, weights=trials, minlength=m),
        offset=None if design.offset is None else design.offset[first],
    )
    return Aggregated(design=summed, family=get_family("binomial").with_link(family.link), row_of=row_of)
