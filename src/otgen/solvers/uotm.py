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
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import torch

from ..checks import check_betas, check_number, dim_or_event_shape
from ..conjugates import make_conjugate
from ..nn import EMA
from .base import Solver
from .semidual import FlatMapMixin, per_sample, r1_penalty, set_cosine_lr, shape_config

LR_SCHEDULES = ("constant", "cosine")
COST_REDUCTIONS = ("sum", "mean")


class UOTMSolver(FlatMapMixin, Solver):
    """UOTM losses and update step (``otgen.UOTM`` adds ``fit``).

    Args:
        dim: dimension of source and target vectors (or give ``event_shape``).
        event_shape: shape of one sample, e.g. (1, 8, 8), the same for source and target; the MLPs see
            flat vectors of prod(event_shape) coordinates. ``dim=D`` means ``(D,)``.
        tau: cost scale, > 0: c(x, y) = tau · reduce((x − y)²) (no ½; uotm-sjko.md §1.3).
        phi1, phi2: conjugates of the source and target penalties: "kl" (default), "chi", "softplus"
            or "linear" (a hard marginal; both "linear" is balanced OT).
        alpha1, alpha2: their strengths, > 0 (alpha·Psi*(s/alpha)); larger is closer to balanced.
        cost_reduce: "sum" (default) or "mean" over coordinates.
        noise_dim: dimension of the generator's own noise z (default: the number of coordinates; 0: a
            deterministic map).
        hidden, activation: widths and activation of both MLPs.
        lr_g, lr_v, betas: Adam settings of the generator and the potential.
        n_critic: potential updates per generator update, >= 1 (each ``train_step`` updates v once
            and T every ``n_critic``-th step, so ``fit``'s ``n_iters`` counts potential updates).
        r1: weight gamma of the R1 penalty (gamma/2)·E‖∇_y v(y)‖² on real data (0: off).
        ema: decay of an EMA of the generator used by ``transport``/``sample`` (None: off).
        lr_schedule: "constant" or "cosine" (to 0 over ``fit``'s ``n_iters``), both networks.
        seed, device: as every solver.
    """

    name = "UOTM"
    divergence_hint = ("Try a smaller learning rate, an R1 penalty (r1 > 0), a larger tau, or a conjugate that "
                       "grows more slowly than KL's exp (phi1/phi2 = 'softplus' or 'chi').")

    def __init__(self, dim: int | None = None, tau: float = 1.0, phi1: str = "kl", phi2: str = "kl", *,
                 event_shape: Sequence[int] | None = None, alpha1: float = 1.0,
                 alpha2: float = 1.0, cost_reduce: str = "sum", noise_dim: int | None = None,
                 hidden: Sequence[int] = (128, 128, 128), activation: str = "silu", lr_g: float = 1e-4,
                 lr_v: float = 1e-4, betas: Sequence[float] = (0.5, 0.9), n_critic: int = 1, r1: float = 0.0,
                 ema: float | None = None, lr_schedule: str = "constant", seed: int = 0,
                 device: str | None = "cpu"):
        shape = dim_or_event_shape(dim, event_shape)
        check_number("tau", tau, low=0, low_open=True)
        self.phi1, self.phi2 = make_conjugate(phi1, alpha1), make_conjugate(phi2, alpha2)
        if cost_reduce not in COST_REDUCTIONS:
            raise ValueError(f"cost_reduce must be one of {COST_REDUCTIONS}, got {cost_reduce!r}")
        noise_dim = math.prod(shape) if noise_dim is None else noise_dim
        check_number("noise_dim", noise_dim, low=0, integer=True)
        check_number("lr_g", lr_g, low=0, low_open=True)
        check_number("lr_v", lr_v, low=0, low_open=True)
        betas = check_betas(betas)
        check_number("n_critic", n_critic, low=1, integer=True)
        check_number("r1", r1, low=0)
        if ema is not None:
            check_number("ema", ema, low=0, low_open=True, high=1)
            if ema >= 1:
                raise ValueError(f"ema must be in (0, 1), got {ema!r}")
        if lr_schedule not in LR_SCHEDULES:
            raise ValueError(f"lr_schedule must be one of {LR_SCHEDULES}, got {lr_schedule!r}")
        super().__init__(seed=seed, device=device)

        self._set_shape(shape)
        self.tau, self.cost_reduce = float(tau), cost_reduce
        self.noise_dim = int(noise_dim)
        self._build_networks(hidden, activation, lr_g, lr_v, betas, seed)
        self.n_critic, self.r1, self.lr_schedule = int(n_critic), float(r1), lr_schedule
        self.ema = EMA(self.generator_net, ema) if ema is not None else None
        self.total_steps = 0
        self.config = dict(**shape_config(dim, shape), tau=self.tau, phi1=phi1, phi2=phi2, alpha1=float(alpha1),
                           alpha2=float(alpha2), cost_reduce=cost_reduce, noise_dim=self.noise_dim,
                           hidden=[int(h) for h in hidden], activation=activation, lr_g=float(lr_g),
                           lr_v=float(lr_v), betas=list(betas), n_critic=self.n_critic, r1=self.r1, ema=ema,
                           lr_schedule=lr_schedule, seed=seed,
                           device=str(device) if device is not None else None)

    # -- the map ---------------------------------------------------------------------------------
    def cost(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """c(x, y) = tau · reduce((x − y)²) over coordinates: (n, ...), (n, ...) -> (n,)."""
        sq = (x - y).pow(2).flatten(1)
        return self.tau * (sq.sum(1) if self.cost_reduce == "sum" else sq.mean(1))

    @torch.no_grad()
    def transport(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """T(x, z) with fresh z for every call: (n, *event_shape) -> (n, *event_shape). Uses the EMA
        weights if any."""
        x = self._as_source(x)
        net = self.ema.shadow if self.ema is not None else self.generator_net
        return self._unflat(net(x, self._noise(x.shape[0], self.sample_generator if generator is None else generator)))

    @torch.no_grad()
    def sample(self, x: torch.Tensor, n_per_x: int = 1, generator: torch.Generator | None = None) -> torch.Tensor:
        """``n_per_x`` draws T(x, z) per x: (n, *event_shape) -> (n, n_per_x, *event_shape)."""
        check_number("n_per_x", n_per_x, low=1, integer=True)
        x = self._unflat(self._as_source(x))
        y = self.transport(x.repeat_interleave(n_per_x, dim=0), generator)
        return y.reshape(x.shape[0], n_per_x, *self.event_shape)

    # -- training --------------------------------------------------------------------------------
    def prepare(self, source, target, n_iters: int) -> None:
        self.total_steps = n_iters

    def _set_lr(self) -> None:
        if self.lr_schedule == "cosine":
            set_cosine_lr((self.opt_g, self.opt_v), self.step, self.total_steps)

    def potential_loss(self, x: torch.Tensor, y: torch.Tensor, y_fake: torch.Tensor) -> tuple[torch.Tensor, dict]:
        """E Psi1*(v(T) − c(x, T)) + E Psi2*(−v(y)) (+ R1 on y); T = y_fake is detached by the caller."""
        n, m = x.shape[0], y.shape[0]
        y = y.detach().requires_grad_(self.r1 > 0)
        v_real = per_sample("v(y)", self.potential(y), m)
        v_fake = per_sample("v(T(x, z))", self.potential(y_fake), n)
        c_fake = per_sample("c(x, T(x, z))", self.cost(x, y_fake), n)
        loss = self.phi1(v_fake - c_fake).mean() + self.phi2(-v_real).mean()
        stats = {"v_real": v_real.mean().item(), "v_fake": v_fake.mean().item()}
        if self.r1 > 0:
            penalty = r1_penalty(v_real, y)
            loss = loss + 0.5 * self.r1 * penalty
            stats["r1"] = penalty.item()
        return loss, stats

    def generator_loss(self, x: torch.Tensor, y_fake: torch.Tensor) -> torch.Tensor:
        """E [c(x, T) − v(T)] (v frozen by the caller)."""
        n = x.shape[0]
        return (per_sample("c(x, T(x, z))", self.cost(x, y_fake), n)
                - per_sample("v(T(x, z))", self.potential(y_fake), n)).mean()

    def train_step(self, x: torch.Tensor, y: torch.Tensor) -> dict[str, float]:
        """One potential update on (x, y), both (n, *event_shape); every ``n_critic``-th step also one
        generator update on x."""
        x, y = self._flat("x", x), self._flat("y", y)
        self._set_lr()
        with torch.no_grad():
            y_fake = self.generator_net(x, self._noise(x.shape[0], self.generator))
        loss_v, stats = self.potential_loss(x, y, y_fake)
        self.opt_v.zero_grad(set_to_none=True)
        loss_v.backward()
        self.opt_v.step()
        out = {"loss_v": loss_v.item(), **stats}
        if (self.step + 1) % self.n_critic == 0:
            self.potential.requires_grad_(False)
            try:
                y_fake = self.generator_net(x, self._noise(x.shape[0], self.generator))
                loss_g = self.generator_loss(x, y_fake)
                self.opt_g.zero_grad(set_to_none=True)
                loss_g.backward()
                self.opt_g.step()
            finally:
                self.potential.requires_grad_(True)
            if self.ema is not None:
                self.ema.update(self.generator_net)
            out["loss_g"] = loss_g.item()
        self.step += 1
        return out

    # -- state -----------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {"generator_net": self.generator_net.state_dict(), "potential": self.potential.state_dict(),
                "opt_g": self.opt_g.state_dict(), "opt_v": self.opt_v.state_dict(),
                "ema": self.ema.state_dict() if self.ema is not None else {},
                "generator": self.generator.get_state(), "sample_generator": self.sample_generator.get_state(),
                "step": self.step, "total_steps": self.total_steps}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.generator_net.load_state_dict(state["generator_net"])
        self.potential.load_state_dict(state["potential"])
        self.opt_g.load_state_dict(state["opt_g"])
        self.opt_v.load_state_dict(state["opt_v"])
        if self.ema is not None:
            self.ema.load_state_dict(state["ema"])
        self._load_generators(state)
        self.step = int(state["step"])
        self.total_steps = int(state["total_steps"])
