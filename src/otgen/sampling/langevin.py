"""Langevin dynamics for an unnormalised log-density u(y) = log p(y) + const.

Textbook unadjusted Langevin (ULA) with step size eta:

    y <- y + (eta / 2) * grad u(y) + sqrt(eta) * xi,        xi ~ N(0, I)

For EgNOT, u(y) = (f(y) - c(x, y)) / eps, which gives the update of the paper,
y <- y + (eta / (2 eps)) * grad_y (f(y) - c(x, y)) + sqrt(eta) * xi.

Options: a Metropolis correction (MALA: exact stationary law, the acceptance rate is reported),
per-sample clipping of the drift's norm, and geometric step annealing (eta_k = eta * decay**k).
Chains are updated in place; there is no Python work per sample, and no tensor value is read on the
host (the statistics stay 0-d tensors on the chains' device: no device sync per step).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch

from .. import shard
from ..checks import check_number
from .mala import metropolis_accept, row_mask

# log_density(y, need_value) -> (u (n,) or None, grad_u shaped like y)
LogDensity = Callable[[torch.Tensor, bool], tuple]


@dataclass
class LangevinStats:
    """What one run of the sampler did: steps taken, final step size, MALA acceptance rate
    (the float 1.0 for ULA), and the mean per-sample norm of the last drift. The measured ones are
    0-d tensors on the chains' device (``float(stats.drift_norm)`` reads one on the host)."""

    n_steps: int
    final_step_size: float
    acceptance_rate: torch.Tensor | float
    drift_norm: torch.Tensor


class LangevinSampler:
    """ULA / MALA sampler.

    Args:
        step_size: eta > 0 (the variance of the injected noise per step).
        n_steps: number of steps K >= 0.
        metropolis: accept/reject each proposal (MALA) so the chain targets exp(u) exactly.
        clip: if set, the drift (eta/2)·grad u of each sample is scaled down to at most this norm.
        decay: per-step multiplier of eta (1.0: constant step; < 1 anneals).
    """

    def __init__(self, step_size: float, n_steps: int, metropolis: bool = False,
                 clip: float | None = None, decay: float = 1.0):
        check_number("step_size", step_size, low=0, low_open=True)
        check_number("n_steps", n_steps, low=0, integer=True)
        if clip is not None:
            check_number("clip", clip, low=0, low_open=True)
        check_number("decay", decay, low=0, low_open=True, high=1)
        self.step_size = float(step_size)
        self.n_steps = n_steps
        self.metropolis = bool(metropolis)
        self.clip = clip
        self.decay = float(decay)

    def _drift(self, grad: torch.Tensor, eta: float) -> torch.Tensor:
        drift = grad.mul(0.5 * eta)
        if self.clip is not None:
            norm = drift.reshape(drift.shape[0], -1).norm(dim=1).clamp_min(1e-12)
            scale = (self.clip / norm).clamp(max=1.0)
            drift.mul_(scale.view(-1, *([1] * (drift.dim() - 1))))
        return drift

    @torch.no_grad()
    def run(self, log_density: LogDensity, y: torch.Tensor, generator: torch.Generator | None = None,
            n_steps: int | None = None) -> tuple[torch.Tensor, LangevinStats]:
        """Run the chains from ``y`` (n, *shape); returns (final states, stats). ``y`` is not modified.

        ``log_density(y, need_value)`` returns ``(u(y) or None, grad u(y))``; the value is asked for
        only by the Metropolis correction.
        """
        n_steps = self.n_steps if n_steps is None else n_steps
        y = y.detach().clone()
        if self.metropolis:
            return self._run_mala(log_density, y, generator, n_steps)
        eta = self.step_size
        drift = torch.zeros_like(y)
        for k in range(n_steps):
            if k:
                eta *= self.decay
            _, grad = log_density(y, False)
            drift = self._drift(grad, eta)
            noise = shard.randn(y.shape, generator=generator, dtype=y.dtype, device=y.device)
            y.add_(drift).add_(noise, alpha=math.sqrt(eta))
        return y, LangevinStats(n_steps, eta, 1.0, self._mean_norm(drift))

    @staticmethod
    def _mean_norm(drift: torch.Tensor) -> torch.Tensor:
        """The mean per-sample norm of ``drift`` (n, ...), a 0-d tensor (0 for no samples)."""
        if not drift.numel():
            return torch.zeros((), dtype=drift.dtype, device=drift.device)
        return drift.reshape(drift.shape[0], -1).norm(dim=1).mean()

    def _run_mala(self, log_density, y, generator, n_steps):
        eta = self.step_size
        u, grad = log_density(y, True)
        drift = self._drift(grad, eta)
        accepted = torch.zeros((), dtype=y.dtype, device=y.device)  # summed on the device: no host read per step
        for k in range(n_steps):
            if k and self.decay != 1.0:
                eta *= self.decay
                _, grad = log_density(y, False)
                drift = self._drift(grad, eta)
            noise = shard.randn(y.shape, generator=generator, dtype=y.dtype, device=y.device)
            proposal = y + drift + math.sqrt(eta) * noise
            u_new, grad_new = log_density(proposal, True)
            drift_new = self._drift(grad_new, eta)
            # log q(y | y') - log q(y' | y) for Gaussian proposals of variance eta
            back = (y - proposal - drift_new).reshape(y.shape[0], -1).pow(2).sum(1)
            fwd = noise.reshape(y.shape[0], -1).pow(2).sum(1) * eta
            log_alpha = u_new - u + (fwd - back) / (2 * eta)
            accept = metropolis_accept(log_alpha, generator)
            mask = row_mask(accept, y)
            y = torch.where(mask, proposal, y)
            u = torch.where(accept, u_new, u)
            drift = torch.where(mask, drift_new, drift)
            accepted += accept.to(y.dtype).mean()
        rate = accepted / n_steps if n_steps else accepted.fill_(1.0)
        return y, LangevinStats(n_steps, eta, rate, self._mean_norm(drift))
