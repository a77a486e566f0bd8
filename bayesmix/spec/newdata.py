"""New data encoded exactly as the fitting data were (prediction).

The fixed part goes through formulae's own ``evaluate_new_data`` on the fitted
fixed-effect matrix (categorical levels, stateful transforms such as ``scale(x)``);
offsets, binomial trials and the grouping factors are evaluated here, with levels
never seen in fitting listed after the fitted ones.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

import numpy as np
import pandas as pd
from formulae.environment import Environment
from formulae.matrices import DesignMatrices
from formulae.terms.terms import Intercept, Model

from .data import missing_values
from .formula import NAMESPACE, ParsedFormula, _evaluate_factors, _expr_columns, _factor_codes, _split_offsets
from .terms import Design, GroupFactor

__all__ = ["evaluate_new"]


def evaluate_new(parsed: ParsedFormula, design: Design, data: pd.DataFrame) -> Design:
    """Evaluate a fitted model's formula on new rows, encoded exactly as the fitting rows were.

    Parameters
    ----------
    parsed
        The formula the model was fitted with (:func:`parse` of its text).
    design
        The design the model was fitted to: its fixed-effect matrix object and grouping factors
        carry the encoding (categorical levels, stateful transforms, group levels).
    data
        The new rows. They need every column the formula uses except the response; a binomial
        response needs its trials (the ``n`` of ``s | trials(n)``, or both columns of
        ``cbind(s, f)``, whose sum is the number of trials). A response with known SDs
        (``y | se(s)``) has its SDs read when the columns of ``se(...)`` are present (predictive
        draws need them), else ``known_sd`` is None. Other columns are ignored.

    Returns
    -------
    Design
        For the new rows: ``y`` is NaN (no response is read), ``X`` has the fitted
        ``fixed_names``, ``offset`` and ``trials`` are evaluated on the new rows. Each grouping
        factor keeps its fitted levels in their order (and so their codes) and appends the levels
        seen only in ``data``, in order of first appearance: a code ``>=`` the number of fitted
        levels marks a new level. Group levels are matched as text, as when fitting.

    Raises
    ------
    ValueError
        A needed column is absent or has missing or non-finite values; a categorical variable
        takes a level not seen when fitting; a factor with a known covariance ``K`` meets a
        level that ``K`` does not have.
    """
    if not isinstance(data, pd.DataFrame):
        raise TypeError(f"new data must be a pandas DataFrame, got {type(data).__name__}")
    if len(data) == 0:
        raise ValueError("new data has no rows")
    desc = parsed.description
    trials_columns = _trials_columns(parsed)
    needed = set(trials_columns).union(*(t.var_names for t in [*desc.common_terms, *desc.group_terms]))
    _check_new_columns(parsed, data, sorted(needed - {""}), trials_columns)
    # grouping columns are matched as text; the others are read by formulae
    read = set().union(*(t.var_names for t in desc.common_terms))
    read |= set().union(*(t.expr.var_names for t in desc.group_terms))
    _check_new_types(design, data, sorted(read - {""}))
    env = Environment([NAMESPACE])
    n = len(data)
    fitted: Any = design.common  # formulae's CommonEffectsMatrix of the fitting rows
    common = None
    X, offset = np.empty((n, 0)), None
    with np.errstate(divide="ignore", invalid="ignore"):  # non-finite results are reported below
        if fitted is not None:
            common = _new_data_step(lambda: fitted.evaluate_new_data(data), "a fixed-effect term")
            X, _, offset = _split_offsets(common, n)
        trials = _new_trials(parsed, data, trials_columns, env) if parsed.binomial else None
        known_sd = _new_known_sd(parsed, data, env) if parsed.known_sd else None
        factors = _new_factors(parsed, design, data, env)
    new = Design(
        response_name=design.response_name,
        y=np.full(n, np.nan),
        X=X,
        fixed_names=design.fixed_names,
        factors=factors,
        auxiliary=design.auxiliary,
        trials=trials,
        offset=offset,
        known_sd=known_sd,
        common=common,
    )
    _check_new_values(new, data.index)
    return new


def _trials_columns(parsed: ParsedFormula) -> tuple[str, ...]:
    """Columns a binomial response takes its trials from (``n`` of ``trials(s, n)``; both of ``cbind``)."""
    if not parsed.binomial or parsed.description.response is None:
        return ()
    response = parsed.description.response
    columns = set(response.var_names) - {""}
    if response.term.components[0].call.callee == "trials":
        columns -= {parsed.response}
    return tuple(sorted(columns))


def _new_known_sd(parsed: ParsedFormula, data: pd.DataFrame, env: Environment) -> np.ndarray | None:
    """Known SDs of new rows (``y | se(s)``) when the data have the SD's columns; None otherwise."""
    response = parsed.description.response
    columns = set(response.var_names) - {"", parsed.response}
    if not columns <= set(data.columns):
        return None
    _, problems = missing_values(data, sorted(columns))
    if problems:
        raise ValueError(f"missing or non-finite known SDs (se(...)) in the new data: {'; '.join(problems)}")
    sd = _response_argument(parsed, data, columns, env)
    bad = ~(np.isfinite(sd) & (sd > 0))
    if bad.any():
        raise ValueError(
            f"the known SDs (se(...)) of the new data must be finite and > 0, but {int(bad.sum())} rows "
            f"are not (first labels {_first_labels(data.index, bad)})"
        )
    return sd


def _check_new_columns(
    parsed: ParsedFormula, data: pd.DataFrame, needed: list[str], trials_columns: tuple[str, ...]
) -> None:
    absent = [c for c in needed if c not in data.columns]
    if absent:
        trials = (
            f"; its binomial response needs the number of trials, from the column(s) {list(trials_columns)}"
            if trials_columns
            else ""
        )
        raise ValueError(
            f"the new data lack the column(s) {absent} that the formula {parsed.text!r} uses (every "
            f"column but the response is needed{trials}); columns present: {list(map(str, data.columns))}"
        )
    _, problems = missing_values(data, needed)
    if problems:
        raise ValueError(
            f"missing or non-finite values in the new data: {'; '.join(problems)}. "
            "Predictions need every value the formula uses: fill or remove these rows"
        )


def _check_new_types(design: Design, data: pd.DataFrame, columns: list[str]) -> None:
    """A column numeric when fitting must be numeric in the new data (text cannot be read as numbers)."""
    fitted = getattr(design.common, "data", None)  # formulae keeps the fitting rows on the fixed part
    if not isinstance(fitted, pd.DataFrame):
        return
    for col in columns:
        if col not in fitted.columns or not pd.api.types.is_numeric_dtype(fitted[col]):
            continue
        values = data[col]
        if not pd.api.types.is_numeric_dtype(values) or pd.api.types.is_complex_dtype(values):
            raise TypeError(
                f"the column {col!r} was numeric ({fitted[col].dtype}) when the model was fitted, but has "
                f"dtype {values.dtype} in the new data; convert it, e.g. pd.to_numeric(new_data[{col!r}])"
            )


def _new_data_step(step: Callable[[], Any], what: str) -> Any:
    """Run one of formulae's new-data evaluations; say which part failed (an unseen category)."""
    try:
        return step()
    except ValueError as err:
        raise ValueError(
            f"the new data cannot be encoded as the fitting data were, in {what}: {err} "
            "A categorical variable can only take the levels it had when the model was fitted"
        ) from err


def _new_trials(
    parsed: ParsedFormula, data: pd.DataFrame, columns: tuple[str, ...], env: Environment
) -> np.ndarray:
    """Binomial trials of new rows; the successes (not needed) are read as 0 when absent."""
    trials = _response_argument(parsed, data, set(columns), env)
    bad = ~(np.isfinite(trials) & (trials >= 1) & (trials == np.round(trials)))
    if bad.any():
        raise ValueError(
            f"the binomial trials of the new data must be integers >= 1, but {int(bad.sum())} rows are "
            f"not (first labels {_first_labels(data.index, bad)})"
        )
    return trials


def _response_argument(
    parsed: ParsedFormula, data: pd.DataFrame, columns: set[str], env: Environment
) -> np.ndarray:
    """The second column of the response's matrix on new rows (binomial trials, or a known SD).

    That is the trials of ``trials(s, n)`` or ``cbind(s, f)`` and the SD of ``se(y, s)``.
    Response columns outside ``columns`` (the response itself, which new data need not
    have) are read as 0.
    """
    response = parsed.description.response
    filled = data.assign(**{c: 0.0 for c in set(response.var_names) - columns - {""}})
    matrix = DesignMatrices(Model(response=response), filled, env).response.design_matrix
    return np.asarray(matrix, dtype=float)[:, 1]


def _first_labels(index: pd.Index, bad: np.ndarray) -> str:
    """The labels of the first five flagged rows, for an error message."""
    return ", ".join(repr(v) for v in index[bad][:5].tolist())


def _new_factors(
    parsed: ParsedFormula, design: Design, data: pd.DataFrame, env: Environment
) -> tuple[GroupFactor, ...]:
    all_terms = [t for terms, _ in parsed.blocks for t in terms]
    fitted: Any = design.common
    fresh = fitted is None
    if not fresh:
        # Evaluating the group terms on the fitting rows (formulae keeps them on the fixed-effect
        # matrix) sets their encoding (categorical levels and contrasts, stateful transforms),
        # which the new rows are then read with.
        _evaluate_factors(parsed, fitted.data, env)
    # Without a fixed part the fitting rows are not kept: the group terms are evaluated on the
    # new rows alone, and a different encoding shows up as different column labels below.
    labels: dict[str, list[str]] = {}
    values: dict[str, list[np.ndarray]] = {}
    groups: dict[str, np.ndarray] = {}
    for term in all_terms:
        name = term.factor.name
        if fresh or isinstance(term.expr, Intercept):
            term_labels, term_values = _expr_columns(term, all_terms, data, env)
        else:
            term_values = _new_data_step(
                partial(term.expr.eval_new_data, data), f"the random-effect term of {name!r}"
            )
            term_values = np.asarray(term_values, dtype=float).reshape(len(data), -1)
            term_labels = list(term.expr.labels) if term.expr.kind != "numeric" else [str(term.expr.name)]
        labels.setdefault(name, []).extend(term_labels)
        values.setdefault(name, []).append(term_values)
        if name not in groups:
            index, levels = _factor_codes(term, data)
            groups[name] = np.asarray(levels, dtype=object)[index]
    return tuple(_new_factor(f, labels[f.name], values[f.name], groups[f.name]) for f in design.factors)


def _new_factor(
    factor: GroupFactor, labels: list[str], values: list[np.ndarray], groups: np.ndarray
) -> GroupFactor:
    if tuple(labels) != factor.terms:
        raise ValueError(
            f"the random-effect terms of {factor.name!r} evaluate to the columns {labels} on the new data, "
            f"but the model was fitted with {list(factor.terms)}: a categorical slope needs the same "
            "levels as in the fitting data"
        )
    position = {level: i for i, level in enumerate(factor.levels)}
    unseen = list(dict.fromkeys(str(g) for g in groups if g not in position))
    if unseen and factor.covariance is not None:
        raise ValueError(
            f"the new data have {len(unseen)} level(s) of {factor.name!r} that its known covariance K does "
            f"not have (first {unseen[:5]}); a level's effect is predicted through K, so K must include "
            "every level to be predicted when the model is built (levels of K without data are kept)"
        )
    position.update({level: len(factor.levels) + k for k, level in enumerate(unseen)})
    return GroupFactor(
        name=factor.name,
        levels=(*factor.levels, *unseen),
        index=np.array([position[str(g)] for g in groups], dtype=np.int64),
        terms=factor.terms,
        values=np.column_stack(values).astype(float),
        correlated=factor.correlated,
        covariance=factor.covariance,
    )


def _check_new_values(design: Design, index: pd.Index) -> None:
    """Non-finite values after evaluating the formula on new rows (``log(0)``, say)."""
    parts = [("the fixed effects", design.X), ("the offset", design.offset)]
    parts += [(f"the random-effect terms of {f.name!r}", f.values) for f in design.factors]
    for what, array in parts:
        if array is None:
            continue
        bad = ~np.isfinite(array).reshape(len(index), -1).all(axis=1)
        if bad.any():
            raise ValueError(
                f"non-finite values in {what} for {int(bad.sum())} rows of the new data after evaluating "
                f"the formula (first labels {_first_labels(index, bad)}), e.g. log(0); every row needs "
                "finite values"
            )
