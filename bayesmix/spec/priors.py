"""Typed prior constructors.

Priors are data: a frozen dataclass per distribution, validated on creation and
mapped to PyMC in one place (:mod:`bayesmix.build.priors`). They are keyed by the
public parameter names (``"Intercept"``, ``"Days"``, ``"sd(Days|Subject)"``,
``"corr(Subject)"``, ``"sigma"``).

>>> import bayesmix as bx
>>> bx.priors.Normal(0, 2.5)
Normal(mu=0.0, sigma=2.5)
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

__all__ = [
    "LKJ",
    "Cauchy",
    "Exponential",
    "Flat",
    "Gamma",
    "HalfCauchy",
    "HalfNormal",
    "HalfStudentT",
    "Normal",
    "Prior",
    "StudentT",
    "Uniform",
]


def _positive(name: str, value: float, owner: str) -> None:
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"{owner}: {name} must be a finite positive number, got {value!r}")


def _finite(name: str, value: float, owner: str) -> None:
    if not math.isfinite(value):
        raise ValueError(f"{owner}: {name} must be finite, got {value!r}")


class Prior:
    """Base class of all priors."""

    #: whether the prior has support only on the positive reals
    positive: bool = False

    def describe(self) -> str:
        """Short text such as ``Normal(0, 2.5)``."""
        args = ", ".join(f"{getattr(self, f.name):.4g}" for f in fields(self))  # type: ignore[arg-type]
        return f"{type(self).__name__}({args})"

    def _check(self) -> None:
        for f in fields(self):  # type: ignore[arg-type]
            value = getattr(self, f.name)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise TypeError(f"{type(self).__name__}: {f.name} must be a number, got {value!r}")
            object.__setattr__(self, f.name, float(value))


@dataclass(frozen=True, slots=True)
class Normal(Prior):
    """Normal(mu, sigma)."""

    mu: float = 0.0
    sigma: float = 1.0

    def __post_init__(self) -> None:
        self._check()
        _finite("mu", self.mu, "Normal")
        _positive("sigma", self.sigma, "Normal")


@dataclass(frozen=True, slots=True)
class StudentT(Prior):
    """Student-t(nu, mu, sigma)."""

    nu: float = 3.0
    mu: float = 0.0
    sigma: float = 1.0

    def __post_init__(self) -> None:
        self._check()
        _positive("nu", self.nu, "StudentT")
        _finite("mu", self.mu, "StudentT")
        _positive("sigma", self.sigma, "StudentT")


@dataclass(frozen=True, slots=True)
class Cauchy(Prior):
    """Cauchy(alpha, beta): location alpha, scale beta."""

    alpha: float = 0.0
    beta: float = 1.0

    def __post_init__(self) -> None:
        self._check()
        _finite("alpha", self.alpha, "Cauchy")
        _positive("beta", self.beta, "Cauchy")


@dataclass(frozen=True, slots=True)
class Uniform(Prior):
    """Uniform(lower, upper)."""

    lower: float = 0.0
    upper: float = 1.0

    def __post_init__(self) -> None:
        self._check()
        _finite("lower", self.lower, "Uniform")
        _finite("upper", self.upper, "Uniform")
        if self.upper <= self.lower:
            raise ValueError(f"Uniform: upper ({self.upper}) must exceed lower ({self.lower})")

    @property
    def positive(self) -> bool:  # type: ignore[override]
        """Positive support when the lower bound is at least 0."""
        return self.lower >= 0


@dataclass(frozen=True, slots=True)
class Flat(Prior):
    """Improper flat prior on the whole real line (the mixed model's fixed effects)."""

    def describe(self) -> str:
        """``Flat()``."""
        return "Flat()"


@dataclass(frozen=True, slots=True)
class HalfNormal(Prior):
    """Half-normal with scale sigma."""

    sigma: float = 1.0
    positive = True

    def __post_init__(self) -> None:
        self._check()
        _positive("sigma", self.sigma, "HalfNormal")


@dataclass(frozen=True, slots=True)
class HalfCauchy(Prior):
    """Half-Cauchy with scale beta."""

    beta: float = 1.0
    positive = True

    def __post_init__(self) -> None:
        self._check()
        _positive("beta", self.beta, "HalfCauchy")


@dataclass(frozen=True, slots=True)
class HalfStudentT(Prior):
    """Half-Student-t with nu degrees of freedom and scale sigma."""

    nu: float = 3.0
    sigma: float = 1.0
    positive = True

    def __post_init__(self) -> None:
        self._check()
        _positive("nu", self.nu, "HalfStudentT")
        _positive("sigma", self.sigma, "HalfStudentT")


@dataclass(frozen=True, slots=True)
class Exponential(Prior):
    """Exponential with rate lam (mean 1/lam)."""

    lam: float = 1.0
    positive = True

    def __post_init__(self) -> None:
        self._check()
        _positive("lam", self.lam, "Exponential")


@dataclass(frozen=True, slots=True)
class Gamma(Prior):
    """Gamma with shape alpha and rate beta (mean alpha/beta)."""

    alpha: float = 2.0
    beta: float = 0.1
    positive = True

    def __post_init__(self) -> None:
        self._check()
        _positive("alpha", self.alpha, "Gamma")
        _positive("beta", self.beta, "Gamma")


@dataclass(frozen=True, slots=True)
class LKJ(Prior):
    """LKJ prior on a correlation matrix; eta = 1 is uniform, larger eta favours zero correlation."""

    eta: float = 2.0

    def __post_init__(self) -> None:
        self._check()
        _positive("eta", self.eta, "LKJ")
