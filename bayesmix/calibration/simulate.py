"""Data sets simulated from a model's prior predictive distribution, and how to refit the model on them.

A calibration run keeps the model's design (covariates, groups, trials, known covariances)
and replaces only the response. :class:`Recipe` holds the constructor call that rebuilt
the model, with every prior written out, so that each simulated data set is fitted with
exactly the prior its true values were drawn from (default priors are scaled to the data,
and the simulated response would otherwise move them). :class:`Simulator` draws the true
parameter values and a response, one simulation at a time from its own seed, so that
simulation ``i`` is the same whatever the number of simulations.

Hierarchical models are simulated from the model with its random effects sampled
(``marginalize=False``) and without summed binomial rows: the same prior and likelihood as
the marginalized or aggregated graph, with the random effects and every row's response as
random variables. Mixtures are simulated class label first: the class of each row from the
class probabilities, then the response from that class's family. Their ordering constraint
restricts the prior to the ordered region; the draws are made there by rejection (redrawn
until ordered), which is exact whatever the priors.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
import pymc as pm
import pytensor.tensor as pt
import xarray as xr
from pymc.pytensorf import compile as compile_graph
from pymc.pytensorf import reseed_rngs
from pytensor.tensor.random.type import RandomGeneratorType

from ..api import HierarchicalModel, MixtureModel, fmm, hierarchical, mixed
from ..build.families import family_dist
from ..build.model import build_model
from ..build.priors import prior_dist
from ..results.parameters import parameter_draws
from ..spec.families import Family
from ..spec.formula import parse
from ..spec.mixture import order_key, parameter_names
from ..spec.priors import Flat, Prior

__all__ = ["Model", "Recipe", "Simulator", "random_effect_name", "recipe_of", "simulator_of"]

Model = HierarchicalModel | MixtureModel
FloatArray = npt.NDArray[np.float64]
_CONSTRUCTORS: dict[str, Callable[..., Any]] = {"hierarchical": hierarchical, "mixed": mixed, "fmm": fmm}
#: draws of a mixture's parameters tried per simulation before the ordered region is declared unreachable
MAX_REJECTIONS = 10_000


def random_effect_name(factor: str, term: str, level: str) -> str:
    """Name of one random effect in a calibration table: ``re(Intercept|Subject)[308]``."""
    return f"re({term}|{factor})[{level}]"


@dataclass(frozen=True, slots=True)
class Recipe:
    """The constructor call that rebuilds a model on a data frame with a new response.

    Attributes
    ----------
    constructor
        ``"hierarchical"``, ``"mixed"`` or ``"fmm"``.
    formula
        The model formula.
    arguments
        Every other argument of the constructor: all priors (defaults written out), the
        parametrization per grouping factor, known covariances, marginalization, ordering.
    data
        The rows the model used (rows dropped under ``missing="drop"`` left out).
    response
        The data column that receives the simulated response (the successes of a binomial).
    failures
        For lme4's ``cbind(successes, failures)``: the failures column, rewritten as trials
        minus the simulated successes. None otherwise.
    trials
        The binomial trials per row (needed for ``failures``), else None.
    """

    constructor: str
    formula: str
    arguments: Mapping[str, Any]
    data: pd.DataFrame
    response: str
    failures: str | None = None
    trials: FloatArray | None = None

    def data_with(self, y: npt.ArrayLike) -> pd.DataFrame:
        """The data with the response replaced by ``y`` (and cbind's failures by trials minus ``y``)."""
        data = self.data.copy()
        values = np.asarray(y)
        data[self.response] = values
        if self.failures is not None and self.trials is not None:
            data[self.failures] = self.trials - values
        return data

    def build(self, y: npt.ArrayLike) -> Model:
        """The model, rebuilt by its constructor on the data with response ``y``."""
        arguments = dict(self.arguments)
        data = self.data_with(y)
        if self.constructor == "fmm":
            k = arguments.pop("k")
            return fmm(k, self.formula, data, **arguments)
        return _CONSTRUCTORS[self.constructor](self.formula, data, **arguments)


def _used_rows(model: Model) -> pd.DataFrame:
    if not isinstance(model.data, pd.DataFrame):
        raise ValueError("the model holds no data frame; build it with bx.hierarchical, bx.mixed or bx.fmm")
    data = model.data.drop(index=list(model.spec.dropped)) if model.spec.dropped else model.data
    return data.copy()


def _response_columns(formula: str) -> tuple[str, str | None]:
    """The column the response is written to, and cbind's failures column (or None)."""
    parsed = parse(formula)
    term = parsed.description.response.term
    (component,) = term.components
    if type(component).__name__ == "Variable":
        return str(component.name), None
    name = str(getattr(component, "name", ""))
    if parsed.binomial:
        if name.startswith("cbind("):
            (failures,) = set(term.var_names) - {parsed.response}
            return parsed.response, str(failures)
        return parsed.response, None  # successes | trials(n): the trials stay as they are
    raise ValueError(
        f"the response of {formula!r} is a transformation ({name}); simulation-based calibration writes "
        "simulated values into the response column, so compute the transformed response as a column "
        "of its own and use that in the formula"
    )


def recipe_of(model: Model) -> Recipe:
    """The constructor call that rebuilds ``model``, with every prior and choice written out."""
    data = _used_rows(model)
    response, failures = _response_columns(model.spec.formula)
    if isinstance(model, MixtureModel):
        spec = model.spec
        families = [f.name if isinstance(f, Family) else f for f in spec.families]
        arguments: dict[str, Any] = {
            "k": spec.k,
            "family": families,
            "class_formula": spec.class_formula,
            "priors": dict(spec.priors),
            "order_by": spec.order_by,
            "trials": spec.trials,
        }
        return Recipe("fmm", spec.formula, arguments, data, response)
    design = model.design
    covariances = {
        f.name: pd.DataFrame(f.covariance, index=list(f.levels), columns=list(f.levels))
        for f in design.factors
        if f.covariance is not None
    }
    arguments = {
        "family": model.spec.family,
        "link": model.spec.link,
        "priors": dict(model.spec.priors),
        "centered": {c.factor: c.centered for c in model.spec.parametrization},
        "covariances": covariances or None,
        "marginalize": model.spec.marginalized,
    }
    trials = None if design.trials is None else np.asarray(design.trials, dtype=float)
    return Recipe(model.spec.kind, model.spec.formula, arguments, data, response, failures, trials)


def _check_proper(priors: Mapping[str, Prior]) -> None:
    flat = [name for name, prior in priors.items() if isinstance(prior, Flat)]
    if flat:
        raise ValueError(
            f"simulation-based calibration draws the true values from the prior, and {flat} have flat "
            "(improper) priors, from which nothing can be drawn. Give them proper priors (priors={...}); "
            "bx.mixed gives every fixed effect a flat prior, bx.hierarchical weakly informative ones"
        )


class Simulator:
    """Draws true parameter values and a simulated response, one simulation per seed.

    Parameters
    ----------
    outputs
        The random graph: parameter tensors first, the response last.
    read
        Turns the computed outputs into ``(truths by public name, response)``, or None when
        the draw falls outside the prior's support (a mixture's ordering) and is redrawn.
    """

    def __init__(self, outputs: list[Any], read: Callable[[list[np.ndarray]], Any]) -> None:
        self._fn = compile_graph([], outputs, random_seed=0)
        self._rngs = [s for s in self._fn.get_shared() if isinstance(s.type, RandomGeneratorType)]
        self._read = read

    def draw(self, seed: int) -> tuple[dict[str, float], np.ndarray]:
        """The true values (public names) and the response of the simulation seeded by ``seed``."""
        reseed_rngs(self._rngs, seed)
        for _ in range(MAX_REJECTIONS):
            out = self._read([np.asarray(v) for v in self._fn()])
            if out is not None:
                return out
        raise RuntimeError(
            f"{MAX_REJECTIONS} draws from the prior all fell outside the ordered region of the classes; "
            "the priors of the ordered parameter barely overlap in the required order"
        )


def simulator_of(model: Model, random_effects: bool = False) -> Simulator:
    """The :class:`Simulator` of a hierarchical or mixture model.

    ``random_effects`` adds every random effect (``re(term|factor)[level]``) to the true values.
    """
    _check_proper(model.spec.priors)
    if isinstance(model, MixtureModel):
        return _mixture_simulator(model)
    return _hierarchical_simulator(model, random_effects)


def _hierarchical_simulator(model: HierarchicalModel, random_effects: bool) -> Simulator:
    spec, design = model.spec, model.design
    full = build_model(replace(spec, marginalized=False), design)  # RVs for everything, every row
    full = _without_prior_potentials(full, model)
    names = [n for n in ("beta",) if design.fixed_names]
    for factor in design.factors:
        names += [f"sd_{factor.name}", f"re_{factor.name}"]
        if factor.correlated:
            names.append(f"corr_{factor.name}")
    names += list(design.auxiliary)
    dims = full.named_vars_to_dims
    coords = {k: list(v) for k, v in full.coords.items()}

    def read(values: list[np.ndarray]) -> tuple[dict[str, float], np.ndarray]:
        *params, y = values
        ds = xr.Dataset(
            {
                name: (("chain", "draw", *dims.get(name, ())), value[None, None])
                for name, value in zip(names, params, strict=True)
            },
            coords={d: coords[d] for name in names for d in dims.get(name, ())},
        )
        truths = {str(k): float(v.values.squeeze()) for k, v in parameter_draws(ds, design).items()}
        if random_effects:
            for factor in design.factors:
                re = np.asarray(ds[f"re_{factor.name}"].values[0, 0])
                for j, level in enumerate(factor.levels):
                    for t, term in enumerate(factor.terms):
                        truths[random_effect_name(factor.name, term, level)] = float(re[j, t])
        return truths, y

    return Simulator([full[n] for n in names] + [full[design.response_name]], read)


def _without_prior_potentials(full: pm.Model, model: HierarchicalModel) -> pm.Model:
    """Replace each vector whose elements have priors of different families by draws from those priors.

    Such a vector is a flat variable plus a ``Potential`` (:func:`bayesmix.build.priors.vector_variable`),
    which forward sampling cannot draw from; its elements are drawn from their own priors instead.
    """
    spec, design = model.spec, model.design
    vectors = {"beta": [spec.priors[n] for n in design.fixed_names]}
    for factor in design.factors:
        vectors[f"sd_{factor.name}"] = [spec.priors[factor.sd_name(t)] for t in factor.terms]
    swaps = {}
    for potential in full.potentials:
        name = str(potential.name).removesuffix("_prior")
        if name in vectors:
            swaps[name] = pt.stack([_scalar(p) for p in vectors[name]])
    return pm.do(full, swaps) if swaps else full


def _scalar(prior: Prior) -> Any:
    cls, kwargs = prior_dist(prior)
    return cls.dist(**kwargs)


def _mixture_simulator(model: MixtureModel) -> Simulator:
    spec, design = model.spec, model.design
    names = parameter_names(spec, design)
    scalars = {name: _scalar(spec.priors[name]) for name in names}
    labels = spec.classes
    beta = (
        pt.stack(
            [pt.stack([scalars[f"{c}[{labels[j]}]"] for c in design.coef_names]) for j in spec.components]
        )
        if design.coef_names
        else pt.zeros((len(spec.components), 0))
    )
    aux = {a: pt.stack([scalars[f"{a}[{labels[j]}]"] for j in spec.aux_classes(a)]) for a in spec.aux_names}
    n = design.n_obs
    if spec.k > 1:
        gamma = pt.stack(
            [
                pt.stack([scalars[f"class[{labels[j]}]:{c}"] for c in design.class_coef_names])
                for j in range(1, spec.k)
            ]
        )
        logits = pt.concatenate([pt.zeros((n, 1)), pt.dot(design.W, gamma.T)], axis=1)
        label = pm.Categorical.dist(p=pt.special.softmax(logits, axis=1))
    else:
        gamma = pt.zeros((0, len(design.class_coef_names)))
        label = pt.zeros(n, dtype="int64")
    columns = []
    for j, family in enumerate(spec.families):
        if not isinstance(family, Family):  # a point mass
            columns.append(pt.fill(pt.zeros(n), float(family.value)))
            continue
        eta = pt.dot(design.X, beta[spec.components.index(j)]) if design.coef_names else pt.zeros(n)
        params = {a: aux[a][spec.aux_classes(a).index(j)] for a in family.auxiliary}
        columns.append(pt.cast(family_dist(family, eta, params, design.trials), "float64"))
    y = pt.stack(columns, axis=1)[pt.arange(n), label]

    def read(values: list[np.ndarray]) -> tuple[dict[str, float], np.ndarray] | None:
        *params, y_value = values
        truths = {name: float(v) for name, v in zip(names, params, strict=True)}
        if spec.order_groups:
            b, a, g = _mixture_arrays(spec, design, truths)
            for group in spec.order_groups:
                if np.any(np.diff(order_key(spec, design, group, b, a, g)) <= 0):
                    return None
        return truths, y_value

    return Simulator([scalars[n] for n in names] + [y], read)


def _mixture_arrays(
    spec: Any, design: Any, truths: Mapping[str, float]
) -> tuple[FloatArray, dict[str, FloatArray], FloatArray]:
    """The graph's arrays (``beta``, auxiliaries, ``gamma``) from values under public names."""
    labels = spec.classes
    beta = np.array(
        [[truths[f"{c}[{labels[j]}]"] for c in design.coef_names] for j in spec.components], dtype=float
    ).reshape(len(spec.components), len(design.coef_names))
    aux = {a: np.array([truths[f"{a}[{labels[j]}]"] for j in spec.aux_classes(a)]) for a in spec.aux_names}
    gamma = np.array(
        [[truths[f"class[{labels[j]}]:{c}"] for c in design.class_coef_names] for j in range(1, spec.k)],
        dtype=float,
    ).reshape(spec.k - 1, len(design.class_coef_names))
    return beta, aux, gamma
