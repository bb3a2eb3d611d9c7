"""UOTM: the semi-dual unbalanced OT generator (Choi, Choi, Kang, NeurIPS 2023).

Unbalanced OT between a source mu and the data nu with Csiszár penalties on both marginals,

    inf_pi  ∫ c dpi + D_Psi1(pi_0 | mu) + D_Psi2(pi_1 | nu),      c(x, y) = tau · reduce((x − y)²),

in its semi-dual form with a generator T(x, z) ≈ argmin_y [c(x, y) − v(y)] (uotm-sjko.md §1.1):

    potential v:  minimise  E_x Psi1*( v(T(x, z)) − c(x, T(x, z)) ) + E_y Psi2*( −v(y) ) + (r1/2) E_y ‖∇v(y)‖²
    generator T:  minimise  E_x [ c(x, T(x, z)) − v(T(x, z)) ]

Psi1*, Psi2* are the normalised conjugates of ``otgen.conjugates`` scaled as alpha·Psi*(s/alpha);
``linear`` on both sides is balanced OT (OTM). One cost object serves both losses (the original code
once used different factors in the two), and every per-sample quantity is checked to have shape (n,)
(the original toy code broadcast (n, 1) against (n, 1, 1) into an n × n matrix).

The cost is an ``otgen.costs.Cost``: by default ``SquaredEuclidean(scale=tau, reduce=cost_reduce)``;
any other cost c(x, y) -> (n,) differentiable in y (a callable, ``GeneratorCost(G)`` with a
generator T that outputs latents) plugs in through ``cost=``.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import torch
from torch import nn

from ..checks import check_shape, dim_or_event_shape
from ..conjugates import make_conjugate
from ..costs import Cost, SquaredEuclidean, make_cost
from ..schema import Anything, Choice, Number, Schema, Shape, Text
from .base import DEVICE, DIM, EMA_DECAY, EVENT_SHAPE, SEED, Solver, check_batch_size, frozen
from .semidual import (NETWORK_FIELDS, adam, build_map_networks, draw_noise, per_sample, push, r1_exclusions,
                       r1_penalty)

LR_SCHEDULES = ("constant", "cosine")
COST_REDUCTIONS = SquaredEuclidean.REDUCTIONS

SCHEMA = Schema("UOTM", {
    "dim": DIM, "tau": Number(low=0, low_open=True), "phi1": Text(),
    "phi2": Text(), "event_shape": EVENT_SHAPE, "source_shape": Shape(nullable=True),
    "cost": Anything("None (tau·reduce((x − y)²)), a Cost or a callable c(x, y) -> (n,)"),
    "alpha1": Number(low=0, low_open=True), "alpha2": Number(low=0, low_open=True),
    "cost_reduce": Choice(COST_REDUCTIONS), "noise_dim": Number(integer=True, low=0, nullable=True),
    **NETWORK_FIELDS, "n_critic": Number(integer=True, low=1),
    "ema": EMA_DECAY, "lr_schedule": Choice(LR_SCHEDULES),
    "seed": SEED, "device": DEVICE,
})


class UOTMSolver(Solver):
    """UOTM losses and update step (``otgen.UOTM`` adds ``fit``).

    Args:
        dim: dimension of source and target vectors (or give ``event_shape``).
        event_shape: shape of one sample, e.g. (1, 8, 8). ``dim=D`` means ``(D,)``.
        source_shape: shape of one source sample if it differs from the target's (a custom cost such
            as ``GeneratorCost``); defaults to ``event_shape``.
        tau: cost scale, > 0: c(x, y) = tau · reduce((x − y)²) (no ½; uotm-sjko.md §1.3).
        phi1, phi2: conjugates of the source and target penalties: "kl" (default), "chi", "softplus"
            or "linear" (a hard marginal; both "linear" is balanced OT).
        cost: None (the default cost above) or any ``Cost`` / callable c(x, y) -> (n,); tau and
            cost_reduce then stay at their defaults.
        alpha1, alpha2: their strengths, > 0 (alpha·Psi*(s/alpha)); larger is closer to balanced.
        cost_reduce: "sum" (default) or "mean" over coordinates.
        noise_dim: dimension of the generator's own noise z (default: the number of coordinates; 0: a
            deterministic map).
        generator, potential: the networks T(x, z) and v(y): a name of ``otgen.nn.registry`` ("mlp",
            default), a mapping ``{"name": "mlp", **kwargs}``, or a ``nn.Module`` (a generator module
            takes ``(x, z)`` and says its ``noise_shape``; without one it gets z = None).
        hidden, activation: widths and activation of both "mlp" networks.
        lr_g, lr_v, betas: Adam settings of the generator and the potential. grad_clip: max gradient
            norm of each update (None: off).
        n_critic: potential updates per generator update, >= 1 (each ``train_step`` updates v once
            and T every ``n_critic``-th step, so ``fit``'s ``n_iters`` counts potential updates).
        r1: weight gamma of the R1 penalty (gamma/2)·E‖∇_y v(y)‖² on real data (0: off).
        ema: decay of an EMA of the generator used by ``transport``/``sample`` (None: off).
        lr_schedule: "constant" or "cosine" (to 0 over ``fit``'s ``n_iters``), both networks.
        seed, device: as every solver.
    """

    name = "UOTM"
    schema = SCHEMA
    divergence_hint = ("Try a smaller learning rate, an R1 penalty (r1 > 0), a larger tau, or a conjugate that "
                       "grows more slowly than KL's exp (phi1/phi2 = 'softplus' or 'chi').")

    def __init__(self, dim: int | None = None, tau: float = 1.0, phi1: str = "kl", phi2: str = "kl", *,
                 event_shape: Sequence[int] | None = None, source_shape: Sequence[int] | None = None,
                 cost: Cost | Any = None, alpha1: float = 1.0, alpha2: float = 1.0, cost_reduce: str = "sum",
                 noise_dim: int | None = None, generator: str | dict | nn.Module | None = None,
                 potential: str | dict | nn.Module | None = None, hidden: Sequence[int] = (128, 128, 128),
                 activation: str = "silu", lr_g: float = 1e-4, lr_v: float = 1e-4,
                 betas: Sequence[float] = (0.5, 0.9), grad_clip: float | None = None, r1: float = 0.0,
                 n_critic: int = 1, ema: float | None = None, lr_schedule: str = "constant", seed: int = 0,
                 device: str | None = "cpu"):
        args = SCHEMA.arguments(locals())
        shape = dim_or_event_shape(dim, event_shape)
        source = shape if source_shape is None else check_shape("source_shape", source_shape)
        self.phi1, self.phi2 = make_conjugate(phi1, alpha1, "phi1"), make_conjugate(phi2, alpha2, "phi2")
        if cost is not None and (tau != 1.0 or cost_reduce != "sum"):
            raise ValueError(f"tau and cost_reduce define the default cost; with cost= leave them at 1.0 and 'sum', "
                             f"got tau={tau!r}, cost_reduce={cost_reduce!r}")
        args["noise_dim"] = noise_dim = math.prod(shape) if noise_dim is None else noise_dim
        super().__init__(seed=seed, device=device)

        self.event_shape, self.source_shape = shape, source
        self.dim = math.prod(shape)
        self.tau, self.cost_reduce = float(tau), cost_reduce
        self.cost = SquaredEuclidean(self.tau, cost_reduce) if cost is None else make_cost(cost)
        self.cost.check_shapes(source, shape)
        self.noise_dim = int(noise_dim)
        gen, pot = build_map_networks(generator, potential, source, shape, self.noise_dim, hidden, activation, seed)
        self.generator_net = self.add_network("generator_net", gen)
        self.potential = self.add_network("potential", pot)
        self.n_critic, self.r1, self.lr_schedule = int(n_critic), float(r1), lr_schedule
        self.ema = self.add_ema("ema", self.generator_net, ema)
        schedule = self.run_cosine if lr_schedule == "cosine" else None
        self.opt_g = self.add_optimizer("opt_g", adam("generator", self.generator_net, lr_g, args["betas"]), schedule=schedule,
                                        grad_clip=args["grad_clip"], ema=self.ema)
        self.opt_v = self.add_optimizer("opt_v", adam("potential", self.potential, lr_v, args["betas"]), schedule=schedule,
                                        grad_clip=args["grad_clip"])
        self.config = args

    # -- the map ---------------------------------------------------------------------------------
    def _noise(self, n: int, generator: torch.Generator) -> torch.Tensor | None:
        return draw_noise(self.generator_net, n, generator, self.device)

    @torch.no_grad()
    def transport(self, x: torch.Tensor, generator: torch.Generator | None = None,
                  batch_size: int | None = None) -> torch.Tensor:
        """T(x, z) with fresh z for every call: (n, *source_shape) -> (n, *event_shape). Uses the EMA
        weights if any. ``x``: a Tensor, array or list, cast to float32 on the model's device; an empty,
        non-finite or non-numeric x raises ValueError/TypeError naming x. ``batch_size``: at most that
        many x per network call (None: all at once), z drawn batch by batch (``semidual.push`` says
        when that gives one call's numbers); ValueError naming ``batch_size`` unless None or an int >= 1."""
        x = self._as_input("x", x, self.source_shape)
        batch_size = check_batch_size(batch_size)
        gen = self._sampling_generator(generator)
        net = self.ema.shadow if self.ema is not None else self.generator_net
        return push(net, x, gen, self.device, batch_size)

    # -- compilation -----------------------------------------------------------------------------
    def compile_exclusions(self) -> dict[str, str]:
        """The potential stays eager under ``compile`` when r1 > 0 (the R1 penalty's double backward)."""
        return r1_exclusions(self.r1)

    # -- training --------------------------------------------------------------------------------
    def expected_shapes(self):
        return self.source_shape, self.event_shape

    def potential_loss(self, x: torch.Tensor, y: torch.Tensor, y_fake: torch.Tensor) -> tuple[torch.Tensor, dict]:
        """E Psi1*(v(T) − c(x, T)) + E Psi2*(−v(y)) (+ R1 on y); T = y_fake is detached by the caller."""
        n, m = x.shape[0], y.shape[0]
        y = y.detach().requires_grad_(self.r1 > 0)
        v_real = per_sample("v(y)", self.potential(y), m)
        v_fake = per_sample("v(T(x, z))", self.potential(y_fake), n)
        c_fake = per_sample("c(x, T(x, z))", self.cost(x, y_fake), n)
        loss = self.phi1(v_fake - c_fake).mean() + self.phi2(-v_real).mean()
        stats = {"v_real": v_real.detach().mean(), "v_fake": v_fake.detach().mean()}
        if self.r1 > 0:
            penalty = r1_penalty(v_real, y)
            loss = loss + 0.5 * self.r1 * penalty
            stats["r1"] = penalty.detach()
        return loss, stats

    def generator_loss(self, x: torch.Tensor, y_fake: torch.Tensor) -> torch.Tensor:
        """E [c(x, T) − v(T)] (v frozen by the caller)."""
        n = x.shape[0]
        return (per_sample("c(x, T(x, z))", self.cost(x, y_fake), n)
                - per_sample("v(T(x, z))", self.potential(y_fake), n)).mean()

    def train_step(self, x: torch.Tensor, y: torch.Tensor) -> dict[str, torch.Tensor]:
        """One potential update on (x, y) ((n, *source_shape), (m, *event_shape)); every
        ``n_critic``-th step also one generator update on x. Returns detached 0-d tensors (the losses,
        mean v on both sides, R1); nothing is read on the host."""
        x, y = self._as_batch("x", x, self.source_shape), self._as_batch("y", y, self.event_shape)
        with torch.no_grad():
            y_fake = self.generator_net(x, self._noise(x.shape[0], self.generator))
        loss_v, stats = self.potential_loss(x, y, y_fake)
        self.update("opt_v", loss_v)
        out = {"loss_v": loss_v.detach(), **stats}
        if (self.step + 1) % self.n_critic == 0:
            with frozen(self.potential):
                y_fake = self.generator_net(x, self._noise(x.shape[0], self.generator))
                loss_g = self.generator_loss(x, y_fake)
                self.update("opt_g", loss_g)
            out["loss_g"] = loss_g.detach()
        self.step += 1
        return out
