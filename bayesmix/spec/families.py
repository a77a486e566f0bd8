"""The family registry: one place that says what each likelihood needs.

A family is data: its name, links (default first), auxiliary parameters with
their default priors, the response's support, and the numpy pieces that results
need (inverse link, component mean). :mod:`bayesmix.build.families` maps the name
to the PyMC likelihood; nothing else branches on family names.

The parametrizations (those of PyMC):

========== ======== ================ =================================================
family     link     auxiliary        distribution given the linear predictor eta
========== ======== ================ =================================================
gaussian   identity sigma            Normal(eta, sigma)
lognormal  identity sigma            log y ~ Normal(eta, sigma): eta is the mean of log y
studentt   identity sigma, nu        StudentT(nu, eta, sigma)
poisson    log      (none)           Poisson(exp(eta))
negbinomial log     alpha            NegativeBinomial(mu=exp(eta), alpha); var = mu + mu^2/alpha
gamma      log      alpha            Gamma(shape alpha, mean exp(eta))
bernoulli  logit    (none)           Bernoulli(expit(eta))
binomial   logit    (none)           Binomial(trials, expit(eta))
beta       logit    phi              Beta(mu phi, (1 - mu) phi), mu = expit(eta)
pointmass  (none)   (none)           all mass at one value (Stata's ``pointmass``)
========== ======== ================ =================================================
"""

from __future__ import annotations

import numbers
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType

import numpy as np
import numpy.typing as npt
from scipy import special

from .priors import Exponential, Gamma, Prior

__all__ = ["FAMILIES", "INVERSE_LINKS", "LINKS", "Family", "PointMass", "get_family"]

FloatArray = npt.NDArray[np.float64]

# Inverse links, applied elementwise to the linear predictor.
INVERSE_LINKS: Mapping[str, Callable[[FloatArray], FloatArray]] = MappingProxyType(
    {
        "identity": lambda eta: eta,
        "log": np.exp,
        "logit": special.expit,
        "probit": special.ndtr,
    }
)


# Links applied to a mean, clipped inside the range where the link is finite (starts and prior centres).
LINKS: Mapping[str, Callable[[float], float]] = MappingProxyType(
    {
        "identity": lambda m: m,
        "log": lambda m: float(np.log(max(m, 1e-3))),
        "logit": lambda m: float(special.logit(min(max(m, 0.01), 0.99))),
        "probit": lambda m: float(special.ndtri(min(max(m, 0.01), 0.99))),
    }
)


@dataclass(frozen=True, slots=True, kw_only=True)
class Family:
    """A response distribution.

    Parameters
    ----------
    name
        Registry key.
    links
        Allowed link functions, the default first.
    auxiliary
        The extra parameters with their default priors. ``None`` as a prior means
        "scaled to the data": ``Exponential(1 / s)`` with ``s`` the SD of the response
        on the linear-predictor scale (of ``log y`` for the lognormal).
    support
        ``"real"``, ``"positive"``, ``"count"``, ``"binary"``, ``"unit"`` or ``"any"``.
    log_response
        True when the linear predictor models ``log y`` (lognormal).
    information
        Expected (Fisher) information about the linear predictor per observation,
        ``(eta, aux, trials, link) -> w``: the GLM working weight
        ``(dmu/deta)^2 / Var(y)``. The Laplace ML fit and the automatic choice of
        parametrization use it.
    """

    name: str
    links: tuple[str, ...]
    auxiliary: Mapping[str, Prior | None] = field(default_factory=dict)
    support: str = "real"
    log_response: bool = False
    information: Callable[[FloatArray, Mapping[str, FloatArray], FloatArray | None, str], FloatArray] = field(
        default=lambda eta, aux, trials, link: np.ones_like(eta), repr=False, compare=False
    )

    @property
    def link(self) -> str:
        """The link in use (the first of ``links``; the default unless :meth:`with_link` chose another)."""
        return self.links[0]

    def with_link(self, link: str | None) -> Family:
        """The family with ``link`` in use; ``None`` keeps the default."""
        if link is None or link == self.link:
            return self
        if not isinstance(link, str) or link not in self.links:
            raise ValueError(
                f"the {self.name} family has the link(s) {', '.join(self.links)}; got link={link!r}"
            )
        return replace(self, links=(link, *(other for other in self.links if other != link)))

    @property
    def discrete(self) -> bool:
        """True for families on the integers (counts, binary)."""
        return self.support in ("count", "binary")

    def outside(self, y: FloatArray) -> npt.NDArray[np.bool_]:
        """True where a value lies outside the family's support."""
        return {
            "any": np.zeros(y.shape, bool),
            "real": np.zeros(y.shape, bool),
            "positive": y <= 0,
            "count": (y < 0) | (y != np.round(y)),
            "binary": (y != 0) & (y != 1),
            "unit": (y <= 0) | (y >= 1),
        }[self.support]

    def check_support(self, y: FloatArray, response: str) -> None:
        """Raise ``ValueError`` naming the values outside the family's support."""
        bad = self.outside(y)
        if bad.any():
            rows = np.flatnonzero(bad)[:5].tolist()
            wanted = {
                "real": "finite",
                "positive": "positive (> 0)",
                "count": "non-negative integer",
                "binary": "0/1",
                "unit": "strictly between 0 and 1",
            }[self.support]
            raise ValueError(
                f"the {self.name} family needs a {wanted} response, but {int(bad.sum())} values of "
                f"{response!r} are outside that (first positions {rows}, values {y[rows].tolist()}); "
                "choose a family whose support covers the data or transform the response"
            )

    def location(self, y: FloatArray, trials: FloatArray | None = None) -> tuple[float, float]:
        """Centre and scale of the response on the linear-predictor scale (for default priors)."""
        if self.log_response:
            z = np.log(y)
            return float(np.mean(z)), _scale(z)
        if self.link == "identity":
            return float(np.mean(y)), _scale(y)
        mean = float(np.mean(y / trials) if trials is not None else np.mean(y))
        return LINKS[self.link](mean), 1.0

    def mean(self, eta: FloatArray, aux: Mapping[str, FloatArray]) -> FloatArray:
        """The component mean E[y | class] given the linear predictor (per trial for the binomial)."""
        if self.log_response:
            return np.exp(eta + aux["sigma"] ** 2 / 2)
        return INVERSE_LINKS[self.link](eta)

    def sd(self, eta: FloatArray, aux: Mapping[str, FloatArray]) -> FloatArray | None:
        """The component SD on the response scale (continuous families; None for discrete ones)."""
        if self.discrete:
            return None
        mean = self.mean(eta, aux)
        if self.log_response:
            return mean * np.sqrt(np.expm1(aux["sigma"] ** 2))
        if "sigma" in self.auxiliary:
            return np.broadcast_to(aux["sigma"], np.shape(eta))
        if self.name == "gamma":
            return mean / np.sqrt(aux["alpha"])
        return np.sqrt(mean * (1 - mean) / (1 + aux["phi"]))  # beta


def _scale(values: FloatArray) -> float:
    sd = float(np.std(values))
    return sd if sd > 0 else 1.0


# Expected information about eta per observation, family by family (used by the ``information`` field).
def _info_normal(eta: FloatArray, aux: Mapping[str, FloatArray], trials: object, link: str) -> FloatArray:
    return np.broadcast_to(1.0 / np.asarray(aux["sigma"]) ** 2, np.shape(eta))


def _info_studentt(eta: FloatArray, aux: Mapping[str, FloatArray], trials: object, link: str) -> FloatArray:
    nu, sigma = np.asarray(aux["nu"]), np.asarray(aux["sigma"])
    return np.broadcast_to((nu + 1) / ((nu + 3) * sigma**2), np.shape(eta))


def _info_poisson(eta: FloatArray, aux: Mapping[str, FloatArray], trials: object, link: str) -> FloatArray:
    return np.exp(eta)


def _info_negbinomial(
    eta: FloatArray, aux: Mapping[str, FloatArray], trials: object, link: str
) -> FloatArray:
    mu, alpha = np.exp(eta), np.asarray(aux["alpha"])
    return mu * alpha / (alpha + mu)


def _info_gamma(eta: FloatArray, aux: Mapping[str, FloatArray], trials: object, link: str) -> FloatArray:
    return np.broadcast_to(np.asarray(aux["alpha"], dtype=float), np.shape(eta))


def _info_binomial(eta: FloatArray, aux: Mapping[str, FloatArray], trials: object, link: str) -> FloatArray:
    n = 1.0 if trials is None else np.asarray(trials, dtype=float)
    p = np.clip(INVERSE_LINKS[link](eta), 1e-12, 1 - 1e-12)
    if link == "logit":
        return n * p * (1 - p)
    density = np.exp(-0.5 * np.asarray(eta) ** 2) / np.sqrt(2 * np.pi)  # probit: dmu/deta
    return n * density**2 / (p * (1 - p))


def _info_beta(eta: FloatArray, aux: Mapping[str, FloatArray], trials: object, link: str) -> FloatArray:
    mu, phi = np.clip(special.expit(eta), 1e-12, 1 - 1e-12), np.asarray(aux["phi"])
    return (
        phi**2
        * (special.polygamma(1, mu * phi) + special.polygamma(1, (1 - mu) * phi))
        * (mu * (1 - mu)) ** 2
    )


@dataclass(frozen=True, slots=True)
class PointMass:
    """A component that puts all its mass on one value (Stata's ``pointmass``).

    ``bx.PointMass(0)`` with a count family gives a zero-inflated model; the string
    ``"pointmass"`` means ``PointMass(0)``.
    """

    value: float = 0.0

    def __post_init__(self) -> None:
        if isinstance(self.value, bool) or not isinstance(self.value, numbers.Real):  # numpy numbers too
            raise TypeError(f"PointMass value must be a number, got {self.value!r}")
        if not np.isfinite(self.value):
            raise ValueError(f"PointMass value must be finite, got {self.value!r}")
        object.__setattr__(self, "value", float(self.value))

    @property
    def name(self) -> str:
        """``pointmass``."""
        return "pointmass"

    def describe(self) -> str:
        """Short text such as ``pointmass(0)``."""
        return f"pointmass({self.value:g})"


FAMILIES: Mapping[str, Family] = MappingProxyType(
    {
        "gaussian": Family(
            name="gaussian", links=("identity",), auxiliary={"sigma": None}, information=_info_normal
        ),
        "lognormal": Family(
            name="lognormal",
            links=("identity",),
            auxiliary={"sigma": None},
            support="positive",
            log_response=True,
            information=_info_normal,
        ),
        "studentt": Family(
            name="studentt",
            links=("identity",),
            auxiliary={"sigma": None, "nu": Gamma(2.0, 0.1)},
            information=_info_studentt,
        ),
        "poisson": Family(name="poisson", links=("log",), support="count", information=_info_poisson),
        "negbinomial": Family(
            name="negbinomial",
            links=("log",),
            auxiliary={"alpha": Exponential(0.1)},
            support="count",
            information=_info_negbinomial,
        ),
        "gamma": Family(
            name="gamma",
            links=("log",),
            auxiliary={"alpha": Exponential(0.1)},
            support="positive",
            information=_info_gamma,
        ),
        "bernoulli": Family(
            name="bernoulli", links=("logit", "probit"), support="binary", information=_info_binomial
        ),
        "binomial": Family(
            name="binomial", links=("logit", "probit"), support="count", information=_info_binomial
        ),
        "beta": Family(
            name="beta",
            links=("logit",),
            auxiliary={"phi": Exponential(0.1)},
            support="unit",
            information=_info_beta,
        ),
    }
)

_ALIASES = {
    "normal": "gaussian",
    "student_t": "studentt",
    "t": "studentt",
    "negative_binomial": "negbinomial",
}


def get_family(name: str) -> Family:
    """Look a family up by name (``"normal"`` is an alias of ``"gaussian"``), with a clear error."""
    if not isinstance(name, str):
        raise TypeError(f"family must be a string such as 'gaussian', got {type(name).__name__}")
    key = _ALIASES.get(name.lower(), name.lower())
    try:
        return FAMILIES[key]
    except KeyError:
        raise ValueError(
            f"unknown family {name!r}; available: {', '.join(sorted(FAMILIES))} (and 'pointmass' in mixtures)"
        ) from None
