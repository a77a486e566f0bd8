"""Plots of a calibration run: rank histograms and ECDF differences with simultaneous bands.

Both take an :class:`~bayesmix.calibration.result.SBCResult`, draw one panel per parameter
and return the matplotlib ``Figure``. They are exported as :func:`bayesmix.plots.plot_sbc_ranks`
and :func:`bayesmix.plots.plot_sbc_ecdf`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from scipy import stats

from .ranks import ecdf_band, ecdf_counts, null_size
from .result import SBCResult

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["plot_sbc_ecdf", "plot_sbc_ranks"]

_COLUMNS = 4
_REJECTED = "C3"


def _chosen(result: SBCResult, var_names: str | Sequence[str] | None, plot: str) -> list[str]:
    if not isinstance(result, SBCResult):
        raise TypeError(f"{plot} needs the result of bx.sbc, got {type(result).__name__}")
    names = [str(c) for c in result.pit.columns]
    if var_names is None:
        return names
    chosen = [var_names] if isinstance(var_names, str) else list(var_names)
    unknown = [v for v in chosen if v not in names]
    if unknown or not chosen:
        raise ValueError(f"unknown parameter(s) {unknown}; this run's parameters: {names}")
    return chosen


def _grid(n: int, panel: tuple[float, float]) -> tuple[Figure, list[Axes]]:
    import matplotlib.pyplot as plt  # the plotting stack loads only when a plot is drawn

    cols = min(n, _COLUMNS)
    rows = -(-n // cols)
    fig, axes = plt.subplots(
        rows, cols, figsize=(panel[0] * cols, panel[1] * rows), layout="constrained", squeeze=False
    )
    flat = list(axes.ravel())
    for ax in flat[n:]:
        ax.set_visible(False)
    return fig, flat[:n]


def plot_sbc_ranks(
    result: SBCResult,
    var_names: str | Sequence[str] | None = None,
    *,
    bins: int | None = None,
    prob: float = 0.99,
) -> Figure:
    """Histogram of each parameter's normalized ranks, with the band uniform ranks fill.

    The ranks are shown as PIT values ``(rank + V) / (kept + 1)`` in ``(0, 1)`` so that runs
    whose ranks are out of different numbers of draws share one scale. Under calibration
    every bin count is Binomial(n, 1 / bins); the grey band is its central ``prob`` interval
    (pointwise, as in Talts et al., 2018). Read the shape: a U (truths in the tails) means
    posteriors too narrow, a hump means too wide, a slope means biased. Parameters whose
    uniformity test rejects are drawn in red.

    Parameters
    ----------
    result
        The result of :func:`bayesmix.sbc`.
    var_names
        Parameter name(s); default all.
    bins
        Number of bins; default about one per five simulations, between 5 and 20.
    prob
        Probability of the pointwise band.

    Returns
    -------
    matplotlib.figure.Figure
    """
    names = _chosen(result, var_names, "plot_sbc_ranks")
    if not isinstance(prob, int | float) or not 0 < prob < 1:
        raise ValueError(f"prob must be a number strictly between 0 and 1, got {prob!r}")
    fig, axes = _grid(len(names), (2.8, 2.2))
    for ax, name in zip(axes, names, strict=True):
        pit = result.pit[name].dropna().to_numpy(dtype=float)
        k = int(bins) if bins is not None else int(np.clip(pit.size // 5, 5, 20))
        lo, hi = stats.binom.interval(prob, pit.size, 1 / k)
        ax.axhspan(lo, hi, color="0.85", zorder=0)
        ax.axhline(pit.size / k, color="0.5", lw=0.8, zorder=1)
        rejected = bool(result.tests.loc[name, "reject"])
        ax.hist(
            pit, bins=list(np.linspace(0, 1, k + 1)), color=_REJECTED if rejected else "C0", edgecolor="white"
        )
        _label(ax, result, name)
        ax.set_xlim(0, 1)
        ax.set_xlabel("normalized rank")
    fig.suptitle(f"SBC rank histograms ({len(result.pit)} simulations; band: pointwise {prob:.0%})")
    return fig


def plot_sbc_ecdf(
    result: SBCResult, var_names: str | Sequence[str] | None = None, *, alpha: float | None = None
) -> Figure:
    """ECDF of each parameter's normalized ranks minus the uniform CDF, with its simultaneous band.

    Under calibration the line stays inside the band over its whole length with
    probability ``1 - alpha / number of parameters``; by default ``alpha`` is the run's
    family-wise rate, so the band is the test of :attr:`SBCResult.tests` drawn (Säilynoja et
    al., 2022): a line that leaves its band is a rejected parameter (red). Read it like the
    histogram, integrated: a line above 0 at the left means truths too often low (posterior
    biased up); above 0 in the left half and below it in the right half means truths in both
    tails (posteriors too narrow); below and then above means too wide.

    Parameters
    ----------
    result
        The result of :func:`bayesmix.sbc`.
    var_names
        Parameter name(s); default all.
    alpha
        Family-wise false-alarm rate of the bands (default the run's ``alpha``).

    Returns
    -------
    matplotlib.figure.Figure
    """
    names = _chosen(result, var_names, "plot_sbc_ecdf")
    alpha = result.alpha if alpha is None else alpha
    if not isinstance(alpha, int | float) or not 0 < alpha < 1:
        raise ValueError(f"alpha must be a number strictly between 0 and 1, got {alpha!r}")
    n_tests = len(result.tests)
    level = 1 - alpha / n_tests
    fig, axes = _grid(len(names), (2.8, 2.2))
    for ax, name in zip(axes, names, strict=True):
        pit = result.pit[name].dropna().to_numpy(dtype=float)
        z, lower, upper = ecdf_band(pit.size, level, size=null_size(n_tests, alpha))
        ax.fill_between(z, lower - z, upper - z, step="mid", color="0.85", zorder=0)
        ax.axhline(0, color="0.5", lw=0.8, zorder=1)
        rejected = bool(result.tests.loc[name, "reject"])
        ecdf = ecdf_counts(pit, z) / pit.size
        ax.plot(z, ecdf - z, color=_REJECTED if rejected else "C0", drawstyle="steps-mid")
        _label(ax, result, name)
        ax.set_xlim(0, 1)
        ax.set_xlabel("normalized rank")
    fig.suptitle(
        f"SBC ECDF - uniform ({len(result.pit)} simulations; simultaneous bands at family-wise {alpha:g})"
    )
    return fig


def _label(ax: Any, result: SBCResult, name: str) -> None:
    p: float = result.tests["p_value"].astype(float)[name]
    ax.set_title(f"{name}\np = {p:.3g}", fontsize="small")
