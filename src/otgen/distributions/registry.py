"""Build a sampler from a config-style name: ``make("swiss_roll", noise=0.5)``.

Names (case-insensitive; ``-`` and ``_`` are interchangeable):

=========================== =====================================================================
``gaussian``                ``dim=`` (standard normal) or ``mean=`` with optional ``cov=`` (default I)
``standard_gaussian``, ``normal``  ``dim=``: N(0, I_dim); or ``shape=[1, 16, 16]``: N(0, I) of that shape
``gaussian_mixture``        ``weights=, means=, covs=`` (see ``GaussianMixture``)
``swiss_roll``              ``SwissRoll(noise, scale)``
``8gaussians``              ``EightGaussians(radius, std)``
``25gaussians``             ``TwentyFiveGaussians(spacing, std)``
``moons``                   ``Moons(noise, scale)``
``circles``                 ``Circles(factor, noise, scale)``
``checkerboard``            ``Checkerboard(cells, half_width)``
``spiral``                  ``Spiral(n_arms, turns, noise, scale)``
``empirical``               ``path=`` to a ``.npy`` / ``.npz`` file (``key=`` picks the ``.npz`` array,
                            default the first), or ``samples=`` an array: resamples its rows
``npy``                     as ``empirical`` for a point array; a 3-D/4-D array is images (``npy_images``:
                            ``layout, value_range, size, channels, labels_key, classes, limit, flip``)
``digits``                  scikit-learn's 8×8 digits as images (``classes, size, colored, split, seed``)
``digits_with_outliers``    the same with a fraction of outlier images added (``outlier_fraction`` 0.03,
                            ``outlier_kind`` "inverted" | "noise" | "far" (pixels ±2), ``outlier_seed``):
                            UOTM's outlier test
``image_folder``            ``path=`` a folder of PNG/JPEG/BMP (``size, channels, recursive,
                            labels_from_subfolders, classes, limit, flip``)
``mnist_idx``               ``path=`` an IDX image file or a folder (``split, size, channels, classes, limit, flip``)
``cifar10``                 ``path=`` ``cifar-10-batches-py`` or a batch file (``split, size, channels,
                            classes, limit, flip``)
=========================== =====================================================================

The four readers of a user's images return streaming data sets (``datasets.py``): pixels stay as
stored and are read per batch by the training loop's ``DataLoader``; ``flip: true`` adds random
horizontal flips while training.

=========================== =====================================================================
``outliers_1d``             99 % N(1, 0.1²) + 1 % N(−1, 0.1²) (``outlier_fraction, inlier_mean, ...``)
``mixture_p_1d``, ``mixture_q_1d``  UOTM's 1-D map toy: ½N(±1, 0.5²) and ⅔N(2, 0.5²) + ⅓N(−1, 0.5²)
=========================== =====================================================================

Keyword arguments are checked against the builder's signature before anything is built: an unknown
key raises ``ValueError`` naming it and the accepted keys.
"""

from __future__ import annotations

import inspect
import os
from typing import Callable

import numpy as np

from ..registry import Registry
from .base import Sampler
from .empirical import Empirical
from .gaussian import Gaussian, GaussianMixture, StandardNormal, _as_floats
from .images import digits, with_outliers
from .readers import cifar10, image_folder, images_from_array, load_array, mnist_idx, npy_labels
from .toys import Checkerboard, Circles, EightGaussians, Moons, Spiral, SwissRoll, TwentyFiveGaussians
from .toys1d import mixture_p_1d, mixture_q_1d, outliers_1d

__all__ = ["make", "names", "load_array", "DISTRIBUTIONS"]


def _gaussian(dim: int | None = None, mean=None, cov=None) -> Gaussian:
    """N(mean, cov); ``dim`` alone gives N(0, I_dim); ``cov`` defaults to the identity."""
    if mean is None:
        if cov is not None:
            cov = _as_floats("cov", cov)
            if cov.ndim != 2:
                raise ValueError(f"cov must be a (D, D) matrix, got shape {cov.shape}")
            if dim is not None and cov.shape[0] != dim:
                raise ValueError(f"cov has shape {cov.shape} but dim={dim}")
            return Gaussian(np.zeros(cov.shape[0]), cov)
        if dim is None:
            raise ValueError("gaussian needs dim= or mean= (optionally with cov=)")
        return _standard_gaussian(dim)
    mean = _as_floats("mean", mean).reshape(-1)
    if dim is not None and mean.size != dim:
        raise ValueError(f"mean has {mean.size} entries but dim={dim}")
    return Gaussian(mean, np.eye(mean.size) if cov is None else cov)


def _standard_gaussian(dim: int | None = None, shape=None) -> Sampler:
    """N(0, I_dim) (``dim=``), or N(0, I) with samples of ``shape`` (``shape=[1, 16, 16]``: image-shaped noise)."""
    if (dim is None) == (shape is None):
        raise ValueError(f"normal needs exactly one of dim= (vectors) or shape= (e.g. [1, 16, 16]); missing or "
                         f"both given: dim={dim!r}, shape={shape!r}")
    if shape is not None:
        return StandardNormal(shape)
    if isinstance(dim, bool) or not isinstance(dim, (int, np.integer)) or dim < 1:
        raise ValueError(f"dim must be an int >= 1, got {dim!r}")
    return Gaussian.standard(int(dim))


def _empirical(path=None, key: str | None = None, samples=None) -> Empirical:
    """Rows of ``samples``, or of the array read from ``path`` (``.npy``/``.npz``, see ``load_array``)."""
    if (path is None) == (samples is None):
        raise ValueError("empirical needs exactly one of path= (a .npy/.npz file) or samples= (an array)")
    if samples is not None:
        if key is not None:
            raise ValueError("key applies only with path=, not with samples=")
        return Empirical(samples)
    return _from_file(path, lambda: Empirical(load_array(path, key)))


def _from_file(path, build: Callable[[], Sampler]) -> Sampler:
    """``build()``, its ValueErrors naming the file ``path`` they came from (if they do not yet)."""
    try:
        return build()
    except ValueError as e:
        where = repr(os.fspath(path)) if isinstance(path, (str, os.PathLike)) else repr(path)
        if where in str(e):
            raise
        raise ValueError(f"{where}: {e}") from None


def _npy(
    path=None,
    key: str | None = None,
    samples=None,
    layout: str | None = None,
    value_range=None,
    size: int | None = None,
    channels: int | None = None,
    labels_key: str | None = None,
    classes=None,
    limit: int | None = None,
    flip: bool | None = None,
) -> Sampler:
    """``.npy``/``.npz`` data by its number of dimensions: 3-D/4-D arrays are images (``npy_images``:
    ``(N, H, W)``, ``(N, H, W, C)`` or ``(N, C, H, W)`` -> a streaming ``ArrayImages`` in [-1, 1]; a
    ``.npy`` is memory-mapped), any other array is a point cloud (``Empirical`` over its rows, as with
    ``empirical``)."""
    image_args = {"layout": layout, "value_range": value_range, "size": size, "channels": channels,
                  "classes": classes, "limit": limit, "flip": flip}
    if (path is None) == (samples is None):
        raise ValueError("npy needs exactly one of path= (a .npy/.npz file) or samples= (an array)")
    if samples is not None and (key is not None or labels_key is not None):
        raise ValueError("key and labels_key apply only with path=, not with samples=")
    arr = load_array(path, key, mmap=True) if path is not None else np.asarray(samples)
    if arr.ndim in (3, 4):
        labels = None if labels_key is None else npy_labels(path, labels_key)
        source = "samples" if path is None else repr(os.fspath(path))
        try:
            image_args["flip"] = False if flip is None else flip
            return images_from_array(arr, labels=labels, source=source, **image_args)
        except ValueError as e:
            raise ValueError(f"{e} (npy reads 3-D/4-D arrays as images; for other arrays use the name 'empirical')") from None
    if labels_key is not None:
        image_args["labels_key"] = labels_key
    given = [k for k, v in image_args.items() if v is not None]
    if given:
        raise ValueError(
            f"{', '.join(given)} appl{'ies' if len(given) == 1 else 'y'} only to image arrays (3-D or 4-D), but the "
            f"array has shape {arr.shape}"
        )
    return Empirical(arr) if path is None else _from_file(path, lambda: Empirical(arr))


def _digits(classes=(0, 1, 2, 3, 4, 5, 6, 7, 8, 9), size: int = 16, colored: bool = False,
            split: str = "train", seed: int = 0):
    """``digits(...)`` as an ``ImageSet`` (the registry always returns a sampler)."""
    return digits(classes=classes, size=size, colored=colored, split=split, seed=seed)


def _digits_with_outliers(classes=(0, 1, 2, 3, 4, 5, 6, 7, 8, 9), size: int = 16, colored: bool = False,
                          split: str = "train", seed: int = 0, outlier_fraction: float = 0.03,
                          outlier_kind: str = "inverted", outlier_seed: int = 0):
    """``digits(...)`` with ``with_outliers(fraction=outlier_fraction, kind=outlier_kind, seed=outlier_seed)``."""
    return with_outliers(digits(classes=classes, size=size, colored=colored, split=split, seed=seed),
                         fraction=outlier_fraction, kind=outlier_kind, seed=outlier_seed)


#: name -> builder of the sampler (aliases are names of the same builder); otgen.registry's name rule
DISTRIBUTIONS: Registry[Callable[..., Sampler]] = Registry("distribution")
for _name, _builder in {
    "gaussian": _gaussian,
    "standard_gaussian": _standard_gaussian,
    "normal": _standard_gaussian,
    "gaussian_mixture": GaussianMixture,
    "swiss_roll": SwissRoll,
    "8gaussians": EightGaussians,
    "25gaussians": TwentyFiveGaussians,
    "moons": Moons,
    "circles": Circles,
    "checkerboard": Checkerboard,
    "spiral": Spiral,
    "empirical": _empirical,
    "npy": _npy,
    "digits": _digits,
    "digits_with_outliers": _digits_with_outliers,
    "image_folder": image_folder,
    "mnist_idx": mnist_idx,
    "cifar10": cifar10,
    "outliers_1d": outliers_1d,
    "mixture_p_1d": mixture_p_1d,
    "mixture_q_1d": mixture_q_1d,
}.items():
    DISTRIBUTIONS.add(_name, _builder)


def names() -> list[str]:
    """The names ``make`` accepts (aliases included), in a fixed order."""
    return DISTRIBUTIONS.names()


def make(name: str, **kwargs) -> Sampler:
    """Build the sampler called ``name`` with keyword arguments ``kwargs``.

    ``name`` is looked up without regard to case, and '-' reads as '_' (``otgen.registry``). Raises
    ``ValueError`` for an unknown name (with a "did you mean" and the accepted names), an unknown
    keyword (naming it and the accepted ones) or a missing required keyword; the builders themselves
    raise ``ValueError`` for values out of range.
    """
    key = DISTRIBUTIONS.canonical(name)
    builder = DISTRIBUTIONS[key]
    params = {
        p.name: p
        for p in inspect.signature(builder).parameters.values()
        if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
    }
    accepted = ", ".join(params) or "(none)"
    for k in kwargs:
        if k not in params:
            raise ValueError(f"make({key!r}): unknown argument {k!r}; accepted arguments: {accepted}")
    missing = [p for p, spec in params.items() if spec.default is inspect.Parameter.empty and p not in kwargs]
    if missing:
        raise ValueError(f"make({key!r}): missing required argument(s) {', '.join(missing)}; accepted arguments: {accepted}")
    return builder(**kwargs)
