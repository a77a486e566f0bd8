"""The maximum-likelihood fit of a finite mixture, as users see it: ``model.fit_ml()``.

Stata's ``fmm`` estimator on bayesmix's likelihood: estimates with standard errors
from the observed information, class probabilities with delta-method standard
errors (``estat lcprob``), posterior class probabilities (``predict,
classposteriorpr``), AIC and BIC (``estat ic``), and every distinct non-degenerate
local maximum found (``local_maxima``).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field, replace

import numpy as np
import numpy.typing as npt
import pandas as pd
from scipy import special, stats
from threadpoolctl import threadpool_limits

from ..build.mixtures import compile_joint
from ..spec.families import PointMass
from ..spec.mixture import (
    MixtureDesign,
    MixtureSpec,
    class_shares,
    component_means,
    design_for,
    grid_design,
    parameter_names,
)
from .fmm_engine import Layout, Maximum, Objective, maximize

__all__ = ["CloseMaximaWarning", "MixtureMLFit", "fit_mixture_ml"]

FloatArray = npt.NDArray[np.float64]


class CloseMaximaWarning(UserWarning):
    """The two best local maxima of a mixture likelihood are close: the estimates hinge on which is taken."""


def layout_names(spec: MixtureSpec, design: MixtureDesign) -> list[str]:
    """Public names in the order of the unconstrained vector (see ``fmm_engine.Layout``)."""
    labels = spec.classes
    names = [f"{c}[{labels[j]}]" for j in spec.components for c in design.coef_names]
    for aux in spec.aux_names:
        names += [f"{aux}[{labels[j]}]" for j in spec.aux_classes(aux)]
    names += [f"class[{labels[j]}]:{c}" for j in range(1, spec.k) for c in design.class_coef_names]
    return names


@dataclass(frozen=True, slots=True, kw_only=True)
class MixtureMLFit:
    """A maximum of the mixture likelihood with its inference.

    Attributes
    ----------
    spec, design
        The model.
    maximum
        The maximum itself (unconstrained parameters, log-likelihood).
    local_maxima
        Every distinct non-degenerate maximum found, best first (this one included),
        each a :class:`MixtureMLFit`.
    refused
        ``(log-likelihood, reason)`` of the degenerate maxima that were found and refused.
    n_starts
        Number of starts searched.
    """

    spec: MixtureSpec
    design: MixtureDesign
    maximum: Maximum
    objective: Objective = field(repr=False, compare=False)
    local_maxima: tuple[MixtureMLFit, ...] = ()
    refused: tuple[tuple[float, str], ...] = ()
    n_starts: int = 0

    @property
    def layout(self) -> Layout:
        """Where each parameter sits in the unconstrained vector."""
        return self.objective.layout

    @property
    def loglik(self) -> float:
        """Log-likelihood at this maximum."""
        return self.maximum.loglik

    @property
    def nobs(self) -> int:
        """Number of observations."""
        return self.design.n_obs

    @property
    def df(self) -> int:
        """Number of free parameters."""
        return self.layout.size

    @property
    def aic(self) -> float:
        """Akaike's information criterion, ``-2 loglik + 2 df``."""
        return -2 * self.loglik + 2 * self.df

    @property
    def bic(self) -> float:
        """Schwarz's Bayesian information criterion, ``-2 loglik + log(n) df``."""
        return -2 * self.loglik + np.log(self.nobs) * self.df

    def information_criteria(self) -> pd.Series:
        """Stata's ``estat ic``: N, log-likelihood, df, AIC, BIC."""
        return pd.Series(
            {"N": self.nobs, "loglik": self.loglik, "df": self.df, "AIC": self.aic, "BIC": self.bic}
        )

    def _natural(self) -> tuple[FloatArray, dict[str, FloatArray], FloatArray]:
        return self.layout.natural(self.maximum.theta)

    def _covariance_theta(self) -> FloatArray:
        hessian = self.objective.hessian(self.maximum.theta)
        info = -(hessian + hessian.T) / 2
        if np.linalg.eigvalsh(info).min() <= 0:
            warnings.warn(
                "the observed information is not positive definite at this maximum (a parameter is on a "
                "boundary or not identified); its standard errors are NaN",
                RuntimeWarning,
                stacklevel=3,
            )
            return np.full(info.shape, np.nan)
        return np.linalg.inv(info)

    @property
    def estimates(self) -> pd.Series:
        """Estimates under the public names (auxiliaries on their natural scale)."""
        theta, mask = self.maximum.theta, self.layout.aux_mask()
        values = theta.copy()
        values[mask] = np.exp(theta[mask])  # only the log-auxiliaries: exp of a coefficient can overflow
        series = pd.Series(values, index=layout_names(self.spec, self.design), name="estimate")
        return series[parameter_names(self.spec, self.design)]

    def covariance(self) -> pd.DataFrame:
        """Covariance of the estimates (inverse observed information, delta method for auxiliaries)."""
        theta, mask = self.maximum.theta, self.layout.aux_mask()
        scale = np.ones_like(theta)
        scale[mask] = np.exp(theta[mask])
        cov = self._covariance_theta() * np.outer(scale, scale)
        names = layout_names(self.spec, self.design)
        order = parameter_names(self.spec, self.design)
        return pd.DataFrame(cov, index=names, columns=names).loc[order, order]

    @property
    def std_errors(self) -> pd.Series:
        """Standard errors from the observed information."""
        return pd.Series(np.sqrt(np.diag(self.covariance())), index=self.estimates.index, name="std_error")

    def table(self, prob: float = 0.95) -> pd.DataFrame:
        """Estimate, standard error, z, p and ``prob`` interval per parameter.

        Intervals of positive parameters are computed on the log scale (as Stata's for variances).
        """
        est, se = self.estimates, self.std_errors
        z = stats.norm.isf((1 - prob) / 2)
        positive = np.array([name.split("[")[0] in self.spec.aux_names for name in est.index])
        spread = np.where(positive, np.exp(z * se / est), np.nan)
        lower = np.where(positive, est / spread, est - z * se)
        upper = np.where(positive, est * spread, est + z * se)
        zstat = np.where(positive, np.nan, est / se)
        return pd.DataFrame(
            {
                "estimate": est,
                "std_error": se,
                "z": zstat,
                "p": 2 * stats.norm.sf(np.abs(zstat)),
                "ci_lower": lower,
                "ci_upper": upper,
            }
        )

    def class_probabilities(self, prob: float = 0.95) -> pd.DataFrame:
        """Stata's ``estat lcprob``: each class's probability (averaged over the data), with delta-method SEs.

        Intervals are computed on the logit scale, as Stata's.
        """
        _, _, gamma = self._natural()
        W = self.design.W
        shares = class_shares(gamma, W)
        margin = shares.mean(axis=0)
        k, q = self.spec.k, W.shape[1]
        # d mean_i p_il / d gamma_jc = mean_i p_il (1[l = j] - p_ij) W_ic, for j = 2..k
        jac = np.zeros((k, (k - 1) * q))
        for j in range(1, k):
            for c in range(q):
                delta = (np.eye(k)[j][None, :] - shares[:, [j]]) * shares * W[:, [c]]
                jac[:, (j - 1) * q + c] = delta.mean(axis=0)
        n_gamma = (k - 1) * q
        cov_gamma = self._covariance_theta()[-n_gamma:, -n_gamma:] if n_gamma else np.zeros((0, 0))
        se = np.sqrt(np.diag(jac @ cov_gamma @ jac.T))
        return _probability_table(margin, se, self.spec.classes, prob)

    def posterior_class_probabilities(self, data: pd.DataFrame | None = None) -> pd.DataFrame:
        """Stata's ``predict, classposteriorpr``: P(class | y, x) per observation (n x k).

        ``data``: new rows with the response and covariates; default the fitted data.
        """
        if data is None:
            resp = self.objective.responsibilities(self.maximum.theta)
            return _class_frame(resp, self.design.index, self.spec)
        design = design_for(self.spec, data)
        objective = Objective(self.spec, design)
        return _class_frame(objective.responsibilities(self.maximum.theta), design.index, self.spec)

    def component_means(self, data: pd.DataFrame | None = None) -> pd.DataFrame:
        """Per class, the mean of the response within the class, averaged over the data's covariates."""
        design = self.design if data is None else design_for(self.spec, data)
        beta, aux, _ = self._natural()
        return pd.DataFrame(
            {"mean": component_means(self.spec, design, beta, aux)},
            index=pd.Index(self.spec.classes, name="class"),
        )

    def density(self, values: npt.ArrayLike) -> pd.DataFrame:
        """Stata's ``predict, density marginal`` at the estimates: the mixture density at ``values``.

        With covariates the density is averaged over the fitted rows' covariates. Columns:
        ``density`` and each class's weighted contribution.
        """
        grid = np.asarray(values, dtype=float).ravel()
        design, weights = grid_design(self.design, grid)
        beta, aux, gamma = self._natural()
        joint = compile_joint(self.spec, design)(beta, *(aux[a] for a in self.spec.aux_names), gamma)
        per_class = np.einsum("grk,r->gk", np.exp(joint).reshape(grid.size, weights.size, -1), weights)
        frame = pd.DataFrame({"density": per_class.sum(axis=1)}, index=pd.Index(grid, name="value"))
        for j, label in enumerate(self.spec.classes):
            frame[f"class {label}"] = per_class[:, j]
        return frame

    def _header(self) -> str:
        families = ", ".join(self.spec.family_names())
        head = (
            f"Finite mixture model: {self.spec.k} classes ({families}), maximum likelihood\n"
            f"Number of obs = {self.nobs}    Log likelihood = {self.loglik:.4f}    "
            f"AIC = {self.aic:.2f}    BIC = {self.bic:.2f}"
        )
        others = len(self.local_maxima) - 1
        if others > 0:
            head += f"\n{others} other local maxim{'um' if others == 1 else 'a'} found (see .local_maxima)"
        return head + f"\n{self.spec.ordering()}"

    def display_blocks(self, prob: float = 0.95) -> list[tuple[tuple[str, ...], list[DisplayRow]]]:
        """The printed table in Stata's ``fmm`` order, block by block.

        First the class logits (multinomial logit, class 1 the base outcome), then one block
        per class: its coefficients under the response's name and its auxiliary parameters;
        a Gaussian or lognormal class shows its variance ``var(e.y)`` (``sigma^2``, standard error
        by the delta method, interval from that of ``sigma``) as Stata does. Each block is
        ``(title lines, rows)``; a row is ``(label, values, note)`` with ``values`` the
        estimate, standard error, z, p and interval bounds, or None for an equation's name.
        """
        table, spec, design = self.table(prob), self.spec, self.design
        labels, response = spec.classes, design.response_name
        rows: list[DisplayRow] = [(f"{labels[0]}.Class", None, "(base outcome)")]
        for j in range(1, spec.k):
            rows.append((f"{labels[j]}.Class", None, ""))
            rows += [(c, _row(table, f"class[{labels[j]}]:{c}"), "") for c in design.class_coef_names]
        blocks: list[tuple[tuple[str, ...], list[DisplayRow]]] = [
            (("Class logits (class 1 the base outcome)",), rows)
        ]
        for j, family in enumerate(spec.families):
            title = (f"Class: {labels[j]}", f"Response: {response}", f"Model: {spec.family_names()[j]}")
            if isinstance(family, PointMass):
                blocks.append((title, [(response, None, f"(all mass at {family.value:g}; no parameters)")]))
                continue
            rows = [(response, None, "")]
            rows += [(c, _row(table, f"{c}[{labels[j]}]"), "") for c in design.coef_names]
            for aux in family.auxiliary:
                values = _row(table, f"{aux}[{labels[j]}]")
                if aux == "sigma" and family.name in ("gaussian", "lognormal"):
                    est, se, _, _, lower, upper = values
                    target = f"log({response})" if family.log_response else response
                    rows.append(
                        (f"var(e.{target})", (est**2, 2 * est * se, np.nan, np.nan, lower**2, upper**2), "")
                    )
                else:
                    rows.append((aux, values, ""))
            blocks.append((title, rows))
        return blocks

    def __str__(self) -> str:
        return self._header() + "\n\n" + _render_text(self.display_blocks())

    __repr__ = __str__

    def _repr_html_(self) -> str:
        from html import escape

        head = "<br>".join(escape(line) for line in self._header().splitlines())
        return f"<p>{head}</p>" + _render_html(self.display_blocks())


#: One printed row: label, (estimate, std. error, z, p, lower, upper) or None, note.
DisplayRow = tuple[str, tuple[float, ...] | None, str]
_HEADS = ("Coef.", "Std. Err.", "z", "P>|z|")


def _row(table: pd.DataFrame, name: str) -> tuple[float, ...]:
    return tuple(float(v) for v in table.loc[name].to_numpy())


_WIDTHS = (11, 11, 9, 8, 12, 12)


def _number(value: float, kind: str) -> str:
    """Stata-like cells: up to 7 significant digits in 10 characters (else 3 in exponent form), z, p."""
    if not np.isfinite(value):
        return ""
    if kind == "z":
        return f"{value:.2f}"
    if kind == "p":
        return f"{value:.3f}"
    for digits in range(7, 2, -1):  # as many digits (up to 7) as fit in 10 characters
        text = f"{value:.{digits}g}"
        if "e" not in text and len(text) <= 10:
            return text
    whole = f"{value:.0f}"
    return whole if abs(value) >= 1 and len(whole) <= 10 else f"{value:.2e}"


def _cells(values: tuple[float, ...]) -> list[str]:
    kinds = ("g", "g", "z", "p", "g", "g")
    return [_number(float(v), k) for v, k in zip(values, kinds, strict=True)]


def _render_text(blocks: list[tuple[tuple[str, ...], list[DisplayRow]]], prob: float = 0.95) -> str:
    """Aligned text of :meth:`MixtureMLFit.display_blocks`: a ruled table per block, as Stata prints it."""
    width = max(13, *(len(label) + 2 for _, rows in blocks for label, _, _ in rows))
    right = sum(_WIDTHS)
    interval = f"[{100 * prob:g}% Conf. Interval]"
    head = " " * width + " |" + "".join(h.rjust(w) for h, w in zip(_HEADS, _WIDTHS, strict=False))
    head += interval.rjust(_WIDTHS[4] + _WIDTHS[5])
    rule, cross = "-" * (width + 2 + right), "-" * (width + 1) + "+" + "-" * (right)
    out = []
    for title, rows in blocks:
        out += [*title, rule, head, cross]
        for i, (label, values, note) in enumerate(rows):
            if values is None:
                if i > 0:
                    out.append(cross)
                out.append(f"{label:<{width}} |" + (f"  {note}" if note else ""))
            else:
                cells = "".join(c.rjust(w) for c, w in zip(_cells(values), _WIDTHS, strict=True))
                out.append(f"{label:>{width}} |{cells}")
        out += [rule, ""]
    return "\n".join(out).rstrip() + "\n"


def _render_html(blocks: list[tuple[tuple[str, ...], list[DisplayRow]]], prob: float = 0.95) -> str:
    """HTML of :meth:`MixtureMLFit.display_blocks`: one table per block, equation names as section rows."""
    from html import escape

    heads = "".join(f"<th>{escape(h)}</th>" for h in _HEADS)
    heads += f'<th colspan="2">[{100 * prob:g}% Conf. Interval]</th>'
    parts = []
    for title, rows in blocks:
        body = []
        for label, values, note in rows:
            if values is None:
                name = f'<th style="text-align:left">{escape(label)}</th>'
                body.append(f'<tr>{name}<td colspan="6">{escape(note)}</td></tr>')
            else:
                cells = "".join(f"<td>{c}</td>" for c in _cells(values))
                body.append(f'<tr><th style="text-align:right">{escape(label)}</th>{cells}</tr>')
        parts.append(
            f"<p>{'<br>'.join(escape(t) for t in title)}</p>"
            f"<table><thead><tr><th></th>{heads}</tr></thead><tbody>{''.join(body)}</tbody></table>"
        )
    return "".join(parts)


def _probability_table(
    margin: FloatArray, se: FloatArray, classes: tuple[str, ...], prob: float
) -> pd.DataFrame:
    z = stats.norm.isf((1 - prob) / 2)
    logit_se = se / (margin * (1 - margin))
    return pd.DataFrame(
        {
            "probability": margin,
            "std_error": se,
            "ci_lower": special.expit(special.logit(margin) - z * logit_se),
            "ci_upper": special.expit(special.logit(margin) + z * logit_se),
        },
        index=pd.Index(classes, name="class"),
    )


def _class_frame(resp: FloatArray, index: pd.Index, spec: MixtureSpec) -> pd.DataFrame:
    return pd.DataFrame(resp, index=index, columns=pd.Index(spec.classes, name="class"))


def fit_mixture_ml(
    spec: MixtureSpec,
    design: MixtureDesign,
    *,
    n_starts: int = 50,
    em_iterations: int = 30,
    random_seed: int | None = 0,
    warn_within: float = 1.0,
) -> MixtureMLFit:
    """Search for the maximum-likelihood fit of a mixture.

    Parameters
    ----------
    spec, design
        The model.
    n_starts
        Number of random starts, each refined by EM (see
        :func:`bayesmix.compare.fmm_engine.maximize`).
    em_iterations
        EM steps per start before direct maximization.
    random_seed
        Seed of the starts.
    warn_within
        Warn (:class:`CloseMaximaWarning`) when the two best distinct maxima lie within
        this many log-likelihood units.

    Returns
    -------
    MixtureMLFit
        The best non-degenerate maximum, with every distinct one in ``local_maxima``.
    """
    for name, value in (("n_starts", n_starts), ("em_iterations", em_iterations)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    objective = Objective(spec, design)
    rng = np.random.default_rng(random_seed)
    # Many tiny BLAS calls from two OpenBLAS builds (numpy's and scipy's): with more than one
    # thread each they spin against each other; one thread is 50x faster here.
    with threadpool_limits(1):
        found = maximize(spec, design, objective, n_starts=n_starts, em_iterations=em_iterations, rng=rng)
    good = [m for m in found if m.degenerate is None]
    refused = tuple((m.loglik, str(m.degenerate)) for m in found if m.degenerate is not None)
    if not good:
        reasons = "; ".join(f"log-likelihood {ll:.4f}: {why}" for ll, why in refused[:3])
        raise RuntimeError(
            f"every maximum found from {n_starts} starts is degenerate ({reasons}). Fewer classes (k), "
            "more starts, or a model with fewer parameters per class may help; when classes collapse onto "
            "tied values, bound their SD below with a prior, priors={'sigma': bx.priors.Uniform(lower, "
            "upper)}, which the search respects (lower: the data's rounding error, or the smallest spread "
            "a class can have)"
        )
    fits = [
        MixtureMLFit(spec=spec, design=design, maximum=m, objective=objective, n_starts=n_starts)
        for m in good
    ]
    if len(good) > 1 and good[0].loglik - good[1].loglik < warn_within:
        warnings.warn(
            f"the two best local maxima are {good[0].loglik - good[1].loglik:.3f} log-likelihood units apart "
            f"({good[0].loglik:.4f} and {good[1].loglik:.4f}); the likelihood barely tells them apart: "
            "compare them in .local_maxima. The posterior may be multimodal: fit() starts chains at each "
            "of them and fit.modes() reports whether the chains stay apart",
            CloseMaximaWarning,
            stacklevel=3,
        )
    return replace(fits[0], local_maxima=tuple(fits), refused=refused)
