"""Networks: potentials, generators, encoders and decoders (MLP and convolutional), by name or by module."""

from . import registry
from .autoencoder import LinearDecoder, LinearEncoder, MLPDecoder, MLPEncoder
from .conv import ConvDecoder, ConvEncoder, ConvGenerator, ConvNoiseGenerator, ConvPotential
from .ema import EMA
from .generator import StochasticMLP
from .mlp import MLP, ScalarMLP, activation
from .registry import build

__all__ = ["ConvDecoder", "ConvEncoder", "ConvGenerator", "ConvNoiseGenerator", "ConvPotential", "EMA",
           "LinearDecoder", "LinearEncoder", "MLP", "MLPDecoder", "MLPEncoder", "ScalarMLP", "StochasticMLP",
           "activation", "build", "registry"]
