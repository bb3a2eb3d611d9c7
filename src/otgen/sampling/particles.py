"""Persistent weighted particles: EgNOT's training negatives as a sequential Monte Carlo sampler
whose sequence of targets is the training itself.

Each point x of a finite source pool carries N particles y_i with log-weights log w_i, the value
u_old,i of the log-density they were last weighted for, and a MALA step eta. When x is visited
again the potential has changed from f_old to f; the particles are reweighted by

    log w_i += u(y_i) − u_old,i,          u = (f − c(x, ·)) / eps

(the ratio of the new target to the old one at the same point: the cost cancels, and this is the
incremental weight of an SMC sampler whose targets are pi_{f_t}), resampled within x when the ESS
falls below ``resample_below``·N, and moved by MALA moves that leave pi_f invariant. New particles
are draws of a base q0 weighted for q0 (u_old = log q0), so their first visit weights them by
exp(u − log q0): for the quadratic cost q0 is the cost's kernel and this is exp(f/eps), i.e. exact
draws of pi while f = 0. The weights move mass between particles sitting in different modes, which
the moves alone cannot; expectations under pi(·|x) are weighted means over the particles.

Reweighting cannot create mass where a point has no particle: if all N particles of x sit in one
mode, that mode keeps the whole weight however f changes. ``step(..., refresh, n_refresh)`` replaces
the particles of visited points by fresh draws of the current target (EgNOT: a short tempered SMC
from the kernel, every ``refresh_every`` iterations), which restores the weights of every mode.

In a K-process run every process keeps the whole pool, works on its rows of one global pick of
pool points and stores the rows of every process (``otgen.shard``), as ``PersistentChains`` does.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch

from .. import shard
from ..checks import check_number
from .mala import mala_moves
from .smc import (GaussianBase, TemperedSMC, ess_fraction, finite_or_minus_inf, normalised_log_weights,
                  systematic_resample)

# log_density_for(x_rows) -> log_density(y, need_value) -> (u (n,), grad_u)
LogDensityFor = Callable[[torch.Tensor], Callable]
# base_for(x_rows) -> GaussianBase of the rows
BaseFor = Callable[[torch.Tensor], GaussianBase]
# refresh(x_rows (k, *source_shape)) -> equally weighted draws (k, N, *event_shape) of the current target
Refresh = Callable[[torch.Tensor], torch.Tensor]


@dataclass
class ParticleStats:
    """One visit: the mean ESS fraction after reweighting, the share of points resampled, MALA's
    acceptance rate and mean step: 0-d tensors on the particles' device, never read on the host
    here (``float(stats.ess_fraction)`` reads one)."""

    ess_fraction: torch.Tensor
    resampled: torch.Tensor
    acceptance_rate: torch.Tensor
    step_size: torch.Tensor


def _last_of_each(index: torch.Tensor, size: int) -> torch.Tensor:
    """For each position p of ``index`` (values in [0, size)), the position of the last occurrence of
    the value index[p] (p itself where it occurs once)."""
    position = torch.arange(index.shape[0], device=index.device)
    last = torch.full((size,), -1, dtype=position.dtype, device=index.device).scatter_reduce(0, index, position, "amax")
    return last[index]


class PersistentParticles:
    """N weighted particles per point of ``source`` (m, *source_shape); see the module docstring."""

    def __init__(self, base_for: BaseFor, source: torch.Tensor, particles: int, event_shape: tuple[int, ...],
                 generator: torch.Generator | None = None, resample_below: float = 0.5):
        if source.dim() < 2 or source.shape[0] < 1:
            raise ValueError(f"persistent particles need a finite source set (m, *shape), "
                             f"got shape {tuple(source.shape)}")
        m = source.shape[0]
        self.source, self.particles, self.event_shape = source, int(particles), tuple(event_shape)
        self.resample_below = float(resample_below)
        base = base_for(source.repeat_interleave(self.particles, 0))
        y = base.sample((m * self.particles, *self.event_shape), generator, source.dtype, source.device)
        self.y = y.view(m, self.particles, *self.event_shape)
        self.u_old = base.log_prob_and_grad(y)[0].view(m, self.particles)  # weighted for q0
        self.log_w = torch.zeros(m, self.particles, dtype=source.dtype, device=source.device)
        step = TemperedSMC.initial_step(base, math.prod(self.event_shape))
        self.eta = torch.full((m,), step, dtype=source.dtype, device=source.device)

    @torch.no_grad()
    def step(self, n: int, log_density_for: LogDensityFor, n_moves: int, generator: torch.Generator | None = None,
             refresh: Refresh | None = None, n_refresh: int = 0):
        """Visit ``n`` pool points (this process's rows of one global pick): reweight, resample,
        move. ``refresh(x_rows) -> y (k, N, *event_shape)``, equally weighted draws of the current
        target (a fresh tempered SMC), replaces the particles of the first ``n_refresh`` visited
        points (a random subset: the pick is random) before they are moved; ``n_refresh`` counts this
        process's rows (EgNOT passes all of them, which keeps a K-process run equal to one process). Returns (x
        (n, *source_shape), particles (n, N, *event_shape), normalised weights (n, N), stats)."""
        check_number("n_refresh", n_refresh, low=0, integer=True)
        idx, every = shard.pick(self.source.shape[0], n, generator=generator, device=self.source.device)
        x, N = self.source[idx], self.particles
        y = self.y[idx]
        log_w_then, u_then = self.log_w[idx], self.u_old[idx]
        k = min(n_refresh, n) if refresh is not None else 0
        if k:  # (indexing with idx copied the stored rows: these writes do not touch them)
            y[:k] = refresh(x[:k])
            log_w_then[:k] = 0.0
        y = y.reshape(n * N, *self.event_shape)
        log_density = log_density_for(x.repeat_interleave(N, 0))
        u, grad = log_density(y, True)
        if k:  # fresh draws are weighted for the current target already
            u_then[:k] = u.view(n, N)[:k]
        log_w = normalised_log_weights(log_w_then + finite_or_minus_inf(u.view(n, N) - u_then))
        ess = ess_fraction(log_w)
        resample = ess < self.resample_below
        pick = systematic_resample(log_w, generator)  # drawn every visit: the random stream stays in step
        pick = torch.where(resample[:, None], pick, torch.arange(N, device=pick.device).expand(n, N))
        rows = (pick + N * torch.arange(n, device=pick.device)[:, None]).reshape(-1)
        y, u, grad = y[rows], u[rows], grad[rows]
        log_w = torch.where(resample[:, None], torch.zeros_like(log_w), log_w)

        def path(z):
            value, g = log_density(z, True)
            return value, g, ()

        y, (u, _, _), eta, moves = mala_moves(path, y, (u, grad, ()), self.eta[idx], n_moves, generator)
        y = y.view(n, N, *self.event_shape)
        # a point picked twice (a global batch larger than the pool) keeps its last copy, all fields alike:
        # every copy writes the last one's values (so the repeated writes agree, and no boolean mask
        # picks the rows: that would read the mask on the host)
        last = _last_of_each(every, self.source.shape[0])
        self.y[every] = shard.gather(y)[last]
        self.log_w[every] = shard.gather(log_w)[last]
        self.u_old[every] = shard.gather(u.view(n, N))[last]  # from now on weighted for this potential
        self.eta[every] = shard.gather(eta)[last]
        stats = ParticleStats(ess.mean(), resample.to(ess.dtype).mean(), moves.acceptance_rate, moves.step_size)
        return x, y, torch.softmax(log_w, dim=1), stats

    @classmethod
    def restored(cls, state: dict) -> "PersistentParticles":
        """Particles continued from ``state_dict()``."""
        p = cls.__new__(cls)
        p.load_state_dict(state)
        return p

    def state_dict(self) -> dict:
        return {"source": self.source.clone(), "y": self.y.clone(), "log_w": self.log_w.clone(),
                "u_old": self.u_old.clone(), "eta": self.eta.clone(), "resample_below": self.resample_below}

    def load_state_dict(self, state: dict) -> None:
        missing = {"source", "y", "log_w", "u_old", "eta"} - set(state)
        if missing:
            raise ValueError(f"the saved chains are not weighted particles (no {sorted(missing)}): they were "
                             f"written by sampler='langevin'; pass sampler='langevin' to continue them")
        # keep the particles where they live; restored ones go where the checkpoint put them
        device = self.source.device if hasattr(self, "source") else state["source"].device
        self.source = state["source"].to(device)
        self.y = state["y"].to(device)
        self.log_w = state["log_w"].to(device)
        self.u_old = state["u_old"].to(device)
        self.eta = state["eta"].to(device)
        self.resample_below = float(state["resample_below"])
        self.particles, self.event_shape = self.y.shape[1], tuple(self.y.shape[2:])
