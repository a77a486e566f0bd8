"""Which chains sampled which mode: the per-chain check of a mixture's posterior.

A mixture posterior can have several modes (local maxima of the likelihood with
comparable mass, or the same fit with classes relabelled). Chains that settle in
different modes make every pooled summary an average over modes. The check
compares chains pairwise: two chains share a mode when every parameter's chain
means differ by less than ``SEPARATION`` within-chain SDs. Chains that mix well
differ by about ``sqrt(2 / ESS)`` SDs (0.05 for ESS 1000), chains in different
modes by many SDs, so the threshold is far from both.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import xarray as xr

__all__ = ["SEPARATION", "ChainModes", "chain_modes"]

#: chain means further apart than this many within-chain SDs put two chains in different modes
SEPARATION = 1.0


@dataclass(frozen=True, slots=True, kw_only=True)
class ChainModes:
    """Chains grouped by the mode they sampled.

    Attributes
    ----------
    groups
        Chain numbers per mode, the group with the highest mean log-likelihood first.
    table
        Per chain: its mode, mean log-likelihood, and the chain mean of every parameter.
    worst
        Largest separation between two chains of different modes (in within-chain SDs), and where.
    """

    groups: tuple[tuple[int, ...], ...]
    table: pd.DataFrame
    worst: tuple[float, str]

    @property
    def multimodal(self) -> bool:
        """True when the chains sampled more than one mode."""
        return len(self.groups) > 1

    def problem(self) -> str | None:
        """A sentence with advice, or None when all chains agree."""
        if not self.multimodal:
            return None
        means = self.table.groupby("mode")["loglik"].mean()
        described = "; ".join(
            f"chains {list(g)}: mean log-likelihood {means.loc[i]:.2f}" for i, g in enumerate(self.groups)
        )
        separation, where = self.worst
        return (
            f"the chains sampled {len(self.groups)} different modes ({described}); their means differ by "
            f"up to {separation:.1f} within-chain SDs (at {where}). Pooled summaries average over modes. "
            "Look at fit.modes(), compare fit_ml().local_maxima, report the modes separately or change "
            "the model (fewer classes, order_by=..., informative priors)."
        )


def chain_modes(draws: xr.Dataset, loglik: xr.DataArray) -> ChainModes:
    """Group chains by mode from the public-parameter draws and the per-draw log-likelihood."""
    names = list(draws.data_vars)
    values = np.stack([draws[n].transpose("chain", "draw").values for n in names], axis=-1)  # chain, draw, p
    means, sds = values.mean(axis=1), values.std(axis=1, ddof=1)
    n_chains = values.shape[0]
    parent = list(range(n_chains))

    def root(i: int) -> int:
        while parent[i] != i:
            i = parent[i]
        return i

    distance = np.zeros((n_chains, n_chains))
    where = np.zeros((n_chains, n_chains), int)
    for a in range(n_chains):
        for b in range(a + 1, n_chains):
            pooled = np.sqrt((sds[a] ** 2 + sds[b] ** 2) / 2)
            with np.errstate(divide="ignore", invalid="ignore"):
                gap = np.where(pooled > 0, np.abs(means[a] - means[b]) / pooled, 0.0)
            distance[a, b] = distance[b, a] = float(gap.max())
            where[a, b] = where[b, a] = int(gap.argmax())
            if gap.max() < SEPARATION:
                parent[root(b)] = root(a)
    chain_ll = loglik.transpose("chain", "draw").values.mean(axis=1)
    roots = sorted(
        {root(i) for i in range(n_chains)},
        key=lambda r: -np.mean([chain_ll[i] for i in range(n_chains) if root(i) == r]),
    )
    groups = tuple(tuple(i for i in range(n_chains) if root(i) == r) for r in roots)
    mode_of = {i: m for m, g in enumerate(groups) for i in g}
    table = pd.DataFrame(means, columns=names, index=pd.Index(range(n_chains), name="chain"))
    table.insert(0, "loglik", chain_ll)
    table.insert(0, "mode", [mode_of[i] for i in range(n_chains)])
    worst = (0.0, "")
    for a in range(n_chains):
        for b in range(n_chains):
            if mode_of[a] != mode_of[b] and distance[a, b] > worst[0]:
                worst = (float(distance[a, b]), names[where[a, b]])
    return ChainModes(groups=groups, table=table, worst=worst)
