"""Finite mixtures: the built log-density equals an independent numpy/scipy computation (rtol 1e-8).

The reference is written from the parametrizations documented in ``bayesmix/spec/families.py``
(those of PyMC), translated to scipy's:

* negbinomial ``NegativeBinomial(mu, alpha)`` is ``nbinom(n=alpha, p=alpha / (mu + alpha))``;
* gamma with shape ``alpha`` and mean ``exp(eta)`` is ``gamma(a=alpha, scale=exp(eta) / alpha)``;
* beta ``Beta(mu phi, (1 - mu) phi)`` with ``mu = expit(eta)``;
* lognormal is ``lognorm(s=sigma, scale=exp(eta))``; studentt is ``t(df=nu, loc=eta, scale=sigma)``.

The mixture log-likelihood is ``sum_i log sum_j pi_ij f_j(y_i)`` with
``pi_i = softmax(0, w_i' gamma_2, ..., w_i' gamma_k)`` (class 1 the base).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytensor
import pytensor.tensor as pt
import pytest
from scipy import special, stats

import bayesmix as bx
from bayesmix.build.mixtures import OrderedRows, compile_joint
from bayesmix.compare.fmm_engine import Layout, Objective
from bayesmix.spec.mixture import parameter_names

from .helpers import logp_at, value_point

N = 40

# Elementwise log-density of each family in scipy's terms: (y, eta, aux, trials) -> log f(y).
SCIPY_LOGPDF = {
    "gaussian": lambda y, eta, a, n: stats.norm.logpdf(y, loc=eta, scale=a["sigma"]),
    "lognormal": lambda y, eta, a, n: stats.lognorm.logpdf(y, s=a["sigma"], scale=np.exp(eta)),
    "studentt": lambda y, eta, a, n: stats.t.logpdf(y, df=a["nu"], loc=eta, scale=a["sigma"]),
    "poisson": lambda y, eta, a, n: stats.poisson.logpmf(y, np.exp(eta)),
    "negbinomial": lambda y, eta, a, n: stats.nbinom.logpmf(
        y, n=a["alpha"], p=a["alpha"] / (np.exp(eta) + a["alpha"])
    ),
    "gamma": lambda y, eta, a, n: stats.gamma.logpdf(y, a=a["alpha"], scale=np.exp(eta) / a["alpha"]),
    "bernoulli": lambda y, eta, a, n: stats.bernoulli.logpmf(y, special.expit(eta)),
    "binomial": lambda y, eta, a, n: stats.binom.logpmf(y, n, special.expit(eta)),
    "beta": lambda y, eta, a, n: stats.beta.logpdf(
        y, special.expit(eta) * a["phi"], (1 - special.expit(eta)) * a["phi"]
    ),
}

# Data generators: (rng, eta) -> response, with eta the linear predictor of the observation's class.
SIMULATE = {
    "gaussian": lambda rng, eta: eta + rng.normal(0, 0.5, eta.size),
    "lognormal": lambda rng, eta: np.exp(eta + rng.normal(0, 0.5, eta.size)),
    "studentt": lambda rng, eta: eta + 0.5 * rng.standard_t(4, eta.size),
    "poisson": lambda rng, eta: rng.poisson(np.exp(eta)).astype(float),
    "negbinomial": lambda rng, eta: rng.negative_binomial(3, 3 / (np.exp(eta) + 3)).astype(float),
    "gamma": lambda rng, eta: rng.gamma(4.0, np.exp(eta) / 4.0),
    "bernoulli": lambda rng, eta: (rng.random(eta.size) < special.expit(eta)).astype(float),
    "binomial": None,  # needs the trials; see _frame
    "beta": lambda rng, eta: rng.beta(special.expit(eta) * 8, (1 - special.expit(eta)) * 8),
}

# A parameter point per family: auxiliary values per class (class j gets the j-th entry).
AUX = {
    "gaussian": {"sigma": [0.6, 0.9, 1.3]},
    "lognormal": {"sigma": [0.4, 0.7, 1.1]},
    "studentt": {"sigma": [0.5, 0.8, 1.2], "nu": [3.5, 7.0, 12.0]},
    "poisson": {},
    "negbinomial": {"alpha": [2.5, 6.0, 0.8]},
    "gamma": {"alpha": [3.0, 1.5, 7.0]},
    "bernoulli": {},
    "binomial": {},
    "beta": {"phi": [5.0, 12.0, 2.5]},
}


def _frame(seed: int, family: str, n: int = N) -> pd.DataFrame:
    """Two latent classes with intercepts -0.4 and 0.9 and slope 0.5 on x (plus class covariate z)."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    z = rng.normal(size=n)
    cls = rng.integers(0, 2, size=n)
    eta = np.where(cls == 0, -0.4, 0.9) + 0.5 * x
    df = pd.DataFrame({"x": x, "z": z})
    if family == "binomial":
        df["n"] = rng.integers(3, 9, size=n).astype(float)
        df["y"] = rng.binomial(df["n"].to_numpy().astype(int), special.expit(eta)).astype(float)
    else:
        df["y"] = SIMULATE[family](rng, eta)
    return df


def _classes(family: str, k: int) -> list[tuple]:
    """A point: class j has intercept -0.5 + 0.7 j (increasing: the default ordering), slope 0.3 - 0.2 j."""
    return [
        (family, np.array([-0.5 + 0.7 * j, 0.3 - 0.2 * j]), {a: v[j] for a, v in AUX[family].items()})
        for j in range(k)
    ]


def _log_shares(W: np.ndarray, gamma: np.ndarray) -> np.ndarray:
    logits = np.column_stack([np.zeros(W.shape[0]), W @ gamma.T])
    return logits - special.logsumexp(logits, axis=1, keepdims=True)


def _component_logpdf(cls: tuple, y: np.ndarray, X: np.ndarray, trials: np.ndarray | None) -> np.ndarray:
    if cls[0] == "pointmass":
        return np.where(y == cls[1], 0.0, -np.inf)
    name, coef, aux = cls
    with np.errstate(divide="ignore"):  # scipy gives -inf (log 0) outside the support, as the model must
        return SCIPY_LOGPDF[name](y, X @ coef, aux, trials)


def reference_loglik(
    classes: list[tuple], y: np.ndarray, X: np.ndarray, W: np.ndarray, gamma: np.ndarray, trials=None
) -> float:
    """sum_i log sum_j pi_ij f_j(y_i), pi = softmax(0, W gamma')."""
    logf = np.column_stack([_component_logpdf(c, y, X, trials) for c in classes])
    return float(special.logsumexp(_log_shares(W, gamma) + logf, axis=1).sum())


def graph_values(classes: list[tuple], gamma: np.ndarray) -> dict[str, np.ndarray]:
    """The point as values of the graph variables: beta (components x coefs), one vector per aux, gamma."""
    comps = [c for c in classes if c[0] != "pointmass"]
    values: dict[str, np.ndarray] = {"beta": np.array([c[1] for c in comps]), "gamma": gamma}
    for name in dict.fromkeys(a for c in comps for a in c[2]):
        values[name] = np.array([c[2][name] for c in comps if name in c[2]])
    return values


def observed_logp(model: bx.MixtureModel, values: dict[str, np.ndarray]) -> float:
    """Log-density of the observed response alone (no priors, no Jacobian) at constrained values."""
    m = model.pymc_model
    f = m.compile_logp(vars=m.observed_RVs, jacobian=False)
    return float(f(value_point(m, values)))


def _check(model: bx.MixtureModel, classes: list[tuple], gamma: np.ndarray) -> None:
    d = model.design
    expected = reference_loglik(classes, d.y, d.X, d.W, gamma, d.trials)
    assert np.isfinite(expected)
    np.testing.assert_allclose(observed_logp(model, graph_values(classes, gamma)), expected, rtol=1e-8)


@pytest.mark.parametrize(
    ("family", "k"),
    [
        ("gaussian", 3),
        ("lognormal", 2),
        ("studentt", 2),
        ("poisson", 3),
        ("negbinomial", 2),
        ("gamma", 2),
        ("binomial", 3),
        ("beta", 2),
    ],
)
def test_each_family_exact(family, k):
    df = _frame(10, family)
    trials = "n" if family == "binomial" else None
    model = bx.fmm(k, "y ~ x", df, family=family, trials=trials)
    gamma = np.array([[0.4], [-0.3]])[: k - 1]
    _check(model, _classes(family, k), gamma)


def test_bernoulli_two_classes_exact():
    """A mixture of two logistic regressions (Stata: fmm 2: logit y x)."""
    model = bx.fmm(2, "y ~ x", _frame(11, "bernoulli"), family="bernoulli")
    _check(model, _classes("bernoulli", 2), np.array([[0.7]]))


@pytest.mark.parametrize("family", ["gaussian", "lognormal", "poisson", "negbinomial", "bernoulli", "beta"])
def test_one_class_is_the_plain_likelihood(family):
    df = _frame(12, family)
    model = bx.fmm(1, "y ~ x", df, family=family)
    ((name, coef, aux),) = _classes(family, 1)
    d = model.design
    plain = SCIPY_LOGPDF[name](d.y, d.X @ coef, aux, None).sum()
    values = graph_values([(name, coef, aux)], np.zeros((0, 1)))
    np.testing.assert_allclose(observed_logp(model, values), plain, rtol=1e-8)
    assert "gamma" not in model.pymc_model.named_vars


def test_class_covariates_exact():
    df = _frame(13, "gaussian")
    model = bx.fmm(3, "y ~ x", df, class_formula="~ z")
    assert model.design.class_coef_names == ("Intercept", "z")
    gamma = np.array([[0.3, -1.2], [-0.5, 0.8]])
    _check(model, _classes("gaussian", 3), gamma)


def test_mixed_families_exact():
    df = _frame(14, "gaussian")
    model = bx.fmm(2, "y ~ x", df, family=["gaussian", "studentt"])
    classes = [
        ("gaussian", np.array([0.8, 0.4]), {"sigma": 0.7}),
        ("studentt", np.array([-0.2, 0.1]), {"sigma": 1.1, "nu": 4.0}),
    ]
    # Different families cannot swap labels: no ordering, so class 1 may have the larger intercept.
    assert model.spec.order_by is None
    _check(model, classes, np.array([[-0.6]]))


def test_zero_inflated_poisson_exact():
    df = _frame(15, "poisson")
    df.loc[df.index[::4], "y"] = 0.0  # extra zeros
    model = bx.fmm(2, "y ~ x", df, family=["pointmass", "poisson"])
    classes = [("pointmass", 0.0), ("poisson", np.array([0.6, 0.4]), {})]
    gamma = np.array([[1.1]])
    _check(model, classes, gamma)
    # At y > 0 only the Poisson class contributes: log pi_2 + log f(y); check one such row by hand.
    d = model.design
    i = int(np.flatnonzero(d.y > 0)[0])
    log_pi2 = -np.log1p(np.exp(-1.1))
    by_hand = log_pi2 + stats.poisson.logpmf(d.y[i], np.exp(0.6 + 0.4 * d.X[i, 1]))
    np.testing.assert_allclose(
        reference_loglik(classes, d.y[[i]], d.X[[i]], d.W[[i]], gamma), by_hand, rtol=1e-12
    )


def test_point_mass_at_nonzero_value_exact():
    df = _frame(16, "poisson")
    df.loc[df.index[::5], "y"] = 2.0
    model = bx.fmm(2, "y ~ x", df, family=[bx.PointMass(2), "poisson"])
    classes = [("pointmass", 2.0), ("poisson", np.array([0.2, 0.5]), {})]
    _check(model, classes, np.array([[0.4]]))


def _two_part_frame() -> pd.DataFrame:
    df = _frame(17, "lognormal")
    df.loc[df.index[::3], "y"] = 0.0
    return df


def test_two_part_lognormal_builds_on_zeros():
    model = bx.fmm(2, "y ~ x", _two_part_frame(), family=["pointmass", "lognormal"])
    assert np.isfinite([p.mu for n, p in model.spec.priors.items() if n.startswith("Intercept")]).all()


def test_two_part_lognormal_exact():
    model = bx.fmm(2, "y ~ x", _two_part_frame(), family=["pointmass", "lognormal"])
    classes = [("pointmass", 0.0), ("lognormal", np.array([0.5, 0.3]), {"sigma": 0.6})]
    _check(model, classes, np.array([[0.9]]))
    # The lognormal's density is -inf at the zeros, but its gradient there must stay finite.
    m = model.pymc_model
    grad = m.compile_dlogp()(value_point(m, graph_values(classes, np.array([[0.9]]))))
    assert np.isfinite(grad).all()


def test_full_joint_with_priors_exact():
    """Priors (per class, per element) plus likelihood; the ordered beta enters at its constrained value."""
    df = _frame(18, "gaussian")
    model = bx.fmm(3, "y ~ x", df, class_formula="~ z")
    classes = _classes("gaussian", 3)
    gamma = np.array([[0.3, -1.2], [-0.5, 0.8]])
    named = {}
    for j, (_, coef, aux) in enumerate(classes, start=1):
        named |= {f"Intercept[{j}]": coef[0], f"x[{j}]": coef[1], f"sigma[{j}]": aux["sigma"]}
    for j in (2, 3):
        named |= {f"class[{j}]:Intercept": gamma[j - 2, 0], f"class[{j}]:z": gamma[j - 2, 1]}
    assert sorted(named) == sorted(model.spec.priors)
    prior = 0.0
    for name, value in named.items():
        p = model.spec.priors[name]
        if isinstance(p, bx.priors.Normal):
            prior += stats.norm.logpdf(value, p.mu, p.sigma)
        else:
            assert isinstance(p, bx.priors.Exponential), name
            prior += stats.expon.logpdf(value, scale=1 / p.lam)
    d = model.design
    expected = prior + reference_loglik(classes, d.y, d.X, d.W, gamma)
    np.testing.assert_allclose(logp_at(model.pymc_model, graph_values(classes, gamma)), expected, rtol=1e-8)


def test_full_joint_mixed_prior_types_exact():
    """Priors of different types within one graph variable (a Student-t on one intercept, Gamma on nu)."""
    df = _frame(19, "gaussian")
    chosen = {"Intercept[2]": bx.priors.StudentT(4, 0.5, 2.0), "nu": bx.priors.Gamma(3.0, 0.2)}
    model = bx.fmm(2, "y ~ x", df, family=["gaussian", "studentt"], priors=chosen)
    assert model.spec.user_priors == {"Intercept[2]", "nu[2]"}
    classes = [
        ("gaussian", np.array([0.8, 0.4]), {"sigma": 0.7}),
        ("studentt", np.array([-0.2, 0.1]), {"sigma": 1.1, "nu": 4.0}),
    ]
    gamma = np.array([[-0.6]])
    pri = model.spec.priors
    t = chosen["Intercept[2]"]
    prior = (
        sum(stats.norm.logpdf(v, pri[n].mu, pri[n].sigma) for n, v in [("Intercept[1]", 0.8), ("x[1]", 0.4)])
        + stats.norm.logpdf(0.1, pri["x[2]"].mu, pri["x[2]"].sigma)
        + stats.t.logpdf(-0.2, df=t.nu, loc=t.mu, scale=t.sigma)
        + stats.expon.logpdf(0.7, scale=1 / pri["sigma[1]"].lam)
        + stats.expon.logpdf(1.1, scale=1 / pri["sigma[2]"].lam)
        + stats.gamma.logpdf(4.0, a=3.0, scale=1 / 0.2)
        + stats.norm.logpdf(-0.6, pri["class[2]:Intercept"].mu, pri["class[2]:Intercept"].sigma)
    )
    d = model.design
    expected = prior + reference_loglik(classes, d.y, d.X, d.W, gamma)
    np.testing.assert_allclose(logp_at(model.pymc_model, graph_values(classes, gamma)), expected, rtol=1e-8)


# --- identities -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("family", ["gaussian", "poisson", "gamma"])
def test_zero_weight_class_drops_out(family):
    """gamma = -inf gives weights exactly [1, 0]: the mixture is its first component."""
    df = _frame(20, family)
    two = bx.fmm(2, "y ~ x", df, family=family)
    one = bx.fmm(1, "y ~ x", df, family=family)
    classes = _classes(family, 2)
    d = two.design
    values = graph_values(classes, np.array([[-np.inf]]))
    joint = np.asarray(
        compile_joint(two.spec, d)(values["beta"], *(values[a] for a in two.spec.aux_names), values["gamma"])
    )
    first = _component_logpdf(classes[0], d.y, d.X, None)
    np.testing.assert_allclose(joint[:, 0], first, rtol=1e-12)
    assert np.all(joint[:, 1] == -np.inf)
    np.testing.assert_allclose(special.logsumexp(joint, axis=1).sum(), first.sum(), rtol=1e-12)
    # The same through the PyMC graphs: the two-class model equals the one-class model.
    np.testing.assert_allclose(
        observed_logp(two, values),
        observed_logp(one, graph_values(classes[:1], np.zeros((0, 1)))),
        rtol=1e-12,
    )


# --- the ordering transform -----------------------------------------------------------------------------


def _numeric_log_jac_det(transform: OrderedRows, y: np.ndarray) -> float:
    """log |det d backward(y) / d y| from PyTensor's symbolic Jacobian of the full (flattened) map."""
    v = pt.tensor("v", shape=y.shape, dtype="float64")
    out = transform.backward(v).ravel()
    jac = pytensor.gradient.jacobian(out, v).reshape((y.size, y.size))
    sign, logdet = np.linalg.slogdet(pytensor.function([v], jac)(y))
    assert sign != 0
    return float(logdet)


TRANSFORMS = [
    pytest.param(OrderedRows([[0, 2], [1, 3, 4]], column=1, positive=False), (5, 3), id="matrix-column"),
    pytest.param(OrderedRows([[0, 1, 2]], column=0, positive=True), (3, 2), id="matrix-positive"),
    pytest.param(OrderedRows([[0, 1, 2, 3]], column=None, positive=False), (4,), id="vector"),
    pytest.param(OrderedRows([[1, 3], [0, 2]], column=None, positive=True), (4,), id="vector-positive"),
]


@pytest.mark.parametrize(("transform", "shape"), TRANSFORMS)
def test_ordered_rows_round_trip(transform, shape):
    rng = np.random.default_rng(21)
    y = rng.normal(size=shape)
    x = transform.backward(pt.as_tensor(y)).eval()
    col = x if transform.column is None else x[:, transform.column]
    for g in transform.groups:
        assert np.all(np.diff(col[g]) > 0)
        if transform.positive:
            assert col[g[0]] > 0
    if transform.column is not None:  # the other columns pass unchanged
        others = [c for c in range(shape[1]) if c != transform.column]
        np.testing.assert_array_equal(x[:, others], y[:, others])
    np.testing.assert_allclose(transform.forward(pt.as_tensor(x)).eval(), y, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(transform.backward(transform.forward(pt.as_tensor(x))).eval(), x, rtol=1e-12)


@pytest.mark.parametrize(("transform", "shape"), TRANSFORMS)
def test_ordered_rows_log_jac_det(transform, shape):
    y = np.random.default_rng(22).normal(size=shape)
    np.testing.assert_allclose(
        float(transform.log_jac_det(pt.as_tensor(y)).eval()), _numeric_log_jac_det(transform, y), rtol=1e-10
    )


def test_model_adds_the_ordering_jacobian_once():
    """The prior term of the ordered ``beta`` with and without Jacobian differs by log|det J| of backward."""
    model = bx.fmm(3, "y ~ x", _frame(23, "gaussian"))
    m = model.pymc_model
    beta = m["beta"]
    transform = m.rvs_to_transforms[beta]
    assert isinstance(transform, OrderedRows)
    point = value_point(m, graph_values(_classes("gaussian", 3), np.zeros((2, 1))))
    with_jac = float(m.compile_logp(vars=[beta], jacobian=True)(point))
    without = float(m.compile_logp(vars=[beta], jacobian=False)(point))
    unconstrained = point[m.rvs_to_values[beta].name]
    np.testing.assert_allclose(with_jac - without, _numeric_log_jac_det(transform, unconstrained), rtol=1e-10)


# --- the maximum-likelihood engine shares the likelihood --------------------------------------------------


def _unpack(theta: np.ndarray, classes: list[tuple], n_coefs: int, gamma_shape: tuple[int, int]):
    """Our reading of the documented layout: coefficients, log auxiliaries (by name, then class), logits."""
    comps = [c for c in classes if c[0] != "pointmass"]
    at = len(comps) * n_coefs
    coefs = theta[:at].reshape(len(comps), n_coefs)
    aux_names = list(dict.fromkeys(a for c in comps for a in c[2]))
    aux = [dict() for _ in comps]
    for name in aux_names:
        for i, c in enumerate(comps):
            if name in c[2]:
                aux[i][name] = np.exp(theta[at])
                at += 1
    gamma = theta[at:].reshape(gamma_shape)
    it = iter(range(len(comps)))
    out = []
    for c in classes:
        if c[0] == "pointmass":
            out.append(c)
        else:
            i = next(it)
            out.append((c[0], coefs[i], aux[i]))
    return out, gamma


ML_CASES = {
    "gaussian-class-covariate": (
        lambda: bx.fmm(3, "y ~ x", _frame(24, "gaussian"), class_formula="~ z"),
        _classes("gaussian", 3),
        np.array([[0.3, -1.2], [-0.5, 0.8]]),
    ),
    "zero-inflated-poisson": (
        lambda: bx.fmm(2, "y ~ x", _frame(25, "poisson"), family=["pointmass", "poisson"]),
        [("pointmass", 0.0), ("poisson", np.array([0.6, 0.4]), {})],
        np.array([[0.2]]),
    ),
    "gaussian-studentt": (
        lambda: bx.fmm(2, "y ~ x", _frame(26, "gaussian"), family=["gaussian", "studentt"]),
        [
            ("gaussian", np.array([0.8, 0.4]), {"sigma": 0.7}),
            ("studentt", np.array([-0.2, 0.1]), {"sigma": 1.1, "nu": 4.0}),
        ],
        np.array([[-0.6]]),
    ),
    "negbinomial": (
        lambda: bx.fmm(2, "y ~ x", _frame(27, "negbinomial"), family="negbinomial"),
        _classes("negbinomial", 2),
        np.array([[0.4]]),
    ),
}


@pytest.mark.parametrize("case", list(ML_CASES))
def test_ml_objective_is_the_same_likelihood(case):
    build, classes, gamma = ML_CASES[case]
    model = build()
    spec, d = model.spec, model.design
    values = graph_values(classes, gamma)
    layout = Layout.of(spec, d)
    theta = layout.pack(values["beta"], {a: values[a] for a in spec.aux_names}, values["gamma"])
    # Our reading of the layout recovers the point: pack is what its docstring says.
    unpacked, g = _unpack(theta, classes, len(d.coef_names), gamma.shape)
    np.testing.assert_allclose(g, gamma, rtol=1e-15)
    for mine, given in zip(unpacked, classes, strict=True):
        if given[0] != "pointmass":
            np.testing.assert_allclose(mine[1], given[1], rtol=1e-15)
            assert mine[2].keys() == given[2].keys()
            np.testing.assert_allclose(list(mine[2].values()), list(given[2].values()), rtol=1e-14)

    def reference(t: np.ndarray) -> float:
        cls, gam = _unpack(t, classes, len(d.coef_names), gamma.shape)
        return reference_loglik(cls, d.y, d.X, d.W, gam, d.trials)

    objective = Objective(spec, d)
    value, grad = objective.loglik(theta)
    np.testing.assert_allclose(value, reference(theta), rtol=1e-8)
    np.testing.assert_allclose(value, observed_logp(model, values), rtol=1e-8)  # ML and Bayes: one likelihood
    # Central differences of the scipy reference. Error per entry: truncation h^2 |f'''| / 6 plus rounding
    # eps |f| / h. Here |f| ~ 1e2 and |f'''| <~ 1e3 (n = 40 terms of O(10) third derivatives), so with
    # h = 1e-5: 2e-8 + 2e-9 in absolute terms, far inside atol = 1e-6 (rtol 1e-5 for the large entries).
    h = 1e-5
    fd = np.array(
        [(reference(theta + h * e) - reference(theta - h * e)) / (2 * h) for e in np.eye(theta.size)]
    )
    np.testing.assert_allclose(grad, fd, rtol=1e-5, atol=1e-6)
    assert np.max(np.abs(grad)) > 1e-2  # not a stationary point, so the comparison has teeth


# --- public names -----------------------------------------------------------------------------------------


def test_parameter_names_pinned():
    model = bx.fmm(3, "y ~ x", _frame(28, "gaussian"), class_formula="~ z")
    expected = [
        "Intercept[1]",
        "x[1]",
        "sigma[1]",
        "Intercept[2]",
        "x[2]",
        "sigma[2]",
        "Intercept[3]",
        "x[3]",
        "sigma[3]",
        "class[2]:Intercept",
        "class[2]:z",
        "class[3]:Intercept",
        "class[3]:z",
    ]
    assert parameter_names(model.spec, model.design) == expected
    assert set(model.spec.priors) == set(expected)


def test_parameter_names_skip_point_masses_and_follow_families():
    model = bx.fmm(3, "y ~ x", _frame(29, "poisson"), family=["pointmass", "negbinomial", "poisson"])
    assert parameter_names(model.spec, model.design) == [
        "Intercept[2]",
        "x[2]",
        "alpha[2]",
        "Intercept[3]",
        "x[3]",
        "class[2]:Intercept",
        "class[3]:Intercept",
    ]


def test_graph_variables_pinned():
    m = bx.fmm(3, "y ~ x", _frame(30, "gaussian"), class_formula="~ z").pymc_model
    assert {v.name for v in m.free_RVs} == {"beta", "sigma", "gamma"}
    assert [v.name for v in m.observed_RVs] == ["y"]
    assert "class_prob" not in m.named_vars  # only without class covariates
    assert m.named_vars_to_dims == {
        "beta": ("component", "coef"),
        "sigma": ("sigma__class",),
        "gamma": ("class_logit", "class_coef"),
        "y": ("obs",),
    }
    coords = {k: tuple(v) for k, v in m.coords.items() if k != "obs"}
    assert coords == {
        "class": ("1", "2", "3"),
        "component": ("1", "2", "3"),
        "coef": ("Intercept", "x"),
        "class_logit": ("2", "3"),
        "class_coef": ("Intercept", "z"),
        "sigma__class": ("1", "2", "3"),
    }
    assert len(m.coords["obs"]) == N


def test_graph_variables_with_point_mass_and_mixed_auxiliaries():
    df = _frame(31, "gaussian")
    df.loc[df.index[::5], "y"] = 0.0
    m = bx.fmm(3, "y ~ x", df, family=["studentt", "pointmass", "gaussian"]).pymc_model
    assert m.named_vars_to_dims == {
        "beta": ("component", "coef"),
        "sigma": ("sigma__class",),
        "nu": ("nu__class",),
        "gamma": ("class_logit", "class_coef"),
        "class_prob": ("class",),
        "y": ("obs",),
    }
    assert tuple(m.coords["component"]) == ("1", "3")
    assert tuple(m.coords["sigma__class"]) == ("1", "3")
    assert tuple(m.coords["nu__class"]) == ("1",)
    # class_prob is softmax(0, gamma) at any point.
    point = value_point(
        m,
        graph_values(
            [
                ("studentt", np.array([0.1, 0.2]), {"sigma": 1.0, "nu": 5.0}),
                ("pointmass", 0.0),
                ("gaussian", np.array([0.3, 0.4]), {"sigma": 2.0}),
            ],
            np.array([[0.5], [-1.0]]),
        ),
    )
    (expr,) = m.replace_rvs_by_values([m["class_prob"]])
    prob = pytensor.function(m.value_vars, expr, on_unused_input="ignore")(**point)
    np.testing.assert_allclose(prob, special.softmax([0.0, 0.5, -1.0]), rtol=1e-12)
