"""The public builders: ``bx.hierarchical`` and ``bx.mixed``."""

from __future__ import annotations

import numbers
import time
import warnings
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import arviz_stats as azs
import numpy as np
import pandas as pd
import pymc as pm

from .build.mixtures import build_mixture_model
from .build.model import build_model
from .results.fit import Fit
from .results.marginal import recover_random_effects, with_original_rows
from .results.mixture import MixtureFit
from .sample import SampleSettings, check_seed, run_nuts, run_nuts_from, shrink_for_tests
from .spec.aggregate import aggregate_binomial
from .spec.families import PointMass
from .spec.mixture import AUTO, MixtureDesign, MixtureSpec, order_key, specify_mixture
from .spec.model import Centering, Kind, ModelSpec, specify
from .spec.priors import Prior
from .spec.terms import Design

if TYPE_CHECKING:
    from .compare.fmm import MixtureMLFit
    from .compare.meta import MetaFit
    from .compare.mlfit import MLFit

__all__ = ["HierarchicalModel", "MixtureModel", "compare_fits", "compare_k", "fmm", "hierarchical", "mixed"]

#: rows from which ``backend="auto"`` compiles a model that samples every parameter with JAX
AUTO_JAX_ROWS = 10_000


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
        The ``pm.Model``; inspect it or extend it before calling :meth:`fit`. For a
        Bernoulli or binomial model whose rows share few distinct covariate values, it is
        built on the summed rows (``aggregated``), which gives the same posterior.
    aggregated
        The summed rows the graph was built on (:mod:`bayesmix.spec.aggregate`), or None.
    data
        The data frame the model was built from, as given (rows dropped under
        ``missing="drop"`` included); ``fit.save`` stores it so that ``bx.load`` can rebuild the model.
    """

    def __init__(self, spec: ModelSpec, design: Design, data: pd.DataFrame | None = None) -> None:
        self.spec = spec
        self.design = design
        self.data = data
        self.aggregated = None if spec.marginalized else aggregate_binomial(design, spec.family_def)
        self.pymc_model: pm.Model = build_model(spec, design, self.aggregated)

    def __repr__(self) -> str:
        forms = {
            f.name: "centered" if f.name in self.spec.centered else "non-centered"
            for f in self.design.factors
        }
        factors = ", ".join(f"{f.name} ({f.n_levels} levels, {forms[f.name]})" for f in self.design.factors)
        return (
            f"<{self.spec.kind} model {self.spec.formula!r}, family {self.spec.family} "
            f"({self.spec.link} link), {self.design.n_obs} rows, grouping factors: {factors or 'none'}>"
        )

    def parametrization(self) -> pd.DataFrame:
        """Centered or non-centered, per grouping factor, and why.

        Columns: ``parametrization``, ``information_ratio`` (the median over groups of
        ``I_j tau^2``, see :mod:`bayesmix.spec.parametrization`) and ``chosen_by`` (``"auto"``
        or ``"user"``).
        """
        rows = self.spec.parametrization
        return pd.DataFrame(
            {
                "parametrization": ["centered" if c.centered else "non-centered" for c in rows],
                "information_ratio": [c.ratio for c in rows],
                "chosen_by": [c.source for c in rows],
            },
            index=pd.Index([c.factor for c in rows], name="factor"),
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
        backend: str = "auto",
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
        backend
            nutpie's compiler: ``"numba"``, ``"jax"`` or ``"auto"`` (default): a compiled model
            of the same structure from an earlier fit in this session if there is one (only
            the data are swapped in), else JAX for models whose gradient is costly (random
            effects integrated out, or 10,000 rows and more), else numba. The choice and the
            compile time are recorded on the result (``Fit.backend``, ``Fit.compile_time``).

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
            backend=backend,
        )
        settings = shrink_for_tests(settings)
        idata, wall = run_nuts(self.pymc_model, settings, auto_backend=self._auto_backend())
        if self.spec.marginalized:
            idata = recover_random_effects(idata, self.design, settings.random_seed)
        if self.aggregated is not None:
            idata = with_original_rows(idata, self.design, self.aggregated)
        return Fit(
            idata=idata, spec=self.spec, design=self.design, settings=settings, wall_time=wall, model=self
        )

    def _auto_backend(self) -> str:
        """JAX where a gradient is costly, numba otherwise (measured: docs/benchmarks.md).

        numba compiles in about 9 s and then evaluates a small model's gradient in
        microseconds; JAX compiles in 1-3 s but each gradient costs about 60 us of calls
        between nutpie and Python. Marginalized models (cost per gradient O(J q^3)) and
        models of 10,000 rows or more are faster under JAX from a cold start.
        """
        rows = self.design.n_obs if self.aggregated is None else self.aggregated.design.n_obs
        return "jax" if self.spec.marginalized or rows >= AUTO_JAX_ROWS else "numba"

    def fit_ml(self, *, reml: bool | None = None, method: str | None = None) -> MLFit | MetaFit:
        """The frequentist fit of the same model: lme4's ``lmer`` or ``glmer``, metafor's ``rma``.

        Parameters
        ----------
        reml
            ``None`` (default): REML for the Gaussian family (as lme4's ``lmer``), maximum
            likelihood for every other family. ``False``: maximum likelihood.
            ``True``: REML, which is defined for the Gaussian family only (a ``ValueError``
            for any other family).
        method
            Models with known standard errors (``y | se(s) ~ ... + (1 | study)``) only: the
            estimator of ``tau^2``, ``"REML"`` (default), ``"ML"`` or ``"DL"``
            (DerSimonian-Laird); give ``reml=`` or ``method=``, not both. A ``ValueError``
            for any other model.

        Returns
        -------
        MLFit or MetaFit
            Estimates, standard errors and intervals under the public parameter names,
            ``log_likelihood``, ``aic``, ``bic``, conditional modes (``random_effects()``).
            A model with known standard errors gets the random-effects meta-analysis
            (:class:`~bayesmix.compare.meta.MetaFit`: pooled effect or meta-regression
            coefficients, ``tau^2`` with its SE, Cochran's Q, ``I^2``, ``H^2``).

        Notes
        -----
        Gaussian family: the random effects are integrated out exactly and the profiled
        (restricted) log-likelihood is maximized; see :mod:`bayesmix.compare.lmm`. Other
        families: the log-likelihood is the Laplace approximation at the conditional modes
        (lme4's ``glmer`` with ``nAGQ = 1``), maximized over all parameters; see
        :mod:`bayesmix.compare.laplace`. Known standard errors: see :mod:`bayesmix.compare.meta`.
        """
        from .compare.mlfit import fit_ml  # the compare layer sits to the right of the model

        return fit_ml(self.design, reml=reml, family=self.spec.family_def, method=method)


def _make(
    kind: Kind,
    formula: str,
    data: pd.DataFrame,
    family: str,
    priors: Mapping[str, Prior] | None,
    missing: str,
    centered: Centering,
    covariances: Mapping[str, object] | None,
    link: str | None,
    marginalize: bool | None,
) -> HierarchicalModel:
    spec, design = specify(
        formula,
        data,
        family=family,
        kind=kind,
        priors=priors,
        missing=missing,
        centered=centered,
        covariances=covariances,
        link=link,
        marginalize=marginalize,
    )
    return HierarchicalModel(spec, design, data)


def hierarchical(
    formula: str,
    data: pd.DataFrame,
    *,
    family: str = "gaussian",
    priors: Mapping[str, Prior] | None = None,
    missing: str = "error",
    centered: Centering = "auto",
    covariances: Mapping[str, object] | None = None,
    link: str | None = None,
    marginalize: bool | None = None,
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
        Response distribution: ``"gaussian"`` (default), or for a GLMM ``"poisson"``,
        ``"negbinomial"``, ``"bernoulli"``, ``"gamma"``, ``"lognormal"``, ``"studentt"``,
        ``"beta"``, ``"binomial"`` (response ``cbind(successes, failures)`` or
        ``successes | trials(n)``), each with its default link (see
        :mod:`bayesmix.spec.families`). Offsets are written ``offset(log(exposure))``.
    link
        The link function when the family has several (``"probit"`` for bernoulli and
        binomial); default the family's first (``"logit"``).
    marginalize
        ``None`` (default): for a Gaussian model with one grouping factor, integrate the
        random effects out exactly (per group, or jointly with a known ``K``), sample the
        fixed effects and variance parameters, then draw the random effects from their exact
        conditional posterior (:mod:`bayesmix.build.marginal`); other models sample them.
        ``False``: always sample them. ``True``: integrate them out or raise.
        ``model.spec.marginalization`` says which was done.
    priors
        Priors by public parameter name, e.g. ``{"Days": bx.priors.Normal(0, 10),
        "sd(Days|Subject)": bx.priors.HalfNormal(10), "corr(Subject)": bx.priors.LKJ(2)}``.
        Unnamed parameters get weakly informative defaults scaled to the data
        (:func:`bayesmix.spec.model.default_priors`).
    missing
        ``"error"`` (default): NaN or inf in a used column is an error. ``"drop"``: such
        rows are dropped with a warning and recorded on the model and fit.
    centered
        ``"auto"`` (default): each grouping factor gets the centered or the non-centered
        parametrization from how much the data say about each group's effects against their
        spread (:mod:`bayesmix.spec.parametrization`); the choice is recorded in
        ``model.spec.centered`` and reported by ``model.parametrization()``. A list of factor
        names centers those (and no others); a dict ``{factor: True/False}`` overrides the
        automatic choice for the factors it names.
    covariances
        Known covariance of a factor's levels: ``{"strain": K}`` gives the random effects of
        ``strain`` the covariance ``sd^2 K`` (``K (x) Sigma`` with several terms). ``K`` is a
        symmetric positive-definite DataFrame labelled by level on both axes (levels of ``K``
        without data are kept and predicted through ``K``), or an array ordered as the levels
        sorted as text. See :mod:`bayesmix.spec.covariance`.

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
    return _make(
        "hierarchical", formula, data, family, priors, missing, centered, covariances, link, marginalize
    )


def mixed(
    formula: str,
    data: pd.DataFrame,
    *,
    family: str = "gaussian",
    priors: Mapping[str, Prior] | None = None,
    missing: str = "error",
    centered: Centering = "auto",
    covariances: Mapping[str, object] | None = None,
    link: str | None = None,
    marginalize: bool | None = None,
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
    return _make("mixed", formula, data, family, priors, missing, centered, covariances, link, marginalize)


# Class parameters of a mixture are strongly correlated (weights with means of overlapping
# classes); nutpie's low-rank mass-matrix adaptation gave 3x the ESS of the diagonal one on
# the stamps mixture (benchmarks/ and docs/benchmarks.md).
_MIXTURE_NUTPIE = {"adaptation": "low_rank"}


class MixtureModel:
    """A specified finite mixture model (Stata's ``fmm``) and its PyMC graph.

    Build it with :func:`fmm`. Fitting does not change it: :meth:`fit` and :meth:`fit_ml`
    return new result objects (the maximum-likelihood search is run once and remembered).

    Attributes
    ----------
    spec
        What was asked for, with defaults filled in (families, priors, ordering, dropped rows).
    design
        The evaluated data (response, component and class designs).
    pymc_model
        The ``pm.Model`` with the class indicator summed out.
    data
        The data frame the model was built from, as given (dropped rows included); ``fit.save``
        stores it so that ``bx.load`` can rebuild the model.
    """

    def __init__(self, spec: MixtureSpec, design: MixtureDesign, data: pd.DataFrame | None = None) -> None:
        self.spec = spec
        self.design = design
        self.data = data
        self.pymc_model: pm.Model = build_mixture_model(spec, design)
        self._ml: dict[tuple[int, int, int | None, float], MixtureMLFit] = {}

    def __repr__(self) -> str:
        return (
            f"<finite mixture of {self.spec.k} classes ({', '.join(self.spec.family_names())}): "
            f"{self.spec.formula!r}, {self.design.n_obs} rows; {self.spec.ordering()}>"
        )

    def fit_ml(
        self,
        *,
        n_starts: int = 50,
        em_iterations: int = 30,
        random_seed: int | None = 0,
        warn_within: float = 1.0,
    ) -> MixtureMLFit:
        """The maximum-likelihood fit of the same likelihood (Stata's ``fmm`` estimator).

        Parameters
        ----------
        n_starts
            Random starts, each refined by EM and then maximized directly.
        em_iterations
            EM steps per start.
        random_seed
            Seed of the starts.
        warn_within
            Warn (:class:`~bayesmix.compare.fmm.CloseMaximaWarning`) when the two best
            distinct maxima lie within this many log-likelihood units.

        Returns
        -------
        MixtureMLFit
            The best non-degenerate maximum; every distinct one is in ``.local_maxima``,
            degenerate ones (refused) in ``.refused``.
        """
        from .compare.fmm import fit_mixture_ml  # the compare layer sits to the right of the model

        check_seed(random_seed)
        _check_nonnegative("warn_within", warn_within)
        key = (n_starts, em_iterations, random_seed, warn_within)
        if key not in self._ml:
            self._ml[key] = fit_mixture_ml(
                self.spec,
                self.design,
                n_starts=n_starts,
                em_iterations=em_iterations,
                random_seed=random_seed,
                warn_within=warn_within,
            )
        return self._ml[key]

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
        backend: str = "auto",
        init: str = "modes",
        start_window: float = 3.0,
        ml: MixtureMLFit | None = None,
    ) -> MixtureFit:
        """Sample the posterior with NUTS, chains started at maximum-likelihood estimates.

        Parameters
        ----------
        draws, tune, chains, random_seed, sampler, target_accept, progressbar, backend
            As for :meth:`HierarchicalModel.fit` (``"auto"``: JAX from 10,000 rows, else numba).
        init
            ``"modes"`` (default): chains spread over the distinct likelihood maxima within
            ``start_window`` log-likelihood units of the best, so that a multimodal posterior
            shows up as chains in different modes (:meth:`MixtureFit.modes`) instead of being
            missed; ``"ml"``: every chain at the best maximum; ``"prior"``: PyMC's default
            start (not recommended: mixtures need good starts). With ``"prior"`` a search that
            finds no usable maximum is a warning, not an error, and the fit has ``ml=None``
            (no :meth:`MixtureFit.compare`).
        start_window
            Log-likelihood window for ``init="modes"``.
        ml
            The maximum-likelihood fit to start from and compare with (default
            :meth:`fit_ml` with its default search).

        Returns
        -------
        MixtureFit
        """
        if init not in ("modes", "ml", "prior"):
            raise ValueError(f"init must be 'modes', 'ml' or 'prior', got {init!r}")
        _check_nonnegative("start_window", start_window)
        from .compare.fmm import MixtureMLFit  # the compare layer sits to the right of the model

        if ml is not None and not isinstance(ml, MixtureMLFit):
            raise TypeError(f"ml= must be the result of this model's fit_ml(), got {type(ml).__name__}")
        settings = shrink_for_tests(
            SampleSettings(
                draws=draws,
                tune=tune,
                chains=chains,
                random_seed=random_seed,
                sampler=sampler,
                target_accept=target_accept,
                progressbar=progressbar,
                backend=backend,
            )
        )
        auto = "jax" if self.design.n_obs >= AUTO_JAX_ROWS else "numba"
        if ml is not None and ml.spec is not self.spec:
            raise ValueError("ml= must be a fit_ml() result of this model (its spec differs)")
        start = time.perf_counter()
        if ml is None:
            try:
                ml = self.fit_ml()
            except RuntimeError as err:
                if init != "prior":
                    raise
                # the prior start needs no maximum; the fit is kept, without its ML counterpart
                warnings.warn(
                    f"no maximum-likelihood fit to compare with ({err}); sampling from PyMC's start. "
                    "compare() will not be available for this fit",
                    UserWarning,
                    stacklevel=2,
                )
        starts: tuple[float, ...] = ()
        if init == "prior":
            idata, _ = run_nuts(self.pymc_model, settings, nutpie_options=_MIXTURE_NUTPIE, auto_backend=auto)
        else:
            assert ml is not None  # fit_ml() raised otherwise
            maxima = ml.local_maxima if init == "modes" else (ml,)
            points = [
                (m.loglik, p)
                for m in maxima
                if ml.loglik - m.loglik <= start_window and (p := _initvals(self.spec, m)) is not None
            ]
            if not points:
                raise RuntimeError(
                    f"no maximum within {start_window} log-likelihood units strictly satisfies the ordering "
                    f"({self.spec.ordering()}): two ordered classes are tied there. Use init='prior', "
                    "another order_by, or fewer classes"
                )
            idata, _, chain_starts = run_nuts_from(
                self.pymc_model, settings, [p for _, p in points], _MIXTURE_NUTPIE, auto
            )
            starts = tuple(points[i][0] for i in chain_starts)
        return MixtureFit(
            idata=idata,
            spec=self.spec,
            design=self.design,
            settings=settings,
            wall_time=time.perf_counter() - start,
            model=self,
            ml=ml,
            starts=starts,
        )


def _check_nonnegative(name: str, value: object) -> None:
    """A log-likelihood window: a finite number >= 0."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number of log-likelihood units (>= 0), got {value!r}")
    if not (np.isfinite(float(value)) and float(value) >= 0):
        raise ValueError(f"{name} must be a finite number >= 0 (log-likelihood units), got {value!r}")


def _initvals(spec: MixtureSpec, ml: MixtureMLFit) -> dict[str, np.ndarray] | None:
    """A maximum as PyMC initial values; None when it violates the strict ordering (tied classes)."""
    beta, aux, gamma = ml.layout.natural(ml.maximum.theta)
    values: dict[str, np.ndarray] = {}
    if beta.size:
        values["beta"] = beta
    values.update(aux)
    if spec.k > 1:
        values["gamma"] = gamma
    for group in spec.order_groups:
        if np.any(np.diff(order_key(spec, ml.design, group, beta, aux, gamma)) <= 0):
            return None
    return values


def fmm(
    k: int,
    formula: str,
    data: pd.DataFrame,
    *,
    family: str | PointMass | Sequence[str | PointMass] = "gaussian",
    class_formula: str | None = None,
    priors: Mapping[str, Prior] | None = None,
    order_by: str | None = AUTO,
    missing: str = "error",
    trials: str | None = None,
) -> MixtureModel:
    """A Bayesian finite mixture model: Stata's ``fmm k: family y x...``.

    Parameters
    ----------
    k
        Number of classes (latent components).
    formula
        ``"y ~ x1 + x2"``: each class regresses the response on these covariates with its
        own coefficients; ``"y ~ 1"`` is a mixture of distributions.
    data
        One row per observation.
    family
        One name for all classes or a list of ``k``: ``"gaussian"``, ``"lognormal"``,
        ``"studentt"``, ``"poisson"``, ``"negbinomial"``, ``"gamma"``, ``"bernoulli"``,
        ``"binomial"`` (with ``trials=``), ``"beta"``, ``"pointmass"`` (at 0, or
        ``bx.PointMass(value)``).
    class_formula
        ``"~ z"``: covariates of the class probabilities (multinomial logit, class 1 the
        base), Stata's ``lcprob(z)``.
    priors
        Priors by public name (``"Intercept[2]"``, ``"sigma"`` for every class,
        ``"class[2]:z"``); defaults in :func:`bayesmix.spec.mixture.default_priors`.
    order_by
        The parameter whose increasing order labels the classes: default the first
        coefficient (the intercept) among classes of one family; or an auxiliary
        parameter (``"sigma"``), ``"class"`` (class probabilities), or None.
    missing
        ``"error"`` or ``"drop"`` (dropped rows are counted, warned about and recorded).
    trials
        Column with the number of binomial trials.

    Returns
    -------
    MixtureModel

    Examples
    --------
    >>> import bayesmix as bx
    >>> model = bx.fmm(3, "thickness ~ 1", bx.datasets.load("stamps"))
    >>> model.spec.ordering()
    'classes 1, 2, 3 are ordered by increasing Intercept'
    """
    spec, design = specify_mixture(
        k,
        formula,
        data,
        family=family,
        class_formula=class_formula,
        priors=priors,
        order_by=order_by,
        missing=missing,
        trials=trials,
    )
    return MixtureModel(spec, design, data)


def compare_k(
    ks: int | Sequence[int],
    formula: str,
    data: pd.DataFrame,
    *,
    fit_kwargs: Mapping[str, object] | None = None,
    ml_kwargs: Mapping[str, object] | None = None,
    **model_kwargs: object,
) -> pd.DataFrame:
    """Fit the mixture for each number of classes and compare them (Stata's ``estat ic``, plus PSIS-LOO).

    Parameters
    ----------
    ks
        The numbers of classes: an integer ``K`` means ``1..K``.
    formula, data
        As for :func:`fmm`.
    fit_kwargs
        Keyword arguments of :meth:`MixtureModel.fit` (``draws``, ``random_seed``, ...).
    ml_kwargs
        Keyword arguments of :meth:`MixtureModel.fit_ml` (``n_starts``, ``random_seed``, ...):
        the search whose maximum gives the ML columns and starts the chains.
    **model_kwargs
        Keyword arguments of :func:`fmm` (``family``, ``class_formula``, ...).

    Returns
    -------
    pandas.DataFrame
        One row per k: ML ``loglik``, ``df``, ``AIC``, ``BIC``; Bayesian ``elpd_loo``, its
        ``se``, ``p_loo``, the number of observations with Pareto k above the reliability
        threshold (``pareto_k_high``: then PSIS-LOO is unreliable for this k), and whether
        the sampling diagnostics passed (``diagnostics_ok``, which includes the mode check).
        With several k, also ``elpd_diff`` and ``dse``: each k's elpd difference from the best
        k and the standard error of that paired difference (arviz-stats ``compare``).
        Lower AIC/BIC and higher ``elpd_loo`` are better.
    """
    values = list(range(1, ks + 1)) if isinstance(ks, int) else list(ks)
    if not values or any(isinstance(k, bool) or not isinstance(k, int) or k < 1 for k in values):
        raise ValueError(f"ks must be a positive integer or a list of them, got {ks!r}")
    rows, loos = [], {}
    for k in values:
        model = fmm(k, formula, data, **model_kwargs)  # type: ignore[arg-type]
        ml = model.fit_ml(**(ml_kwargs or {}))  # type: ignore[arg-type]
        fit = model.fit(ml=ml, **(fit_kwargs or {}))  # type: ignore[arg-type]
        loo = fit.loo()
        loos[str(k)] = loo
        high = int((np.asarray(loo.pareto_k) > loo.good_k).sum())
        rows.append(
            {
                "k": k,
                "loglik": ml.loglik,
                "df": ml.df,
                "AIC": ml.aic,
                "BIC": ml.bic,
                "elpd_loo": float(loo.elpd),
                "se": float(loo.se),
                "p_loo": float(loo.p),
                "pareto_k_high": high,
                "diagnostics_ok": fit.diagnostics().ok,
            }
        )
        if high:
            warnings.warn(
                f"k = {k}: {high} observations have Pareto k above {loo.good_k:.2f}, so PSIS-LOO is "
                "unreliable there; compare with AIC/BIC or use K-fold cross-validation",
                UserWarning,
                stacklevel=2,
            )
    table = pd.DataFrame(rows).set_index("k")
    if len(values) > 1:
        # paired differences from the best k: the SE of a difference is far smaller than either SE
        ranked = azs.compare(loos, round_to="none")
        table["elpd_diff"] = [float(ranked.loc[str(k), "elpd_diff"]) for k in values]
        table["dse"] = [float(ranked.loc[str(k), "dse"]) for k in values]
    return table


def compare_fits(fits: Mapping[str, Fit | MixtureFit]) -> pd.DataFrame:
    """Compare fits of the same data by PSIS-LOO (arviz-stats ``compare``).

    Parameters
    ----------
    fits
        Two or more fits by name: hierarchical fits (:class:`Fit`) and mixture fits
        (:class:`MixtureFit`) alike, all fitted to the same observations.

    Returns
    -------
    pandas.DataFrame
        One row per fit, best first, as arviz-stats' ``compare`` returns it: ``rank``, ``elpd``,
        ``p``, ``elpd_diff`` (from the best fit), ``weight`` (stacking), ``se``, ``dse``
        (standard error of the paired difference from the best fit), ``p_worse`` (the
        probability that the fit predicts worse than the best), ``diag_diff`` and ``diag_elpd``
        (diagnostic messages on the difference and on the fit's PSIS-LOO, e.g. a Pareto k above
        the reliability threshold) and the scale.

    Raises
    ------
    ValueError
        Fewer than two fits, or fits of different data (a different number of observations,
        or different response values or binomial trials): their LOO values do not compare.
    """
    if not isinstance(fits, Mapping) or len(fits) < 2:
        raise ValueError(
            "compare_fits needs a dict of two or more fits by name, e.g. {'a': fit_a, 'b': fit_b}"
        )
    for name, fit in fits.items():
        if not isinstance(fit, Fit | MixtureFit):
            raise TypeError(f"fits[{name!r}] must be a bayesmix Fit or MixtureFit, got {type(fit).__name__}")
    (first, reference), *others = fits.items()
    for name, fit in others:
        _check_same_data(first, reference, name, fit)
    # Fit.loo keeps the pointwise values only when asked; MixtureFit.loo always keeps them.
    loos = {
        str(name): fit.loo(pointwise=True) if isinstance(fit, Fit) else fit.loo()
        for name, fit in fits.items()
    }
    return azs.compare(loos, round_to="none")


def _check_same_data(first: str, a: Fit | MixtureFit, name: str, b: Fit | MixtureFit) -> None:
    """LOO comparisons need the same observations: same count, response values and trials."""
    ya, yb = np.asarray(a.design.y, dtype=float), np.asarray(b.design.y, dtype=float)
    if ya.shape != yb.shape:
        raise ValueError(
            f"the fits {first!r} and {name!r} were fitted to different data ({ya.size} and {yb.size} "
            "observations); LOO compares models of the same observations"
        )
    for what, va, vb in [("response values", ya, yb), ("binomial trials", a.design.trials, b.design.trials)]:
        if va is None and vb is None:
            continue
        if va is None or vb is None or not np.array_equal(va, vb):
            where = "" if va is None or vb is None else f" (first at position {int(np.argmax(va != vb))})"
            raise ValueError(
                f"the fits {first!r} and {name!r} were fitted to different data: their {what} differ{where}; "
                "LOO compares models of the same observations"
            )
