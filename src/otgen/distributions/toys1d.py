"""One-dimensional toys of the UOTM paper (uotm-sjko.md §3): samples of shape (n, 1), float32."""

from __future__ import annotations

import math
import numbers

from .gaussian import GaussianMixture

__all__ = ["outliers_1d", "mixture_p_1d", "mixture_q_1d"]


def _real(name: str, value, low: float, high: float | None = None, low_open: bool = True) -> float:
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(float(value))
    ok = ok and (value > low if low_open else value >= low) and (high is None or value < high)
    if not ok:
        rng = f"{'(' if low_open else '['}{low:g}, {'inf' if high is None else f'{high:g}'})"
        raise ValueError(f"{name} must be a finite number in {rng}, got {value!r}")
    return float(value)


def outliers_1d(outlier_fraction: float = 0.01, inlier_mean: float = 1.0, outlier_mean: float = -1.0,
                std: float = 0.1) -> GaussianMixture:
    """(1 − p)·N(inlier_mean, std²) + p·N(outlier_mean, std²): the UOTM outlier toy (p = 1 %)."""
    p = _real("outlier_fraction", outlier_fraction, 0.0, 1.0, low_open=False)
    std = _real("std", std, 0.0)
    means = [[_real("inlier_mean", inlier_mean, -math.inf)], [_real("outlier_mean", outlier_mean, -math.inf)]]
    if p == 0.0:
        return GaussianMixture([1.0], means[:1], [[[std**2]]])
    return GaussianMixture([1.0 - p, p], means, [[[std**2]], [[std**2]]])


def mixture_p_1d() -> GaussianMixture:
    """½ N(1, 0.5²) + ½ N(−1, 0.5²): the source p of UOTM's 1-D map toy."""
    return GaussianMixture([0.5, 0.5], [[1.0], [-1.0]], [[[0.25]], [[0.25]]])


def mixture_q_1d() -> GaussianMixture:
    """⅔ N(2, 0.5²) + ⅓ N(−1, 0.5²): the target q of UOTM's 1-D map toy."""
    return GaussianMixture([2.0 / 3.0, 1.0 / 3.0], [[2.0], [-1.0]], [[[0.25]], [[0.25]]])
