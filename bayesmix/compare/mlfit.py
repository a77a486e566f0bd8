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
    """

    result: LMMResult | LaplaceResult

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

    def table(self) -> pd.DataFrame:
        """Estimate, std. error, z, p and 95% CI per parameter."""
        return self.result.table()

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

    def __str__(self) -> str:
        head = f"{self._title()}: n = {self.result.n_obs}, log-likelihood = {self.loglik:.4f}"
        if self.result.singular:
            head += "\n(singular fit: a variance or correlation is on its boundary)"
        return head + "\n" + self.table().to_string(float_format=lambda v: f"{v:.4g}")

    __repr__ = __str__

    def _repr_html_(self) -> str:
        head = f"<p>{self._title()}: n = {self.result.n_obs}, log-likelihood = {self.loglik:.4f}</p>"
        return head + self.table().to_html(float_format=lambda v: f"{v:.4g}", na_rep="")


def fit_ml(design: Design, *, reml: bool | None = None, family: Family | None = None) -> MLFit:
    """Fit the mixed model by REML or ML: exactly for the Gaussian family, by Laplace otherwise.

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

    Returns
    -------
    MLFit
    """
    if reml is not None and not isinstance(reml, bool):
        raise TypeError(f"reml must be True, False or None, got {reml!r}")
    if family is None or family.name == "gaussian":
        known = [f.name for f in design.factors if f.covariance is not None]
        if not known:
            return MLFit(fit_lmm(design, reml=True if reml is None else reml))
        if reml:
            raise ValueError(
                f"REML with a known covariance of the levels of {known} is not available; the ML fit "
                "(reml=False, the default for such models) is exact for the gaussian family"
            )
        # The Laplace approximation is exact for a Gaussian likelihood: this is the ML fit.
        return MLFit(fit_laplace(design, family if family is not None else get_family("gaussian")))
    if reml:
        raise ValueError(
            f"REML is defined for the gaussian family (the linear mixed model) only; this model's family "
            f"is {family.name!r}: pass reml=False (or leave reml unset) for the maximum-likelihood fit "
            "by the Laplace approximation"
        )
    return MLFit(fit_laplace(design, family))
