"""Simulation-based calibration of seven bayesmix models: the run behind docs/user-guide/calibration.md.

    .venv/bin/python benchmarks/sbc.py --out benchmarks/results/sbc.json --markdown benchmarks/results/sbc.md

Every model is checked with ``bx.sbc`` on one LocalCluster (or ``--scheduler ADDRESS``, a running
Dask scheduler). The table gives per model: simulations, parameters, the smallest p-value of the
ECDF uniformity test and its parameter, the verdict at the family-wise false-alarm rate
``--alpha`` (Bonferroni over parameters), the fits that failed, diverged or had R-hat above
1.01, and the wall time.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd

import bayesmix as bx

GAUSSIAN = {
    "Intercept": bx.priors.Normal(0, 1),
    "x": bx.priors.Normal(0, 1),
    "sd(Intercept|g)": bx.priors.HalfNormal(1),
    "sigma": bx.priors.HalfNormal(1),
}


def grouped(seed: int = 1, groups: int = 10, rows: int = 5) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    levels = np.repeat([f"g{j:02d}" for j in range(groups)], rows)
    df = pd.DataFrame({"g": levels, "x": rng.normal(size=groups * rows)})
    df["y"] = 0.5 * df["x"] + np.repeat(rng.normal(size=groups), rows) + rng.normal(size=len(df))
    df["s"] = rng.binomial(8, 0.4, size=len(df))
    df["f"] = 8 - df["s"]
    return df


def mixture_data(seed: int = 2, n: int = 60) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({"x": rng.normal(size=n), "z": rng.normal(size=n)})
    df["y"] = np.where(rng.uniform(size=n) < 0.5, -2.0, 2.0) + rng.normal(size=n)
    df["c"] = rng.poisson(np.exp(1 + 0.3 * df["x"]))
    return df


def models() -> dict[str, tuple[str, bx.HierarchicalModel | bx.MixtureModel]]:
    """Name -> (the call as text, the model).

    The binomial GLMM and the mixtures compile each fit anew (a binomial response is a constant
    of bayesmix's graph; a mixture's start is part of its compiled model): they run
    ``--slow-simulations`` simulations, with JAX, which compiles fastest.
    """
    df, mix = grouped(), mixture_data()
    levels = sorted(df["g"].unique())
    lag = np.abs(np.subtract.outer(np.arange(len(levels)), np.arange(len(levels))))
    K = pd.DataFrame(0.6**lag, index=levels, columns=levels)
    slopes = {**GAUSSIAN, "sd(x|g)": bx.priors.HalfNormal(0.5), "corr(g)": bx.priors.LKJ(2)}
    binomial = {
        "Intercept": bx.priors.Normal(0, 1),
        "x": bx.priors.Normal(0, 0.5),
        "sd(Intercept|g)": bx.priors.HalfNormal(0.7),
    }
    gmix = {
        "Intercept": bx.priors.Normal(0, 2),
        "sigma": bx.priors.Gamma(5, 5),
        "class[2]:Intercept": bx.priors.Normal(0, 1),
    }
    pmix = {
        "Intercept": bx.priors.Normal(1, 1),
        "x": bx.priors.Normal(0, 0.5),
        "class[2]:Intercept": bx.priors.Normal(0, 1),
        "class[2]:z": bx.priors.Normal(0, 1),
    }
    return {
        "random intercept, marginalized": (
            'hierarchical("y ~ x + (1 | g)")',
            bx.hierarchical("y ~ x + (1 | g)", df, priors=GAUSSIAN),
        ),
        "random intercept, sampled": (
            'hierarchical("y ~ x + (1 | g)", marginalize=False)',
            bx.hierarchical("y ~ x + (1 | g)", df, priors=GAUSSIAN, marginalize=False),
        ),
        "correlated random slopes": (
            'hierarchical("y ~ x + (x | g)")',
            bx.hierarchical("y ~ x + (x | g)", df, priors=slopes),
        ),
        "binomial GLMM": (
            'hierarchical("cbind(s, f) ~ x + (1 | g)", family="binomial")',
            bx.hierarchical("cbind(s, f) ~ x + (1 | g)", df, family="binomial", priors=binomial),
        ),
        "known covariance K": (
            'hierarchical("y ~ x + (1 | g)", covariances={"g": K})',
            bx.hierarchical("y ~ x + (1 | g)", df, priors=GAUSSIAN, covariances={"g": K}),
        ),
        "gaussian mixture, 2 classes": ('fmm(2, "y ~ 1")', bx.fmm(2, "y ~ 1", mix, priors=gmix)),
        "poisson mixture of regressions": (
            'fmm(2, "c ~ x", family="poisson", class_formula="~ z")',
            bx.fmm(2, "c ~ x", mix, family="poisson", class_formula="~ z", priors=pmix),
        ),
    }


def row(name: str, call: str, result: bx.SBCResult, wall: float) -> dict[str, object]:
    fits, tests = result.fits, result.tests
    worst = tests["p_value"].idxmin()
    return {
        "model": name,
        "call": call,
        "simulations": len(fits),
        "parameters": len(tests),
        "min_p": float(tests["p_value"].min()),
        "min_p_parameter": str(worst),
        "threshold": float(tests["threshold"].iloc[0]),
        "calibrated": result.calibrated,
        "failed": int(fits["error"].notna().sum()),
        "divergent_fits": int((fits["divergences"].fillna(0) > 0).sum()),
        "rhat_above_1.01": int((fits["max_rhat"] > 1.01).sum()),
        "ess_below_max_draws": int((fits["min_ess"] < result.settings["max_draws"]).sum()),
        "wall_s": round(wall, 1),
        "errors": fits["error"].dropna().value_counts().to_dict(),
    }


def markdown(rows: list[dict[str, object]], args: argparse.Namespace) -> str:
    head = (
        "| model | simulations | parameters | smallest p (parameter) | verdict | failed | divergent | "
        "R-hat > 1.01 | wall (s) |\n|---|---|---|---|---|---|---|---|---|\n"
    )
    body = "".join(
        f"| {r['model']} | {r['simulations']} | {r['parameters']} | "
        f"{r['min_p']:.3f} ({str(r['min_p_parameter']).replace('|', chr(92) + '|')}) | "
        f"{'calibrated' if r['calibrated'] else '**rejected**'} | {r['failed']} | {r['divergent_fits']} | "
        f"{r['rhat_above_1.01']} | {r['wall_s']} |\n"
        for r in rows
    )
    note = (
        f"\n{date.today().isoformat()}, {platform.machine()} with {os.cpu_count()} cores, bayesmix "
        f"{bx.__version__}; {args.draws} draws after {args.tune} tuning steps x {args.chains} chains "
        "per fit, "
        f"ranks among at most {args.max_draws} thinned draws, family-wise alpha = {args.alpha}.\n"
    )
    return head + body + note


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--simulations", type=int, default=200, help="simulations per hierarchical model")
    parser.add_argument(
        "--slow-simulations", type=int, default=100, help="simulations of models that compile every fit"
    )
    parser.add_argument("--draws", type=int, default=500)
    parser.add_argument("--tune", type=int, default=500)
    parser.add_argument("--chains", type=int, default=2)
    parser.add_argument("--max-draws", type=int, default=99)
    parser.add_argument("--alpha", type=float, default=0.01)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1))
    parser.add_argument("--scheduler", help="address of a running Dask scheduler (default: a LocalCluster)")
    parser.add_argument("--models", nargs="*", help="model names to run (default all)")
    parser.add_argument("--out", type=Path, help="JSON file for the table")
    parser.add_argument("--markdown", type=Path, help="Markdown file for the table")
    args = parser.parse_args()

    from distributed import Client, LocalCluster

    if args.scheduler:
        client = Client(args.scheduler)
    else:
        cluster = LocalCluster(n_workers=args.workers, threads_per_worker=1, dashboard_address=":0")
        client = Client(cluster)
    rows = []
    for i, (name, (call, model)) in enumerate(models().items()):
        if args.models and name not in args.models:
            continue
        slow = isinstance(model, bx.MixtureModel) or model.spec.family == "binomial"
        start = time.perf_counter()
        result = bx.sbc(
            model,
            args.slow_simulations if slow else args.simulations,
            client=client,
            draws=args.draws,
            tune=args.tune,
            chains=args.chains,
            max_draws=args.max_draws,
            alpha=args.alpha,
            random_seed=args.seed + i,
            fit_kwargs={"backend": "jax"} if slow else None,
            ml_kwargs={"n_starts": 20},
        )
        rows.append(row(name, call, result, time.perf_counter() - start))
        print(rows[-1], flush=True)
        print(result, flush=True)
    text = markdown(rows, args)
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(
            json.dumps({"rows": rows, "settings": vars(args) | {"out": str(args.out)}}, indent=1, default=str)
        )
    if args.markdown:
        args.markdown.parent.mkdir(parents=True, exist_ok=True)
        args.markdown.write_text(text)
    client.close()


if __name__ == "__main__":
    main()
