r"""Random-effects meta-analysis and meta-regression by REML, ML or DerSimonian-Laird.

The frequentist fit of ``bx.hierarchical("y | se(s) ~ x + (1 | study)", data)``, as metafor's
``rma(yi, sei = s, mods = ~ x, method = ...)`` computes it.

Notes
-----
Study ``i`` reports an estimate ``y_i`` with a known standard error ``s_i``;

.. math:: y_i \sim N(x_i^\top \beta,\ s_i^2 + \tau^2),\qquad i = 1, \dots, k.

With weights :math:`w_i = 1 / (s_i^2 + \tau^2)` and :math:`A = X^\top W X`, the coefficients are
:math:`\hat\beta = A^{-1} X^\top W y` with covariance :math:`A^{-1}`. The between-study
variance :math:`\tau^2 \ge 0` maximizes the profiled log-likelihood (ML) or the restricted
one (REML) on :math:`[0, \infty)` (:mod:`bayesmix.compare.meta_tau2`), or is DerSimonian and
Laird's moment estimator :math:`\max(0, (Q - (k - p)) / \operatorname{tr} P_0)`.
:math:`Q = \sum_i (y_i - x_i^\top \hat\beta_0)^2 / s_i^2` is Cochran's statistic at the
fixed-effect fit (the residual heterogeneity ``QE`` of a meta-regression), chi-squared with
:math:`k - p` degrees of freedom when :math:`\tau^2 = 0`. With the typical within-study
variance :math:`\tilde v = (k - p) / \operatorname{tr} P_0`,
:math:`I^2 = 100\,\hat\tau^2 / (\tilde v + \hat\tau^2)` and :math:`H^2 = 1 + \hat\tau^2 /
\tilde v` (metafor's definitions, residual ones in a meta-regression).

References
----------
DerSimonian, R. and Laird, N. (1986). Meta-analysis in clinical trials. *Controlled Clinical
Trials* 7, 177-188. Higgins, J. P. T. and Thompson, S. G. (2002). Quantifying heterogeneity in a
meta-analysis. *Statistics in Medicine* 21, 1539-1558. Viechtbauer, W. (2005). Bias and
efficiency of meta-analytic variance estimators in the random-effects model. *Journal of
Educational and Behavioral Statistics* 30, 261-293. Viechtbauer, W. (2010). Conducting
meta-analyses in R with the metafor package. *Journal of Statistical Software* 36(3).

Examples
--------
>>> import numpy as np
>>> y = np.array([28.0, 8, -3, 7, -1, 1, 18, 12])
>>> se = np.array([15.0, 10, 16, 11, 9, 11, 10, 18])
>>> fit = fit_meta(y, se, np.ones((8, 1)), ("Intercept",), group="school")
>>> fit.boundary, round(float(fit.beta[0]), 4), list(fit.table().index)
(True, 7.6856, ['Intercept', 'sd(Intercept|school)'])
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt
import pandas as pd
import scipy.stats as st

from .meta_tau2 import WLS, q_profile, se_tau2, tau2_dl, tau2_likelihood

if TYPE_CHECKING:
    from ..spec.terms import Design

__all__ = ["BOUNDARY_NOTE", "METHODS", "MetaFit", "fit_meta", "fit_meta_design", "meta_method"]

FloatArray = npt.NDArray[np.float64]

#: The estimators of ``tau^2``: restricted and full maximum likelihood, DerSimonian-Laird.
METHODS = ("REML", "ML", "DL")
#: How a ``tau^2`` of exactly 0 is reported: a legitimate estimate, not a failure.
BOUNDARY_NOTE = "tau^2 at the boundary 0: the estimate is complete pooling"


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class MetaFit:
    """A random-effects meta-analysis (or meta-regression) fitted by REML, ML or DL.

    Attributes
    ----------
    method
        ``"REML"``, ``"ML"`` or ``"DL"``: the estimator of ``tau^2``.
    level
        Confidence level of the intervals.
    fixed_names, tau_name
        Coefficient names and the public name of ``tau`` (``sd(Intercept|study)``).
    k
        Number of studies.
    beta, vcov
        Coefficients and their covariance ``(X'WX)^-1``, ``W = diag(1 / (s^2 + tau^2))``.
    tau2, se_tau2, tau2_ci
        ``tau^2``, its standard error (metafor's for each estimator) and Q-profile interval.
    q, q_df, q_p_value
        Cochran's ``Q`` (residual heterogeneity ``QE`` in a meta-regression), ``k - p``, p-value.
    qm, qm_df, qm_p_value
        Omnibus Wald test of the moderators (of the intercept when it is the only coefficient).
    i2, h2, typical_variance
        ``I^2`` (in percent, as metafor), ``H^2`` and the typical within-study variance.
    loglik_ml, loglik_reml
        ML and REML log-likelihoods at the estimates (metafor's ``fit.stats``).
    converged
        Whether the ML/REML search converged (always True for DL).
    """

    method: str
    level: float
    fixed_names: tuple[str, ...]
    tau_name: str
    k: int
    beta: FloatArray
    vcov: FloatArray
    tau2: float
    se_tau2: float
    tau2_ci: tuple[float, float]
    q: float
    q_df: int
    q_p_value: float
    qm: float
    qm_df: int
    qm_p_value: float
    i2: float
    h2: float
    typical_variance: float
    loglik_ml: float
    loglik_reml: float
    converged: bool

    @property
    def tau(self) -> float:
        """The between-study SD."""
        return float(np.sqrt(self.tau2))

    @property
    def tau_ci(self) -> tuple[float, float]:
        """Q-profile interval of ``tau`` (square roots of :attr:`tau2_ci`)."""
        return float(np.sqrt(self.tau2_ci[0])), float(np.sqrt(self.tau2_ci[1]))

    @property
    def boundary(self) -> bool:
        """True when ``tau^2`` is exactly 0 (complete pooling; see :data:`BOUNDARY_NOTE`)."""
        return self.tau2 == 0.0

    @property
    def loglik(self) -> float:
        """Metafor's ``logLik``: the REML log-likelihood for REML, the ML one for ML and DL."""
        return self.loglik_reml if self.method == "REML" else self.loglik_ml

    @property
    def log_likelihood(self) -> float:
        """Same as :attr:`loglik`."""
        return self.loglik

    @property
    def beta_se(self) -> FloatArray:
        """Standard errors of the coefficients."""
        return np.sqrt(np.diag(self.vcov))

    @property
    def z(self) -> FloatArray:
        """Wald statistics of the coefficients."""
        return self.beta / self.beta_se

    @property
    def p_value(self) -> FloatArray:
        """Two-sided normal p-values of the coefficients."""
        return 2.0 * st.norm.sf(np.abs(self.z))

    @property
    def ci(self) -> FloatArray:
        """``(p, 2)`` Wald intervals of the coefficients at :attr:`level`."""
        half = st.norm.isf((1.0 - self.level) / 2) * self.beta_se
        return np.column_stack([self.beta - half, self.beta + half])

    def table(self) -> pd.DataFrame:
        """``estimate, std_error, z, p_value, ci_lower, ci_upper`` for the coefficients and ``tau``.

        ``tau``'s standard error is ``se(tau^2) / (2 tau)`` (the delta method; NaN at the
        boundary), its interval the Q-profile one; it has no Wald test.
        """
        ci = self.ci
        tau_se = self.se_tau2 / (2.0 * self.tau) if self.tau > 0.0 else np.nan
        return pd.DataFrame(
            {
                "estimate": [*self.beta, self.tau],
                "std_error": [*self.beta_se, tau_se],
                "z": [*self.z, np.nan],
                "p_value": [*self.p_value, np.nan],
                "ci_lower": [*ci[:, 0], self.tau_ci[0]],
                "ci_upper": [*ci[:, 1], self.tau_ci[1]],
            },
            index=pd.Index([*self.fixed_names, self.tau_name]),
        )

    @property
    def estimates(self) -> pd.Series:
        """Estimates under the public parameter names (coefficients and ``tau``)."""
        return self.table()["estimate"]

    @property
    def std_errors(self) -> pd.Series:
        """Standard errors under the public parameter names."""
        return self.table()["std_error"]

    def _regression(self) -> bool:
        """A meta-regression: coefficients other than the pooled effect alone."""
        return self.fixed_names != ("Intercept",)

    def _lines(self) -> list[str]:
        """Metafor's print, line by line (the model-results table excluded)."""
        kind, what, resid = (
            ("Mixed-effects", "residual heterogeneity", "residual heterogeneity / unaccounted variability")
            if self._regression()
            else ("Random-effects", "total heterogeneity", "total heterogeneity / total variability")
        )
        h2_text = "unaccounted variability" if self._regression() else "total variability"
        pct = round(100 * self.level)
        labels = {
            f"tau^2 (estimated amount of {what}):": f"{_num(self.tau2)} (SE = {_num(self.se_tau2)})",
            "tau (square root of estimated tau^2 value):": _num(self.tau),
            f"tau^2 {pct}% CI (Q-profile):": f"[{_num(self.tau2_ci[0])}, {_num(self.tau2_ci[1])}]",
            f"I^2 ({resid}):": f"{self.i2:.2f}%",
            f"H^2 ({h2_text} / sampling variability):": f"{self.h2:.2f}",
        }
        width = max(len(label) for label in labels)
        lines = [
            f"{kind} model (k = {self.k}; tau^2 estimator: {self.method}; "
            f"log-likelihood = {self.loglik:.4f})",
            "",
            *(f"{label.ljust(width)} {value}" for label, value in labels.items()),
        ]
        if self.boundary:
            lines.append(BOUNDARY_NOTE)
        if not self.converged:
            lines.append("(the search for tau^2 did not converge)")
        q_name = "QE" if self._regression() else "Q"
        lines += [
            "",
            f"Test for {'residual ' if self._regression() else ''}heterogeneity:",
            f"{q_name}(df = {self.q_df}) = {self.q:.4f}, p-val {_p_text(self.q_p_value)}",
        ]
        if self._regression():
            lines += [
                "",
                "Test of moderators:",
                f"QM(df = {self.qm_df}) = {self.qm:.4f}, p-val {_p_text(self.qm_p_value)}",
            ]
        return lines

    def _results_table(self) -> pd.DataFrame:
        ci = self.ci
        return pd.DataFrame(
            {
                "estimate": [_num(b) for b in self.beta],
                "se": [_num(s) for s in self.beta_se],
                "zval": [_num(z) for z in self.z],
                "pval": [_p_text(p).removeprefix("= ").replace("< ", "<") for p in self.p_value],
                "ci.lb": [_num(c) for c in ci[:, 0]],
                "ci.ub": [_num(c) for c in ci[:, 1]],
            },
            index=pd.Index(self.fixed_names),
        )

    def __str__(self) -> str:
        return "\n".join([*self._lines(), "", "Model results:", "", self._results_table().to_string()])

    __repr__ = __str__

    def _repr_html_(self) -> str:
        from html import escape

        head = "<br>".join(escape(line) for line in self._lines() if line)
        return f"<p>{head}</p><p>Model results</p>" + self._results_table().to_html()


def _num(value: float) -> str:
    """Four decimals, as metafor prints (``0`` for an exact zero, as its ``tau^2`` at the boundary)."""
    return "0" if value == 0.0 else f"{value:.4f}"


def _p_text(p: float) -> str:
    """``< .0001`` or ``= 0.0123``, as metafor prints a p-value."""
    return "< .0001" if p < 1e-4 else f"= {p:.4f}"


def _check(
    y: FloatArray, se: FloatArray, X: FloatArray, fixed_names: tuple[str, ...], method: str, level: float
) -> None:
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must lie strictly between 0 and 1, got {level!r}")
    if y.ndim != 1 or se.shape != y.shape:
        raise ValueError(f"y and se must be 1-D of one length, got shapes {y.shape} and {se.shape}")
    if X.shape != (y.shape[0], len(fixed_names)):
        raise ValueError(f"X has shape {X.shape}, expected ({y.shape[0]}, {len(fixed_names)})")
    if not (np.isfinite(y).all() and np.isfinite(X).all()):
        raise ValueError("y and X must be finite")
    if not (np.isfinite(se).all() and (se > 0).all()):
        bad = se[~(np.isfinite(se) & (se > 0))]
        raise ValueError(f"the known standard errors must be positive and finite, got {bad[:5].tolist()}")
    k, p = X.shape
    if k <= p:
        raise ValueError(f"{k} studies for {p} coefficients: tau^2 needs k > p")
    if np.linalg.matrix_rank(X) < p:
        raise ValueError(f"the moderators {list(fixed_names)} are linearly dependent (X is rank deficient)")


def fit_meta(
    y: npt.ArrayLike,
    se: npt.ArrayLike,
    X: npt.ArrayLike,
    fixed_names: tuple[str, ...],
    *,
    method: str = "REML",
    level: float = 0.95,
    group: str = "study",
) -> MetaFit:
    """Random-effects meta-analysis or meta-regression with known standard errors.

    Parameters
    ----------
    y, se
        Study estimates and their known standard errors (``se > 0``).
    X, fixed_names
        ``(k, p)`` design of the coefficients (a column of ones for the pooled effect) and its
        column names.
    method
        ``"REML"`` (default, as metafor), ``"ML"`` or ``"DL"`` (DerSimonian-Laird).
    level
        Confidence level of the intervals.
    group
        Name of the study factor: ``tau`` is reported as ``sd(Intercept|<group>)``.

    Returns
    -------
    MetaFit

    Notes
    -----
    See the module notes for the model and the statistics. The standard error of ``tau^2`` is
    metafor's: the expected information ``sqrt(2 / tr(PP))`` (REML), ``sqrt(2 / sum w^2)``
    (ML), the moment estimator's variance (DL). ``tau^2 = 0`` is a legitimate estimate
    (:data:`BOUNDARY_NOTE`), flagged by :attr:`MetaFit.boundary`.
    """
    y_arr = np.asarray(y, dtype=np.float64)
    se_arr = np.asarray(se, dtype=np.float64)
    X_arr = np.asarray(X, dtype=np.float64)
    fixed_names = tuple(fixed_names)
    _check(y_arr, se_arr, X_arr, fixed_names, method, level)
    v = se_arr**2
    k, p = X_arr.shape
    if method == "DL":
        tau2, converged = tau2_dl(y_arr, v, X_arr), True
    else:
        tau2, converged = tau2_likelihood(y_arr, v, X_arr, reml=method == "REML")
    fit = WLS.at(y_arr, v, X_arr, tau2)
    fixed = WLS.at(y_arr, v, X_arr, 0.0)
    q = max(0.0, fixed.rss)
    typical = (k - p) / fixed.trace_p(X_arr)
    has_intercept = bool(np.all(X_arr[:, 0] == 1.0))
    tested = slice(1, None) if has_intercept and p > 1 else slice(0, None)
    b, cov = fit.beta[tested], fit.vcov[tested, tested]
    qm = float(b @ np.linalg.solve(cov, b))
    return MetaFit(
        method=method,
        level=level,
        fixed_names=fixed_names,
        tau_name=f"sd(Intercept|{group})",
        k=k,
        beta=fit.beta,
        vcov=fit.vcov,
        tau2=tau2,
        se_tau2=se_tau2(method, y_arr, v, X_arr, tau2),
        tau2_ci=q_profile(y_arr, v, X_arr, level),
        q=q,
        q_df=k - p,
        q_p_value=float(st.chi2.sf(q, k - p)),
        qm=qm,
        qm_df=b.size,
        qm_p_value=float(st.chi2.sf(qm, b.size)),
        i2=100.0 * tau2 / (typical + tau2),
        h2=1.0 + tau2 / typical,
        typical_variance=typical,
        loglik_ml=fit.loglik(v, X_arr, tau2, reml=False),
        loglik_reml=fit.loglik(v, X_arr, tau2, reml=True),
        converged=converged,
    )


def meta_method(reml: bool | None, method: str | None) -> str:
    """The estimator asked for by ``fit_ml(reml=..., method=...)`` of a known-SD model.

    ``method`` wins when given (``reml`` must then be unset); ``reml=None`` or ``True`` means
    REML, ``False`` ML.
    """
    if method is not None:
        if reml is not None:
            raise ValueError(f"pass either reml= or method=, not both (got reml={reml!r}, method={method!r})")
        if method not in METHODS:
            raise ValueError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")
        return method
    if reml is not None and not isinstance(reml, bool):
        raise TypeError(f"reml must be True, False or None, got {reml!r}")
    return "ML" if reml is False else "REML"


def fit_meta_design(design: Design, known_sd: FloatArray, *, method: str, level: float = 0.95) -> MetaFit:
    """:func:`fit_meta` on a model's design: one row per study, ``(1 | study)`` its random intercept."""
    factors = design.factors
    if len(factors) != 1 or factors[0].terms != ("Intercept",):
        shown = [f"{f.terms}|{f.name}" for f in factors] or "none"
        raise ValueError(
            "the frequentist fit of a model with known standard errors (y | se(s) ~ ...) is the "
            "random-effects meta-analysis: it needs exactly one random intercept per study, "
            f"(1 | study); this model's random effects: {shown}"
        )
    factor = factors[0]
    if np.any(factor.counts != 1):
        repeated = [lvl for lvl, c in zip(factor.levels, factor.counts, strict=True) if c != 1]
        raise ValueError(
            f"the random-effects meta-analysis needs one row per level of {factor.name!r}; "
            f"levels with other counts: {repeated[:5]}"
        )
    return fit_meta(
        design.y, known_sd, design.X, design.fixed_names, method=method, group=factor.name, level=level
    )
