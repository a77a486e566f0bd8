"""Typed prior constructors.

Priors are data: a frozen dataclass per distribution, validated on creation and
mapped to PyMC in one place (:mod:`bayesmix.build.priors`). They are keyed by the
public parameter names (``"Intercept"``, ``"Days"``, ``"sd(Days|Subject)"``,
``"corr(Subject)"``, ``"sigma"``; ``"class"`` for the class probabilities of a mixture).

>>> import bayesmix as bx
>>> bx.priors.Normal(0, 2.5)
Normal(mu=0.0, sigma=2.5)
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable
from dataclasses import dataclass, fields

__all__ = [
    "LKJ",
    "Beta",
    "Cauchy",
    "Dirichlet",
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
            if isinstance(value, bool) or not isinstance(value, numbers.Real):  # numpy numbers too
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


@dataclass(frozen=True, slots=True)
class Beta(Prior):
    """Beta(alpha, beta) on (0, 1): for a positive parameter known to lie below 1."""

    alpha: float = 1.0
    beta: float = 1.0
    positive = True

    def __post_init__(self) -> None:
        self._check()
        _positive("alpha", self.alpha, "Beta")
        _positive("beta", self.beta, "Beta")


@dataclass(frozen=True, slots=True)
class Dirichlet(Prior):
    r"""Dirichlet prior on the class probabilities of a finite mixture (the prior key ``"class"``).

    Parameters
    ----------
    alpha
        One concentration per class (``k`` positive numbers), or one positive number for the
        symmetric Dirichlet of any ``k``. ``Dirichlet(1)`` is uniform on the simplex.

    Notes
    -----
    bayesmix parametrizes the class probabilities as a multinomial logit,
    :math:`\pi = \operatorname{softmax}(0, \gamma_2, \dots, \gamma_k)`, and samples
    :math:`\gamma`. The prior density of :math:`\gamma` implied by
    :math:`\pi \sim \operatorname{Dirichlet}(\alpha)` carries the Jacobian
    :math:`|\partial(\pi_2..\pi_k) / \partial\gamma| = \prod_{i=1}^k \pi_i`, so

    .. math:: \log p(\gamma) = \log\Gamma\big(\textstyle\sum_i \alpha_i\big)
       - \sum_i \log\Gamma(\alpha_i) + \sum_i \alpha_i \log \pi_i .

    It applies only when the class probabilities have no covariates (no ``class_formula``).
    """

    alpha: float | tuple[float, ...] = 1.0

    def __post_init__(self) -> None:
        raw: object = self.alpha
        scalar = isinstance(raw, numbers.Real) and not isinstance(raw, bool)
        if scalar:
            values: tuple[object, ...] = (raw,)
        elif isinstance(raw, str | bytes) or not isinstance(raw, Iterable):
            raise TypeError(f"Dirichlet: alpha must be a number or a sequence of numbers, got {raw!r}")
        else:
            values = tuple(raw)
            if len(values) < 2:
                raise ValueError(
                    f"Dirichlet: alpha needs one concentration per class (two or more), got {values!r}"
                )
        checked = []
        for a in values:
            if isinstance(a, bool) or not isinstance(a, numbers.Real):
                raise TypeError(f"Dirichlet: alpha must hold numbers, got {a!r}")
            _positive("alpha", float(a), "Dirichlet")
            checked.append(float(a))
        object.__setattr__(self, "alpha", checked[0] if scalar else tuple(checked))

    def concentrations(self, k: int) -> tuple[float, ...]:
        """The ``k`` concentrations (the symmetric one repeated); an error when the lengths differ."""
        if isinstance(self.alpha, float):
            return (self.alpha,) * k
        if len(self.alpha) != k:
            raise ValueError(
                f"{self.describe()} has {len(self.alpha)} concentrations, but the mixture has {k} classes"
            )
        return self.alpha

    def describe(self) -> str:
        """``Dirichlet(1)`` or ``Dirichlet([2, 1, 1])``."""
        if isinstance(self.alpha, float):
            return f"Dirichlet({self.alpha:.4g})"
        return f"Dirichlet([{', '.join(f'{a:.4g}' for a in self.alpha)}])"
