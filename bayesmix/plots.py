"""Plots of fitted models: shrinkage, mixture densities, class membership, Bayes beside ML, MCMC checks.

Every function takes a results object (:class:`~bayesmix.Fit` or :class:`~bayesmix.MixtureFit`)
and draws what that object already computes; nothing here fits or summarizes anew. The
matplotlib plots accept ``ax=`` (an ``Axes`` to draw into; default a new figure) and return the
``Axes``; :func:`plot_trace` and :func:`plot_rank` use arviz-plots and return its
``PlotCollection``. matplotlib and arviz-plots are imported only when a plot is drawn.

>>> import bayesmix as bx
>>> sleep = bx.datasets.load("sleepstudy")
>>> fit = bx.mixed("Reaction ~ Days + (Days | Subject)", sleep).fit()  # doctest: +SKIP
>>> ax = bx.plots.plot_shrinkage(fit, "Subject", "Days")  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import numpy.typing as npt
import pandas as pd
import xarray as xr

from .results.fit import Fit
from .results.mixture import MixtureFit
from .spec.families import Family, PointMass

if TYPE_CHECKING:
    from matplotlib.axes import Axes

__all__ = [
    "plot_class_probabilities",
    "plot_compare",
    "plot_density",
    "plot_rank",
    "plot_shrinkage",
    "plot_trace",
]

FloatArray = npt.NDArray[np.float64]
_GRID_POINTS = 400  # density grid: fine enough for a class whose SD is 1/50 of the data's range
_GRID_ROWS = 40_000  # with covariates: grid points x covariate patterns evaluated per draw, at most
_GRID_PAD = 0.2  # the grid extends this share of the data's range beyond each end


def _require(fit: object, kind: type | tuple[type, ...], plot: str) -> None:
    if not isinstance(fit, kind):
        names = " or ".join(f"bx.{k.__name__}" for k in (kind if isinstance(kind, tuple) else (kind,)))
        raise TypeError(f"{plot} needs a {names}, got {type(fit).__name__}")


def _axes(ax: Axes | None, size: tuple[float, float]) -> Axes:
    """``ax``, or the axes of a new figure of ``size`` inches."""
    if ax is not None:
        return ax
    import matplotlib.pyplot as plt  # the plotting stack loads only when a plot is drawn

    _, new = plt.subplots(figsize=size, layout="constrained")
    return new


def _check_prob(prob: float) -> None:
    if not isinstance(prob, int | float) or not 0 < prob < 1:
        raise ValueError(f"prob must be a number strictly between 0 and 1, got {prob!r}")


# ----- hierarchical models -----------------------------------------------------------------


def plot_shrinkage(fit: Fit, group: str, term: str = "Intercept", *, ax: Axes | None = None) -> Axes:
    """Each group's own estimate of ``term`` and where the hierarchical model pulls it.

    For every level of the grouping factor ``group``: the no-pooling estimate (open circle;
    least squares within the level), an arrow to the partially pooled estimate (filled
    circle; the posterior mean of the level's coefficient, fixed effect plus random effect)
    and, beside it, the latter's credible interval. Levels run along the x-axis ordered by
    their number of rows (then by the no-pooling estimate); point area grows with the rows.
    Horizontal lines mark the complete-pooling estimate (one least-squares fit on all rows)
    and the population mean (posterior mean of the fixed effect of ``term``; 0 when ``term``
    has no fixed effect). Arrows pointing at the lines show shrinkage; small groups and
    extreme estimates move most (a level can also move away from the lines when its
    terms' estimates are correlated with those of other terms). Levels whose no-pooling fit
    is not identified (too few rows) have no open circle and no arrow.

    Parameters
    ----------
    fit
        A Gaussian hierarchical fit.
    group
        A grouping factor of the model, e.g. ``"Subject"``.
    term
        A term varying by ``group``, e.g. ``"Intercept"`` or ``"Days"``.
    ax
        Axes to draw into; default a new figure.

    Returns
    -------
    matplotlib.axes.Axes

    Raises
    ------
    ValueError
        ``group`` is not a grouping factor or ``term`` does not vary by it (the message lists
        the valid ones); the family is not Gaussian.

    Notes
    -----
    The numbers are those of :meth:`bayesmix.Fit.shrinkage` at 95%.
    """
    _require(fit, Fit, "plot_shrinkage")
    table = fit.shrinkage(group)
    terms = list(dict.fromkeys(table.index.get_level_values("term")))
    if term not in terms:
        raise ValueError(f"no term {term!r} varies by {group!r}; terms varying by {group!r}: {terms}")
    rows = table.xs(term, level="term").reset_index()
    rows = rows.sort_values(["n", "no_pooling"], kind="stable", na_position="last").reset_index(drop=True)
    fixed = fit.design.fixed_names
    population = float(fit.draws()[term].mean()) if term in fixed else 0.0
    x = np.arange(len(rows), dtype=float)
    area = 12.0 + 48.0 * rows["n"].to_numpy() / rows["n"].max()
    ax = _axes(ax, (max(6.0, 0.4 * len(rows) + 2.0), 4.5))
    ax.axhline(rows["complete_pooling"].iloc[0], color="0.3", ls="--", lw=1, label="complete pooling")
    label = "population mean (posterior)" if term in fixed else "population mean (0: no fixed effect)"
    ax.axhline(population, color="C3", ls=":", lw=1.5, label=label)
    ax.vlines(
        x + 0.25,
        rows["lower"],
        rows["upper"],
        color="C1",
        lw=1,
        alpha=0.5,
        label="95% credible interval (partial pooling)",
    )
    ax.scatter(
        x,
        rows["no_pooling"],
        s=area,
        facecolors="white",
        edgecolors="C0",
        lw=1.5,
        zorder=3,
        label="no pooling (least squares in the group)",
    )
    ax.scatter(
        x, rows["partial_pooling"], s=area, color="C1", zorder=4, label="partial pooling (posterior mean)"
    )
    _shrinkage_arrows(ax, x, rows["no_pooling"].to_numpy(), rows["partial_pooling"].to_numpy(), area)
    ax.set_xticks(x, [str(level) for level in rows["level"]], rotation=90 if len(rows) > 8 else 0)
    if len(rows) > 60:
        ax.set_xticks([])
    n = rows["n"]
    sizes = f"n = {n.iloc[0]} each" if n.min() == n.max() else f"n from {n.min()} to {n.max()}; area ~ n"
    ax.set_xlabel(f"{group}, ordered by its rows ({sizes})")
    ax.set_ylabel(f"{term}: per-{group} coefficient")
    ax.set_title(f"Shrinkage of {term} by {group}")
    ax.legend(fontsize="small", loc="best")
    return ax


def _shrinkage_arrows(ax: Axes, x: FloatArray, start: FloatArray, end: FloatArray, area: FloatArray) -> None:
    """One arrow per level from the no-pooling to the partially pooled estimate (``gid="shrinkage"``).

    Each arrow starts and stops at the rim of its markers (radius ``sqrt(area) / 2`` points).
    """
    from matplotlib.patches import FancyArrowPatch

    for xi, a, b, radius in zip(x, start, end, np.sqrt(area) / 2, strict=True):
        if not (np.isfinite(a) and np.isfinite(b)):
            continue
        arrow = FancyArrowPatch(
            (xi, a),
            (xi, b),
            arrowstyle="-|>",
            mutation_scale=8,
            color="0.25",
            lw=1,
            zorder=2,
            shrinkA=radius,
            shrinkB=radius,
        )
        arrow.set_gid("shrinkage")
        ax.add_patch(arrow)


# ----- mixtures ----------------------------------------------------------------------------


def _class_labels(fit: MixtureFit) -> list[str]:
    """``class 1``, ...; with the family (``class 1: pointmass(0)``) when the classes' families differ."""
    families = fit.spec.family_names()
    if len(set(families)) == 1:
        return [f"class {c}" for c in fit.spec.classes]
    return [f"class {c}: {f}" for c, f in zip(fit.spec.classes, families, strict=True)]


def _density_grid(fit: MixtureFit) -> tuple[FloatArray, bool]:
    """Values at which to draw the density and whether the response is discrete."""
    families = [f for f in fit.spec.families if isinstance(f, Family)]
    y = fit.design.y
    lo, hi = float(y.min()), float(y.max())
    span = hi - lo if hi > lo else max(abs(hi), 1.0)
    if all(f.discrete for f in families):
        top = hi + np.ceil(_GRID_PAD * span)
        return np.arange(max(np.floor(lo - _GRID_PAD * span), 0.0), top + 1.0), True
    start, stop = lo - _GRID_PAD * span, hi + _GRID_PAD * span
    supports = {f.support for f in families}
    eps = 1e-3 * span
    if supports <= {"positive", "unit"}:
        start = max(start, eps)
    if supports == {"unit"}:
        stop = min(stop, 1.0 - eps)
    # the density is averaged over the data's covariate patterns: fewer points when there are many
    patterns = len(np.unique(np.hstack([fit.design.X, fit.design.W]), axis=0))
    grid = np.linspace(start, stop, int(np.clip(_GRID_ROWS // patterns, 100, _GRID_POINTS)))
    masses = [f.value for f in fit.spec.families if isinstance(f, PointMass)]
    return grid[~np.isin(grid, masses)], False  # a point mass has no density; drawn apart


def plot_density(fit: MixtureFit, *, bins: int = 40, prob: float = 0.95, ax: Axes | None = None) -> Axes:
    """The fitted mixture density over the histogram of the response.

    Draws the histogram of the response (normalised to unit area), the posterior mean of the
    marginal mixture density (:meth:`bayesmix.MixtureFit.density`) with its ``prob``
    credible band, and each class's weighted density ``pi_j f_j(y)`` (posterior mean; the
    classes add up to the mixture). With covariates the densities are averaged over the
    fitted rows' covariates, as the histogram is. A discrete response is drawn on the
    integers (the bars are the observed proportions, ``bins`` is ignored); a point-mass
    class, which has no density, is a vertical line labelled with its class probability.

    Parameters
    ----------
    fit
        A mixture fit (not binomial: its density depends on the trials).
    bins
        Number of histogram bins (continuous response).
    prob
        Probability of the credible band.
    ax
        Axes to draw into; default a new figure.

    Returns
    -------
    matplotlib.axes.Axes

    Raises
    ------
    ValueError
        ``bins`` is not a positive integer, ``prob`` is not in (0, 1), or the model is binomial.
    """
    _require(fit, MixtureFit, "plot_density")
    if isinstance(bins, bool) or not isinstance(bins, int | np.integer) or bins < 1:
        raise ValueError(f"bins must be a positive integer, got {bins!r}")
    _check_prob(prob)
    grid, discrete = _density_grid(fit)
    frame = fit.density(grid, prob)
    y, name = fit.design.y, fit.design.response_name
    ax = _axes(ax, (7.5, 4.5))
    edges: Any = np.arange(grid[0] - 0.5, grid[-1] + 1.0) if discrete else bins
    ax.hist(y, bins=edges, density=True, color="0.82", edgecolor="white", label=f"{name} (data)")
    band = f"{prob:.0%} credible band"
    if discrete:
        ax.vlines(grid, frame["lower"], frame["upper"], color="C0", lw=3, alpha=0.35, label=band)
        ax.plot(grid, frame["mean"], "o", color="C0", ms=4, label="mixture (posterior mean)")
    else:
        ax.fill_between(grid, frame["lower"], frame["upper"], color="C0", alpha=0.3, lw=0, label=band)
        ax.plot(grid, frame["mean"], color="C0", lw=2, label="mixture (posterior mean)")
    style: dict[str, Any] = {"ls": "--", "lw": 1.2} | ({"marker": ".", "ms": 5} if discrete else {})
    for j, (label, text) in enumerate(zip(fit.spec.classes, _class_labels(fit), strict=True)):
        family = fit.spec.families[j]
        if isinstance(family, PointMass) and not discrete:
            share = float(fit.class_probabilities()["probability"].iloc[j])
            text = f"class {label}: point mass at {family.value:g} (probability {share:.2f})"
            ax.axvline(family.value, color=f"C{j + 1}", label=text, **style)
            continue
        ax.plot(grid, frame[f"class {label}"], color=f"C{j + 1}", **style, label=f"{text} (weighted)")
    ax.set_xlabel(name)
    ax.set_ylabel("probability" if discrete else "density")
    ax.set_title(f"{fit.spec.k}-class mixture: fitted density of {name}")
    ax.legend(fontsize="small")
    return ax


def _against(fit: MixtureFit, against: str | pd.Series | None) -> tuple[FloatArray, str]:
    """The x values (one per fitted row) and their label."""
    design = fit.design
    if isinstance(against, pd.Series):
        values = against.reindex(design.index)
        if values.isna().any():
            missing = list(design.index[values.isna().to_numpy()][:5])
            raise ValueError(f"against has no value for the fitted rows {missing} (first five shown)")
        if not pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values):
            raise ValueError(f"against must be numeric, got a Series of dtype {values.dtype}")
        return values.to_numpy(dtype=float), str(against.name or "covariate")
    columns = {design.response_name: design.y}
    for names, matrix in ((design.coef_names, design.X), (design.class_coef_names, design.W)):
        for k, column in enumerate(names):
            if column != "Intercept":
                columns.setdefault(column, matrix[:, k])
    if against is None:
        return design.y, design.response_name
    if against not in columns:
        raise ValueError(
            f"no column {against!r} in this model's data; choose the response or a covariate of the "
            f"component or class formula: {list(columns)} (or pass a pandas Series indexed as the data)"
        )
    return np.asarray(columns[against], dtype=float), str(against)


def plot_class_probabilities(
    fit: MixtureFit, against: str | pd.Series | None = None, *, ax: Axes | None = None
) -> Axes:
    """Posterior probability of each class for every observation, against the response or a covariate.

    One colour per class (as in :func:`plot_density`); each point is one observation's
    ``P(class j | y_i, x_i)`` (:meth:`bayesmix.MixtureFit.posterior_class_probabilities`, the
    posterior mean), so the classes' points above one x add up to 1. Where the probabilities
    depend on the response alone (no covariates) and the x-axis is the response, the points
    of a class are joined by a line. Read it as a soft classification: where one class is
    near 1 the data say which class a value came from; where several classes share the
    probability they overlap.

    Parameters
    ----------
    fit
        A mixture fit.
    against
        ``None`` (default): the response. A column name: the response or a covariate column of
        the component or class design (as the formula names it, e.g. ``"x"``). A
        ``pandas.Series`` indexed as the fitted data (any other variable).
    ax
        Axes to draw into; default a new figure.

    Returns
    -------
    matplotlib.axes.Axes

    Raises
    ------
    ValueError
        ``against`` names no such column (the message lists the valid ones), or a Series lacks
        some fitted rows.
    """
    _require(fit, MixtureFit, "plot_class_probabilities")
    x, label = _against(fit, against)
    probs = cast(pd.DataFrame, fit.posterior_class_probabilities())  # draws=False: the posterior mean
    design = fit.design
    joined = (
        np.array_equal(x, design.y)
        and design.coef_names in ((), ("Intercept",))
        and design.class_coef_names == ("Intercept",)
    )
    order = np.argsort(x, kind="stable")
    ax = _axes(ax, (7.5, 4.5))
    for j, (name, text) in enumerate(zip(probs.columns, _class_labels(fit), strict=True)):
        p = probs[name].to_numpy()
        ax.scatter(x, p, s=14, color=f"C{j + 1}", alpha=0.7, label=text, zorder=3)
        if joined:
            ax.plot(x[order], p[order], color=f"C{j + 1}", lw=1, alpha=0.8)
    ax.set_ylim(-0.03, 1.03)
    ax.set_xlabel(label)
    ax.set_ylabel("posterior probability of the class")
    ax.set_title("Posterior class membership")
    ax.legend(fontsize="small", loc="center right")
    return ax


# ----- Bayes beside the frequentist fit -----------------------------------------------------


def plot_compare(
    fit: Fit | MixtureFit, *, prob: float = 0.95, ax: Axes | None = None, **compare_kwargs: Any
) -> Axes:
    """Forest plot: each parameter's posterior interval beside its ML/REML confidence interval.

    One row per parameter of ``fit.compare(prob=prob, **compare_kwargs)``: the posterior
    ``prob`` interval with its mean (upper mark) and the frequentist confidence interval with
    its estimate (lower mark). Parameters live on very different scales (an intercept of
    250, a correlation of 0.1), so each row is drawn in its own units: the x-axis is the
    distance from that parameter's posterior mean in posterior SDs, ``(value - mean) / sd``.
    The posterior mean is then always at 0 and the estimate at ``-diff_sd`` of the table; the
    widths of the two intervals compare directly. The intervals in the parameters' own units
    are printed on the right, under coloured headers that serve as the legend (blue: the
    posterior; orange: the reference named by ``compare``).

    Parameters
    ----------
    fit
        A hierarchical or mixture fit.
    prob
        Probability of the posterior interval, passed to ``compare``.
    ax
        Axes to draw into; default a new figure.
    **compare_kwargs
        Passed to :meth:`bayesmix.Fit.compare` (``reference``, ``reml``).

    Returns
    -------
    matplotlib.axes.Axes
    """
    _require(fit, (Fit, MixtureFit), "plot_compare")
    _check_prob(prob)
    table = fit.compare(prob=prob, **compare_kwargs)
    reference = str(table.attrs.get("reference", "frequentist fit"))
    sd = table["sd"].where(table["sd"] > 0, 1.0).to_numpy()
    mean = table["mean"].to_numpy()

    def z(column: str) -> FloatArray:
        return np.asarray((table[column].to_numpy() - mean) / sd, dtype=float)

    rows = np.arange(len(table), dtype=float)
    ax = _axes(ax, (11.0, 0.45 * len(table) + 1.5))
    ax.axvline(0, color="0.6", lw=1, zorder=0)
    ax.grid(axis="x", color="0.9", zorder=-1)
    ax.hlines(rows - 0.15, z("lower"), z("upper"), color="C0", lw=2.5)
    ax.plot(z("mean"), rows - 0.15, "o", color="C0", ms=5)
    ax.hlines(rows + 0.15, z("ci_lower"), z("ci_upper"), color="C1", lw=2.5)
    ax.plot(z("estimate"), rows + 0.15, "D", color="C1", ms=5)
    ax.set_yticks(rows, [str(name) for name in table.index])
    ax.set_ylim(len(table) - 0.5, -0.5)  # first parameter on top
    ax.set_xlabel("distance from the posterior mean, in posterior SDs (each row on its own scale)")
    ax.set_title("Posterior beside the frequentist fit")
    _compare_text(ax, table, rows, prob, reference)
    return ax


def _fmt(lo: float, mid: float, hi: float) -> str:
    return "(not estimated)" if not np.isfinite(mid) else f"{mid:.4g} [{lo:.4g}, {hi:.4g}]"


def _compare_text(ax: Axes, table: pd.DataFrame, rows: FloatArray, prob: float, reference: str) -> None:
    """Right of the axes, in each row's units: the posterior and the reference, in their colours.

    The coloured column headers are the legend: blue circle and bar, the posterior mean and
    interval; orange diamond and bar, the frequentist estimate and confidence interval.
    """
    columns = (
        ("C0", f"posterior\nmean [{prob:.0%} interval]", ("lower", "mean", "upper")),
        ("C1", f"{reference}\nestimate [confidence interval]", ("ci_lower", "estimate", "ci_upper")),
    )
    texts = [[_fmt(r[lo], r[mid], r[hi]) for _, r in table.iterrows()] for _, _, (lo, mid, hi) in columns]
    width = max(len(t) for t in [*texts[0], "mean [95% interval]"])
    offsets = (10.0, 10.0 + 5.0 * width + 15.0)  # about 5 points per character at the small font
    for offset, (color, header, _), column in zip(offsets, columns, texts, strict=True):
        place: dict[str, Any] = {
            "textcoords": "offset points",
            "xytext": (offset, 0),
            "color": color,
            "fontsize": "small",
        }
        ax.annotate(header, (1, 1), xycoords="axes fraction", va="bottom", fontweight="bold", **place)
        for y, text in zip(rows, column, strict=True):
            ax.annotate(text, (1, y), xycoords=("axes fraction", "data"), va="center", **place)


# ----- MCMC diagnostics (arviz-plots) -------------------------------------------------------


def _draws_tree(fit: Fit | MixtureFit, var_names: str | Sequence[str] | None, plot: str) -> xr.DataTree:
    """The named parameters' draws (and the sampler statistics, for divergences) as a DataTree."""
    _require(fit, (Fit, MixtureFit), plot)
    draws = fit.draws()
    names = list(map(str, draws.data_vars))
    if var_names is None:
        chosen = names
    else:
        chosen = [var_names] if isinstance(var_names, str) else list(var_names)
        unknown = [v for v in chosen if v not in names]
        if unknown or not chosen:
            raise ValueError(f"unknown parameter(s) {unknown}; this fit's parameters: {names}")
    groups = {"posterior": draws[chosen]}
    if "sample_stats" in fit.idata.children:
        groups["sample_stats"] = fit.idata["sample_stats"].to_dataset()
    return xr.DataTree.from_dict(groups)


def _figure_kwargs(kwargs: dict[str, Any], size: tuple[float, float]) -> dict[str, Any]:
    """arviz-plots keyword arguments with a figure of ``size`` inches and constrained layout by default."""
    figure = {"figsize": size, "figsize_units": "inches", "layout": "constrained"}
    return {**kwargs, "figure_kwargs": figure | dict(kwargs.get("figure_kwargs", {}))}


def plot_trace(fit: Fit | MixtureFit, var_names: str | Sequence[str] | None = None, **kwargs: Any) -> Any:
    """Trace and marginal density of each parameter, one line per chain (arviz-plots ``plot_trace_dist``).

    Parameters are those of ``fit.draws()`` under their public names (``Days``,
    ``sd(Days|Subject)``, ``Intercept[2]``...). Chains that mix show as overlapping,
    stationary traces and matching densities; divergent transitions are marked under the
    traces.

    Parameters
    ----------
    fit
        A hierarchical or mixture fit.
    var_names
        Parameter name(s); default all.
    **kwargs
        Passed to arviz-plots (e.g. ``figure_kwargs={"figsize": (8, 12)}``).

    Returns
    -------
    arviz_plots.PlotCollection

    Raises
    ------
    ValueError
        An unknown parameter name (the message lists the fit's parameters).
    """
    import arviz_plots as azp

    tree = _draws_tree(fit, var_names, "plot_trace")
    size = (10.0, 1.7 * len(tree["posterior"].data_vars) + 0.6)
    return azp.plot_trace_dist(tree, **_figure_kwargs({"compact": False} | kwargs, size))


def plot_rank(fit: Fit | MixtureFit, var_names: str | Sequence[str] | None = None, **kwargs: Any) -> Any:
    """Fractional-rank Δ-ECDF of each parameter, one line per chain (arviz-plots ``plot_rank``).

    The draws of all chains are ranked together; when every chain samples the same
    distribution each chain's ranks are uniform and its line stays near 0. Points where a
    chain departs significantly (arviz-plots' multi-chain test) are highlighted. Read it as
    the rank counterpart of :func:`plot_trace`, and beside R-hat in
    :meth:`bayesmix.Fit.diagnostics`.

    Parameters
    ----------
    fit
        A hierarchical or mixture fit.
    var_names
        Parameter name(s); default all.
    **kwargs
        Passed to arviz-plots (e.g. ``figure_kwargs={"figsize": (8, 12)}``).

    Returns
    -------
    arviz_plots.PlotCollection

    Raises
    ------
    ValueError
        An unknown parameter name (the message lists the fit's parameters).
    """
    import arviz_plots as azp

    tree = _draws_tree(fit, var_names, "plot_rank")
    n = len(tree["posterior"].data_vars)
    size = (3.0 * min(n, 4), 2.4 * -(-n // 4) + 0.4)  # arviz-plots wraps at 4 columns
    return azp.plot_rank(tree, **_figure_kwargs(kwargs, size))


# ----- simulation-based calibration (bx.sbc) ------------------------------------------------
# Drawn beside the run they show (bayesmix/calibration/plots.py) and offered here with the others.
from .calibration.plots import plot_sbc_ecdf, plot_sbc_ranks  # noqa: E402  (appended section)

__all__ += ["plot_sbc_ecdf", "plot_sbc_ranks"]


# ----- meta-analysis: the forest plot ---------------------------------------------------------
def plot_forest(fit: Fit, group: str | None = None, *, prob: float = 0.95, ax: Axes | None = None) -> Axes:
    """Forest plot: each level's own estimate beside its partially pooled posterior, then the pooled rows.

    One row per level of ``group`` (a random-intercept factor, as in a meta-analysis
    ``y | se(s) ~ 1 + (1 | study)``): the observed estimate with its ``prob`` interval
    (open square, thin line: ``y_j ± z s_j`` with known SDs) and, just below it, the posterior
    mean and equal-tailed interval of the level's true value (filled circle, thick line). Under
    them: the pooled estimate (diamond spanning its interval) and the prediction interval for a
    new level (bar). The numbers are :func:`bayesmix.results.forest.forest_table`'s.

    Parameters
    ----------
    fit
        A Gaussian :class:`~bayesmix.Fit` with a random intercept per level of ``group``.
    group
        The grouping factor; may be left out when the model has one.
    prob
        Probability of every interval.
    ax
        Axes to draw into; default a new figure.

    Returns
    -------
    matplotlib.axes.Axes
    """
    from .results.forest import forest_table

    _require(fit, Fit, "plot_forest")
    _check_prob(prob)
    table = forest_table(fit, group, prob=prob)
    levels = table[table["kind"] == "level"]
    J = len(levels)
    ax = _axes(ax, (7.0, 0.45 * (J + 3) + 1.2))
    y = np.arange(J)[::-1] + 2.5  # first level on top; two rows below for the pooled rows
    ax.errorbar(
        levels["observed"], y + 0.15,
        xerr=[levels["observed"] - levels["observed_lower"], levels["observed_upper"] - levels["observed"]],
        fmt="s", mfc="white", color="0.35", lw=1, ms=5, label=f"observed, {prob:.0%} CI",
    )  # fmt: skip
    ax.errorbar(
        levels["mean"], y - 0.15,
        xerr=[levels["mean"] - levels["lower"], levels["upper"] - levels["mean"]],
        fmt="o", color="C0", lw=2.2, ms=5, label=f"partially pooled posterior, {prob:.0%} interval",
    )  # fmt: skip
    pooled, pred = table.loc["pooled"].to_dict(), table.loc["prediction"].to_dict()
    diamond_x = [pooled["lower"], pooled["mean"], pooled["upper"], pooled["mean"]]
    ax.fill(diamond_x, [1.0, 1.25, 1.0, 0.75], color="C3", label="pooled estimate")
    ax.plot([pred["lower"], pred["upper"]], [0.0, 0.0], color="C3", lw=3, solid_capstyle="butt")
    new_level = f"prediction, new {table.index.name}"
    ax.errorbar([pred["mean"]], [0.0], fmt="|", color="C3", ms=12, label=new_level)
    ax.axvline(pooled["mean"], color="C3", ls="--", lw=0.8)
    ax.set_yticks([*y, 1.0, 0.0], [*map(str, levels.index), "pooled", "prediction"])
    ax.set_ylim(-0.8, float(y.max()) + 0.8)
    ax.set_xlabel(fit.design.response_name)
    ax.set_ylabel(str(table.index.name))
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.1), ncol=2, fontsize="small", frameon=False)
    return ax


__all__ += ["plot_forest"]
