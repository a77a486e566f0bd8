"""Save a fit to one netCDF file and load it back: ``fit.save(path)`` and ``bx.load(path)``.

The file is netCDF-4 (HDF5, written with h5netcdf). It holds

* every group of ``fit.idata`` as it is (``posterior``, ``sample_stats``, ``observed_data``, ...):
  ``xarray.open_datatree(path)`` and ArviZ read them as from any netCDF file;
* ``bayesmix/data``: the columns of the data frame that the model uses, dropped rows included,
  with their dtypes, categorical levels and index (:mod:`bayesmix.results.frames`);
* ``bayesmix/covariances``: the known covariance matrices ``K`` of grouping factors, if any;
* root attributes, JSON text: the format name and version, the constructor call that rebuilds the
  model (``bx.hierarchical``, ``bx.mixed`` or ``bx.fmm`` with every argument, priors as typed
  records), what the model recorded about itself (which priors the user chose, the
  parametrization and why, how many rows were used and dropped), the sampler settings and,
  for a mixture, its maximum-likelihood fit (every local maximum found).

Loading runs no code from the file (no pickle, no eval): it reads arrays and JSON, checks them,
calls the constructor again on the stored data (nothing is sampled) and attaches the stored draws,
so every method of the loaded fit works and gives what the original gave.
"""

from __future__ import annotations

import importlib.util
import json
import os
import warnings
from collections.abc import Hashable, Mapping
from dataclasses import asdict, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import xarray as xr

from ..sample import SampleSettings
from ..spec import priors as prior_types
from ..spec.data import DroppedRowsWarning
from ..spec.families import PointMass
from ..spec.formula import parse
from ..spec.parametrization import Choice
from .frames import dataset_to_frame, frame_to_dataset

if TYPE_CHECKING:
    from .fit import Fit
    from .mixture import MixtureFit

__all__ = ["FORMAT", "VERSION", "load", "save"]

#: Value of the root attribute ``bayesmix_format``: files without it were not written by bayesmix.
FORMAT = "bayesmix.fit"
#: Format version written; files of a later version are refused with a clear message.
VERSION = 1
_OWN = "bayesmix"  # the group that holds bayesmix's own records, beside the idata groups
_PRIORS = {
    name: cls
    for name in prior_types.__all__
    if isinstance(cls := getattr(prior_types, name), type)
    and issubclass(cls, prior_types.Prior)
    and cls is not prior_types.Prior
}


def _require_engine() -> None:
    """h5netcdf writes and reads the netCDF-4 groups; say so plainly when it is missing."""
    for package in ("h5netcdf", "h5py"):  # h5netcdf 1.8 made its h5py backend an extra
        if importlib.util.find_spec(package) is None:
            raise ImportError(
                f"saving and loading fits needs the {package} package, a bayesmix dependency: "
                "pip install 'h5netcdf[h5py]' (or reinstall bayesmix)"
            )


# ----- saving ---------------------------------------------------------------------------------------


def save(fit: Fit | MixtureFit, path: str | os.PathLike[str]) -> Path:
    """Write ``fit`` to ``path`` (netCDF-4); see the module docstring for the layout.

    The file is written beside ``path`` and then renamed, so an interrupted save never leaves a
    half-written file under that name. Returns the path written.
    """
    from .mixture import MixtureFit

    _require_engine()
    data = getattr(fit.model, "data", None)
    if not isinstance(data, pd.DataFrame):
        raise ValueError(
            "this fit's model holds no data frame, so it cannot be rebuilt from a file; build models "
            "with bx.hierarchical, bx.mixed or bx.fmm"
        )
    if _OWN in fit.idata.children:
        raise ValueError(f"fit.idata has a group named {_OWN!r}, which the file format keeps for itself")
    record: dict[str, Any] = {
        "user_priors": sorted(fit.spec.user_priors),
        "n_dropped": len(fit.spec.dropped),
        "n_obs": fit.design.n_obs,
    }
    sampling: dict[str, Any] = {"settings": asdict(fit.settings), "wall_time": float(fit.wall_time)}
    if isinstance(fit, MixtureFit):
        call, matrices = _mixture_call(fit)
        sampling["starts"] = [float(s) for s in fit.starts]
    else:
        call, matrices = _hierarchical_call(fit)
        record["parametrization"] = [asdict(c) for c in fit.spec.parametrization]
        record["marginalization"] = fit.spec.marginalization
    import bayesmix  # the package version; imported here as bayesmix imports this module

    attrs = {
        "bayesmix_format": FORMAT,
        "bayesmix_format_version": VERSION,
        "bayesmix_version": bayesmix.__version__,
        "bayesmix_fit": type(fit).__name__,
        "bayesmix_model": json.dumps(call),
        "bayesmix_record": json.dumps(record),
        "bayesmix_sampling": json.dumps(sampling),
    }
    if isinstance(fit, MixtureFit) and fit.ml is not None:
        attrs["bayesmix_ml"] = json.dumps(_ml_record(fit))
    nodes = {node.path: node.to_dataset(inherit=False) for node in fit.idata.subtree}
    root = nodes.pop("/", xr.Dataset())
    nodes["/"] = root.assign_attrs({**root.attrs, **attrs})
    nodes[f"/{_OWN}/data"] = frame_to_dataset(data[_used_columns(fit, data)])
    if matrices:
        nodes[f"/{_OWN}/covariances"] = xr.Dataset(matrices)
    target = Path(path)
    partial = target.with_name(f".{target.name}.partial")
    try:
        xr.DataTree.from_dict(nodes).to_netcdf(partial, engine="h5netcdf")
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)
    return target


def _prior_record(prior: prior_types.Prior) -> dict[str, Any]:
    return {"type": type(prior).__name__, **{f.name: getattr(prior, f.name) for f in fields(prior)}}  # type: ignore[arg-type]


def _hierarchical_call(fit: Fit) -> tuple[dict[str, Any], dict[str, xr.DataArray]]:
    """The ``bx.hierarchical``/``bx.mixed`` call that rebuilds the sampled model, and its ``K`` matrices."""
    spec, matrices, known = fit.spec, {}, []
    for i, factor in enumerate(f for f in fit.design.factors if f.covariance is not None):
        labels = list(factor.levels)
        matrices[f"K{i}"] = xr.DataArray(
            factor.covariance,
            dims=(f"K{i}_row", f"K{i}_column"),
            coords={f"K{i}_row": labels, f"K{i}_column": labels},
            attrs={"factor": factor.name},
        )
        known.append(factor.name)
    arguments = {
        "family": spec.family,
        "link": spec.link,
        # every prior, defaults included, so that the file rebuilds the model that was sampled
        # even where a later bayesmix chooses other defaults
        "priors": {name: _prior_record(p) for name, p in spec.priors.items()},
        "missing": spec.missing,
        "centered": {c.factor: c.centered for c in spec.parametrization},
        "covariances": known,
        "marginalize": spec.marginalized,
    }
    return {"constructor": spec.kind, "formula": spec.formula, "arguments": arguments}, matrices


def _mixture_call(fit: MixtureFit) -> tuple[dict[str, Any], dict[str, xr.DataArray]]:
    spec = fit.spec
    arguments = {
        "k": spec.k,
        "family": [{"pointmass": f.value} if isinstance(f, PointMass) else f.name for f in spec.families],
        "class_formula": spec.class_formula,
        "priors": {name: _prior_record(p) for name, p in spec.priors.items()},
        "order_by": spec.order_by,
        "missing": spec.missing,
        "trials": spec.trials,
    }
    return {"constructor": "fmm", "formula": spec.formula, "arguments": arguments}, {}


def _ml_record(fit: MixtureFit) -> dict[str, Any]:
    """Every maximum of the ML fit (theta on the unconstrained scale), so loading needs no new search."""

    def one(m: Any) -> dict[str, Any]:
        return {
            "theta": [float(v) for v in m.theta],
            "loglik": float(m.loglik),
            "converged": bool(m.converged),
            "degenerate": m.degenerate,
        }

    ml = fit.ml
    assert ml is not None  # a fit without one stores no record
    # the search settings that produced it, when it is the model's remembered fit_ml() result
    search = next((list(key) for key, value in fit.model._ml.items() if value is ml), None)
    return {
        "maximum": one(ml.maximum),
        "local_maxima": [one(m.maximum) for m in ml.local_maxima],
        "refused": [[float(ll), str(why)] for ll, why in ml.refused],
        "n_starts": int(ml.n_starts),
        "search": search,
    }


def _used_columns(fit: Fit | MixtureFit, data: pd.DataFrame) -> list[object]:
    """The data columns the model's formulas refer to, in the data's order."""
    parsed = parse(fit.spec.formula)
    names = set(parsed.variables)
    class_formula = getattr(fit.spec, "class_formula", None)
    if class_formula is not None:
        names |= parse(f"{parsed.response} {class_formula.strip()}").variables
    trials = getattr(fit.spec, "trials", None)
    if trials is not None:
        names.add(trials)
    return [c for c in data.columns if c in names]


# ----- loading ------------------------------------------------------------------------------------------


def load(path: str | os.PathLike[str]) -> Fit | MixtureFit:
    """Read a fit written by ``fit.save(path)``.

    Parameters
    ----------
    path
        The netCDF file.

    Returns
    -------
    Fit or MixtureFit
        The fit, with its model rebuilt from the stored call and data (nothing is sampled):
        ``summary()``, ``compare()``, ``predict()`` ... give what the saved fit gave.

    Raises
    ------
    FileNotFoundError
        No file at ``path``.
    ValueError
        The file is not netCDF-4 (or is truncated), was not written by bayesmix, has a format
        version this bayesmix does not read, or its records are damaged; the message says which.
    """
    if not isinstance(path, str | os.PathLike):
        raise TypeError(f"path must be a file path (str or pathlib.Path), got {type(path).__name__}")
    path = Path(path)
    if not path.is_file():
        what = "a directory, not a file" if path.is_dir() else "no such file"
        raise FileNotFoundError(f"no file {str(path)!r} ({what}): check the path")
    _require_engine()
    try:
        tree = xr.load_datatree(path, engine="h5netcdf")
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise ValueError(
            f"{str(path)!r} is not a readable netCDF-4 file (truncated, damaged, or another format): {err}"
        ) from err
    attrs = tree.attrs
    if attrs.get("bayesmix_format") != FORMAT:
        raise ValueError(
            f"{str(path)!r} is a netCDF file but was not written by bayesmix's fit.save (it has no "
            f"bayesmix_format = {FORMAT!r} attribute); open it with xarray.open_datatree instead"
        )
    version = attrs.get("bayesmix_format_version")
    version = version.item() if isinstance(version, np.generic) else version  # np.int64(2) reads as 2
    if isinstance(version, bool) or not isinstance(version, int) or not 1 <= version <= VERSION:
        raise ValueError(
            f"{str(path)!r} has bayesmix format version {version!r}, but this bayesmix reads version "
            f"{VERSION}; it was written by bayesmix {attrs.get('bayesmix_version', '?')}: "
            "install that version (or a later one) to read it"
        )
    try:
        return _rebuild(tree)
    except (KeyError, TypeError, ValueError, json.JSONDecodeError) as err:
        raise ValueError(f"{str(path)!r} could not be read back: its records are damaged ({err})") from err


def _json(attrs: Mapping[Hashable, Any], name: str) -> Any:
    if name not in attrs:
        raise KeyError(f"the root attribute {name!r} is missing")
    return json.loads(attrs[name])


def _rebuild(tree: xr.DataTree) -> Fit | MixtureFit:
    from .fit import Fit
    from .mixture import MixtureFit

    attrs = tree.attrs
    kind = attrs.get("bayesmix_fit")
    if kind not in ("Fit", "MixtureFit"):
        raise ValueError(f"unknown fit class {kind!r}")
    call, record = _json(attrs, "bayesmix_model"), _json(attrs, "bayesmix_record")
    sampling = _json(attrs, "bayesmix_sampling")
    if f"/{_OWN}/data" not in tree.groups:
        raise KeyError(f"the group {_OWN}/data (the model's data) is missing")
    data = dataset_to_frame(tree[f"{_OWN}/data"].to_dataset())
    covariances = tree[f"{_OWN}/covariances"].to_dataset() if f"/{_OWN}/covariances" in tree.groups else None
    model = _call(call, data, covariances)
    spec = replace(model.spec, user_priors=frozenset(record["user_priors"]))
    if kind == "Fit":
        spec = replace(
            spec,
            parametrization=tuple(Choice(**c) for c in record["parametrization"]),
            marginalization=record["marginalization"],
        )
    model.spec = spec
    if len(spec.dropped) != record["n_dropped"] or model.design.n_obs != record["n_obs"]:
        raise ValueError(
            f"the rebuilt model uses {model.design.n_obs} rows and drops {len(spec.dropped)}, but the "
            f"saved one used {record['n_obs']} and dropped {record['n_dropped']}"
        )
    nodes = {
        node.path: node.to_dataset(inherit=False)
        for node in tree.subtree
        if node.path != f"/{_OWN}" and not node.path.startswith(f"/{_OWN}/")
    }
    root = nodes["/"]
    own = {k: v for k, v in root.attrs.items() if not k.startswith("bayesmix_")}
    nodes["/"] = xr.Dataset(root.data_vars, root.coords, own)
    idata = xr.DataTree.from_dict(nodes)
    settings = SampleSettings(**sampling["settings"])
    common = {"idata": idata, "settings": settings, "wall_time": float(sampling["wall_time"])}
    if kind == "Fit":
        return Fit(spec=model.spec, design=model.design, model=model, **common)  # type: ignore[arg-type]
    ml = _restore_ml(model, _json(attrs, "bayesmix_ml")) if "bayesmix_ml" in attrs else None
    starts = tuple(float(s) for s in sampling.get("starts", ()))
    return MixtureFit(spec=model.spec, design=model.design, model=model, ml=ml, starts=starts, **common)  # type: ignore[arg-type]


def _prior(record: Mapping[str, Any]) -> prior_types.Prior:
    values = dict(record)
    name = values.pop("type")
    if name not in _PRIORS:
        raise ValueError(f"unknown prior type {name!r}; known: {sorted(_PRIORS)}")
    return _PRIORS[name](**values)


def _family(value: object) -> str | PointMass:
    if isinstance(value, str):
        return value
    if isinstance(value, Mapping) and set(value) == {"pointmass"}:
        return PointMass(value["pointmass"])
    raise ValueError(f"unknown family record {value!r}")


def _call(call: Mapping[str, Any], data: pd.DataFrame, covariances: xr.Dataset | None) -> Any:
    """Call the constructor the record names, on the stored data; nothing is sampled."""
    from .. import api  # the constructors sit above results: reached at load time only

    constructor, formula = call["constructor"], call["formula"]
    arguments = dict(call["arguments"])
    if not isinstance(formula, str):
        raise TypeError(f"the formula must be text, got {formula!r}")
    arguments["priors"] = {name: _prior(p) for name, p in arguments["priors"].items()}
    with warnings.catch_warnings():
        # the dropped rows were reported when the model was first built, and are recorded
        warnings.simplefilter("ignore", DroppedRowsWarning)
        if constructor == "fmm":
            arguments["family"] = [_family(f) for f in arguments["family"]]
            k = arguments.pop("k")
            return api.fmm(k, formula, data, **arguments)
        if constructor not in ("hierarchical", "mixed"):
            raise ValueError(f"unknown constructor {constructor!r}")
        known = {}
        stored = {v.attrs.get("factor"): v for v in (covariances or xr.Dataset()).data_vars.values()}
        for name in arguments.pop("covariances"):
            if name not in stored:
                raise KeyError(f"the covariance matrix of {name!r} is missing from bayesmix/covariances")
            matrix = stored[name]
            labels = [str(v) for v in matrix[matrix.dims[0]].values]
            known[name] = pd.DataFrame(np.asarray(matrix.values, dtype=float), index=labels, columns=labels)
        arguments["covariances"] = known or None
        return getattr(api, constructor)(formula, data, **arguments)


def _restore_ml(model: Any, record: Mapping[str, Any]) -> Any:
    """The stored ML fit, rebuilt at its stored maxima (no new search)."""
    from ..compare.fmm import MixtureMLFit  # the compare layer sits to the right of results
    from ..compare.fmm_engine import Maximum, Objective

    spec, design = model.spec, model.design
    objective = Objective(spec, design)
    size = objective.layout.size

    def maximum(m: Mapping[str, Any]) -> Maximum:
        theta = np.asarray(m["theta"], dtype=np.float64)
        if theta.shape != (size,):
            raise ValueError(f"a stored maximum has {theta.size} parameters, the model {size}")
        return Maximum(theta, float(m["loglik"]), bool(m["converged"]), m["degenerate"])

    def fit(m: Mapping[str, Any], **extra: Any) -> MixtureMLFit:
        return MixtureMLFit(
            spec=spec,
            design=design,
            maximum=maximum(m),
            objective=objective,
            n_starts=record["n_starts"],
            **extra,
        )

    ml = fit(
        record["maximum"],
        local_maxima=tuple(fit(m) for m in record["local_maxima"]),
        refused=tuple((float(ll), str(why)) for ll, why in record["refused"]),
    )
    if record.get("search") is not None:
        model._ml[tuple(record["search"])] = ml  # what model.fit_ml() with those settings returns
    return ml
