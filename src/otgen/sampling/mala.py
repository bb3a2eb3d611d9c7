"""Metropolis-adjusted Langevin moves with a step adapted to the acceptance rate, for groups of chains.

The chains of one tensor (G·N, *shape) come in G groups of N consecutive rows (the particles of
one conditioning point x); each group has its own step eta_g. A call makes ``n_moves`` moves with
the steps fixed, so that they leave the target invariant, and then (with ``adapt``) updates each
group's step once from the mean acceptance probability of those moves, towards ``target_accept``
(0.574, the optimal rate of MALA in high dimension, Roberts & Rosenthal 1998):

    log eta_g <- log eta_g + gain · (mean acceptance probability of group g − target_accept).

With ``every_move`` the step is updated after each move instead (gain ``MOVE_GAIN``), which tracks a
target that changes quickly, as while tempering; either way the update uses the mean over the
group's N particles, never one chain's own acceptance, which would tie its step to where it stands
and bias the draws. A sampler that adapts after every move should end with fixed-step moves, as
``TemperedSMC`` does (its last ``1 − anneal_fraction`` of the moves). A step too
large for the local curvature is rejected and then shrunk, so the chains cannot diverge, whatever
eps: the step follows the energy rather than a fixed multiple of eps. Proposals whose
log-density or gradient is not finite are rejected.

Proposal: y' = y + (eta/2)·∇l(y) + sqrt(eta)·ξ (the parametrisation of ``langevin.py``).

Nothing here reads a tensor value on the host: the moves, the adaptation and the statistics stay on
the chains' device (no device sync per move).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch

from .. import shard

# log_density(y) -> (l (n,), grad_l shaped like y, aux): aux is a tuple of per-row tensors (n, ...)
# that the caller wants carried along with the accepted states (e.g. the parts of a tempered density)
PathDensity = Callable[[torch.Tensor], tuple]

TARGET_ACCEPT = 0.574
ADAPT_GAIN = 2.0  # per block of moves
MOVE_GAIN = 1.0   # per move (every_move)
MIN_STEP, MAX_STEP = 1e-12, 1e6


@dataclass
class MoveStats:
    """What some MALA moves did: how many, the mean acceptance probability, the mean step (0-d
    tensors on the chains' device; ``float(stats.step_size)`` reads one on the host)."""

    n_moves: int
    acceptance_rate: torch.Tensor
    step_size: torch.Tensor


def _rows(per_group: torch.Tensor, n: int, like: torch.Tensor) -> torch.Tensor:
    """(G,) -> (G·n, 1, ..., 1) broadcastable against ``like``."""
    return per_group.repeat_interleave(n).view(-1, *([1] * (like.dim() - 1)))


def metropolis_accept(log_alpha: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Accept each row's proposal with probability min(1, exp(log_alpha)): (n,) bool, one uniform per
    row drawn through ``otgen.shard`` (the processes of a distributed run draw alike)."""
    uniform = shard.rand(log_alpha.shape, generator=generator, dtype=log_alpha.dtype, device=log_alpha.device)
    return torch.log(uniform) < log_alpha


def row_mask(rows: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """A per-row flag (n,) shaped to broadcast against ``like`` (n, ...)."""
    return rows.view(-1, *([1] * (like.dim() - 1)))


def _adapted(eta, rate, gain, target_accept, mask):
    """log eta + gain·(rate − target_accept) where ``mask`` (a bool, or a bool per group), clamped to
    [MIN_STEP, MAX_STEP]."""
    new = (eta.log() + gain * (rate - target_accept)).exp().clamp(MIN_STEP, MAX_STEP)
    if isinstance(mask, bool):  # a Python flag: no tensor made from it (a host-to-device copy per move)
        return new if mask else eta
    return torch.where(mask, new, eta)


def _flat_sq(t: torch.Tensor) -> torch.Tensor:
    return t.reshape(t.shape[0], -1).pow(2).sum(1)


@torch.no_grad()
def mala_moves(log_density: PathDensity, y: torch.Tensor, state: tuple, eta: torch.Tensor, n_moves: int,
               generator: torch.Generator | None = None, adapt: bool | torch.Tensor = True,
               target_accept: float = TARGET_ACCEPT,
               every_move: bool = False) -> tuple[torch.Tensor, tuple, torch.Tensor, MoveStats]:
    """``n_moves`` MALA moves of the chains ``y`` (G·N, *shape) in G groups of N rows, with the
    groups' steps ``eta`` (G,) fixed; then, where ``adapt`` (a bool, or one per group), the steps are
    updated from the moves' acceptance. ``every_move``: update after each move instead, from that
    move's group mean (faster tracking of a changing target, as while tempering; the step then
    depends on the group's current states, so finish with fixed-step moves).

    ``state = (l, grad, aux)`` is ``log_density(y)`` at the current states (so it is not recomputed).
    Returns (states, their state, the updated eta, stats). Every move costs one evaluation of
    ``log_density``.
    """
    groups = eta.shape[0]
    n = y.shape[0] // groups if groups else 0
    value, grad, aux = state
    prob_sum = torch.zeros(y.shape[0], dtype=y.dtype, device=y.device)
    adapt_mask = adapt if isinstance(adapt, bool) else torch.as_tensor(adapt, device=eta.device)
    eta_r = _rows(eta, n, y)
    for _ in range(n_moves):
        noise = shard.randn(y.shape, generator=generator, dtype=y.dtype, device=y.device)
        proposal = y + 0.5 * eta_r * grad + eta_r.sqrt() * noise
        value_new, grad_new, aux_new = log_density(proposal)
        # log q(y | y') − log q(y' | y) for Gaussian proposals of variance eta
        back = _flat_sq(y - proposal - 0.5 * eta_r * grad_new)
        log_alpha = value_new - value + (_flat_sq(noise) * eta_r.flatten() - back) / (2 * eta_r.flatten())
        finite = torch.isfinite(log_alpha) & torch.isfinite(_flat_sq(grad_new))
        log_alpha = torch.where(finite, log_alpha, torch.full_like(log_alpha, -math.inf))
        accept = metropolis_accept(log_alpha, generator)
        mask = row_mask(accept, y)
        y = torch.where(mask, proposal, y)
        value = torch.where(accept, value_new, value)
        grad = torch.where(mask, grad_new, grad)
        aux = tuple(torch.where(row_mask(accept, a), a_new, a) for a, a_new in zip(aux, aux_new))
        prob = log_alpha.clamp(max=0).exp()  # acceptance probability: a less noisy signal than accept
        prob_sum += prob
        if every_move and groups:
            eta = _adapted(eta, prob.view(groups, n).mean(1), MOVE_GAIN, target_accept, adapt_mask)
            eta_r = _rows(eta, n, y)
    rate = prob_sum.view(groups, n).mean(1) / max(n_moves, 1) if groups else prob_sum
    if n_moves and groups and not every_move:  # this process's own groups: no exchange needed
        eta = _adapted(eta, rate, ADAPT_GAIN, target_accept, adapt_mask)
    mean_rate = rate.mean() if n_moves and groups else torch.ones((), dtype=y.dtype, device=y.device)
    stats = MoveStats(n_moves, mean_rate, eta.mean() if groups else torch.zeros((), dtype=y.dtype, device=y.device))
    return y, (value, grad, aux), eta, stats
