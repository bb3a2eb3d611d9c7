"""Samplers: callables ``n -> Tensor(n, *event_shape)`` (see ``base.Sampler``).

Build one by class (``SwissRoll(noise=0.5)``) or by config name (``make("swiss_roll", noise=0.5)``;
``names()`` lists the names).
"""

from .base import Sampler
from .empirical import Empirical
from .gaussian import Gaussian, GaussianMixture
from .registry import load_array, make, names
from .toys import Checkerboard, Circles, EightGaussians, Moons, Spiral, SwissRoll, TwentyFiveGaussians

__all__ = [
    "Sampler",
    "Gaussian",
    "GaussianMixture",
    "SwissRoll",
    "EightGaussians",
    "TwentyFiveGaussians",
    "Moons",
    "Circles",
    "Checkerboard",
    "Spiral",
    "Empirical",
    "make",
    "names",
    "load_array",
]
