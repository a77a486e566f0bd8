"""Checks on the user's data, run before anything is compiled.

Nothing is dropped silently: with ``missing="drop"`` the dropped rows are
counted, warned about and returned so that the result can record them.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from .formula import ParsedFormula
from .terms import Design

__all__ = [
    "DroppedRowsWarning",
    "check_design",
    "check_known_sd",
    "check_response_varies",
    "missing_values",
    "select_rows",
]


class DroppedRowsWarning(UserWarning):
    """Rows with missing or non-finite values were dropped (``missing="drop"``)."""


def _labels(index: pd.Index, limit: int = 5) -> str:
    shown = ", ".join(repr(v) for v in index[:limit].tolist())
    return shown + (", ..." if len(index) > limit else "")


def missing_values(data: pd.DataFrame, columns: list[str]) -> tuple[pd.Series, list[str]]:
    """Rows with a missing or non-finite value in ``columns``, and one description per column hit.

    Returns the boolean row mask and texts such as ``"'x': 3 rows (first labels 4, 9, 17)"``.
    """
    bad = pd.Series(False, index=data.index)
    problems = []
    _check_unique_columns(data, columns)
    for col in columns:
        values = data[col]
        flag = values.isna()
        if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
            flag = flag | ~np.isfinite(values.to_numpy(dtype=float, na_value=np.nan))
        if flag.any():
            problems.append(f"{col!r}: {int(flag.sum())} rows (first labels {_labels(data.index[flag])})")
            bad |= flag
    return bad, problems


def select_rows(
    parsed: ParsedFormula, data: pd.DataFrame, missing: str, extra: tuple[str, ...] = ()
) -> tuple[pd.DataFrame, pd.Index]:
    """Check the columns a formula needs and handle missing values.

    Parameters
    ----------
    parsed
        The parsed formula.
    data
        The user's data frame.
    missing
        ``"error"`` (default) raises on NaN/inf; ``"drop"`` drops those rows with a warning.
    extra
        Further columns the model uses (a mixture's class covariates, binomial trials),
        checked in the same pass so that one warning counts every dropped row.

    Returns
    -------
    (data, dropped)
        The rows to use and the index labels of the rows dropped.
    """
    if not isinstance(data, pd.DataFrame):
        raise TypeError(f"data must be a pandas DataFrame, got {type(data).__name__}")
    if isinstance(data.columns, pd.MultiIndex):
        raise TypeError(
            "data has MultiIndex (hierarchical) column labels; formulas name single columns: flatten them, "
            "e.g. data.columns = ['_'.join(map(str, c)) for c in data.columns]"
        )
    if missing not in ("error", "drop"):
        raise ValueError(f"missing must be 'error' or 'drop', got {missing!r}")
    if len(data) == 0:
        raise ValueError("data has no rows")
    needed = sorted(parsed.variables | set(extra))
    absent = [c for c in needed if c not in data.columns]
    if absent:
        raise ValueError(
            f"the formula {parsed.text!r} uses column(s) {absent} that are not in the data; "
            f"columns present: {list(map(str, data.columns))}"
        )
    _check_unique_columns(data, needed)
    response = data[parsed.response] if parsed.response in data.columns else pd.Series([0.0])
    if not _real_numbers(response) or pd.api.types.is_bool_dtype(response):
        raise TypeError(
            f"the response {parsed.response!r} must be numeric, but its dtype is {response.dtype}; "
            "convert it (e.g. with pd.to_numeric) or choose another column"
        )
    _check_not_explaining_itself(parsed)
    _check_column_types(parsed, data, extra)
    bad, problems = missing_values(data, needed)
    if not bad.any():
        return data, data.index[:0]
    what = "; ".join(problems)
    if missing == "error":
        raise ValueError(
            f"missing or non-finite values in {what}. Fix or remove them, or pass missing='drop' "
            "to drop these rows (they are then counted and recorded on the result)"
        )
    dropped = data.index[bad]
    warnings.warn(
        f"dropped {len(dropped)} of {len(data)} rows with missing or non-finite values ({what}); "
        "their labels are recorded on the model (model.spec.dropped) and on every fit (fit.dropped)",
        DroppedRowsWarning,
        stacklevel=3,
    )
    kept = data.loc[~bad]
    if len(kept) == 0:
        raise ValueError("every row has a missing or non-finite value; nothing is left to fit")
    return kept, dropped


def check_response_varies(y: np.ndarray, response: str, family: str) -> None:
    """A continuous family needs a response that varies: a constant one sends its scale to zero.

    With every value equal, the likelihood grows without bound as the scale parameter
    (``sigma``) goes to zero, and the posterior piles up there.
    """
    if y.size and np.all(y == y[0]):
        raise ValueError(
            f"the response {response!r} takes the same value ({y[0]:g}) in all {y.size} rows, so the "
            f"{family} family's scale would collapse to zero: there is no variation to model; check the "
            "column (or, for counts or 0/1 data, use a discrete family)"
        )


def _real_numbers(values: pd.Series) -> bool:
    """Numeric and not complex (a complex column would lose its imaginary part silently)."""
    return pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_complex_dtype(values)


def _check_unique_columns(data: pd.DataFrame, columns: list[str]) -> None:
    """A column name used by the model must name one column of the data, not several."""
    repeated = sorted({str(c) for c in data.columns[data.columns.duplicated()] if c in columns})
    if repeated:
        raise ValueError(
            f"the data have several columns named {repeated}, so the formula's reference to them is "
            "ambiguous; rename or drop the duplicates (data.loc[:, ~data.columns.duplicated()])"
        )


def _check_not_explaining_itself(parsed: ParsedFormula) -> None:
    """The response column may not appear among the predictors or the grouping factors."""
    desc = parsed.description
    right = set().union(
        *(t.var_names for t in desc.common_terms),
        *(t.expr.var_names | t.factor.var_names for t in desc.group_terms),
    )
    if parsed.response in right:
        raise ValueError(
            f"the response {parsed.response!r} also appears on the right-hand side of {parsed.text!r} "
            "(as a predictor or a grouping factor), so it would explain itself; remove it from the right"
        )


def _check_column_types(parsed: ParsedFormula, data: pd.DataFrame, extra: tuple[str, ...]) -> None:
    """Columns that formulae evaluates must be numbers, text or categorical.

    Grouping-factor columns are matched as text and may hold anything; every other column
    (predictors, random slopes, class covariates) goes through formulae, which reads real
    numbers as numeric and text or categoricals as categorical, and nothing else.
    """
    desc = parsed.description
    grouping = set().union(*(t.factor.var_names for t in desc.group_terms))
    evaluated = set().union(
        *(t.var_names for t in desc.common_terms), *(t.expr.var_names for t in desc.group_terms), extra
    )
    only_grouping = grouping - evaluated
    for col in sorted((parsed.variables | set(extra)) - only_grouping):
        if col == parsed.response or col not in data.columns:
            continue
        values = data[col]
        kinds = sorted({type(v).__name__ for v in values.dropna()}) if values.dtype == object else []
        if (
            _real_numbers(values)
            or pd.api.types.is_string_dtype(values)
            or isinstance(values.dtype, pd.CategoricalDtype)
            or (values.dtype == object and kinds in ([], ["str"]))  # text with gaps: counted later
        ):
            continue
        held = f" holding {', '.join(kinds)} values" if values.dtype == object else ""
        raise TypeError(
            f"the column {col!r} has dtype {values.dtype}{held}, which a formula cannot use: convert it to "
            f"numbers (pd.to_numeric(data[{col!r}]), or e.g. days since a date) or to text for a "
            f"categorical variable (data[{col!r}].astype(str))"
        )


def check_design(design: Design) -> None:
    """Reject designs that cannot identify their random effects.

    A grouping factor needs two or more levels, and a random slope must vary
    within at least one group (otherwise it is confounded with the random intercept).
    """
    bad_x = ~np.isfinite(design.X)
    if bad_x.any():
        cols = [design.fixed_names[j] for j in np.flatnonzero(bad_x.any(axis=0))]
        raise ValueError(
            f"the fixed-effect column(s) {cols} have {int(bad_x.any(axis=1).sum())} non-finite values after "
            f"evaluating the formula (first positions {np.flatnonzero(bad_x.any(axis=1))[:5].tolist()}), "
            "e.g. log(0); transform the data so that every value is finite"
        )
    if design.offset is not None and not np.all(np.isfinite(design.offset)):
        where = np.flatnonzero(~np.isfinite(design.offset))
        raise ValueError(
            f"the offset has {where.size} non-finite values after evaluating the formula (first positions "
            f"{where[:5].tolist()}), e.g. log(0) exposure; every row needs a finite offset"
        )
    if design.trials is not None:
        _check_trials(design)
    for factor in design.factors:
        if factor.n_levels < 2:
            raise ValueError(
                f"the grouping factor {factor.name!r} has a single level ({factor.levels[0]!r}); "
                "a random effect needs two or more groups: remove the term or check the column"
            )
        for k, term in enumerate(factor.terms):
            column = factor.values[:, k]
            if np.ptp(column) == 0:
                continue  # intercept-like column
            sums = np.bincount(factor.index, weights=column, minlength=factor.n_levels)
            squares = np.bincount(factor.index, weights=column**2, minlength=factor.n_levels)
            counts = np.maximum(factor.counts, 1)
            within = squares - sums**2 / counts
            scale = max(float(np.abs(column).max()) ** 2, 1e-300)
            if np.all(within <= 1e-10 * scale * counts):
                raise ValueError(
                    f"the random slope {term!r} is constant within every level of {factor.name!r}, so "
                    f"its group-level variation cannot be told apart from that of the intercept; "
                    f"drop '{term}' from the ({term} | {factor.name}) term"
                )


def _check_trials(design: Design) -> None:
    """Binomial counts: integer successes in ``0..trials``, integer trials >= 1."""
    y, n = design.y, design.trials
    assert n is not None
    checks = [
        (y == np.round(y), "the successes must be integers"),
        (y >= 0, "the successes must be >= 0 (failures, in cbind(successes, failures), must be >= 0)"),
        (y <= n, "the successes must not exceed the trials (failures must be >= 0)"),
        (np.isfinite(n) & (n >= 1) & (n == np.round(n)), "the trials must be integers >= 1"),
    ]
    for ok, what in checks:
        if not ok.all():
            rows = np.flatnonzero(~ok)[:5]
            raise ValueError(
                f"binomial response {design.response_name!r}: {what}, but {int((~ok).sum())} rows break this "
                f"(first positions {rows.tolist()}: successes {y[rows].tolist()}, trials {n[rows].tolist()})"
            )


def check_known_sd(design: Design, index: pd.Index) -> None:
    """Known SDs (``y | se(s)``) must be finite and positive in every row used.

    Missing or non-finite values in the SD's column were already handled by ``missing=``
    (an error, or the rows dropped and recorded); what is left here are SDs that are zero
    or negative, or non-finite only after evaluation (``se(sqrt(v))`` of a negative ``v``):
    an error that counts them and names the first rows by index label.
    """
    sd = design.known_sd
    if sd is None:
        return
    bad = ~(np.isfinite(sd) & (sd > 0))
    if bad.any():
        raise ValueError(
            f"the known standard deviations of {design.response_name!r} (y | se(...)) must be finite and "
            f"> 0, but {int(bad.sum())} of {sd.size} rows are not (first labels {_labels(index[bad])}: "
            f"values {sd[bad][:5].tolist()}); a row without a usable SD carries no information on its "
            "own scale: fix the values, or remove those rows"
        )
