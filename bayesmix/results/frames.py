"""Data frames as xarray Datasets that netCDF can hold and that turn back into the same frame.

Used by :mod:`bayesmix.results.io` to store the data a model was built on. Column ``i`` is the
variable ``c{i}`` along the dimension ``row`` (the names, which may be any text, are in the
attribute ``columns``); index level ``j`` is ``i{j}``. Every variable records its pandas dtype
(``pandas_dtype``) and how it is stored (``bayesmix_kind``):

========== ==================================================================================
kind       stored as
========== ==================================================================================
numpy      the values (numbers, booleans, datetimes: NaN and NaT are values)
string     text, with missing entries in the boolean mask ``{key}_missing``
masked     nullable ``Int64``/``Float64``/``boolean``: values with ``{key}_missing``
category   integer codes (-1 missing) with the categories in ``{key}_levels`` and ``ordered``
========== ==================================================================================

Reading back builds the arrays from these records with pandas' dtype names only: nothing is
evaluated. Columns of other dtypes (Python objects of mixed types, intervals, periods...) are
refused with a ``ValueError`` naming the column.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Hashable
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

__all__ = ["dataset_to_frame", "frame_to_dataset"]


def frame_to_dataset(data: pd.DataFrame) -> xr.Dataset:
    """``data`` as a Dataset: columns, index (flat, range or multi-level), dtypes and ``attrs``.

    ``data.attrs`` are kept when they are JSON text (else dropped with a warning).
    """
    variables: dict[Hashable, xr.Variable] = {}
    for i, name in enumerate(data.columns):
        variables |= _encode(f"c{i}", data[name], "row")
    index = data.index
    for j in range(index.nlevels):
        variables |= _encode(f"i{j}", index.get_level_values(j), "row")
    span = [index.start, index.stop, index.step] if isinstance(index, pd.RangeIndex) else None
    attrs = {
        "columns": json.dumps(list(data.columns)),
        "index_names": json.dumps(list(index.names)),
        "range_index": json.dumps(span),
    }
    try:
        attrs["frame_attrs"] = json.dumps(data.attrs)
    except TypeError:
        warnings.warn(
            f"the data frame's attrs {sorted(map(str, data.attrs))} are not JSON text and are not saved",
            UserWarning,
            stacklevel=3,
        )
    return xr.Dataset(variables, attrs=attrs)


def _encode(key: str, values: pd.Series | pd.Index, dim: str) -> dict[Hashable, xr.Variable]:
    dtype = values.dtype
    meta = {"pandas_dtype": str(dtype)}
    if isinstance(dtype, pd.CategoricalDtype):
        out = _encode(f"{key}_levels", dtype.categories, f"{key}_level")
        codes = np.asarray(pd.Series(values).cat.codes, dtype=np.int64)
        kind = {"bayesmix_kind": "category", "ordered": int(bool(dtype.ordered))}
        out[key] = xr.Variable(dim, codes, {**meta, **kind})
        return out
    missing = np.asarray(pd.isna(values), dtype=bool)
    array: np.ndarray
    if isinstance(dtype, np.dtype) and dtype.kind in "biufmM":
        return {key: xr.Variable(dim, np.asarray(values), {**meta, "bayesmix_kind": "numpy"})}
    if pd.api.types.is_string_dtype(dtype):
        items = np.asarray(values, dtype=object)
        if not all(isinstance(v, str) for v in items[~missing]):
            raise ValueError(
                f"the column {values.name!r} holds Python objects of several types (dtype {dtype}); "
                "convert it to one type (e.g. with .astype(str)) before fitting and saving"
            )
        array = np.array([v if isinstance(v, str) else "" for v in items], dtype=str)
        kind_name = "string"
    elif hasattr(dtype, "numpy_dtype") and np.dtype(dtype.numpy_dtype).kind in "biuf":
        numpy_dtype = np.dtype(dtype.numpy_dtype)  # nullable Int64, Float64, boolean
        array = np.asarray(values.to_numpy(dtype=numpy_dtype, na_value=numpy_dtype.type(0)))
        kind_name = "masked"
    else:
        raise ValueError(
            f"the column {values.name!r} has dtype {dtype}, which the file format cannot hold; "
            "convert it to numbers, strings or a categorical before fitting and saving"
        )
    out = {key: xr.Variable(dim, array, {**meta, "bayesmix_kind": kind_name})}
    if missing.any():
        out[f"{key}_missing"] = xr.Variable(dim, missing)
    return out


def dataset_to_frame(ds: xr.Dataset) -> pd.DataFrame:
    """The data frame that :func:`frame_to_dataset` stored, with its dtypes, index and ``attrs``."""
    columns = json.loads(ds.attrs["columns"])
    names = json.loads(ds.attrs["index_names"])
    levels = [_decode(ds, f"i{j}") for j in range(len(names))]
    span = json.loads(ds.attrs["range_index"])
    index: pd.Index
    if span is not None:
        start, stop, step = span
        index = pd.RangeIndex(start, stop, step, name=names[0])
        if not index.equals(pd.Index(levels[0])):
            raise ValueError("the stored range index does not match its labels")
    elif len(levels) == 1:
        index = pd.Index(levels[0], name=names[0])
    else:
        index = pd.MultiIndex.from_arrays(levels, names=names)
    frame = pd.DataFrame({i: _decode(ds, f"c{i}") for i in range(len(columns))}, index=index)
    frame.columns = pd.Index(columns)
    frame.attrs = json.loads(ds.attrs.get("frame_attrs", "{}"))
    return frame


def _decode(ds: xr.Dataset, key: str) -> Any:
    var = ds[key]
    kind, dtype = var.attrs["bayesmix_kind"], var.attrs["pandas_dtype"]
    values = np.asarray(var.values)
    if kind == "category":
        categories = _decode(ds, f"{key}_levels")
        if values.size and (values.min() < -1 or values.max() >= len(categories)):
            raise ValueError(f"the categorical codes of {key!r} lie outside its {len(categories)} categories")
        return pd.Categorical.from_codes(values, categories=categories, ordered=bool(var.attrs["ordered"]))
    if kind == "numpy":
        numpy_dtype = np.dtype(dtype)
        if numpy_dtype.kind not in "biufmM":
            raise ValueError(f"{key!r} claims the non-numeric dtype {dtype!r}")
        return values.astype(numpy_dtype)
    missing = np.asarray(ds[f"{key}_missing"].values, dtype=bool) if f"{key}_missing" in ds else None
    target: Any = pd.api.types.pandas_dtype(dtype)  # a registered dtype name; nothing is evaluated
    if kind == "string":
        items = values.astype(object)
        if missing is not None:
            items[missing] = np.nan
        return pd.array(items, dtype=target)
    if kind == "masked":
        array: Any = pd.array(values, dtype=target)
        if missing is not None:
            array[missing] = pd.NA
        return array
    raise ValueError(f"{key!r} has an unknown kind {kind!r}")
