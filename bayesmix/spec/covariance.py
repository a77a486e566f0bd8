"""Known covariance of a grouping factor's levels (relatedness, pedigrees, phylogenies).

A factor ``g`` with a known ``K`` has random effects ``b`` (levels x terms) with
``Cov(vec b) = K (x) Sigma``: levels are correlated through ``K``, terms through the
usual ``Sigma`` (``sd`` and ``corr`` parameters). With one term this is
``b ~ N(0, sd^2 K)``. ``K``'s labels define the factor's levels: levels of ``K``
without data are kept (their effects are predicted through ``K``), and every level
in the data must be in ``K``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

import numpy as np
import pandas as pd

from .terms import Design, FloatArray, GroupFactor

__all__ = ["attach_covariances", "check_covariance"]


def check_covariance(
    name: str, K: object, data_levels: tuple[str, ...]
) -> tuple[tuple[str, ...], FloatArray]:
    """Check a user's ``K`` for factor ``name``; return its level labels and the matrix.

    Parameters
    ----------
    name
        The grouping factor.
    K
        A square ``pandas.DataFrame`` whose index and columns are the same level labels, or
        a square array whose rows follow ``data_levels`` (the factor's levels sorted as text).
    data_levels
        The factor's levels present in the data.
    """
    if isinstance(K, pd.DataFrame):
        rows = tuple(str(v) for v in K.index)
        cols = tuple(str(v) for v in K.columns)
        if rows != cols:
            raise ValueError(
                f"the covariance of {name!r} must have the same labels, in the same order, on its index "
                f"and its columns; index starts {list(rows[:5])}, columns start {list(cols[:5])}"
            )
        if len(set(rows)) != len(rows):
            raise ValueError(f"the covariance of {name!r} repeats level labels; each level must appear once")
        try:
            matrix = K.to_numpy(dtype=float)
        except (TypeError, ValueError) as err:
            raise TypeError(f"the covariance of {name!r} must hold numbers: {err}") from err
        labels = rows
    elif isinstance(K, np.ndarray | list):
        matrix = np.asarray(K, dtype=float)
        labels = data_levels
        if matrix.ndim != 2 or matrix.shape != (len(labels), len(labels)):
            raise ValueError(
                f"the covariance of {name!r} has shape {matrix.shape}, but {name!r} has {len(labels)} levels "
                f"in the data: pass a ({len(labels)}, {len(labels)}) array in the order {list(labels[:5])}"
                f"{'...' if len(labels) > 5 else ''} (the levels sorted as text), "
                "or a DataFrame labelled by level"
            )
    else:
        raise TypeError(
            f"the covariance of {name!r} must be a pandas DataFrame labelled by level or a numpy array, "
            f"got {type(K).__name__}"
        )
    if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1]:
        raise ValueError(f"the covariance of {name!r} must be square, got shape {matrix.shape}")
    if not np.all(np.isfinite(matrix)):
        raise ValueError(
            f"the covariance of {name!r} has {int((~np.isfinite(matrix)).sum())} non-finite entries"
        )
    asym = float(np.max(np.abs(matrix - matrix.T))) if matrix.size else 0.0
    if asym > 1e-8 * max(float(np.max(np.abs(matrix))), 1.0):
        i, j = np.unravel_index(int(np.argmax(np.abs(matrix - matrix.T))), matrix.shape)
        raise ValueError(
            f"the covariance of {name!r} is not symmetric: "
            f"K[{labels[i]!r}, {labels[j]!r}] = {matrix[i, j]:g} "
            f"but K[{labels[j]!r}, {labels[i]!r}] = {matrix[j, i]:g}"
        )
    eigmin = float(np.linalg.eigvalsh((matrix + matrix.T) / 2).min())
    if eigmin <= 1e-10 * max(float(np.max(np.abs(np.diag(matrix)))), 1e-300):
        raise ValueError(
            f"the covariance of {name!r} is not positive-definite (smallest eigenvalue {eigmin:.3g}); "
            "a relatedness matrix with duplicated or linearly dependent levels needs those levels merged, "
            "or a small ridge added to its diagonal"
        )
    missing = sorted(set(data_levels) - set(labels))
    if missing:
        raise ValueError(
            f"{len(missing)} levels of {name!r} in the data are not in its covariance matrix "
            f"(first {missing[:5]}); K must have a row and a column for every level"
        )
    return labels, (matrix + matrix.T) / 2


def attach_covariances(design: Design, covariances: Mapping[str, object] | None) -> Design:
    """Give each named factor its ``K``, re-indexing its levels to ``K``'s labels."""
    if covariances is None:
        return design
    if not isinstance(covariances, Mapping):
        raise TypeError(
            "covariances must be a dict of grouping factor -> K (DataFrame labelled by level), "
            f"got {type(covariances).__name__}"
        )
    by_name = {f.name: f for f in design.factors}
    unknown = sorted(set(covariances) - set(by_name))
    if unknown:
        raise ValueError(
            f"covariances names unknown grouping factors {unknown}; factors in the formula: {sorted(by_name)}"
        )
    factors = []
    for factor in design.factors:
        if factor.name in covariances:
            factor = _with_covariance(factor, covariances[factor.name])
        factors.append(factor)
    return replace(design, factors=tuple(factors))


def _with_covariance(factor: GroupFactor, K: object) -> GroupFactor:
    labels, matrix = check_covariance(factor.name, K, factor.levels)
    position = {label: i for i, label in enumerate(labels)}
    remap = np.array([position[level] for level in factor.levels], dtype=np.int64)
    return replace(factor, levels=labels, index=remap[factor.index], covariance=matrix)
