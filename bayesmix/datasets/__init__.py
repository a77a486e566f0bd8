"""Data sets shipped with bayesmix, with their provenance.

>>> import bayesmix as bx
>>> bx.datasets.load("sleepstudy").shape
(180, 3)
"""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

import pandas as pd

__all__ = ["PROVENANCE", "REFERENCES", "available", "load", "reference"]

PROVENANCE: dict[str, str] = {
    "eight_schools": (
        "Eight schools (Rubin 1981, J. Educ. Stat. 6:377-401; Gelman et al. 2013, Bayesian Data Analysis, "
        "3rd ed., Table 5.2): estimated effect y (SAT-V points) of coaching programmes in 8 schools A-H "
        "and its standard error sigma; 8 rows, columns school, y, sigma. Typed from BDA3 Table 5.2. "
        "sha256 a1c28881a82a652fba1d3afc6254761fa95fd7f16f2ccab1fc7a7075dc8a8a0e."
    ),
    "sleepstudy": (
        "lme4's sleepstudy (Belenky et al. 2003, J. Sleep Res. 12:1-12): reaction time (ms) of 18 "
        "subjects over 10 days of sleep deprivation; 180 rows, columns Reaction, Days, Subject. "
        "Written by write.csv(sleepstudy, row.names=FALSE) from R 4.2.2 with lme4 1.1-31 "
        "(Debian r-cran-lme4 1.1-31-1). "
        "sha256 2918bbddf750e78003059efa97b94885b85c4d7927c22a19c29f7fa5a184c59d."
    ),
    "stamps": (
        "Thickness (mm) of 485 stamps of the 1872 Hidalgo issue (Izenman & Sommer 1988, JASA 83:941-953; "
        "Efron & Tibshirani 1993, p. 227). Taken from CRAN package bootstrap 2019.6, data/stamp.rda, "
        "written with 3 decimals (the data are recorded to 0.001 mm); checked against CRAN multimode 1.5. "
        "sha256 2a3c0bb2cf19550082b3886a045abccacecd484421683ea3fbb5d705c12f3e07."
    ),
}

_DTYPES: dict[str, dict[str, str]] = {
    "eight_schools": {"school": "str"},
    "sleepstudy": {"Subject": "str"},
    "stamps": {},
}


def available() -> list[str]:
    """Names of the shipped data sets."""
    return sorted(PROVENANCE)


def load(name: str) -> pd.DataFrame:
    """Load a shipped data set.

    Parameters
    ----------
    name
        One of :func:`available`: ``"eight_schools"``, ``"sleepstudy"`` or ``"stamps"``.

    Returns
    -------
    pandas.DataFrame
        The data; ``df.attrs["provenance"]`` says where it comes from. In
        ``sleepstudy`` the ``Subject`` column holds strings (``"308"``): it is a
        grouping factor, not a number.
    """
    if name not in PROVENANCE:
        raise ValueError(f"unknown data set {name!r}; available: {', '.join(available())}")
    path = resources.files(__package__).joinpath("data", f"{name}.csv")
    with resources.as_file(path) as p:
        df = pd.read_csv(p, dtype=_DTYPES[name])
    df.attrs["provenance"] = PROVENANCE[name]
    return df


REFERENCES: dict[str, str] = {
    "stata_fmm_stamps": (
        "Stata's published maximum-likelihood fits of the stamps data (FMM manual, intro entry): "
        "fmm 3: regress thickness (estimates, SEs, class probabilities, class posterior probabilities) "
        "and fmm 3: glm thickness, family(lognormal) (class posterior probabilities)."
    ),
}


def reference(name: str) -> dict[str, Any]:
    """Published fits shipped with bayesmix, used by ``bayesmix demo`` and the tests.

    Parameters
    ----------
    name
        ``"stata_fmm_stamps"``.

    Returns
    -------
    dict
        The reference as stored, with its ``source``, ``software`` and the ``call`` of each fit.
    """
    if name not in REFERENCES:
        raise ValueError(f"unknown reference {name!r}; available: {', '.join(sorted(REFERENCES))}")
    path = resources.files(__package__).joinpath("data", f"{name}.json")
    return dict(json.loads(path.read_text()))
