"""The Laplace approximation of a generalized linear mixed model's log-likelihood.

The numerical core of :func:`bayesmix.compare.laplace.fit_laplace`, in the formulation of
lme4's ``glmer`` with ``nAGQ = 1`` (Bates et al. 2015). The random effects are
``b = Lambda(theta) u`` with spherical ``u ~ N(0, I)``; at given parameters, penalized
iteratively reweighted least squares (PIRLS: penalized Fisher scoring with step halving)
finds the conditional mode ``u*``, and the integral over ``u`` is replaced by its Laplace
approximation there. The log-density of each observation is the Bayesian model's own
(:func:`bayesmix.build.families.family_logp`), compiled once with PyTensor; the working
weights are the family's expected information (:attr:`bayesmix.spec.families.Family.information`),
as in lme4.

The sparse ``n x Q`` random-effect design is never densified, but the ``Q x Q`` penalized
information matrix is held dense, so a model may have at most :data:`MAX_RANDOM_EFFECTS`
random effects.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pytensor
import pytensor.tensor as pt
import scipy.linalg as la
import scipy.sparse as sp

from ..build.families import family_logp
from ..spec.families import Family
from ..spec.terms import Design
from .lmm_deviance import _Layout, _random_design, _template_pattern, psd_factor, split_templates

__all__ = ["LOG_AUX_BOUND", "MAX_RANDOM_EFFECTS", "LaplaceLikelihood", "LaplaceMode", "fisher_scoring"]

FloatArray = npt.NDArray[np.float64]

#: Most random effects (sum over factors of levels x terms): the penalized information is dense.
MAX_RANDOM_EFFECTS = 5000
#: Fisher scoring (PIRLS) stops when its largest step is below this.
SCORING_TOL = 1e-11
#: Most Fisher-scoring iterations, and most step halvings within one.
SCORING_MAX_ITER = 500
MAX_HALVINGS = 40
#: Bounds of the log auxiliary parameters (``aux`` between 2e-9 and 5e8).
LOG_AUX_BOUND = 20.0


class _LogDensity:
    """One compiled PyTensor function: elementwise ``log p(y | eta, aux)`` and its derivative in ``eta``."""

    def __init__(self, family: Family, design: Design) -> None:
        eta = pt.vector("eta", shape=(design.n_obs,))
        aux = [pt.scalar(name, dtype="float64") for name in design.auxiliary]
        logp = family_logp(
            family, eta, dict(zip(design.auxiliary, aux, strict=True)), design.y, design.trials
        )
        with warnings.catch_warnings():
            warnings.filterwarnings(
                "ignore", message="PyTensor could not link to a BLAS", category=UserWarning
            )
            score = pt.grad(pt.sum(logp), eta)
            self._function = pytensor.function([eta, *aux], [logp, score])  # type: ignore[list-item]

    def __call__(self, eta: FloatArray, aux: FloatArray) -> tuple[FloatArray, FloatArray]:
        logp, score = self._function(eta, *aux)
        return np.asarray(logp, dtype=np.float64), np.asarray(score, dtype=np.float64)


@dataclass(frozen=True, slots=True)
class _Scored:
    """The result of Fisher scoring: coefficients, linear predictor, summed log-density, factor."""

    v: FloatArray
    eta: FloatArray
    logp: float
    chol: FloatArray
    converged: bool


def fisher_scoring(
    density: Callable[[FloatArray], tuple[FloatArray, FloatArray]],
    weights: Callable[[FloatArray], FloatArray],
    A: sp.csr_array,
    eta0: FloatArray,
    start: FloatArray,
    *,
    penalty: bool,
) -> _Scored:
    """Maximize ``sum log p(y | eta0 + A v) [- |v|^2 / 2]`` over ``v`` by Fisher scoring with step halving.

    With ``penalty=True`` this is PIRLS for the spherical random effects; without, IRLS for
    a GLM. The returned ``chol`` is the lower Cholesky factor of ``A'WA [+ I]`` at the
    returned point, with ``W = weights(eta)``.
    """

    def evaluate(v: FloatArray) -> tuple[FloatArray, FloatArray, FloatArray, float]:
        eta = eta0 + A @ v
        logp, score = density(eta)
        value = float(np.sum(logp)) - (0.5 * float(v @ v) if penalty else 0.0)
        return eta, logp, score, value

    v = start
    eta, logp, score, value = evaluate(v)
    if not np.isfinite(value) and np.any(start):
        v = np.zeros_like(start)
        eta, logp, score, value = evaluate(v)
    ridge = np.eye(A.shape[1]) if penalty else np.zeros((A.shape[1], A.shape[1]))
    chol = np.full_like(ridge, np.nan)
    At = sp.csr_array(A.T)
    nnz_rows = np.repeat(np.arange(A.shape[0]), np.diff(A.indptr))
    for _ in range(SCORING_MAX_ITER):
        weighted = sp.csr_array((A.data * weights(eta)[nnz_rows], A.indices, A.indptr), shape=A.shape)
        try:
            chol = la.cholesky((At @ weighted).toarray() + ridge, lower=True)
        except la.LinAlgError:
            break
        step = la.cho_solve((chol, True), At @ score - (v if penalty else 0.0))
        if np.max(np.abs(step), initial=0.0) < SCORING_TOL:
            return _Scored(v, eta, float(np.sum(logp)), chol, True)
        slack = 1e-12 * (1.0 + abs(value)) if np.isfinite(value) else np.inf
        for _ in range(MAX_HALVINGS):
            trial = evaluate(v + step)
            if trial[3] >= value - slack:
                break
            step = step / 2.0
        else:
            break
        v = v + step
        eta, logp, score, value = trial
    return _Scored(v, eta, float(np.sum(logp)), chol, False)


@dataclass(frozen=True, slots=True)
class _LambdaPattern:
    """The fixed sparsity of ``Lambda`` in CSR form: entry ``e`` is ``theta[theta_e] * scale_e``."""

    indices: npt.NDArray[np.int64]
    indptr: npt.NDArray[np.int64]
    theta: npt.NDArray[np.int64]
    scale: FloatArray

    @classmethod
    def of(cls, design: Design, layouts: list[_Layout]) -> _LambdaPattern:
        """Lay out ``I_J (x) T`` (or ``L_K (x) T`` for a known ``K``) factor after factor."""
        rows, cols, which, scale = [], [], [], []
        first = 0
        for f, lay in zip(design.factors, layouts, strict=True):
            outer = sp.eye_array(lay.n_levels) if f.covariance is None else psd_factor(f.covariance)
            coo = sp.coo_array(outer)
            q = lay.n_terms
            for k, (a, c) in enumerate(zip(lay.rows, lay.cols, strict=True)):
                rows.append(lay.offset + coo.coords[0] * q + a)
                cols.append(lay.offset + coo.coords[1] * q + c)
                which.append(np.full(coo.nnz, first + k))
                scale.append(coo.data)
            first += lay.rows.size
        row, col = np.concatenate(rows), np.concatenate(cols)
        order = np.lexsort((col, row))
        n_random = sum(lay.n_levels * lay.n_terms for lay in layouts)
        indptr = np.concatenate([[0], np.cumsum(np.bincount(row, minlength=n_random))])
        return cls(
            indices=col[order].astype(np.int64),
            indptr=indptr.astype(np.int64),
            theta=np.concatenate(which)[order].astype(np.int64),
            scale=np.concatenate(scale)[order].astype(np.float64),
        )


@dataclass(frozen=True, slots=True)
class LaplaceMode:
    """The conditional mode at one parameter vector and the Laplace log-likelihood there.

    Attributes
    ----------
    u
        The spherical conditional modes ``u*``; ``b = Lambda u*``.
    eta
        The linear predictor at the mode.
    chol
        Lower Cholesky factor of ``Lambda'Z'WZ Lambda + I`` at the mode.
    lam
        The sparse ``Q x Q`` factor ``Lambda`` of the random effects' covariance
        (``Lambda Lambda' = Cov(b)``).
    loglik
        The Laplace approximation of the log-likelihood.
    converged
        Whether PIRLS converged.
    """

    u: FloatArray
    eta: FloatArray
    chol: FloatArray
    lam: sp.csr_array
    loglik: float
    converged: bool


class LaplaceLikelihood:
    r"""The Laplace log-likelihood of a GLMM as a function of ``x = (theta, beta, log aux)``.

    Parameters
    ----------
    design
        The evaluated model (at least one grouping factor).
    family
        The family, with the link in use.

    Notes
    -----
    With ``eta(u) = offset + X beta + Z Lambda u`` and ``u*`` the maximizer of
    ``sum_i log p(y_i | eta_i(u)) - |u|^2 / 2``,

    .. math::

        \log L(\theta, \beta, a) \approx \sum_i \log p(y_i \mid \eta_i(u^*), a) - \tfrac12 |u^*|^2
            - \tfrac12 \log\det(\Lambda' Z' W Z \Lambda + I),

    ``W`` the diagonal of the expected information about ``eta`` per observation at
    ``eta(u*)`` (the GLM working weights). This is lme4's ``nAGQ = 1`` criterion; it is exact
    for the Gaussian family. ``Lambda`` is block diagonal over factors: ``I_J (x) T`` for a
    factor with ``J`` levels and lower-triangular template ``T`` (``T T' = Sigma``), and
    ``L_K (x) T`` with ``L_K L_K' = K`` for a factor with a known covariance ``K`` of its
    levels. ``theta`` lists, factor after factor, the free entries of ``T`` column by column
    (the diagonal, and the lower triangle of the correlated block), lme4's order.
    Evaluations start PIRLS at the previous conditional mode.
    """

    def __init__(self, design: Design, family: Family) -> None:
        _check_design(design)
        self.design, self.family = design, family
        self.layouts: list[_Layout] = []
        offset = 0
        for f in design.factors:
            rows, cols = _template_pattern(f)
            self.layouts.append(_Layout(offset, f.n_levels, f.n_terms, rows, cols))
            offset += f.n_levels * f.n_terms
        self.n_random = offset
        self.Z = _random_design(design, self.layouts)
        self.X = sp.csr_array(np.asarray(design.X, dtype=np.float64))
        self.offset = np.zeros(design.n_obs) if design.offset is None else np.asarray(design.offset, float)
        self._pattern = _LambdaPattern.of(design, self.layouts)
        self.n_theta = sum(lay.rows.size for lay in self.layouts)
        self.n_fixed = design.X.shape[1]
        self.density = _LogDensity(family, design)
        self._u = np.zeros(self.n_random)

    @property
    def size(self) -> int:
        """Length of the parameter vector."""
        return self.n_theta + self.n_fixed + len(self.design.auxiliary)

    @property
    def lower(self) -> FloatArray:
        """Lower bounds: 0 for template diagonals, ``-LOG_AUX_BOUND`` for log aux, else ``-inf``."""
        theta = np.concatenate([np.where(lay.rows == lay.cols, 0.0, -np.inf) for lay in self.layouts])
        aux = np.full(len(self.design.auxiliary), -LOG_AUX_BOUND)
        return np.concatenate([theta, np.full(self.n_fixed, -np.inf), aux])

    @property
    def upper(self) -> FloatArray:
        """Upper bounds: ``LOG_AUX_BOUND`` for log aux, else ``inf``."""
        return np.concatenate(
            [np.full(self.n_theta + self.n_fixed, np.inf), np.full(len(self.design.auxiliary), LOG_AUX_BOUND)]
        )

    @property
    def names(self) -> tuple[str, ...]:
        """Names of ``x``: lme4's theta names (``herd.(Intercept)``), fixed effects, ``log(aux)``."""
        names = []
        for f, lay in zip(self.design.factors, self.layouts, strict=True):
            for i, j in zip(lay.rows, lay.cols, strict=True):
                names.append(f"{f.name}.{f.terms[i]}" if i == j else f"{f.name}.{f.terms[i]}.{f.terms[j]}")
        names += list(self.design.fixed_names)
        return (*names, *(f"log({a})" for a in self.design.auxiliary))

    def split(self, x: FloatArray) -> tuple[FloatArray, FloatArray, FloatArray]:
        """Split ``x`` into ``theta``, ``beta`` and the auxiliary parameters (exponentiated)."""
        x = np.asarray(x, dtype=np.float64)
        if x.shape != (self.size,):
            raise ValueError(f"parameter vector has shape {x.shape}, expected ({self.size},)")
        k, p = self.n_theta, self.n_fixed
        return x[:k], x[k : k + p], np.exp(x[k + p :])

    def templates(self, theta: FloatArray) -> list[FloatArray]:
        """The per-factor lower-triangular templates ``T`` (``T T' = Sigma``)."""
        return split_templates(self.layouts, theta)

    def lam(self, theta: FloatArray) -> sp.csr_array:
        """The sparse block-diagonal ``Lambda`` (levels major, terms minor, as ``Z``'s columns)."""
        pattern = self._pattern
        shape = (self.n_random, self.n_random)
        return sp.csr_array(
            (theta[pattern.theta] * pattern.scale, pattern.indices, pattern.indptr), shape=shape
        )

    def aux_dict(self, aux: FloatArray) -> dict[str, FloatArray]:
        """The auxiliary parameters by name."""
        return {name: np.asarray(a) for name, a in zip(self.design.auxiliary, aux, strict=True)}

    def log_density(self, aux: FloatArray) -> Callable[[FloatArray], tuple[FloatArray, FloatArray]]:
        """The elementwise log-density and its derivative in ``eta``, as a function of ``eta``."""
        return lambda eta: self.density(eta, aux)

    def weights(self, aux: FloatArray) -> Callable[[FloatArray], FloatArray]:
        """The working weights (expected information about ``eta``) as a function of ``eta``."""
        fam, named, trials = self.family, self.aux_dict(aux), self.design.trials
        return lambda eta: np.asarray(fam.information(eta, named, trials, fam.link), dtype=np.float64)

    def mode(self, x: FloatArray) -> LaplaceMode:
        """Run PIRLS at ``x`` and evaluate the Laplace log-likelihood."""
        theta, beta, aux = self.split(x)
        lam = self.lam(theta)
        scored = fisher_scoring(
            self.log_density(aux),
            self.weights(aux),
            sp.csr_array(self.Z @ lam),
            self.offset + self.X @ beta,
            self._u,
            penalty=True,
        )
        if scored.converged:
            self._u = scored.v
        logdet = 2.0 * float(np.sum(np.log(np.diag(scored.chol))))
        loglik = scored.logp - 0.5 * float(scored.v @ scored.v) - 0.5 * logdet
        if not np.isfinite(loglik):
            loglik = -np.inf
        return LaplaceMode(scored.v, scored.eta, scored.chol, lam, loglik, scored.converged)

    def __call__(self, x: FloatArray) -> float:
        """The Laplace log-likelihood at ``x``."""
        return self.mode(x).loglik


def _check_design(design: Design) -> None:
    """Raise ``ValueError`` for designs the Laplace engine cannot fit."""
    n, p = design.X.shape
    if not design.factors:
        raise ValueError(
            "the Laplace ML fit needs at least one grouping factor, and this model has none: add a random "
            "effect such as (1 | group) to the formula, or compare the posterior with a GLM "
            "(statsmodels.formula.api.glm on the same formula)"
        )
    if n <= p:
        raise ValueError(f"need more observations than fixed effects, got n={n}, p={p}")
    if p and np.linalg.matrix_rank(design.X) < p:
        raise ValueError(f"fixed-effect design {design.fixed_names} is rank deficient")
    q = sum(f.n_levels * f.n_terms for f in design.factors)
    if q > MAX_RANDOM_EFFECTS:
        raise ValueError(
            f"the Laplace ML fit holds a dense {q} x {q} information matrix and supports at most "
            f"{MAX_RANDOM_EFFECTS} random effects; this model has {q} (levels x terms over its factors)"
        )
