"""lme4-style formulas, read by ``formulae`` and evaluated without dense random-effect designs.

``formulae`` parses every formula. Two things are added on top of its parser, at
the level of its tokens and syntax tree (never by re-parsing text):

* ``(x || g)``: formulae has no double bar. The second bar token is dropped and the
  group is recorded as uncorrelated, which is what lme4 means by it
  (``(1 | g) + (0 + x | g)``).
* correlated blocks: formulae splits ``(x | g)`` into the terms ``1|g`` and ``x|g``.
  Each parenthesised group is resolved on its own so the terms written together
  stay one correlation block.
* binomial responses: lme4's ``cbind(successes, failures)`` is a call that formulae
  evaluates as it stands (``cbind`` is in the namespace below); the brms spelling
  ``successes | trials(n)`` is a bar in the response, which the syntax tree turns into
  the call ``trials(successes, n)`` before formulae resolves it. Either way the response
  evaluates to two columns: successes and trials.
* known standard deviations: the brms spelling ``y | se(s) ~ ...`` (meta-analysis: each row
  an estimate with its standard error) is rewritten the same way, to the call ``se(y, s)``,
  which evaluates to two columns: the response and its known SD (:attr:`Design.known_sd`).

Offsets are formulae's own ``offset(...)`` terms; they are taken out of the
fixed-effect design and summed into :attr:`Design.offset`.

Grouping factors are evaluated as integer codes (never the ``n x J`` indicator
matrix that formulae's ``GroupEffectsMatrix`` would build).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from formulae import expr as fexpr
from formulae.environment import Environment
from formulae.matrices import DesignMatrices
from formulae.parser import Parser
from formulae.resolver import Resolver
from formulae.scanner import Scanner
from formulae.terms.terms import GroupSpecificTerm, Intercept, Model
from formulae.terms.variable import Variable

from .terms import Design, GroupFactor

__all__ = ["NAMESPACE", "FormulaError", "ParsedFormula", "evaluate", "parse"]


def _cbind(successes: object, failures: object) -> np.ndarray:
    """lme4's ``cbind(successes, failures)`` as the columns (successes, trials)."""
    s, f = np.asarray(successes, dtype=float), np.asarray(failures, dtype=float)
    return np.column_stack([s, s + f])


def _trials(successes: object, trials: object) -> np.ndarray:
    """``successes | trials(n)`` (rewritten to ``trials(successes, n)``) as (successes, trials)."""
    s = np.asarray(successes, dtype=float)
    return np.column_stack([s, np.broadcast_to(np.asarray(trials, dtype=float), s.shape)])


def _se(response: object, sd: object) -> np.ndarray:
    """``y | se(s)`` (rewritten to ``se(y, s)``) as the columns (response, known SD)."""
    y = np.asarray(response, dtype=float)
    return np.column_stack([y, np.broadcast_to(np.asarray(sd, dtype=float), y.shape)])


# Calls that make a two-column (successes, trials) response.
_BINOMIAL_RESPONSES = {"cbind": _cbind, "trials": _trials}
# Calls that make a two-column (response, known SD) response.
_KNOWN_SD_RESPONSES = {"se": _se}
# Additions written after a bar in the response (brms): name -> what it means.
_RESPONSE_ADDITIONS = {
    "trials": "the number of binomial trials",
    "se": "a known standard deviation of each row's response",
}

NAMESPACE = {
    **_BINOMIAL_RESPONSES,
    **_KNOWN_SD_RESPONSES,
    "np": np,
    "log": np.log,
    "log1p": np.log1p,
    "log2": np.log2,
    "log10": np.log10,
    "exp": np.exp,
    "sqrt": np.sqrt,
    "abs": np.abs,
}


class FormulaError(ValueError):
    """A formula that cannot be read; the message carries formulae's own words."""


@dataclass(frozen=True, slots=True)
class ParsedFormula:
    """A formula as formulae understands it, plus the correlation blocks.

    Attributes
    ----------
    text
        The formula as the user wrote it.
    description
        formulae's model description (response, common and group-specific terms).
    blocks
        One entry per parenthesised random-effect group, in the order written:
        ``(group terms, correlated)``.
    binomial
        True when the response names successes and trials (``cbind(s, f)`` or ``s | trials(n)``).
    response_label
        The response's column when the response is a call (``s`` of ``s | trials(n)``).
    known_sd
        True when the response carries a known SD per row (``y | se(s)``).
    """

    text: str
    description: Model
    blocks: tuple[tuple[tuple[GroupSpecificTerm, ...], bool], ...]
    binomial: bool = False
    response_label: str = ""
    known_sd: bool = False

    @property
    def variables(self) -> set[str]:
        """Data columns the formula refers to."""
        return {name for name in self.description.var_names if name}  # constants show up as ''

    @property
    def response(self) -> str:
        """Name of the response: its column, or for a binomial response the successes' column."""
        if self.description.response is None:
            raise FormulaError(f"formula {self.text!r} has no response: write it as 'y ~ ...'")
        return self.response_label or str(self.description.response.term.name)


def parse(formula: str) -> ParsedFormula:
    """Read an lme4-style formula with formulae.

    Parameters
    ----------
    formula
        For example ``"Reaction ~ Days + (Days | Subject)"``; ``(x || g)`` for
        uncorrelated random effects, ``(1 | a/b)`` or ``(1 | a:b)`` for nesting.

    Returns
    -------
    ParsedFormula
    """
    if not isinstance(formula, str):
        raise TypeError(f"formula must be a string such as 'y ~ x + (1 | g)', got {type(formula).__name__}")
    if not formula.strip():
        raise FormulaError("the formula is empty: write it as 'y ~ x + (1 | g)', the response left of '~'")
    try:
        tokens = Scanner(formula).scan()
        tokens, uncorrelated = _merge_double_bars(tokens)
        tree, kind, label = _response_addition(Parser(tokens).parse(), formula)
        description = Resolver(tree).resolve()
        if not isinstance(description, Model):
            description = Model(description)
        groups = list(_pipe_groupings(tree))
        blocks = tuple(
            (_group_terms(Resolver(g).resolve()), i not in uncorrelated) for i, g in enumerate(groups)
        )
    except FormulaError:
        raise
    except Exception as err:  # formulae raises several exception types for syntax errors
        raise FormulaError(
            f"could not read the formula {formula!r}: {err}. Write it as lme4 does, for example "
            "'y ~ x + (x | g)' (correlated), '(x || g)' (uncorrelated), '(1 | a/b)' (nested)."
        ) from err
    if description.response is None:
        raise FormulaError(f"formula {formula!r} has no response: write it as 'y ~ ...'")
    return ParsedFormula(formula, description, blocks, kind == "binomial", label, kind == "se")


def _response_addition(tree: object, formula: str) -> tuple[object, str, str]:
    """Rewrite ``s | trials(n) ~ ...`` to ``trials(s, n) ~ ...`` and ``y | se(s)`` to ``se(y, s)``.

    Spots ``cbind(s, f) ~ ...`` (and the rewritten calls written out). Returns the tree, the
    kind of response (``"binomial"``, ``"se"`` or ``""``) and the response's column name.
    """
    if not (isinstance(tree, fexpr.Binary) and tree.operator.kind == "TILDE"):
        return tree, "", ""
    left = tree.left
    if isinstance(left, fexpr.Binary) and left.operator.kind == "PIPE":
        addition = left.right
        name = _name(addition.callee) if isinstance(addition, fexpr.Call) else None
        if name not in _RESPONSE_ADDITIONS or len(addition.args) != 1:
            known = ", ".join(f"'y | {k}(...)' ({v})" for k, v in _RESPONSE_ADDITIONS.items())
            raise FormulaError(
                f"could not read the response of {formula!r}: after a bar in the response bayesmix "
                f"understands {known}; for binomial data lme4's 'cbind(successes, failures) ~ ...' "
                "works too"
            )
        call = fexpr.Call(addition.callee, [left.left, *addition.args])
        kind = "se" if name in _KNOWN_SD_RESPONSES else "binomial"
        return fexpr.Binary(call, tree.operator, tree.right), kind, _label(left.left, kind)
    callee = _name(left.callee) if isinstance(left, fexpr.Call) else None
    if callee in _BINOMIAL_RESPONSES or callee in _KNOWN_SD_RESPONSES:
        if len(left.args) != 2:
            raise FormulaError(
                f"{callee}(...) in {formula!r} needs two arguments: cbind(successes, failures), "
                "successes | trials(n), or y | se(sd)"
            )
        kind = "se" if callee in _KNOWN_SD_RESPONSES else "binomial"
        return tree, kind, _label(left.args[0], kind)
    return tree, "", ""


def _name(node: object) -> str | None:
    """The identifier of a formulae ``Variable`` node (its name is a scanner token)."""
    if not isinstance(node, fexpr.Variable):
        return None
    return str(getattr(node.name, "lexeme", node.name))


def _label(node: object, kind: str = "binomial") -> str:
    """The column name of a response expression (``successes``/``response`` when not a plain column)."""
    return _name(node) or ("successes" if kind == "binomial" else "response")


def _merge_double_bars(tokens: list) -> tuple[list, set[int]]:
    """Drop the second bar of each ``||`` and return the ordinals of those groups."""
    out, uncorrelated, ordinal = [], set(), 0
    skip = False
    for i, tok in enumerate(tokens):
        if skip:
            skip = False
            continue
        out.append(tok)
        if tok.kind == "PIPE":
            if i + 1 < len(tokens) and tokens[i + 1].kind == "PIPE":
                uncorrelated.add(ordinal)
                skip = True
            ordinal += 1
    return out, uncorrelated


def _pipe_groupings(node: object) -> Iterator[fexpr.Grouping]:
    """Parenthesised ``(expr | factor)`` nodes, left to right."""
    if isinstance(node, fexpr.Grouping):
        inner = node.expression
        if isinstance(inner, fexpr.Binary) and inner.operator.kind == "PIPE":
            yield node
            return
        yield from _pipe_groupings(inner)
    elif isinstance(node, fexpr.Binary):
        yield from _pipe_groupings(node.left)
        yield from _pipe_groupings(node.right)
    elif isinstance(node, fexpr.Unary):
        yield from _pipe_groupings(node.right)


def _group_terms(resolved: object) -> tuple[GroupSpecificTerm, ...]:
    if isinstance(resolved, Model):
        return tuple(resolved.group_terms)
    if isinstance(resolved, GroupSpecificTerm):
        return (resolved,)
    raise FormulaError(f"could not read the random-effect term {resolved}")


def evaluate(parsed: ParsedFormula, data: pd.DataFrame) -> Design:
    """Evaluate a parsed formula on (already checked) data.

    Parameters
    ----------
    parsed
        The output of :func:`parse`.
    data
        Rows to use; the caller has checked columns and missing values.

    Returns
    -------
    Design
        Response, fixed-effect design with formulae's column names, and one
        :class:`GroupFactor` per grouping factor.
    """
    env = Environment([NAMESPACE])
    desc = parsed.description
    with np.errstate(divide="ignore", invalid="ignore"):  # non-finite results are reported by check_design
        fixed = DesignMatrices(Model(*desc.common_terms, response=desc.response), data, env)
    response = np.asarray(fixed.response.design_matrix, dtype=float)
    trials = known_sd = None
    if parsed.binomial:
        y, trials = response[:, 0], response[:, 1]
    elif parsed.known_sd:
        y, known_sd = response[:, 0], response[:, 1]
    else:
        y = response.reshape(-1)
    X, fixed_names, offset = _split_offsets(fixed.common, len(data))
    factors = _evaluate_factors(parsed, data, env)
    return Design(
        response_name=parsed.response,
        y=y,
        X=X,
        fixed_names=fixed_names,
        factors=factors,
        trials=trials,
        offset=offset,
        known_sd=known_sd,
        common=fixed.common,
    )


def _split_offsets(common: Any, n: int) -> tuple[np.ndarray, tuple[str, ...], np.ndarray | None]:
    """The fixed-effect design without its ``offset(...)`` columns, and the summed offsets."""
    if common is None:
        return np.empty((n, 0)), (), None
    matrix = np.asarray(common.design_matrix, dtype=np.float64)
    labels = list(common.as_dataframe().columns)
    names, keep, offset = [], [], None
    for name, term in common.terms.items():
        cols = common.slices[name]
        if term.kind == "offset":
            part = matrix[:, cols].sum(axis=1)
            offset = part if offset is None else offset + part
        else:
            names += labels[cols]
            keep += list(range(cols.start, cols.stop))
    return matrix[:, keep], tuple(names), offset


def _evaluate_factors(parsed: ParsedFormula, data: pd.DataFrame, env: Environment) -> tuple[GroupFactor, ...]:
    all_terms = [t for terms, _ in parsed.blocks for t in terms]
    collected: dict[str, dict] = {}
    for terms, correlated in parsed.blocks:
        in_block: dict[str, list[str]] = {}
        for term in terms:
            name = term.factor.name
            entry = collected.setdefault(
                name, {"labels": [], "values": [], "correlated": [], "index": None, "levels": None}
            )
            labels, values = _expr_columns(term, all_terms, data, env)
            dup = set(labels) & set(entry["labels"])
            if dup:
                raise FormulaError(
                    f"{sorted(dup)} appear twice for the grouping factor {name!r} in {parsed.text!r}; "
                    "write each random effect once"
                )
            entry["labels"] += labels
            entry["values"].append(values)
            in_block.setdefault(name, []).extend(labels)
            if entry["index"] is None:
                entry["index"], entry["levels"] = _factor_codes(term, data)
        for name, labels in in_block.items():
            if correlated and len(labels) > 1:
                collected[name]["correlated"].append(labels)
    factors = []
    for name, e in collected.items():
        blocks = e["correlated"]
        if len(blocks) > 1:
            raise FormulaError(
                f"the grouping factor {name!r} has {len(blocks)} separate correlated blocks; "
                "bayesmix supports one per factor: merge them into one (a + b | g) or split with ||"
            )
        factors.append(
            GroupFactor(
                name=name,
                levels=e["levels"],
                index=e["index"],
                terms=tuple(e["labels"]),
                values=np.column_stack(e["values"]).astype(float),
                correlated=tuple(blocks[0]) if blocks else (),
            )
        )
    return tuple(factors)


def _expr_columns(
    term: GroupSpecificTerm, all_terms: list[GroupSpecificTerm], data: pd.DataFrame, env: Environment
) -> tuple[list[str], np.ndarray]:
    """Columns of a group term's expression, with formulae's encoding rules."""
    if isinstance(term.expr, Intercept):
        return ["Intercept"], np.ones((len(data), 1))
    term.expr.set_type(data, env)
    # As formulae does: a categorical slope is coded in full unless the same
    # factor also has a random intercept.
    has_intercept = any(
        isinstance(t.expr, Intercept) and t.factor.name == term.factor.name for t in all_terms
    )
    term.expr.set_data(not has_intercept)
    values = np.asarray(term.expr.data, dtype=float)
    if values.ndim == 1:
        values = values[:, None]
    labels = list(term.expr.labels) if term.expr.kind != "numeric" else [str(term.expr.name)]
    return labels, values


def _factor_codes(term: GroupSpecificTerm, data: pd.DataFrame) -> tuple[np.ndarray, tuple[str, ...]]:
    """Integer codes and level labels (sorted as strings) of a (possibly interaction) grouping factor.

    Hash-based (``pd.factorize``), so linear in the rows: sorting a million string labels
    took seconds; only the distinct levels are sorted here.
    """
    codes: np.ndarray | None = None
    labels: np.ndarray = np.array([], dtype=object)
    for component in term.factor.components:
        if not isinstance(component, Variable):
            raise FormulaError(
                f"grouping factor {term.factor.name!r}: use a data column, not a function call, "
                "to define groups (add the transformed column to the data first)"
            )
        part_codes, part_labels = _column_codes(data[component.name])
        if codes is None:
            codes, labels = part_codes, part_labels
        else:  # interaction: one code per observed pair, labelled "a:b"
            pair = codes * len(part_labels) + part_codes
            pair_codes, pairs = pd.factorize(pair)
            codes = pair_codes
            labels = np.array(
                [f"{labels[p // len(part_labels)]}:{part_labels[p % len(part_labels)]}" for p in pairs],
                dtype=object,
            )
    assert codes is not None  # a factor has at least one component
    order = np.argsort(labels, kind="stable")
    rank = np.empty(order.size, dtype=np.int64)
    rank[order] = np.arange(order.size)
    return rank[codes], tuple(str(v) for v in labels[order])


def _column_codes(column: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Codes into distinct string labels; values with the same string form share a code."""
    codes, uniques = pd.factorize(column, sort=False)
    labels = np.array([str(v) for v in uniques], dtype=object)
    label_codes, distinct = pd.factorize(labels)
    if len(distinct) < len(labels):  # e.g. 1 and "1" in an object column: one level, as before
        codes, labels = label_codes[codes], np.asarray(distinct, dtype=object)
    return codes.astype(np.int64), labels
