"""The model specification: what the user asked for, checked and completed with defaults."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Literal

import numpy as np
import pandas as pd

from .covariance import attach_covariances
from .data import check_design, check_known_sd, check_response_varies, select_rows
from .families import Family, get_family
from .formula import evaluate, parse
from .parametrization import Choice, choose
from .priors import LKJ, Cauchy, Dirichlet, Exponential, Flat, HalfNormal, Normal, Prior, StudentT
from .terms import Design

__all__ = ["ModelSpec", "default_priors", "specify"]

Kind = Literal["hierarchical", "mixed"]
Centering = str | Sequence[str] | Mapping[str, bool]
_REAL_PRIORS = (Normal, StudentT, Cauchy, Flat)


@dataclass(frozen=True, slots=True, kw_only=True)
class ModelSpec:
    """Everything needed to rebuild a model from its data.

    Attributes
    ----------
    formula, family, kind
        As given; ``kind="mixed"`` means flat priors on the fixed effects.
    priors
        Prior of every parameter (public names), defaults included.
    user_priors
        The names whose prior the user chose.
    missing
        The missing-data policy, ``"error"`` or ``"drop"``.
    dropped
        Index labels of rows dropped under ``missing="drop"``.
    centered
        Grouping factors given the centered parametrization.
    link
        The link function (the family's default unless chosen).
    parametrization
        Per grouping factor: centered or not, the information ratio behind the choice and
        whether the user or the rule chose it (:mod:`bayesmix.spec.parametrization`).
    marginalized
        True when the random effects are integrated out of the sampled model
        (:mod:`bayesmix.build.marginal`) and drawn afterwards from their exact conditional.
    marginalization
        Why the random effects are, or are not, integrated out (shown in reports).
    response_scale
        ``(centre, scale)`` of the response on the linear-predictor scale (mean and SD for
        the Gaussian family, of ``log y`` for the lognormal; see :meth:`Family.location`):
        the units in which the default priors are set, so that a response recorded in
        millimetres or in metres gets the same model (see :func:`default_priors`).
    """

    formula: str
    family: str
    kind: Kind
    priors: Mapping[str, Prior]
    user_priors: frozenset[str] = frozenset()
    missing: str = "error"
    dropped: tuple[object, ...] = ()
    centered: frozenset[str] = field(default_factory=frozenset)
    link: str = ""
    parametrization: tuple[Choice, ...] = ()
    marginalized: bool = False
    marginalization: str = ""
    response_scale: tuple[float, float] = (0.0, 1.0)

    @property
    def family_def(self) -> Family:
        """The family with the link in use."""
        return get_family(self.family).with_link(self.link or None)

    def require_gaussian(self, what: str) -> None:
        """Raise a clear error for what only the Gaussian (linear mixed) model has so far."""
        if self.family != "gaussian":
            raise ValueError(
                f"{what} is available for the gaussian family only; this model's family is {self.family!r}"
            )

    def prior_table(self) -> pd.DataFrame:
        """One row per parameter: its prior and whether it is a default."""
        return pd.DataFrame(
            {
                "prior": [p.describe() for p in self.priors.values()],
                "source": ["user" if k in self.user_priors else "default" for k in self.priors],
            },
            index=pd.Index(list(self.priors), name="parameter"),
        )


def _scale(values: np.ndarray) -> float:
    sd = float(np.std(values))
    return sd if sd > 0 else 1.0


def default_priors(design: Design, *, flat_fixed: bool, family: Family | None = None) -> dict[str, Prior]:
    r"""Weakly informative priors scaled to the data.

    Notes
    -----
    With :math:`s_y` the response SD and :math:`s_j`, :math:`m_j` the SD and mean of
    fixed-effect column :math:`j` (intercept excluded):

    * slope :math:`\beta_j \sim N(0, 2.5 s_y / s_j)`;
    * intercept :math:`\sim N(\bar y, 2.5 s_y \sqrt{1 + \sum_j (m_j / s_j)^2})`: the
      intercept is :math:`\bar y - \sum_j \beta_j m_j`, so its scale carries the
      slopes' uncertainty through the predictors' means;
    * ``sd(x|g)`` :math:`\sim` HalfNormal(:math:`s_y / s_x`), with :math:`s_x = 1` for the intercept;
    * correlations: LKJ(2), mildly favouring zero;
    * ``sigma`` :math:`\sim` Exponential(:math:`1 / s_y`); none when the response has known SDs
      (``y | se(s)``).

    For families other than the Gaussian, :math:`\bar y` and :math:`s_y` are the centre and
    scale of the response on the linear-predictor scale (:meth:`Family.location`: the mean
    and SD of :math:`\log y` for the lognormal; :math:`\log \bar y` and 1 for log links;
    :math:`\operatorname{logit} \bar y` and 1 for logit links), and the auxiliary parameters
    get the family's default priors (:mod:`bayesmix.spec.families`).

    ``flat_fixed=True`` (``bx.mixed``) gives every fixed effect a flat prior.
    """
    family = family if family is not None else get_family("gaussian")
    centre, sy = family.location(design.y, design.trials)
    priors: dict[str, Prior] = {}
    slopes = [j for j, name in enumerate(design.fixed_names) if np.ptp(design.X[:, j]) > 0]
    ratio = sum((float(np.mean(design.X[:, j])) / _scale(design.X[:, j])) ** 2 for j in slopes)
    for j, name in enumerate(design.fixed_names):
        if flat_fixed:
            priors[name] = Flat()
        elif j in slopes:
            priors[name] = Normal(0.0, 2.5 * sy / _scale(design.X[:, j]))
        else:
            priors[name] = Normal(centre, 2.5 * sy * float(np.sqrt(1.0 + ratio)))
    for factor in design.factors:
        for k, term in enumerate(factor.terms):
            column = factor.values[:, k]
            sx = _scale(column) if np.ptp(column) > 0 else 1.0
            priors[factor.sd_name(term)] = HalfNormal(sy / sx)
        if factor.correlated:
            priors[f"corr({factor.name})"] = LKJ(2.0)
    for aux, prior in family.auxiliary.items():
        if aux == "sigma" and design.known_sd is not None:
            continue  # se(): each row's SD is known, there is no residual SD to estimate
        priors[aux] = prior if prior is not None else Exponential(1.0 / sy)
    return priors


def _merge_priors(defaults: dict[str, Prior], user: Mapping[str, Prior] | None) -> dict[str, Prior]:
    if user is None:
        return defaults
    if not isinstance(user, Mapping):
        raise TypeError(f"priors must be a dict of parameter name -> prior, got {type(user).__name__}")
    merged = dict(defaults)
    for name, prior in user.items():
        if name not in defaults:
            raise ValueError(
                f"no parameter named {name!r} in this model{_name_hint(name)}; valid names: {list(defaults)}"
            )
        if not isinstance(prior, Prior):
            raise TypeError(
                f"the prior for {name!r} must be a bayesmix prior such as bx.priors.Normal(0, 1), "
                f"got {prior!r}"
            )
        default = defaults[name]
        if isinstance(prior, Dirichlet):
            raise ValueError(
                f"{prior.describe()} is a prior for the class probabilities of a finite mixture (bx.fmm, key "
                f"'class'); {name!r} needs a prior such as {default.describe()}"
            )
        if isinstance(default, LKJ) and not isinstance(prior, LKJ):
            raise ValueError(
                f"{name!r} is a correlation matrix: it needs an LKJ prior such as bx.priors.LKJ(2), "
                f"not {prior.describe()}"
            )
        if isinstance(prior, LKJ) and not isinstance(default, LKJ):
            raise ValueError(
                f"{prior.describe()} is a prior for correlation matrices ('corr(g)'), but {name!r} is a "
                f"single parameter; give it a prior such as {default.describe()}"
            )
        if isinstance(default, _REAL_PRIORS) and not isinstance(prior, _REAL_PRIORS):
            raise ValueError(
                f"{name!r} is a real-valued coefficient: use Normal, StudentT, Cauchy or Flat, "
                f"not {prior.describe()}"
            )
        if default.positive and not prior.positive:
            raise ValueError(
                f"{name!r} is positive: use HalfNormal, HalfCauchy, HalfStudentT, Exponential, Gamma, "
                f"Uniform with lower >= 0 or Beta (below 1), not {prior.describe()}"
            )
        merged[name] = prior
    return merged


def _name_hint(name: object) -> str:
    """Why a likely name is not a parameter: correlations share one prior; se() leaves no sigma."""
    text = str(name)
    if text.startswith("corr(") and "," in text and "|" in text:
        factor = text.rsplit("|", 1)[1].rstrip(")")
        return (
            f" (the correlations of a factor share one LKJ prior, keyed by the factor: "
            f"'corr({factor})': bx.priors.LKJ(2))"
        )
    if text == "sigma":
        return " (a response written 'y | se(s) ~ ...' has known SDs and no residual sigma)"
    return ""


def _check_flat_identified(design: Design, priors: Mapping[str, Prior]) -> None:
    """Fixed effects with flat priors need linearly independent columns, or the posterior is improper."""
    flat = [j for j, name in enumerate(design.fixed_names) if isinstance(priors[name], Flat)]
    if not flat:
        return
    X = design.X[:, flat]
    norms = np.linalg.norm(X, axis=0)
    _, singular, vt = np.linalg.svd(X / np.where(norms > 0, norms, 1.0), full_matrices=False)
    tol = max(X.shape) * np.finfo(float).eps * max(float(singular.max(initial=0.0)), 1.0)
    if X.shape[0] >= X.shape[1] and singular.min() > tol:
        return
    null = vt[-1] if X.shape[0] >= X.shape[1] else np.ones(len(flat))
    involved = [design.fixed_names[flat[j]] for j in np.flatnonzero(np.abs(null) > 1e-6)]
    raise ValueError(
        f"the fixed-effect columns {involved} are linearly dependent on these {design.n_obs} rows, and their "
        "priors are flat (bx.mixed), so the data cannot tell them apart and the posterior is improper; "
        "drop one of them from the formula, or give them proper priors (bx.hierarchical, or priors=)"
    )


def specify(
    formula: str,
    data: pd.DataFrame,
    *,
    family: str,
    kind: Kind,
    priors: Mapping[str, Prior] | None,
    missing: str,
    centered: Centering = "auto",
    covariances: Mapping[str, object] | None = None,
    link: str | None = None,
    marginalize: bool | None = None,
) -> tuple[ModelSpec, Design]:
    """Check everything the user gave and evaluate the design; nothing is compiled here."""
    fam = get_family(family).with_link(link)
    parsed = parse(formula)
    if fam.name == "binomial" and not parsed.binomial:
        raise ValueError(
            f"the binomial family needs the number of trials: write the response as lme4's "
            f"'cbind(successes, failures) ~ ...' or as 'successes | trials(n) ~ ...' (formula {formula!r}); "
            "for 0/1 responses use family='bernoulli'"
        )
    if parsed.binomial and fam.name != "binomial":
        raise ValueError(
            f"the response of {formula!r} counts successes out of trials, which only family='binomial' "
            f"models (got family={family!r})"
        )
    if parsed.known_sd and fam.name != "gaussian":
        raise ValueError(
            f"the response of {formula!r} has known standard deviations (y | se(...)), which only "
            f"family='gaussian' models (y_i ~ Normal(mu_i, se_i)); got family={family!r}"
        )
    rows, dropped = select_rows(parsed, data, missing)

    design = evaluate(parsed, rows)
    # se(): the residual SD of each row is known, so sigma is no parameter
    known = design.known_sd is not None
    design = replace(design, auxiliary=tuple(a for a in fam.auxiliary if not (known and a == "sigma")))
    design = attach_covariances(design, covariances)
    check_design(design)
    check_known_sd(design, rows.index)
    if design.trials is None:
        fam.check_support(design.y, design.response_name)
    if not fam.discrete and not known:  # with known SDs no scale can collapse
        check_response_varies(design.y, design.response_name, fam.name)
    all_priors = _merge_priors(default_priors(design, flat_fixed=kind == "mixed", family=fam), priors)
    _check_flat_identified(design, all_priors)
    choices = choose(design, fam, centered)
    marginalized, why = _marginalization(design, fam, marginalize)
    spec = ModelSpec(
        formula=formula,
        family=fam.name,
        kind=kind,
        priors=MappingProxyType(all_priors),
        user_priors=frozenset(priors or {}),
        missing=missing,
        dropped=tuple(dropped.tolist()),
        centered=frozenset(c.factor for c in choices if c.centered),
        link=fam.link,
        parametrization=choices,
        marginalized=marginalized,
        marginalization=why,
        response_scale=fam.location(design.y, design.trials),
    )
    return spec, design


def _marginalization(design: Design, family: Family, asked: bool | None) -> tuple[bool, str]:
    """Whether to integrate the random effects out, and why (``asked=None``: whenever possible)."""
    if asked is not None and not isinstance(asked, bool):
        raise TypeError(f"marginalize must be True, False or None, got {asked!r}")
    if family.name != "gaussian":
        why = f"not integrated out: the {family.name} likelihood has no closed-form marginal"
    elif len(design.factors) == 0:
        why = "no random effects"
    elif len(design.factors) > 1:
        names = ", ".join(f.name for f in design.factors)
        why = (
            f"not integrated out: {len(design.factors)} grouping factors ({names}) cannot be blocked per "
            "group, so the random effects are sampled"
        )
    elif asked is False:
        return False, "sampled (marginalize=False)"
    elif asked is None and design.factors[0].covariance is not None:
        # Measured (issue 5): with K the marginal needs a dense (Jq x Jq) Cholesky and its
        # gradient at every step; 44 related levels sampled in 57 s that way against about
        # 1 s with the random effects sampled. marginalize=True still integrates them out.
        return False, (
            "sampled: with a known covariance K the random effects can be integrated out only jointly "
            "over all levels, a dense Cholesky per gradient that is slower than sampling them; "
            "marginalize=True integrates them out anyway"
        )
    else:
        factor = design.factors[0]
        how = "jointly over the levels (known covariance K)" if factor.covariance is not None else "per group"
        return True, f"integrated out exactly {how} and drawn after sampling from their conditional posterior"
    if asked:
        raise ValueError(f"marginalize=True is not possible for this model: random effects {why}")
    return False, why
