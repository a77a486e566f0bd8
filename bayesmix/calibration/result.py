"""The result of a simulation-based calibration run: ranks, the uniformity tests, the fits' problems."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ..results.diagnostics import RHAT_MAX
from .ranks import ecdf_p_value, null_size
from .tasks import NO_ML_START

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["SBCResult", "uniformity_tests"]


def uniformity_tests(pit: pd.DataFrame, alpha: float) -> pd.DataFrame:
    """The ECDF uniformity test of every parameter's PIT values, Bonferroni-corrected.

    Columns: ``n`` (simulations with a rank), ``p_value``, ``threshold`` (``alpha`` divided by
    the number of parameters) and ``reject`` (``p_value <= threshold``, or no p-value). See
    :mod:`bayesmix.calibration.ranks` for the test.
    """
    n_tests = max(1, pit.shape[1])
    size = null_size(n_tests, alpha)
    rows = {}
    for name in pit.columns:
        values = pit[name].dropna().to_numpy(dtype=float)
        p = ecdf_p_value(values, size=size)
        rows[name] = {
            "n": values.size,
            "p_value": p,
            "threshold": alpha / n_tests,
            "reject": not p > alpha / n_tests,  # no p-value (fewer than 2 ranks) is no pass
        }
    table = pd.DataFrame.from_dict(rows, orient="index")
    table.index.name = "parameter"
    return table


@dataclass(frozen=True, slots=True, kw_only=True)
class SBCResult:
    """Simulation-based calibration of a model: what :func:`bayesmix.sbc` returns.

    Attributes
    ----------
    ranks
        One row per simulation, one column per parameter: the rank of the true value among
        the thinned posterior draws (NaN where the fit failed).
    kept
        The number of thinned draws each rank is out of (rank ``r`` lies in ``0..kept``).
    pit
        The randomized PIT values ``(rank + V) / (kept + 1)`` that the tests use.
    truths
        The true values drawn from the prior, by simulation and parameter.
    fits
        One row per simulation: ``divergences``, ``max_rhat``, ``min_ess`` (over the ranked
        parameters), ``init`` (how a mixture's chains started), ``wall_time``, ``compile_time``,
        ``reused`` (a compiled model was reused), ``warnings`` and ``error``.
    tests
        One row per parameter: the ECDF uniformity test's ``p_value``, the Bonferroni
        ``threshold`` and ``reject``.
    alpha
        The family-wise false-alarm rate of the verdict: the probability that a correctly
        calibrated model is rejected for some parameter (Bonferroni over parameters).
    settings
        The run's settings (draws, tune, chains, max_draws, seed, ...).
    """

    ranks: pd.DataFrame
    kept: pd.DataFrame
    pit: pd.DataFrame
    truths: pd.DataFrame
    fits: pd.DataFrame
    tests: pd.DataFrame
    alpha: float
    settings: Mapping[str, Any] = field(default_factory=dict)

    @property
    def calibrated(self) -> bool:
        """True when no parameter's ranks reject uniformity at the family-wise rate :attr:`alpha`."""
        return not bool(self.tests["reject"].any())

    @property
    def problems(self) -> pd.DataFrame:
        """The simulations whose fit failed, diverged, or has R-hat above 1.01 or ESS below ``max_draws``.

        Mixtures also list fits with "no ML start": their ML search found no usable maximum, so
        their chains started from PyMC's default point. A column ``problem`` says which; the
        others are those of :attr:`fits`.
        """
        fits = self.fits
        failed = fits["error"].notna()
        flags = {
            "failed": failed,
            "divergences": fits["divergences"].fillna(0) > 0,
            f"R-hat > {RHAT_MAX}": fits["max_rhat"] > RHAT_MAX,
            "ESS < max_draws": fits["min_ess"] < self.settings.get("max_draws", 0),
            # a mixture whose ML search found no usable maximum started from PyMC's default point
            "no ML start": fits["init"].astype(str).str.startswith(NO_ML_START),
        }
        words = [", ".join(name for name, flag in flags.items() if flag.loc[i]) for i in fits.index]
        out = fits.assign(problem=words)
        return out[out["problem"] != ""]

    def __repr__(self) -> str:
        n = len(self.fits)
        failed = int(self.fits["error"].notna().sum())
        verdict = "calibrated" if self.calibrated else "NOT calibrated"
        rejected = list(self.tests.index[self.tests["reject"]])
        lines = [
            f"<SBCResult: {n} simulations ({failed} failed), {len(self.tests)} parameters: {verdict} at a "
            f"family-wise false-alarm rate of {self.alpha:g} (ECDF test, Bonferroni)"
        ]
        if rejected:
            lines.append(f"  uniformity rejected for {rejected}")
        problems = self.problems["problem"].str.split(", ").explode().value_counts()
        for what, count in problems.items():
            lines.append(f"  {count} simulations with {what}")
        return "\n".join(lines) + ">"

    def plot_ranks(self, var_names: str | Sequence[str] | None = None, **kwargs: Any) -> Figure:
        """Rank histograms: :func:`bayesmix.plots.plot_sbc_ranks`."""
        from .plots import plot_sbc_ranks

        return plot_sbc_ranks(self, var_names, **kwargs)

    def plot_ecdf(self, var_names: str | Sequence[str] | None = None, **kwargs: Any) -> Figure:
        """ECDF differences with simultaneous bands: :func:`bayesmix.plots.plot_sbc_ecdf`."""
        from .plots import plot_sbc_ecdf

        return plot_sbc_ecdf(self, var_names, **kwargs)


def frames(
    records: list[dict[str, Any]], truths: list[Mapping[str, float]], names: list[str]
) -> dict[str, Any]:
    """The per-simulation tables of a run from the workers' records (in simulation order)."""
    index = pd.RangeIndex(len(records), name="simulation")
    by_index = {r["index"]: r for r in records}
    ordered = [by_index[i] for i in range(len(records))]

    def table(key: str, dtype: str) -> pd.DataFrame:
        data = [[r[key].get(name, np.nan) for name in names] for r in ordered]
        return pd.DataFrame(data, index=index, columns=names, dtype=dtype)

    fits = pd.DataFrame(
        {
            "divergences": [r.get("divergences") for r in ordered],
            "max_rhat": [r.get("max_rhat", np.nan) for r in ordered],
            "min_ess": [r.get("min_ess", np.nan) for r in ordered],
            "init": [r.get("init", "") for r in ordered],
            "wall_time": [r.get("wall_time", np.nan) for r in ordered],
            "compile_time": [r.get("compile_time", np.nan) for r in ordered],
            "reused": [r.get("reused") for r in ordered],
            "warnings": ["; ".join(r.get("warnings", [])) for r in ordered],
            "error": [r.get("error") for r in ordered],
        },
        index=index,
    )
    return {
        "ranks": table("ranks", "Int64"),
        "kept": table("kept", "Int64"),
        "pit": table("pit", "float64"),
        "truths": pd.DataFrame([dict(t) for t in truths], index=index, columns=names),
        "fits": fits,
    }
