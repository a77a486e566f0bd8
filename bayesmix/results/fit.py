"""The result of a Bayesian fit: posterior DataTree plus the spec it came from."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pandas as pd
import xarray as xr

from ..sample import SampleSettings
from ..spec.model import ModelSpec
from ..spec.terms import Design, GroupFactor
from .diagnostics import Diagnostics, diagnose
from .parameters import elementwise_summary, parameter_draws, summarize
from .shrinkage import shrinkage_table

if TYPE_CHECKING:
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

    def shrinkage(self, group: str, prob: float = 0.95) -> pd.DataFrame:
        """Per level of ``group``: n, no-pooling, complete-pooling and partially pooled estimates.

        See :func:`bayesmix.results.shrinkage.shrinkage_table` for the definitions.
        """
        self.spec.require_gaussian("the shrinkage table")
        return shrinkage_table(self.posterior, self.design, self._factor(group), prob)

    def compare(self, reference: str = "ml", *, reml: bool = True, prob: float = 0.95) -> pd.DataFrame:
        """The posterior beside the frequentist fit of the same model, one row per parameter.

        Parameters
        ----------
        reference
            ``"ml"``: bayesmix's own (RE)ML fit (:meth:`HierarchicalModel.fit_ml`);
            ``"statsmodels"``: statsmodels ``MixedLM``.
        reml
            REML (default, as lme4) or ML.
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
        self.spec.require_gaussian("the comparison with a frequentist fit")
        from ..compare.table import side_by_side

        return side_by_side(self, reference=reference, reml=reml, prob=prob)
