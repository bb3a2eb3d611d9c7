"""Build a sampler from a config-style name: ``make("swiss_roll", noise=0.5)``.

Names (case-insensitive; ``-`` and ``_`` are interchangeable):

=========================== =====================================================================
``gaussian``                ``dim=`` (standard normal) or ``mean=`` with optional ``cov=`` (default I)
``standard_gaussian``, ``normal``  ``dim=``: N(0, I_dim)
``gaussian_mixture``        ``weights=, means=, covs=`` (see ``GaussianMixture``)
``swiss_roll``              ``SwissRoll(noise, scale)``
``8gaussians``              ``EightGaussians(radius, std)``
``25gaussians``             ``TwentyFiveGaussians(spacing, std)``
``moons``                   ``Moons(noise, scale)``
``circles``                 ``Circles(factor, noise, scale)``
``checkerboard``            ``Checkerboard(cells, half_width)``
``spiral``                  ``Spiral(n_arms, turns, noise, scale)``
``empirical``, ``npy``      ``path=`` to a ``.npy`` / ``.npz`` file (``key=`` picks the ``.npz`` array,
                            default the first), or ``samples=`` an array: resamples its rows
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

from .base import Sampler
from .empirical import Empirical
from .gaussian import Gaussian, GaussianMixture
from .toys import Checkerboard, Circles, EightGaussians, Moons, Spiral, SwissRoll, TwentyFiveGaussians
from .toys1d import mixture_p_1d, mixture_q_1d, outliers_1d

__all__ = ["make", "names", "load_array"]


def _gaussian(dim: int | None = None, mean=None, cov=None) -> Gaussian:
    """N(mean, cov); ``dim`` alone gives N(0, I_dim); ``cov`` defaults to the identity."""
    if mean is None:
        if cov is not None:
            cov = np.asarray(cov, dtype=np.float64)
            if cov.ndim != 2:
                raise ValueError(f"cov must be a (D, D) matrix, got shape {cov.shape}")
            if dim is not None and cov.shape[0] != dim:
                raise ValueError(f"cov has shape {cov.shape} but dim={dim}")
            return Gaussian(np.zeros(cov.shape[0]), cov)
        if dim is None:
            raise ValueError("gaussian needs dim= or mean= (optionally with cov=)")
        return _standard_gaussian(dim)
    mean = np.asarray(mean, dtype=np.float64).reshape(-1)
    if dim is not None and mean.size != dim:
        raise ValueError(f"mean has {mean.size} entries but dim={dim}")
    return Gaussian(mean, np.eye(mean.size) if cov is None else cov)


def _standard_gaussian(dim: int) -> Gaussian:
    """N(0, I_dim)."""
    if isinstance(dim, bool) or not isinstance(dim, (int, np.integer)) or dim < 1:
        raise ValueError(f"dim must be an int >= 1, got {dim!r}")
    return Gaussian.standard(int(dim))


def load_array(path, key: str | None = None) -> np.ndarray:
    """Read an array from a ``.npy`` file, or the array ``key`` (default: the first) of a ``.npz``.

    Pickled object arrays are refused (``allow_pickle=False``).
    """
    path = os.fspath(path)
    ext = os.path.splitext(path)[1].lower()
    if ext == ".npy":
        if key is not None:
            raise ValueError(f"key applies only to .npz files, got key={key!r} for {path!r}")
        return np.load(path, allow_pickle=False)
    if ext == ".npz":
        with np.load(path, allow_pickle=False) as z:
            if not z.files:
                raise ValueError(f"{path!r} holds no arrays")
            if key is None:
                key = z.files[0]
            if key not in z.files:
                raise ValueError(f"key={key!r} not in {path!r}; its arrays are {z.files}")
            return z[key]
    raise ValueError(f"path must end in .npy or .npz, got {path!r}")


def _empirical(path=None, key: str | None = None, samples=None) -> Empirical:
    """Rows of ``samples``, or of the array read from ``path`` (``.npy``/``.npz``, see ``load_array``)."""
    if (path is None) == (samples is None):
        raise ValueError("empirical needs exactly one of path= (a .npy/.npz file) or samples= (an array)")
    if samples is not None:
        if key is not None:
            raise ValueError("key applies only with path=, not with samples=")
        return Empirical(samples)
    return Empirical(load_array(path, key))


_BUILDERS: dict[str, Callable[..., Sampler]] = {
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
    "npy": _empirical,
    "outliers_1d": outliers_1d,
    "mixture_p_1d": mixture_p_1d,
    "mixture_q_1d": mixture_q_1d,
}


def names() -> list[str]:
    """The names ``make`` accepts (aliases included), in a fixed order."""
    return list(_BUILDERS)


def make(name: str, **kwargs) -> Sampler:
    """Build the sampler called ``name`` with keyword arguments ``kwargs``.

    Raises ``ValueError`` for an unknown name (listing the accepted names), an unknown keyword
    (naming it and the accepted ones) or a missing required keyword; the builders themselves raise
    ``ValueError`` for values out of range.
    """
    if not isinstance(name, str):
        raise ValueError(f"name must be a str, one of {names()}, got {name!r}")
    key = name.strip().lower().replace("-", "_")
    if key not in _BUILDERS:
        raise ValueError(f"unknown distribution name {name!r}; accepted names: {', '.join(names())}")
    builder = _BUILDERS[key]
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
