"""Random effects drawn after sampling a model that integrated them out.

Given a posterior draw of ``(beta, Sigma, sigma)`` the random effects of a Gaussian model
are Gaussian, ``b ~ N(M^{-1} c, M^{-1})`` with ``M`` and ``c`` as in
:mod:`bayesmix.build.marginal`; one draw of ``b`` per posterior draw makes ``(beta, Sigma,
sigma, b)`` a draw from the joint posterior, the one the full model samples. With known SDs
(``y | se(s)``) the sums are the weighted ones and ``sigma = 1`` in every draw.
"""

from __future__ import annotations

import os
import queue
from concurrent.futures import ThreadPoolExecutor

import numba
import numpy as np
import xarray as xr

from ..build.marginal import SufficientStatistics
from ..build.random_effects import dims_of
from ..spec.aggregate import Aggregated
from ..spec.terms import Design, FloatArray, GroupFactor

__all__ = ["add_observed_data", "recover_random_effects", "with_original_rows"]

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


@numba.njit(cache=True, nogil=True)
def _draw_kernel(
    ZtZ: FloatArray,
    ZtX: FloatArray,
    Zty: FloatArray,
    beta: FloatArray,
    sigma_inv: FloatArray,
    s2: FloatArray,
    noise: FloatArray,
    out: FloatArray,
) -> None:  # pragma: no cover - compiled by numba; tested through recover_random_effects
    """``out[s, j] = L^{-T} (L^{-1} c + e)`` with ``L L' = M`` per draw ``s`` and group ``j``.

    ``M = Sigma_s^{-1} + Z_j'Z_j / sigma_s^2`` and ``c = Z_j'(y_j - X_j beta_s) / sigma_s^2``:
    mean ``M^{-1} c``, covariance ``M^{-1}``. One pass over (draws, groups), in place.
    """
    S, J, q = out.shape
    p = beta.shape[1]
    M = np.empty((q, q))
    w = np.empty(q)
    for s in range(S):
        for j in range(J):
            for a in range(q):
                r = Zty[j, a]
                for k in range(p):
                    r -= ZtX[j, a, k] * beta[s, k]
                w[a] = r / s2[s]
                for b in range(a + 1):
                    M[a, b] = sigma_inv[s, a, b] + ZtZ[j, a, b] / s2[s]
            for a in range(q):  # Cholesky, lower triangle in place
                for b in range(a + 1):
                    v = M[a, b]
                    for k in range(b):
                        v -= M[a, k] * M[b, k]
                    M[a, b] = np.sqrt(v) if a == b else v / M[b, b]
            for a in range(q):  # L^{-1} c + e
                v = w[a]
                for k in range(a):
                    v -= M[a, k] * w[k]
                w[a] = v / M[a, a]
            for a in range(q):
                w[a] += noise[s, j, a]
            for a in range(q - 1, -1, -1):  # L^{-T} (...)
                v = w[a]
                for k in range(a + 1, q):
                    v -= M[k, a] * out[s, j, k]
                out[s, j, a] = v / M[a, a]


def _draw_block(
    stats: SufficientStatistics,
    factor: GroupFactor,
    beta: FloatArray,
    cov: FloatArray,
    sigma: FloatArray,
    rng: np.random.Generator,
    out: FloatArray,
    noise: FloatArray,
) -> None:
    """Random effects ``(s, J, q)`` for a batch of ``s`` draws, written into ``out``.

    ``noise`` is a scratch buffer of ``out``'s shape (reused across batches: filling a fresh
    array of tens of megabytes costs more in page faults than drawing the numbers).
    """
    J, q = stats.ZtZ.shape[:2]
    s2 = sigma**2
    if factor.covariance is None:
        rng.standard_normal(out=noise)
        _draw_kernel(stats.ZtZ, stats.ZtX, stats.Zty, beta, np.linalg.inv(cov), s2, noise, out)
        return
    Zr = stats.Zty[None] - np.einsum("jqp,sp->sjq", stats.ZtX, beta)  # (s, J, q)
    K_inv = np.linalg.inv(factor.covariance)
    block = stats.block_diagonal()
    for i in range(beta.shape[0]):
        M_joint = np.kron(K_inv, np.linalg.inv(cov[i])) + block / s2[i]
        L_joint = np.linalg.cholesky(M_joint)
        c = Zr[i].reshape(-1) / s2[i]
        mean = np.linalg.solve(M_joint, c)
        noise = np.linalg.solve(L_joint.T, rng.standard_normal(J * q))
        out[i] = (mean + noise).reshape(J, q)


def recover_random_effects(tree: xr.DataTree, design: Design, random_seed: int | None) -> xr.DataTree:
    """Add ``re_g`` (dims ``(chain, draw, g, g__term)``) to the posterior of a marginalized fit."""
    (factor,) = design.factors
    posterior = tree["posterior"].to_dataset()
    chains, draws = posterior.sizes["chain"], posterior.sizes["draw"]
    p = len(design.fixed_names)
    beta = posterior["beta"].to_numpy().reshape(-1, p) if p else np.zeros((chains * draws, 0))
    # with known SDs the sums are weighted by them (SufficientStatistics.of): unit residual SD
    known = design.known_sd is not None
    sigma = np.ones(beta.shape[0]) if known else posterior["sigma"].to_numpy().reshape(-1)
    cov = _covariances(posterior, factor)
    stats = SufficientStatistics.of(design)
    effects = np.empty((beta.shape[0], factor.n_levels, factor.n_terms))
    # Batches of draws run on every core (the kernel and numpy's normal draws release the
    # GIL); batch b has its own generator, spawned from the seed in order, so the result does
    # not depend on the number of threads or their order.
    starts = range(0, beta.shape[0], _CHUNK)
    seeds = np.random.SeedSequence(None if random_seed is None else [random_seed, 0x5E]).spawn(len(starts))
    workers = max(1, min(os.cpu_count() or 1, len(starts)))
    free: queue.SimpleQueue[FloatArray] = queue.SimpleQueue()
    for _ in range(workers):
        free.put(np.empty((min(_CHUNK, beta.shape[0]), factor.n_levels, factor.n_terms)))

    def batch(b: int) -> None:
        block, noise = slice(starts[b], starts[b] + _CHUNK), free.get()
        try:
            out = effects[block]
            rng = np.random.default_rng(seeds[b])
            _draw_block(stats, factor, beta[block], cov[block], sigma[block], rng, out, noise[: out.shape[0]])
        finally:
            free.put(noise)

    with ThreadPoolExecutor(max_workers=workers) as pool:
        list(pool.map(batch, range(len(starts))))
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
    if "observed_data" not in tree.children or design.response_name not in tree["observed_data"].data_vars:
        obs = xr.Dataset(
            {design.response_name: ("obs", design.y)}, coords={"obs": [str(i) for i in range(design.n_obs)]}
        )
        tree["observed_data"] = xr.DataTree(obs)
    return tree


def with_original_rows(tree: xr.DataTree, design: Design, aggregated: Aggregated) -> xr.DataTree:
    """``observed_data`` per original row for a fit sampled on summed binomial rows.

    The posterior attribute ``aggregated_rows`` records how many rows the graph had.
    """
    if "observed_data" in tree.children:
        del tree["observed_data"]
    tree = add_observed_data(tree, design)
    tree["posterior"].attrs["aggregated_rows"] = aggregated.design.n_obs
    return tree
