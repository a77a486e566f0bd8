"""The family registry: one place that says what each likelihood needs.

A family is data (name, links, auxiliary parameters with the default prior
scale, the response's support). :mod:`bayesmix.build.families` maps the name to
the PyMC likelihood.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

__all__ = ["FAMILIES", "Family", "get_family"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Family:
    """A response distribution.

    Parameters
    ----------
    name
        Registry key.
    links
        Allowed link functions, the default first.
    auxiliary
        Names of the extra parameters (``sigma`` for the Gaussian).
    support
        ``"real"``, ``"positive"``, ``"count"``, ``"binary"`` or ``"unit"``.
    """

    name: str
    links: tuple[str, ...]
    auxiliary: tuple[str, ...]
    support: str

    def check_support(self, y: npt.NDArray[np.float64], response: str) -> None:
        """Raise ``ValueError`` naming the rows outside the family's support."""
        bad = {
            "real": np.zeros(y.shape, bool),
            "positive": y <= 0,
            "count": (y < 0) | (y != np.round(y)),
            "binary": (y != 0) & (y != 1),
            "unit": (y <= 0) | (y >= 1),
        }[self.support]
        if bad.any():
            rows = np.flatnonzero(bad)[:5].tolist()
            raise ValueError(
                f"the {self.name} family needs a {self.support} response, but {int(bad.sum())} values "
                f"of {response!r} are outside it (first positions {rows})"
            )


FAMILIES: dict[str, Family] = {
    "gaussian": Family(name="gaussian", links=("identity",), auxiliary=("sigma",), support="real"),
}


def get_family(name: str) -> Family:
    """Look a family up by name, with a clear error for an unknown one."""
    if not isinstance(name, str):
        raise TypeError(f"family must be a string such as 'gaussian', got {type(name).__name__}")
    try:
        return FAMILIES[name.lower()]
    except KeyError:
        raise ValueError(f"unknown family {name!r}; available: {', '.join(sorted(FAMILIES))}") from None
