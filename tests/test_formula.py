"""Formulas are read by formulae; these pin what bayesmix makes of them."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from bayesmix.spec.formula import FormulaError, evaluate, parse


@pytest.fixture
def df() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    n = 60
    return pd.DataFrame(
        {
            "y": rng.normal(size=n),
            "x": rng.normal(size=n),
            "z": rng.normal(size=n),
            "c": np.tile(["lo", "mid", "hi"], n // 3),
            "a": np.repeat(["A1", "A2", "A3"], n // 3),
            "b": np.tile(np.repeat(["b1", "b2"], 5), n // 10),
            "h": np.tile(["h1", "h2", "h3", "h4"], n // 4),
        }
    )


def factors(formula: str, df: pd.DataFrame) -> dict[str, tuple]:
    design = evaluate(parse(formula), df)
    return {f.name: (f.terms, f.correlated, f.n_levels) for f in design.factors}


def test_correlated_block_kept_together(df):
    assert factors("y ~ x + (x | a)", df) == {"a": (("Intercept", "x"), ("Intercept", "x"), 3)}


def test_double_bar_is_uncorrelated(df):
    assert factors("y ~ x + (x || a)", df) == {"a": (("Intercept", "x"), (), 3)}


def test_separate_terms_are_uncorrelated(df):
    assert factors("y ~ x + (1 | a) + (0 + x | a)", df) == {"a": (("Intercept", "x"), (), 3)}


def test_block_plus_independent_term(df):
    assert factors("y ~ x + (x | a) + (0 + z | a)", df) == {
        "a": (("Intercept", "x", "z"), ("Intercept", "x"), 3)
    }


def test_nested_slash_and_colon_agree(df):
    slash = factors("y ~ 1 + (1 | a/b)", df)
    colon = factors("y ~ 1 + (1 | a) + (1 | a:b)", df)
    assert slash == colon == {"a": (("Intercept",), (), 3), "a:b": (("Intercept",), (), 6)}


def test_crossed(df):
    assert factors("y ~ 1 + (1 | a) + (1 | h)", df) == {
        "a": (("Intercept",), (), 3),
        "h": (("Intercept",), (), 4),
    }


def test_categorical_fixed_effects_and_interactions(df):
    design = evaluate(parse("y ~ x * c + (1 | a)"), df)
    assert design.fixed_names == ("Intercept", "x", "c[lo]", "c[mid]", "x:c[lo]", "x:c[mid]")
    # treatment coding: the reference level 'hi' (first in sorted order) has no column
    np.testing.assert_array_equal(design.X[:, 2], (df["c"] == "lo").to_numpy(float))
    np.testing.assert_allclose(design.X[:, 4], df["x"] * (df["c"] == "lo"))


def test_group_codes_not_dense(df):
    design = evaluate(parse("y ~ x + (x | a)"), df)
    (f,) = design.factors
    assert f.index.shape == (len(df),) and f.values.shape == (len(df), 2)
    assert [f.levels[i] for i in f.index[:3]] == list(df["a"][:3])
    np.testing.assert_array_equal(f.counts, [20, 20, 20])


def test_malformed_formula_carries_formulae_message():
    with pytest.raises(FormulaError, match=r"Expect '\)' after expression.*lme4"):
        parse("y ~ x + (x | g")


def test_formula_must_be_string():
    with pytest.raises(TypeError, match="formula must be a string"):
        parse(3)  # type: ignore[arg-type]


def test_one_column_categorical_slope_named_by_level(df):
    df = df.assign(two=np.where(df["x"] > 0, "p", "q"))
    design = evaluate(parse("y ~ two + (two | a)"), df)
    assert design.factors[0].terms == ("Intercept", "two[q]") and "two[q]" in design.fixed_names
