"""The stamps mixture ML fits against scikit-learn's EM (``sklearn.mixture.GaussianMixture``).

A univariate normal mixture is a ``GaussianMixture`` on a one-column matrix; a lognormal mixture
is a normal mixture of ``log y``, whose log-likelihood differs by the Jacobian ``-sum(log y)``.
sklearn's EM is a separate implementation of the same likelihood, so agreement checks our
search, our likelihood and our parametrization at once. Tolerance: 1e-4 relative on parameters,
1e-4 absolute on log-likelihoods (EM run to ``tol=1e-10`` on the average log-likelihood).

``reg_covar`` (added to every variance in each M-step): sklearn's default 1e-6 is comparable to
the thinnest class's variance (1.7e-6) and moves the fit to another point (logL 1510.79); 0 fails
on the stamps, whose tied values let a random start collapse a class (sklearn raises on a
singular covariance). 1e-12 shifts the variances by 6e-7 relative, far below the tolerance.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.mixture import GaussianMixture

from bayesmix.compare.fmm import MixtureMLFit

REG_COVAR = 1e-12


def _ours(ml: MixtureMLFit) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Weights, means and variances (classes ordered by increasing intercept) of a maximum."""
    est = ml.estimates
    weights = ml.class_probabilities()["probability"].to_numpy()
    means = np.array([est[f"Intercept[{j}]"] for j in ml.spec.classes])
    variances = np.array([est[f"sigma[{j}]"] for j in ml.spec.classes]) ** 2
    return weights, means, variances


def _theirs(gm: GaussianMixture) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    order = np.argsort(gm.means_.ravel())
    return gm.weights_[order], gm.means_.ravel()[order], gm.covariances_.ravel()[order]


def test_sklearn_em_finds_the_same_normal_maximum(stamps: pd.DataFrame, stamps_normal_ml: MixtureMLFit):
    y = stamps["thickness"].to_numpy()[:, None]
    # 20 random_from_data starts: all reach this maximum on the stamps (k-means starts do not)
    gm = GaussianMixture(
        n_components=3,
        init_params="random_from_data",
        n_init=20,
        tol=1e-10,
        max_iter=10000,
        reg_covar=REG_COVAR,
        random_state=0,
    ).fit(y)
    assert gm.converged_
    assert gm.score(y) * len(y) == pytest.approx(stamps_normal_ml.loglik, abs=1e-4)
    for ours, theirs in zip(_ours(stamps_normal_ml), _theirs(gm), strict=True):
        np.testing.assert_allclose(ours, theirs, rtol=1e-4)


@pytest.mark.parametrize("which", ["best", "stata"])
def test_sklearn_em_stays_at_our_lognormal_maxima(
    which: str, stamps: pd.DataFrame, stamps_lognormal_ml: tuple[MixtureMLFit, tuple[Any, ...]]
) -> None:
    """EM on ``log y`` started at our lognormal maxima stays there: they are fixed points of EM.

    "best": logL 1511.958; "stata": the local maximum (1511.311) whose class posterior
    probabilities Stata lists. An EM search of its own is not used here: on ``log y`` it lets a
    class collapse onto tied values (unbounded likelihood), which GaussianMixture cannot refuse.
    """
    ml, _ = stamps_lognormal_ml
    maximum = ml if which == "best" else min(ml.local_maxima, key=lambda m: abs(m.loglik - 1511.311))
    weights, means, variances = _ours(maximum)
    log_y = np.log(stamps["thickness"].to_numpy())[:, None]
    gm = GaussianMixture(
        n_components=3,
        weights_init=weights,
        means_init=means[:, None],
        precisions_init=(1 / variances)[:, None, None],
        tol=1e-10,
        max_iter=10000,
        reg_covar=REG_COVAR,
    ).fit(log_y)
    assert gm.converged_
    jacobian = -np.log(stamps["thickness"].to_numpy()).sum()
    assert gm.score(log_y) * len(log_y) + jacobian == pytest.approx(maximum.loglik, abs=1e-4)
    for ours, theirs in zip((weights, means, variances), _theirs(gm), strict=True):
        np.testing.assert_allclose(ours, theirs, rtol=1e-4)
