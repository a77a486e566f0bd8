"""bayesmix.plots on real small fits: each figure is saved as tests/artefacts/plots/*.png and checked."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from matplotlib.axes import Axes
from matplotlib.collections import LineCollection, PathCollection
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import FancyArrowPatch

import bayesmix as bx

pytestmark = pytest.mark.slow

ARTEFACTS = Path(__file__).parent / "artefacts" / "plots"
SMALL = {"draws": 200, "tune": 200, "chains": 2, "random_seed": 1, "progressbar": False}


@pytest.fixture(scope="module", autouse=True)
def agg_backend() -> Iterator[None]:
    """Draw off-screen, whatever the environment's default backend; close every figure afterwards."""
    backend = plt.get_backend()
    plt.switch_backend("Agg")
    yield
    plt.close("all")
    plt.switch_backend(backend)


@pytest.fixture(scope="module")
def sleep_fit() -> bx.Fit:
    sleep = bx.datasets.load("sleepstudy")
    return bx.mixed("Reaction ~ Days + (Days | Subject)", sleep).fit(**SMALL)


@pytest.fixture(scope="module")
def stamps() -> pd.DataFrame:
    return bx.datasets.load("stamps")


@pytest.fixture(scope="module")
def stamps_fit(stamps: pd.DataFrame) -> bx.MixtureFit:
    return bx.fmm(3, "thickness ~ 1", stamps).fit(**SMALL)


@pytest.fixture(scope="module")
def zip_fit() -> bx.MixtureFit:
    """A zero-inflated Poisson regression: a point mass at 0 and a Poisson class, y ~ x."""
    rng = np.random.default_rng(7)
    x = rng.normal(size=300)
    y = np.where(rng.random(300) < 0.3, 0, rng.poisson(np.exp(1.2 + 0.4 * x)))
    data = pd.DataFrame({"y": y, "x": x})
    return bx.fmm(2, "y ~ x", data, family=[bx.PointMass(0), "poisson"]).fit(**SMALL)


def save(figure: Figure, name: str) -> Path:
    """Save ``figure`` as a PNG artefact, check the file is there and non-empty, close the figure."""
    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTEFACTS / f"{name}.png"
    path.unlink(missing_ok=True)
    figure.savefig(path, dpi=80, bbox_inches="tight")
    plt.close(figure)
    assert path.is_file() and path.stat().st_size > 0, path
    return path


def line(ax: Axes, label: str) -> Line2D:
    (found,) = [ln for ln in ax.get_lines() if ln.get_label() == label]
    return found


def scatter(ax: Axes, label: str) -> PathCollection:
    (found,) = [c for c in ax.collections if isinstance(c, PathCollection) and c.get_label() == label]
    return found


# ----- shrinkage -------------------------------------------------------------------------------


@pytest.mark.parametrize("term", ["Intercept", "Days"])
def test_shrinkage_one_arrow_per_group(sleep_fit: bx.Fit, term: str) -> None:
    ax = sleep_fit.plot_shrinkage("Subject", term)
    table = sleep_fit.shrinkage("Subject").xs(term, level="term")
    arrows = [p for p in ax.patches if isinstance(p, FancyArrowPatch) and p.get_gid() == "shrinkage"]
    assert len(arrows) == len(table) == 18  # every Subject has 10 rows, so every no-pooling fit exists
    no_pool = scatter(ax, "no pooling (least squares in the group)").get_offsets()
    partial = scatter(ax, "partial pooling (posterior mean)").get_offsets()
    # levels in order of n (all 10 here), then of the no-pooling estimate
    np.testing.assert_allclose(no_pool[:, 1], np.sort(table["no_pooling"].to_numpy()), rtol=1e-12)
    by_level = table["partial_pooling"].reindex(table["no_pooling"].sort_values().index)
    np.testing.assert_allclose(partial[:, 1], by_level.to_numpy(), rtol=1e-12)
    np.testing.assert_array_equal(no_pool[:, 0], partial[:, 0])  # each arrow is vertical
    complete = line(ax, "complete pooling").get_ydata()
    np.testing.assert_allclose(complete, table["complete_pooling"].iloc[0], rtol=1e-12)
    population = line(ax, "population mean (posterior)").get_ydata()
    np.testing.assert_allclose(population, float(sleep_fit.draws()[term].mean()), rtol=1e-12)
    assert [t.get_text() for t in ax.get_xticklabels()] == list(by_level.index)
    save(ax.figure, f"shrinkage_{term}")


def test_shrinkage_bad_input(sleep_fit: bx.Fit, stamps_fit: bx.MixtureFit) -> None:
    with pytest.raises(ValueError, match=r"no grouping factor 'Patient'.*\['Subject'\]"):
        bx.plots.plot_shrinkage(sleep_fit, "Patient")
    with pytest.raises(ValueError, match=r"no term 'days'.*\['Intercept', 'Days'\]"):
        bx.plots.plot_shrinkage(sleep_fit, "Subject", "days")
    with pytest.raises(TypeError, match=r"plot_shrinkage needs a bx\.Fit, got MixtureFit"):
        bx.plots.plot_shrinkage(stamps_fit, "Subject")  # type: ignore[arg-type]


# ----- mixture density and class membership --------------------------------------------------


def test_density_integrates_to_one(stamps_fit: bx.MixtureFit, stamps: pd.DataFrame) -> None:
    ax = stamps_fit.plot_density(bins=30)
    mixture = line(ax, "mixture (posterior mean)")
    grid, density = mixture.get_xdata(), mixture.get_ydata()
    # The grid spans the data's range +- 20% of it: more than 3 posterior SDs of every class beyond
    # its mean (widest class: sd 0.014 around 0.099, grid 0.046 to 0.145), so less than 0.2% of the
    # mass lies outside; the trapezoid rule with step 1.8e-4 against the narrowest class's sd of
    # about 1.3e-3 errs by O((h / sd)^2 / 12) < 0.2%. 1% covers both with room.
    assert np.trapezoid(density, grid) == pytest.approx(1.0, abs=0.01)
    classes = [line(ax, f"class {c} (weighted)").get_ydata() for c in stamps_fit.spec.classes]
    np.testing.assert_allclose(np.sum(classes, axis=0), density, rtol=1e-8, atol=1e-12)
    bars = ax.patches
    assert len(bars) == 30
    area = sum(b.get_height() * b.get_width() for b in bars)  # type: ignore[attr-defined]
    assert area == pytest.approx(1.0, rel=1e-9)  # the histogram is density-normalised
    assert grid.min() < stamps["thickness"].min() and grid.max() > stamps["thickness"].max()
    save(ax.figure, "density")


def test_class_probabilities_sum_to_one(stamps_fit: bx.MixtureFit, stamps: pd.DataFrame) -> None:
    ax = bx.plots.plot_class_probabilities(stamps_fit)
    points = [scatter(ax, f"class {c}").get_offsets() for c in stamps_fit.spec.classes]
    assert all(p.shape == (len(stamps), 2) for p in points)
    for p in points:
        np.testing.assert_array_equal(p[:, 0], stamps["thickness"].to_numpy())  # x is the response
    np.testing.assert_allclose(np.sum([p[:, 1] for p in points], axis=0), 1.0, atol=1e-9)
    assert ax.get_xlabel() == "thickness"
    save(ax.figure, "class_probabilities")


def test_class_probabilities_against_a_series(stamps_fit: bx.MixtureFit, stamps: pd.DataFrame) -> None:
    order = pd.Series(np.arange(len(stamps))[::-1], index=stamps.index, name="reversed row")
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4))
    assert stamps_fit.plot_class_probabilities(order, ax=left) is left
    assert stamps_fit.plot_density(ax=right) is right
    x = scatter(left, "class 1").get_offsets()[:, 0]
    np.testing.assert_array_equal(x, order.to_numpy())
    assert left.get_xlabel() == "reversed row"
    save(fig, "class_probabilities_series_and_density")


def test_discrete_density_and_covariate(zip_fit: bx.MixtureFit) -> None:
    fig, (left, right) = plt.subplots(1, 2, figsize=(13, 4.5), layout="constrained")
    zip_fit.plot_density(ax=left)
    mixture = line(left, "mixture (posterior mean)")
    values, pmf = mixture.get_xdata(), mixture.get_ydata()
    np.testing.assert_array_equal(values, np.arange(values.size))  # the integers from 0
    # The grid runs to max(y) + 20% of the range, beyond which a Poisson with this fit's largest
    # mean (about exp(1.2 + 0.4 * 2.6) < 10, at the largest x) puts well below 1% of its mass.
    assert pmf.sum() == pytest.approx(1.0, abs=0.01)
    heights = np.array([b.get_height() for b in left.patches])  # type: ignore[attr-defined]
    y = zip_fit.design.y
    np.testing.assert_allclose(heights, np.bincount(y.astype(int), minlength=heights.size) / y.size)
    zip_fit.plot_class_probabilities("x", ax=right)
    point_mass = scatter(right, "class 1: pointmass(0)").get_offsets()
    np.testing.assert_array_equal(point_mass[:, 0], zip_fit.design.X[:, zip_fit.design.coef_names.index("x")])
    zeros = y == 0  # only a zero can come from the point mass
    assert (point_mass[~zeros, 1] < 1e-12).all()
    assert line(left, "class 2: poisson (weighted)").get_ydata()[0] > 0
    save(fig, "zip_density_and_class_probabilities")


def test_mixture_plots_bad_input(stamps_fit: bx.MixtureFit, sleep_fit: bx.Fit) -> None:
    with pytest.raises(ValueError, match=r"no column 'weight'.*\['thickness'\]"):
        stamps_fit.plot_class_probabilities("weight")
    with pytest.raises(ValueError, match="no value for the fitted rows"):
        stamps_fit.plot_class_probabilities(pd.Series([1.0, 2.0], index=[0, 1]))
    with pytest.raises(ValueError, match="against must be numeric"):
        stamps_fit.plot_class_probabilities(pd.Series("a", index=stamps_fit.design.index))
    with pytest.raises(ValueError, match="bins must be a positive integer"):
        stamps_fit.plot_density(bins=0)
    with pytest.raises(ValueError, match="prob must be a number strictly between 0 and 1"):
        stamps_fit.plot_density(prob=1.5)
    with pytest.raises(TypeError, match=r"plot_density needs a bx\.MixtureFit, got Fit"):
        bx.plots.plot_density(sleep_fit)  # type: ignore[arg-type]


# ----- posterior beside the frequentist fit --------------------------------------------------


def check_forest(ax: Axes, table: pd.DataFrame) -> None:
    """One row per parameter, the posterior mean at 0 and the estimate at -diff_sd."""
    assert [t.get_text() for t in ax.get_yticklabels()] == list(table.index)
    bars = [c for c in ax.collections if isinstance(c, LineCollection)]
    assert [len(b.get_segments()) for b in bars] == [len(table), len(table)]
    (estimates,) = [ln for ln in ax.get_lines() if ln.get_marker() == "D"]
    np.testing.assert_allclose(estimates.get_xdata(), -table["diff_sd"].to_numpy(), rtol=1e-10)
    (means,) = [ln for ln in ax.get_lines() if ln.get_marker() == "o"]
    np.testing.assert_allclose(means.get_xdata(), 0.0, atol=1e-12)
    # the right-hand text: a header and one line per parameter for each side
    assert len(ax.texts) == 2 * (len(table) + 1)


def test_compare_forest_hierarchical(sleep_fit: bx.Fit) -> None:
    ax = sleep_fit.plot_compare()
    table = sleep_fit.compare()
    check_forest(ax, table)
    assert len(table) == 6
    save(ax.figure, "compare_hierarchical")


def test_compare_forest_mixture(stamps_fit: bx.MixtureFit) -> None:
    ax = bx.plots.plot_compare(stamps_fit, prob=0.9)
    check_forest(ax, stamps_fit.compare(prob=0.9))
    save(ax.figure, "compare_mixture")


def test_compare_bad_input(sleep_fit: bx.Fit) -> None:
    with pytest.raises(ValueError, match="prob must be"):
        sleep_fit.plot_compare(prob=0.0)
    with pytest.raises(ValueError, match="unknown reference 'lme4'"):
        sleep_fit.plot_compare(reference="lme4")


# ----- MCMC diagnostics through arviz-plots ---------------------------------------------------


def visible_axes(figure: Figure) -> list[Axes]:
    return [a for a in figure.axes if a.axison]


def test_trace_one_row_per_parameter(sleep_fit: bx.Fit) -> None:
    pc = sleep_fit.plot_trace()
    figure = pc.get_viz("figure")
    names = list(sleep_fit.draws().data_vars)
    assert len(visible_axes(figure)) == 2 * len(names)  # a density and a trace per parameter
    labels = {a.get_ylabel() for a in figure.axes} | {a.get_xlabel() for a in figure.axes}
    assert set(names) <= labels
    save(figure, "trace")


def test_rank_one_panel_per_parameter(stamps_fit: bx.MixtureFit) -> None:
    chosen = ["Intercept[1]", "sigma[1]", "class[2]:Intercept"]
    pc = bx.plots.plot_rank(stamps_fit, chosen)
    figure = pc.get_viz("figure")
    axes = visible_axes(figure)
    assert len(axes) == len(chosen)
    assert [a.get_title() for a in axes] == chosen
    assert all(len(a.get_lines()) >= 2 for a in axes)  # one line per chain
    save(figure, "rank")


def test_mcmc_plots_bad_input(sleep_fit: bx.Fit) -> None:
    with pytest.raises(ValueError, match=r"unknown parameter\(s\) \['days'\].*'Days'"):
        sleep_fit.plot_trace(["days"])
    with pytest.raises(ValueError, match=r"unknown parameter\(s\) \['beta'\]"):
        sleep_fit.plot_rank("beta")
    with pytest.raises(TypeError, match=r"plot_trace needs a bx\.Fit or bx\.MixtureFit, got Dataset"):
        bx.plots.plot_trace(sleep_fit.draws())  # type: ignore[arg-type]
