"""What a finite mixture model asks for (Stata's ``fmm`` prefix), checked and completed.

A k-class mixture of regressions: class ``j`` has its own coefficients on the
formula's covariates and its own auxiliary parameters; class probabilities are a
multinomial logit with class 1 the base (its logit fixed at 0), optionally with
covariates (``class_formula``, Stata's ``lcprob()``).

Public parameter names (the contract, pinned by tests):

* ``{coef}[{j}]``: coefficient ``coef`` of class ``j`` (``Intercept[2]``, ``x[1]``);
* ``{aux}[{j}]``: auxiliary parameter of class ``j`` (``sigma[3]``, ``alpha[1]``);
* ``class[{j}]:{coef}``: class-``j`` logit coefficient, ``j >= 2`` (``class[2]:Intercept``).

A prior keyed by a name without the class (``"sigma"``, ``"Intercept"``) applies to
every class that has the parameter. The prior key ``"class"`` takes a Dirichlet prior on the
class probabilities as a whole (no class covariates); it replaces the logits' own priors.
"""

from __future__ import annotations

import numbers
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import cast

import numpy as np
import numpy.typing as npt
import pandas as pd
from scipy import special

from .data import check_response_varies, select_rows
from .families import Family, PointMass, get_family
from .formula import FormulaError, ParsedFormula, evaluate, parse
from .priors import LKJ, Cauchy, Dirichlet, Exponential, Normal, Prior, StudentT

__all__ = [
    "AUTO",
    "MixtureDesign",
    "MixtureSpec",
    "class_shares",
    "component_means",
    "design_for",
    "grid_design",
    "order_key",
    "parameter_names",
    "resolution",
    "specify_mixture",
]

FloatArray = npt.NDArray[np.float64]
Component = Family | PointMass

#: ``order_by`` default: order the first coefficient among classes of the same family.
AUTO = "auto"
_CLASS_LOGIT_SCALE = 1.5


@dataclass(frozen=True, slots=True, kw_only=True)
class MixtureDesign:
    """The evaluated data of a mixture model.

    Attributes
    ----------
    response_name, y
        Response column and values.
    X, coef_names
        Component design (shared by all classes; coefficients are class-specific).
    W, class_coef_names
        Class-probability design (just ``Intercept`` without ``class_formula``).
    trials
        Binomial trials per row, or None.
    index
        Index labels of the rows used.
    """

    response_name: str
    y: FloatArray
    X: FloatArray
    coef_names: tuple[str, ...]
    W: FloatArray
    class_coef_names: tuple[str, ...]
    trials: FloatArray | None = None
    index: pd.Index = field(default_factory=lambda: pd.RangeIndex(0))

    @property
    def n_obs(self) -> int:
        """Number of rows used."""
        return int(self.y.shape[0])


@dataclass(frozen=True, slots=True, kw_only=True)
class MixtureSpec:
    """Everything needed to rebuild a mixture model from its data.

    Attributes
    ----------
    k
        Number of classes.
    formula, class_formula
        As given.
    families
        One per class: a :class:`~bayesmix.spec.families.Family` or a :class:`PointMass`.
    priors
        Prior of every parameter (public names), defaults included.
    user_priors
        Names whose prior the user chose.
    order_by
        The parameter whose order identifies the classes (``"Intercept"``, ``"sigma"``,
        ``"class"``), or None when no two classes can swap labels.
    order_groups
        Groups of classes (0-based) ordered together: classes of one family.
    missing, dropped
        Missing-data policy and the index labels of dropped rows.
    trials
        The binomial trials column, or None.
    coef_names, class_coef_names
        Column names of the component and class designs (new data must give the same).
    response_scale
        Per class, ``(centre, scale)`` of the response on the class's linear-predictor scale
        (:meth:`Family.location`; ``(value, 0)`` for a point mass): the units in which the
        default priors are set, so that the model is the same whatever the response's units.
    """

    k: int
    formula: str
    class_formula: str | None
    families: tuple[Component, ...]
    priors: Mapping[str, Prior]
    user_priors: frozenset[str] = frozenset()
    order_by: str | None = None
    order_groups: tuple[tuple[int, ...], ...] = ()
    missing: str = "error"
    dropped: tuple[object, ...] = ()
    trials: str | None = None
    coef_names: tuple[str, ...] = ()
    class_coef_names: tuple[str, ...] = ("Intercept",)
    response_scale: tuple[tuple[float, float], ...] = ()

    @property
    def classes(self) -> tuple[str, ...]:
        """Class labels ``"1"``..``"k"``."""
        return tuple(str(j + 1) for j in range(self.k))

    @property
    def components(self) -> tuple[int, ...]:
        """0-based classes with parameters (every class but point masses)."""
        return tuple(j for j, f in enumerate(self.families) if isinstance(f, Family))

    def aux_classes(self, aux: str) -> tuple[int, ...]:
        """0-based classes whose family has the auxiliary parameter ``aux``."""
        return tuple(j for j, f in enumerate(self.families) if isinstance(f, Family) and aux in f.auxiliary)

    @property
    def aux_names(self) -> tuple[str, ...]:
        """Auxiliary parameter names used by any class, in first-seen order."""
        seen: dict[str, None] = {}
        for f in self.families:
            if isinstance(f, Family):
                seen.update(dict.fromkeys(f.auxiliary))
        return tuple(seen)

    def family_names(self) -> list[str]:
        """Family of each class as text."""
        return [f.describe() if isinstance(f, PointMass) else f.name for f in self.families]

    def ordering(self) -> str:
        """How the classes are labelled, in words (recorded on every fit)."""
        if self.order_by is None:
            names = [f.name for f in self.families if isinstance(f, Family)]
            if len(set(names)) == len(names):
                return "no ordering constraint: no two classes share a family, so labels cannot switch"
            return (
                "no ordering constraint (order_by=None): classes of one family can switch labels; "
                "fit.modes() reports chains in different labellings"
            )
        groups = "; ".join(", ".join(str(j + 1) for j in g) for g in self.order_groups)
        if self.order_by == "class":
            return f"classes {groups} are ordered by increasing class probability (logit intercept)"
        return f"classes {groups} are ordered by increasing {self.order_by}"

    def prior_table(self) -> pd.DataFrame:
        """One row per parameter: its prior and whether it is a default."""
        return pd.DataFrame(
            {
                "prior": [p.describe() for p in self.priors.values()],
                "source": ["user" if k in self.user_priors else "default" for k in self.priors],
            },
            index=pd.Index(list(self.priors), name="parameter"),
        )


def parameter_names(spec: MixtureSpec, design: MixtureDesign) -> list[str]:
    """All public parameter names in canonical order: per class coefficients and auxiliaries, then logits."""
    names = []
    for j in spec.components:
        family = spec.families[j]
        assert isinstance(family, Family)
        names += [f"{c}[{j + 1}]" for c in design.coef_names]
        names += [f"{a}[{j + 1}]" for a in family.auxiliary]
    for j in range(1, spec.k):
        names += [f"class[{j + 1}]:{c}" for c in design.class_coef_names]
    return names


def _families(k: int, family: str | PointMass | Sequence[str | PointMass]) -> tuple[Component, ...]:
    def one(f: object) -> Component:
        if isinstance(f, PointMass):
            return f
        if isinstance(f, str) and f.lower() == "pointmass":
            return PointMass(0.0)
        if not isinstance(f, str):
            raise TypeError(f"a family must be a name such as 'gaussian' or bx.PointMass(value), got {f!r}")
        return get_family(f)

    if isinstance(family, str | PointMass):
        return (one(family),) * k
    if not isinstance(family, Sequence):
        raise TypeError(f"family must be a name or a list of k names, got {type(family).__name__}")
    if len(family) != k:
        raise ValueError(
            f"family lists {len(family)} families for k = {k} classes; give one name or exactly {k}"
        )
    return tuple(one(f) for f in family)


def _check_k(k: object, design: MixtureDesign) -> int:
    """``1 <= k``, and without covariates ``k`` below the number of distinct responses.

    A mixture of distributions with as many classes as distinct values can put a class on
    each value; with covariates (a mixture of logistic regressions of a 0/1 response, say)
    the classes are told apart by the regressions, as in Stata's ``fmm 2: logit y x``.
    """
    if isinstance(k, bool) or not isinstance(k, numbers.Integral):
        raise TypeError(f"k (the number of classes) must be an integer, got {k!r}")
    k = int(k)
    if k < 1:
        raise ValueError(f"k = {k} classes cannot be fitted: k must be at least 1")
    distinct = len(np.unique(design.y))
    covariates = any(np.ptp(design.X[:, i]) > 0 for i in range(design.X.shape[1]))
    if not covariates and k >= max(distinct, 2):
        raise ValueError(
            f"k = {k} classes cannot be fitted: without covariates k must be below the number of distinct "
            f"response values ({distinct})"
        )
    return k


def _check_enough_rows(families: tuple[Component, ...], design: MixtureDesign) -> None:
    """Each class needs more rows than it has coefficients; a continuous class, a response that varies."""
    classes = [f for f in families if isinstance(f, Family)]
    needed = len(classes) * (len(design.coef_names) + 1)
    if needed > design.n_obs:
        raise ValueError(
            f"{len(families)} classes with {len(design.coef_names)} coefficient(s) each need at least "
            f"{needed} rows (each class must hold more rows than it has coefficients), but the data have "
            f"{design.n_obs}; use fewer classes or fewer covariates"
        )
    continuous = [f for f in classes if not f.discrete]
    if continuous:
        check_response_varies(design.y, design.response_name, continuous[0].name)


def _check_supports(
    families: tuple[Component, ...], y: FloatArray, response: str, *, masses_present: bool = True
) -> None:
    masses = [f.value for f in families if isinstance(f, PointMass)]
    if len(set(masses)) < len(masses):
        raise ValueError(
            f"two point-mass classes sit at the same value ({masses}): they cannot be told apart; "
            "keep one, or give them different values"
        )
    for value in masses if masses_present else ():
        if not np.any(y == value):
            raise ValueError(
                f"a point-mass class sits at {value:g}, but no value of {response!r} equals it; "
                "give bx.PointMass(value) a value that occurs in the data"
            )
    covered = np.isin(y, masses)
    for f in families:
        if isinstance(f, Family):
            f.check_support(y[~covered], response)
    if all(isinstance(f, PointMass) for f in families):
        raise ValueError("every class is a point mass; at least one class needs a family such as 'gaussian'")


def _class_formula(class_formula: str | None, response: str) -> ParsedFormula | None:
    """The one-sided class formula, parsed (with the response put on its left to please formulae)."""
    if class_formula is None:
        return None
    if not isinstance(class_formula, str) or not class_formula.strip().startswith("~"):
        raise ValueError(f"class_formula must be one-sided, such as '~ z', got {class_formula!r}")
    parsed = parse(f"{response} {class_formula.strip()}")
    if parsed.blocks:
        raise FormulaError(f"class_formula {class_formula!r} cannot have random effects")
    if response in set().union(*(t.var_names for t in parsed.description.common_terms)):
        raise ValueError(
            f"class_formula {class_formula!r} uses the response {response!r}: class probabilities are "
            "modelled before the response is seen; use covariates other than the response"
        )
    return parsed


def _ordering(
    order_by: str | None,
    families: tuple[Component, ...],
    coef_names: tuple[str, ...],
    class_names: tuple[str, ...],
) -> tuple[str | None, tuple[tuple[int, ...], ...]]:
    by_family: dict[str, list[int]] = {}
    for j, f in enumerate(families):
        if isinstance(f, Family):
            by_family.setdefault(f.name, []).append(j)
    if order_by == AUTO:
        groups = tuple(tuple(g) for g in by_family.values() if len(g) > 1)
        if not groups:
            return None, ()
        if coef_names:
            return coef_names[0], groups
        aux = [a for a in families[groups[0][0]].auxiliary]  # type: ignore[union-attr]
        if not aux:
            raise ValueError("the formula has no coefficient to order classes by; pass order_by")
        return aux[0], groups
    if order_by is None:
        return None, ()
    if order_by == "class":
        if len(by_family) != 1 or len(by_family[next(iter(by_family))]) != len(families):
            raise ValueError("order_by='class' needs every class to have the same family (no point masses)")
        if "Intercept" not in class_names:
            raise ValueError(
                "order_by='class' orders the class-logit intercepts; class_formula has no intercept"
            )
        return "class", (tuple(range(len(families))),)
    if order_by in coef_names:
        groups = tuple(tuple(g) for g in by_family.values() if len(g) > 1)
    else:
        aux_groups = [
            [j for j in g if order_by in families[j].auxiliary]  # type: ignore[union-attr]
            for g in by_family.values()
        ]
        if not any(aux_groups):
            valid = [
                *coef_names,
                *{a for f in families if isinstance(f, Family) for a in f.auxiliary},
                "class",
            ]
            raise ValueError(
                f"order_by={order_by!r} names no parameter of this model; choose one of {valid} or None"
            )
        groups = tuple(tuple(g) for g in aux_groups if len(g) > 1)
    if not groups:
        return None, ()
    return order_by, groups


def default_priors(
    families: tuple[Component, ...], design: MixtureDesign, *, ordered: str | None = None
) -> dict[str, Prior]:
    r"""Weakly informative priors scaled to the data, per class.

    Notes
    -----
    With :math:`c, s` the centre and scale of the response on the linear-predictor scale
    (mean and SD for identity links, of :math:`\log y` for the lognormal; :math:`\log\bar y`
    and 1 for log links; :math:`\operatorname{logit}\bar y` and 1 for logit links) and
    :math:`m_j, s_j` the mean and SD of covariate :math:`j`:

    * intercept :math:`\sim N(c, 2.5 s \sqrt{1 + \sum_j (m_j/s_j)^2})`, slope :math:`\sim N(0, 2.5 s / s_j)`;
    * ``sigma`` :math:`\sim` Exponential(:math:`1/s`); ``nu`` :math:`\sim` Gamma(2, 0.1);
      ``alpha`` (negative binomial, gamma) and ``phi`` (beta) :math:`\sim` Exponential(0.1);
    * class-logit intercept :math:`\sim N(0, 1.5)`, class-logit slope :math:`\sim N(0, 1.5 / s_z)`.
    """
    priors: dict[str, Prior] = {}
    X = design.X
    slopes = [i for i in range(X.shape[1]) if np.ptp(X[:, i]) > 0]
    ratio = sum((float(np.mean(X[:, i])) / float(np.std(X[:, i]))) ** 2 for i in slopes)
    for j, family in enumerate(families):
        if not isinstance(family, Family):
            continue
        centre, scale = _location(family, design)  # values a point mass covers are not this family's
        for i, name in enumerate(design.coef_names):
            if i in slopes:
                priors[f"{name}[{j + 1}]"] = Normal(0.0, 2.5 * scale / float(np.std(X[:, i])))
            else:
                priors[f"{name}[{j + 1}]"] = Normal(centre, 2.5 * scale * float(np.sqrt(1.0 + ratio)))
        for aux, prior in family.auxiliary.items():
            priors[f"{aux}[{j + 1}]"] = prior if prior is not None else Exponential(1.0 / scale)
    W = design.W
    for j in range(1, len(families)):
        for i, name in enumerate(design.class_coef_names):
            spread = float(np.std(W[:, i]))
            scale = _CLASS_LOGIT_SCALE / spread if spread > 0 else _CLASS_LOGIT_SCALE
            priors[f"class[{j + 1}]:{name}"] = Normal(0.0, scale)
    return priors


def _merge_priors(
    defaults: dict[str, Prior], user: Mapping[str, Prior] | None, classes: tuple[str, ...]
) -> tuple[dict[str, Prior], set[str]]:
    if user is None:
        return defaults, set()
    if not isinstance(user, Mapping):
        raise TypeError(f"priors must be a dict of parameter name -> prior, got {type(user).__name__}")
    merged, chosen = dict(defaults), set()
    if "class" in user:
        _class_dirichlet(user, merged, len(classes))
        chosen.add("class")
        user = {name: prior for name, prior in user.items() if name != "class"}
    # Class-less keys ("sigma") first, so that a class-specific key ("sigma[2]") wins over them.
    for name, prior in sorted(user.items(), key=lambda item: item[0] in defaults):
        targets = (
            [name] if name in defaults else [f"{name}[{c}]" for c in classes if f"{name}[{c}]" in defaults]
        )
        if not targets:
            bases = sorted({k.rsplit("[", 1)[0] for k in defaults if not k.startswith("class[")})
            raise ValueError(
                f"no parameter named {name!r} in this mixture; names are {list(defaults)} "
                f"(or a name without the class, applying to every class: {bases})"
            )
        if not isinstance(prior, Prior):
            raise TypeError(
                f"the prior for {name!r} must be a bayesmix prior such as bx.priors.Normal(0, 1), "
                f"got {prior!r}"
            )
        for target in targets:
            if isinstance(prior, Dirichlet):
                raise ValueError(
                    f"{prior.describe()} is the prior of the class probabilities as a whole, keyed 'class'; "
                    f"{target!r} needs a prior such as {defaults[target].describe()}"
                )
            if isinstance(prior, LKJ):
                raise ValueError(
                    f"{prior.describe()} is a prior for correlation matrices, which mixtures do not have; "
                    f"give {target!r} a prior such as {defaults[target].describe()}"
                )
            if defaults[target].positive and not prior.positive:
                raise ValueError(f"{target!r} is positive: give it a positive prior, not {prior.describe()}")
            if not defaults[target].positive and not isinstance(prior, Normal | StudentT | Cauchy):
                # a flat prior on a class's coefficient leaves the posterior improper: the likelihood
                # stays bounded away from zero as that coefficient runs off (the class empties)
                raise ValueError(
                    f"{target!r} is a real-valued coefficient of one class: use Normal, StudentT or Cauchy "
                    f"(a proper prior: with Flat() a class that empties leaves the posterior improper), "
                    f"not {prior.describe()}"
                )
            merged[target] = prior
            chosen.add(target)
    return merged, chosen


def _class_dirichlet(user: Mapping[str, Prior], merged: dict[str, Prior], k: int) -> None:
    """Put ``user["class"]`` (a Dirichlet on the class probabilities) in place of the logits' priors.

    The class probabilities are ``softmax(0, gamma)``; a Dirichlet on them is a prior on
    ``gamma`` with the Jacobian of that map (:func:`bayesmix.build.priors.dirichlet_logit_logp`),
    defined when the probabilities are the same for every row (no class covariates).
    """
    prior = user["class"]
    logits = [name for name in merged if name.startswith("class[")]
    if not isinstance(prior, Dirichlet):
        raise ValueError(
            f"'class' (the class probabilities as a whole) takes a Dirichlet prior such as "
            f"bx.priors.Dirichlet(1), not {prior!r}; the class logits' own priors are keyed {logits}"
        )
    if not logits:
        raise ValueError("a one-class model has no class probabilities to give a Dirichlet prior")
    if any(not name.endswith(":Intercept") for name in logits):
        raise ValueError(
            f"{prior.describe()} on the class probabilities needs them to be the same for every row, but "
            f"class_formula gives them covariates; give the logit coefficients priors instead: {logits}"
        )
    clash = sorted(name for name in user if name.startswith("class["))
    if clash:
        raise ValueError(
            f"priors for {clash} and a Dirichlet prior on 'class' both set the class probabilities' prior; "
            "give one or the other"
        )
    prior.concentrations(k)  # the number of concentrations must match the classes
    for name in logits:
        del merged[name]
    merged["class"] = prior


def _evaluate(
    formula: str, class_formula: str | None, trials: str | None, data: pd.DataFrame, missing: str
) -> tuple[MixtureDesign, pd.DataFrame, pd.Index]:
    """Designs of the two formulas on the rows kept; returns the design, those rows and the dropped labels."""
    parsed = parse(formula)
    if parsed.known_sd:
        raise FormulaError(
            f"mixture formulas cannot have known standard deviations (y | se(...)) in {formula!r}; "
            "a meta-analysis with known SDs is bx.hierarchical or bx.mixed"
        )
    if parsed.blocks:
        raise FormulaError(
            f"mixture formulas take fixed effects only; {formula!r} has random-effect terms. "
            "Use bx.hierarchical for random effects"
        )
    class_parsed = _class_formula(class_formula, parsed.response)
    extra: tuple[str, ...] = ()
    if class_parsed is not None:
        extra = tuple(sorted(class_parsed.variables))
    if trials is not None and isinstance(data, pd.DataFrame):
        if not isinstance(trials, str) or trials not in data.columns:
            present = list(map(str, data.columns))
            raise ValueError(f"trials column {trials!r} is not in the data; columns present: {present}")
        extra += (trials,)
    rows, dropped = select_rows(parsed, data, missing, extra=extra)
    main = evaluate(parsed, rows)
    if not np.isfinite(main.X).all():
        raise ValueError(f"covariates in {formula!r} have non-finite values after evaluation (e.g. log(0))")
    W, class_names = np.ones((len(rows), 1)), cast(tuple[str, ...], ("Intercept",))
    if class_parsed is not None:
        classes = evaluate(class_parsed, rows)
        if not np.isfinite(classes.X).all():
            raise ValueError(f"class covariates in {class_formula!r} have non-finite values after evaluation")
        W, class_names = classes.X, classes.fixed_names
    design = MixtureDesign(
        response_name=main.response_name,
        y=main.y,
        X=main.X,
        coef_names=main.fixed_names,
        W=W,
        class_coef_names=class_names,
        index=rows.index,
    )
    return design, rows, dropped


def design_for(spec: MixtureSpec, data: pd.DataFrame) -> MixtureDesign:
    """The design of new rows under a fitted model's formulas (response and covariates needed)."""
    design, rows, _ = _evaluate(spec.formula, spec.class_formula, spec.trials, data, "error")
    if design.coef_names != spec.coef_names or design.class_coef_names != spec.class_coef_names:
        raise ValueError(
            f"the new data give the columns {list(design.coef_names)} / {list(design.class_coef_names)}, "
            f"but the model was fitted with {list(spec.coef_names)} / {list(spec.class_coef_names)}; "
            "categorical covariates need the same levels as in the fitted data"
        )
    _check_supports(spec.families, design.y, design.response_name, masses_present=False)
    return replace(design, trials=_trials(spec.trials, spec.families, rows, design.y))


def specify_mixture(
    k: int,
    formula: str,
    data: pd.DataFrame,
    *,
    family: str | PointMass | Sequence[str | PointMass],
    class_formula: str | None,
    priors: Mapping[str, Prior] | None,
    order_by: str | None,
    missing: str,
    trials: str | None = None,
) -> tuple[MixtureSpec, MixtureDesign]:
    """Check everything the user gave and evaluate the designs; nothing is compiled here."""
    if missing not in ("error", "drop"):
        raise ValueError(f"missing must be 'error' or 'drop', got {missing!r}")
    design, rows, dropped = _evaluate(formula, class_formula, trials, data, missing)
    k = _check_k(k, design)
    families = _families(k, family)
    _check_supports(families, design.y, design.response_name)
    _check_enough_rows(families, design)
    design = replace(design, trials=_trials(trials, families, rows, design.y))
    order, groups = _ordering(order_by, families, design.coef_names, design.class_coef_names)
    labels = tuple(str(j + 1) for j in range(k))
    merged, chosen = _merge_priors(default_priors(families, design), priors, labels)
    spec = MixtureSpec(
        k=k,
        formula=formula,
        class_formula=class_formula,
        families=families,
        priors=MappingProxyType(merged),
        user_priors=frozenset(chosen),
        order_by=order,
        order_groups=groups,
        missing=missing,
        dropped=tuple(dropped.tolist()),
        trials=trials,
        coef_names=design.coef_names,
        class_coef_names=design.class_coef_names,
        response_scale=tuple(_location(f, design) for f in families),
    )
    return spec, design


def _location(family: Component, design: MixtureDesign) -> tuple[float, float]:
    """Centre and scale of the rows a class can explain (those a point mass covers are not a family's)."""
    if isinstance(family, PointMass):
        return family.value, 0.0
    inside = ~family.outside(design.y)
    return family.location(design.y[inside], None if design.trials is None else design.trials[inside])


def _trials(
    trials: str | None, families: tuple[Component, ...], rows: pd.DataFrame, y: FloatArray
) -> FloatArray | None:
    binomial = any(isinstance(f, Family) and f.name == "binomial" for f in families)
    if trials is None:
        if binomial:
            raise ValueError("the binomial family needs trials='column' naming the number of trials per row")
        return None
    if not binomial:
        raise ValueError("trials= is only used by the binomial family")
    if trials not in rows.columns:
        raise ValueError(
            f"trials column {trials!r} is not in the data; columns present: {list(map(str, rows.columns))}"
        )
    n = rows[trials].to_numpy(dtype=float)
    bad = ~np.isfinite(n) | (n != np.round(n)) | (n < y) | (n < 1)
    if bad.any():
        raise ValueError(
            f"trials column {trials!r} must hold integers >= 1 and >= the response; {int(bad.sum())} rows "
            f"are not (first positions {np.flatnonzero(bad)[:5].tolist()})"
        )
    return n


def class_shares(gamma: FloatArray, W: FloatArray) -> FloatArray:
    """Per-row class probabilities ``softmax(0, W gamma')``, shape ``(n, k)``."""
    logits = np.concatenate([np.zeros((W.shape[0], 1)), W @ gamma.T], axis=1)
    return special.softmax(logits, axis=1)


def component_means(
    spec: MixtureSpec, design: MixtureDesign, beta: FloatArray, aux: dict[str, FloatArray]
) -> FloatArray:
    """E[y | class], averaged over the rows of ``design``; a point mass's mean is its value."""
    out = np.empty(spec.k)
    for j, family in enumerate(spec.families):
        if not isinstance(family, Family):
            out[j] = family.value
            continue
        eta = design.X @ beta[spec.components.index(j)] if design.coef_names else np.zeros(design.n_obs)
        params = {a: aux[a][spec.aux_classes(a).index(j)] for a in family.auxiliary}
        mean = family.mean(eta, params)
        out[j] = float(np.mean(mean * (design.trials if design.trials is not None else 1.0)))
    return out


def resolution(values: FloatArray) -> float:
    """The smallest gap between distinct values: the recording resolution of tied data (1 if all equal)."""
    gaps = np.diff(np.unique(values))
    return float(gaps.min()) if gaps.size else 1.0


def grid_design(design: MixtureDesign, values: FloatArray) -> tuple[MixtureDesign, FloatArray]:
    """A design that evaluates the density at ``values`` for every distinct covariate row of ``design``.

    Rows are ordered value-major: row ``g * r + i`` holds ``values[g]`` with covariate pattern
    ``i``; the returned weights are the patterns' shares of the data, so averaging over them
    gives the density averaged over the data's covariates.
    """
    if values.size == 0 or not np.isfinite(values).all():
        raise ValueError("values must be a non-empty array of finite numbers")
    if design.trials is not None:
        raise ValueError("the density is not defined for binomial classes: it depends on the trials")
    patterns, counts = np.unique(np.hstack([design.X, design.W]), axis=0, return_counts=True)
    p = design.X.shape[1]
    grid = replace(
        design,
        y=np.repeat(values, len(counts)),
        X=np.tile(patterns[:, :p], (values.size, 1)),
        W=np.tile(patterns[:, p:], (values.size, 1)),
        index=pd.RangeIndex(values.size * len(counts)),
    )
    return grid, counts / counts.sum()


def order_key(
    spec: MixtureSpec,
    design: MixtureDesign,
    group: tuple[int, ...],
    beta: FloatArray,
    aux: Mapping[str, FloatArray],
    gamma: FloatArray,
) -> FloatArray:
    """Values of the ``order_by`` parameter for the classes of one ordered group (0-based classes)."""
    if spec.order_by == "class":
        logits = np.concatenate([[0.0], gamma[:, design.class_coef_names.index("Intercept")]])
        return logits[list(group)]
    if spec.order_by in design.coef_names:
        return beta[[spec.components.index(j) for j in group], design.coef_names.index(spec.order_by)]
    name = str(spec.order_by)
    return aux[name][[spec.aux_classes(name).index(j) for j in group]]
