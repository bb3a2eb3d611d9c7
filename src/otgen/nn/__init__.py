"""Networks: potentials, generators (and later critics, encoders, decoders), by name or by module."""

from . import registry
from .ema import EMA
from .generator import StochasticMLP
from .mlp import MLP, ScalarMLP, activation
from .registry import build

__all__ = ["EMA", "MLP", "ScalarMLP", "StochasticMLP", "activation", "build", "registry"]
