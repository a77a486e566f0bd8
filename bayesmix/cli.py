"""Command line: ``bayesmix demo`` (``python -m bayesmix.cli demo``).

A thin shell over the public API.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from .compare.fmm import CloseMaximaWarning

if TYPE_CHECKING:
    from .compare.fmm import MixtureMLFit

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


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``bayesmix`` command."""
    parser = argparse.ArgumentParser(prog="bayesmix", description="Bayesian hierarchical models on PyMC")
    sub = parser.add_subparsers(dest="command", required=True)
    p_demo = sub.add_parser(
        "demo", help="sleepstudy by NUTS and REML; Stata's stamps mixtures by ML and NUTS"
    )
    p_demo.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    p_demo.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    args = parser.parse_args(argv)
    if args.command == "demo":
        return demo(random_seed=args.seed, progressbar=not args.no_progress)
    return 2  # pragma: no cover - argparse rejects other commands


if __name__ == "__main__":
    sys.exit(main())
