r"""Ranks of true values among posterior draws, and the test that they are uniform.

Notes
-----
If the fitted posterior is the exact posterior, the true value :math:`\theta^*` drawn from
the prior and the posterior draws :math:`\theta_1, \dots, \theta_L` given data simulated
from :math:`\theta^*` are exchangeable, so the rank
:math:`r = \#\{l : \theta_l < \theta^*\}` is uniform on :math:`\{0, \dots, L\}` (Talts et al.,
2018) -- provided the :math:`L` draws are independent. MCMC draws are not, so each
parameter's draws are thinned, evenly over the chains, to
:math:`L = \min(L_{\max}, \lfloor\min(\mathrm{ESS}_\mathrm{bulk}, \mathrm{ESS}_\mathrm{tail})\rfloor)`
draws: spaced at least one autocorrelation time apart. :math:`L` may differ between
simulations, so every rank is turned into a randomized PIT value
:math:`u = (r + V) / (L + 1)`, :math:`V \sim U(0, 1)`, which is exactly uniform on
:math:`(0, 1)` when :math:`r` is uniform on :math:`\{0, \dots, L\}`.

The uniformity test is the graphical ECDF test of Säilynoja, Bürkner and Vehtari (2022).
With :math:`N` PIT values and evaluation points :math:`z_i = i / K`,
:math:`i = 1, \dots, K - 1`, the count :math:`N F_N(z_i)` of values at most :math:`z_i` is
Binomial(:math:`N, z_i`) under uniformity. The statistic is the smallest two-sided
pointwise tail probability,

.. math:: T = \min_i \; 2 \min\big(P(X_i \le N F_N(z_i)),\; P(X_i \ge N F_N(z_i))\big),
   \qquad X_i \sim \mathrm{Binomial}(N, z_i),

and its distribution under uniformity is simulated (their "simulation method"): the p-value
is the share of uniform samples whose statistic is at most the observed one. The
simultaneous band of level :math:`1 - a` is the set of ECDFs whose :math:`T` is at least the
:math:`a`-quantile :math:`\gamma_a` of that distribution: at each :math:`z_i`, the counts whose
pointwise two-sided tail probability is at least :math:`\gamma_a`. An ECDF leaves its band
exactly when the test rejects at level :math:`a`.

References
----------
Talts, S., Betancourt, M., Simpson, D., Vehtari, A. and Gelman, A. (2018). Validating
Bayesian inference algorithms with simulation-based calibration. arXiv:1804.06788.

Säilynoja, T., Bürkner, P.-C. and Vehtari, A. (2022). Graphical test for discrete
uniformity and its applications in goodness-of-fit evaluation and multiple sample
comparison. Statistics and Computing 32, 32.

Modrák, M., Moon, A. H., Kim, S., Bürkner, P., Huurre, N., Faltejsková, K., Gelman, A. and
Vehtari, A. (2025). Simulation-based calibration checking for Bayesian computation: the
choice of test quantities shapes sensitivity. Bayesian Analysis 20(2), 461-488.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import numpy.typing as npt
from scipy import stats

__all__ = [
    "ecdf_band",
    "ecdf_counts",
    "ecdf_p_value",
    "evaluation_points",
    "null_size",
    "rank_of",
    "thinned_size",
]

FloatArray = npt.NDArray[np.float64]
#: largest number of uniform samples simulated for the null distribution of the ECDF statistic
MAX_NULL_SIZE = 200_000
_NULL_SEED = 20220201  # the null distribution is simulated once per (N, K) with this seed: reproducible
_CHUNK = 5_000


def thinned_size(n_draws: int, ess: float, max_draws: int) -> int:
    """How many draws to keep: at most ``max_draws`` and the ESS, at least 1, at most all."""
    if not np.isfinite(ess):
        ess = 1.0
    return int(max(1, min(max_draws, n_draws, np.floor(ess))))


def rank_of(draws: FloatArray, truth: float, keep: int, rng: np.random.Generator) -> tuple[int, float]:
    """Rank of ``truth`` among ``keep`` draws spread evenly over ``draws`` (chains by row), and its PIT.

    Ties (possible only for discrete quantities) are broken at random; the PIT value is
    ``(rank + V) / (keep + 1)`` with ``V`` uniform.
    """
    flat = np.asarray(draws, dtype=float).reshape(-1)
    kept = flat[np.round(np.linspace(0, flat.size - 1, keep)).astype(int)]
    less = int(np.sum(kept < truth))
    ties = int(np.sum(kept == truth))
    rank = less + int(rng.integers(0, ties + 1))
    return rank, (rank + float(rng.uniform())) / (keep + 1)


def evaluation_points(n: int, max_points: int = 100) -> FloatArray:
    """The interior points ``i / K``, ``K = min(n, max_points)``, where the ECDF of ``n`` values is tested."""
    k = max(2, min(n, max_points))
    return np.arange(1, k) / k


def _tail_table(n: int, z: FloatArray) -> FloatArray:
    """``table[i, c]``: two-sided pointwise tail probability of count ``c`` at ``z[i]`` (at most 1)."""
    counts = np.arange(n + 1)
    below = stats.binom.cdf(counts[None, :], n, z[:, None])
    above = stats.binom.sf(counts[None, :] - 1, n, z[:, None])
    return np.minimum(1.0, 2.0 * np.minimum(below, above))


def _statistic(counts: npt.NDArray[np.int64], table: FloatArray) -> FloatArray:
    """The ECDF statistic of each row of ``counts`` (counts at the evaluation points)."""
    rows = np.arange(table.shape[0])
    return np.asarray(table[rows[None, :], counts].min(axis=1), dtype=float)


def null_size(n_tests: int, alpha: float) -> int:
    """Uniform samples to simulate so that the Bonferroni threshold ``alpha / n_tests`` is well resolved."""
    return int(min(MAX_NULL_SIZE, max(20_000, np.ceil(200 * n_tests / alpha))))


@lru_cache(maxsize=32)
def _null(n: int, k: int, size: int) -> FloatArray:
    """Sorted statistics of ``size`` samples of ``n`` uniform values, at the points ``i / k``."""
    z = np.arange(1, k) / k
    table = _tail_table(n, z)
    rng = np.random.default_rng(_NULL_SEED)
    out = []
    for start in range(0, size, _CHUNK):
        m = min(_CHUNK, size - start)
        bins = np.minimum((rng.uniform(size=(m, n)) * k).astype(np.int64), k - 1)
        per_bin = np.bincount((bins + k * np.arange(m)[:, None]).ravel(), minlength=m * k).reshape(m, k)
        out.append(_statistic(np.cumsum(per_bin, axis=1)[:, : k - 1], table))
    return np.sort(np.concatenate(out))


def ecdf_counts(pit: FloatArray, z: FloatArray) -> npt.NDArray[np.int64]:
    """How many of the PIT values are at most each of ``z``."""
    return np.searchsorted(np.sort(pit), z, side="right").astype(np.int64)


def ecdf_p_value(pit: npt.ArrayLike, size: int = 20_000, max_points: int = 100) -> float:
    """p-value of the ECDF uniformity test of PIT values (see the module notes)."""
    values = np.asarray(pit, dtype=float)
    values = values[np.isfinite(values)]
    n = values.size
    if n < 2:
        return float("nan")
    z = evaluation_points(n, max_points)
    observed = _statistic(ecdf_counts(values, z)[None, :], _tail_table(n, z))[0]
    null = _null(n, z.size + 1, size)
    return float((1 + np.searchsorted(null, observed, side="right")) / (null.size + 1))


def ecdf_band(n: int, level: float, size: int = 20_000, max_points: int = 100) -> tuple[FloatArray, ...]:
    """Simultaneous band of ``level`` for the ECDF of ``n`` PIT values.

    Returns the evaluation points and the lower and upper ECDF values of the band there.
    The ECDF of a sample lies inside the band at every point exactly when
    :func:`ecdf_p_value` exceeds ``1 - level`` (up to the resolution of the simulation).
    """
    z = evaluation_points(n, max_points)
    table = _tail_table(n, z)
    null = _null(n, z.size + 1, size)
    # not rejected at a = 1 - level  <=>  p > a  <=>  at least J = floor(a (M + 1)) null statistics
    # are <= the observed one  <=>  observed >= null[J - 1]
    j = int(np.floor((1 - level) * (null.size + 1)))
    gamma = null[min(j, null.size) - 1] if j >= 1 else -np.inf
    inside = table >= gamma
    lower = np.argmax(inside, axis=1)
    upper = n - np.argmax(inside[:, ::-1], axis=1)
    return z, lower / n, upper / n
