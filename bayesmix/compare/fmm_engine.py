"""Maximum likelihood for finite mixtures: EM-refined starts, then direct maximization.

The log-likelihood is the one the Bayesian model uses
(:func:`bayesmix.build.mixtures.joint_logp`), compiled with PyTensor together with
its gradient and Hessian on an unconstrained scale: coefficients as they are,
auxiliary parameters (``sigma``, ``alpha``, ``nu``, ``phi``) on the log scale,
class logits as they are.

Search (Notes of :func:`maximize`): many starts, each from responsibilities drawn
around randomly chosen observations (the ``random_from_data`` idea), refined by EM
and then by L-BFGS-B and Newton steps on the marginal log-likelihood itself.
Every distinct maximum is kept; degenerate ones (a class collapsing onto tied
values, or holding fewer observations than it has coefficients) are refused.
"""

from __future__ import annotations

import threading
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pytensor
import pytensor.tensor as pt
from scipy import optimize

from ..build.mixtures import MixtureData, joint_logp
from ..compiled import GraphCache
from ..spec.families import LINKS, Family
from ..spec.mixture import MixtureDesign, MixtureSpec, order_key, resolution
from ..spec.priors import Uniform

__all__ = ["Layout", "Maximum", "Objective", "maximize", "units"]

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class Layout:
    """Where each parameter sits in the flat unconstrained vector ``theta``."""

    n_components: int
    n_coefs: int
    aux_sizes: tuple[tuple[str, int], ...]
    k: int
    n_class_coefs: int

    @classmethod
    def of(cls, spec: MixtureSpec, design: MixtureDesign) -> Layout:
        """The layout of a model."""
        return cls(
            n_components=len(spec.components),
            n_coefs=len(design.coef_names),
            aux_sizes=tuple((a, len(spec.aux_classes(a))) for a in spec.aux_names),
            k=spec.k,
            n_class_coefs=len(design.class_coef_names),
        )

    @property
    def size(self) -> int:
        """Length of ``theta``."""
        return (
            self.n_components * self.n_coefs
            + sum(n for _, n in self.aux_sizes)
            + (self.k - 1) * self.n_class_coefs
        )

    def split(self, theta):  # type: ignore[no-untyped-def]
        """``theta`` -> (beta, {aux: log values}, gamma); works on numpy arrays and tensors alike."""
        at = self.n_components * self.n_coefs
        beta = theta[:at].reshape((self.n_components, self.n_coefs))
        aux = {}
        for name, n in self.aux_sizes:
            aux[name] = theta[at : at + n]
            at += n
        gamma = theta[at:].reshape((self.k - 1, self.n_class_coefs))
        return beta, aux, gamma

    def natural(self, theta: FloatArray) -> tuple[FloatArray, dict[str, FloatArray], FloatArray]:
        """Parameters on their natural scale (auxiliaries exponentiated)."""
        beta, log_aux, gamma = self.split(np.asarray(theta, dtype=float))
        return beta, {a: np.exp(v) for a, v in log_aux.items()}, gamma

    def pack(self, beta: FloatArray, aux: dict[str, FloatArray], gamma: FloatArray) -> FloatArray:
        """Natural-scale parameters -> ``theta``."""
        parts = [np.ravel(beta), *(np.log(aux[a]) for a, _ in self.aux_sizes), np.ravel(gamma)]
        return np.concatenate(parts).astype(float)

    def aux_mask(self) -> npt.NDArray[np.bool_]:
        """True at the log-auxiliary entries of ``theta``."""
        mask = np.zeros(self.size, bool)
        at = self.n_components * self.n_coefs
        mask[at : at + sum(n for _, n in self.aux_sizes)] = True
        return mask


class _Shared:
    """A compiled function used by several objectives: one call at a time, outputs copied.

    A PyTensor function keeps its outputs in storage that the next call overwrites, and is
    not safe to call from two threads at once.
    """

    def __init__(self, function: Any) -> None:
        self._function = function
        self._lock = threading.Lock()

    def __call__(self, *args: Any) -> list[FloatArray]:
        with self._lock:
            return [np.array(out, dtype=float) for out in self._function(*args)]


#: compiled objectives kept per process (least recently used dropped first)
_OBJECTIVES: GraphCache[_Shared] = GraphCache(16)


def _compiled(outputs: list[Any], inputs: list[Any]) -> _Shared:
    """``pytensor.function(inputs, outputs)``, or the one compiled earlier for an equal graph.

    The response is an input (:class:`bayesmix.build.mixtures.MixtureData`), so every response
    of one design (bootstrap and calibration data sets, refits) shares one compiled function:
    for a two-class normal mixture of 60 rows, compiling took 3.5-4.5 s per data set before,
    and the whole search from 10 starts takes 0.3 s once compiled.
    """
    key = tuple(str(v.type) for v in inputs)
    function = _OBJECTIVES.get(key, outputs, inputs)
    if function is None:
        with warnings.catch_warnings():
            warnings.filterwarnings(
                "ignore", message="PyTensor could not link to a BLAS", category=UserWarning
            )
            function = _Shared(pytensor.function(inputs, outputs))
        _OBJECTIVES.put(key, outputs, inputs, function)
    return function


class Objective:
    """Compiled log-likelihood, EM objective and responsibilities of one model, with their derivatives.

    One PyTensor function computes everything from ``(theta, resp)``: compiling a single
    graph takes a quarter of the time of four separate ones (and PyTensor's symbolic
    Hessian is the slowest of them to compile), so the Hessian is taken by central
    differences of the exact gradient instead (:meth:`hessian`).
    """

    def __init__(self, spec: MixtureSpec, design: MixtureDesign) -> None:
        self.layout = Layout.of(spec, design)
        self.unit = units(spec, design, self.layout)
        data = MixtureData.of(spec, design)
        self._data = data.arrays()
        symbolic, inputs = data.symbolic()
        theta = pt.vector("theta", shape=(self.layout.size,))
        resp = pt.matrix("resp", shape=(design.n_obs, spec.k))
        beta, log_aux, gamma = self.layout.split(theta)
        joint = joint_logp(spec, symbolic, beta, {a: pt.exp(v) for a, v in log_aux.items()}, gamma)
        loglik = pt.sum(pt.logsumexp(joint, axis=1))
        # Expected complete-data log-likelihood; classes with zero responsibility add nothing
        # (their -inf point-mass entries would otherwise give 0 * -inf).
        q = pt.sum(pt.switch(pt.gt(resp, 0), resp * joint, 0.0))
        weights = pt.exp(joint - pt.logsumexp(joint, axis=1, keepdims=True))
        self._no_resp = np.zeros((design.n_obs, spec.k))
        outputs = [loglik, pt.grad(loglik, theta), q, pt.grad(q, theta), weights]
        self._function = _compiled(outputs, [theta, resp, *inputs])

    def loglik(self, theta: FloatArray) -> tuple[float, FloatArray]:
        """Log-likelihood and its gradient."""
        value, grad, *_ = self._function(theta, self._no_resp, *self._data)
        return float(value), np.asarray(grad)

    def q(self, theta: FloatArray, resp: FloatArray) -> tuple[float, FloatArray]:
        """EM objective and its gradient."""
        _, _, value, grad, _ = self._function(theta, resp, *self._data)
        return float(value), np.asarray(grad)

    def responsibilities(self, theta: FloatArray) -> FloatArray:
        """Posterior class probabilities per observation (n x k)."""
        return np.asarray(self._function(theta, self._no_resp, *self._data)[4])

    def hessian(self, theta: FloatArray) -> FloatArray:
        """Hessian of the log-likelihood: central differences of the exact gradient, symmetrized.

        Step ``h_i = 1e-5 max(1, |theta_i|)`` for log-auxiliaries and class logits, ``1e-5 u_i``
        for coefficients, with ``u_i`` their unit (:func:`units`): the truncation error is
        O(h^2) ~ 1e-10 relative and the rounding error O(eps / h) ~ 1e-11, far below the 3-4
        digits of a standard error, whatever the scale of the response.
        """
        theta = np.asarray(theta, dtype=float)
        coefficient = np.arange(theta.size) < self.layout.n_components * self.layout.n_coefs
        steps = 1e-5 * np.where(coefficient, self.unit, np.maximum(1.0, np.abs(theta)))
        columns = []
        for i, h in enumerate(steps):
            shift = np.zeros_like(theta)
            shift[i] = h
            columns.append((self.loglik(theta + shift)[1] - self.loglik(theta - shift)[1]) / (2 * h))
        hessian = np.column_stack(columns)
        return (hessian + hessian.T) / 2


@dataclass(frozen=True, slots=True)
class Maximum:
    """One local maximum: ``theta`` (canonical labels), log-likelihood, and why it is refused (if it is)."""

    theta: FloatArray
    loglik: float
    converged: bool
    degenerate: str | None


def _response_scale(family: Family, y: FloatArray) -> FloatArray:
    """The response on the scale of the linear predictor's location: ``log y`` for the lognormal."""
    return np.log(y) if family.log_response else y


def _bounds(
    spec: MixtureSpec, design: MixtureDesign, layout: Layout
) -> list[tuple[float | None, float | None]]:
    """Keep degenerate directions finite: scales at least 1/1000 of the data's resolution, logits in +-30.

    An auxiliary parameter with a ``Uniform(lower, upper)`` prior is searched within those
    bounds: the Bayesian model has no mass outside them, so its chains must start inside,
    and a floor on ``sigma`` (tied data) keeps the maxima at the floor from collapsing.
    """
    bounds: list[tuple[float | None, float | None]] = [(None, None)] * (layout.n_components * layout.n_coefs)
    for name, _ in layout.aux_sizes:
        for j in spec.aux_classes(name):
            family = spec.families[j]
            assert isinstance(family, Family)
            low: float | None
            high: float | None
            if name == "sigma":
                values = _response_scale(family, design.y[~family.outside(design.y)])
                low, high = float(np.log(resolution(values) / 1000)), None
            else:
                low, high = -20.0, 20.0
            prior = spec.priors[f"{name}[{spec.classes[j]}]"]
            if isinstance(prior, Uniform) and prior.lower > 0:
                # strictly inside (1e-6 relative): a chain started on the bound would start at -inf
                low = max(low, float(np.log(prior.lower)) + 1e-6)
                top = float(np.log(prior.upper)) - 1e-6
                high = top if high is None else min(high, top)
            bounds.append((low, high))
    bounds += [(-30.0, 30.0)] * ((layout.k - 1) * layout.n_class_coefs)
    return bounds


def _start(spec: MixtureSpec, design: MixtureDesign, rng: np.random.Generator) -> FloatArray:
    """Responsibilities around k randomly chosen observations (point masses take their own values)."""
    y, k = design.y, spec.k
    resp = np.zeros((design.n_obs, k))
    comps = list(spec.components)
    spread = np.std(y) / max(len(comps), 1) + 1e-12
    centres = rng.choice(y, size=len(comps), replace=len(np.unique(y)) < len(comps))
    resp[:, comps] = np.exp(-0.5 * ((y[:, None] - centres[None, :]) / spread) ** 2) + 1e-3
    for j, family in enumerate(spec.families):
        if not isinstance(family, Family):
            resp[:, j] = np.where(y == family.value, 1.0, 0.0)
    return resp / resp.sum(axis=1, keepdims=True)


def _moments(spec: MixtureSpec, design: MixtureDesign, layout: Layout, resp: FloatArray) -> FloatArray:
    """A parameter vector matching weighted moments of the responsibilities (the first M-step's start)."""
    beta = np.zeros((layout.n_components, layout.n_coefs))
    aux: dict[str, FloatArray] = {a: np.ones(n) for a, n in layout.aux_sizes}
    intercept = design.coef_names.index("Intercept") if "Intercept" in design.coef_names else None
    for row, j in enumerate(spec.components):
        family = spec.families[j]
        assert isinstance(family, Family)
        inside = ~family.outside(design.y)  # values a point mass covers are not this family's
        values = _response_scale(family, design.y[inside])
        w = resp[inside, j] + 1e-12
        if design.trials is not None:
            values = values / design.trials[inside]  # the success share
        mean = float(np.average(values, weights=w))
        if intercept is not None:
            beta[row, intercept] = (
                mean if family.link == "identity" or family.log_response else LINKS[family.link](mean)
            )
        if "sigma" in family.auxiliary:
            sd = np.sqrt(np.average((values - mean) ** 2, weights=w))
            aux["sigma"][spec.aux_classes("sigma").index(j)] = max(sd, resolution(values))
    share = np.maximum(resp.mean(axis=0), 1e-6)
    gamma = np.zeros((layout.k - 1, layout.n_class_coefs))
    if "Intercept" in design.class_coef_names:
        gamma[:, design.class_coef_names.index("Intercept")] = np.log(share[1:] / share[0])
    return layout.pack(beta, aux, gamma)


def units(spec: MixtureSpec, design: MixtureDesign, layout: Layout) -> FloatArray:
    """The unit of each entry of ``theta`` in which the search works (its internal standardization).

    A coefficient's unit is ``s / s_j`` (``s`` for a constant column such as the intercept),
    with ``s`` the SD of the class's response on the linear-predictor scale
    (:meth:`Family.location`, as for the default priors) and ``s_j`` the SD of covariate
    ``j``; a class-logit coefficient's is ``1 / s_z`` (1 for a constant column); a
    log-auxiliary's is 1. The optimizer and the tolerances see ``theta / unit``, so the
    search does the same steps, and finds the same maxima, whether the response is
    recorded in millimetres or in metres (``theta = unit * u`` is exact).
    """
    beta = np.ones((layout.n_components, layout.n_coefs))
    spreads = np.std(design.X, axis=0) if layout.n_coefs else np.zeros(0)
    for row, j in enumerate(spec.components):
        family = spec.families[j]
        assert isinstance(family, Family)
        inside = ~family.outside(design.y)
        trials = None if design.trials is None else design.trials[inside]
        _, s = family.location(design.y[inside], trials) if inside.any() else (0.0, 1.0)
        s = s if np.isfinite(s) and s > 0 else 1.0
        beta[row] = np.where(spreads > 0, s / np.where(spreads > 0, spreads, 1.0), s)
    z = np.std(design.W, axis=0)
    gamma = np.tile(np.where(z > 0, 1.0 / np.where(z > 0, z, 1.0), 1.0), layout.k - 1)
    return np.concatenate([beta.ravel(), np.ones(sum(n for _, n in layout.aux_sizes)), gamma])


def _lbfgs(fun, theta: FloatArray, bounds, maxiter: int, unit: FloatArray) -> FloatArray:  # type: ignore[no-untyped-def]
    """Maximize ``fun`` from ``theta`` over ``u = theta / unit`` (see :func:`units`)."""

    def negative(u: FloatArray) -> tuple[float, FloatArray]:
        value, grad = fun(u * unit)
        return -value, -grad * unit

    scaled = [
        (None if lo is None else lo / d, None if hi is None else hi / d)
        for (lo, hi), d in zip(bounds, unit, strict=True)
    ]
    res = optimize.minimize(
        negative,
        theta / unit,
        jac=True,
        method="L-BFGS-B",
        bounds=scaled,
        options={"maxiter": maxiter, "ftol": 1e-14, "gtol": 1e-9},
    )
    return np.asarray(res.x) * unit


def _newton(objective: Objective, theta: FloatArray, bounds, steps: int = 5) -> tuple[FloatArray, bool]:  # type: ignore[no-untyped-def]
    """Newton steps (with halving) from an L-BFGS point, for a maximum to the last digits."""
    lower = np.array([-np.inf if b[0] is None else b[0] for b in bounds])
    upper = np.array([np.inf if b[1] is None else b[1] for b in bounds])
    value, grad = objective.loglik(theta)
    for _ in range(steps):
        hess = objective.hessian(theta)
        try:
            step = np.linalg.solve(-hess, grad)
        except np.linalg.LinAlgError:
            return theta, False
        for _halving in range(30):
            trial = np.clip(theta + step, lower, upper)
            trial_value, trial_grad = objective.loglik(trial)
            if np.isfinite(trial_value) and trial_value >= value - 1e-12:
                break
            step = step / 2
        else:
            break
        theta, value, grad = trial, trial_value, trial_grad
        if np.max(np.abs(grad * objective.unit)) < 1e-8 * max(1.0, abs(value)):
            break
    return theta, bool(np.max(np.abs(grad * objective.unit)) < 1e-4 * max(1.0, abs(value)) ** 0.5)


def canonical(spec: MixtureSpec, design: MixtureDesign, layout: Layout, theta: FloatArray) -> FloatArray:
    """Relabel classes so that each ordered group increases in ``spec.order_by`` (the Bayesian constraint)."""
    if spec.order_by is None:
        return theta
    beta, aux, gamma = layout.natural(theta)
    logits = np.vstack([np.zeros((1, layout.n_class_coefs)), gamma])
    comps = spec.components
    perm = list(range(spec.k))
    for group in spec.order_groups:
        key = order_key(spec, design, group, beta, aux, gamma)
        for position, old in zip(group, [group[i] for i in np.argsort(key, kind="stable")], strict=True):
            perm[position] = old
    beta = beta[[comps.index(perm[j]) for j in comps]]
    aux = {a: v[[spec.aux_classes(a).index(perm[j]) for j in spec.aux_classes(a)]] for a, v in aux.items()}
    logits = logits[perm] - logits[perm[0]]
    return layout.pack(beta, aux, logits[1:])


def degeneracy(
    spec: MixtureSpec, design: MixtureDesign, layout: Layout, theta: FloatArray, resp: FloatArray
) -> str | None:
    """Why a maximum is degenerate, or None.

    Degenerate: a class holding fewer observations than it has coefficients, or a class whose
    SD is below a tenth of the data's resolution (collapsed onto tied values).
    """
    beta, aux, _ = layout.natural(theta)
    sizes = resp.sum(axis=0)
    step = resolution(design.y)
    for j in spec.components:
        family = spec.families[j]
        assert isinstance(family, Family)
        label = spec.classes[j]
        if sizes[j] < layout.n_coefs + 1:
            return (
                f"class {label} holds {sizes[j]:.2g} observations' worth of data, fewer than its parameters"
            )
        eta = design.X @ beta[spec.components.index(j)] if layout.n_coefs else np.zeros(design.n_obs)
        params = {a: aux[a][spec.aux_classes(a).index(j)] for a in family.auxiliary}
        sd = family.sd(np.array([np.average(eta, weights=resp[:, j])]), params)
        if sd is not None and float(sd[0]) < step / 10:
            return (
                f"class {label} has collapsed (SD {float(sd[0]):.3g}, below a tenth of the data's resolution "
                f"{step:.3g}): its likelihood grows without bound on tied values"
            )
    return None


def maximize(
    spec: MixtureSpec,
    design: MixtureDesign,
    objective: Objective,
    *,
    n_starts: int,
    em_iterations: int,
    rng: np.random.Generator,
) -> list[Maximum]:
    """Search from ``n_starts`` starts; return the distinct maxima found, best first.

    Notes
    -----
    Each start: responsibilities around randomly chosen observations; weighted moments give
    a first parameter vector; ``em_iterations`` EM steps (the M-step maximizes the
    expected complete-data log-likelihood by L-BFGS-B); then L-BFGS-B and Newton steps on
    the log-likelihood. Maxima are told apart by their log-likelihood (1e-6 relative)
    and their relabelled parameters (1e-3 on the unconstrained scale, coefficients in their
    units, :func:`units`).
    """
    layout = objective.layout
    bounds = _bounds(spec, design, layout)
    found: list[Maximum] = []
    for _ in range(n_starts):
        resp = _start(spec, design, rng)
        theta = _moments(spec, design, layout, resp)
        theta = _lbfgs(lambda t, r=resp: objective.q(t, r), theta, bounds, 200, objective.unit)
        previous = -np.inf
        for _step in range(em_iterations):
            resp = objective.responsibilities(theta)
            theta = _lbfgs(lambda t, r=resp: objective.q(t, r), theta, bounds, 50, objective.unit)
            value, _ = objective.loglik(theta)
            if value - previous < 1e-8 * max(1.0, abs(value)):
                break
            previous = value
        theta = _lbfgs(objective.loglik, theta, bounds, 2000, objective.unit)
        theta, converged = _newton(objective, theta, bounds)
        value, _ = objective.loglik(theta)
        if not np.isfinite(value):
            continue
        theta = canonical(spec, design, layout, theta)
        reason = degeneracy(spec, design, layout, theta, objective.responsibilities(theta))
        # a saddle is refused too, and known before comparing: refused points compare by log-likelihood
        # alone (a saddle's parameters are poorly determined), so each is listed once
        reason = reason if reason is not None else _saddle(objective, theta)
        candidate = Maximum(theta=theta, loglik=value, converged=converged, degenerate=reason)
        if any(_same(candidate, m, objective.unit) for m in found):
            continue
        found.append(candidate)
    return sorted(found, key=lambda m: -m.loglik)


def _saddle(objective: Objective, theta: FloatArray) -> str | None:
    """Why a stationary point is not a maximum (a positive Hessian eigenvalue), or None."""
    eigenvalues = np.linalg.eigvalsh(objective.hessian(theta))
    if eigenvalues.max() <= 1e-6 * np.abs(eigenvalues).max():
        return None
    return (
        f"not a maximum but a saddle point (the log-likelihood curves upward in one direction: Hessian "
        f"eigenvalue {eigenvalues.max():.3g}); typically two classes coincide, a fit with fewer classes"
    )


def _same(a: Maximum, b: Maximum, unit: FloatArray) -> bool:
    """The same point: equal log-likelihood and relabelled parameters (refused points: log-likelihood)."""
    close_value = abs(a.loglik - b.loglik) <= 1e-6 * max(1.0, abs(a.loglik))
    if a.degenerate is not None and b.degenerate is not None:
        return close_value
    return close_value and bool(np.max(np.abs(a.theta - b.theta) / unit) < 1e-3)
