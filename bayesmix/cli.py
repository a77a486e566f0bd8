"""Command line: ``bayesmix demo`` (``python -m bayesmix.cli demo``).

A thin shell over the public API.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

import pandas as pd

__all__ = ["main"]


def demo(*, random_seed: int = 1, progressbar: bool = True) -> int:
    """Sleepstudy: Bayes (flat fixed-effect priors) beside REML, then the diagnostics."""
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
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``bayesmix`` command."""
    parser = argparse.ArgumentParser(prog="bayesmix", description="Bayesian hierarchical models on PyMC")
    sub = parser.add_subparsers(dest="command", required=True)
    p_demo = sub.add_parser("demo", help="fit sleepstudy by NUTS and REML and print them side by side")
    p_demo.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    p_demo.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    args = parser.parse_args(argv)
    if args.command == "demo":
        return demo(random_seed=args.seed, progressbar=not args.no_progress)
    return 2  # pragma: no cover - argparse rejects other commands


if __name__ == "__main__":
    sys.exit(main())
