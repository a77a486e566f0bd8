"""The bad-input battery (issue 7, item 4): one table of bad inputs across the whole public surface.

Every row names a mistake a user can make with ``bx.hierarchical``, ``bx.mixed``, ``bx.fmm``,
``.fit(...)``, ``.fit_ml(...)``, ``Fit.predict(...)``, ``bx.load(path)`` or the ``bayesmix``
command, the exception it must raise and a regular expression its message must match: the
message names the problem (and the fix). Every case also checks that the error is not an
internal one (``KeyError``, ``IndexError``, ``AttributeError``, or an exception class from
PyTensor, NumPy, pandas, formulae, xarray ...) and that the message is not a traceback dump.
Nothing is dropped silently: the one case that drops rows (``missing="drop"``) must warn.
Command-line cases must end with exit status 2 and one line ``bayesmix: error: ...`` on stderr.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import xarray as xr

import bayesmix as bx
from bayesmix.cli import main

N = 40
CLI = "cli"  # the expected "exception" of a command-line case: exit status 2 and one line on stderr
INTERNAL = (KeyError, IndexError, AttributeError, AssertionError, NotImplementedError)


def _frame() -> pd.DataFrame:
    rng = np.random.default_rng(7)
    return pd.DataFrame(
        {
            "y": rng.normal(size=N) + np.where(np.arange(N) % 2 == 0, 0.0, 3.0),
            "x": rng.normal(size=N),
            "w": np.repeat(np.arange(8.0), 5),  # constant within each level of g
            "g": np.repeat([f"g{i}" for i in range(8)], 5),
            "f": np.tile(["a", "b"], N // 2),
            "c": rng.poisson(3.0, size=N),
            "n": rng.poisson(3.0, size=N) + 12,
        },
        index=[f"r{i}" for i in range(N)],
    )


class Context:
    """The data, models, fit and files the cases act on; each built on first use, once per module."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.df = _frame()

    def with_values(self, column: str, labels: list[str], value: object) -> pd.DataFrame:
        frame = self.df.copy()
        if not isinstance(value, float):
            frame[column] = frame[column].astype(object)
        frame.loc[labels, column] = value
        return frame

    @cached_property
    def model(self) -> bx.HierarchicalModel:
        return bx.hierarchical("y ~ x + f + (1 | g)", self.df)

    @cached_property
    def mixture(self) -> bx.MixtureModel:
        return bx.fmm(2, "y ~ 1", self.df)

    @cached_property
    def fit(self) -> bx.Fit:
        """A tiny real fit (JAX compiles the marginalized model in about 2 s); its draws do not matter."""
        return self.model.fit(draws=20, tune=20, chains=1, random_seed=1, progressbar=False, backend="jax")

    @cached_property
    def saved(self) -> Path:
        return self.fit.save(self.tmp / "fit.nc")

    def file(self, name: str, content: bytes) -> Path:
        path = self.tmp / name
        path.write_bytes(content)
        return path

    def truncated(self) -> Path:
        data = self.saved.read_bytes()
        return self.file("truncated.nc", data[: len(data) // 2])

    def foreign(self) -> Path:
        path = self.tmp / "foreign.nc"
        xr.Dataset({"a": ("x", np.arange(3.0))}).to_netcdf(path, engine="h5netcdf")
        return path

    def other_version(self) -> Path:
        tree = xr.open_datatree(self.saved, engine="h5netcdf").load()
        tree.attrs["bayesmix_format_version"] = 99
        path = self.tmp / "version99.nc"
        tree.to_netcdf(path, engine="h5netcdf")
        return path

    def csv(self, name: str, frame: pd.DataFrame) -> str:
        path = self.tmp / name
        frame.to_csv(path, index=False)
        return str(path)


@dataclass(frozen=True)
class Case:
    """One bad input: what is done, the exception expected (or ``CLI``), and what its message says."""

    id: str
    action: Callable[[Context], Any]
    error: type[Exception] | str
    match: str
    marks: tuple[Any, ...] = field(default=())


def _drop_everything(c: Context) -> Any:
    with pytest.warns(bx.DroppedRowsWarning, match="dropped 40 of 40 rows"):  # never silently
        return bx.hierarchical("y ~ x + (1 | g)", c.df.assign(y=np.nan), missing="drop")


def _prior(name: str, prior: object) -> Callable[[Context], Any]:
    return lambda c: bx.hierarchical("y ~ x + (x | g)", c.df, priors={name: prior})


COLUMNS_PRESENT = r"columns present: \['y', 'x', 'w', 'g', 'f', 'c', 'n'\]"

CASES = [
    # ----- bx.hierarchical / bx.mixed: formula, data frame, columns --------------------------------
    Case("formula-not-text", lambda c: bx.hierarchical(3, c.df), TypeError, "formula must be a string"),
    Case("formula-empty", lambda c: bx.hierarchical("  ", c.df), bx.FormulaError, "the formula is empty"),
    Case("formula-no-response", lambda c: bx.hierarchical("~ x", c.df), bx.FormulaError, "formula '~ x'"),
    Case(
        "formula-unbalanced",
        lambda c: bx.hierarchical("y ~ x + (1 | g", c.df),
        bx.FormulaError,
        r"could not read the formula 'y ~ x \+ \(1 \| g'",
    ),
    Case(
        "data-not-a-frame",
        lambda c: bx.hierarchical("y ~ x", c.df.to_numpy()),
        TypeError,
        "data must be a pandas DataFrame, got ndarray",
    ),
    Case(
        "data-multiindex-columns",
        lambda c: bx.mixed("y ~ x", c.df.set_axis(pd.MultiIndex.from_product([c.df.columns, ["a"]]), axis=1)),
        TypeError,
        "MultiIndex .*flatten them",
    ),
    Case("data-empty", lambda c: bx.hierarchical("y ~ x", c.df.iloc[:0]), ValueError, "data has no rows"),
    Case(
        "column-missing",
        lambda c: bx.hierarchical("yy ~ x + (1 | g)", c.df),
        ValueError,
        r"column\(s\) \['yy'\] that are not in the data; " + COLUMNS_PRESENT,
    ),
    Case(
        "group-column-misspelled",
        lambda c: bx.mixed("y ~ x + (1 | G)", c.df),
        ValueError,
        r"\['G'\] that are not in the data; " + COLUMNS_PRESENT,
    ),
    Case(
        "column-duplicated",
        lambda c: bx.hierarchical("y ~ x + (1 | g)", pd.concat([c.df, c.df[["x"]]], axis=1)),
        ValueError,
        r"several columns named \['x'\]",
    ),
    Case(
        "response-nan-counted-located",
        lambda c: bx.hierarchical("y ~ x + (1 | g)", c.with_values("y", ["r3", "r7"], np.nan)),
        ValueError,
        r"'y': 2 rows \(first labels 'r3', 'r7'\).*missing='drop'",
    ),
    Case(
        "covariate-inf",
        lambda c: bx.mixed("y ~ x + (1 | g)", c.with_values("x", ["r5"], -np.inf)),
        ValueError,
        r"missing or non-finite values in 'x': 1 rows \(first labels 'r5'\)",
    ),
    Case(
        "group-missing-level",
        lambda c: bx.hierarchical("y ~ x + (1 | g)", c.with_values("g", ["r0"], None)),
        ValueError,
        r"'g': 1 rows \(first labels 'r0'\)",
    ),
    Case("drop-every-row", _drop_everything, ValueError, "every row has a missing or non-finite value"),
    Case(
        "response-categorical",
        lambda c: bx.hierarchical("y ~ x + (1 | g)", c.df.assign(y=pd.Categorical(c.df["f"]))),
        TypeError,
        r"response 'y' must be numeric, but its dtype is category; convert it",
    ),
    Case(
        "response-boolean",
        lambda c: bx.hierarchical("y ~ x", c.df.assign(y=c.df["y"] > 1), family="bernoulli"),
        TypeError,
        "response 'y' must be numeric, but its dtype is bool",
    ),
    Case(
        "response-complex",
        lambda c: bx.hierarchical("y ~ x", c.df.assign(y=c.df["y"] + 1j)),
        TypeError,
        "response 'y' must be numeric, but its dtype is complex128",
    ),
    Case(
        "covariate-mixed-objects",
        lambda c: bx.hierarchical("y ~ x + (1 | g)", c.df.assign(x=[1.5, "a"] * (N // 2))),
        TypeError,
        r"column 'x' has dtype object holding float, str values.*pd.to_numeric",
    ),
    Case(
        "covariate-dates",
        lambda c: bx.hierarchical("y ~ x", c.df.assign(x=pd.date_range("2020-01-01", periods=N))),
        TypeError,
        r"column 'x' has dtype datetime64.*cannot use",
    ),
    Case(
        "response-explains-itself",
        lambda c: bx.hierarchical("y ~ x + (1 | y)", c.df),
        ValueError,
        r"response 'y' also appears on the right-hand side",
    ),
    # ----- families: out-of-support and degenerate responses ---------------------------------------
    Case(
        "poisson-negative",
        lambda c: bx.hierarchical("y ~ x + (1 | g)", c.df, family="poisson"),
        ValueError,
        r"poisson family needs a non-negative integer response.*'y'",
    ),
    Case(
        "bernoulli-not-binary",
        lambda c: bx.hierarchical("c ~ x + (1 | g)", c.df, family="bernoulli"),
        ValueError,
        r"bernoulli family needs a 0/1 response",
    ),
    Case(
        "beta-on-the-boundary",
        lambda c: bx.hierarchical("c ~ x", c.df.assign(c=(c.df["c"] > 2).astype(float)), family="beta"),
        ValueError,
        "beta family needs a strictly between 0 and 1 response",
    ),
    Case(
        "response-constant",
        lambda c: bx.hierarchical("y ~ x + (1 | g)", c.df.assign(y=4.2)),
        ValueError,
        r"response 'y' takes the same value \(4.2\) in all 40 rows.*scale would collapse",
    ),
    Case(
        "group-single-level",
        lambda c: bx.hierarchical("y ~ x + (1 | k)", c.df.assign(k="only")),
        ValueError,
        "grouping factor 'k' has a single level",
    ),
    Case(
        "slope-constant-within-groups",
        lambda c: bx.hierarchical("y ~ w + (w | g)", c.df),
        ValueError,
        "random slope 'w' is constant within every level of 'g'",
    ),
    Case(
        "mixed-collinear-flat",
        lambda c: bx.mixed("y ~ x + x2 + (1 | g)", c.df.assign(x2=2 * c.df["x"])),
        ValueError,
        r"columns \['x', 'x2'\] are linearly dependent.*flat.*improper",
    ),
    Case(
        "covariate-log-zero",
        lambda c: bx.hierarchical("y ~ log(w) + (1 | g)", c.df),
        ValueError,
        r"fixed-effect column\(s\) \['log\(w\)'\] have 5 non-finite values",
    ),
    Case(
        "family-unknown",
        lambda c: bx.hierarchical("y ~ x", c.df, family="gausian"),
        ValueError,
        "unknown family 'gausian'; available: .*gaussian",
    ),
    Case("family-not-text", lambda c: bx.hierarchical("y ~ x", c.df, family=1), TypeError, "family must be"),
    Case(
        "link-unknown",
        lambda c: bx.hierarchical("c ~ x", c.df.assign(c=c.df["c"] % 2), family="bernoulli", link="cloglog"),
        ValueError,
        r"bernoulli family has the link\(s\) logit, probit; got link='cloglog'",
    ),
    Case(
        "binomial-without-trials",
        lambda c: bx.hierarchical("c ~ x + (1 | g)", c.df, family="binomial"),
        ValueError,
        r"needs the number of trials.*cbind\(successes, failures\)",
    ),
    Case(
        "binomial-successes-above-trials",
        lambda c: bx.hierarchical("n | trials(c) ~ x", c.df, family="binomial"),
        ValueError,
        "successes must not exceed the trials",
    ),
    Case(
        "covariance-wrong-shape",
        lambda c: bx.hierarchical("y ~ x + (1 | g)", c.df, covariances={"g": np.eye(3)}),
        ValueError,
        r"shape \(3, 3\), but 'g' has 8 levels",
    ),
    Case(
        "marginalize-not-bool",
        lambda c: bx.hierarchical("y ~ x + (1 | g)", c.df, marginalize="yes"),
        TypeError,
        "marginalize must be True, False or None",
    ),
    Case(
        "marginalize-impossible",
        lambda c: bx.hierarchical("c ~ x + (1 | g)", c.df, family="poisson", marginalize=True),
        ValueError,
        "marginalize=True is not possible for this model",
    ),
    Case(
        "missing-policy-unknown",
        lambda c: bx.hierarchical("y ~ x + (1 | g)", c.df, missing="omit"),
        ValueError,
        "missing must be 'error' or 'drop', got 'omit'",
    ),
    Case(
        "centered-unknown-factor",
        lambda c: bx.hierarchical("y ~ x + (1 | g)", c.df, centered=["h"]),
        ValueError,
        r"centered names unknown grouping factors \['h'\]",
    ),
    # ----- priors ----------------------------------------------------------------------------------
    Case(
        "priors-not-a-dict",
        lambda c: bx.hierarchical("y ~ x", c.df, priors=[bx.priors.Normal()]),
        TypeError,
        "priors must be a dict of parameter name -> prior, got list",
    ),
    Case(
        "prior-unknown-name",
        _prior("sd(x|h)", bx.priors.HalfNormal(1)),
        ValueError,
        r"no parameter named 'sd\(x\|h\)' in this model; valid names: .*'sd\(x\|g\)'",
    ),
    Case(
        "prior-wrong-support",
        _prior("sigma", bx.priors.Normal(0, 1)),
        ValueError,
        "'sigma' is positive: use HalfNormal",
    ),
    Case(
        "prior-lkj-on-a-scale",
        _prior("sigma", bx.priors.LKJ(2)),
        ValueError,
        r"LKJ\(2\) is a prior for correlation matrices .*'sigma' is a single parameter",
    ),
    Case(
        "prior-not-lkj-on-a-correlation",
        _prior("corr(g)", bx.priors.Normal(0, 1)),
        ValueError,
        r"'corr\(g\)' is a correlation matrix: it needs an LKJ prior",
    ),
    Case(
        "prior-as-text",
        _prior("x", "normal(0, 1)"),
        TypeError,
        "the prior for 'x' must be a bayesmix prior such as bx.priors.Normal",
    ),
    Case(
        "prior-negative-sd", lambda c: bx.priors.Normal(0, -1), ValueError, "sigma must be a finite positive"
    ),
    Case("prior-nan-scale", lambda c: bx.priors.HalfNormal(np.nan), ValueError, "got nan"),
    Case("prior-text-argument", lambda c: bx.priors.Exponential("1"), TypeError, "lam must be a number"),
    Case(
        "prior-uniform-reversed",
        lambda c: bx.priors.Uniform(2, 1),
        ValueError,
        r"upper \(1.0\) must exceed lower \(2.0\)",
    ),
    # ----- bx.fmm ----------------------------------------------------------------------------------
    Case(
        "fmm-k-not-integer",
        lambda c: bx.fmm(2.5, "y ~ 1", c.df),
        TypeError,
        r"k \(the number of classes\) must be an integer, got 2.5",
    ),
    Case("fmm-k-zero", lambda c: bx.fmm(0, "y ~ 1", c.df), ValueError, "k must be at least 1"),
    Case(
        "fmm-k-above-distinct-values",
        lambda c: bx.fmm(4, "c ~ 1", c.df.assign(c=c.df["c"] % 3), family="poisson"),
        ValueError,
        r"without covariates k must be below the number of distinct response values \(3\)",
    ),
    Case(
        "fmm-k-above-rows",
        lambda c: bx.fmm(15, "y ~ x", c.df),
        ValueError,
        r"15 classes with 2 coefficient\(s\) each need at least 45 rows.*the data have 40",
    ),
    Case(
        "fmm-families-wrong-length",
        lambda c: bx.fmm(3, "y ~ 1", c.df, family=["gaussian", "studentt"]),
        ValueError,
        "family lists 2 families for k = 3 classes",
    ),
    Case(
        "fmm-random-effects",
        lambda c: bx.fmm(2, "y ~ x + (1 | g)", c.df),
        bx.FormulaError,
        "mixture formulas take fixed effects only",
    ),
    Case(
        "fmm-class-formula-two-sided",
        lambda c: bx.fmm(2, "y ~ 1", c.df, class_formula="y ~ x"),
        ValueError,
        "class_formula must be one-sided",
    ),
    Case(
        "fmm-class-formula-uses-response",
        lambda c: bx.fmm(2, "y ~ 1", c.df, class_formula="~ y"),
        ValueError,
        "class_formula '~ y' uses the response 'y'",
    ),
    Case(
        "fmm-response-nan",
        lambda c: bx.fmm(2, "y ~ 1", c.with_values("y", ["r9"], np.nan)),
        ValueError,
        r"'y': 1 rows \(first labels 'r9'\)",
    ),
    Case(
        "fmm-response-constant",
        lambda c: bx.fmm(2, "y ~ x", c.df.assign(y=1.0)),
        ValueError,
        "takes the same value",
    ),
    Case(
        "fmm-lognormal-negative",
        lambda c: bx.fmm(2, "y ~ 1", c.df, family="lognormal"),
        ValueError,
        r"lognormal family needs a positive \(> 0\) response",
    ),
    Case(
        "fmm-point-mass-absent",
        lambda c: bx.fmm(2, "c ~ 1", c.df.assign(c=c.df["c"] + 1), family=["pointmass", "poisson"]),
        ValueError,
        "a point-mass class sits at 0, but no value of 'c' equals it",
    ),
    Case(
        "fmm-binomial-without-trials",
        lambda c: bx.fmm(2, "c ~ 1", c.df, family="binomial"),
        ValueError,
        "needs trials='column'",
    ),
    Case(
        "fmm-order-by-unknown",
        lambda c: bx.fmm(2, "y ~ x", c.df, order_by="tau"),
        ValueError,
        r"order_by='tau' names no parameter of this model; choose one of \['Intercept', 'x', 'sigma'",
    ),
    Case(
        "fmm-prior-lkj",
        lambda c: bx.fmm(2, "y ~ 1", c.df, priors={"Intercept": bx.priors.LKJ(2)}),
        ValueError,
        "LKJ.* is a prior for correlation matrices, which mixtures do not have",
    ),
    Case(
        "fmm-prior-flat-coefficient",
        lambda c: bx.fmm(2, "y ~ 1", c.df, priors={"Intercept[2]": bx.priors.Flat()}),
        ValueError,
        r"'Intercept\[2\]' is a real-valued coefficient.*proper prior",
    ),
    # ----- .fit(...) and .fit_ml(...): checked before anything is compiled or searched ----------
    Case("fit-draws-zero", lambda c: c.model.fit(draws=0), ValueError, "draws must be >= 1, got 0"),
    Case("fit-chains-float", lambda c: c.model.fit(chains=2.5), TypeError, "chains must be an integer"),
    Case("fit-seed-negative", lambda c: c.model.fit(random_seed=-1), ValueError, r"lie in \[0, 2\*\*32\)"),
    Case(
        "fit-seed-generator",
        lambda c: c.model.fit(random_seed=np.random.default_rng(1)),
        TypeError,
        "random_seed must be an integer or None, got Generator",
    ),
    Case("fit-target-accept", lambda c: c.model.fit(target_accept=1.5), ValueError, r"lie in \(0, 1\)"),
    Case("fit-sampler-unknown", lambda c: c.model.fit(sampler="stan"), ValueError, "unknown sampler 'stan'"),
    Case("fit-backend-unknown", lambda c: c.model.fit(backend="llvm"), ValueError, "unknown backend 'llvm'"),
    Case(
        "fit-backend-with-pymc",
        lambda c: c.model.fit(sampler="pymc", backend="jax"),
        ValueError,
        "chooses nutpie's compiler",
    ),
    Case(
        "fit-progressbar-text",
        lambda c: c.model.fit(progressbar="no"),
        TypeError,
        "progressbar must be True or False, got 'no'",
    ),
    Case(
        "fit-ml-reml-not-gaussian",
        lambda c: bx.hierarchical("c ~ x + (1 | g)", c.df, family="poisson").fit_ml(reml=True),
        ValueError,
        "REML is defined for the gaussian family",
    ),
    Case("fit-ml-reml-text", lambda c: c.model.fit_ml(reml="yes"), TypeError, "reml must be True, False"),
    Case(
        "fit-ml-no-grouping-factor",
        lambda c: bx.hierarchical("y ~ x", c.df).fit_ml(),
        ValueError,
        r"needs at least one grouping factor.*add a random effect such as \(1 \| group\)",
    ),
    Case(
        "fit-ml-glm-no-grouping-factor",
        lambda c: bx.hierarchical("c ~ x", c.df, family="poisson").fit_ml(),
        ValueError,
        r"needs at least one grouping factor.*statsmodels.formula.api.glm",
    ),
    Case("fmm-fit-init", lambda c: c.mixture.fit(init="kmeans"), ValueError, "init must be 'modes', 'ml'"),
    Case(
        "fmm-fit-start-window",
        lambda c: c.mixture.fit(start_window=-1.0),
        ValueError,
        "start_window must be a finite number >= 0",
    ),
    Case(
        "fmm-fit-ml-wrong-type",
        lambda c: c.mixture.fit(ml="best"),
        TypeError,
        r"ml= must be the result of this model's fit_ml\(\), got str",
    ),
    Case(
        "fmm-fit-ml-starts", lambda c: c.mixture.fit_ml(n_starts=0), ValueError, "n_starts must be a positive"
    ),
    Case(
        "fmm-fit-ml-seed",
        lambda c: c.mixture.fit_ml(random_seed="a"),
        TypeError,
        "random_seed must be an integer or None, got 'a'",
    ),
    Case(
        "fmm-fit-ml-window",
        lambda c: c.mixture.fit_ml(warn_within="1"),
        TypeError,
        "warn_within must be a number",
    ),
    # ----- Fit.predict(...) and other methods of a fit ---------------------------------------------
    Case(
        "predict-column-missing",
        lambda c: c.fit.predict(c.df.head(3).drop(columns="x")),
        ValueError,
        r"new data lack the column\(s\) \['x'\].*columns present",
    ),
    Case(
        "predict-nan",
        lambda c: c.fit.predict(c.with_values("x", ["r1"], np.nan).head(3)),
        ValueError,
        r"new data: 'x': 1 rows \(first labels 'r1'\)",
    ),
    Case(
        "predict-unseen-category",
        lambda c: c.fit.predict(c.df.head(3).assign(f="z")),
        ValueError,
        "can only take the levels it had when the model was fitted",
    ),
    Case(
        "predict-text-in-numeric-column",
        lambda c: c.fit.predict(c.df.head(3).assign(x="1.5")),
        TypeError,
        r"column 'x' was numeric \(float64\) when the model was fitted",
    ),
    Case(
        "predict-kind", lambda c: c.fit.predict(kind="probability"), ValueError, "kind must be one of 'link'"
    ),
    Case(
        "predict-not-a-frame",
        lambda c: c.fit.predict(c.df.head(3).to_dict("list")),
        TypeError,
        "new data must be a pandas DataFrame, got dict",
    ),
    Case("predict-empty", lambda c: c.fit.predict(c.df.iloc[:0]), ValueError, "new data has no rows"),
    Case(
        "predict-seed",
        lambda c: c.fit.predict(random_seed=-5),
        ValueError,
        r"random_seed must lie in \[0, 2\*\*32\), got -5",
    ),
    Case(
        "summary-prob", lambda c: c.fit.summary(prob=95), ValueError, r"prob .* must be a number in \(0, 1\]"
    ),
    Case(
        "random-effects-unknown-group",
        lambda c: c.fit.random_effects("h"),
        ValueError,
        r"no grouping factor 'h' in this model; factors: \['g'\]",
    ),
    # ----- bx.load(path) ---------------------------------------------------------------------------
    Case("load-missing-file", lambda c: bx.load(c.tmp / "absent.nc"), FileNotFoundError, "no such file"),
    Case("load-directory", lambda c: bx.load(c.tmp), FileNotFoundError, "a directory, not a file"),
    Case("load-not-a-path", lambda c: bx.load(3), TypeError, "path must be a file path"),
    Case(
        "load-text-file",
        lambda c: bx.load(c.file("notes.nc", b"not a netCDF file\n")),
        ValueError,
        "is not a readable netCDF-4 file",
    ),
    Case(
        "load-truncated",
        lambda c: bx.load(c.truncated()),
        ValueError,
        "truncated, damaged, or another format",
    ),
    Case(
        "load-foreign-netcdf",
        lambda c: bx.load(c.foreign()),
        ValueError,
        "was not written by bayesmix's fit.save",
    ),
    Case(
        "load-later-format-version",
        lambda c: bx.load(c.other_version()),
        ValueError,
        "format version 99, but this bayesmix reads version 1",
    ),
    # ----- the command line: exit status 2, one line on stderr -------------------------------------
    Case("cli-data-missing", lambda c: ["fit", "y ~ x", str(c.tmp / "absent.csv")], CLI, "not found"),
    Case(
        "cli-data-directory", lambda c: ["fit", "y ~ x", str(c.tmp)], CLI, "is a directory, not a data file"
    ),
    Case(
        "cli-data-garbled",
        lambda c: ["fit", "y ~ x", str(c.file("garbled.csv", b'a,b\n1,2\n"open quote,3\n'))],
        CLI,
        "could not read .* as CSV",
    ),
    Case(
        "cli-data-header-only",
        lambda c: ["fit", "y ~ x", c.csv("header.csv", c.df.iloc[:0])],
        CLI,
        "has no data rows",
    ),
    Case(
        "cli-column-missing",
        lambda c: ["fit", "y ~ z", c.csv("data.csv", c.df)],
        CLI,
        r"\['z'\] that are not in the data; columns present",
    ),
    Case(
        "cli-nan",
        lambda c: ["fit", "y ~ x", c.csv("nan.csv", c.with_values("y", ["r2"], np.nan))],
        CLI,
        r"'y': 1 rows .*missing='drop'",
    ),
    Case(
        "cli-response-text",
        lambda c: ["fit", "f ~ x", c.csv("data.csv", c.df)],
        CLI,
        "response 'f' must be numeric",
    ),
    Case("cli-k-zero", lambda c: ["fit", "y ~ 1", c.csv("data.csv", c.df), "--k", "0"], CLI, "at least 1"),
    Case(
        "cli-family-unknown",
        lambda c: ["fit", "y ~ x", c.csv("data.csv", c.df), "--family", "normel"],
        CLI,
        "unknown family 'normel'",
    ),
    Case(
        "cli-seed-negative",
        lambda c: ["fit", "y ~ x", c.csv("data.csv", c.df), "--seed", "-1"],
        CLI,
        r"random_seed must lie in \[0, 2\*\*32\)",
    ),
    Case(
        "cli-group-by-the-response",
        lambda c: ["fit", "y ~ x", c.csv("data.csv", c.df), "--group-by", "y"],
        CLI,
        "also appears on the right-hand side",
    ),
    Case(
        "cli-k-with-group-by",
        lambda c: ["fit", "y ~ 1", c.csv("data.csv", c.df), "--k", "2", "--group-by", "g"],
        CLI,
        "do not take: drop one",
    ),
]


@pytest.fixture(scope="module")
def context(tmp_path_factory: pytest.TempPathFactory) -> Context:
    return Context(tmp_path_factory.mktemp("battery"))


def test_the_battery_is_large_and_its_ids_unique() -> None:
    ids = [case.id for case in CASES]
    assert len(ids) == len(set(ids))
    assert len(CASES) >= 40


def _assert_not_internal(err: BaseException) -> None:
    """Raised by bayesmix (or a builtin type it chose), never a library's internal error or a dump."""
    assert not isinstance(err, INTERNAL), f"internal error type {type(err).__name__}: {err}"
    module = type(err).__module__
    assert module == "builtins" or module.startswith("bayesmix"), f"{module}.{type(err).__name__}: {err}"
    message = str(err)
    assert "Traceback" not in message and 'File "' not in message, message
    assert message.strip() and len(message) < 1500, message


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_bad_input(case: Case, context: Context, capsys: pytest.CaptureFixture[str]) -> None:
    if case.error == CLI:
        argv = case.action(context)
        assert main([*argv, "--no-progress"]) == 2
        captured = capsys.readouterr()
        lines = captured.err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("bayesmix: error: "), captured.err
        assert "Traceback" not in captured.err
        assert re.search(case.match, lines[0]), lines[0]
        return
    assert isinstance(case.error, type)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a warning on the way (dropped rows, say) is part of the answer
        with pytest.raises(Exception) as info:
            case.action(context)
    err = info.value
    _assert_not_internal(err)
    assert isinstance(err, case.error), f"expected {case.error.__name__}, got {type(err).__name__}: {err}"
    assert re.search(case.match, str(err)), f"{case.id}: {str(err)!r} does not match {case.match!r}"
