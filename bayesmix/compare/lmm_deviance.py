"""Penalized least squares and the profiled (RE)ML deviance of a linear mixed model.

This is the numerical core of :func:`bayesmix.compare.lmm.fit_lmm`, in the
formulation of lme4 (Bates et al. 2015): the random effects are ``b = Lambda u``
with spherical ``u ~ N(0, sigma^2 I)``, and ``Lambda`` is block diagonal, one
lower-triangular ``q x q`` template per grouping factor repeated for each level.
The random-effect design ``Z`` is a scipy sparse matrix built from the integer
level codes; only the ``Q x Q`` cross-product ``Z'Z`` (``Q`` = sum over factors of
levels times terms) is held dense.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import scipy.linalg as la
import scipy.sparse as sp
from threadpoolctl import threadpool_limits

from bayesmix.spec.terms import Design, GroupFactor

__all__ = ["ProfiledDeviance", "marginal_loglik", "profiled_deviance"]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

_LOG_2PI = float(np.log(2.0 * np.pi))
#: Below this many random effects, BLAS threads cost more than they save (and on a loaded
#: machine much more: a 36 x 36 triangular solve went from 0.2 ms to 6 ms with two threads).
SMALL_Q = 2000


def blas_threads(q_total: int) -> threadpool_limits:
    """Context manager limiting BLAS to one thread for problems with fewer than :data:`SMALL_Q` effects."""
    return threadpool_limits(limits=1 if q_total < SMALL_Q else None, user_api="blas")


@dataclass(frozen=True, slots=True)
class _Layout:
    """Where one grouping factor sits in ``u`` and which template entries are free."""

    offset: int
    n_levels: int
    n_terms: int
    rows: IntArray
    cols: IntArray


def split_templates(layouts: list[_Layout], theta: FloatArray) -> list[FloatArray]:
    """The per-factor lower-triangular templates ``T`` (``T T'`` = the factor's relative covariance)."""
    out, k = [], 0
    for lay in layouts:
        t = np.zeros((lay.n_terms, lay.n_terms))
        t[lay.rows, lay.cols] = theta[k : k + lay.rows.size]
        k += lay.rows.size
        out.append(t)
    return out


@dataclass(frozen=True, slots=True)
class PLSSolution:
    """The penalized least-squares solution at one ``theta`` (and ``beta``, if given).

    ``chol`` is the lower Cholesky factor ``L`` of ``Lambda'Z'Z Lambda + I``,
    ``rx`` the upper factor ``R_X`` of the Schur complement (``R_X'R_X``), ``u``
    the spherical random effects, ``b = Lambda u`` and ``r2`` the penalized
    residual sum of squares ``||y - X beta - Z b||^2 + ||u||^2``.
    """

    chol: FloatArray
    rx: FloatArray
    beta: FloatArray
    u: FloatArray
    b: FloatArray
    r2: float
    logdet_l: float
    logdet_rx: float


def _template_pattern(factor: GroupFactor) -> tuple[IntArray, IntArray]:
    """Free (row, col) entries of a factor's template, column-major over the lower triangle."""
    block = set(factor.correlated_positions)
    q = factor.n_terms
    pairs = [(i, j) for j in range(q) for i in range(j, q) if i == j or (i in block and j in block)]
    rows = np.array([i for i, _ in pairs], dtype=np.int64)
    cols = np.array([j for _, j in pairs], dtype=np.int64)
    return rows, cols


def _random_design(design: Design, layouts: list[_Layout]) -> sp.csr_array:
    """Build the sparse ``n x Q`` random-effect design from the level codes."""
    n = design.n_obs
    q_total = sum(lay.n_levels * lay.n_terms for lay in layouts)
    rows, cols, vals = [], [], []
    for factor, lay in zip(design.factors, layouts, strict=True):
        for j in range(lay.n_terms):
            rows.append(np.arange(n, dtype=np.int64))
            cols.append(lay.offset + factor.index.astype(np.int64) * lay.n_terms + j)
            vals.append(np.asarray(factor.values[:, j], dtype=np.float64))
    if not rows:
        return sp.csr_array((n, 0))
    coo = sp.coo_array(
        (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(n, q_total)
    )
    return coo.tocsr()


class ProfiledDeviance:
    r"""The profiled deviance ``-2 log L(theta)`` of a linear mixed model, as a callable.

    Parameters
    ----------
    design
        The evaluated model.
    reml
        Use the REML criterion (``True``) or the ML deviance (``False``).

    Notes
    -----
    With ``A = Lambda'Z'Z Lambda + I = L L'`` and the PLS solution at
    ``beta_hat(theta)`` with penalized residual sum of squares ``r2``, the
    profiled deviances are (Bates et al. 2015, eqs. 34 and 41)

    .. math::

        d_{ML}(\theta) = \log|L|^2 + n (1 + \log(2\pi r^2 / n)),

        d_{REML}(\theta) = \log|L|^2 + \log|R_X|^2 + (n-p)(1 + \log(2\pi r^2/(n-p))).

    ``theta`` holds, factor after factor, the free entries of each lower-triangular
    template, column by column (lme4's order); diagonal entries are bounded below by 0.

    References
    ----------
    Bates, D., Maechler, M., Bolker, B. and Walker, S. (2015). Fitting linear
    mixed-effects models using lme4. Journal of Statistical Software 67(1), 1-48.
    """

    def __init__(self, design: Design, *, reml: bool) -> None:
        n, p = design.X.shape
        if n <= p:
            raise ValueError(f"need more observations than fixed effects, got n={n}, p={p}")
        if np.linalg.matrix_rank(design.X) < p:
            raise ValueError(f"fixed-effect design {design.fixed_names} is rank deficient")
        if not design.factors:
            raise ValueError(
                "the (RE)ML fit of a linear mixed model needs at least one grouping factor, and this model "
                "has none: add a random effect such as (1 | group) to the formula, or compare the posterior "
                "with an ordinary regression (statsmodels.formula.api.ols on the same formula)"
            )
        self.design = design
        self.reml = reml
        layouts: list[_Layout] = []
        offset = 0
        for f in design.factors:
            rows, cols = _template_pattern(f)
            layouts.append(_Layout(offset, f.n_levels, f.n_terms, rows, cols))
            offset += f.n_levels * f.n_terms
        self.layouts = layouts
        self.y = np.asarray(design.y, dtype=np.float64)
        self.X = np.asarray(design.X, dtype=np.float64)
        self.Z = _random_design(design, layouts)
        self.ZtZ = np.asarray((self.Z.T @ self.Z).toarray(), dtype=np.float64)
        self.ZtX = np.asarray(self.Z.T @ self.X, dtype=np.float64)
        self.Zty = np.asarray(self.Z.T @ self.y, dtype=np.float64)
        self.XtX = self.X.T @ self.X
        self.Xty = self.X.T @ self.y

    @property
    def theta_start(self) -> FloatArray:
        """lme4's start: identity templates (1 on the diagonal, 0 off it)."""
        return np.concatenate([(lay.rows == lay.cols).astype(np.float64) for lay in self.layouts])

    @property
    def theta_lower(self) -> FloatArray:
        """Lower bounds: 0 for diagonal template entries, ``-inf`` otherwise."""
        return np.concatenate([np.where(lay.rows == lay.cols, 0.0, -np.inf) for lay in self.layouts])

    @property
    def theta_names(self) -> tuple[str, ...]:
        """lme4-style names: ``Subject.(Intercept)``, ``Subject.Days.(Intercept)``, ``Subject.Days``."""
        names = []
        for f, lay in zip(self.design.factors, self.layouts, strict=True):
            for i, j in zip(lay.rows, lay.cols, strict=True):
                a, b = f.terms[i], f.terms[j]
                names.append(f"{f.name}.{a}" if i == j else f"{f.name}.{a}.{b}")
        return tuple(names)

    def templates(self, theta: FloatArray) -> list[FloatArray]:
        """Split ``theta`` into the per-factor lower-triangular templates."""
        theta = np.asarray(theta, dtype=np.float64)
        if theta.shape != self.theta_start.shape:
            raise ValueError(f"theta has shape {theta.shape}, expected {self.theta_start.shape}")
        return split_templates(self.layouts, theta)

    def _right_lambda(self, mat: FloatArray, templates: list[FloatArray]) -> FloatArray:
        """``mat @ Lambda`` for block-diagonal ``Lambda`` (``I_J kron T`` per factor), without forming it."""
        out = np.empty_like(mat)
        for lay, t in zip(self.layouts, templates, strict=True):
            cols = slice(lay.offset, lay.offset + lay.n_levels * lay.n_terms)
            block = mat[:, cols].reshape(mat.shape[0], lay.n_levels, lay.n_terms) @ t
            out[:, cols] = block.reshape(mat.shape[0], -1)
        return out

    def solve(self, templates: list[FloatArray], beta: FloatArray | None = None) -> PLSSolution:
        """Penalized least squares at given templates (``beta`` profiled out unless given).

        Any square factors of the relative covariances may be passed, triangular
        or not: the likelihood depends on ``Lambda`` only through ``Lambda Lambda'``.
        """
        a = self._right_lambda(self._right_lambda(self.ZtZ, templates).T, templates)
        a[np.diag_indices_from(a)] += 1.0
        chol = la.cholesky(a, lower=True)
        cu = la.solve_triangular(chol, self._right_lambda(self.Zty[None, :], templates)[0], lower=True)
        rzx = la.solve_triangular(chol, self._right_lambda(self.ZtX.T, templates).T, lower=True)
        rx = la.cholesky(self.XtX - rzx.T @ rzx, lower=False)
        if beta is None:
            beta = la.cho_solve((rx, False), self.Xty - rzx.T @ cu)
        beta = np.asarray(beta, dtype=np.float64)
        u = la.solve_triangular(chol.T, cu - rzx @ beta, lower=False)
        b = self._right_lambda(u[None, :], [t.T for t in templates])[0]
        resid = self.y - self.X @ beta - np.asarray(self.Z @ b)
        r2 = float(resid @ resid + u @ u)
        return PLSSolution(
            chol=chol,
            rx=rx,
            beta=beta,
            u=u,
            b=b,
            r2=r2,
            logdet_l=2.0 * float(np.sum(np.log(np.diag(chol)))),
            logdet_rx=2.0 * float(np.sum(np.log(np.abs(np.diag(rx))))),
        )

    def __call__(self, theta: FloatArray) -> float:
        """Evaluate the profiled deviance at ``theta``."""
        sol = self.solve(self.templates(theta))
        n, p = self.X.shape
        if self.reml:
            nu = n - p
            return float(sol.logdet_l + sol.logdet_rx + nu * (1.0 + _LOG_2PI + np.log(sol.r2 / nu)))
        return float(sol.logdet_l + n * (1.0 + _LOG_2PI + np.log(sol.r2 / n)))

    def loglik(self, templates: list[FloatArray], sigma: float, beta: FloatArray | None = None) -> float:
        """Evaluate the (RE)ML log-likelihood at relative factors, residual SD and (for ML) ``beta``.

        Notes
        -----
        ``-2 l = nu log(2 pi sigma^2) + log|L|^2 [+ log|R_X|^2] + r2 / sigma^2`` with
        ``nu = n`` (ML, the bracket left out) or ``n - p`` (REML, ``beta`` integrated out).
        With ``beta=None`` the ML log-likelihood is maximized over ``beta``.
        """
        if self.reml and beta is not None:
            raise ValueError("the REML log-likelihood does not depend on beta; pass beta=None")
        sol = self.solve(templates, beta)
        n, p = self.X.shape
        nu = n - p if self.reml else n
        m2ll = nu * (_LOG_2PI + 2.0 * np.log(sigma)) + sol.logdet_l + sol.r2 / sigma**2
        if self.reml:
            m2ll += sol.logdet_rx
        return -0.5 * float(m2ll)


def psd_factor(cov: FloatArray) -> FloatArray:
    """Return ``F`` with ``F F' = cov``: Cholesky, or scaled eigenvectors if ``cov`` is singular."""
    try:
        return np.asarray(la.cholesky(cov, lower=True))
    except la.LinAlgError:
        w, v = np.linalg.eigh(cov)
        return np.asarray(v * np.sqrt(np.clip(w, 0.0, None)))


def relative_templates(
    design: Design,
    sds: Mapping[str, FloatArray],
    corrs: Mapping[str, FloatArray] | None,
    sigma: float,
) -> list[FloatArray]:
    """Relative covariance factors ``T_k`` (``T_k T_k' = Sigma_k / sigma^2``) from SDs and correlations."""
    if not sigma > 0:
        raise ValueError(f"sigma must be positive, got {sigma}")
    out = []
    for f in design.factors:
        sd = np.asarray(sds[f.name], dtype=np.float64)
        if sd.shape != (f.n_terms,) or np.any(sd < 0):
            raise ValueError(f"sds[{f.name!r}] must be {f.n_terms} non-negative values, got {sd}")
        corr = np.eye(f.n_terms) if corrs is None else np.array(corrs[f.name], dtype=np.float64)
        if corr.shape != (f.n_terms, f.n_terms):
            raise ValueError(f"corrs[{f.name!r}] must be a {f.n_terms}x{f.n_terms} matrix, got {corr.shape}")
        undefined = np.isnan(corr)
        if np.any(undefined & (sd[:, None] > 0) & (sd[None, :] > 0)):
            raise ValueError(f"corrs[{f.name!r}] is NaN where both SDs are positive")
        corr[undefined] = 0.0  # a correlation with a term of SD 0 does not matter
        if not np.allclose(corr, corr.T):
            raise ValueError(f"corrs[{f.name!r}] must be symmetric")
        out.append(psd_factor(sd[:, None] * corr * sd[None, :] / sigma**2))
    return out


def profiled_deviance(design: Design, theta: FloatArray, *, reml: bool) -> float:
    """Evaluate the profiled ML or REML deviance of ``design`` at ``theta`` (see :class:`ProfiledDeviance`).

    Parameters
    ----------
    design
        The evaluated model.
    theta
        Free entries of the relative covariance templates, in lme4's order.
    reml
        REML criterion (``True``) or ML deviance (``False``).

    Returns
    -------
    float
        ``-2`` times the profiled (RE)ML log-likelihood; lme4's ``deviance`` (ML) or ``REMLcrit``.
    """
    dev = ProfiledDeviance(design, reml=reml)
    with blas_threads(dev.ZtZ.shape[0]):
        return dev(theta)


def marginal_loglik(
    design: Design,
    beta: FloatArray,
    sds: Mapping[str, FloatArray],
    corrs: Mapping[str, FloatArray] | None,
    sigma: float,
) -> float:
    """Evaluate the ML log-likelihood ``log N(y; X beta, sigma^2 I + Z Sigma Z')`` at given parameters.

    Parameters
    ----------
    design
        The evaluated model.
    beta
        ``(p,)`` fixed effects.
    sds
        Per factor name, the ``(q,)`` random-effect standard deviations.
    corrs
        Per factor name, the ``(q, q)`` correlation matrix (``None``: identity for all);
        entries next to an SD of 0 may be NaN.
    sigma
        Residual standard deviation.

    Returns
    -------
    float
        The Gaussian log-density of ``y``, with the random effects integrated out.

    Notes
    -----
    Evaluated without forming the ``n x n`` covariance: with ``Lambda Lambda' = Sigma /
    sigma^2`` and ``L L' = Lambda'Z'Z Lambda + I`` (Bates et al. 2015, eq. 32),
    ``-2 log L = n log(2 pi sigma^2) + log|L|^2 + r^2(beta) / sigma^2``, where
    ``r^2(beta) = min_u ||y - X beta - Z Lambda u||^2 + ||u||^2``.

    References
    ----------
    Bates, D., Maechler, M., Bolker, B. and Walker, S. (2015). Fitting linear
    mixed-effects models using lme4. Journal of Statistical Software 67(1), 1-48.
    """
    beta = np.asarray(beta, dtype=np.float64)
    if beta.shape != (design.X.shape[1],):
        raise ValueError(f"beta has shape {beta.shape}, expected ({design.X.shape[1]},)")
    dev = ProfiledDeviance(design, reml=False)
    with blas_threads(dev.ZtZ.shape[0]):
        return dev.loglik(relative_templates(design, sds, corrs, sigma), sigma, beta)
