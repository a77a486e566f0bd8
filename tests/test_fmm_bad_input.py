"""Every bad input to ``bx.fmm`` gives a clear error naming the offending value; nothing is sampled."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import bayesmix as bx

N = 40


@pytest.fixture
def df() -> pd.DataFrame:
    rng = np.random.default_rng(2)
    return pd.DataFrame(
        {
            "y": rng.normal(size=N) + np.where(np.arange(N) % 2 == 0, 0.0, 3.0),
            "x": rng.normal(size=N),
            "z": rng.normal(size=N),
            "g": np.repeat(["a", "b", "c", "d"], N // 4),
        },
        index=[f"r{i}" for i in range(N)],
    )


@pytest.fixture
def counts(df: pd.DataFrame) -> pd.DataFrame:
    """Counts with zeros, and a trials column n >= y."""
    rng = np.random.default_rng(3)
    y = rng.poisson(2.0, size=N).astype(float)
    y[:3] = 0.0
    return df.assign(y=y, n=y + rng.integers(1, 4, size=N))


# --- the number of classes --------------------------------------------------------------------------


@pytest.mark.parametrize("k", [0, -1])
def test_k_below_one(df, k):
    with pytest.raises(ValueError, match=rf"k = {k} classes cannot be fitted: k must be at least 1"):
        bx.fmm(k, "y ~ x", df)


@pytest.mark.parametrize(("k", "shown"), [(2.0, "2.0"), (True, "True"), ("2", "'2'"), (None, "None")])
def test_k_not_an_integer(df, k, shown):
    with pytest.raises(TypeError, match=rf"k \(the number of classes\) must be an integer, got {shown}"):
        bx.fmm(k, "y ~ x", df)


def test_k_numpy_integer_accepted(df):
    model = bx.fmm(np.int64(2), "y ~ x", df)
    assert model.spec.k == 2
    assert type(model.spec.k) is int


def test_k_not_below_distinct_responses(df):
    four = df.assign(y=np.tile([1.0, 2.0, 3.0, 4.0], N // 4)[:N])
    with pytest.raises(
        ValueError, match=r"k = 4 classes.*without covariates.*distinct response values \(4\)"
    ):
        bx.fmm(4, "y ~ 1", four)
    assert bx.fmm(3, "y ~ 1", four).spec.k == 3


def test_two_class_logistic_regression_mixture_is_allowed(df):
    binary = df.assign(y=(df["y"] + df["x"] > 1.5).astype(float))
    assert bx.fmm(2, "y ~ x", binary, family="bernoulli").spec.k == 2


# --- the response outside a family's support ---------------------------------------------------------


@pytest.mark.parametrize(
    ("family", "bad", "wanted"),
    [
        ("lognormal", [0.0, -1.5], r"positive \(> 0\)"),
        ("gamma", [0.0, -2.0], r"positive \(> 0\)"),
        ("poisson", [-1.0, 2.5], "non-negative integer"),
        ("negbinomial", [1.5, 0.25], "non-negative integer"),
        ("bernoulli", [2.0, -1.0], "0/1"),
        ("beta", [0.0, 1.0], "strictly between 0 and 1"),
        ("beta", [1.2, -0.1], "strictly between 0 and 1"),
    ],
)
def test_response_outside_support(df, family, bad, wanted):
    good = {
        "lognormal": np.exp(df["y"]),
        "gamma": np.exp(df["y"]),
        "poisson": np.arange(N) % 7,
        "negbinomial": np.arange(N) % 7,
        "bernoulli": np.arange(N) % 2,
        "beta": stats.norm.cdf(df["y"] - 1.5),
    }[family]
    data = df.assign(y=np.asarray(good, dtype=float))
    data.loc[["r3", "r7"], "y"] = bad
    values = re.escape(str(bad))
    with pytest.raises(
        ValueError,
        match=rf"the {family} family needs a {wanted} response, but 2 values of 'y' are outside that "
        rf"\(first positions \[3, 7\], values {values}\)",
    ):
        bx.fmm(2, "y ~ x", data, family=family)


def test_point_mass_covers_its_value_but_not_the_rest(counts):
    # Zeros are the point mass's; a lognormal class cannot take the negative value.
    data = counts.assign(y=np.where(counts["y"] > 0, counts["y"] + 0.5, 0.0))
    data.loc["r9", "y"] = -1.0
    with pytest.raises(ValueError, match=r"lognormal family .* 1 values of 'y' .*values \[-1\.0\]"):
        bx.fmm(2, "y ~ x", data, family=["pointmass", "lognormal"])


# --- class covariates with missing values ----------------------------------------------------------------


def test_class_covariate_nan_names_column_and_rows(df):
    df.loc[["r3", "r7"], "z"] = np.nan
    with pytest.raises(ValueError, match=r"'z': 2 rows \(first labels 'r3', 'r7'\).*missing='drop'"):
        bx.fmm(2, "y ~ x", df, class_formula="~ z")


def test_class_covariate_nan_dropped_and_recorded(df):
    df.loc[["r3", "r7"], "z"] = np.nan
    with pytest.warns(bx.DroppedRowsWarning, match=r"dropped 2 of 40 rows .*'z': 2 rows"):
        model = bx.fmm(2, "y ~ x", df, class_formula="~ z", missing="drop")
    assert model.spec.dropped == ("r3", "r7")
    assert model.design.n_obs == 38
    assert model.design.W.shape == (38, 2)
    assert "r3" not in model.design.index


def test_component_and_class_drops_both_recorded(df):
    df.loc["r1", "x"] = np.nan
    df.loc["r5", "z"] = np.inf
    with pytest.warns(bx.DroppedRowsWarning) as record:
        model = bx.fmm(2, "y ~ x", df, class_formula="~ z", missing="drop")
    assert "'x': 1 rows (first labels 'r1')" in str(record[0].message)
    assert any("'z': 1 rows (first labels 'r5')" in str(w.message) for w in record)
    assert model.spec.dropped == ("r1", "r5")
    assert model.design.n_obs == N - 2


def test_bad_missing_policy(df):
    with pytest.raises(ValueError, match="missing must be 'error' or 'drop', got 'omit'"):
        bx.fmm(2, "y ~ x", df, missing="omit")


# --- families --------------------------------------------------------------------------------------------


def test_family_list_length_not_k(df):
    with pytest.raises(
        ValueError, match=r"family lists 3 families for k = 2 classes; give one name or exactly 2"
    ):
        bx.fmm(2, "y ~ x", df, family=["gaussian", "gaussian", "studentt"])


@pytest.mark.parametrize("family", ["gausian", ["gaussian", "poison"]])
def test_unknown_family(df, family):
    bad = family if isinstance(family, str) else family[1]
    with pytest.raises(
        ValueError,
        match=rf"unknown family '{bad}'; available: bernoulli, beta, binomial.*gaussian.*pointmass",
    ):
        bx.fmm(2, "y ~ x", df, family=family)


@pytest.mark.parametrize(
    ("family", "match"),
    [
        (3, "family must be a name or a list of k names, got int"),
        ({"gaussian": 2}, "family must be a name or a list of k names, got dict"),
        (["gaussian", 3], r"a family must be a name such as 'gaussian' or bx\.PointMass\(value\), got 3"),
        (["gaussian", None], r"a family must be a name .* got None"),
    ],
)
def test_non_string_family(df, family, match):
    with pytest.raises(TypeError, match=match):
        bx.fmm(2, "y ~ x", df, family=family)


@pytest.mark.parametrize("value", ["a", True])
def test_point_mass_value_must_be_a_number(value):
    with pytest.raises(TypeError, match=r"PointMass value must be a number, got "):
        bx.PointMass(value)


@pytest.mark.parametrize("value", [np.nan, np.inf])
def test_point_mass_value_must_be_finite(value):
    with pytest.raises(ValueError, match=r"PointMass value must be finite, got "):
        bx.PointMass(value)


@pytest.mark.parametrize(("family", "shown"), [("pointmass", "0"), (bx.PointMass(2.5), "2.5")])
def test_point_mass_value_not_in_data(df, family, shown):
    with pytest.raises(
        ValueError, match=rf"a point-mass class sits at {shown}, but no value of 'y' equals it"
    ):
        bx.fmm(2, "y ~ x", df, family=[family, "gaussian"])


def test_every_class_a_point_mass(counts):
    with pytest.raises(ValueError, match="every class is a point mass; at least one class needs a family"):
        bx.fmm(2, "y ~ x", counts, family=["pointmass", bx.PointMass(1)])
    with pytest.raises(ValueError, match="two point-mass classes sit at the same value"):
        bx.fmm(2, "y ~ x", counts, family="pointmass")


def test_two_point_masses_at_one_value_refused(counts):
    with pytest.raises(
        ValueError, match=r"two point-mass classes sit at the same value .* cannot be told apart"
    ):
        bx.fmm(3, "y ~ x", counts, family=["pointmass", "pointmass", "poisson"])


# --- binomial trials -------------------------------------------------------------------------------------


def test_binomial_without_trials(counts):
    with pytest.raises(ValueError, match="the binomial family needs trials='column'"):
        bx.fmm(2, "y ~ x", counts, family="binomial")


def test_trials_column_missing(counts):
    with pytest.raises(
        ValueError,
        match=r"trials column 'm' is not in the data; columns present: \['y', 'x', 'z', 'g', 'n'\]",
    ):
        bx.fmm(2, "y ~ x", counts, family="binomial", trials="m")


def test_trials_with_nan_follow_the_missing_policy(counts):
    counts = counts.copy()
    counts.loc[["r4", "r8"], "n"] = np.nan
    with pytest.raises(
        ValueError, match=r"missing or non-finite values in 'n': 2 rows \(first labels 'r4', 'r8'\)"
    ):
        bx.fmm(2, "y ~ x", counts, family="binomial", trials="n")
    with pytest.warns(bx.DroppedRowsWarning, match="dropped 2 of"):
        model = bx.fmm(2, "y ~ x", counts, family="binomial", trials="n", missing="drop")
    assert set(model.spec.dropped) == {"r4", "r8"}


@pytest.mark.parametrize("bad", ["fewer", "fraction", "zero"])
def test_trials_below_successes_or_not_integers(counts, bad):
    counts = counts.copy()
    counts.loc[["r4", "r8"], "y"] = 3.0
    counts.loc[["r4", "r8"], "n"] = {"fewer": 2.0, "fraction": 3.5, "zero": 0.0}[bad]
    if bad == "zero":
        counts.loc[["r4", "r8"], "y"] = 0.0
    with pytest.raises(
        ValueError,
        match=r"trials column 'n' must hold integers >= 1 and >= the response; 2 rows are not "
        r"\(first positions \[4, 8\]\)",
    ):
        bx.fmm(2, "y ~ x", counts, family="binomial", trials="n")


def test_trials_only_for_binomial(counts):
    with pytest.raises(ValueError, match="trials= is only used by the binomial family"):
        bx.fmm(2, "y ~ x", counts, family="poisson", trials="n")


def test_binomial_with_duplicated_index_labels(counts):
    repeated = counts.set_axis(np.repeat(np.arange(N // 2), 2))
    model = bx.fmm(2, "y ~ x", repeated, family="binomial", trials="n")
    np.testing.assert_array_equal(model.design.trials, counts["n"].to_numpy())


# --- priors ----------------------------------------------------------------------------------------------


def test_prior_for_unknown_name_lists_valid(df):
    with pytest.raises(
        ValueError,
        match=r"no parameter named 'tau' in this mixture; names are "
        r"\['Intercept\[1\]', 'x\[1\]', 'sigma\[1\]'.*'class\[2\]:Intercept'\] "
        r"\(or a name without the class, applying to every class: "
        r"\['Intercept', 'sigma', 'x'\]\)",
    ):
        bx.fmm(2, "y ~ x", df, priors={"tau": bx.priors.Normal(0, 1)})


def test_prior_for_a_class_that_does_not_exist(df):
    with pytest.raises(ValueError, match=r"no parameter named 'Intercept\[3\]'"):
        bx.fmm(2, "y ~ x", df, priors={"Intercept[3]": bx.priors.Normal(0, 1)})


@pytest.mark.parametrize(("key", "target"), [("sigma[2]", "sigma[2]"), ("sigma", "sigma[1]")])
def test_non_positive_prior_for_sigma(df, key, target):
    with pytest.raises(
        ValueError, match=re.escape(f"'{target}' is positive: give it a positive prior, not Normal(0, 1)")
    ):
        bx.fmm(2, "y ~ x", df, priors={key: bx.priors.Normal(0, 1)})


def test_prior_not_a_prior(df):
    with pytest.raises(
        TypeError, match=r"the prior for 'sigma' must be a bayesmix prior .* got 'halfnormal'"
    ):
        bx.fmm(2, "y ~ x", df, priors={"sigma": "halfnormal"})
    with pytest.raises(TypeError, match="priors must be a dict of parameter name -> prior, got list"):
        bx.fmm(2, "y ~ x", df, priors=[bx.priors.Normal(0, 1)])


def test_classless_prior_applies_to_every_class(df):
    chosen = bx.priors.HalfNormal(2.0)
    model = bx.fmm(3, "y ~ x", df, priors={"sigma": chosen})
    assert {n: p for n, p in model.spec.priors.items() if n.startswith("sigma")} == {
        "sigma[1]": chosen,
        "sigma[2]": chosen,
        "sigma[3]": chosen,
    }
    assert model.spec.user_priors == {"sigma[1]", "sigma[2]", "sigma[3]"}
    table = model.spec.prior_table()
    assert (table.loc[["sigma[1]", "sigma[2]", "sigma[3]"], "source"] == "user").all()
    assert (table.drop(["sigma[1]", "sigma[2]", "sigma[3]"])["source"] == "default").all()
    # ... and the graph uses it: the sigma prior term is the half-normal's.
    m = model.pymc_model
    sigma = m["sigma"]
    point = m.initial_point()
    point[m.rvs_to_values[sigma].name] = np.log([0.5, 1.0, 2.5])  # log-transformed value
    logp = float(m.compile_logp(vars=[sigma], jacobian=False)(point))
    np.testing.assert_allclose(logp, stats.halfnorm.logpdf([0.5, 1.0, 2.5], scale=2.0).sum(), rtol=1e-8)


def test_classless_prior_only_where_the_family_has_it(df):
    model = bx.fmm(2, "y ~ x", df, family=["gaussian", "studentt"], priors={"nu": bx.priors.Gamma(3, 0.5)})
    assert model.spec.user_priors == {"nu[2]"}
    assert "nu[1]" not in model.spec.priors


def test_classless_prior_for_categorical_coefficient(df):
    model = bx.fmm(2, "y ~ g", df, priors={"g[b]": bx.priors.Normal(0, 1)})
    assert model.spec.user_priors == {"g[b][1]", "g[b][2]"}
    with pytest.raises(ValueError, match="no parameter named 'g' in this mixture"):
        bx.fmm(2, "y ~ g", df, priors={"g": bx.priors.Normal(0, 1)})


def test_class_specific_prior_wins_over_classless(df):
    priors = {"sigma[2]": bx.priors.Exponential(1.0), "sigma": bx.priors.HalfNormal(2.0)}
    model = bx.fmm(2, "y ~ x", df, priors=priors)
    assert model.spec.priors["sigma[2]"] == bx.priors.Exponential(1.0)
    assert model.spec.priors["sigma[1]"] == bx.priors.HalfNormal(2.0)


# --- ordering --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("family", "order_by", "valid"),
    [
        ("gaussian", "tau", r"\['Intercept', 'x', 'sigma', 'class'\]"),
        ("poisson", "sigma", r"\['Intercept', 'x', 'class'\]"),
    ],
)
def test_order_by_names_nothing(df, counts, family, order_by, valid):
    data = df if family == "gaussian" else counts
    with pytest.raises(
        ValueError,
        match=rf"order_by='{order_by}' names no parameter of this model; choose one of {valid} or None",
    ):
        bx.fmm(2, "y ~ x", data, family=family, order_by=order_by)


def test_order_by_class_needs_one_family(df, counts):
    with pytest.raises(ValueError, match="order_by='class' needs every class to have the same family"):
        bx.fmm(2, "y ~ x", df, family=["gaussian", "studentt"], order_by="class")
    with pytest.raises(ValueError, match="order_by='class' needs every class to have the same family"):
        bx.fmm(2, "y ~ x", counts, family=["pointmass", "poisson"], order_by="class")


def test_order_by_class_needs_a_class_intercept(df):
    with pytest.raises(
        ValueError, match="order_by='class' orders the class-logit intercepts; class_formula has no"
    ):
        bx.fmm(2, "y ~ x", df, class_formula="~ 0 + z", order_by="class")


def test_order_by_class_accepted(df):
    spec = bx.fmm(3, "y ~ x", df, order_by="class").spec
    assert (spec.order_by, spec.order_groups) == ("class", ((0, 1, 2),))
    assert "increasing class probability" in spec.ordering()


# --- formulas and data -----------------------------------------------------------------------------------


def test_random_effects_in_fmm_formula(df):
    with pytest.raises(
        bx.FormulaError, match=r"mixture formulas take fixed effects only; 'y ~ x \+ \(1 \| g\)'"
    ):
        bx.fmm(2, "y ~ x + (1 | g)", df)


def test_random_effects_in_class_formula(df):
    with pytest.raises(
        bx.FormulaError, match=r"class_formula '~ z \+ \(1 \| g\)' cannot have random effects"
    ):
        bx.fmm(2, "y ~ x", df, class_formula="~ z + (1 | g)")


@pytest.mark.parametrize("class_formula", ["y ~ z", "z", 3])
def test_class_formula_not_one_sided(df, class_formula):
    with pytest.raises(
        ValueError, match=rf"class_formula must be one-sided, such as '~ z', got {class_formula!r}"
    ):
        bx.fmm(2, "y ~ x", df, class_formula=class_formula)


@pytest.mark.parametrize(("formula", "class_formula"), [("y ~ xx", None), ("y ~ x", "~ xx")])
def test_missing_column_lists_present(df, formula, class_formula):
    with pytest.raises(
        ValueError, match=r"\['xx'\] that are not in the data; columns present: \['y', 'x', 'z', 'g'\]"
    ):
        bx.fmm(2, formula, df, class_formula=class_formula)


def test_non_numeric_response(df):
    with pytest.raises(TypeError, match=r"response 'y' must be numeric, but its dtype is (object|str)"):
        bx.fmm(2, "y ~ x", df.assign(y=np.where(df["y"] > 1, "high", "low").astype(object)))


def test_data_not_a_frame(df):
    with pytest.raises(TypeError, match="data must be a pandas DataFrame, got dict"):
        bx.fmm(2, "y ~ x", df.to_dict("list"))


# --- fitting arguments, checked before anything is sampled or searched -------------------------------------


@pytest.fixture
def model(df) -> bx.MixtureModel:
    return bx.fmm(2, "y ~ x", df)


def test_fit_unknown_init(model):
    with pytest.raises(ValueError, match="init must be 'modes', 'ml' or 'prior', got 'bogus'"):
        model.fit(init="bogus")


def test_fit_refuses_another_models_ml_fit(model, df):
    other = bx.fmm(2, "y ~ x", df)
    with pytest.raises(ValueError, match="ml= must be a fit_ml\\(\\) result of this model"):
        model.fit(ml=other.fit_ml(n_starts=2, em_iterations=2, warn_within=0.0))


def test_fit_bad_settings_before_ml_search(model):
    with pytest.raises(ValueError, match="draws must be >= 1, got 0"):
        model.fit(draws=0)
    assert model._ml == {}  # the ML search did not run


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"n_starts": 0}, "n_starts must be a positive integer, got 0"),
        ({"n_starts": 2.5}, "n_starts must be a positive integer, got 2.5"),
        ({"n_starts": True}, "n_starts must be a positive integer, got True"),
        ({"em_iterations": -1}, "em_iterations must be a positive integer, got -1"),
    ],
)
def test_fit_ml_bad_arguments(model, kwargs, match):
    with pytest.raises(ValueError, match=match):
        model.fit_ml(**kwargs)
