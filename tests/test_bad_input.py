"""Every bad input of the foundation issue gives a clear error before anything is compiled."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import bayesmix as bx


@pytest.fixture
def df() -> pd.DataFrame:
    rng = np.random.default_rng(1)
    n = 40
    return pd.DataFrame(
        {
            "y": rng.normal(size=n),
            "x": rng.normal(size=n),
            "g": np.repeat([f"g{i}" for i in range(8)], 5),
            "w": np.repeat(np.arange(8.0), 5),  # constant within each level of g
        },
        index=[f"r{i}" for i in range(n)],
    )


def test_missing_column_lists_present(df):
    with pytest.raises(
        ValueError, match=r"\['xx'\].*not in the data; columns present: \['y', 'x', 'g', 'w'\]"
    ):
        bx.hierarchical("y ~ xx + (1 | g)", df)


def test_misspelled_group_column(df):
    with pytest.raises(ValueError, match=r"\['G'\].*columns present"):
        bx.mixed("y ~ x + (1 | G)", df)


@pytest.mark.parametrize(
    ("column", "bad"), [("y", np.nan), ("y", np.inf), ("x", np.nan), ("x", -np.inf), ("g", None)]
)
def test_nan_or_inf_counted_and_located(df, column, bad):
    df = df.copy()
    if column == "g":
        df[column] = df[column].astype(object)
    df.loc[["r3", "r7"], column] = bad
    with pytest.raises(ValueError, match=rf"'{column}': 2 rows \(first labels 'r3', 'r7'\).*missing='drop'"):
        bx.hierarchical("y ~ x + (1 | g)", df)


def test_drop_warns_counts_and_records(df):
    df = df.copy()
    df.loc[["r1", "r2"], "y"] = np.nan
    df.loc["r5", "x"] = np.inf
    with pytest.warns(bx.DroppedRowsWarning, match="dropped 3 of 40 rows"):
        model = bx.hierarchical("y ~ x + (1 | g)", df, missing="drop")
    assert model.spec.dropped == ("r1", "r2", "r5")
    assert model.design.n_obs == 37


def test_no_warning_when_nothing_dropped(df):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model = bx.hierarchical("y ~ x + (1 | g)", df, missing="drop")
    assert model.spec.dropped == ()


def test_bad_missing_policy(df):
    with pytest.raises(ValueError, match="missing must be 'error' or 'drop'"):
        bx.hierarchical("y ~ x + (1 | g)", df, missing="omit")


def test_non_numeric_response(df):
    df = df.assign(y=np.where(df["y"] > 0, "high", "low"))
    with pytest.raises(TypeError, match=r"response 'y' must be numeric.*dtype"):
        bx.hierarchical("y ~ x + (1 | g)", df)


def test_single_level_group(df):
    with pytest.raises(ValueError, match="grouping factor 'k' has a single level"):
        bx.hierarchical("y ~ x + (1 | k)", df.assign(k="only"))


def test_slope_constant_within_groups(df):
    with pytest.raises(ValueError, match="random slope 'w' is constant within every level of 'g'"):
        bx.hierarchical("y ~ w + (w | g)", df)


def test_unknown_family(df):
    with pytest.raises(ValueError, match=r"unknown family .gausian.; available: .*gaussian"):
        bx.hierarchical("y ~ x + (1 | g)", df, family="gausian")


def test_unknown_sampler_before_compilation(df):
    model = bx.hierarchical("y ~ x + (1 | g)", df)
    with pytest.raises(
        ValueError, match="unknown sampler 'stan'; choose one of nutpie, pymc, numpyro, blackjax"
    ):
        model.fit(sampler="stan")


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"draws": 0}, ValueError, "draws must be >= 1"),
        ({"chains": 2.5}, TypeError, "chains must be an integer"),
        ({"random_seed": "1"}, TypeError, "random_seed must be an integer or None"),
        ({"random_seed": -1}, ValueError, "random_seed must lie in"),
        ({"target_accept": 1.2}, ValueError, "target_accept must lie in"),
    ],
)
def test_bad_sampler_settings(df, kwargs, error, match):
    model = bx.hierarchical("y ~ x + (1 | g)", df)
    with pytest.raises(error, match=match):
        model.fit(**kwargs)


def test_malformed_formula(df):
    with pytest.raises(bx.FormulaError, match=r"could not read the formula 'y ~ x \+ \(1 \| g'"):
        bx.hierarchical("y ~ x + (1 | g", df)


def test_data_not_a_frame():
    with pytest.raises(TypeError, match="data must be a pandas DataFrame, got dict"):
        bx.hierarchical("y ~ x + (1 | g)", {"y": [1.0]})  # type: ignore[arg-type]


def test_empty_data(df):
    with pytest.raises(ValueError, match="data has no rows"):
        bx.hierarchical("y ~ x + (1 | g)", df.iloc[:0])


def test_unknown_prior_name_lists_valid(df):
    with pytest.raises(ValueError, match=r"no parameter named 'sd\(x\|g\)'.*'sd\(Intercept\|g\)'"):
        bx.hierarchical("y ~ x + (1 | g)", df, priors={"sd(x|g)": bx.priors.HalfNormal(1)})


def test_prior_support_checked(df):
    with pytest.raises(ValueError, match=r"'sd\(Intercept\|g\)' is positive"):
        bx.hierarchical("y ~ x + (1 | g)", df, priors={"sd(Intercept|g)": bx.priors.Normal(0, 1)})
    with pytest.raises(TypeError, match="must be a bayesmix prior"):
        bx.hierarchical("y ~ x + (1 | g)", df, priors={"x": "normal(0, 1)"})  # type: ignore[dict-item]


def test_prior_arguments_checked():
    with pytest.raises(ValueError, match="Normal: sigma must be a finite positive number"):
        bx.priors.Normal(0, -1)
    with pytest.raises(TypeError, match="HalfNormal: sigma must be a number"):
        bx.priors.HalfNormal("2")  # type: ignore[arg-type]


def test_unknown_centered_factor(df):
    with pytest.raises(ValueError, match=r"centered names unknown grouping factors \['h'\]"):
        bx.hierarchical("y ~ x + (1 | g)", df, centered=["h"])


def test_dataset_unknown():
    available = "eight_schools, sleepstudy, stamps"
    with pytest.raises(ValueError, match=f"unknown data set 'sleep'; available: {available}"):
        bx.datasets.load("sleep")


def test_non_finite_after_transformation(df):
    with pytest.raises(ValueError, match=r"fixed-effect column\(s\) \['log\(w\)'\] have 5 non-finite values"):
        bx.hierarchical("y ~ log(w) + (1 | g)", df)


def test_constant_inside_a_call_is_not_a_column(df):
    model = bx.hierarchical("y ~ log(w + 1) + (1 | g)", df)
    assert model.design.fixed_names == ("Intercept", "log(w + 1)")
