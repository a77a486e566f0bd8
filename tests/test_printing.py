"""Printed tables of the frequentist fits: Stata's fmm layout for mixtures, lme4's for mixed models."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

import bayesmix as bx
from bayesmix.compare.fmm import MixtureMLFit
from bayesmix.compare.mlfit import MLFit

HEADS = ["Coef.", "Std. Err.", "z", "P>|z|", "[95% Conf. Interval]"]


@pytest.fixture(scope="module")
def stamps_ml() -> MixtureMLFit:
    """Stata's fmm 3: regress thickness (a smaller search than the default; the same best maximum)."""
    return bx.fmm(3, "thickness ~ 1", bx.datasets.load("stamps")).fit_ml(n_starts=10)


@pytest.fixture(scope="module")
def zip_ml() -> MixtureMLFit:
    """A zero-inflated Poisson with a class covariate: fmm 2, lcprob(z): (pointmass y) (poisson y x)."""
    rng = np.random.default_rng(3)
    n = 200
    x, z = rng.normal(size=n), rng.normal(size=n)
    counting = rng.random(n) < 1 / (1 + np.exp(-(0.3 + z)))
    data = pd.DataFrame({"y": np.where(counting, rng.poisson(np.exp(1.2 + 0.4 * x)), 0), "x": x, "z": z})
    return bx.fmm(2, "y ~ x", data, family=["pointmass", "poisson"], class_formula="~ z").fit_ml(n_starts=5)


def _blocks(text: str) -> list[list[str]]:
    """The printed tables, split at the blank lines between blocks (the header first)."""
    return [block.splitlines() for block in text.strip().split("\n\n")]


def test_fmm_prints_class_logits_first_then_each_class(stamps_ml: MixtureMLFit) -> None:
    header, logits, *classes = _blocks(str(stamps_ml))
    assert header[0].startswith("Finite mixture model: 3 classes (gaussian, gaussian, gaussian)")
    assert re.search(r"Number of obs = 485 +Log likelihood = 1518\.84", header[1])
    assert logits[0].startswith("Class logits")
    assert [c[:3] for c in classes] == [
        [f"Class: {j}", "Response: thickness", "Model: gaussian"] for j in "123"
    ]
    for block in (logits, *classes):
        heads = next(line for line in block if "Coef." in line)
        assert [h for h in HEADS if h in heads] == HEADS  # every column header, in Stata's order
        assert heads.index("Coef.") < heads.index("Std. Err.") < heads.index("P>|z|") < heads.index("[95%")
        bars = {line.index("|") for line in block if "|" in line and "P>|z|" not in line}
        assert len(bars) == 1  # the label column is ruled at one position throughout
    # class 1 is the base outcome; classes 2 and 3 have their logit intercepts
    labels = [line.split("|")[0].strip() for line in logits if "|" in line and "Coef." not in line]
    assert labels == ["1.Class", "2.Class", "Intercept", "3.Class", "Intercept"]
    assert "(base outcome)" in next(line for line in logits if line.startswith("1.Class"))


def test_fmm_class_blocks_show_coefficients_then_the_variance(stamps_ml: MixtureMLFit) -> None:
    _, _, *classes = _blocks(str(stamps_ml))
    est, se = stamps_ml.estimates, stamps_ml.std_errors
    for j, block in zip("123", classes, strict=True):
        rows = [line for line in block if "|" in line and "Coef." not in line]
        assert [r.split("|")[0].strip() for r in rows] == ["thickness", "Intercept", "var(e.thickness)"]
        coef = [float(v) for v in rows[1].split("|")[1].split()]
        assert len(coef) == 6  # Coef., Std. Err., z, P>|z|, and the interval
        assert coef[0] == pytest.approx(est[f"Intercept[{j}]"], rel=1e-6)
        variance = [float(v) for v in rows[2].split("|")[1].split()]
        assert len(variance) == 4  # no z or P>|z| for a variance, as in Stata
        sigma, sigma_se = est[f"sigma[{j}]"], se[f"sigma[{j}]"]
        assert variance[0] == pytest.approx(sigma**2, rel=5e-3)  # printed to 3 digits in exponent form
        assert variance[1] == pytest.approx(2 * sigma * sigma_se, rel=5e-3)  # the delta method


def test_fmm_prints_point_masses_and_class_covariates(zip_ml: MixtureMLFit) -> None:
    _, logits, first, second = _blocks(str(zip_ml))
    labels = [line.split("|")[0].strip() for line in logits if "|" in line and "Coef." not in line]
    assert labels == ["1.Class", "2.Class", "Intercept", "z"]
    assert first[:3] == ["Class: 1", "Response: y", "Model: pointmass(0)"]
    assert any("(all mass at 0; no parameters)" in line for line in first)
    assert [line.split("|")[0].strip() for line in second if "|" in line and "Coef." not in line] == [
        "y",
        "Intercept",
        "x",
    ]


def test_fmm_html_has_the_same_blocks(stamps_ml: MixtureMLFit) -> None:
    page = stamps_ml._repr_html_()
    assert page.count("<table>") == 4  # class logits, then the three classes
    order = [page.index(t) for t in ("Class logits", "Class: 1", "Class: 2", "Class: 3")]
    assert order == sorted(order)
    assert "(base outcome)" in page and "var(e.thickness)" in page and "P&gt;|z|" in page


def test_fmm_table_keeps_its_columns(stamps_ml: MixtureMLFit) -> None:
    """``table()`` stays the machine-readable frame that ``compare()`` joins on."""
    table = stamps_ml.table()
    assert list(table.columns) == ["estimate", "std_error", "z", "p", "ci_lower", "ci_upper"]


@pytest.fixture(scope="module")
def sleep_reml() -> MLFit:
    return bx.mixed("Reaction ~ Days + (Days | Subject)", bx.datasets.load("sleepstudy")).fit_ml()


def test_mlfit_prints_like_lme4(sleep_reml: MLFit) -> None:
    text = str(sleep_reml)
    lines = text.splitlines()
    assert lines[0] == "Linear mixed model fit by REML"
    assert "log-likelihood = -871.8141" in lines[1]
    order = [
        text.index(t)
        for t in ("Random effects:", "Number of obs: 180, groups: Subject, 18", "Fixed effects:")
    ]
    assert order == sorted(order)
    random = lines[
        lines.index("Random effects:") + 1 : lines.index("Number of obs: 180, groups: Subject, 18")
    ]
    assert random[0].split() == ["Groups", "Name", "Variance", "Std.Dev.", "Corr"]
    assert [r.split()[:2] for r in random[1:]] == [
        ["Subject", "Intercept"],
        ["Days", "35.072"],
        ["Residual", "654.94"],
    ]
    assert random[2].split()[-1] == "0.07"  # corr(Intercept, Days), lme4's 0.07
    assert float(random[1].split()[3]) == pytest.approx(24.74, abs=0.01)  # sd, lme4's 24.741
    # Variance and Std.Dev. right-aligned in their columns
    ends = {
        r.index(r.split()[-2]) + len(r.split()[-2])
        for r in random[1:]
        if len(r.split()) >= 4 and "0.07" not in r
    }
    assert len(ends) == 1
    fixed = lines[lines.index("Fixed effects:") + 1 :]
    assert fixed[0].split() == ["Estimate", "Std.", "Error", "z", "value", "Pr(>|z|)"]
    assert [f.split()[0] for f in fixed[1:3]] == ["Intercept", "Days"]
    assert fixed[1].split()[-1] == "<2e-16"


def test_glmm_print_has_no_residual_row() -> None:
    rng = np.random.default_rng(5)
    g = np.repeat(np.arange(12), 10)
    x = rng.normal(size=g.size)
    data = pd.DataFrame(
        {"y": rng.poisson(np.exp(0.5 + 0.5 * x + rng.normal(0, 1.0, 12)[g])), "x": x, "g": g.astype(str)}
    )
    text = str(bx.hierarchical("y ~ x + (1 | g)", data, family="poisson").fit_ml())
    assert text.startswith(
        "Generalized linear mixed model (poisson, log link) fit by ML, Laplace approximation"
    )
    assert "Residual" not in text and "Number of obs: 120, groups: g, 12" in text
    assert "Fixed effects:" in text and "Family parameters" not in text
