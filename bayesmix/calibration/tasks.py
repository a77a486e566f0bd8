"""One simulation of a calibration run: refit the model to a simulated data set and rank the truths.

:func:`fit_one` runs on a Dask worker. It gets the :class:`~bayesmix.calibration.simulate.Recipe`
(sent to every worker once), the simulated response and the true values, and returns only
numbers: the rank, the number of thinned draws and the PIT value of every parameter, and the
fit's diagnostics. The posterior itself never leaves the worker. Models of one structure
reuse the worker's compiled model (:mod:`bayesmix.compiled`), so only a worker's first fit
compiles.
"""

from __future__ import annotations

import time
import traceback
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import arviz_stats as azs
import numpy as np
import xarray as xr

from ..api import MixtureModel
from .ranks import rank_of, thinned_size
from .simulate import Model, Recipe, random_effect_name

__all__ = ["NO_ML_START", "Job", "Settings", "fit_one"]

#: how ``init`` begins for a mixture fit started from PyMC's default point for want of an ML start
NO_ML_START = "prior (no maximum-likelihood start"


@dataclass(frozen=True, slots=True, kw_only=True)
class Settings:
    """What every simulation's fit shares."""

    draws: int
    tune: int
    chains: int
    max_draws: int
    random_effects: bool
    fit_kwargs: Mapping[str, Any] = field(default_factory=dict)
    ml_kwargs: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class Job:
    """One simulation: its number, response, true values and seeds."""

    index: int
    y: np.ndarray
    truths: Mapping[str, float]
    fit_seed: int
    rank_seed: int


def fit_one(recipe: Recipe, job: Job, settings: Settings) -> dict[str, Any]:
    """Fit the model to one simulated data set; return ranks and diagnostics (never the draws).

    Returns a dict with ``index``, ``ranks``/``kept``/``pit`` (dicts by parameter), ``error``
    (None, or the message of an exception that stopped the fit), ``divergences``,
    ``max_rhat``, ``min_ess``, ``init`` (how a mixture's chains were started), ``wall_time``,
    ``compile_time``, ``reused`` (whether a compiled model was reused) and ``warnings``.
    """
    start = time.perf_counter()
    out: dict[str, Any] = {"index": job.index, "ranks": {}, "kept": {}, "pit": {}, "error": None, "init": ""}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            model = recipe.build(job.y)
            _check_response(model, recipe, job.y)
            fit, out["init"] = _fit(model, job, settings)
            draws = _draws(fit, settings.random_effects)
            missing = sorted(set(job.truths) - set(map(str, draws.data_vars)))
            if missing:
                raise ValueError(f"the fit has no draws of {missing}")
            out.update(_ranks(draws, job, settings.max_draws))
            stats = fit.idata["sample_stats"]
            out["divergences"] = int(stats["diverging"].sum()) if "diverging" in stats else 0
            attrs = fit.idata["posterior"].attrs
            out["compile_time"] = float(attrs.get("compile_time", np.nan))
            out["reused"] = bool(attrs.get("compiled_model_reused", 0))
        except Exception as err:  # one failed simulation is recorded, not fatal to the run
            out["error"] = f"{type(err).__name__}: {err}"
            out["traceback"] = traceback.format_exc(limit=8)
    out["warnings"] = sorted({f"{w.category.__name__}: {str(w.message).splitlines()[0]}" for w in caught})
    out["wall_time"] = time.perf_counter() - start
    return out


def _check_response(model: Model, recipe: Recipe, y: np.ndarray) -> None:
    """The rebuilt model must see the simulated response and the original trials."""
    if not np.allclose(np.asarray(model.design.y, dtype=float), np.asarray(y, dtype=float)):
        raise ValueError(
            f"the rebuilt model's response is not the simulated one (column {recipe.response!r})"
        )
    trials = model.design.trials
    if recipe.trials is not None and (trials is None or not np.allclose(trials, recipe.trials)):
        raise ValueError("the rebuilt model's binomial trials differ from the original ones")


def _fit(model: Model, job: Job, settings: Settings) -> tuple[Any, str]:
    kwargs: dict[str, Any] = {
        "draws": settings.draws,
        "tune": settings.tune,
        "chains": settings.chains,
        "random_seed": job.fit_seed,
        "progressbar": False,
        **settings.fit_kwargs,
    }
    if not isinstance(model, MixtureModel) or kwargs.get("init") == "prior":
        return model.fit(**kwargs), str(kwargs.get("init", ""))
    try:
        ml = model.fit_ml(**settings.ml_kwargs)
        return model.fit(ml=ml, **kwargs), str(kwargs.get("init", "modes"))
    except RuntimeError as err:
        # no usable maximum (all degenerate, or none strictly ordered): start where PyMC starts
        kwargs["init"] = "prior"
        reason = str(err).split(".")[0]
        return model.fit(**kwargs), f"{NO_ML_START}: {reason})"


def _draws(fit: Any, random_effects: bool) -> xr.Dataset:
    """Posterior draws under public names, plus every random effect when asked."""
    draws = fit.draws()
    if not random_effects or isinstance(fit.model, MixtureModel):
        return draws
    extra = {}
    for factor in fit.design.factors:
        re = fit.posterior[f"re_{factor.name}"]
        for level in factor.levels:
            for term in factor.terms:
                extra[random_effect_name(factor.name, term, level)] = re.sel(
                    {factor.name: level, f"{factor.name}__term": term}, drop=True
                )
    return draws.assign(extra)


def _ranks(draws: xr.Dataset, job: Job, max_draws: int) -> dict[str, Any]:
    names = list(job.truths)
    chosen = draws[names]
    ess = np.minimum(
        azs.ess(chosen, method="bulk").to_array().values, azs.ess(chosen, method="tail").to_array().values
    )
    rhat = azs.rhat(chosen).to_array().values
    rng = np.random.default_rng(job.rank_seed)
    ranks, kept, pit = {}, {}, {}
    for name, e in zip(names, ess, strict=True):
        values = chosen[name].transpose("chain", "draw").values
        keep = thinned_size(values.size, float(e), max_draws)
        ranks[name], pit[name] = rank_of(values, job.truths[name], keep, rng)
        kept[name] = keep
    return {
        "ranks": ranks,
        "kept": kept,
        "pit": pit,
        "max_rhat": float(np.nanmax(rhat)),
        "min_ess": float(np.nanmin(ess)),
    }
