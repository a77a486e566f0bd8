"""Sampling diagnostics with concrete advice when a threshold fails."""

from __future__ import annotations

import html
from dataclasses import dataclass

import arviz_stats as azs
import numpy as np
import pandas as pd
import xarray as xr

__all__ = ["Diagnostics", "diagnose"]

RHAT_MAX = 1.01
ESS_MIN = 400
BFMI_MIN = 0.3


@dataclass(frozen=True, slots=True, kw_only=True)
class Diagnostics:
    """Convergence diagnostics of one fit.

    Attributes
    ----------
    table
        Per scalar parameter (random effects and raw variables included): ``r_hat``,
        ``ess_bulk``, ``ess_tail``, ``mcse_mean``.
    divergences
        Number of divergent transitions after tuning.
    treedepth_saturation
        Fraction of draws that hit the maximum tree depth.
    bfmi
        E-BFMI per chain.
    n_draws
        Total post-warmup draws over chains.
    extra
        Model-specific problems found elsewhere (a mixture's chains in different modes), with advice.
    """

    table: pd.DataFrame
    divergences: int
    treedepth_saturation: float
    bfmi: np.ndarray
    n_draws: int
    extra: tuple[str, ...] = ()

    @property
    def max_rhat(self) -> float:
        """Largest R-hat over all parameters."""
        return float(self.table["r_hat"].max())

    @property
    def min_ess_bulk(self) -> float:
        """Smallest bulk ESS."""
        return float(self.table["ess_bulk"].min())

    @property
    def min_ess_tail(self) -> float:
        """Smallest tail ESS."""
        return float(self.table["ess_tail"].min())

    @property
    def problems(self) -> list[str]:
        """One sentence with advice per failed check; empty when all pass."""
        out = list(self.extra)
        if self.max_rhat > RHAT_MAX:
            worst = self.table["r_hat"].idxmax()
            out.append(
                f"R-hat up to {self.max_rhat:.3f} (at {worst}) > {RHAT_MAX}: chains disagree. Run longer "
                "(more tune and draws), check for multimodality, or reparametrize (centered=... for "
                "factors with many observations per group)."
            )
        ess = min(self.min_ess_bulk, self.min_ess_tail)
        if ess < ESS_MIN:
            worst = self.table[["ess_bulk", "ess_tail"]].min(axis=1).idxmin()
            out.append(
                f"effective sample size down to {ess:.0f} (at {worst}) < {ESS_MIN}: estimates of means "
                "and especially tails are noisy. Draw more (draws=...), or reparametrize."
            )
        if self.divergences:
            out.append(
                f"{self.divergences} divergent transitions: the sampler could not follow the posterior's "
                "geometry, so the draws may be biased. Raise target_accept (e.g. 0.95), switch between "
                "centered and non-centered random effects, or use more informative priors on the SDs."
            )
        low = np.flatnonzero(self.bfmi < BFMI_MIN)
        if low.size:
            out.append(
                f"E-BFMI below {BFMI_MIN} in chain(s) {low.tolist()} (min {self.bfmi.min():.2f}): the "
                "momentum resampling explores the energy poorly, typical of heavy tails or funnels. "
                "Reparametrize or tighten priors on scale parameters."
            )
        if self.treedepth_saturation > 0.01:
            out.append(
                f"{100 * self.treedepth_saturation:.1f}% of draws hit the maximum tree depth: sampling is "
                "inefficient (strong correlations or poor scaling). Reparametrize or rescale predictors."
            )
        return out

    @property
    def ok(self) -> bool:
        """True when R-hat, ESS, divergences, E-BFMI and tree-depth saturation all pass."""
        return not self.problems

    def __str__(self) -> str:
        head = (
            f"{self.n_draws} draws | max R-hat {self.max_rhat:.3f} | min ESS bulk {self.min_ess_bulk:.0f}, "
            f"tail {self.min_ess_tail:.0f} | divergences {self.divergences} | "
            f"E-BFMI min {self.bfmi.min():.2f} | tree depth saturated {100 * self.treedepth_saturation:.1f}%"
        )
        if self.ok:
            return head + (
                "\nAll checks passed (R-hat <= 1.01, ESS >= 400, no divergences, E-BFMI >= 0.3, "
                "tree depth saturated in <= 1% of draws)."
            )
        return head + "\nProblems:\n" + "\n".join(f"- {p}" for p in self.problems)

    __repr__ = __str__

    def _repr_html_(self) -> str:
        items = "".join(f"<li>{html.escape(p)}</li>" for p in self.problems) or "<li>All checks passed.</li>"
        return f"<p>{html.escape(str(self).splitlines()[0])}</p><ul>{items}</ul>"


def _flat_table(posterior: xr.Dataset) -> pd.DataFrame:
    stats = {
        "r_hat": azs.rhat(posterior),
        "ess_bulk": azs.ess(posterior, method="bulk"),
        "ess_tail": azs.ess(posterior, method="tail"),
        "mcse_mean": azs.mcse(posterior),
    }
    frames = [
        pd.DataFrame(
            {stat: np.atleast_1d(ds[name].values).ravel() for stat, ds in stats.items()},
            index=_labels(str(name), stats["r_hat"][name]),
        )
        for name in posterior.data_vars
    ]
    return pd.concat(frames)


def _labels(name: str, da: xr.DataArray) -> list[str]:
    if da.ndim == 0:
        return [name]
    stacked = da.stack(_flat=da.dims)
    return [
        f"{name}[{','.join(map(str, idx if isinstance(idx, tuple) else (idx,)))}]"
        for idx in stacked["_flat"].values
    ]


def diagnose(
    idata: xr.DataTree, extra: tuple[str, ...] = (), posterior: xr.Dataset | None = None
) -> Diagnostics:
    """Compute :class:`Diagnostics` from a fit's DataTree.

    ``posterior`` replaces the DataTree's posterior group for the per-parameter checks (a
    mixture passes its draws under public names, ``Intercept[2]`` rather than ``beta[2,Intercept]``).
    """
    posterior = idata["posterior"].to_dataset() if posterior is None else posterior
    keep = [v for v in posterior.data_vars if not str(v).startswith("chol_corr_")]
    with np.errstate(invalid="ignore", divide="ignore"):
        # a correlation matrix's unit diagonal has zero variance: its R-hat is 0/0
        table = _flat_table(posterior[keep])
    constant = table["r_hat"].isna()
    table = table.loc[~constant]
    stats = idata["sample_stats"].to_dataset()
    divergences = int(stats["diverging"].sum()) if "diverging" in stats else 0
    depth_var = next((v for v in ("maxdepth_reached", "reached_max_treedepth") if v in stats), None)
    saturation = float(stats[depth_var].mean()) if depth_var else 0.0
    bfmi = np.atleast_1d(np.asarray(azs.bfmi(idata)["energy"]))
    n_draws = int(stats["energy"].size)
    return Diagnostics(
        table=table,
        divergences=divergences,
        treedepth_saturation=saturation,
        bfmi=bfmi,
        n_draws=n_draws,
        extra=extra,
    )
