"""Kernel two-sample statistics that can be trained through: the MMD penalties of WAE-MMD.

Everything here is differentiable torch on the inputs' device and dtype (``metrics.mmd`` is the
float64 evaluator with the same RBF convention; this module is what a loss calls).

Kernels, on batches x (n, D), y (m, D):

* inverse multiquadratic (IMQ), WAE's choice:  k(x, y) = C / (C + ‖x − y‖²), heavy-tailed, so codes far
  from the prior still get a gradient. WAE takes C = 2·d·σ² for a prior N(0, σ² I_d) (the expected
  squared distance of two prior draws) and, in its official code, sums the MMD² over the widths
  C·s, s in ``WAE_SCALES``.
* Gaussian RBF: k(x, y) = exp(−‖x − y‖² / (2ℓ²)), the kernel of ``groundtruth.gaussian_rbf_mmd2``
  (its closed form between two Gaussians) and ``metrics.mmd``.

The estimator is the unbiased U-statistic (wae.md §3)

    MMD²_U = Σ_{i≠j} k(x_i, x_j)/(n(n−1)) + Σ_{i≠j} k(y_i, y_j)/(m(m−1)) − 2 Σ_{i,j} k(x_i, y_j)/(nm),

whose mean over draws is the population MMD² exactly (0 between equal laws); one draw can be < 0.
"""

from __future__ import annotations

from typing import Callable, Sequence

import torch

__all__ = ["WAE_SCALES", "sq_dists", "imq_kernel", "rbf_kernel", "mmd2_u", "imq_mmd2", "rbf_mmd2"]

#: the widths (multiples of the base C) whose IMQ-MMD² the official WAE code sums
WAE_SCALES = (0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0)

Kernel = Callable[[torch.Tensor], torch.Tensor]  # squared distances -> kernel values, elementwise


def sq_dists(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """(n, m) matrix of ‖x_i − y_j‖² for x (n, D), y (m, D), clamped at 0 (rounding)."""
    d = (x * x).sum(1)[:, None] + (y * y).sum(1)[None, :] - 2.0 * x @ y.T
    return d.clamp_min(0.0)


def imq_kernel(c: float) -> Kernel:
    """k = C / (C + ‖x − y‖²) as a function of the squared distance; C > 0."""
    if not c > 0:
        raise ValueError(f"the IMQ constant C must be > 0, got {c!r}")
    return lambda d2: c / (c + d2)


def rbf_kernel(bandwidth: float) -> Kernel:
    """k = exp(−‖x − y‖² / (2ℓ²)) as a function of the squared distance; ℓ = ``bandwidth`` > 0."""
    if not bandwidth > 0:
        raise ValueError(f"bandwidth must be > 0, got {bandwidth!r}")
    gamma = 1.0 / (2.0 * float(bandwidth) ** 2)
    return lambda d2: torch.exp(-gamma * d2)


def _check_pair(x: torch.Tensor, y: torch.Tensor) -> None:
    if x.ndim != 2 or y.ndim != 2 or x.shape[1] != y.shape[1]:
        raise ValueError(f"x and y must be (n, D) and (m, D) with one D, got {tuple(x.shape)} and {tuple(y.shape)}")
    if x.shape[0] < 2 or y.shape[0] < 2:
        raise ValueError(f"the U-statistic needs at least 2 points on each side, got {x.shape[0]} and {y.shape[0]}")


def mmd2_u(x: torch.Tensor, y: torch.Tensor, kernels: Sequence[Kernel]) -> torch.Tensor:
    """Σ over ``kernels`` of the unbiased MMD² between the laws of x (n, D) and y (m, D): a 0-d Tensor
    with the graph of x and y kept (a sum of positive-definite kernels is one)."""
    _check_pair(x, y)
    n, m = x.shape[0], y.shape[0]
    dxx, dyy, dxy = sq_dists(x, x), sq_dists(y, y), sq_dists(x, y)
    total = x.new_zeros(())
    for k in kernels:
        kxx, kyy = k(dxx), k(dyy)
        total = total + ((kxx.sum() - kxx.diagonal().sum()) / (n * (n - 1))  # i ≠ j: drop the diagonal
                         + (kyy.sum() - kyy.diagonal().sum()) / (m * (m - 1))
                         - 2.0 * k(dxy).sum() / (n * m))
    return total


def imq_mmd2(x: torch.Tensor, y: torch.Tensor, c: float, scales: Sequence[float] = WAE_SCALES) -> torch.Tensor:
    """WAE's penalty: Σ_s MMD²_U with the IMQ kernel of constant C·s (``scales=(1,)``: one kernel)."""
    if not scales:
        raise ValueError("scales must hold at least one width multiplier")
    return mmd2_u(x, y, [imq_kernel(c * float(s)) for s in scales])


def rbf_mmd2(x: torch.Tensor, y: torch.Tensor, bandwidth: float) -> torch.Tensor:
    """MMD²_U with the Gaussian RBF kernel of bandwidth ℓ (``groundtruth.gaussian_rbf_mmd2``'s)."""
    return mmd2_u(x, y, [rbf_kernel(bandwidth)])
