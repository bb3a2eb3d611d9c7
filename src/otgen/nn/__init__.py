"""Networks: potentials, generators, encoders and decoders."""

from .ema import EMA
from .mlp import MLP, ScalarMLP, activation

__all__ = ["EMA", "MLP", "ScalarMLP", "activation"]
