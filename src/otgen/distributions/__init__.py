"""Samplers: callables ``n -> Tensor(n, *event_shape)`` (see ``base.Sampler``).

Build one by class (``SwissRoll(noise=0.5)``) or by config name (``make("swiss_roll", noise=0.5)``;
``names()`` lists the names, ``DISTRIBUTIONS`` is their registry). Images (``ImageSet``:
``(n, C, H, W)`` in [-1, 1]) come from ``digits`` (bundled, no download; in memory), or stream from a
user's files (``image_folder``, ``npy_images``, ``mnist_idx``, ``cifar10`` return an ``ImageDataset``:
pixels stay as stored and are read per batch).
"""

from .base import Sampler
from .datasets import ArrayImages, FolderImages, ImageDataset, SkippedImageWarning
from .empirical import Empirical
from .gaussian import Gaussian, GaussianMixture, StandardNormal
from .images import ImageSet, digits
from .readers import cifar10, image_folder, load_array, mnist_idx, npy_images
from .registry import DISTRIBUTIONS, make, names
from .toys import Checkerboard, Circles, EightGaussians, Moons, Spiral, SwissRoll, TwentyFiveGaussians

__all__ = [
    "Sampler",
    "Gaussian",
    "GaussianMixture",
    "StandardNormal",
    "SwissRoll",
    "EightGaussians",
    "TwentyFiveGaussians",
    "Moons",
    "Circles",
    "Checkerboard",
    "Spiral",
    "Empirical",
    "ImageSet",
    "ImageDataset",
    "FolderImages",
    "ArrayImages",
    "SkippedImageWarning",
    "digits",
    "image_folder",
    "npy_images",
    "mnist_idx",
    "cifar10",
    "make",
    "names",
    "DISTRIBUTIONS",
    "load_array",
]
