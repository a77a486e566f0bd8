"""Evaluated model terms: the fixed-effect design and the grouping factors.

These objects are what every later layer (the PyMC builder, the ML/REML
engine, the results) reads. They hold plain numpy arrays, never a dense
``n x J`` random-effect design: a grouping factor is an integer code per row
plus the ``n x q`` values of its term expressions.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True, slots=True, kw_only=True)
class GroupFactor:
    """One grouping factor with all of its random-effect terms.

    Parameters
    ----------
    name
        The factor as written in the formula: ``"Subject"``, or ``"a:b"`` for
        an interaction (nesting) factor.
    levels
        Level labels, in the order of the codes.
    index
        ``(n,)`` integer code of each row's level, in ``0..len(levels)-1``.
    terms
        Names of the term columns (``"Intercept"``, ``"Days"``, ``"period[2]"``).
    values
        ``(n, q)`` values of the term columns (a column of ones for the intercept).
    correlated
        The terms that share one correlation block (from ``(x | g)``); empty when all
        terms of this factor are independent (``(x || g)`` or separate terms).
    covariance
        A known ``(J, J)`` covariance ``K`` of the levels (``covariances={"g": K}``), aligned
        with ``levels``: ``Cov(vec b) = K (x) Sigma``. Levels of ``K`` without data have a
        zero count. None (default) means independent levels.
    """

    name: str
    levels: tuple[str, ...]
    index: IntArray
    terms: tuple[str, ...]
    values: FloatArray
    correlated: tuple[str, ...] = ()
    covariance: FloatArray | None = field(default=None, repr=False)
    counts: IntArray = field(init=False)

    def __post_init__(self) -> None:
        n = self.index.shape[0]
        if self.values.shape != (n, len(self.terms)):
            raise ValueError(
                f"grouping factor {self.name!r}: values have shape {self.values.shape}, "
                f"expected ({n}, {len(self.terms)})"
            )
        if any(t not in self.terms for t in self.correlated):
            raise ValueError(f"grouping factor {self.name!r}: correlated terms must be among its terms")
        if len(self.correlated) == 1:
            raise ValueError(f"grouping factor {self.name!r}: a correlation block needs two or more terms")
        object.__setattr__(
            self, "counts", np.bincount(self.index, minlength=len(self.levels)).astype(np.int64)
        )

    @property
    def n_levels(self) -> int:
        """Number of levels ``J``."""
        return len(self.levels)

    @property
    def n_terms(self) -> int:
        """Number of terms ``q`` per level."""
        return len(self.terms)

    @property
    def correlated_positions(self) -> tuple[int, ...]:
        """Positions (in ``terms``) of the correlated block."""
        return tuple(self.terms.index(t) for t in self.correlated)

    def correlation_pairs(self) -> list[tuple[int, int]]:
        """Positions ``(i, j)``, ``i < j``, of the correlated terms' pairs, in canonical (row-major) order.

        Every table that lists correlations (names, estimates, posterior draws) walks this list,
        so their rows line up.
        """
        pos = self.correlated_positions
        return [(pos[a], pos[b]) for a in range(len(pos)) for b in range(a + 1, len(pos))]

    def sd_name(self, term: str) -> str:
        """Public name of a standard deviation: ``sd(Days|Subject)``."""
        return f"sd({term}|{self.name})"

    def corr_name(self, a: str, b: str) -> str:
        """Public name of a correlation: ``corr(Intercept,Days|Subject)``."""
        return f"corr({a},{b}|{self.name})"

    def parameter_names(self) -> list[str]:
        """Variance-parameter names in canonical order: sds, then correlations (row-major)."""
        names = [self.sd_name(t) for t in self.terms]
        names += [self.corr_name(self.terms[i], self.terms[j]) for i, j in self.correlation_pairs()]
        return names


@dataclass(frozen=True, slots=True, kw_only=True)
class Design:
    """The evaluated model: response, fixed-effect design and grouping factors.

    Attributes
    ----------
    response_name
        The response column (the successes' column for a binomial response).
    y, X, fixed_names
        Response, fixed-effect design and its column names (offsets excluded).
    factors
        The grouping factors.
    auxiliary
        Names of the family's auxiliary parameters.
    trials
        Binomial trials per row (``cbind(s, f)`` or ``s | trials(n)``), else None.
    offset
        Sum of the formula's ``offset(...)`` terms, on the link scale, else None.
    known_sd
        The known standard deviation of each row's response (``y | se(s) ~ ...``, as in brms:
        meta-analysis, where each study reports its estimate and standard error), else None.
        With it the Gaussian likelihood is ``y_i ~ N(mu_i, known_sd_i^2)`` and there is no
        residual ``sigma`` (``auxiliary`` is empty).
    common
        formulae's fixed-effect matrix object, kept to encode new data exactly as the
        fitting data were (categorical levels, stateful transforms); None when not available.
    """

    response_name: str
    y: FloatArray
    X: FloatArray
    fixed_names: tuple[str, ...]
    factors: tuple[GroupFactor, ...]
    auxiliary: tuple[str, ...] = ("sigma",)
    trials: FloatArray | None = None
    offset: FloatArray | None = None
    known_sd: FloatArray | None = None
    common: object | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.X.shape != (self.y.shape[0], len(self.fixed_names)):
            raise ValueError(
                f"X has shape {self.X.shape}, expected ({self.y.shape[0]}, {len(self.fixed_names)})"
            )
        if self.known_sd is not None and self.known_sd.shape != self.y.shape:
            raise ValueError(f"known_sd has shape {self.known_sd.shape}, expected {self.y.shape}")
        names = [f.name for f in self.factors]
        if len(set(names)) != len(names):
            raise ValueError(f"grouping factors must be unique, got {names}")

    @property
    def n_obs(self) -> int:
        """Number of rows used in the fit."""
        return int(self.y.shape[0])

    def parameter_names(self) -> list[str]:
        """All parameter names in canonical order: fixed effects, variance parameters, auxiliaries."""
        names = list(self.fixed_names)
        for f in self.factors:
            names += f.parameter_names()
        return [*names, *self.auxiliary]
