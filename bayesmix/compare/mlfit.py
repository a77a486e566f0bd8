"""The frequentist fit as users see it: ``model.fit_ml()``.

The Gaussian family gets the exact REML/ML engine (:mod:`bayesmix.compare.lmm`); every other
family the Laplace-approximation ML engine (:mod:`bayesmix.compare.laplace`, lme4's ``glmer``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..spec.families import Family, get_family
from ..spec.terms import Design
from .laplace import LaplaceResult, fit_laplace
from .lmm import LMMResult, fit_lmm
from .lmm_inference import wald_intervals
from .meta import MetaFit, fit_meta_design, meta_method

__all__ = ["MLFit", "fit_ml"]


@dataclass(frozen=True, slots=True)
class MLFit:
    """Maximum-likelihood (or REML) fit of a mixed model.

    Attributes
    ----------
    result
        The full engine output: :class:`~bayesmix.compare.lmm.LMMResult` (Gaussian, exact
        REML or ML) or :class:`~bayesmix.compare.laplace.LaplaceResult` (other families, ML
        by the Laplace approximation).
    level
        Confidence level of :meth:`table`'s intervals unless it is given another.
    """

    result: LMMResult | LaplaceResult
    level: float = 0.95

    @property
    def method(self) -> str:
        """``"REML"``, ``"ML"`` (exact, Gaussian) or ``"Laplace"`` (ML by the Laplace approximation)."""
        if isinstance(self.result, LaplaceResult):
            return "ML" if self.result.family == "gaussian" else "Laplace"
        return "REML" if self.result.reml else "ML"

    @property
    def reml(self) -> bool:
        """True for REML, False for ML."""
        return self.result.reml

    @property
    def loglik(self) -> float:
        """Log-likelihood at the optimum; for REML the REML criterion as lme4's ``logLik``."""
        return float(self.result.loglik)

    @property
    def log_likelihood(self) -> float:
        """The maximized log-likelihood (the REML criterion for a REML fit); same as :attr:`loglik`."""
        return self.loglik

    @property
    def aic(self) -> float:
        """``-2 log L + 2 k``, ``k`` the number of parameters (as lme4's ``AIC``)."""
        return -2.0 * self.loglik + 2.0 * len(self.estimates)

    @property
    def bic(self) -> float:
        """``-2 log L + k log n``."""
        return -2.0 * self.loglik + len(self.estimates) * float(np.log(self.result.n_obs))

    @property
    def converged(self) -> bool:
        """The optimizer's verdict (see ``result.optimizer_message``)."""
        return self.result.converged

    @property
    def estimates(self) -> pd.Series:
        """Estimates under the public parameter names."""
        return self.result.estimates

    @property
    def std_errors(self) -> pd.Series:
        """Standard errors (observed information for variance parameters; NaN on a boundary)."""
        return self.result.std_errors

    def table(self, prob: float | None = None) -> pd.DataFrame:
        """Estimate, std. error, z, p and Wald interval at ``prob`` (default :attr:`level`) per parameter.

        Intervals are symmetric on the scale the parameter is estimated on: coefficients as
        they are, SDs and other positive parameters on the log scale, correlations on the
        atanh scale (:func:`~bayesmix.compare.lmm_inference.wald_intervals`).
        """
        table = self.result.table()  # intervals at 95%
        prob = self.level if prob is None else prob
        if prob != 0.95:
            ci = wald_intervals(table["estimate"], table["std_error"], self.result.fixed_names, prob)
            table["ci_lower"], table["ci_upper"] = ci["lower"], ci["upper"]
        return table

    def random_effects(self) -> pd.DataFrame:
        """Conditional modes (BLUPs) and conditional SDs, rows ``(factor, level, term)``."""
        frames = []
        for name, modes in self.result.ranef.items():
            sds = self.result.ranef_sd[name]
            long = pd.DataFrame(
                {"mode": modes.stack(), "sd": sds.stack()},
            )
            long.index = pd.MultiIndex.from_tuples(
                [(name, str(level), str(term)) for level, term in long.index],
                names=["factor", "level", "term"],
            )
            frames.append(long)
        return pd.concat(frames)

    def _title(self) -> str:
        if isinstance(self.result, LaplaceResult):
            return (
                f"Generalized linear mixed model ({self.result.family}, {self.result.link} link) "
                "fit by ML, Laplace approximation"
            )
        return f"Linear mixed model fit by {self.method}"

    def _header(self) -> list[str]:
        lines = [
            self._title(),
            f"n = {self.result.n_obs}, log-likelihood = {self.loglik:.4f}, "
            f"AIC = {self.aic:.2f}, BIC = {self.bic:.2f}",
        ]
        if self.result.singular:
            lines.append("(singular fit: a variance or correlation is on its boundary)")
        if not self.converged:
            lines.append(f"(the optimizer did not converge: {self.result.optimizer_message})")
        return lines

    def _residual(self) -> str | None:
        """The name of the residual SD in :attr:`estimates` (Gaussian family), else None."""
        gaussian = not isinstance(self.result, LaplaceResult) or self.result.family == "gaussian"
        return "sigma" if gaussian and "sigma" in self.estimates.index else None

    def random_effects_table(self) -> pd.DataFrame:
        """lme4's "Random effects" block: per factor and term its variance, SD and correlations.

        Columns ``Groups``, ``Name``, ``Variance``, ``Std.Dev.`` and ``Corr`` (text: the term's
        correlations with the terms above it in its correlated block); the Gaussian family's
        residual comes last as ``Residual``.
        """
        est, rows = self.estimates, []
        for name, sds in self.result.sd.items():
            terms = [str(t) for t in self.result.ranef[name].columns]
            corr = self.result.corr[name]
            for i, (term, sd) in enumerate(zip(terms, sds, strict=True)):
                shown = [
                    f"{corr[j, i]:.2f}" for j in range(i) if f"corr({terms[j]},{term}|{name})" in est.index
                ]
                rows.append((name if i == 0 else "", term, sd**2, sd, " ".join(shown)))
        residual = self._residual()
        if residual is not None:
            rows.append(("Residual", "", est[residual] ** 2, est[residual], ""))
        return pd.DataFrame(rows, columns=["Groups", "Name", "Variance", "Std.Dev.", "Corr"])

    def fixed_effects_table(self) -> pd.DataFrame:
        """lme4's "Fixed effects" block: ``Estimate``, ``Std. Error``, ``z value``, ``Pr(>|z|)``."""
        table = self.table().loc[list(self.result.fixed_names)]
        return pd.DataFrame(
            {
                "Estimate": table["estimate"],
                "Std. Error": table["std_error"],
                "z value": table["z"],
                "Pr(>|z|)": table["p_value"],
            }
        )

    def _family_table(self) -> pd.DataFrame | None:
        """Auxiliary parameters of a non-Gaussian family (``alpha``, ``phi``, ``nu``...), if any."""
        if not isinstance(self.result, LaplaceResult):
            return None
        names = [a for a in self.result.aux if a != self._residual()]
        if not names:
            return None
        return pd.DataFrame(
            {"Estimate": self.estimates[names], "Std. Error": self.std_errors[names]},
        )

    def _groups_line(self) -> str:
        groups = ", ".join(f"{name}, {len(modes.index)}" for name, modes in self.result.ranef.items())
        return f"Number of obs: {self.result.n_obs}, groups: {groups}"

    def __str__(self) -> str:
        random = self.random_effects_table()
        for column in ("Variance", "Std.Dev."):
            random[column] = random[column].map(lambda v: f"{v:.5g}")
        fixed = self.fixed_effects_table()
        cells = {
            "Estimate": lambda v: f"{v:.5g}",
            "Std. Error": lambda v: f"{v:.4g}",
            "z value": lambda v: f"{v:.3f}",
            "Pr(>|z|)": _p_value,
        }
        fixed = pd.DataFrame({c: fixed[c].map(f) for c, f in cells.items()}, index=fixed.index)
        lines = [*self._header(), "", "Random effects:"]
        lines += [" " + line for line in _left_text(random).splitlines()]
        lines += [self._groups_line(), "", "Fixed effects:", fixed.to_string()]
        family = self._family_table()
        if family is not None:
            lines += ["", "Family parameters:", family.to_string(float_format=lambda v: f"{v:.5g}")]
        return "\n".join(lines)

    __repr__ = __str__

    def _repr_html_(self) -> str:
        from html import escape

        head = "<br>".join(escape(line) for line in self._header())
        html = f"<p>{head}</p><p>Random effects ({escape(self._groups_line())})</p>"
        html += self.random_effects_table().to_html(index=False, float_format=lambda v: f"{v:.5g}")
        html += "<p>Fixed effects</p>" + self.fixed_effects_table().to_html(
            float_format=lambda v: f"{v:.5g}", na_rep=""
        )
        family = self._family_table()
        if family is not None:
            html += "<p>Family parameters</p>" + family.to_html(float_format=lambda v: f"{v:.5g}")
        return html


def _p_value(p: float) -> str:
    """A p-value as R's ``format.pval`` prints it: ``<2e-16`` below double precision's reach."""
    return "<2e-16" if p < 2.2e-16 else f"{p:.3g}"


def _left_text(frame: pd.DataFrame) -> str:
    """Text columns left-aligned (``Groups``, ``Name``, ``Corr``), numbers right-aligned, as lme4 prints."""
    columns = list(frame.columns)
    width = {c: max(len(c), *(len(str(v)) for v in frame[c])) for c in columns}
    left = {"Groups", "Name", "Corr"}

    def cell(c: str, v: object) -> str:
        return str(v).ljust(width[c]) if c in left else str(v).rjust(width[c])

    lines = [" ".join(cell(c, c) for c in columns)]
    lines += [" ".join(cell(c, row[c]) for c in columns) for _, row in frame.iterrows()]
    return "\n".join(line.rstrip() for line in lines)


def fit_ml(
    design: Design,
    *,
    reml: bool | None = None,
    family: Family | None = None,
    method: str | None = None,
    level: float = 0.95,
) -> MLFit | MetaFit:
    """Fit the mixed model by REML or ML: exactly for the Gaussian family, by Laplace otherwise.

    A model with known standard errors (``y | se(s) ~ ... + (1 | study)``, ``design.known_sd``)
    is the random-effects meta-analysis: it gets :func:`~bayesmix.compare.meta.fit_meta_design`
    (metafor's ``rma``), REML by default.

    Parameters
    ----------
    design
        The evaluated model.
    reml
        ``None`` (default): REML for the Gaussian family, ML otherwise (and for a Gaussian
        model with a known covariance ``K``, whose ML fit goes through the Laplace engine,
        exact for a Gaussian likelihood). ``True`` (REML) is defined for the Gaussian family
        without ``K`` only; ``False`` asks for ML.
    family
        The family with its link (``model.spec.family_def``); ``None`` means Gaussian.
    method
        Meta-analysis models only: ``"REML"``, ``"ML"`` or ``"DL"`` (DerSimonian-Laird);
        ``reml=True``/``False`` is the same as ``"REML"``/``"ML"``.
    level
        Confidence level of the result's table: Wald intervals (:meth:`MLFit.table`), and for a
        meta-analysis the Q-profile interval of tau as well.

    Returns
    -------
    MLFit or MetaFit
        :class:`~bayesmix.compare.meta.MetaFit` for a model with known standard errors.
    """
    if design.known_sd is not None:
        return fit_meta_design(design, design.known_sd, method=meta_method(reml, method), level=level)
    if method is not None:
        raise ValueError(
            f"method={method!r} chooses the tau^2 estimator of a meta-analysis (a model with known "
            "standard errors, y | se(s) ~ ...); this model has none: use reml=True or reml=False"
        )
    if reml is not None and not isinstance(reml, bool):
        raise TypeError(f"reml must be True, False or None, got {reml!r}")
    if family is None or family.name == "gaussian":
        known = [f.name for f in design.factors if f.covariance is not None]
        if not known:
            return MLFit(fit_lmm(design, reml=True if reml is None else reml), level)
        if reml:
            raise ValueError(
                f"REML with a known covariance of the levels of {known} is not available; the ML fit "
                "(reml=False, the default for such models) is exact for the gaussian family"
            )
        # The Laplace approximation is exact for a Gaussian likelihood: this is the ML fit.
        return MLFit(fit_laplace(design, family if family is not None else get_family("gaussian")), level)
    if reml:
        raise ValueError(
            f"REML is defined for the gaussian family (the linear mixed model) only; this model's family "
            f"is {family.name!r}: pass reml=False (or leave reml unset) for the maximum-likelihood fit "
            "by the Laplace approximation"
        )
    return MLFit(fit_laplace(design, family), level)
