"""Solvers: a method = its networks, losses and update step (no loop, no I/O, no printing)."""

from .base import Solver
from .egnot import EgNOTSolver

__all__ = ["Solver", "EgNOTSolver"]
