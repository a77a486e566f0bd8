"""The frequentist fit as users see it: ``model.fit_ml()``."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from ..spec.terms import Design
from .lmm import LMMResult, fit_lmm

__all__ = ["MLFit", "fit_ml"]


@dataclass(frozen=True, slots=True)
class MLFit:
    """Maximum-likelihood (or REML) fit of a Gaussian mixed model.

    Attributes
    ----------
    result
        The full engine output (:class:`~bayesmix.compare.lmm.LMMResult`).
    """

    result: LMMResult

    @property
    def reml(self) -> bool:
        """True for REML, False for ML."""
        return self.result.reml

    @property
    def loglik(self) -> float:
        """Log-likelihood at the optimum; for REML the REML criterion as lme4's ``logLik``."""
        return float(self.result.loglik)

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

    def __str__(self) -> str:
        kind = "REML" if self.reml else "ML"
        head = (
            f"Linear mixed model fit by {kind}: n = {self.result.n_obs}, log-likelihood = {self.loglik:.4f}"
        )
        if self.result.singular:
            head += "\n(singular fit: a variance or correlation is on its boundary)"
        return head + "\n" + self.table().to_string(float_format=lambda v: f"{v:.4g}")

    __repr__ = __str__

    def _repr_html_(self) -> str:
        kind = "REML" if self.reml else "ML"
        head = (
            f"<p>Linear mixed model fit by {kind}: n = {self.result.n_obs}, "
            f"log-likelihood = {self.loglik:.4f}</p>"
        )
        return head + self.table().to_html(float_format=lambda v: f"{v:.4g}", na_rep="")


def fit_ml(design: Design, *, reml: bool = True) -> MLFit:
    """Fit the Gaussian linear mixed model by REML or ML."""
    if not isinstance(reml, bool):
        raise TypeError(f"reml must be True or False, got {reml!r}")
    return MLFit(fit_lmm(design, reml=reml))
