"""Command line: ``bayesmix fit`` and ``bayesmix demo`` (also ``python -m bayesmix.cli ...``).

A thin shell over the public API: ``bayesmix fit FORMULA DATA.csv`` builds the model with
``bx.hierarchical`` (or ``bx.fmm`` with ``--k``), samples it, prints the posterior summary, the
diagnostics and the posterior beside the maximum-likelihood fit, and saves the fit with
``Fit.save`` (``--out``). Mistakes in the arguments or the data end with a one-line message on
stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from .compare.fmm import CloseMaximaWarning
from .spec.families import FAMILIES

if TYPE_CHECKING:
    from .compare.fmm import MixtureMLFit
    from .results.fit import Fit
    from .results.mixture import MixtureFit

__all__ = ["main"]


def demo(*, random_seed: int = 1, progressbar: bool = True) -> int:
    """Sleepstudy (Bayes with flat fixed-effect priors beside REML), then Stata's stamps mixtures."""
    import bayesmix as bx

    sleep = bx.datasets.load("sleepstudy")
    formula = "Reaction ~ Days + (Days | Subject)"
    model = bx.mixed(formula, sleep)
    print(f"bayesmix demo: lme4's sleepstudy, {formula}, flat priors on the fixed effects\n")
    reml = model.fit_ml(reml=True)
    print(reml, end="\n\n")
    fit = model.fit(random_seed=random_seed, progressbar=progressbar)
    table = fit.compare()
    with pd.option_context("display.width", 160, "display.max_columns", 20):
        print("Posterior (NUTS, nutpie) beside REML; diff_sd = (posterior mean - REML) / posterior sd")
        print(table.to_string(float_format=lambda v: f"{v:.4g}"), end="\n\n")
    print("Diagnostics:")
    print(fit.diagnostics())
    print()
    stamps_demo(random_seed=random_seed, progressbar=progressbar)
    return 0


def _stata_table(ml: MixtureMLFit, stata: dict) -> pd.DataFrame:
    """The ML estimates beside Stata's printed ones (variances as Stata reports them)."""
    est, se = ml.estimates, ml.std_errors
    probs = ml.class_probabilities()
    rows = {}
    for j in ("1", "2", "3"):
        sigma, sigma_se = est[f"sigma[{j}]"], se[f"sigma[{j}]"]
        rows[f"P(class {j})"] = (
            probs.loc[j, "probability"],
            probs.loc[j, "std_error"],
            stata["class_probability"][j]["margin"],
            stata["class_probability"][j]["se"],
        )
        rows[f"mean[{j}]"] = (
            est[f"Intercept[{j}]"],
            se[f"Intercept[{j}]"],
            stata["mean"][j]["coef"],
            stata["mean"][j]["se"],
        )
        rows[f"variance[{j}]"] = (
            sigma**2,
            2 * sigma * sigma_se,
            stata["variance"][j]["coef"],
            stata["variance"][j]["se"],
        )
    return pd.DataFrame.from_dict(
        rows, orient="index", columns=["bayesmix", "bayesmix SE", "Stata", "Stata SE"]
    )


def _posterior_table(ml: MixtureMLFit, stata: dict) -> pd.DataFrame:
    """Class posterior probabilities at each thickness Stata lists, beside Stata's."""
    rows = np.asarray(stata["rows"])
    probs = ml.posterior_class_probabilities()
    y = ml.design.y
    first = [int(np.flatnonzero(np.isclose(y, v))[0]) for v in rows[:, 0]]
    ours = probs.iloc[first].to_numpy()
    table = pd.DataFrame(ours, columns=["pr1", "pr2", "pr3"], index=pd.Index(rows[:, 0], name="thickness"))
    table[["Stata pr1", "Stata pr2", "Stata pr3"]] = rows[:, 1:]
    return table


def stamps_demo(*, random_seed: int = 1, progressbar: bool = True) -> None:
    """Stata's stamps example: the normal and lognormal 3-class mixtures by ML and NUTS."""
    import bayesmix as bx

    stamps = bx.datasets.load("stamps")
    stata = bx.datasets.reference("stata_fmm_stamps")
    print(
        "bayesmix demo: Stata's stamps example, fmm 3: regress thickness"
        "  ->  bx.fmm(3, 'thickness ~ 1', stamps)\n"
    )
    model = bx.fmm(3, "thickness ~ 1", stamps)
    ml = model.fit_ml()
    print(
        f"ML log-likelihood {ml.loglik:.6f} (Stata {stata['normal_k3']['loglik']}, "
        "on thickness stored as float32); "
        f"other local maxima found: {', '.join(f'{m.loglik:.2f}' for m in ml.local_maxima[1:]) or 'none'}"
    )
    with pd.option_context("display.width", 160):
        print(_stata_table(ml, stata["normal_k3"]).to_string(float_format=lambda v: f"{v:.4g}"), end="\n\n")
        table = _posterior_table(ml, stata["normal_k3"]["class_posterior_probability"])
        diff = np.abs(table.iloc[:, :3].to_numpy() - table.iloc[:, 3:].to_numpy()).max()
        print(
            "Class posterior probabilities (predict, classposteriorpr); "
            f"largest difference from Stata {diff:.4f}"
        )
        print(table.to_string(float_format=lambda v: f"{v:.3f}"), end="\n\n")

    lognormal = bx.fmm(3, "thickness ~ 1", stamps, family="lognormal")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", CloseMaximaWarning)
        ml_log = lognormal.fit_ml()
    for w in caught:
        print(f"warning: {w.message}")
    print(
        "fmm 3: glm thickness, family(lognormal): local maxima "
        + ", ".join(f"{m.loglik:.3f}" for m in ml_log.local_maxima[:4])
        + f"; {len(ml_log.refused)} degenerate maxima refused"
    )
    reference = stata["lognormal_k3"]["class_posterior_probability"]
    gaps = [
        float(
            np.abs(
                (t := _posterior_table(m, reference)).iloc[:, :3].to_numpy() - t.iloc[:, 3:].to_numpy()
            ).max()
        )
        for m in ml_log.local_maxima
    ]
    best = int(np.argmin(gaps))
    print(
        "Stata's lognormal posterior-probability table is the local maximum "
        f"{ml_log.local_maxima[best].loglik:.3f} "
        f"(largest difference {gaps[best]:.4f}); the best maximum differs by {gaps[0]:.3f}\n"
    )

    fit = model.fit(random_seed=random_seed, progressbar=progressbar)
    seconds = fit.sampling_time
    timing = f"{seconds:.1f} s of sampling" if seconds is not None else "sampling time not reported"
    print(
        f"NUTS: {fit.settings.chains} chains x {fit.settings.draws} draws after "
        f"{fit.settings.tune} tuning, {timing}"
    )
    print(fit.ordering)
    with pd.option_context("display.width", 160, "display.max_columns", 20):
        print("Posterior beside ML; diff_sd = (posterior mean - ML) / posterior sd")
        print(fit.compare().to_string(float_format=lambda v: f"{v:.4g}"), end="\n\n")
        print("Class probabilities (estat lcprob): posterior")
        print(fit.class_probabilities().to_string(float_format=lambda v: f"{v:.4f}"), end="\n\n")
    print("Diagnostics:")
    print(fit.diagnostics())


class UsageError(Exception):
    """A mistake in the command's arguments or data: reported in one line, exit status 2."""


def _read_csv(path: str) -> pd.DataFrame:
    file = Path(path)
    if file.is_dir():
        raise UsageError(f"{path!r} is a directory, not a data file: give the path of a CSV file in it")
    if not file.is_file():
        raise UsageError(f"data file {path!r} not found: check the path (it is read from {Path.cwd()})")
    try:
        data = pd.read_csv(file)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, OSError) as err:
        raise UsageError(
            f"could not read {path!r} as CSV ({err}); give a comma-separated text file with a header row"
        ) from err
    if data.shape[1] < 1 or len(data) == 0:
        raise UsageError(
            f"{path!r} has no data rows; give a CSV file with a header row and one row per observation"
        )
    return data


def _formula(formula: str, group_by: Sequence[str]) -> str:
    """The formula with a random intercept ``(1 | col)`` appended for each ``--group-by`` column."""
    return formula + "".join(f" + (1 | {column})" for column in group_by)


def run_fit(
    formula: str,
    data_path: str,
    *,
    k: int | None = None,
    family: str = "gaussian",
    group_by: Sequence[str] = (),
    missing: str = "error",
    draws: int = 1000,
    tune: int = 1000,
    chains: int = 4,
    random_seed: int | None = None,
    out: str | None = None,
    progressbar: bool = True,
) -> int:
    """``bayesmix fit``: read the CSV, fit the model by NUTS, print the tables, save the fit."""
    import bayesmix as bx

    data = _read_csv(data_path)
    if k is not None and k < 1:
        raise UsageError(f"--k {k}: the number of classes must be at least 1 (leave --k out for no mixture)")
    if k is not None and group_by:
        raise UsageError(
            "--group-by adds random intercepts, which finite mixtures (--k) do not take: drop one of the two"
        )
    full = _formula(formula, group_by)
    model: bx.HierarchicalModel | bx.MixtureModel
    if k is not None:
        model = bx.fmm(k, full, data, family=family, missing=missing)
        print(f"bayesmix fit: bx.fmm({k}, {full!r}, data, family={family!r})")
    else:
        model = bx.hierarchical(full, data, family=family, missing=missing)
        print(f"bayesmix fit: bx.hierarchical({full!r}, data, family={family!r})")
    print(f"{model!r}\n")
    result = model.fit(
        draws=draws, tune=tune, chains=chains, random_seed=random_seed, progressbar=progressbar
    )
    report(result)
    if out is not None:
        try:
            path = result.save(out)
        except OSError as err:
            raise UsageError(f"could not write {out!r} ({err}); choose a writable path for --out") from err
        print(f"\nSaved the fit to {path}; read it back with bx.load({str(path)!r})")
    return 0


def _number(value: float) -> str:
    return f"{value:.4g}"


def report(result: Fit | MixtureFit) -> None:
    """Print a fit's posterior summary, diagnostics and comparison with its ML fit, aligned."""
    from .results.mixture import MixtureFit

    print("Posterior summary")
    print(result.summary().to_string(float_format=_number), end="\n\n")
    print("Diagnostics:")
    print(result.diagnostics(), end="\n\n")
    if not isinstance(result, MixtureFit) and not result.design.factors:
        print("No maximum-likelihood comparison: the model has no random effects (add --group-by COL)")
        return
    table = result.compare()
    print(f"Posterior beside the {table.attrs.get('reference', 'ML fit')}; diff_sd = (mean - estimate) / sd")
    print(table.to_string(float_format=_number))
    if isinstance(result, MixtureFit) and result.ml is not None:
        posterior = result.class_probabilities()
        ml = result.ml.class_probabilities().rename(
            columns={
                "probability": "ml",
                "std_error": "ml_se",
                "ci_lower": "ml_lower",
                "ci_upper": "ml_upper",
            }
        )
        print("\nClass probabilities (estat lcprob): posterior beside ML")
        print(posterior.join(ml).to_string(float_format=lambda v: f"{v:.4f}"))


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bayesmix", description="Bayesian hierarchical and finite mixture models"
    )
    sub = parser.add_subparsers(dest="command", required=True)
    p_fit = sub.add_parser(
        "fit",
        help="fit a hierarchical model (or a finite mixture with --k) to a CSV file",
        description="Fit FORMULA to DATA.csv by NUTS; print the posterior beside the maximum-likelihood fit.",
        epilog='example: bayesmix fit "thickness ~ 1" stamps.csv --k 3 --out posterior.nc',
    )
    p_fit.add_argument("formula", metavar="FORMULA", help="lme4-style formula, e.g. 'y ~ x + (x | g)'")
    p_fit.add_argument("data", metavar="DATA.csv", help="comma-separated data with a header row")
    p_fit.add_argument("--k", type=int, default=None, help="fit a finite mixture of K classes (bx.fmm)")
    p_fit.add_argument(
        "--family",
        default="gaussian",
        help=f"response distribution (default gaussian): {', '.join(FAMILIES)}",
    )
    p_fit.add_argument(
        "--group-by",
        action="append",
        default=[],
        metavar="COL",
        help="add a random intercept (1 | COL); repeat for several grouping columns",
    )
    p_fit.add_argument(
        "--missing",
        choices=("error", "drop"),
        default="error",
        help="rows with missing values: stop with an error (default) or drop them (counted and recorded)",
    )
    p_fit.add_argument("--draws", type=int, default=1000, help="draws per chain after tuning (default 1000)")
    p_fit.add_argument("--tune", type=int, default=1000, help="tuning steps per chain (default 1000)")
    p_fit.add_argument("--chains", type=int, default=4, help="number of chains (default 4)")
    p_fit.add_argument("--seed", type=int, default=None, help="random seed, for reproducible draws")
    p_fit.add_argument(
        "--out", metavar="PATH", default=None, help="save the fit there (netCDF, e.g. posterior.nc)"
    )
    p_fit.add_argument("--no-progress", action="store_true", help="hide the sampler's progress bar")
    p_demo = sub.add_parser(
        "demo", help="sleepstudy by NUTS and REML; Stata's stamps mixtures by ML and NUTS"
    )
    p_demo.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    p_demo.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``bayesmix`` command; returns the exit status.

    Mistakes in the arguments or the data print ``bayesmix: error: ...`` (what is wrong and how to
    fix it, on one line) to stderr and return 2; argparse's own usage errors exit with status 2.
    """
    args = _parser().parse_args(argv)
    if args.command == "demo":
        return demo(random_seed=args.seed, progressbar=not args.no_progress)
    try:
        return run_fit(
            args.formula,
            args.data,
            k=args.k,
            family=args.family,
            group_by=args.group_by,
            missing=args.missing,
            draws=args.draws,
            tune=args.tune,
            chains=args.chains,
            random_seed=args.seed,
            out=args.out,
            progressbar=not args.no_progress,
        )
    except (UsageError, ValueError, TypeError, RuntimeError, ImportError) as err:
        # the library's messages name the problem and the fix; one line, no traceback
        message = " ".join(str(err).split())
        print(f"bayesmix: error: {message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
