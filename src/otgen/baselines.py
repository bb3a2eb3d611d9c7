"""Baselines a user would pick instead of a neural solver, scored by the same code as the solvers.

* :class:`DiscreteEntropicPlan`: POT's Sinkhorn plan between n source and n target samples, with
  the plan's natural out-of-sample extension.
* :func:`trivial_samplers`: predictors that ignore most of the problem (independent coupling,
  conditional mean, constant), each a conditional sampler ``f(x, n_per_x) -> (n, n_per_x, D)``.

Pure math on samples (numpy/torch/POT): no training, nothing above this layer is imported.
"""

from __future__ import annotations

import math
import numbers
import warnings
from typing import Callable

import numpy as np
import torch

from .checks import as_points
from .groundtruth.conventions import eps_to_pot_reg

__all__ = ["DiscreteEntropicPlan", "trivial_samplers"]


# Plain Sinkhorn (scalings u, v and the kernel exp(−M/reg)) where max(M)/reg is at most this: the
# kernel's entries stay above e^−300 and the scalings below e^300, well inside float64. It converges
# in the same iterations as the log-domain form, each a matrix-vector product instead of a
# log-sum-exp over all n·m entries (6 s against 110 s for the demo's 4000 × 4000 at eps = 0.1).
KERNEL_SPAN_LIMIT = 300.0


def _sinkhorn(a, b, M, reg, method, max_iter, tol):
    import ot

    with warnings.catch_warnings():  # non-convergence is reported by marginal_error instead
        warnings.simplefilter("ignore")
        return ot.sinkhorn(a, b, M, reg=reg, method=method, numItermax=max_iter, stopThr=tol, log=True)


class DiscreteEntropicPlan:
    """The entropic plan between two empirical measures (POT Sinkhorn), as a conditional sampler.

    Solves EOT_eps between the uniform empirical measures of ``x`` (n, D) and ``y`` (m, D) with
    cost ½‖x − y‖² (POT ``reg = eps`` with ``M = ½ ot.dist``; plain Sinkhorn where
    max(M)/reg <= ``KERNEL_SPAN_LIMIT``, log-domain Sinkhorn otherwise), and keeps the target dual
    potential g. For any x (in-sample or not) the conditional plan is the row

        pi(y_j | x) ∝ exp((g_j − ½‖x − y_j‖²) / eps),        j = 1..m,

    which for a source sample x_i equals row i of the Sinkhorn plan (normalised; to the solver's
    tolerance) and for other x is the plan's entropic extension (Pooladian & Niles-Weed 2021).
    :meth:`sample` draws from these rows (so draws lie on the m target samples);
    :meth:`transport` returns the rows' barycentres Σ_j pi(y_j | x) y_j (the entropic map; the
    barycentric extension of the plan).

    Args:
        x: (n, D) source samples; y: (m, D) target samples (tensors or arrays).
        eps: Skoltech regularisation strength, > 0.
        max_iter, tol: Sinkhorn iteration cap and POT's stopping threshold. Whether it converged is in
            ``marginal_error``: the L1 error of the plan's target marginal (its source marginal is
            exact after the last row update).
    """

    def __init__(self, x, y, eps: float, max_iter: int = 3000, tol: float = 1e-7):
        import ot

        if isinstance(eps, bool) or not isinstance(eps, numbers.Real) or not math.isfinite(eps) or eps <= 0:
            raise ValueError(f"eps must be a positive finite number (0 < eps < inf), got {eps!r}")
        xs, ys = as_points("x", x), as_points("y", y)
        if xs.shape[1] != ys.shape[1]:
            raise ValueError(f"x and y must have the same dimension, got {xs.shape[1]} and {ys.shape[1]}")
        self.eps = float(eps)
        # POT on torch tensors (its torch backend): multithreaded log-sum-exp, ~10x numpy's at n = 2000
        xt, yt = torch.from_numpy(xs), torch.from_numpy(ys)
        M = 0.5 * ot.dist(xt, yt)
        a = torch.full((len(xs),), 1.0 / len(xs), dtype=torch.float64)
        b = torch.full((len(ys),), 1.0 / len(ys), dtype=torch.float64)
        reg = eps_to_pot_reg(self.eps, cost="half_sqeuclidean")  # = eps for M = ½ ot.dist
        plan, log_v = None, None
        if float(M.max()) / reg <= KERNEL_SPAN_LIMIT:
            plan, log = _sinkhorn(a, b, M, reg, "sinkhorn", max_iter, tol)
            v = log["v"]
            if bool(torch.isfinite(plan).all()) and bool((torch.isfinite(v) & (v > 0)).all()):
                log_v = v.log()
        if log_v is None:  # the kernel exp(−M/reg) under- or overflows: the log-domain iterations
            plan, log = _sinkhorn(a, b, M, reg, "sinkhorn_log", max_iter, tol)
            log_v = log["log_v"]
        self.plan = plan.numpy()  # (n, m) float64
        self.marginal_error = float((plan.sum(0) - b).abs().sum())  # L1; the row marginals are exact
        self._g = reg * log_v  # (m,) target dual potential
        self._y = yt

    def _row_logits(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 2 or x.shape[1] != self._y.shape[1]:
            raise ValueError(f"x must have shape (n, {self._y.shape[1]}), got {tuple(x.shape)}")
        sq = torch.cdist(x.detach().cpu().double(), self._y) ** 2
        return (self._g[None] - 0.5 * sq) / self.eps

    def sample(self, x: torch.Tensor, n_per_x: int = 1, *, rng: torch.Generator | None = None) -> torch.Tensor:
        """Draws from the plan's rows: (n, D) -> (n, n_per_x, D) float32 on x's device (the solvers'
        ``sample`` contract; ``rng``: a ``torch.Generator``)."""
        if isinstance(n_per_x, bool) or not isinstance(n_per_x, numbers.Integral) or n_per_x < 1:
            raise ValueError(f"n_per_x must be a positive int, got {n_per_x!r}")
        probs = torch.softmax(self._row_logits(x), dim=1)
        idx = torch.multinomial(probs, int(n_per_x), replacement=True, generator=rng)
        return self._y[idx].to(device=x.device, dtype=torch.float32)

    def transport(self, x: torch.Tensor) -> torch.Tensor:
        """Barycentric projection Σ_j pi(y_j | x) y_j: (n, D) -> (n, D) float32 on x's device."""
        return (torch.softmax(self._row_logits(x), dim=1) @ self._y).to(device=x.device, dtype=torch.float32)


def trivial_samplers(pair, seed: int = 0) -> dict[str, Callable]:
    """Conditional samplers that ignore part of the problem, for a pair with known conditionals.

    Returns a dict of callables ``f(x, n_per_x) -> (n, n_per_x, D)`` float32:

    * ``"independent"``: y ~ Q ignoring x (draws from ``pair.target``, seeded).
    * ``"conditional_mean"``: the exact E[y | x], deterministic (``pair.conditional_moments``).
    * ``"constant"``: E[y] for every x (``pair.target_mean``), deterministic.

    ``pair`` needs ``target`` (a sampler), ``target_mean`` and ``conditional_moments(x)``; ``seed``
    seeds the independent coupling's draws.
    """
    gen = torch.Generator().manual_seed(seed)

    def independent(x: torch.Tensor, n_per_x: int) -> torch.Tensor:
        y = pair.target(x.shape[0] * n_per_x, generator=gen)
        return y.reshape(x.shape[0], n_per_x, -1).to(x.device)

    def conditional_mean(x: torch.Tensor, n_per_x: int) -> torch.Tensor:
        mean, _ = pair.conditional_moments(x)
        return mean[:, None, :].expand(-1, n_per_x, -1).float()

    def constant(x: torch.Tensor, n_per_x: int) -> torch.Tensor:
        mean = torch.as_tensor(np.asarray(pair.target_mean), dtype=torch.float32, device=x.device)
        return mean.expand(x.shape[0], n_per_x, -1).clone()

    return {"independent": independent, "conditional_mean": conditional_mean, "constant": constant}
