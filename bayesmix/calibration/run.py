"""``bx.sbc``: simulation-based calibration of a model, its fits spread over a Dask cluster."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from ..api import HierarchicalModel, MixtureModel
from ..build.model import SHARED_RESPONSE
from .result import SBCResult, frames, uniformity_tests
from .simulate import Model, recipe_of, simulator_of
from .tasks import Job, Settings, fit_one

if TYPE_CHECKING:
    from distributed import Client

__all__ = ["sbc"]


def _check_int(name: str, value: object, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def sbc(
    model: HierarchicalModel | MixtureModel,
    n_simulations: int = 200,
    *,
    client: Client | None = None,
    draws: int = 500,
    tune: int = 500,
    chains: int = 2,
    random_seed: int | None = None,
    progressbar: bool = True,
    alpha: float = 0.01,
    max_draws: int = 99,
    random_effects: bool = False,
    fit_kwargs: Mapping[str, Any] | None = None,
    ml_kwargs: Mapping[str, Any] | None = None,
    simulate_from: HierarchicalModel | MixtureModel | None = None,
) -> SBCResult:
    """Simulation-based calibration: check that fitting the model recovers the prior it simulates from.

    Each simulation draws every parameter from the model's prior and a response from the
    model given them, keeping the model's covariates, groups and trials; refits the model
    (same formula, family, priors, covariances, parametrization and marginalization) to that
    data set; and ranks each true value among the thinned posterior draws. When the
    sampler returns the model's posterior, the ranks are uniform; a uniformity test per
    parameter, Bonferroni-corrected, gives the verdict (:attr:`SBCResult.calibrated`).

    Parameters
    ----------
    model
        A model from :func:`bayesmix.hierarchical`, :func:`bayesmix.mixed` (with proper
        priors given for the fixed effects) or :func:`bayesmix.fmm`.
    n_simulations
        Number of simulated data sets. 100 finds gross errors; a few hundred find an interval
        that is a tenth too narrow or too wide.
    client
        A ``dask.distributed.Client``: the fits run on its workers. Default: a
        ``LocalCluster`` of ``min(2, cpu count)`` single-threaded worker processes, closed
        at the end.
    draws, tune, chains
        Sampler settings of every fit.
    random_seed
        Seeds every simulation (``numpy.random.SeedSequence(random_seed).spawn``): simulation
        ``i`` draws the same truths, data and fit whatever ``n_simulations`` and the cluster.
    progressbar
        A progress bar over completed simulations.
    alpha
        Family-wise false-alarm rate of the verdict: each parameter is tested at
        ``alpha / number of parameters``.
    max_draws
        The most posterior draws a rank is taken among (``L``); each parameter's draws are
        thinned evenly to ``min(L, ESS)`` so that they are close to independent.
    random_effects
        Rank every random effect too (hierarchical models), as ``re(term|factor)[level]``.
    fit_kwargs
        Further arguments of the model's ``fit`` (``target_accept``, ``init`` for mixtures,
        ``backend``). The default backend is numba where a worker compiles the model once
        and reuses it for every later fit (Gaussian and Bernoulli models), and JAX, which
        compiles fastest, where every fit compiles anew (mixtures, and GLMMs of the other
        families, whose response is a constant of the graph).
    ml_kwargs
        Mixtures: arguments of ``fit_ml`` for the maximum-likelihood starts of each fit
        (``n_starts``, ...). A data set on which the search finds no usable maximum (every
        maximum degenerate) is fitted from PyMC's default start instead (``init="prior"``;
        ``fits["init"]`` says so and :attr:`SBCResult.problems` lists it as "no ML start").
    simulate_from
        A model of the same data and parameters whose prior draws the truths and data
        (default ``model``). A different prior here shows what miscalibration looks like.

    Returns
    -------
    SBCResult
        Ranks, PIT values, true values, per-fit diagnostics (divergences, R-hat, ESS, errors:
        :attr:`SBCResult.problems`), the tests and the verdict, and the plots.

    Notes
    -----
    Marginalized Gaussian models are simulated from the same model with the random effects
    sampled (the same prior and likelihood), and mixtures inside their ordering constraint
    (:mod:`bayesmix.calibration.simulate`). Ranks, thinning and the test (the ECDF test of
    Säilynoja et al., 2022) are in :mod:`bayesmix.calibration.ranks`. A simulation whose fit
    raised is left out of the tests and listed in :attr:`SBCResult.problems`.

    Run it from a script under ``if __name__ == "__main__":``: the default cluster's worker
    processes import the script that starts them.

    References
    ----------
    Talts, S., Betancourt, M., Simpson, D., Vehtari, A. and Gelman, A. (2018). Validating
    Bayesian inference algorithms with simulation-based calibration. arXiv:1804.06788.

    Säilynoja, T., Bürkner, P.-C. and Vehtari, A. (2022). Graphical test for discrete
    uniformity and its applications in goodness-of-fit evaluation and multiple sample
    comparison. Statistics and Computing 32, 32.

    Examples
    --------
    >>> import bayesmix as bx
    >>> model = bx.hierarchical("y ~ x + (1 | g)", data)  # doctest: +SKIP
    >>> result = bx.sbc(model, 200, random_seed=1)  # doctest: +SKIP
    >>> result.calibrated, result.tests  # doctest: +SKIP
    """
    if not isinstance(model, HierarchicalModel | MixtureModel):
        raise TypeError(
            f"model must be a bayesmix model (bx.hierarchical, bx.mixed, bx.fmm), got {type(model)}"
        )
    n = _check_int("n_simulations", n_simulations, 2)
    if isinstance(alpha, bool) or not isinstance(alpha, int | float) or not 0 < alpha < 1:
        raise ValueError(f"alpha must be a number strictly between 0 and 1, got {alpha!r}")
    settings = Settings(
        draws=_check_int("draws", draws, 1),
        tune=_check_int("tune", tune, 0),
        chains=_check_int("chains", chains, 1),
        max_draws=_check_int("max_draws", max_draws, 1),
        random_effects=bool(random_effects) and isinstance(model, HierarchicalModel),
        fit_kwargs={"backend": _default_backend(model), **(fit_kwargs or {})},
        ml_kwargs=dict(ml_kwargs or {}),
    )
    recipe = recipe_of(model)
    simulator = simulator_of(_source(model, simulate_from), settings.random_effects)
    root = np.random.SeedSequence(random_seed)
    jobs = []
    for i, child in enumerate(root.spawn(n)):
        sim_seed, fit_seed, rank_seed = (int(s) for s in child.generate_state(3))
        truths, y = simulator.draw(sim_seed)
        jobs.append(Job(index=i, y=y, truths=truths, fit_seed=fit_seed, rank_seed=rank_seed))
    records = _run(recipe, jobs, settings, client, progressbar)
    names = list(jobs[0].truths)
    tables = frames(records, [j.truths for j in jobs], names)
    return SBCResult(
        **tables,
        tests=uniformity_tests(tables["pit"], alpha),
        alpha=float(alpha),
        settings={
            "n_simulations": n,
            "draws": settings.draws,
            "tune": settings.tune,
            "chains": settings.chains,
            "max_draws": settings.max_draws,
            "random_seed": random_seed,
            "seed_entropy": root.entropy,
            "fit_kwargs": dict(settings.fit_kwargs),
            "ml_kwargs": dict(settings.ml_kwargs),
        },
    )


def _default_backend(model: Model) -> str:
    """The compiler for every fit: numba where a compiled model is reused, else JAX (fast to compile).

    Mixtures, and GLMMs whose response is a constant of the graph (families outside
    :data:`bayesmix.build.model.SHARED_RESPONSE`), compile every fit.
    """
    if isinstance(model, MixtureModel) or model.spec.family not in SHARED_RESPONSE:
        return "jax"
    return "numba"


def _source(model: Model, simulate_from: Model | None) -> Model:
    """The model that simulates: ``model`` or a compatible one with other priors."""
    if simulate_from is None:
        return model
    if type(simulate_from) is not type(model):
        raise TypeError("simulate_from must be a model of the same kind as model")
    if (
        set(simulate_from.spec.priors) != set(model.spec.priors)
        or simulate_from.design.n_obs != model.design.n_obs
    ):
        raise ValueError("simulate_from must have the same parameters and rows as model (other priors only)")
    return simulate_from


def _run(
    recipe: Any, jobs: list[Job], settings: Settings, client: Client | None, progressbar: bool
) -> list[Any]:
    """Submit one task per simulation; collect the records as they complete."""
    from distributed import Client, LocalCluster, as_completed
    from tqdm.auto import tqdm  # type: ignore[import-untyped]  # tqdm ships no type information

    cluster = None
    if client is None:
        cluster = LocalCluster(
            n_workers=min(2, os.cpu_count() or 1),
            threads_per_worker=1,
            processes=True,
            dashboard_address=":0",
        )
        client = Client(cluster)
    futures: list[Any] = []
    try:
        shared = client.scatter(recipe, broadcast=True, hash=False)
        futures = [client.submit(fit_one, shared, job, settings, pure=False) for job in jobs]
        position = {future.key: i for i, future in enumerate(futures)}
        records = []
        with tqdm(total=len(jobs), desc="SBC fits", disable=not progressbar) as bar:
            for future in as_completed(futures):
                try:
                    records.append(future.result())
                except Exception as err:  # the task itself failed (a worker died): record it
                    error = f"{type(err).__name__}: {err}"
                    records.append(
                        {"index": position[future.key], "ranks": {}, "kept": {}, "pit": {}, "error": error}
                    )
                bar.update()
        return records
    finally:
        if futures:
            client.cancel(futures)
        if cluster is not None:
            client.close()
            cluster.close()
