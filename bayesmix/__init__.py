"""bayesmix: Bayesian hierarchical and finite mixture models on PyMC.

>>> import bayesmix as bx
>>> model = bx.mixed("Reaction ~ Days + (Days | Subject)", bx.datasets.load("sleepstudy"))
>>> stamps = bx.fmm(3, "thickness ~ 1", bx.datasets.load("stamps"))
"""

from . import datasets, plots
from .api import HierarchicalModel, MixtureModel, compare_fits, compare_k, fmm, hierarchical, mixed
from .calibration import SBCResult, sbc
from .compare.fmm import CloseMaximaWarning, MixtureMLFit
from .compare.laplace import LaplaceFitWarning
from .results.diagnostics import Diagnostics
from .results.fit import Fit
from .results.io import load
from .results.mixture import MixtureFit
from .spec import priors
from .spec.data import DroppedRowsWarning
from .spec.families import PointMass
from .spec.formula import FormulaError

__all__ = [
    "CloseMaximaWarning",
    "Diagnostics",
    "DroppedRowsWarning",
    "Fit",
    "FormulaError",
    "HierarchicalModel",
    "LaplaceFitWarning",
    "MixtureFit",
    "MixtureMLFit",
    "MixtureModel",
    "PointMass",
    "SBCResult",
    "compare_fits",
    "compare_k",
    "datasets",
    "fmm",
    "hierarchical",
    "load",
    "mixed",
    "plots",
    "priors",
    "sbc",
]
__version__ = "0.1.0"
