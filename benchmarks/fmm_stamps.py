"""Benchmark: the stamps 3-class normal mixture, bayesmix against a hand-written PyMC mixture.

Usage: ``.venv/bin/python benchmarks/fmm_stamps.py [--seeds 1 2 3]``

Both sample 4 chains x 1000 draws after 1000 tuning steps with nutpie on the same data.

* bayesmix: ``bx.fmm(3, "thickness ~ 1", stamps).fit(random_seed=s)``: ML starts (EM-refined
  search), ordered intercepts, class indicator summed out, low-rank mass-matrix adaptation.
* bayesmix with nutpie's default diagonal mass-matrix adaptation (same model and starts), to
  show what the low-rank adaptation buys.
* peer: the textbook PyMC model, ``pm.NormalMixture`` with Dirichlet(1) weights, ordered
  means and HalfNormal SDs, sampled by ``pm.sample(nuts_sampler="nutpie")`` from PyMC's
  default (jittered) start.

Reported per run: sampling time (nutpie's own clock, tuning included, compilation
excluded), wall time of the whole call, minimum bulk ESS, maximum R-hat, divergences, and
for bayesmix the time of the ML search. The table is printed as Markdown for
``docs/benchmarks.md``.
"""

from __future__ import annotations

import argparse
import platform
import time
from dataclasses import replace

import arviz_stats as azs
import numpy as np
import pymc as pm

import bayesmix as bx
from bayesmix.api import _initvals
from bayesmix.results.diagnostics import diagnose
from bayesmix.sample import run_nuts_from

DRAWS = TUNE = 1000
CHAINS = 4


def peer_model(y: np.ndarray) -> pm.Model:
    """The hand-written PyMC mixture a user would write first."""
    with pm.Model() as model:
        w = pm.Dirichlet("w", a=np.ones(3))
        mu = pm.Normal(
            "mu",
            mu=y.mean(),
            sigma=2.5 * y.std(),
            shape=3,
            transform=pm.distributions.transforms.ordered,
            initval=np.quantile(y, [0.25, 0.5, 0.75]),
        )
        sigma = pm.HalfNormal("sigma", sigma=y.std(), shape=3)
        pm.NormalMixture("y", w=w, mu=mu, sigma=sigma, observed=y)
    return model


def summarize(idata: object) -> dict[str, float]:
    """Minimum bulk ESS, maximum R-hat and divergences over the model's parameters."""
    d = diagnose(idata)  # type: ignore[arg-type]
    return {"ess": d.min_ess_bulk, "rhat": d.max_rhat, "divergences": d.divergences}


def run(seed: int) -> list[dict[str, object]]:
    """One seed of both implementations."""
    stamps = bx.datasets.load("stamps")
    rows: list[dict[str, object]] = []

    start = time.perf_counter()
    model = bx.fmm(3, "thickness ~ 1", stamps)
    ml_start = time.perf_counter()
    model.fit_ml()
    ml_time = time.perf_counter() - ml_start
    fit = model.fit(random_seed=seed, progressbar=False)
    rows.append(
        {
            "implementation": "bayesmix fmm",
            "seed": seed,
            "sampling_s": fit.sampling_time,
            "wall_s": time.perf_counter() - start,
            "ml_s": ml_time,
            **summarize(fit.idata),
        }
    )

    # the same model, starts and settings with nutpie's default diagonal mass-matrix adaptation
    start = time.perf_counter()
    settings = replace(fit.settings, random_seed=seed)
    idata, _, _ = run_nuts_from(model.pymc_model, settings, [_initvals(model.spec, model.fit_ml())], {})
    rows.append(
        {
            "implementation": "bayesmix fmm, diagonal adaptation",
            "seed": seed,
            "sampling_s": float(idata["posterior"].attrs["sampling_time"]),
            "wall_s": time.perf_counter() - start,
            "ml_s": float("nan"),
            **summarize(idata),
        }
    )

    start = time.perf_counter()
    idata = pm.sample(
        model=peer_model(stamps["thickness"].to_numpy()),
        draws=DRAWS,
        tune=TUNE,
        chains=CHAINS,
        nuts_sampler="nutpie",
        random_seed=seed,
        progressbar=False,
        compute_convergence_checks=False,
    )
    rows.append(
        {
            "implementation": "PyMC NormalMixture",
            "seed": seed,
            "sampling_s": float(idata["posterior"].attrs["sampling_time"]),
            "wall_s": time.perf_counter() - start,
            "ml_s": float("nan"),
            **summarize(idata),
        }
    )
    return rows


def main() -> None:
    """Run the seeds and print a Markdown table."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    args = parser.parse_args()
    rows = [row for seed in args.seeds for row in run(seed)]
    print(
        f"machine: {platform.machine()}, {platform.python_version()}, pymc {pm.__version__}, "
        f"arviz-stats {azs.__version__}"
    )
    head = [
        "implementation",
        "seed",
        "sampling (s)",
        "wall (s)",
        "ML search (s)",
        "min bulk ESS",
        "max R-hat",
    ]
    print("| " + " | ".join([*head, "divergences"]) + " |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['implementation']} | {r['seed']} | {r['sampling_s']:.2f} | {r['wall_s']:.1f} | "
            f"{r['ml_s']:.1f} | {r['ess']:.0f} | {r['rhat']:.3f} | {r['divergences']} |"
        )


if __name__ == "__main__":
    main()
