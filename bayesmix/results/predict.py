r"""Predictions, posterior predictive draws and PSIS-LOO of a hierarchical fit.

Everything is computed draw by draw from the posterior. With ``S`` posterior draws,
the linear predictor of row ``i`` in draw ``s`` is

.. math::

    \eta_{si} = o_i + x_i^\top \beta_s + \sum_g \sum_t b^{(g)}_{s, j_g(i), t}\, z^{(g)}_{it},

with ``o`` the offset, ``b^(g)`` the draws of ``re_g`` (each level's deviation from the
fixed effects) and ``z^(g)`` the values of the factor's terms. A level that the fit never
saw gets, in each draw, a fresh effect from the population distribution
``N(0, Sigma_s)`` of its factor (``Sigma_s`` from that draw's ``sd_g`` and ``corr_g``).
The response scale and the predictive draws go through the family registry
(:meth:`bayesmix.spec.families.Family.mean` and :func:`bayesmix.build.families.family_dist`),
so each family is defined once.
"""

from __future__ import annotations

import dataclasses
import warnings
from typing import TYPE_CHECKING, Any, Literal

import arviz_stats as azs
import numpy as np
import numpy.typing as npt
import pandas as pd
import pymc as pm
import xarray as xr
from numba.core.errors import NumbaWarning

from ..build.families import family_dist, family_logp
from ..build.random_effects import dims_of
from ..sample import check_seed
from ..spec.formula import parse
from ..spec.newdata import evaluate_new
from ..spec.terms import Design, GroupFactor

if TYPE_CHECKING:
    from .fit import Fit

__all__ = [
    "KINDS",
    "linear_predictor",
    "log_likelihood",
    "new_level_effects",
    "plot_ppc",
    "posterior_predictive",
    "predict",
    "psis_loo",
    "report_loo",
]

FloatArray = npt.NDArray[np.float64]
Kind = Literal["link", "mean", "response"]
KINDS: tuple[str, ...] = ("link", "mean", "response")
_PARETO_WARNING = "Estimated shape parameter of Pareto distribution"  # arviz-stats' generic k warning


def _flat(posterior: xr.Dataset, name: str, dims: tuple[str, ...] = ()) -> FloatArray:
    """Draws of a posterior variable as ``(S, *dims)``, chains one after the other."""
    array = posterior[name].transpose("chain", "draw", *dims)
    return np.asarray(array.values, dtype=float).reshape(-1, *array.shape[2:])


def new_level_effects(
    posterior: xr.Dataset, factor: GroupFactor, n_new: int, rng: np.random.Generator
) -> FloatArray:
    """Effects of ``n_new`` unseen levels, drawn per posterior draw from ``N(0, Sigma_s)``: ``(S, n_new, q)``.

    ``Sigma_s = D_s R_s D_s`` with ``D_s = diag(sd_g)`` and ``R_s`` the identity except for the
    correlated block, which holds that draw's ``corr_g``.
    """
    dims = dims_of(factor)
    sd = _flat(posterior, f"sd_{factor.name}", (dims["terms"],))  # (S, q)
    chol = np.broadcast_to(np.eye(factor.n_terms), (sd.shape[0], factor.n_terms, factor.n_terms)).copy()
    if factor.correlated:
        corr = _flat(posterior, f"corr_{factor.name}", (dims["corr_rows"], dims["corr_cols"]))
        pos = np.array(factor.correlated_positions)
        chol[:, pos[:, None], pos[None, :]] = np.linalg.cholesky(corr)
    z = rng.standard_normal((sd.shape[0], n_new, factor.n_terms))
    return np.einsum("srq,skq->skr", sd[:, :, None] * chol, z)


def linear_predictor(
    posterior: xr.Dataset,
    fitted: Design,
    design: Design,
    rng: np.random.Generator,
    *,
    include_new_levels: bool = True,
) -> FloatArray:
    """The linear predictor ``eta`` of ``design``'s rows in every posterior draw: ``(S, n)``.

    Parameters
    ----------
    posterior
        The fit's posterior.
    fitted
        The design the model was fitted to.
    design
        The rows to predict: ``fitted`` itself or :func:`bayesmix.spec.newdata.evaluate_new`'s output,
        whose grouping factors list the unseen levels after the fitted ones.
    rng
        Source of the unseen levels' effects.
    include_new_levels
        Draw unseen levels' effects from the population distribution (True) or set them to 0.
    """
    size = posterior.sizes["chain"] * posterior.sizes["draw"]
    eta = np.zeros((size, design.n_obs))
    if design.offset is not None:
        eta += design.offset
    if design.fixed_names:
        eta += _flat(posterior, "beta", ("coef",)) @ design.X.T
    levels = {f.name: f.n_levels for f in fitted.factors}
    for factor in design.factors:
        dims = dims_of(factor)
        re = _flat(posterior, f"re_{factor.name}", (dims["levels"], dims["terms"]))  # (S, J, q)
        n_new = factor.n_levels - levels[factor.name]
        if n_new:
            extra = (
                new_level_effects(posterior, factor, n_new, rng)
                if include_new_levels
                else np.zeros((size, n_new, factor.n_terms))
            )
            re = np.concatenate([re, extra], axis=1)
        for t in range(factor.n_terms):
            eta += re[:, factor.index, t] * factor.values[:, t]
    return eta


def _auxiliary(posterior: xr.Dataset, names: tuple[str, ...]) -> dict[str, FloatArray]:
    """The family's auxiliary parameters as ``(S, 1)`` columns, broadcasting against ``(S, n)``."""
    return {name: _flat(posterior, name)[:, None] for name in names}


def _known_sd(fitted: Design, design: Design, kind: str) -> dict[str, FloatArray]:
    """``sigma`` as each row's known SD (``y | se(s)``), a ``(1, n)`` row; empty for other models.

    Predictive draws of new rows need their SDs (the ``s`` column of ``se(s)``); the mean and
    the linear predictor do not.
    """
    if fitted.known_sd is None or kind != "response":
        return {}
    if design.known_sd is None:
        raise ValueError(
            "predictive draws (kind='response') of a model with known SDs (y | se(...)) need each new "
            "row's SD: give the new data the column(s) of se(...), or predict kind='mean' (the true effect)"
        )
    return {"sigma": design.known_sd[None, :]}


def predict(
    fit: Fit,
    new_data: pd.DataFrame | None = None,
    kind: Kind = "mean",
    *,
    random_seed: int | None = None,
    include_new_levels: bool = True,
) -> xr.DataArray:
    """Posterior predictions of a hierarchical fit; see :meth:`bayesmix.Fit.predict`."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(map(repr, KINDS))}, got {kind!r}")
    if not isinstance(include_new_levels, bool):
        raise TypeError(f"include_new_levels must be True or False, got {include_new_levels!r}")
    check_seed(random_seed)
    posterior = fit.posterior
    rng = np.random.default_rng(random_seed)
    if new_data is None:
        design = fit.design
        obs = fit.idata["observed_data"]["obs"].values
    else:
        design = evaluate_new(parse(fit.spec.formula), fit.design, new_data)
        obs = new_data.index.to_numpy()
    eta = linear_predictor(posterior, fit.design, design, rng, include_new_levels=include_new_levels)
    family = fit.spec.family_def
    aux = _auxiliary(posterior, fit.design.auxiliary) | _known_sd(fit.design, design, kind)
    if kind == "link":
        values = eta
    elif kind == "mean":
        values = family.mean(eta, aux)
        if design.trials is not None:
            values = values * design.trials  # expected successes out of the row's trials
    else:
        values = np.asarray(pm.draw(family_dist(family, eta, aux, design.trials), random_seed=rng))
    shape = (posterior.sizes["chain"], posterior.sizes["draw"], design.n_obs)
    return xr.DataArray(
        values.reshape(shape),
        dims=("chain", "draw", "obs"),
        coords={"chain": posterior["chain"].values, "draw": posterior["draw"].values, "obs": obs},
        name=fit.design.response_name,
        attrs={"kind": kind},
    )


def posterior_predictive(fit: Fit, *, random_seed: int | None = None) -> xr.DataTree:
    """Draws of the observed response, one per posterior draw, stored as ``posterior_predictive``."""
    name = fit.design.response_name
    draws = predict(fit, None, "response", random_seed=random_seed)
    observed = fit.idata["observed_data"][name]
    dataset = xr.Dataset({name: draws.astype(observed.dtype)})
    fit.idata["posterior_predictive"] = xr.DataTree(dataset)
    return fit.idata.children["posterior_predictive"]


def plot_ppc(fit: Fit, **kwargs: Any) -> Any:
    """arviz-plots' ``plot_ppc_dist`` of the fit (drawing the posterior predictive first if needed).

    For discrete families the default ``kind`` is ``"ecdf"``: densities of counts mislead.
    """
    import arviz_plots as azp  # matplotlib and the plotting stack load only when a plot is asked for

    if "posterior_predictive" not in fit.idata.children:
        posterior_predictive(fit)
    if fit.spec.family_def.discrete:
        kwargs.setdefault("kind", "ecdf")
    return azp.plot_ppc_dist(fit.idata, **kwargs)


def log_likelihood(fit: Fit) -> xr.DataArray:
    """Pointwise log-likelihood ``log p(y_i | theta_s)`` at every posterior draw: dims ``(chain, draw, obs)``.

    The likelihood is the model's own (:func:`bayesmix.build.families.family_logp`) at the linear
    predictor of each draw. (PyMC's ``compute_log_likelihood`` cannot be used: it fails on models
    with an LKJ correlation, whose value variable is named differently from its posterior draws.)
    """
    posterior, design = fit.posterior, fit.design
    family = fit.spec.family_def
    eta = linear_predictor(posterior, design, design, np.random.default_rng(0))  # no unseen levels
    aux = _auxiliary(posterior, design.auxiliary) | _known_sd(design, design, "response")
    with warnings.catch_warnings():
        # numba cannot cache on disk a function with the data folded in; it runs it all the same
        warnings.filterwarnings("ignore", message="Cannot cache compiled function", category=NumbaWarning)
        values = np.asarray(family_logp(family, eta, aux, design.y, design.trials).eval(), dtype=float)
    observed = fit.idata["observed_data"]["obs"]
    return xr.DataArray(
        values.reshape(posterior.sizes["chain"], posterior.sizes["draw"], design.n_obs),
        dims=("chain", "draw", "obs"),
        coords={"chain": posterior["chain"].values, "draw": posterior["draw"].values, "obs": observed.values},
        name=design.response_name,
    )


def psis_loo(fit: Fit) -> Any:
    """PSIS-LOO (arviz-stats, pointwise) from :func:`log_likelihood`.

    arviz-stats' own Pareto k warning is left to :func:`report_loo`, which counts the
    observations concerned.
    """
    name = fit.design.response_name
    tree = fit.idata.copy()
    tree["log_likelihood"] = xr.DataTree(xr.Dataset({name: log_likelihood(fit)}))
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=_PARETO_WARNING, category=UserWarning)
        return azs.loo(tree, pointwise=True, var_name=name)


def report_loo(result: Any, *, pointwise: bool) -> Any:
    """Warn when Pareto k is high for some observations; drop the pointwise values unless asked for."""
    high = int((np.asarray(result.pareto_k) > result.good_k).sum())
    if high:
        warnings.warn(
            f"{high} of {result.n_data_points} observations have a Pareto k above {result.good_k:.2f}, so "
            "PSIS-LOO is unreliable for them (their left-out posterior differs too much from the full "
            "posterior): check them with fit.loo(pointwise=True).pareto_k, and use K-fold "
            "cross-validation or a more robust model",
            UserWarning,
            stacklevel=3,
        )
    if pointwise:
        return result
    return dataclasses.replace(result, elpd_i=None, pareto_k=None)
