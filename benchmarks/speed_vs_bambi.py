"""Benchmark of issue 5: bayesmix against bambi 0.21 on the same simulated data.

Usage, from the repository root::

    .venv/bin/python benchmarks/speed_vs_bambi.py \
        [--cases lmm-10k,lmm-100k,lmm-1m,poisson-100k,stamps] [--peers bayesmix,bambi] \
        [--draws 1000 --tune 1000 --chains 4] [--seed 1] [--timeout 900] \
        [--bambi-python /path/to/python] [--out results.json] [--markdown table.md]

Cases (data simulated once per case with a fixed seed, the same arrays for both peers):

* ``lmm-10k``, ``lmm-100k``, ``lmm-1m``: ``y ~ x + (x | g)``, n/J = 10k/100, 100k/1,000,
  1M/10k, balanced groups; ``lmm-1m-100g``: the same at n/J = 1M/100 (the rows of
  ``lmm-1m`` with the groups of ``lmm-10k``: what the number of rows alone costs);
  ``y = b0 + b1 x + u0[g] + u1[g] x + eps`` with a correlated
  random intercept and slope (``TRUTH`` below);
* ``poisson-100k``: ``y ~ x + (1 | g)``, Poisson with log link, n/J = 100k/1,000;
* ``stamps``: ``bx.fmm(3, "thickness ~ 1", stamps)``, the 3-class normal mixture.

The peers are each library's default call, 4 chains x 1000 draws after 1000 tuning steps:
``bx.hierarchical(formula, df, family=...).fit(...)`` (nutpie) and
``bmb.Model(formula, df, family=...).fit(...)``, which is PyMC's own NUTS with
``init="jitter+adapt_diag"`` and ``cores=min(4, cpu_count() // 2)``: on a 2-core machine
bambi runs its chains one after the other.

Reported per case and peer: total wall time (from before building the model to after
sampling; imports and data loading excluded), sampling time (the sampler's own clock,
tuning included, compilation excluded), minimum bulk ESS and maximum R-hat over the
parameters (fixed effects, random-effect SDs, correlations, sigma), the minimum bulk ESS
with the random effects included, divergences, min-ESS per second of total wall time, and
bayesmix's min-ESS/s over bambi's.

Interpretations, decided here:

* "In the same process run" is read as one invocation of this script. Each fit runs in
  a worker process (this script re-invoked with ``--worker``) so that a fit running past
  ``--timeout`` seconds can be killed with the sampler's child processes and reported as
  "stopped after ... s".
* bambi 0.21.0 requires formulae < 0.7 and bayesmix formulae >= 0.9, so they cannot share
  one environment. The bambi worker runs under ``--bambi-python`` (default: ``$BAMBI_PYTHON``,
  else this interpreter), an environment with bambi 0.21.0 and the same PyMC, PyTensor and
  NumPy versions; each worker reports its own versions.
* bambi 0.21 gives the group-specific intercept and slope of ``(x | g)`` independent priors
  (its LKJ prior is commented out in its source), so it fits the correlation as zero; its
  parameters are the others. Names are mapped to bayesmix's (``1|g_sigma`` ->
  ``sd(Intercept|g)``, ``x|g_sigma`` -> ``sd(x|g)``).
* bambi 0.21 has no finite-mixture family: its families are single distributions plus
  two-part hurdle and zero-inflated ones (built-in mixture families are an open request,
  bambinos/bambi#1040). A custom likelihood could wrap ``pm.NormalMixture``, but that is
  writing the PyMC mixture by hand, which ``benchmarks/fmm_stamps.py`` already compares
  with. The stamps row for bambi reads "n/a (no finite-mixture model)".
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parent.parent
DATA_SEED = 20_260_505
# Gaussian: fixed effects, random-effect SDs and correlation, residual SD; Poisson: fixed effects, SD.
TRUTH = {
    "gaussian": {
        "Intercept": 1.0,
        "x": 0.5,
        "sd(Intercept|g)": 0.8,
        "sd(x|g)": 0.4,
        "corr": 0.3,
        "sigma": 1.0,
    },
    "poisson": {"Intercept": 0.5, "x": 0.3, "sd(Intercept|g)": 0.5},
}
FORMULA = {"gaussian": "y ~ x + (x | g)", "poisson": "y ~ x + (1 | g)"}
BAMBI_NAMES = {"1|g_sigma": "sd(Intercept|g)", "x|g_sigma": "sd(x|g)"}
NO_MIXTURE = "n/a (no finite-mixture model)"
PACKAGES = ("pymc", "pytensor", "nutpie", "numpy", "numba", "arviz-stats", "formulae", "bambi")


@dataclass(frozen=True, slots=True, kw_only=True)
class Case:
    name: str
    family: str  # "gaussian", "poisson" or "stamps"
    n: int
    groups: int


CASES = {
    c.name: c
    for c in (
        Case(name="lmm-10k", family="gaussian", n=10_000, groups=100),
        Case(name="lmm-100k", family="gaussian", n=100_000, groups=1_000),
        Case(name="lmm-1m", family="gaussian", n=1_000_000, groups=10_000),
        Case(name="lmm-1m-100g", family="gaussian", n=1_000_000, groups=100),
        Case(name="poisson-100k", family="poisson", n=100_000, groups=1_000),
        Case(name="stamps", family="stamps", n=485, groups=0),
    )
}


# ----- data ---------------------------------------------------------------------------------
def simulate(case: Case) -> dict[str, np.ndarray]:
    """Response, covariate and group codes of one case (balanced groups, fixed seed)."""
    rng = np.random.default_rng([DATA_SEED, case.n, case.groups])
    g = rng.permutation(np.arange(case.n) % case.groups)
    x = rng.normal(size=case.n)
    t = TRUTH[case.family]
    if case.family == "gaussian":
        sd = np.array([t["sd(Intercept|g)"], t["sd(x|g)"]])
        cov = np.outer(sd, sd) * np.array([[1.0, t["corr"]], [t["corr"], 1.0]])
        u = rng.multivariate_normal(np.zeros(2), cov, size=case.groups)
        mu = t["Intercept"] + t["x"] * x + u[g, 0] + u[g, 1] * x
        y = mu + t["sigma"] * rng.normal(size=case.n)
    else:
        u0 = rng.normal(0.0, t["sd(Intercept|g)"], size=case.groups)
        y = rng.poisson(np.exp(t["Intercept"] + t["x"] * x + u0[g])).astype(float)
    return {"y": y, "x": x, "g": g}


def frame(path: Path) -> pd.DataFrame:
    """The data frame both peers fit, from the arrays the parent process wrote."""
    with np.load(path) as arrays:
        width = len(str(int(arrays["g"].max())))
        labels = pd.Categorical([f"g{k:0{width}d}" for k in arrays["g"]])
        return pd.DataFrame({"y": arrays["y"], "x": arrays["x"], "g": labels})


# ----- diagnostics (both environments) ------------------------------------------------------
def diagnostics(params: Any, effects: Any, sample_stats: Any) -> dict[str, Any]:
    """Bulk ESS, R-hat and posterior moments per parameter; minima with and without random effects."""
    import arviz_stats as azs

    ess, rhat = azs.ess(params, method="bulk"), azs.rhat(params)
    table = {
        name: {
            "mean": float(params[name].mean()),
            "sd": float(params[name].std()),
            "ess_bulk": float(ess[name]),
            "rhat": float(rhat[name]),
        }
        for name in params.data_vars
    }
    min_ess = min(v["ess_bulk"] for v in table.values())
    min_ess_all = None
    if effects is not None and effects.data_vars:
        ess_re = azs.ess(effects, method="bulk")
        min_ess_all = min(min_ess, *(float(ess_re[name].min()) for name in ess_re.data_vars))
    return {
        "params": table,
        "min_ess_bulk": min_ess,
        "min_ess_bulk_all": min_ess_all,
        "max_rhat": max(v["rhat"] for v in table.values()),
        "divergences": int(sample_stats["diverging"].sum()),
    }


def versions() -> dict[str, str]:
    """Python and the versions of the packages that matter here, as installed in this environment."""
    out = {"python": platform.python_version()}
    for package in PACKAGES:
        with contextlib.suppress(metadata.PackageNotFoundError):
            out[package] = metadata.version(package)
    return out


# ----- workers: one fit each ----------------------------------------------------------------
def fit_bayesmix(case: Case, data: Path, settings: dict[str, Any]) -> dict[str, Any]:
    import bayesmix as bx

    if case.family == "stamps":
        df = bx.datasets.load("stamps")
        start = time.perf_counter()
        fit: Any = bx.fmm(3, "thickness ~ 1", df).fit(**settings, progressbar=False)
    else:
        df = frame(data)
        start = time.perf_counter()
        model = bx.hierarchical(FORMULA[case.family], df, family=case.family)
        fit = model.fit(**settings, progressbar=False)
    total = time.perf_counter() - start
    posterior = fit.posterior
    effects = posterior[[v for v in posterior.data_vars if str(v).startswith("re_")]]
    out = diagnostics(fit.draws(), effects, fit.idata["sample_stats"].to_dataset())
    return {
        "total_s": total,
        "sampling_s": fit.sampling_time,
        "backend": fit.backend,
        "compile_s": fit.compile_time,
        **out,
    }


def fit_bambi(case: Case, data: Path, settings: dict[str, Any]) -> dict[str, Any]:
    import bambi as bmb  # type: ignore[import-not-found]  # its own environment (module docstring)

    df = frame(data)
    start = time.perf_counter()
    model = bmb.Model(FORMULA[case.family], df, family=case.family)
    idata = model.fit(**settings, progressbar=False)
    total = time.perf_counter() - start
    posterior = idata["posterior"].to_dataset()
    grouped = [
        v for v in posterior.data_vars if any(str(d).endswith("__factor_dim") for d in posterior[v].dims)
    ]
    params = posterior.drop_vars(grouped).rename({k: v for k, v in BAMBI_NAMES.items() if k in posterior})
    out = diagnostics(params, posterior[grouped], idata["sample_stats"].to_dataset())
    sampling = posterior.attrs.get("sampling_time")
    return {"total_s": total, "sampling_s": None if sampling is None else float(sampling), **out}


def worker(args: argparse.Namespace) -> None:
    case = CASES[args.case]
    settings: dict[str, Any] = {
        "draws": args.draws,
        "tune": args.tune,
        "chains": args.chains,
        "random_seed": args.seed,
    }
    run = {"bayesmix": fit_bayesmix, "bambi": fit_bambi}[args.worker]
    result = {"versions": versions(), **run(case, Path(args.data), settings)}
    Path(args.result).write_text(json.dumps(result, indent=1))


# ----- parent: run the workers, collect, report ---------------------------------------------
def run_worker(peer: str, case: Case, data: Path, args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    """Fit one case with one peer in a child process; kill it (and its children) after the timeout."""
    result, log = tmp / f"{case.name}-{peer}.json", tmp / f"{case.name}-{peer}.log"
    python = args.bambi_python if peer == "bambi" else sys.executable
    command = [python, str(Path(__file__).resolve()), "--worker", peer, "--case", case.name]
    command += ["--data", str(data), "--result", str(result), "--seed", str(args.seed)]
    command += ["--draws", str(args.draws), "--tune", str(args.tune), "--chains", str(args.chains)]
    start = time.perf_counter()
    with log.open("w") as out:
        process = subprocess.Popen(
            command, stdout=out, stderr=subprocess.STDOUT, start_new_session=True, cwd=REPO
        )
        try:
            code = process.wait(timeout=args.timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)  # the worker's own session: it and its sampler processes
            process.wait()
            return {"status": f"stopped after {args.timeout:.0f} s", "elapsed_s": time.perf_counter() - start}
    elapsed = time.perf_counter() - start
    if code != 0 or not result.exists():
        lines = [line for line in log.read_text().splitlines() if line.strip()]
        print("\n".join(lines[-15:]), file=sys.stderr)
        last = lines[-1] if lines else f"exit status {code}"
        return {"status": f"failed: {last[:200]}", "elapsed_s": elapsed}
    return {"status": "ok", "elapsed_s": elapsed, **json.loads(result.read_text())}


def run_case(case: Case, args: argparse.Namespace, tmp: Path) -> list[dict[str, Any]]:
    data = tmp / f"{case.name}.npz"
    if case.family != "stamps":
        arrays = simulate(case)
        np.savez(data, y=arrays["y"], x=arrays["x"], g=arrays["g"])
    rows: list[dict[str, Any]] = []
    for peer in args.peers:
        base: dict[str, Any] = {"case": case.name, "peer": peer, "n": case.n, "J": case.groups or None}
        if peer == "bambi" and case.family == "stamps":
            rows.append({**base, "status": NO_MIXTURE})
            continue
        if peer == "bambi" and (need := dense_design_gib(case)) > (have := machine()["memory_gib"] or 0.0):
            rows.append(
                {
                    **base,
                    "status": f"not run: its dense design needs {need:.1f} GiB, the machine has {have} GiB",
                }
            )
            continue
        print(f"[{case.name}] {peer} ...", file=sys.stderr, flush=True)
        row = {**base, **run_worker(peer, case, data, args, tmp)}
        if row["status"] == "ok":
            row["min_ess_per_s"] = row["min_ess_bulk"] / row["total_s"]
        print(
            f"[{case.name}] {peer}: {row['status']} in {row['elapsed_s']:.1f} s", file=sys.stderr, flush=True
        )
        rows.append(row)
    rates: dict[str, float] = {r["peer"]: r["min_ess_per_s"] for r in rows if "min_ess_per_s" in r}
    if "bayesmix" in rates and rates.get("bambi"):
        for r in rows:
            if r["peer"] == "bayesmix":
                r["ratio_vs_bambi"] = rates["bayesmix"] / rates["bambi"]
    return rows


def dense_design_gib(case: Case) -> float:
    """Memory of bambi 0.21's dense random-effect design: n rows x (J groups x terms) float64."""
    terms = 2 if case.family == "gaussian" else 1  # (x | g) or (1 | g)
    return case.n * case.groups * terms * 8 / 2**30


def machine() -> dict[str, Any]:
    cpu = platform.processor() or platform.machine()
    memory = None
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                memory = round(int(line.split()[1]) / 2**20, 1)
    return {
        "cpu": cpu,
        "cores": len(os.sched_getaffinity(0)),
        "memory_gib": memory,
        "os": platform.platform(),
    }


def git_commit() -> str:
    def git(*argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["git", *argv], cwd=REPO, capture_output=True, text=True, check=False)

    commit = git("rev-parse", "--short", "HEAD").stdout.strip() or "unknown"
    dirty = git("status", "--porcelain", "--", "bayesmix").stdout.strip()
    return f"{commit} + uncommitted changes" if dirty else commit


# ----- Markdown -----------------------------------------------------------------------------
HEAD = (
    "case",
    "peer",
    "n",
    "J",
    "total (s)",
    "sampling (s)",
    "min bulk ESS",
    "min bulk ESS with random effects",
    "max R-hat",
    "divergences",
    "min ESS/s",
    "bayesmix / bambi",
    "backend",
    "compile (s)",
)


def _fmt(value: Any, spec: str) -> str:
    return "" if value is None else format(value, spec)


def table(rows: list[dict[str, Any]]) -> str:
    lines = ["| " + " | ".join(HEAD) + " |", "|" + "---|" * len(HEAD)]
    for r in rows:
        size = [r["case"], r["peer"], f"{r['n']:,}", _fmt(r["J"], ",")]
        if r["status"] != "ok":
            lines.append("| " + " | ".join([*size, r["status"], *[""] * (len(HEAD) - 5)]) + " |")
            continue
        ratio = r.get("ratio_vs_bambi")
        cells = [
            _fmt(r["total_s"], ".1f"),
            _fmt(r["sampling_s"], ".2f"),
            _fmt(r["min_ess_bulk"], ".0f"),
            _fmt(r["min_ess_bulk_all"], ".0f"),
            _fmt(r["max_rhat"], ".3f"),
            str(r["divergences"]),
            _fmt(r["min_ess_per_s"], ".1f"),
            "" if ratio is None else f"{ratio:,.1f}x",
            r.get("backend") or "",
            _fmt(r.get("compile_s"), ".1f"),
        ]
        lines.append("| " + " | ".join([*size, *cells]) + " |")
    return "\n".join(lines)


def header(report: dict[str, Any]) -> str:
    m, s = report["machine"], report["settings"]
    peers = "; ".join(
        f"{peer}: " + ", ".join(f"{k} {v}" for k, v in found.items())
        for peer, found in report["versions"].items()
    )
    return (
        f"Measured {report['date']} on {m['cpu']} ({m['cores']} cores, {m['memory_gib']} GiB), bayesmix "
        f"{report['bayesmix_commit']}; {s['chains']} chains x {s['draws']} draws after {s['tune']} tuning, "
        f"random_seed={s['seed']}, timeout {s['timeout']:.0f} s. Versions ({peers or 'none collected'})."
    )


def markdown(report: dict[str, Any]) -> str:
    return (
        "## Speed against bambi (issue 5)\n\n"
        f"`benchmarks/speed_vs_bambi.py` (run: `{report['command']}`). {header(report)}\n\n"
        "Total is the wall time from before building the model to after sampling; sampling is the "
        "sampler's own clock (tuning included, compilation excluded); min bulk ESS and max R-hat are "
        "over the parameters (fixed effects, random-effect SDs and correlation, sigma; bambi 0.21 "
        "fits no correlation; for stamps: class intercepts, SDs and class-probability logits); min ESS/s "
        "is min bulk ESS over total wall time.\n\n" + table(report["rows"]) + "\n"
    )


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cases", default=",".join(CASES), help="comma-separated, from: " + ", ".join(CASES))
    p.add_argument("--peers", default="bayesmix,bambi", help="comma-separated: bayesmix, bambi")
    p.add_argument("--draws", type=int, default=1000)
    p.add_argument("--tune", type=int, default=1000)
    p.add_argument("--chains", type=int, default=4)
    p.add_argument("--seed", type=int, default=1, help="the samplers' random_seed")
    p.add_argument("--timeout", type=float, default=900.0, help="seconds before a fit is stopped")
    p.add_argument(
        "--bambi-python",
        default=os.environ.get("BAMBI_PYTHON", sys.executable),
        help="interpreter of an environment with bambi 0.21.0 (default $BAMBI_PYTHON, else this one)",
    )
    p.add_argument("--out", type=Path, help="write the results as JSON here")
    p.add_argument("--markdown", type=Path, help="write the docs/benchmarks.md section here")
    for hidden in ("--worker", "--case", "--data", "--result"):
        p.add_argument(hidden, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker is None:
        args.cases, args.peers = args.cases.split(","), args.peers.split(",")
        unknown = [c for c in args.cases if c not in CASES] + [
            p for p in args.peers if p not in ("bayesmix", "bambi")
        ]
        if unknown:
            p.error(f"unknown case or peer: {', '.join(unknown)}")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse(argv)
    if args.worker is not None:
        worker(args)
        return
    report: dict[str, Any] = {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "command": " ".join([".venv/bin/python", "benchmarks/speed_vs_bambi.py", *sys.argv[1:]]),
        "settings": {k: getattr(args, k) for k in ("draws", "tune", "chains", "seed", "timeout")},
        "machine": machine(),
        "bayesmix_commit": git_commit(),
        "versions": {},
        "rows": [],
    }
    with tempfile.TemporaryDirectory(prefix="speed_vs_bambi-") as tmp:
        for name in args.cases:
            for row in run_case(CASES[name], args, Path(tmp)):
                if "versions" in row:
                    report["versions"][row["peer"]] = row.pop("versions")
                report["rows"].append(row)
            if args.out:
                args.out.write_text(json.dumps(report, indent=1))
    print(header(report) + "\n\n" + table(report["rows"]))
    if args.markdown:
        args.markdown.write_text(markdown(report))


if __name__ == "__main__":
    main()
