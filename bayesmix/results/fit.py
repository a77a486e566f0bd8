"""The result of a Bayesian fit: posterior DataTree plus the spec it came from."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
import xarray as xr

from ..sample import SampleSettings
from ..spec.model import ModelSpec
from ..spec.terms import Design, GroupFactor
from . import predict as prediction
from .diagnostics import Diagnostics, diagnose
from .parameters import elementwise_summary, parameter_draws, summarize
from .shrinkage import shrinkage_table

if TYPE_CHECKING:
    from matplotlib.axes import Axes

    from ..api import HierarchicalModel

__all__ = ["Fit", "Sampled"]


class Sampled:
    """What every sampled fit offers on top of its ``idata`` and ``spec`` (a mixin of the fit classes)."""

    __slots__ = ()
    idata: xr.DataTree
    spec: Any

    @property
    def posterior(self) -> xr.Dataset:
        """The posterior group as a Dataset."""
        return self.idata["posterior"].to_dataset()

    @property
    def dropped(self) -> pd.Index:
        """Index labels of the rows dropped under ``missing="drop"`` (empty otherwise)."""
        return pd.Index(self.spec.dropped)

    @property
    def sampling_time(self) -> float | None:
        """Seconds the sampler spent drawing (tuning included, compilation excluded), when it reports it."""
        value = self.idata["posterior"].attrs.get("sampling_time")
        return None if value is None else float(value)

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the fit to one netCDF file; :func:`bayesmix.load` reads it back.

        The file holds every group of :attr:`idata` (readable by xarray and ArviZ), the model's
        constructor call with all its arguments, the data it was built on (dropped rows, dtypes
        and categorical levels included) and the sampler settings; see
        :mod:`bayesmix.results.io`. A loaded fit gives the same ``summary()``, ``compare()`` and
        predictions as this one.

        Parameters
        ----------
        path
            Where to write, conventionally ending in ``.nc``; an existing file is replaced.

        Returns
        -------
        pathlib.Path
            The path written.
        """
        from .io import save  # io reads the fit classes; imported here to keep the import order simple

        return save(self, path)  # type: ignore[arg-type]

    @property
    def compile_time(self) -> float | None:
        """Seconds nutpie spent compiling the model (near 0 when a compiled model was reused)."""
        value = self.idata["posterior"].attrs.get("compile_time")
        return None if value is None else float(value)

    @property
    def backend(self) -> str | None:
        """The compiler nutpie used for this fit (``"numba"`` or ``"jax"``); None for the other samplers."""
        value = self.idata["posterior"].attrs.get("nutpie_backend")
        return None if value is None else str(value)


@dataclass(frozen=True, slots=True, kw_only=True)
class Fit(Sampled):
    """A fitted Bayesian hierarchical model.

    Attributes
    ----------
    idata
        The ``xarray.DataTree`` (posterior, sample_stats, observed_data); group levels
        are coordinates.
    spec
        The model specification (formula, family, priors, missing-data policy, dropped rows).
    design
        The evaluated design the model was fitted to.
    settings
        Sampler settings.
    wall_time
        Seconds from the call to ``fit`` to the end of sampling (compilation included).
    model
        The model object that produced this fit.
    """

    idata: xr.DataTree
    spec: ModelSpec
    design: Design
    settings: SampleSettings
    wall_time: float
    model: HierarchicalModel
    _cache: dict[str, Any] = field(default_factory=dict, repr=False, init=False)

    def draws(self) -> xr.Dataset:
        """Draws of every parameter under its public name (``Days``, ``sd(Days|Subject)``, ...)."""
        if "draws" not in self._cache:
            self._cache["draws"] = parameter_draws(self.posterior, self.design)
        return self._cache["draws"]

    def summary(self, prob: float = 0.95) -> pd.DataFrame:
        """Posterior summary per parameter.

        Columns: mean, sd, equal-tailed interval bounds at ``prob``, mcse_mean,
        ess_bulk, ess_tail, r_hat. Rows use the public parameter names.
        """
        return summarize(self.draws(), prob)

    def diagnostics(self) -> Diagnostics:
        """R-hat, bulk/tail ESS, MCSE, divergences, tree-depth saturation and E-BFMI, with advice."""
        if "diagnostics" not in self._cache:
            self._cache["diagnostics"] = diagnose(self.idata)
        return self._cache["diagnostics"]

    def priors(self) -> pd.DataFrame:
        """The prior of every parameter, defaults included."""
        return self.spec.prior_table()

    def _factor(self, group: str) -> GroupFactor:
        for factor in self.design.factors:
            if factor.name == group:
                return factor
        names = [f.name for f in self.design.factors]
        raise ValueError(f"no grouping factor {group!r} in this model; factors: {names}")

    def random_effects(self, group: str | None = None, prob: float = 0.95) -> pd.DataFrame:
        """Posterior mean, sd and interval of each random effect (deviation from the fixed effect).

        Rows are ``(factor, level, term)``.
        """
        factors = [self._factor(group)] if group is not None else list(self.design.factors)
        frames = []
        for factor in factors:
            stats = elementwise_summary(self.posterior[f"re_{factor.name}"], prob)  # (levels, terms)
            index = pd.MultiIndex.from_product(
                [[factor.name], list(factor.levels), list(factor.terms)], names=["factor", "level", "term"]
            )
            frames.append(pd.DataFrame({k: v.ravel() for k, v in stats.items()}, index=index))
        return pd.concat(frames)

    def predict(
        self,
        new_data: pd.DataFrame | None = None,
        kind: prediction.Kind = "mean",
        *,
        random_seed: int | None = None,
        include_new_levels: bool = True,
    ) -> xr.DataArray:
        r"""Posterior predictions, one per posterior draw.

        Parameters
        ----------
        new_data
            Rows to predict, with every column the formula uses except the response (a
            binomial response needs its trials: the ``n`` of ``s | trials(n)``, or both columns
            of ``cbind(s, f)``). Other columns are ignored. None (default): the fitting data.
        kind
            ``"link"``: the linear predictor; ``"mean"`` (default): the expected response
            (for the binomial, the expected number of successes out of each row's trials; for
            the lognormal, the mean of ``y``, not of ``log y``); ``"response"``: a draw from the
            posterior predictive distribution, one per posterior draw.
        random_seed
            Seed of the random parts (unseen levels' effects, ``kind="response"`` draws).
        include_new_levels
            How to treat levels of a grouping factor that the fit never saw. True (default):
            a new group's effect is drawn from the population distribution, so its prediction
            carries the between-group variance. False: its effect is 0 (the population-level
            prediction). Levels seen in the fit always use their own posterior effects.

        Returns
        -------
        xarray.DataArray
            Dims ``(chain, draw, obs)``; ``obs`` holds the index labels of ``new_data`` (for the
            fitting data, the ``obs`` coordinate of ``observed_data``).

        Raises
        ------
        ValueError
            A needed column is absent, or has missing or non-finite values; a categorical
            variable takes a level not seen in the fit; a factor with a known covariance ``K``
            (``covariances=``) meets a level that ``K`` lacks (``K`` must include every level to
            predict when the model is built; levels of ``K`` without data are predicted from
            their posterior draws).

        Notes
        -----
        In draw :math:`s`, :math:`\eta_{si} = o_i + x_i^\top \beta_s + \sum_g b^{(g)}_{s,j_g(i)} \cdot
        z^{(g)}_i`, with :math:`b^{(g)}` the draws of ``re_g``. An unseen level :math:`j` gets
        :math:`b^{(g)}_{sj} \sim N(0, \Sigma^{(g)}_s)`, one draw per new level and posterior draw,
        with :math:`\Sigma^{(g)}_s` built from that draw's ``sd_g`` and ``corr_g``. The mean and the
        predictive draws use the family's inverse link and distribution
        (:mod:`bayesmix.spec.families`).
        """
        return prediction.predict(
            self, new_data, kind, random_seed=random_seed, include_new_levels=include_new_levels
        )

    def ppc(self, *, random_seed: int | None = None) -> xr.DataTree:
        """Posterior predictive draws of the observed response, for posterior predictive checks.

        The draws (``predict(kind="response")`` on the fitting data) are stored as the group
        ``posterior_predictive`` of :attr:`idata`, under the response's name with dims
        ``(chain, draw, obs)`` as in ``observed_data``; a later call replaces them.

        Returns
        -------
        xarray.DataTree
            The ``posterior_predictive`` group.
        """
        return prediction.posterior_predictive(self, random_seed=random_seed)

    def plot_ppc(self, **kwargs: Any) -> Any:
        """Plot the posterior predictive distribution against the data (arviz-plots ``plot_ppc_dist``).

        Draws the posterior predictive with :meth:`ppc` first when :attr:`idata` has none.
        Keyword arguments go to ``arviz_plots.plot_ppc_dist``; for discrete families ``kind``
        defaults to ``"ecdf"`` (arviz-plots also offers ``plot_ppc_rootogram`` for counts and
        ``plot_ppc_pava`` for 0/1 responses, which take ``fit.idata``). Returns the
        ``PlotCollection``.
        """
        return prediction.plot_ppc(self, **kwargs)

    def loo(self, pointwise: bool = False) -> Any:
        """PSIS-LOO cross-validation (arviz-stats ``loo``) from the pointwise log-likelihood.

        The log-likelihood of every observation is evaluated at every posterior draw with
        the model's own likelihood. A warning names how many observations have a Pareto k
        above arviz-stats' reliability threshold (0.7, lower with fewer than about 2200 draws).

        Parameters
        ----------
        pointwise
            Keep the pointwise ``elpd_i`` and ``pareto_k`` in the result.

        Returns
        -------
        arviz_stats.ELPDData
            ``elpd``, ``se``, ``p`` (effective number of parameters), ...
        """
        if "loo" not in self._cache:
            self._cache["loo"] = prediction.psis_loo(self)
        return prediction.report_loo(self._cache["loo"], pointwise=pointwise)

    def shrinkage(self, group: str, prob: float = 0.95) -> pd.DataFrame:
        """Per level of ``group``: n, no-pooling, complete-pooling and partially pooled estimates.

        See :func:`bayesmix.results.shrinkage.shrinkage_table` for the definitions.
        """
        self.spec.require_gaussian("the shrinkage table")
        return shrinkage_table(self.posterior, self.design, self._factor(group), prob)

    def compare(
        self,
        reference: str = "ml",
        *,
        reml: bool | None = None,
        method: str | None = None,
        prob: float = 0.95,
    ) -> pd.DataFrame:
        """The posterior beside the frequentist fit of the same model, one row per parameter.

        Parameters
        ----------
        reference
            ``"ml"``: bayesmix's own fit (:meth:`HierarchicalModel.fit_ml`): exact (RE)ML for
            the Gaussian family, ML by the Laplace approximation for the others;
            ``"statsmodels"``: statsmodels ``MixedLM`` (Gaussian family only).
        reml
            ``None`` (default): REML for the Gaussian family (as lme4), ML otherwise;
            ``True``: REML (Gaussian only); ``False``: ML.
        method
            Meta-analysis models (``y | se(s) ~ ...``) only: ``"REML"``, ``"ML"`` or ``"DL"``
            (DerSimonian-Laird), as :meth:`HierarchicalModel.fit_ml`.
        prob
            Interval probability for both sides.

        Returns
        -------
        pandas.DataFrame
            Columns ``mean``, ``sd``, ``lower``, ``upper`` (posterior), ``estimate``,
            ``std_error``, ``ci_lower``, ``ci_upper`` (frequentist) and ``diff_sd``:
            (posterior mean - estimate) / posterior sd.
        """
        # The compare layer sits to the right of results; this convenience method reaches
        # into it at call time only, so results never depends on it at import.
        from ..compare.table import side_by_side

        return side_by_side(self, reference=reference, reml=reml, method=method, prob=prob)

    # ----- plots (bayesmix.plots; matplotlib loads when one is drawn) -------------------------
    def plot_shrinkage(self, group: str, term: str = "Intercept", *, ax: Axes | None = None) -> Axes:
        """No-pooling estimates and their shrinkage by the model: :func:`bayesmix.plots.plot_shrinkage`."""
        from ..plots import plot_shrinkage

        return plot_shrinkage(self, group, term, ax=ax)

    def plot_compare(self, *, prob: float = 0.95, ax: Axes | None = None, **compare_kwargs: Any) -> Axes:
        """Forest plot of the posterior beside the (RE)ML fit: :func:`bayesmix.plots.plot_compare`."""
        from ..plots import plot_compare

        return plot_compare(self, prob=prob, ax=ax, **compare_kwargs)

    def plot_trace(self, var_names: str | list[str] | None = None, **kwargs: Any) -> Any:
        """Trace and marginal density per parameter: :func:`bayesmix.plots.plot_trace`."""
        from ..plots import plot_trace

        return plot_trace(self, var_names, **kwargs)

    def plot_rank(self, var_names: str | list[str] | None = None, **kwargs: Any) -> Any:
        """Rank plots per parameter and chain: :func:`bayesmix.plots.plot_rank`."""
        from ..plots import plot_rank

        return plot_rank(self, var_names, **kwargs)

    def plot_forest(self, group: str | None = None, *, prob: float = 0.95, ax: Axes | None = None) -> Axes:
        """Forest plot of a meta-analysis, study by study and pooled: :func:`bayesmix.plots.plot_forest`."""
        from ..plots import plot_forest

        return plot_forest(self, group, prob=prob, ax=ax)
