"""statsmodels ``MixedLM`` as an independent reference fit."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from scipy import sparse, stats

from ..spec.terms import Design

__all__ = ["fit_statsmodels"]


def fit_statsmodels(design: Design, *, reml: bool = True, prob: float = 0.95) -> pd.DataFrame:
    """Fit the same model with statsmodels MixedLM; estimates and SEs under bayesmix's names.

    One grouping factor: ``MixedLM(y, X, groups, exog_re=Z)``, with a free covariance for
    the correlated block and zero correlations otherwise. Several grouping factors without
    correlations (crossed or nested): one all-rows group with a variance component per
    (factor, term). Standard errors are given for fixed effects only (statsmodels reports
    the others on its own scale), so only they get Wald intervals, at ``prob``.
    """
    import statsmodels.api as sm
    from statsmodels.regression.mixed_linear_model import MixedLMParams, VCSpec

    factors = design.factors
    names = design.parameter_names()
    if len(factors) == 1:
        f = factors[0]
        model = sm.MixedLM(design.y, design.X, groups=f.index, exog_re=f.values)
        free = None
        if set(f.correlated) != set(f.terms) and f.n_terms > 1:
            mask = np.eye(f.n_terms)
            pos = f.correlated_positions
            for i in pos:
                for j in pos:
                    mask[i, j] = 1.0
            free = MixedLMParams.from_components(np.ones(design.X.shape[1]), mask)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # convergence chatter; the result is checked by the caller
            res = model.fit(reml=reml, free=free)
        cov = np.asarray(res.cov_re)
        sds = np.sqrt(np.diag(cov))
        values = list(res.fe_params) + list(sds)
        values += [cov[i, j] / (sds[i] * sds[j]) for i, j in f.correlation_pairs()]
    else:
        if any(f.correlated for f in factors):
            raise NotImplementedError(
                "the statsmodels reference handles one grouping factor, or several without correlated "
                "terms; use reference='ml' for this model"
            )
        # one variance component per (factor, term), its design kept sparse (never n x J dense)
        rows = np.arange(design.n_obs)
        names_vc, colnames, mats = [], [], []
        for f in factors:
            for k, term in enumerate(f.terms):
                names_vc.append(f.sd_name(term))
                colnames.append([list(f.levels)])
                shape = (design.n_obs, f.n_levels)
                mats.append([sparse.csr_matrix((f.values[:, k], (rows, f.index)), shape=shape)])
        model = sm.MixedLM(
            design.y, design.X, groups=np.zeros(design.n_obs), exog_vc=VCSpec(names_vc, colnames, mats)
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = model.fit(reml=reml)
        values = list(res.fe_params) + list(np.sqrt(np.asarray(res.vcomp)))
    values.append(float(np.sqrt(res.scale)))
    p = design.X.shape[1]
    se = np.full(len(names), np.nan)
    se[:p] = np.asarray(res.bse_fe)
    est = np.asarray(values, dtype=float)
    z = stats.norm.isf((1.0 - prob) / 2.0)
    return pd.DataFrame(
        {
            "estimate": est,
            "std_error": se,
            "ci_lower": est - z * se,
            "ci_upper": est + z * se,
        },
        index=pd.Index(names, name="parameter"),
    ).assign(loglik=float(res.llf))
