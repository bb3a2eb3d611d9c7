"""Two-dimensional toy distributions used throughout the neural-OT and flow literature.

Every sampler here returns a float32 Tensor of shape ``(n, 2)``, draws all of its randomness
from the ``torch.Generator`` it is given (never from numpy's or torch's global state when a
generator is passed), and is vectorised: no Python work per sample.

Summary of the constructions (details in each class docstring):

==================== ===========================================================================
``SwissRoll``        sklearn ``make_swiss_roll`` columns (0, 2), noise 0.5, divided by 8 (EgNOT)
``EightGaussians``   8 Gaussians on a circle of radius 2, std 0.02 (WGAN-GP toy)
``TwentyFiveGaussians`` 25 Gaussians on the grid {-2, -1, 0, 1, 2}^2, std 0.05
``Moons``            sklearn ``make_moons`` geometry, uniform angles, noise 0.1
``Circles``          sklearn ``make_circles`` geometry: radii 1 and ``factor``, noise 0.05
``Checkerboard``     uniform on the 'black' cells of a 4 x 4 board on [-2, 2]^2
``Spiral``           two interleaved Archimedean spirals (1.5 turns), noise 0.2, scaled by 1/3
==================== ===========================================================================
"""

from __future__ import annotations

import math
import numbers

import torch

from .base import Sampler

__all__ = [
    "SwissRoll",
    "EightGaussians",
    "TwentyFiveGaussians",
    "Moons",
    "Circles",
    "Checkerboard",
    "Spiral",
]


# --------------------------------------------------------------------------- validation helpers


def _real(name: str, value, *, low: float | None = None, high: float | None = None,
          low_open: bool = False, high_open: bool = False) -> float:
    """Return ``value`` as a float, or raise ValueError naming ``name``, ``value`` and the range."""
    lo = "-inf" if low is None else f"{low:g}"
    hi = "inf" if high is None else f"{high:g}"
    rng = f"{'(' if low is None or low_open else '['}{lo}, {hi}{')' if high is None or high_open else ']'}"
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(float(value))
    if ok:
        v = float(value)
        if low is not None and (v < low or (low_open and v == low)):
            ok = False
        if high is not None and (v > high or (high_open and v == high)):
            ok = False
    if not ok:
        raise ValueError(f"{name} must be a finite number in {rng}, got {value!r}")
    return float(value)


def _integer(name: str, value, *, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < low:
        raise ValueError(f"{name} must be an int >= {low}, got {value!r}")
    return int(value)


def _noise(n: int, noise: float, generator) -> torch.Tensor:
    """``noise * N(0, I_2)`` with ``n`` rows (zeros, without drawing, when ``noise == 0``)."""
    if noise == 0.0:
        return torch.zeros(n, 2)
    return noise * torch.randn(n, 2, generator=generator)


class _Toy2D(Sampler):
    event_shape = (2,)

    def _params(self) -> dict:
        return {}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self._params().items())
        return f"{type(self).__name__}({args})"


# --------------------------------------------------------------------------- samplers


class SwissRoll(_Toy2D):
    """The 2-D Swiss roll of the EgNOT paper.

    Construction (scikit-learn's ``make_swiss_roll``, columns 0 and 2, then scaled)::

        u ~ U[0, 1],   t = 1.5 * pi * (1 + 2 u)          # t in [1.5 pi, 4.5 pi]
        x = scale * (t cos t + noise * e1)
        y = scale * (t sin t + noise * e2),   e1, e2 ~ N(0, 1) independent

    scikit-learn adds ``noise * N(0, I_3)`` to all three coordinates; keeping columns 0 and 2 leaves
    independent ``N(0, noise^2)`` noise on both kept coordinates. EgNOT uses ``noise=0.5`` and divides
    by 8 (``scale=1/8``); the noiseless roll then spans about [-1.2, 1.6] x [-1.4, 1.8].

    Args:
        noise: standard deviation of the Gaussian noise before scaling, ``>= 0``.
        scale: positive factor applied to the noisy points.
    """

    def __init__(self, noise: float = 0.5, scale: float = 1.0 / 8.0):
        self.noise = _real("noise", noise, low=0.0)
        self.scale = _real("scale", scale, low=0.0, low_open=True)

    def _params(self):
        return {"noise": self.noise, "scale": self.scale}

    def sample(self, n, generator=None):
        u = torch.rand(n, generator=generator, dtype=torch.float64)
        t = 1.5 * math.pi * (1.0 + 2.0 * u)
        curve = torch.stack([t * torch.cos(t), t * torch.sin(t)], dim=1).float()
        return self.scale * (curve + _noise(n, self.noise, generator))


class EightGaussians(_Toy2D):
    """Equal mixture of 8 isotropic Gaussians with centres evenly spaced on a circle.

    Centres ``radius * (cos(2 pi k / 8), sin(2 pi k / 8))`` for ``k = 0..7`` (so (±r, 0), (0, ±r) and
    the four diagonals), each with covariance ``std^2 I``. Defaults ``radius=2, std=0.02`` are the
    WGAN-GP toy (Gulrajani et al., 2017); flow papers often use a larger ``std`` (up to ~0.35).

    Args:
        radius: radius of the circle of centres, ``> 0``.
        std: standard deviation of each component, ``>= 0``.
    """

    def __init__(self, radius: float = 2.0, std: float = 0.02):
        self.radius = _real("radius", radius, low=0.0, low_open=True)
        self.std = _real("std", std, low=0.0)
        angles = torch.arange(8, dtype=torch.float64) * (2.0 * math.pi / 8.0)
        self.centers = (self.radius * torch.stack([torch.cos(angles), torch.sin(angles)], 1)).float()

    def _params(self):
        return {"radius": self.radius, "std": self.std}

    def sample(self, n, generator=None):
        k = torch.randint(0, 8, (n,), generator=generator)
        return self.centers[k] + _noise(n, self.std, generator)


class TwentyFiveGaussians(_Toy2D):
    """Equal mixture of 25 isotropic Gaussians centred on a 5 x 5 grid.

    Centres ``spacing * (i, j)`` for ``i, j in {-2, -1, 0, 1, 2}``, each with covariance ``std^2 I``.
    Defaults ``spacing=1, std=0.05`` put the grid on {-2, ..., 2}^2. (The WGAN-GP toy is the same
    grid with ``spacing = 2 / 2.828`` and ``std = 0.05 / 2.828``.)

    Args:
        spacing: distance between neighbouring centres, ``> 0``.
        std: standard deviation of each component, ``>= 0``.
    """

    def __init__(self, spacing: float = 1.0, std: float = 0.05):
        self.spacing = _real("spacing", spacing, low=0.0, low_open=True)
        self.std = _real("std", std, low=0.0)
        g = torch.arange(-2, 3, dtype=torch.float32)
        self.centers = self.spacing * torch.cartesian_prod(g, g)

    def _params(self):
        return {"spacing": self.spacing, "std": self.std}

    def sample(self, n, generator=None):
        k = torch.randint(0, 25, (n,), generator=generator)
        return self.centers[k] + _noise(n, self.std, generator)


class Moons(_Toy2D):
    """Two interleaving half circles (scikit-learn's ``make_moons`` geometry, random angles).

    With probability 1/2 each, a point is on the upper moon ``(cos a, sin a)`` or on the lower moon
    ``(1 - cos a, 0.5 - sin a)``, ``a ~ U[0, pi]``; then ``noise * N(0, I_2)`` is added and the
    result multiplied by ``scale``. Both moons have radius 1, centred at (0, 0) and (1, 0.5);
    the unscaled data lie in [-1, 2] x [-0.5, 1]. scikit-learn uses evenly spaced angles instead of
    random ones; the distribution sampled here is their limit.

    Args:
        noise: standard deviation of the Gaussian noise before scaling, ``>= 0``.
        scale: positive factor applied to the noisy points.
    """

    def __init__(self, noise: float = 0.1, scale: float = 1.0):
        self.noise = _real("noise", noise, low=0.0)
        self.scale = _real("scale", scale, low=0.0, low_open=True)

    def _params(self):
        return {"noise": self.noise, "scale": self.scale}

    def sample(self, n, generator=None):
        lower = torch.rand(n, generator=generator) < 0.5
        a = math.pi * torch.rand(n, generator=generator)
        c, s = torch.cos(a), torch.sin(a)
        x = torch.where(lower, 1.0 - c, c)
        y = torch.where(lower, 0.5 - s, s)
        return self.scale * (torch.stack([x, y], 1) + _noise(n, self.noise, generator))


class Circles(_Toy2D):
    """Two concentric circles (scikit-learn's ``make_circles`` geometry, random angles).

    With probability 1/2 each, a point is on the outer circle of radius 1 or the inner circle of
    radius ``factor``, at angle ``a ~ U[0, 2 pi)``; then ``noise * N(0, I_2)`` is added and the result
    multiplied by ``scale``.

    Args:
        factor: ratio of the inner to the outer radius, in ``(0, 1)``.
        noise: standard deviation of the Gaussian noise before scaling, ``>= 0``.
        scale: positive factor applied to the noisy points (the outer radius after scaling).
    """

    def __init__(self, factor: float = 0.5, noise: float = 0.05, scale: float = 1.0):
        self.factor = _real("factor", factor, low=0.0, high=1.0, low_open=True, high_open=True)
        self.noise = _real("noise", noise, low=0.0)
        self.scale = _real("scale", scale, low=0.0, low_open=True)

    def _params(self):
        return {"factor": self.factor, "noise": self.noise, "scale": self.scale}

    def sample(self, n, generator=None):
        inner = torch.rand(n, generator=generator) < 0.5
        a = 2.0 * math.pi * torch.rand(n, generator=generator)
        r = torch.where(inner, self.factor, 1.0)
        pts = r[:, None] * torch.stack([torch.cos(a), torch.sin(a)], 1)
        return self.scale * (pts + _noise(n, self.noise, generator))


class Checkerboard(_Toy2D):
    """Uniform distribution on the 'black' cells of a checkerboard.

    The square ``[-half_width, half_width]^2`` is cut into ``cells x cells`` equal squares; cell
    ``(i, j)`` (``i`` along x, ``j`` along y, both counted from the lower-left corner, from 0) is
    black when ``i + j`` is even. Samples are uniform on the union of black cells. With the defaults
    (``cells=4, half_width=2``) the cells are unit squares and a point ``(x, y)`` is black exactly
    when ``floor(x) + floor(y)`` is even — the FFJORD checkerboard before its final factor of 2.

    Args:
        cells: number of cells per side, an int ``>= 2``.
        half_width: half the side of the board, ``> 0``.
    """

    def __init__(self, cells: int = 4, half_width: float = 2.0):
        self.cells = _integer("cells", cells, low=2)
        self.half_width = _real("half_width", half_width, low=0.0, low_open=True)
        ij = torch.cartesian_prod(torch.arange(self.cells), torch.arange(self.cells))
        self._black = ij[(ij.sum(1) % 2) == 0].float()  # (n_black, 2) lower-left cell indices

    def _params(self):
        return {"cells": self.cells, "half_width": self.half_width}

    def sample(self, n, generator=None):
        k = torch.randint(0, self._black.shape[0], (n,), generator=generator)
        within = torch.rand(n, 2, generator=generator)
        side = 2.0 * self.half_width / self.cells
        return (self._black[k] + within) * side - self.half_width


class Spiral(_Toy2D):
    """Interleaved Archimedean spirals (the 'two spirals' toy of the flow literature).

    Arm ``a`` is chosen uniformly from ``0..n_arms-1`` and ``u ~ U[0, 1]``; with
    ``phi = 2 pi * turns * sqrt(u)`` (the square root spreads points evenly along the arc) the point is
    ``phi * (cos(phi + 2 pi a / n_arms), sin(phi + 2 pi a / n_arms))``, then ``noise * N(0, I_2)`` is
    added and the result multiplied by ``scale``. Defaults (two arms, 1.5 turns = 540 degrees, noise
    0.2, scale 1/3) follow the FFJORD '2spirals' toy: points within radius ~3.2 of the origin.

    Args:
        n_arms: number of arms, an int ``>= 1``.
        turns: number of turns of each arm, ``> 0``.
        noise: standard deviation of the Gaussian noise before scaling, ``>= 0``.
        scale: positive factor applied to the noisy points.
    """

    def __init__(self, n_arms: int = 2, turns: float = 1.5, noise: float = 0.2, scale: float = 1.0 / 3.0):
        self.n_arms = _integer("n_arms", n_arms, low=1)
        self.turns = _real("turns", turns, low=0.0, low_open=True)
        self.noise = _real("noise", noise, low=0.0)
        self.scale = _real("scale", scale, low=0.0, low_open=True)

    def _params(self):
        return {"n_arms": self.n_arms, "turns": self.turns, "noise": self.noise, "scale": self.scale}

    def sample(self, n, generator=None):
        arm = torch.randint(0, self.n_arms, (n,), generator=generator, dtype=torch.float64)
        u = torch.rand(n, generator=generator, dtype=torch.float64)
        phi = (2.0 * math.pi * self.turns) * torch.sqrt(u)
        angle = phi + arm * (2.0 * math.pi / self.n_arms)
        pts = (phi[:, None] * torch.stack([torch.cos(angle), torch.sin(angle)], 1)).float()
        return self.scale * (pts + _noise(n, self.noise, generator))
