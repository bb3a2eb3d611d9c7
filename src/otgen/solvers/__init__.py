"""Solvers: a method = its networks, losses and update step (no loop, no I/O, no printing).

The classes here are the layer under the public models: users call ``otgen.EgNOT``, ``otgen.UOTM``,
``otgen.SJKO`` and ``otgen.WAE`` (``otgen.models``), each the solver joined with ``fit``.
"""

from .base import Solver

__all__ = ["Solver"]
