"""Tempered sequential Monte Carlo (annealed importance sampling with resampling) for EgNOT's plans.

Target, per conditioning point x: pi(y) ∝ exp(u(y)), u(y) = (f(y) − c(x, y)) / eps. Base: a Gaussian
q0 that can be drawn exactly. The path between them is geometric,

    log pi_beta(y) = log q0(y) + beta · g(y),      g = u − log q0,      beta: 0 -> 1,

For the quadratic cost q0 is the cost's own kernel N(x, (eps/curvature)·I), so g = f/eps and the
path is "the kernel times exp(beta·f/eps)": exact draws at beta = 0, the plan at beta = 1. For any
other cost (a generator's latent space, a custom cost) q0 is the chains' noise start N(0, s²I) and
the same formula is the textbook geometric path q0^(1−beta)·exp(beta·u).

Each of the G groups (one per x) holds N particles with log-weights. A level (Del Moral, Doucet &
Jasra 2006; Neal 2001):

1. choose the group's next beta by bisection so that the conditional ESS of the incremental weights
   exp(dbeta·g) stays at ``cess_target``·N (bounded below so that beta reaches 1 within the budget);
2. multiply the weights by exp(dbeta·g) at the current particles (no network evaluation: g is
   known from the last move);
3. resample (systematic, within the group) when the ESS (Σw)²/Σw² falls below ``resample_below``·N;
4. move every particle by ``moves_per_level`` MALA moves that leave pi_beta invariant
   (``mala.mala_moves``); the group's step adapts after every move to the group's mean acceptance
   rate (adaptive SMC: the kernel's step is chosen from the population).

The weights carry mass between separated modes, which local moves cannot. When a group reaches
beta = 1 its particles are resampled to equal weights and the remaining moves run at beta = 1; the
steps stop adapting after ``anneal_fraction`` of the moves, so the last moves are plain MALA with a
fixed step. With few particles per group (``transport`` uses 4) the draws carry the O(1/N) bias of
any self-normalised importance sampler.

Budget: ``n_steps`` MALA moves per particle, i.e. ``n_steps`` + 1 evaluations of f and ∇f per
particle (one at the base draws), as for the Langevin sampler with the same ``n_steps``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch

from .. import shard
from ..checks import check_number
from .mala import TARGET_ACCEPT, mala_moves

# log_density(y, need_value) -> (u (n,) or None, grad_u shaped like y): the sampler's form of langevin.py
LogDensity = Callable[[torch.Tensor, bool], tuple]


class GaussianBase:
    """q0(y) = N(y; mean, std²·I) row by row; ``mean``: (n, *shape) or None (zero mean)."""

    def __init__(self, std: float, mean: torch.Tensor | None = None):
        check_number("std", std, low=0, low_open=True)
        self.std = float(std)
        self.mean = mean

    def sample(self, shape: tuple[int, ...], generator=None, dtype=None, device=None) -> torch.Tensor:
        y = self.std * shard.randn(shape, generator=generator, dtype=dtype, device=device)
        return y if self.mean is None else y + self.mean

    def log_prob_and_grad(self, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """log q0(y) up to a constant, (n,), and its gradient, shaped like y."""
        d = y if self.mean is None else y - self.mean
        var = self.std**2
        return -0.5 * d.reshape(d.shape[0], -1).pow(2).sum(1) / var, -d / var


@dataclass
class SMCStats:
    """What one run did: levels until beta = 1 (mean over groups), resampling events per group, the
    mean ESS fraction before each resampling check, the MALA acceptance rate and final mean step.
    All but ``n_steps`` are 0-d tensors on the particles' device, never read on the host here
    (``float(stats.levels)`` reads one)."""

    n_steps: int
    levels: torch.Tensor
    resamples: torch.Tensor
    ess_fraction: torch.Tensor
    acceptance_rate: torch.Tensor
    final_step_size: torch.Tensor


def finite_or_minus_inf(t: torch.Tensor) -> torch.Tensor:
    """NaN and ±inf -> −inf (a particle whose density is not a number gets no weight)."""
    return torch.where(torch.isfinite(t), t, torch.full_like(t, -math.inf))


def normalised_log_weights(log_w: torch.Tensor) -> torch.Tensor:
    """log_w minus each group's largest entry; a group with no finite weight is reset to equal weights."""
    top = log_w.max(1, keepdim=True).values
    ok = torch.isfinite(top)
    return torch.where(ok, log_w - torch.where(ok, top, torch.zeros_like(top)), torch.zeros_like(log_w))


def ess_fraction(log_w: torch.Tensor) -> torch.Tensor:
    """(Σw)²/(N·Σw²) per group of log-weights (G, N): 1 for equal weights, 1/N for one particle."""
    w = torch.softmax(log_w, dim=1)
    return 1.0 / (w.pow(2).sum(1) * log_w.shape[1])


def systematic_resample(log_w: torch.Tensor, generator=None) -> torch.Tensor:
    """Indices (G, N) into each group's particles, drawn by systematic resampling of its weights."""
    groups, n = log_w.shape
    cdf = torch.softmax(log_w, dim=1).cumsum(1)
    cdf[:, -1] = 1.0  # guard against rounding: every u < 1 finds a particle
    u = (shard.rand((groups, 1), generator=generator, dtype=cdf.dtype, device=cdf.device)
         + torch.arange(n, dtype=cdf.dtype, device=cdf.device)) / n
    return torch.searchsorted(cdf, u).clamp_(max=n - 1)


def _next_beta(beta: torch.Tensor, log_w: torch.Tensor, g: torch.Tensor, cess_target: float,
               min_step: torch.Tensor, iters: int = 30) -> torch.Tensor:
    """Per group, the largest beta' in (beta, 1] whose incremental weights exp((beta' − beta)·g) keep
    the conditional ESS (Σ W·w)²/(Σ W·w²) >= cess_target, but at least beta + min_step."""
    w = torch.softmax(log_w, dim=1)
    room = 1.0 - beta
    g = torch.where(torch.isfinite(g), g, torch.full_like(g, -1e30))
    live = w > 0

    def cess(step):
        inc = step[:, None] * g  # shifted by its largest value among particles of positive weight
        inc = inc - torch.where(live, inc, torch.full_like(inc, -math.inf)).max(1, keepdim=True).values.clamp_min(-1e30)
        a = (w * inc.exp()).sum(1)
        b = (w * (2 * inc).exp()).sum(1)
        return a * a / b

    lo, hi = torch.zeros_like(beta), room.clone()
    ok_all = cess(hi) >= cess_target
    for _ in range(iters):
        mid = 0.5 * (lo + hi)
        good = cess(mid) >= cess_target
        lo = torch.where(good, mid, lo)
        hi = torch.where(good, hi, mid)
    step = torch.where(ok_all, room, lo)
    return torch.minimum(beta + torch.maximum(step, min_step), torch.ones_like(beta))


class TemperedSMC:
    """Tempered SMC sampler; see the module docstring.

    Args:
        n_steps: MALA moves per particle in all (the budget), >= 0.
        moves_per_level: MALA moves after each tempering level, >= 1.
        anneal_fraction: the largest share of ``n_steps`` spent on the way to beta = 1, in (0, 1];
            the rest is spent at beta = 1 (the bisection usually arrives sooner).
        cess_target: conditional-ESS fraction kept per level, in (0, 1).
        resample_below: resample a group when its ESS fraction falls below this, in (0, 1].
        target_accept: the MALA acceptance rate the step adapts to, in (0, 1).
    """

    def __init__(self, n_steps: int = 300, moves_per_level: int = 6, anneal_fraction: float = 0.8,
                 cess_target: float = 0.98, resample_below: float = 0.5, target_accept: float = TARGET_ACCEPT):
        check_number("n_steps", n_steps, low=0, integer=True)
        check_number("moves_per_level", moves_per_level, low=1, integer=True)
        check_number("anneal_fraction", anneal_fraction, low=0, low_open=True, high=1)
        check_number("cess_target", cess_target, low=0, low_open=True, high=1, high_open=True)
        check_number("resample_below", resample_below, low=0, low_open=True, high=1)
        check_number("target_accept", target_accept, low=0, low_open=True, high=1, high_open=True)
        self.n_steps = n_steps
        self.moves_per_level = moves_per_level
        self.anneal_fraction = float(anneal_fraction)
        self.cess_target = float(cess_target)
        self.resample_below = float(resample_below)
        self.target_accept = float(target_accept)

    @staticmethod
    def initial_step(base: GaussianBase, event_numel: int) -> float:
        """MALA's step for the base Gaussian itself: std²·min(1, 1.65²·d^(−1/3)) (Roberts & Rosenthal)."""
        return base.std**2 * min(1.0, 1.65**2 * event_numel ** (-1 / 3))

    @torch.no_grad()
    def run(self, log_density: LogDensity, base: GaussianBase, groups: int, particles: int,
            event_shape: tuple[int, ...], generator: torch.Generator | None = None, n_steps: int | None = None,
            dtype=torch.float32, device=None) -> tuple[torch.Tensor, SMCStats]:
        """Equally weighted draws (groups, particles, *event_shape) from the groups' targets.

        Row r = g·particles + i of ``log_density`` and of ``base`` belongs to group g.
        """
        n_steps = self.n_steps if n_steps is None else n_steps
        n = groups * particles
        y = base.sample((n, *event_shape), generator, dtype, device)
        if n == 0:
            zero, one = (torch.full((), v, dtype=dtype, device=y.device) for v in (0.0, 1.0))
            return y.reshape(groups, particles, *event_shape), SMCStats(n_steps, zero, zero, one, one, zero)

        def combine(beta_rows, u, lq, grad_u, grad_q):
            b = beta_rows.view(-1, *([1] * (grad_u.dim() - 1)))
            return lq + beta_rows * (u - lq), grad_q + b * (grad_u - grad_q), (u, lq, grad_u, grad_q)

        def path(beta_rows):
            def fn(z):
                u, grad_u = log_density(z, True)
                lq, grad_q = base.log_prob_and_grad(z)
                return combine(beta_rows, u, lq, grad_u, grad_q)
            return fn

        def at(beta_rows, state):  # the same particles under another beta: no new evaluation
            return combine(beta_rows, *state[2])

        beta = torch.zeros(groups, dtype=dtype, device=y.device)
        log_w = torch.zeros(groups, particles, dtype=dtype, device=y.device)
        eta = torch.full((groups,), self.initial_step(base, math.prod(event_shape)), dtype=dtype, device=y.device)
        state = path(beta.repeat_interleave(particles))(y)
        max_levels = max(1, int(self.anneal_fraction * n_steps) // self.moves_per_level)
        adapt_until = int(self.anneal_fraction * n_steps)  # then the steps stay fixed
        levels = torch.zeros(groups, dtype=dtype, device=y.device)
        resamples = torch.zeros_like(levels)
        # the statistics are summed on the device: nothing is read on the host
        ess_sum, ess_levels, accept_sum = (torch.zeros((), dtype=dtype, device=y.device) for _ in range(3))
        # The same number of levels and random draws whatever the data, so that the processes of a
        # distributed run draw in step (otgen.shard); every decision is per group. A level is computed
        # whether or not a group is still tempering (asking would read ``active`` on the host, a device
        # sync per level) and masked to what skipping it leaves: with no group active, beta, the
        # weights and the levels stay as they are (``any_active`` selects the old weights) and no
        # group resamples; the resampling numbers are drawn either way, as they always were.
        n_levels = max(1, math.ceil(n_steps / self.moves_per_level))
        for level in range(1, n_levels + 1):
            active = beta < 1
            any_active = active.any()
            u, lq = state[2][:2]
            g = (u - lq).view(groups, particles)
            min_step = (1.0 - beta) / max(1, max_levels - level + 1)
            new_beta = torch.where(active, _next_beta(beta, log_w, g, self.cess_target, min_step), beta)
            d_beta = (new_beta - beta)[:, None]
            new_log_w = normalised_log_weights(log_w + torch.where(d_beta > 0, d_beta * finite_or_minus_inf(g), 0.0))
            log_w = torch.where(any_active, new_log_w, log_w)
            beta = new_beta
            levels += active.to(dtype)
            ess = ess_fraction(log_w)
            # the mean over the active groups, counted at levels with one
            ess_sum += torch.where(active, ess, 0.0).sum() / active.sum().clamp_min(1)
            ess_levels += any_active.to(dtype)
            # resample when the weights degenerate, and once more on arrival at beta = 1 (equal weights)
            resample = active & ((ess < self.resample_below) | ((beta >= 1) & (ess < 1 - 1e-6)))
            y, state, log_w = self._resample(y, state, log_w, resample, generator)
            resamples += resample.to(dtype)
            moves = min(self.moves_per_level, n_steps - (level - 1) * self.moves_per_level)
            if moves > 0:
                beta_rows = beta.repeat_interleave(particles)
                state = at(beta_rows, state)
                adapt = (level - 1) * self.moves_per_level < adapt_until
                y, state, eta, mstats = mala_moves(path(beta_rows), y, state, eta, moves, generator, adapt=adapt,
                                                   target_accept=self.target_accept, every_move=True)
                accept_sum += mstats.acceptance_rate * moves
        ess_mean = torch.where(ess_levels > 0, ess_sum / ess_levels.clamp_min(1), 1.0)
        stats = SMCStats(n_steps, levels.mean(), resamples.mean(), ess_mean,
                         accept_sum / n_steps if n_steps else accept_sum.fill_(1.0), eta.mean())
        return y.reshape(groups, particles, *event_shape), stats

    @staticmethod
    def _resample(y, state, log_w, which, generator):
        """Resample the groups flagged in ``which`` (G,) and reset their weights."""
        groups, particles = log_w.shape
        idx = systematic_resample(log_w, generator)  # drawn even when unused: the random stream stays in step
        keep = torch.arange(particles, device=idx.device).expand(groups, particles)
        idx = torch.where(which[:, None], idx, keep)
        rows = (idx + particles * torch.arange(groups, device=idx.device)[:, None]).reshape(-1)
        value, grad, aux = state
        state = (value[rows], grad[rows], tuple(a[rows] for a in aux))
        log_w = torch.where(which[:, None], torch.zeros_like(log_w), log_w)
        return y[rows], state, log_w
