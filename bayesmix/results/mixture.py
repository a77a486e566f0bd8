"""The result of a Bayesian mixture fit: class probabilities, class membership, densities, modes.

Every quantity is computed draw by draw from the same joint log-density the model
was built from (:func:`bayesmix.build.mixtures.compile_joint`) and then summarized,
so intervals carry the posterior uncertainty of all parameters.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import arviz_stats as azs
import numpy as np
import numpy.typing as npt
import pandas as pd
import xarray as xr
from scipy import special

from ..build.mixtures import compile_joint
from ..sample import SampleSettings
from ..spec.families import Family
from ..spec.mixture import (
    MixtureDesign,
    MixtureSpec,
    class_shares,
    component_means,
    design_for,
    grid_design,
    parameter_names,
    resolution,
)
from .diagnostics import Diagnostics, diagnose
from .fit import Sampled
from .modes import ChainModes, chain_modes
from .parameters import SAMPLE_DIMS, summarize

if TYPE_CHECKING:
    from matplotlib.axes import Axes

    from ..api import MixtureModel
    from ..compare.fmm import MixtureMLFit

__all__ = ["MixtureFit"]

FloatArray = npt.NDArray[np.float64]
_DENSITY_DRAWS = 1000  # draws used for densities with covariates (rows x grid x draws grows fast)
#: a class holding fewer observations' worth of membership than this many per parameter is "nearly empty"
ROWS_PER_PARAMETER = 5
#: log-likelihood units above the best accepted ML maximum from which a chain is in a degenerate spike
SPIKE_MARGIN = 2.0


@dataclass(frozen=True, slots=True, kw_only=True)
class MixtureFit(Sampled):
    """A fitted Bayesian finite mixture model.

    Attributes
    ----------
    idata
        The ``xarray.DataTree``: posterior (``beta``, ``sigma`` ..., ``gamma``, ``class_prob``),
        sample_stats, observed_data.
    spec, design
        The model specification and its evaluated data.
    settings
        Sampler settings.
    wall_time
        Seconds from the call to ``fit`` to the end of sampling (ML starts and compilation included).
    model
        The model object that produced this fit.
    ml
        The maximum-likelihood fit the chains started from and :meth:`compare` uses.
    starts
        Log-likelihood of the maximum each chain started from (chain order).
    """

    idata: xr.DataTree
    spec: MixtureSpec
    design: MixtureDesign
    settings: SampleSettings
    wall_time: float
    model: MixtureModel
    ml: MixtureMLFit | None
    starts: tuple[float, ...] = ()
    _cache: dict[str, Any] = field(default_factory=dict, repr=False, init=False)

    @property
    def ordering(self) -> str:
        """The identifiability constraint, in words."""
        return self.spec.ordering()

    # ----- draws under public names -------------------------------------------------------
    def _arrays(self) -> tuple[FloatArray, dict[str, FloatArray], FloatArray]:
        """``beta`` (S, components, coefs), auxiliaries (S, classes), ``gamma`` (S, k - 1, class coefs)."""
        post = self.posterior
        size = post.sizes["chain"] * post.sizes["draw"]
        flat = {name: post[name].stack(_s=SAMPLE_DIMS).transpose("_s", ...).values for name in post.data_vars}
        beta = flat.get("beta", np.zeros((size, len(self.spec.components), 0)))
        aux = {a: flat[a] for a in self.spec.aux_names}
        gamma = flat.get("gamma", np.zeros((size, 0, len(self.design.class_coef_names))))
        return beta, aux, gamma

    def draws(self) -> xr.Dataset:
        """Draws of every parameter under its public name (``Intercept[1]``, ``sigma[2]``, ``class[2]:x``)."""
        if "draws" not in self._cache:
            post, labels = self.posterior, self.spec.classes
            out: dict[str, xr.DataArray] = {}
            for j in self.spec.components:
                for c in self.design.coef_names:
                    out[f"{c}[{labels[j]}]"] = post["beta"].sel(component=labels[j], coef=c, drop=True)
            for a in self.spec.aux_names:
                for j in self.spec.aux_classes(a):
                    out[f"{a}[{labels[j]}]"] = post[a].sel({f"{a}__class": labels[j]}, drop=True)
            for j in range(1, self.spec.k):
                for c in self.design.class_coef_names:
                    out[f"class[{labels[j]}]:{c}"] = post["gamma"].sel(
                        class_logit=labels[j], class_coef=c, drop=True
                    )
            self._cache["draws"] = xr.Dataset({n: out[n] for n in parameter_names(self.spec, self.design)})
        return self._cache["draws"]

    def summary(self, prob: float = 0.95) -> pd.DataFrame:
        """Posterior summary per parameter: mean, sd, interval, MCSE, ESS, R-hat."""
        return summarize(self.draws(), prob)

    def priors(self) -> pd.DataFrame:
        """The prior of every parameter, defaults included."""
        return self.spec.prior_table()

    # ----- per-draw log-densities ----------------------------------------------------------
    def _joint(self, design: MixtureDesign, max_draws: int | None = None) -> FloatArray:
        """Joint log-density ``log pi_ij + log f_j(y_i)`` per draw: shape (S, n, k)."""
        beta, aux, gamma = self._arrays()
        index = np.arange(beta.shape[0])
        if max_draws is not None and index.size > max_draws:
            index = np.linspace(0, index.size - 1, max_draws).round().astype(int)
        function = compile_joint(self.spec, design)
        return np.stack(
            [function(beta[s], *(aux[a][s] for a in self.spec.aux_names), gamma[s]) for s in index]
        )

    def _fitted_joint(self) -> FloatArray:
        if "joint" not in self._cache:
            self._cache["joint"] = self._joint(self.design)
        return self._cache["joint"]

    def _reshape(self, values: FloatArray, dims: tuple[str, ...], coords: dict[str, Any]) -> xr.DataArray:
        post = self.posterior
        shape = (post.sizes["chain"], post.sizes["draw"], *values.shape[1:])
        return xr.DataArray(
            values.reshape(shape),
            dims=("chain", "draw", *dims),
            coords={"chain": post["chain"].values, "draw": post["draw"].values, **coords},
        )

    def log_likelihood(self) -> xr.DataArray:
        """Pointwise log-likelihood ``log p(y_i | theta)`` per draw (chain, draw, obs)."""
        pointwise = special.logsumexp(self._fitted_joint(), axis=2)
        return self._reshape(pointwise, ("obs",), {"obs": np.arange(self.design.n_obs)})

    def loo(self) -> Any:
        """PSIS-LOO (arviz-stats) from the pointwise log-likelihood; check its Pareto k diagnostics."""
        if "loo" not in self._cache:
            tree = self.idata.copy()
            tree["log_likelihood"] = xr.DataTree(
                xr.Dataset({self.design.response_name: self.log_likelihood()})
            )
            self._cache["loo"] = azs.loo(tree, var_name=self.design.response_name)
        return self._cache["loo"]

    # ----- diagnostics ---------------------------------------------------------------------
    def modes(self) -> ChainModes:
        """Chains grouped by the mode they sampled (see :mod:`bayesmix.results.modes`)."""
        if "modes" not in self._cache:
            loglik = self.log_likelihood().sum("obs")
            self._cache["modes"] = chain_modes(self.draws(), loglik)
        return self._cache["modes"]

    def diagnostics(self) -> Diagnostics:
        """R-hat, ESS, divergences, E-BFMI, tree depth, and the per-chain mode check, with advice."""
        if "diagnostics" not in self._cache:
            found = (
                self.modes().problem(),
                self._collapse_problem() or self._spike_problem(),
                self._empty_problem(),
            )
            extra = tuple(p for p in found if p)
            # per-parameter checks under the public names (the draws hold every sampled parameter)
            self._cache["diagnostics"] = diagnose(self.idata, extra=extra, posterior=self.draws())
        return self._cache["diagnostics"]

    def _collapse_problem(self) -> str | None:
        """Chains where a class's SD fell below a tenth of the data's resolution (a spike on tied values)."""
        beta, aux, _ = self._arrays()
        floor = resolution(self.design.y) / 10
        chains = self.posterior.sizes["chain"]
        found = []
        for j in self.spec.components:
            family = self.spec.families[j]
            assert isinstance(family, Family)
            row = self.spec.components.index(j)
            eta = beta[:, row, :] @ self.design.X.mean(axis=0) if beta.shape[2] else np.zeros(beta.shape[0])
            params = {a: aux[a][:, self.spec.aux_classes(a).index(j)] for a in family.auxiliary}
            sd = family.sd(eta, params)
            if sd is None:
                continue
            share = (np.asarray(sd) < floor).reshape(chains, -1).mean(axis=1)
            bad = np.flatnonzero(share > 0.01).tolist()
            if bad:
                found.append(
                    f"class {self.spec.classes[j]} in chain(s) {bad} ({100 * share.max():.0f}% of draws)"
                )
        if not found:
            return None
        return (
            f"a class collapsed onto tied values: {'; '.join(found)} had an SD below a tenth of the data's "
            f"resolution ({10 * floor:.3g}). The likelihood is unbounded there, so the posterior has a spike "
            "that these chains fell into. Give the scale a prior bounded below by the resolution, e.g. "
            f"priors={{'sigma': bx.priors.Uniform({5 * floor:.3g}, ...)}}, or start at the ML fit "
            "(init='ml')."
        )

    def _spike_problem(self) -> str | None:
        """Chains whose mean log-likelihood lies above the best maximum the ML search accepted.

        Posterior draws lie below the likelihood's maximum (on average by about half the number
        of parameters). A chain above the best non-degenerate maximum sits where the search
        refused to go: a class whose SD collapses onto tied values, where the likelihood is
        unbounded, even when that SD has not yet fallen below the data's resolution.
        """
        if self.ml is None:
            return None
        means = self.log_likelihood().sum("obs").mean("draw").to_numpy()
        above = np.flatnonzero(means > self.ml.loglik + SPIKE_MARGIN)
        if not above.size:
            return None
        values, counts = np.unique(self.design.y, return_counts=True)
        tied = (
            f" (the most repeated response value is {values[counts.argmax()]:g}, in {counts.max()} rows)"
            if counts.max() > 1
            else ""
        )
        return (
            f"chain(s) {above.tolist()} have a mean log-likelihood up to {means[above].max():.1f}, above the "
            f"best maximum the ML search accepted ({self.ml.loglik:.1f}): they sampled a spike of the "
            f"likelihood, where a class's SD collapses onto tied values{tied}, or a maximum the search "
            "missed (see fit_ml().refused). The likelihood is unbounded at a collapse, so the posterior "
            "there means nothing. Bound the scale below: priors={'sigma': bx.priors.Uniform(lower, upper)} "
            "with lower the data's rounding error (see the user guide on tied data), and start at the ML "
            "fit (init='ml')."
        )

    def _empty_problem(self) -> str | None:
        """Classes whose posterior membership falls below ``ROWS_PER_PARAMETER`` rows per parameter.

        A class's size in a draw is the sum over rows of P(class | y_i, theta): the number of
        observations it explains. Below a few per parameter, the class's parameters rest on
        their priors, and where its size nears zero they are not identified at all. Reported
        when the lower end (5% quantile) of a class's size is that small: a class that empties
        in some draws is the sign of more classes than the data need.
        """
        joint = self._fitted_joint()
        sizes = np.exp(joint - special.logsumexp(joint, axis=2, keepdims=True)).sum(axis=1)  # (S, k)
        found = []
        for j in self.spec.components:
            family = self.spec.families[j]
            assert isinstance(family, Family)
            needed = ROWS_PER_PARAMETER * (len(self.design.coef_names) + len(family.auxiliary))
            low, median, high = np.quantile(sizes[:, j], [0.05, 0.5, 0.95])
            if low < needed:
                found.append(
                    f"class {self.spec.classes[j]} falls to {low:.1f} observations' worth in 5% of draws, "
                    f"below {needed} ({ROWS_PER_PARAMETER} per parameter; it holds {median:.1f} of "
                    f"{self.design.n_obs} in the median draw, 90% interval {low:.1f} to {high:.1f})"
                )
        if not found:
            return None
        return (
            f"nearly empty class: {'; '.join(found)}. Its parameters rest mostly on their priors, and "
            "where the class empties they are not identified. If the data do not need the class, fit "
            "fewer classes (compare them with bx.compare_k); if it is real, read its parameters with "
            "their wide intervals, or give them informative priors."
        )

    # ----- class probabilities, membership, densities ---------------------------------------
    def class_probabilities(self, prob: float = 0.95) -> pd.DataFrame:
        """Stata's ``estat lcprob``: each class's probability averaged over the data; mean, sd, interval."""
        _, _, gamma = self._arrays()
        W = self.design.W
        shares = np.stack([class_shares(g, W).mean(axis=0) for g in gamma])  # (S, k)
        return _summary_frame(shares, self.spec.classes, prob, "probability")

    def posterior_class_probabilities(
        self, data: pd.DataFrame | None = None, *, draws: bool = False
    ) -> pd.DataFrame | xr.DataArray:
        """Stata's ``predict, classposteriorpr``: P(class | y, x) per observation.

        Parameters
        ----------
        data
            New rows with the response and covariates; default the fitted data.
        draws
            Return every draw (a DataArray ``chain, draw, obs, class``) instead of the
            posterior mean (an ``n x k`` DataFrame).
        """
        design = self.design if data is None else design_for(self.spec, data)
        joint = self._fitted_joint() if data is None else self._joint(design)
        weights = np.exp(joint - special.logsumexp(joint, axis=2, keepdims=True))
        if draws:
            return self._reshape(
                weights, ("obs", "class"), {"obs": design.index, "class": list(self.spec.classes)}
            )
        return pd.DataFrame(
            weights.mean(axis=0), index=design.index, columns=pd.Index(self.spec.classes, name="class")
        )

    def component_means(self, data: pd.DataFrame | None = None, prob: float = 0.95) -> pd.DataFrame:
        """Per class, the mean of the response within the class averaged over the data's covariates."""
        design = self.design if data is None else design_for(self.spec, data)
        beta, aux, _ = self._arrays()
        means = np.stack(
            [
                component_means(self.spec, design, beta[s], {a: v[s] for a, v in aux.items()})
                for s in range(beta.shape[0])
            ]
        )
        return _summary_frame(means, self.spec.classes, prob, "mean")

    def density(self, values: npt.ArrayLike, prob: float = 0.95) -> pd.DataFrame:
        """Stata's ``predict, density marginal``: the mixture density at ``values`` with a ``prob`` band.

        With covariates the density is averaged over the fitted rows' covariates. Columns:
        ``mean``, ``lower``, ``upper`` (the marginal density) and each class's weighted
        contribution (posterior mean).
        """
        grid = np.asarray(values, dtype=float).ravel()
        design, weights = grid_design(self.design, grid)
        joint = self._joint(design, max_draws=None if weights.size == 1 else _DENSITY_DRAWS)
        per_class = np.einsum(
            "sgrk,r->sgk", np.exp(joint).reshape(joint.shape[0], grid.size, weights.size, -1), weights
        )
        total = per_class.sum(axis=2)
        lower, upper = np.quantile(total, [(1 - prob) / 2, (1 + prob) / 2], axis=0)
        frame = pd.DataFrame(
            {"mean": total.mean(axis=0), "lower": lower, "upper": upper}, index=pd.Index(grid, name="value")
        )
        for j, label in enumerate(self.spec.classes):
            frame[f"class {label}"] = per_class[:, :, j].mean(axis=0)
        return frame

    def compare(self, prob: float = 0.95) -> pd.DataFrame:
        """The posterior beside the maximum-likelihood fit (the best maximum), one row per parameter.

        ``diff_sd = (posterior mean - estimate) / posterior sd``.
        """
        # The compare layer sits to the right of results: reached at call time only.
        from ..compare.table import beside

        if self.ml is None:
            raise ValueError(
                "this fit has no maximum-likelihood counterpart: fit_ml() found no usable maximum when it "
                "was sampled (init='prior'). Compare with model.fit_ml(n_starts=...) under more starts, "
                "or with fewer classes"
            )
        reference = f"maximum likelihood (log-likelihood {self.ml.loglik:.4f})"
        return beside(self.summary(prob), self.ml.table(prob), reference)

    # ----- plots (bayesmix.plots; matplotlib loads when one is drawn) -------------------------
    def plot_density(self, *, bins: int = 40, prob: float = 0.95, ax: Axes | None = None) -> Axes:
        """The fitted density over the histogram of the response: :func:`bayesmix.plots.plot_density`."""
        from ..plots import plot_density

        return plot_density(self, bins=bins, prob=prob, ax=ax)

    def plot_class_probabilities(
        self, against: str | pd.Series | None = None, *, ax: Axes | None = None
    ) -> Axes:
        """Posterior class membership per observation: :func:`bayesmix.plots.plot_class_probabilities`."""
        from ..plots import plot_class_probabilities

        return plot_class_probabilities(self, against, ax=ax)

    def plot_compare(self, *, prob: float = 0.95, ax: Axes | None = None) -> Axes:
        """Forest plot of the posterior beside the ML fit: :func:`bayesmix.plots.plot_compare`."""
        from ..plots import plot_compare

        return plot_compare(self, prob=prob, ax=ax)

    def plot_trace(self, var_names: str | list[str] | None = None, **kwargs: Any) -> Any:
        """Trace and marginal density per parameter: :func:`bayesmix.plots.plot_trace`."""
        from ..plots import plot_trace

        return plot_trace(self, var_names, **kwargs)

    def plot_rank(self, var_names: str | list[str] | None = None, **kwargs: Any) -> Any:
        """Rank plots per parameter and chain: :func:`bayesmix.plots.plot_rank`."""
        from ..plots import plot_rank

        return plot_rank(self, var_names, **kwargs)


def _summary_frame(values: FloatArray, classes: tuple[str, ...], prob: float, name: str) -> pd.DataFrame:
    lower, upper = np.quantile(values, [(1 - prob) / 2, (1 + prob) / 2], axis=0)
    return pd.DataFrame(
        {name: values.mean(axis=0), "sd": values.std(axis=0, ddof=1), "lower": lower, "upper": upper},
        index=pd.Index(classes, name="class"),
    )
