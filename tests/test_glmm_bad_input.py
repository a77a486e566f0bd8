"""Bad input to GLMMs (binomial responses, offsets, links, known K): clear errors, nothing compiled."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import bayesmix as bx


@pytest.fixture
def counts() -> pd.DataFrame:
    rng = np.random.default_rng(2)
    n = 48
    size = rng.integers(5, 20, size=n)
    return pd.DataFrame(
        {
            "s": rng.binomial(size, 0.3),
            "n": size,
            "x": rng.normal(size=n),
            "e": rng.uniform(0.5, 2.0, size=n),
            "g": np.repeat([f"g{i}" for i in range(8)], 6),
        }
    )


@pytest.fixture
def kinship() -> pd.DataFrame:
    labels = [f"g{i}" for i in range(8)]
    matrix = 0.5 * np.eye(8) + 0.5 * np.kron(np.eye(4), np.ones((2, 2)))
    return pd.DataFrame(matrix, index=labels, columns=labels)


def test_binomial_response_forms_agree(counts):
    a = bx.hierarchical("cbind(s, n - s) ~ x + (1 | g)", counts, family="binomial")
    b = bx.hierarchical("s | trials(n) ~ x + (1 | g)", counts, family="binomial")
    np.testing.assert_array_equal(a.design.trials, counts["n"].to_numpy(float))
    np.testing.assert_array_equal(b.design.trials, a.design.trials)
    np.testing.assert_array_equal(b.design.y, a.design.y)
    assert a.design.response_name == b.design.response_name == "s"


def test_binomial_without_trials(counts):
    with pytest.raises(ValueError, match=r"needs the number of trials.*cbind\(successes, failures\)"):
        bx.hierarchical("s ~ x + (1 | g)", counts, family="binomial")


def test_trials_with_another_family(counts):
    with pytest.raises(ValueError, match="only family='binomial'"):
        bx.hierarchical("s | trials(n) ~ x + (1 | g)", counts, family="poisson")


def test_successes_above_trials(counts):
    counts.loc[3, "s"] = counts.loc[3, "n"] + 1
    with pytest.raises(ValueError, match=r"must not exceed the trials.*1 rows.*first positions \[3\]"):
        bx.hierarchical("s | trials(n) ~ x + (1 | g)", counts, family="binomial")


def test_negative_failures(counts):
    with pytest.raises(ValueError, match=r"must not exceed the trials \(failures must be >= 0\)"):
        bx.hierarchical("cbind(s, s - n) ~ x + (1 | g)", counts.assign(n=counts["n"] + 1), family="binomial")


def test_negative_successes(counts):
    counts.loc[0, "s"] = -1
    with pytest.raises(ValueError, match=r"successes must be >= 0"):
        bx.hierarchical("s | trials(n) ~ x + (1 | g)", counts, family="binomial")


def test_fractional_trials(counts):
    counts["n"] = counts["n"] + 0.5
    with pytest.raises(ValueError, match="trials must be integers >= 1"):
        bx.hierarchical("s | trials(n) ~ x + (1 | g)", counts, family="binomial")


def test_unknown_response_addition(counts):
    with pytest.raises(bx.FormulaError, match=r"after a bar in the response.*trials"):
        bx.hierarchical("s | weights(n) ~ x + (1 | g)", counts, family="binomial")


def test_cbind_needs_two_arguments(counts):
    with pytest.raises(bx.FormulaError, match="needs two arguments"):
        bx.hierarchical("cbind(s) ~ x + (1 | g)", counts, family="binomial")


def test_offset_is_not_a_coefficient(counts):
    model = bx.hierarchical("s ~ x + offset(log(e)) + (1 | g)", counts, family="poisson")
    assert model.design.fixed_names == ("Intercept", "x")
    np.testing.assert_allclose(model.design.offset, np.log(counts["e"]))


def test_offset_not_finite(counts):
    counts.loc[5, "e"] = 0.0
    with pytest.raises(ValueError, match=r"offset has 1 non-finite values.*first positions \[5\]"):
        bx.hierarchical("s ~ x + offset(log(e)) + (1 | g)", counts, family="poisson")


def test_unknown_link(counts):
    with pytest.raises(
        ValueError, match=r"binomial family has the link\(s\) logit, probit; got link='cloglog'"
    ):
        bx.hierarchical("s | trials(n) ~ x + (1 | g)", counts, family="binomial", link="cloglog")


def test_probit_link_recorded(counts):
    model = bx.hierarchical("s | trials(n) ~ x + (1 | g)", counts, family="binomial", link="probit")
    assert model.spec.link == "probit" and model.spec.family_def.link == "probit"


def test_covariance_wrong_shape(counts):
    with pytest.raises(ValueError, match=r"shape \(3, 3\), but 'g' has 8 levels"):
        bx.hierarchical("s ~ x + (1 | g)", counts, family="poisson", covariances={"g": np.eye(3)})


def test_covariance_unmatched_labels(counts, kinship):
    K = kinship.rename(index={"g7": "h7"}, columns={"g7": "h7"})
    with pytest.raises(
        ValueError, match=r"1 levels of 'g' in the data are not in its covariance matrix.*'g7'"
    ):
        bx.hierarchical("s ~ x + (1 | g)", counts, family="poisson", covariances={"g": K})


def test_covariance_index_and_columns_differ(counts, kinship):
    kinship.columns = list(reversed(kinship.columns))
    with pytest.raises(ValueError, match="same labels, in the same order"):
        bx.hierarchical("s ~ x + (1 | g)", counts, family="poisson", covariances={"g": kinship})


def test_covariance_not_symmetric(counts, kinship):
    kinship.iloc[0, 1] = 0.9
    with pytest.raises(ValueError, match=r"not symmetric: K\['g0', 'g1'\] = 0.9"):
        bx.hierarchical("s ~ x + (1 | g)", counts, family="poisson", covariances={"g": kinship})


def test_covariance_not_positive_definite(counts, kinship):
    kinship.iloc[:, :] = np.ones((8, 8))
    with pytest.raises(ValueError, match="not positive-definite"):
        bx.hierarchical("s ~ x + (1 | g)", counts, family="poisson", covariances={"g": kinship})


def test_covariance_for_unknown_factor(counts, kinship):
    with pytest.raises(
        ValueError, match=r"unknown grouping factors \['strain'\]; factors in the formula: \['g'\]"
    ):
        bx.hierarchical("s ~ x + (1 | g)", counts, family="poisson", covariances={"strain": kinship})


def test_covariance_wrong_type(counts):
    with pytest.raises(TypeError, match="DataFrame labelled by level or a numpy array"):
        bx.hierarchical("s ~ x + (1 | g)", counts, family="poisson", covariances={"g": "kinship.csv"})


def test_covariance_keeps_levels_without_data(counts, kinship):
    labels = [*kinship.index, "g8"]
    bigger = pd.DataFrame(np.eye(9), index=labels, columns=labels)
    bigger.iloc[:8, :8] = kinship.to_numpy()
    model = bx.hierarchical("s ~ x + (1 | g)", counts, family="poisson", covariances={"g": bigger})
    factor = model.design.factors[0]
    assert factor.levels == tuple(labels) and factor.counts[-1] == 0
    assert factor.covariance is not None and factor.covariance.shape == (9, 9)


def test_centered_bad_values(counts):
    with pytest.raises(ValueError, match="centered must be 'auto'"):
        bx.hierarchical("s ~ x + (1 | g)", counts, family="poisson", centered="yes")
    with pytest.raises(TypeError, match="maps grouping factors to True/False"):
        bx.hierarchical("s ~ x + (1 | g)", counts, family="poisson", centered={"g": 1})
    with pytest.raises(ValueError, match=r"unknown grouping factors \['h'\]"):
        bx.hierarchical("s ~ x + (1 | g)", counts, family="poisson", centered={"h": True})
