"""One-dimensional toys of the UOTM paper (uotm-sjko.md §3): samples of shape (n, 1), float32."""

from __future__ import annotations

from .gaussian import GaussianMixture
from .toys import _real

__all__ = ["outliers_1d", "mixture_p_1d", "mixture_q_1d"]


def outliers_1d(outlier_fraction: float = 0.01, inlier_mean: float = 1.0, outlier_mean: float = -1.0,
                std: float = 0.1) -> GaussianMixture:
    """(1 − p)·N(inlier_mean, std²) + p·N(outlier_mean, std²): the UOTM outlier toy (p = 1 %)."""
    p = _real("outlier_fraction", outlier_fraction, low=0.0, high=1.0, high_open=True)
    std = _real("std", std, low=0.0, low_open=True)
    means = [[_real("inlier_mean", inlier_mean)], [_real("outlier_mean", outlier_mean)]]
    if p == 0.0:
        return GaussianMixture([1.0], means[:1], [[[std**2]]])
    return GaussianMixture([1.0 - p, p], means, [[[std**2]], [[std**2]]])


def mixture_p_1d() -> GaussianMixture:
    """½ N(1, 0.5²) + ½ N(−1, 0.5²): the source p of UOTM's 1-D map toy."""
    return GaussianMixture([0.5, 0.5], [[1.0], [-1.0]], [[[0.25]], [[0.25]]])


def mixture_q_1d() -> GaussianMixture:
    """⅔ N(2, 0.5²) + ⅓ N(−1, 0.5²): the target q of UOTM's 1-D map toy."""
    return GaussianMixture([2.0 / 3.0, 1.0 / 3.0], [[2.0], [-1.0]], [[[0.25]], [[0.25]]])
