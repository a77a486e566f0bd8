"""Simulation-based calibration of bayesmix models (``bx.sbc``)."""

from .result import SBCResult
from .run import sbc

__all__ = ["SBCResult", "sbc"]
