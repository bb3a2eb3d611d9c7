"""Networks: potentials, generators, encoders and decoders."""

from .ema import EMA
from .generator import StochasticMLP
from .mlp import MLP, ScalarMLP, activation

__all__ = ["EMA", "MLP", "ScalarMLP", "StochasticMLP", "activation"]
