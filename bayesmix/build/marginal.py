r"""The Gaussian hierarchical model with its random effects integrated out exactly.

For one grouping factor with levels :math:`j`, terms :math:`Z_j` (rows of group
:math:`j`), covariance :math:`\Sigma` of a level's random effects and residual SD
:math:`\sigma`, the data of group :math:`j` are

.. math:: y_j \sim N(X_j \beta,\; \sigma^2 I + Z_j \Sigma Z_j').

With :math:`M_j = \Sigma^{-1} + Z_j'Z_j / \sigma^2`, :math:`r = y - X\beta` and
:math:`c_j = Z_j' r_j / \sigma^2`, the Woodbury identity and the matrix determinant
lemma give

.. math::

   \log p(y \mid \beta, \Sigma, \sigma) = -\tfrac12 \Big[ N \log 2\pi + N \log\sigma^2
   + J \log|\Sigma| + \sum_j \log|M_j| + r'r / \sigma^2 - \sum_j c_j' M_j^{-1} c_j \Big],

where :math:`r'r = y'y - 2\beta'X'y + \beta'X'X\beta` and :math:`Z_j'r_j = Z_j'y_j -
Z_j'X_j\beta`. Only per-group sums enter (:math:`Z_j'Z_j`, :math:`Z_j'X_j`,
:math:`Z_j'y_j`) plus :math:`X'X`, :math:`X'y`, :math:`y'y`: a gradient costs
:math:`O(J q^3 + J q p)` whatever the number of rows.

With a known covariance :math:`K` of the levels, :math:`\operatorname{Cov}(\operatorname{vec}
b) = K \otimes \Sigma` couples the levels: :math:`M = K^{-1} \otimes \Sigma^{-1} +
\operatorname{blockdiag}(Z_j'Z_j)/\sigma^2` is one :math:`Jq \times Jq` matrix and
:math:`J\log|\Sigma|` becomes :math:`q \log|K| + J \log|\Sigma|`.

With known standard deviations :math:`s_i` of the rows (``y | se(s)``, meta-analysis) the
residual covariance is :math:`S = \operatorname{diag}(s_i^2)` instead of :math:`\sigma^2 I`.
Every row divided by its :math:`s_i` (:math:`\tilde y = y/s`, :math:`\tilde X = X/s`,
:math:`\tilde Z = Z/s`) has unit residual variance, so the same formula holds with the
weighted sums :math:`Z_j'WZ_j, Z_j'WX_j, Z_j'Wy_j, X'WX, X'Wy, y'Wy`
(:math:`W = S^{-1}`), :math:`\sigma = 1`, and :math:`N \log\sigma^2` replaced by
:math:`\log|S| = \sum_i \log s_i^2` (:attr:`SufficientStatistics.log_det_noise`).

Given :math:`(\beta, \Sigma, \sigma)` the random effects are Gaussian,
:math:`b \sim N(M^{-1} c, M^{-1})`; :func:`bayesmix.results.marginal.recover_random_effects`
draws them after sampling, one draw per posterior draw.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pymc as pm
import pytensor.tensor as pt

from ..spec.model import ModelSpec
from ..spec.terms import Design, FloatArray, GroupFactor
from .priors import prior_dist, vector_variable
from .random_effects import cholesky_factor, dims_of

__all__ = [
    "SufficientStatistics",
    "backward_solve",
    "build_marginal_model",
    "cholesky_entries",
    "forward_solve",
    "inverse_from_cholesky",
    "marginal_loglik",
]


@dataclass(frozen=True, slots=True)
class SufficientStatistics:
    """Per-group and global sums of a Gaussian model with one grouping factor.

    With known SDs (``design.known_sd``) the sums are weighted by ``1 / s_i^2`` and
    ``log_det_noise`` is ``sum_i log s_i^2``; otherwise it is None (the residual SD is a parameter).
    """

    n: int
    yty: float
    Xty: FloatArray  # (p,)
    XtX: FloatArray  # (p, p)
    ZtZ: FloatArray  # (J, q, q)
    ZtX: FloatArray  # (J, q, p)
    Zty: FloatArray  # (J, q)
    log_det_noise: float | None = None

    def as_data(self, with_block: bool = False) -> dict[str, Any]:
        """The sums as ``pm.Data`` (inside a model context) named ``data__<field>``.

        Data in shared variables, not constants, let a later fit of the same structure reuse
        the compiled model with its own sums (:mod:`bayesmix.compiled`). ``with_block`` adds
        :meth:`block_diagonal` (the known-covariance path).
        """
        out: dict[str, Any] = {
            name: pm.Data(f"data__{name}", np.asarray(getattr(self, name), dtype=float))
            for name in ("yty", "Xty", "XtX", "ZtZ", "ZtX", "Zty")
        }
        if with_block:
            out["block"] = pm.Data("data__block", self.block_diagonal())
        return out

    def block_diagonal(self) -> FloatArray:
        """``blockdiag(Z_j'Z_j)``, ``(Jq, Jq)``, level-major (for a known covariance ``K``)."""
        J, q = self.ZtZ.shape[:2]
        block = np.zeros((J * q, J * q))
        for j in range(J):
            block[j * q : (j + 1) * q, j * q : (j + 1) * q] = self.ZtZ[j]
        return block

    @classmethod
    def of(cls, design: Design) -> SufficientStatistics:
        """One pass over the rows (``bincount`` per entry); the offset is taken off ``y`` first.

        With known SDs every row is divided by its SD first, which makes the sums the weighted ones.
        """
        (factor,) = design.factors
        y = design.y if design.offset is None else design.y - design.offset
        X, Z, idx, J = design.X, factor.values, factor.index, factor.n_levels
        log_det_noise = None
        if design.known_sd is not None:
            scale = 1.0 / design.known_sd
            y, X, Z = y * scale, X * scale[:, None], Z * scale[:, None]
            log_det_noise = float(np.sum(2.0 * np.log(design.known_sd)))
        q, p = Z.shape[1], X.shape[1]

        def per_group(values: FloatArray) -> FloatArray:
            return np.bincount(idx, weights=values, minlength=J)

        ZtZ = np.empty((J, q, q))
        for t in range(q):
            for u in range(t, q):
                ZtZ[:, t, u] = ZtZ[:, u, t] = per_group(Z[:, t] * Z[:, u])
        ZtX = np.empty((J, q, p))
        for t in range(q):
            for k in range(p):
                ZtX[:, t, k] = per_group(Z[:, t] * X[:, k])
        Zty = np.stack([per_group(Z[:, t] * y) for t in range(q)], axis=1)
        return cls(
            n=int(y.size),
            yty=float(y @ y),
            Xty=X.T @ y,
            XtX=X.T @ X,
            ZtZ=ZtZ,
            ZtX=ZtX,
            Zty=Zty,
            log_det_noise=log_det_noise,
        )


def cholesky_entries(A: list[list[Any]], sqrt: Any = pt.sqrt) -> list[list[Any]]:
    """Lower Cholesky factor of a small symmetric matrix given entry by entry.

    Entries may be scalars or arrays (one matrix per group and draw), PyTensor or numpy
    (``sqrt=np.sqrt``): the factorization is written out as elementwise operations, which
    compile far faster than a batched linear-algebra op (on sleepstudy, 118 s of compilation
    with ``pt.linalg.cholesky`` on ``(J, 2, 2)`` against 12 s) and run as vector arithmetic.
    """
    q = len(A)
    L: list[list[Any]] = [[None] * q for _ in range(q)]
    for i in range(q):
        for j in range(i + 1):
            rest = A[i][j] - sum((L[i][k] * L[j][k] for k in range(j)), start=0.0)
            L[i][j] = sqrt(rest) if i == j else rest / L[j][j]
    return L


def forward_solve(L: list[list[Any]], b: list[Any]) -> list[Any]:
    """Solve ``L x = b`` for lower-triangular ``L`` given entry by entry."""
    x: list[Any] = []
    for i in range(len(b)):
        x.append((b[i] - sum((L[i][k] * x[k] for k in range(i)), start=0.0)) / L[i][i])
    return x


def backward_solve(L: list[list[Any]], b: list[Any]) -> list[Any]:
    """Solve ``L' x = b`` for lower-triangular ``L`` given entry by entry."""
    q = len(b)
    x: list[Any] = [None] * q
    for i in reversed(range(q)):
        x[i] = (b[i] - sum((L[k][i] * x[k] for k in range(i + 1, q)), start=0.0)) / L[i][i]
    return x


def inverse_from_cholesky(L: list[list[Any]]) -> list[list[Any]]:
    """``(L L')^{-1}`` entry by entry, for a small lower-triangular ``L`` given entry by entry."""
    q = len(L)
    columns = [forward_solve(L, [1.0 if i == j else 0.0 for i in range(q)]) for j in range(q)]  # L^{-1}
    # (L L')^{-1} = L^{-T} L^{-1}: entry (a, b) = sum_k L^{-1}[k, a] L^{-1}[k, b]
    return [[sum(columns[a][k] * columns[b][k] for k in range(q)) for b in range(q)] for a in range(q)]


def marginal_loglik(
    stats: SufficientStatistics,
    factor: GroupFactor,
    beta: Any,
    L: Any,
    sigma: Any,
    data: dict[str, Any] | None = None,
) -> Any:
    """The log-likelihood above as a PyTensor scalar; ``L`` is the lower Cholesky factor of ``Sigma``.

    ``data``: the sums as tensors (:meth:`SufficientStatistics.as_data`); by default they
    enter the graph as constants. ``sigma`` is None for known SDs (``stats`` then holds the
    weighted sums and ``log_det_noise``).
    """
    J, q = stats.ZtZ.shape[0], stats.ZtZ.shape[1]
    if data is None:
        data = {name: getattr(stats, name) for name in ("yty", "Xty", "XtX", "ZtZ", "ZtX", "Zty")}
    if sigma is None:
        if stats.log_det_noise is None:
            raise ValueError("sigma is None, but the sums were not weighted by known SDs")
        s2, log_det_noise = 1.0, stats.log_det_noise
    else:
        s2 = sigma**2
        log_det_noise = stats.n * pt.log(s2)
    rr = data["yty"] - 2.0 * pt.dot(data["Xty"], beta) + pt.dot(beta, pt.dot(data["XtX"], beta))
    Zr = data["Zty"] - pt.dot(data["ZtX"], beta)  # (J, q)
    log_det_sigma = 2.0 * sum(pt.log(L[i, i]) for i in range(q))
    sigma_inv = inverse_from_cholesky([[L[i, j] for j in range(q)] for i in range(q)])
    if factor.covariance is not None:
        K_inv = np.linalg.inv(factor.covariance)
        log_det_K = float(np.linalg.slogdet(factor.covariance)[1])
        block = data["block"] if "block" in data else stats.block_diagonal()
        S_inv = pt.stack([pt.stack(row) for row in sigma_inv])
        M = pt.linalg.kron(pt.as_tensor(K_inv), S_inv) + block / s2
        L_M = pt.linalg.cholesky(M)
        w_joint = pt.linalg.solve_triangular(L_M, Zr.reshape((J * q,)) / s2, lower=True)
        quad = pt.sum(w_joint**2)
        log_det_M = 2.0 * pt.sum(pt.log(pt.diagonal(L_M)))
        log_det_prior = q * log_det_K + J * log_det_sigma
    else:
        M = [[sigma_inv[a][b] + data["ZtZ"][:, a, b] / s2 for b in range(q)] for a in range(q)]  # (J,) each
        L_M = cholesky_entries(M)
        w = forward_solve(L_M, [Zr[:, a] / s2 for a in range(q)])
        quad = sum(pt.sum(w_a**2) for w_a in w)
        log_det_M = 2.0 * sum(pt.sum(pt.log(L_M[a][a])) for a in range(q))
        log_det_prior = J * log_det_sigma
    n = stats.n
    return -0.5 * (n * np.log(2 * np.pi) + log_det_noise + log_det_prior + log_det_M + rr / s2 - quad)


def build_marginal_model(spec: ModelSpec, design: Design, coords: dict[str, list[str]]) -> pm.Model:
    """The Gaussian model of one grouping factor with its random effects integrated out.

    Variables: ``beta``, ``sd_g``, ``chol_corr_g``/``corr_g`` (correlated block) and
    ``sigma`` (absent with known SDs), as in the full model; the likelihood is the potential
    ``{response}_marginal``.
    ``re_g`` is added to the posterior after sampling (:mod:`bayesmix.results.marginal`).
    """
    (factor,) = design.factors
    stats = SufficientStatistics.of(design)
    with pm.Model(coords=coords) as model:
        beta = (
            vector_variable("beta", [spec.priors[n] for n in design.fixed_names], dims="coef")
            if design.fixed_names
            else pt.zeros(0)
        )
        sd = vector_variable(
            f"sd_{factor.name}",
            [spec.priors[factor.sd_name(t)] for t in factor.terms],
            dims=dims_of(factor)["terms"],
        )
        L = cholesky_factor(factor, spec, sd)
        sigma = None
        if design.known_sd is None:
            cls, kwargs = prior_dist(spec.priors["sigma"])
            sigma = cls("sigma", **kwargs)
        data = stats.as_data(with_block=factor.covariance is not None)
        pm.Potential(f"{design.response_name}_marginal", marginal_loglik(stats, factor, beta, L, sigma, data))
    return model
