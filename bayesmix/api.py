"""The public builders: ``bx.hierarchical`` and ``bx.mixed``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import pandas as pd
import pymc as pm

from .build.model import build_model
from .results.fit import Fit
from .sample import SampleSettings, run_nuts, shrink_for_tests
from .spec.model import Kind, ModelSpec, specify
from .spec.priors import Prior
from .spec.terms import Design

if TYPE_CHECKING:
    from .compare.mlfit import MLFit

__all__ = ["HierarchicalModel", "hierarchical", "mixed"]


class HierarchicalModel:
    """A specified hierarchical model and its PyMC graph.

    Build it with :func:`hierarchical` or :func:`mixed`. The object is not changed by
    fitting: :meth:`fit` and :meth:`fit_ml` return new result objects.

    Attributes
    ----------
    spec
        What was asked for, with defaults filled in (priors, dropped rows).
    design
        The evaluated design (response, fixed-effect columns, grouping factors).
    pymc_model
        The ``pm.Model``; inspect it or extend it before calling :meth:`fit`.
    """

    def __init__(self, spec: ModelSpec, design: Design) -> None:
        self.spec = spec
        self.design = design
        self.pymc_model: pm.Model = build_model(spec, design)

    def __repr__(self) -> str:
        factors = ", ".join(f"{f.name} ({f.n_levels} levels)" for f in self.design.factors) or "none"
        return (
            f"<{self.spec.kind} model {self.spec.formula!r}, family {self.spec.family}, "
            f"{self.design.n_obs} rows, grouping factors: {factors}>"
        )

    def fit(
        self,
        *,
        draws: int = 1000,
        tune: int = 1000,
        chains: int = 4,
        random_seed: int | None = None,
        sampler: str = "nutpie",
        target_accept: float = 0.8,
        progressbar: bool = True,
    ) -> Fit:
        """Sample the posterior with NUTS.

        Parameters
        ----------
        draws, tune, chains
            Post-warmup draws per chain, warmup steps, number of chains.
        random_seed
            Seed for reproducible draws.
        sampler
            ``"nutpie"`` (default), ``"pymc"``, ``"numpyro"`` or ``"blackjax"``.
        target_accept
            Target acceptance rate in (0, 1); raise it when there are divergences.
        progressbar
            Show the sampler's progress bar.

        Returns
        -------
        Fit
        """
        settings = SampleSettings(
            draws=draws,
            tune=tune,
            chains=chains,
            random_seed=random_seed,
            sampler=sampler,
            target_accept=target_accept,
            progressbar=progressbar,
        )
        settings = shrink_for_tests(settings)
        idata, wall = run_nuts(self.pymc_model, settings)
        return Fit(
            idata=idata, spec=self.spec, design=self.design, settings=settings, wall_time=wall, model=self
        )

    def fit_ml(self, *, reml: bool = True) -> MLFit:
        """The frequentist fit of the same model: REML (default, as lme4) or ML.

        The random effects are integrated out analytically and the profiled
        (restricted) log-likelihood is maximized; see :mod:`bayesmix.compare.lmm`.
        """
        from .compare.mlfit import fit_ml  # the compare layer sits to the right of the model

        return fit_ml(self.design, reml=reml)


def _make(
    kind: Kind,
    formula: str,
    data: pd.DataFrame,
    family: str,
    priors: Mapping[str, Prior] | None,
    missing: str,
    centered: Sequence[str],
) -> HierarchicalModel:
    spec, design = specify(
        formula, data, family=family, kind=kind, priors=priors, missing=missing, centered=tuple(centered)
    )
    return HierarchicalModel(spec, design)


def hierarchical(
    formula: str,
    data: pd.DataFrame,
    *,
    family: str = "gaussian",
    priors: Mapping[str, Prior] | None = None,
    missing: str = "error",
    centered: Sequence[str] = (),
) -> HierarchicalModel:
    """A Bayesian hierarchical model from an lme4-style formula.

    Parameters
    ----------
    formula
        ``"y ~ x + (x | g)"``: fixed effects as in formulae; random effects
        ``(1 | g)``, ``(x | g)`` (correlated), ``(x || g)`` (uncorrelated), ``(1 | a/b)``
        (nested), ``(1 | a) + (1 | b)`` (crossed).
    data
        One row per observation.
    family
        Response distribution; ``"gaussian"``.
    priors
        Priors by public parameter name, e.g. ``{"Days": bx.priors.Normal(0, 10),
        "sd(Days|Subject)": bx.priors.HalfNormal(10), "corr(Subject)": bx.priors.LKJ(2)}``.
        Unnamed parameters get weakly informative defaults scaled to the data
        (:func:`bayesmix.spec.model.default_priors`).
    missing
        ``"error"`` (default): NaN or inf in a used column is an error. ``"drop"``: such
        rows are dropped with a warning and recorded on the model and fit.
    centered
        Grouping factors to give the centered parametrization (default non-centered).

    Returns
    -------
    HierarchicalModel

    Examples
    --------
    >>> import bayesmix as bx
    >>> sleep = bx.datasets.load("sleepstudy")
    >>> model = bx.hierarchical("Reaction ~ Days + (Days | Subject)", sleep)
    >>> [f.name for f in model.design.factors], model.design.fixed_names
    (['Subject'], ('Intercept', 'Days'))
    """
    return _make("hierarchical", formula, data, family, priors, missing, centered)


def mixed(
    formula: str,
    data: pd.DataFrame,
    *,
    family: str = "gaussian",
    priors: Mapping[str, Prior] | None = None,
    missing: str = "error",
    centered: Sequence[str] = (),
) -> HierarchicalModel:
    """The linear mixed model: :func:`hierarchical` with flat priors on the fixed effects.

    With flat fixed-effect priors the posterior of the fixed effects given the variance
    parameters is the generalized-least-squares distribution that REML is built on; see
    the user guide's section on the flat-prior/REML equivalence. Arguments as for
    :func:`hierarchical`; a prior given for a fixed effect replaces its flat prior.

    Examples
    --------
    >>> import bayesmix as bx
    >>> model = bx.mixed("Reaction ~ Days + (Days | Subject)", bx.datasets.load("sleepstudy"))
    >>> model.spec.priors["Days"]
    Flat()
    """
    return _make("mixed", formula, data, family, priors, missing, centered)
