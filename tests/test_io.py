"""Saving and loading fits (bayesmix.results.io): fit.save(path) and bx.load(path).

The contract: a loaded fit gives the same summary(), compare() and predictions (same random_seed)
as the fit that was saved, its spec and data are those of the original, and a file that is not
a bayesmix fit of a readable version is refused with a ValueError that names the problem.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr

import bayesmix as bx
from bayesmix.results.frames import dataset_to_frame, frame_to_dataset
from bayesmix.results.io import FORMAT, VERSION

TINY = {"draws": 100, "tune": 100, "chains": 2, "random_seed": 1, "progressbar": False}


# ----- fits ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sleep_data() -> pd.DataFrame:
    """sleepstudy with a categorical covariate, string row labels and two missing responses."""
    data = bx.datasets.load("sleepstudy")
    data["period"] = pd.Categorical(np.where(data["Days"] < 5, "early", "late"), categories=["early", "late"])
    data.index = pd.Index([f"r{i}" for i in range(len(data))], name="row")
    data.loc[["r3", "r40"], "Reaction"] = np.nan
    data["unused"] = [{"not": "storable"}] * len(data)  # columns the formula does not use are not saved
    return data


@pytest.fixture(scope="module")
def gaussian_fit(sleep_data: pd.DataFrame) -> bx.Fit:
    """Gaussian, random effects integrated out, dropped rows, a user prior."""
    with pytest.warns(bx.DroppedRowsWarning):
        model = bx.hierarchical(
            "Reaction ~ Days + period + (Days | Subject)",
            sleep_data,
            missing="drop",
            priors={"Days": bx.priors.Normal(0, 20)},
        )
    assert model.spec.marginalized and len(model.spec.dropped) == 2
    return model.fit(**TINY)


@pytest.fixture(scope="module")
def count_data() -> tuple[pd.DataFrame, pd.DataFrame]:
    """Poisson counts with exposure; g has a known covariance K with a level without data."""
    rng = np.random.default_rng(5)
    g = np.repeat(np.arange(8), 10)
    x = rng.normal(size=g.size)
    exposure = rng.uniform(1, 3, size=g.size)
    y = rng.poisson(exposure * np.exp(0.3 + 0.8 * x + rng.normal(0, 0.4, size=8)[g]))
    data = pd.DataFrame({"y": y, "x": x, "exposure": exposure, "g": [f"g{k}" for k in g]})
    labels = [f"g{k}" for k in range(9)]  # g8 has no data
    K = pd.DataFrame(0.6 * np.eye(9) + 0.4, index=labels, columns=labels)
    return data, K


@pytest.fixture(scope="module")
def poisson_fit(count_data: tuple[pd.DataFrame, pd.DataFrame]) -> bx.Fit:
    """A GLMM (sampled random effects) with an offset, a known K and a user's parametrization."""
    data, K = count_data
    model = bx.hierarchical(
        "y ~ x + offset(log(exposure)) + (1 | g)",
        data,
        family="poisson",
        covariances={"g": K},
        centered={"g": False},
    )
    return model.fit(**TINY)


@pytest.fixture(scope="module")
def mixture_fit() -> bx.MixtureFit:
    """Stata's fmm 3: regress thickness, small."""
    return bx.fmm(3, "thickness ~ 1", bx.datasets.load("stamps")).fit(**TINY)


def _reload(fit: bx.Fit | bx.MixtureFit, tmp_path: Path, name: str = "fit.nc") -> bx.Fit | bx.MixtureFit:
    path = fit.save(tmp_path / name)
    assert path == tmp_path / name and path.is_file()
    assert not list(tmp_path.glob(".*partial"))  # written beside, then renamed
    return bx.load(path)


# ----- round trips --------------------------------------------------------------------------------


@pytest.mark.parametrize("which", ["gaussian_fit", "poisson_fit"])
def test_hierarchical_round_trip(which: str, request: pytest.FixtureRequest, tmp_path: Path) -> None:
    fit: bx.Fit = request.getfixturevalue(which)
    loaded = _reload(fit, tmp_path)
    assert isinstance(loaded, bx.Fit)
    xr.testing.assert_identical(loaded.idata, fit.idata)
    assert loaded.spec == fit.spec  # formula, family, link, priors, centering, marginalization, dropped
    assert loaded.settings == fit.settings and loaded.wall_time == fit.wall_time
    pd.testing.assert_frame_equal(loaded.summary(), fit.summary())
    pd.testing.assert_frame_equal(loaded.compare(), fit.compare())
    pd.testing.assert_frame_equal(loaded.priors(), fit.priors())
    pd.testing.assert_frame_equal(loaded.model.parametrization(), fit.model.parametrization())
    pd.testing.assert_frame_equal(loaded.random_effects(), fit.random_effects())
    assert str(loaded.diagnostics()) == str(fit.diagnostics())


def test_gaussian_round_trip_keeps_data_and_dropped_rows(gaussian_fit: bx.Fit, tmp_path: Path) -> None:
    loaded = _reload(gaussian_fit, tmp_path)
    assert loaded.dropped.equals(gaussian_fit.dropped) and list(loaded.dropped) == ["r3", "r40"]
    assert loaded.spec.user_priors == {"Days"} and loaded.spec.marginalized
    original = gaussian_fit.model.data
    # the columns the formula uses, with their dtypes (categorical levels included) and index
    pd.testing.assert_frame_equal(loaded.model.data, original[["Reaction", "Days", "Subject", "period"]])
    assert loaded.model.data["period"].cat.categories.tolist() == ["early", "late"]
    new = pd.DataFrame(
        {"Days": [0, 3, 9], "period": ["early", "early", "late"], "Subject": ["308", "new", "372"]},
        index=["a", "b", "c"],
    )
    for kind in ("link", "mean", "response"):
        xr.testing.assert_identical(
            loaded.predict(new, kind, random_seed=4), gaussian_fit.predict(new, kind, random_seed=4)
        )
    xr.testing.assert_identical(loaded.predict(random_seed=4), gaussian_fit.predict(random_seed=4))


def test_poisson_round_trip_predictions(poisson_fit: bx.Fit, tmp_path: Path) -> None:
    loaded = _reload(poisson_fit, tmp_path)
    assert loaded.design.factors[0].levels == poisson_fit.design.factors[0].levels  # g8 kept, through K
    np.testing.assert_array_equal(
        loaded.design.factors[0].covariance, poisson_fit.design.factors[0].covariance
    )
    assert loaded.spec.centered == frozenset() and loaded.model.parametrization()["chosen_by"].tolist() == [
        "user"
    ]
    xr.testing.assert_identical(loaded.predict(random_seed=2), poisson_fit.predict(random_seed=2))
    new = pd.DataFrame({"x": [0.0, 1.0], "exposure": [1.0, 2.0], "g": ["g8", "g0"]})
    xr.testing.assert_identical(
        loaded.predict(new, "response", random_seed=2), poisson_fit.predict(new, "response", random_seed=2)
    )
    xr.testing.assert_identical(loaded.ppc(random_seed=5), poisson_fit.ppc(random_seed=5))


def test_mixture_round_trip(mixture_fit: bx.MixtureFit, tmp_path: Path) -> None:
    loaded = _reload(mixture_fit, tmp_path)
    assert isinstance(loaded, bx.MixtureFit)
    xr.testing.assert_identical(loaded.idata, mixture_fit.idata)
    assert loaded.spec == mixture_fit.spec and loaded.ordering == mixture_fit.ordering
    assert loaded.starts == mixture_fit.starts and loaded.settings == mixture_fit.settings
    pd.testing.assert_frame_equal(loaded.summary(), mixture_fit.summary())
    pd.testing.assert_frame_equal(loaded.compare(), mixture_fit.compare())
    pd.testing.assert_frame_equal(loaded.class_probabilities(), mixture_fit.class_probabilities())
    pd.testing.assert_frame_equal(
        loaded.posterior_class_probabilities(), mixture_fit.posterior_class_probabilities()
    )
    grid = np.linspace(0.06, 0.13, 7)
    pd.testing.assert_frame_equal(loaded.density(grid), mixture_fit.density(grid))
    # the ML fit is rebuilt at its stored maxima, no new search; fit_ml() with the same settings returns it
    assert loaded.ml.loglik == mixture_fit.ml.loglik
    assert [m.loglik for m in loaded.ml.local_maxima] == [m.loglik for m in mixture_fit.ml.local_maxima]
    assert loaded.model.fit_ml() is loaded.ml
    assert str(loaded.ml) == str(mixture_fit.ml)


def test_saving_a_loaded_fit_again_gives_the_same_fit(mixture_fit: bx.MixtureFit, tmp_path: Path) -> None:
    once = _reload(mixture_fit, tmp_path, "once.nc")
    twice = _reload(once, tmp_path, "twice.nc")
    xr.testing.assert_identical(twice.idata, mixture_fit.idata)
    pd.testing.assert_frame_equal(twice.compare(), mixture_fit.compare())


# ----- the file ----------------------------------------------------------------------------------


def test_file_layout(gaussian_fit: bx.Fit, tmp_path: Path) -> None:
    path = gaussian_fit.save(tmp_path / "posterior.nc")
    tree = xr.open_datatree(path, engine="h5netcdf")
    try:
        # the idata groups as ArviZ wrote them, beside bayesmix's own
        assert set(gaussian_fit.idata.children) <= set(tree.children)
        assert set(tree["bayesmix"].children) == {"data"}
        attrs = tree.attrs
        assert attrs["bayesmix_format"] == FORMAT and attrs["bayesmix_format_version"] == VERSION
        assert attrs["bayesmix_fit"] == "Fit"
        call = json.loads(attrs["bayesmix_model"])  # plain JSON: nothing in the file is code
        assert call["constructor"] == "hierarchical"
        assert call["formula"] == "Reaction ~ Days + period + (Days | Subject)"
        arguments = call["arguments"]
        assert arguments["missing"] == "drop" and arguments["marginalize"] is True
        assert arguments["priors"]["Days"] == {"type": "Normal", "mu": 0.0, "sigma": 20.0}
        assert set(arguments["priors"]) == set(gaussian_fit.spec.priors)  # defaults too
        record = json.loads(attrs["bayesmix_record"])
        assert record["user_priors"] == ["Days"] and record["n_dropped"] == 2 and record["n_obs"] == 178
        settings = json.loads(attrs["bayesmix_sampling"])["settings"]
        assert settings["draws"] == 100 and settings["random_seed"] == 1
        data = tree["bayesmix/data"]
        assert json.loads(data.attrs["columns"]) == ["Reaction", "Days", "Subject", "period"]
        assert data["c3"].attrs["bayesmix_kind"] == "category"
        assert data.sizes["row"] == 180
    finally:
        tree.close()


def test_an_existing_file_is_replaced(
    gaussian_fit: bx.Fit, mixture_fit: bx.MixtureFit, tmp_path: Path
) -> None:
    path = tmp_path / "fit.nc"
    mixture_fit.save(path)
    gaussian_fit.save(path)
    assert isinstance(bx.load(path), bx.Fit)


@pytest.fixture(scope="module")
def saved(gaussian_fit: bx.Fit, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return gaussian_fit.save(tmp_path_factory.mktemp("saved") / "fit.nc")


def _rewrite(saved: Path, target: Path, **attrs: object) -> Path:
    """A copy of the saved file with some root attributes changed."""
    tree = xr.load_datatree(saved, engine="h5netcdf")
    tree.attrs = {**tree.attrs, **attrs}
    tree.to_netcdf(target, engine="h5netcdf")
    return target


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no file"):
        bx.load(tmp_path / "absent.nc")


def test_truncated_file_is_refused(saved: Path, tmp_path: Path) -> None:
    cut = tmp_path / "cut.nc"
    cut.write_bytes(saved.read_bytes()[: saved.stat().st_size // 2])
    with pytest.raises(ValueError, match="not a readable netCDF-4 file"):
        bx.load(cut)


def test_a_file_that_is_not_netcdf_is_refused(tmp_path: Path) -> None:
    text = tmp_path / "posterior.nc"
    text.write_text("chain,draw,mu\n0,0,1.5\n")
    with pytest.raises(ValueError, match="not a readable netCDF-4 file"):
        bx.load(text)


def test_a_foreign_netcdf_is_refused(gaussian_fit: bx.Fit, tmp_path: Path) -> None:
    foreign = tmp_path / "arviz.nc"
    gaussian_fit.idata.to_netcdf(foreign, engine="h5netcdf")  # what az.to_netcdf would write
    with pytest.raises(ValueError, match="not written by bayesmix"):
        bx.load(foreign)


@pytest.mark.parametrize("version", [VERSION + 1, "1", 0])
def test_a_wrong_format_version_is_refused(saved: Path, tmp_path: Path, version: object) -> None:
    path = _rewrite(saved, tmp_path / "version.nc", bayesmix_format_version=version)
    with pytest.raises(ValueError, match=r"format version .* this bayesmix reads version 1"):
        bx.load(path)


@pytest.mark.parametrize(
    ("attrs", "match"),
    [
        ({"bayesmix_model": "{not json"}, "records are damaged"),
        ({"bayesmix_fit": "Pickle"}, "unknown fit class 'Pickle'"),
        (
            {
                "bayesmix_model": json.dumps(
                    {"constructor": "exec", "formula": "y ~ 1", "arguments": {"priors": {}}}
                )
            },
            "unknown constructor 'exec'",
        ),
    ],
)
def test_damaged_records_are_refused(saved: Path, tmp_path: Path, attrs: dict[str, str], match: str) -> None:
    path = _rewrite(saved, tmp_path / "damaged.nc", **attrs)
    with pytest.raises(ValueError, match=match):
        bx.load(path)


def test_an_unknown_prior_type_is_refused(saved: Path, tmp_path: Path) -> None:
    call = json.loads(xr.load_datatree(saved, engine="h5netcdf").attrs["bayesmix_model"])
    call["arguments"]["priors"]["Days"] = {"type": "system", "command": "rm -rf /"}
    path = _rewrite(saved, tmp_path / "prior.nc", bayesmix_model=json.dumps(call))
    with pytest.raises(ValueError, match="unknown prior type 'system'"):
        bx.load(path)


def test_a_copied_file_loads_elsewhere(saved: Path, tmp_path: Path) -> None:
    copy = tmp_path / "elsewhere" / "copy.nc"
    copy.parent.mkdir()
    shutil.copy(saved, copy)
    assert isinstance(bx.load(str(copy)), bx.Fit)  # a str path works too


def test_a_fit_without_its_data_cannot_be_saved(gaussian_fit: bx.Fit, tmp_path: Path) -> None:
    model = gaussian_fit.model
    data, model.data = model.data, None
    try:
        with pytest.raises(ValueError, match="holds no data frame"):
            gaussian_fit.save(tmp_path / "fit.nc")
    finally:
        model.data = data


# ----- data frames -------------------------------------------------------------------------------


def _through_file(frame: pd.DataFrame, tmp_path: Path) -> pd.DataFrame:
    path = tmp_path / "frame.nc"
    frame_to_dataset(frame).to_netcdf(path, engine="h5netcdf")
    return dataset_to_frame(xr.load_dataset(path, engine="h5netcdf"))


def test_data_frame_dtypes_survive(tmp_path: Path) -> None:
    frame = pd.DataFrame(
        {
            "float": [1.5, np.nan, -2.0, 0.0],
            "int": np.array([1, 2, 3, 4], dtype=np.int64),
            "uint8": np.array([1, 2, 3, 250], dtype=np.uint8),
            "bool": [True, False, True, True],
            "text": pd.array(["a", None, "ccc", "é"], dtype="str"),
            "object_text": pd.Series(["x", "y", np.nan, "z"], dtype=object),
            "ordered": pd.Categorical(["lo", "hi", None, "lo"], categories=["lo", "hi"], ordered=True),
            "numeric_levels": pd.Categorical([3, 1, 3, 2]),
            "nullable_int": pd.array([1, None, 3, 4], dtype="Int64"),
            "nullable_bool": pd.array([True, None, False, True], dtype="boolean"),
            "when": pd.to_datetime(["2024-01-01", "2024-02-29", None, "1999-12-31"]),
        },
        index=pd.RangeIndex(5, 13, 2, name="id"),
    )
    frame.attrs["provenance"] = "made up"
    back = _through_file(frame, tmp_path)
    pd.testing.assert_frame_equal(back, frame)
    assert isinstance(back.index, pd.RangeIndex) and back.attrs == {"provenance": "made up"}


def test_data_frame_indexes_survive(tmp_path: Path) -> None:
    values = {"y": [1.0, 2.0, 3.0]}
    for index in (
        pd.Index(["b", "a", "c"], name="label"),
        pd.Index([10, 3, 7]),
        pd.MultiIndex.from_tuples([("a", 1), ("a", 2), ("b", 1)], names=["site", "visit"]),
    ):
        frame = pd.DataFrame(values, index=index)
        pd.testing.assert_frame_equal(_through_file(frame, tmp_path), frame)


def test_a_column_of_mixed_objects_is_refused() -> None:
    frame = pd.DataFrame({"mixed": pd.Series(["a", 1, 2.5], dtype=object)})
    with pytest.raises(ValueError, match="'mixed' holds Python objects of several types"):
        frame_to_dataset(frame)
