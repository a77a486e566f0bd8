"""Random effects drawn after sampling a model that integrated them out.

Given a posterior draw of ``(beta, Sigma, sigma)`` the random effects of a Gaussian model
are Gaussian, ``b ~ N(M^{-1} c, M^{-1})`` with ``M`` and ``c`` as in
:mod:`bayesmix.build.marginal`; one draw of ``b`` per posterior draw makes ``(beta, Sigma,
sigma, b)`` a draw from the joint posterior, the one the full model samples.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from ..build.marginal import (
    SufficientStatistics,
    backward_solve,
    cholesky_entries,
    forward_solve,
    inverse_from_cholesky,
)
from ..build.random_effects import dims_of
from ..spec.terms import Design, FloatArray, GroupFactor

__all__ = ["add_observed_data", "recover_random_effects"]

_CHUNK = 256  # posterior draws per batch: bounds memory at about _CHUNK * J * q * q numbers


def _covariances(posterior: xr.Dataset, factor: GroupFactor) -> FloatArray:
    """``Sigma`` per posterior draw, ``(S, q, q)``, from ``sd_g`` and ``corr_g``."""
    sd = posterior[f"sd_{factor.name}"].to_numpy().reshape(-1, factor.n_terms)
    R = np.broadcast_to(np.eye(factor.n_terms), (sd.shape[0], factor.n_terms, factor.n_terms)).copy()
    if factor.correlated:
        pos = np.array(factor.correlated_positions)
        corr = posterior[f"corr_{factor.name}"].to_numpy().reshape(-1, pos.size, pos.size)
        R[:, pos[:, None], pos[None, :]] = corr
    return sd[:, :, None] * R * sd[:, None, :]


def _draw_block(
    stats: SufficientStatistics,
    factor: GroupFactor,
    beta: FloatArray,
    cov: FloatArray,
    sigma: FloatArray,
    rng: np.random.Generator,
) -> FloatArray:
    """Random effects ``(s, J, q)`` for a batch of ``s`` draws."""
    J, q = stats.ZtZ.shape[:2]
    s2 = sigma**2
    Zr = stats.Zty[None] - np.einsum("jqp,sp->sjq", stats.ZtX, beta)  # (s, J, q)
    if factor.covariance is None:
        # b = L_M^{-T} (L_M^{-1} c + e), e ~ N(0, I): mean M^{-1} c, covariance M^{-1}. Entry by
        # entry over (draws, groups) arrays: batched numpy linalg on millions of 2 x 2 matrices is
        # dominated by per-matrix overhead.
        chol = cholesky_entries([[cov[:, a, b] for b in range(q)] for a in range(q)], sqrt=np.sqrt)
        sigma_inv = inverse_from_cholesky(chol)
        M = [
            [sigma_inv[a][b][:, None] + stats.ZtZ[None, :, a, b] / s2[:, None] for b in range(q)]
            for a in range(q)
        ]
        L = cholesky_entries(M, sqrt=np.sqrt)
        w = forward_solve(L, [Zr[:, :, a] / s2[:, None] for a in range(q)])
        noise = rng.standard_normal((q, *Zr.shape[:2]))
        return np.stack(backward_solve(L, [w[a] + noise[a] for a in range(q)]), axis=-1)
    K_inv = np.linalg.inv(factor.covariance)
    block = stats.block_diagonal()
    out = np.empty((beta.shape[0], J, q))
    for i in range(beta.shape[0]):
        M_joint = np.kron(K_inv, np.linalg.inv(cov[i])) + block / s2[i]
        L_joint = np.linalg.cholesky(M_joint)
        c = Zr[i].reshape(-1) / s2[i]
        mean = np.linalg.solve(M_joint, c)
        noise = np.linalg.solve(L_joint.T, rng.standard_normal(J * q))
        out[i] = (mean + noise).reshape(J, q)
    return out


def recover_random_effects(tree: xr.DataTree, design: Design, random_seed: int | None) -> xr.DataTree:
    """Add ``re_g`` (dims ``(chain, draw, g, g__term)``) to the posterior of a marginalized fit."""
    (factor,) = design.factors
    posterior = tree["posterior"].to_dataset()
    chains, draws = posterior.sizes["chain"], posterior.sizes["draw"]
    p = len(design.fixed_names)
    beta = posterior["beta"].to_numpy().reshape(-1, p) if p else np.zeros((chains * draws, 0))
    sigma = posterior["sigma"].to_numpy().reshape(-1)
    cov = _covariances(posterior, factor)
    stats = SufficientStatistics.of(design)
    rng = np.random.default_rng(None if random_seed is None else [random_seed, 0x5E])
    effects = np.concatenate(
        [
            _draw_block(stats, factor, beta[a : a + _CHUNK], cov[a : a + _CHUNK], sigma[a : a + _CHUNK], rng)
            for a in range(0, beta.shape[0], _CHUNK)
        ]
    )
    dims = dims_of(factor)
    re = xr.DataArray(
        effects.reshape(chains, draws, factor.n_levels, factor.n_terms),
        dims=("chain", "draw", dims["levels"], dims["terms"]),
        coords={
            "chain": posterior["chain"],
            "draw": posterior["draw"],
            dims["levels"]: list(factor.levels),
            dims["terms"]: list(factor.terms),
        },
    )
    posterior[f"re_{factor.name}"] = re
    tree["posterior"] = xr.DataTree(posterior)
    return add_observed_data(tree, design)


def add_observed_data(tree: xr.DataTree, design: Design) -> xr.DataTree:
    """The ``observed_data`` group that a model without an observed variable does not get from PyMC."""
    if "observed_data" not in tree.children:
        obs = xr.Dataset(
            {design.response_name: ("obs", design.y)}, coords={"obs": [str(i) for i in range(design.n_obs)]}
        )
        tree["observed_data"] = xr.DataTree(obs)
    return tree
