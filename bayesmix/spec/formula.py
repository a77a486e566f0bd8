"""lme4-style formulas, read by ``formulae`` and evaluated without dense random-effect designs.

``formulae`` parses every formula. Two things are added on top of its parser, at
the level of its tokens and syntax tree (never by re-parsing text):

* ``(x || g)``: formulae has no double bar. The second bar token is dropped and the
  group is recorded as uncorrelated, which is what lme4 means by it
  (``(1 | g) + (0 + x | g)``).
* correlated blocks: formulae splits ``(x | g)`` into the terms ``1|g`` and ``x|g``.
  Each parenthesised group is resolved on its own so the terms written together
  stay one correlation block.

Grouping factors are evaluated as integer codes (never the ``n x J`` indicator
matrix that formulae's ``GroupEffectsMatrix`` would build).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

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

__all__ = ["FormulaError", "ParsedFormula", "evaluate", "parse"]

_NAMESPACE = {
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
    """

    text: str
    description: Model
    blocks: tuple[tuple[tuple[GroupSpecificTerm, ...], bool], ...]

    @property
    def variables(self) -> set[str]:
        """Data columns the formula refers to."""
        return {name for name in self.description.var_names if name}  # constants show up as ''

    @property
    def response(self) -> str:
        """Name of the response column."""
        if self.description.response is None:
            raise FormulaError(f"formula {self.text!r} has no response: write it as 'y ~ ...'")
        return str(self.description.response.term.name)


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
    try:
        tokens = Scanner(formula).scan()
        tokens, uncorrelated = _merge_double_bars(tokens)
        tree = Parser(tokens).parse()
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
    return ParsedFormula(formula, description, blocks)


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
    env = Environment([_NAMESPACE])
    desc = parsed.description
    with np.errstate(divide="ignore", invalid="ignore"):  # non-finite results are reported by check_design
        fixed = DesignMatrices(Model(*desc.common_terms, response=desc.response), data, env)
    y = np.asarray(fixed.response.design_matrix, dtype=float).reshape(-1)
    if fixed.common is None:
        X = np.empty((len(data), 0))
        fixed_names: tuple[str, ...] = ()
    else:
        X = np.asarray(fixed.common.design_matrix, dtype=float)
        fixed_names = tuple(fixed.common.as_dataframe().columns)
    factors = _evaluate_factors(parsed, data, env)
    return Design(response_name=parsed.response, y=y, X=X, fixed_names=fixed_names, factors=factors)


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
    """Integer codes and level labels of a (possibly interaction) grouping factor."""
    parts = []
    for component in term.factor.components:
        if not isinstance(component, Variable):
            raise FormulaError(
                f"grouping factor {term.factor.name!r}: use a data column, not a function call, "
                "to define groups (add the transformed column to the data first)"
            )
        parts.append(data[component.name].astype(str).to_numpy())
    labels = parts[0] if len(parts) == 1 else np.array([":".join(v) for v in zip(*parts, strict=True)])
    levels, index = np.unique(labels, return_inverse=True)
    return index.astype(np.int64), tuple(str(v) for v in levels)
