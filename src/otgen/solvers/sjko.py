"""S-JKO: Wasserstein gradient flows of alpha·D_Psi(· | nu) through unbalanced OT (Choi et al., ICML 2024).

A JKO step with step size h, mu_{k+1} = argmin_rho W2²(mu_k, rho)/(2h) + alpha·D_Psi(rho | nu), is a UOT
problem with a hard source marginal (Psi1* linear) and a soft target marginal. S-JKO learns maps T_k
with T_k # mu_0 ≈ mu_{k+1} (every map pushes the *initial* measure, so sampling any phase costs one
network call), using the coupling (T_{k−1}, T_k) # mu_0 in the cost (uotm-sjko.md §2.1–2.2):

    potential v:  minimise  E_x v(T_k(x, z)) + E_y alpha·Psi*(−v(y)/alpha) (+ (r1/2) E‖∇v(y)‖²)
    generator:    minimise  E_x [ ‖T_k(x, z) − T_{k−1}(x, z')‖² / (2h) − v(T_k(x, z)) ]

T_{k−1} is a frozen copy of the generator at the end of phase k − 1 (the identity for phase 0); T_k
starts from it (warm start); v and the optimisers carry over. Phase 0 (learning T_0 # mu_0 ≈ mu_1 from
the identity) is the hardest problem; ``first_phase_iters`` gives it its own length, as the paper's
``init_num_iterations``. The solver counts steps and derives the phase from the step, so a resumed run
restarts in the right phase at the right step. After each phase the generator's weights are kept, so
``transport(x, phase=k)`` can use T_k.
"""

from __future__ import annotations

import copy
from typing import Any, Sequence

import torch

from ..checks import check_betas, check_number, dim_or_event_shape
from ..conjugates import make_conjugate
from ..nn import StochasticMLP
from .base import Solver
from .semidual import FlatMapMixin, per_sample, r1_penalty, set_cosine_lr, shape_config

LR_SCHEDULES = ("constant", "cosine", "phase_cosine")


class SJKOSolver(FlatMapMixin, Solver):
    """S-JKO phases and update step (``otgen.SJKO`` adds ``fit``; its ``n_iters`` counts per phase).

    Args:
        dim: dimension of the samples (the initial measure mu_0 and the target nu), or give
            ``event_shape`` (e.g. (1, 8, 8); the networks see flat vectors).
        h: JKO step size, > 0 (cost ‖x − y‖²/(2h), summed over coordinates).
        n_phases: number K ≥ 1 of JKO steps.
        phi: conjugate of the target penalty ("kl" default, "chi", "softplus", "linear").
        alpha: strength of the functional alpha·D_Psi, > 0. alpha_final: if set, alpha moves linearly
            from ``alpha`` (phase 0) to ``alpha_final`` (last phase) (an alpha schedule).
        instance_noise: sigma_0 ≥ 0; phase k adds N(0, (sigma_0/(k+1))² I) to the target samples (0: off).
        noise_dim: dimension of the generator's own noise z (default 0: deterministic maps).
        first_phase_iters: length of phase 0 in steps (None: the same as the other phases, i.e. ``fit``'s
            ``n_iters``).
        lr_schedule: "constant" (the paper's toys); "cosine" (to 0 over the whole run; the paper's CIFAR
            runs decay over the whole run to a floor of 5e-5); "phase_cosine" (from the base rate to 0
            within every phase: each JKO step is its own problem).
        hidden, activation, lr_g, lr_v, betas, r1: as ``otgen.UOTM``.
        seed, device: as every solver.
    """

    name = "SJKO"
    divergence_hint = ("Try a smaller learning rate, an R1 penalty (r1 > 0), instance noise, or a conjugate that "
                       "grows more slowly than KL's exp (phi = 'softplus' or 'chi').")

    def __init__(self, dim: int | None = None, h: float = 1.0, n_phases: int = 10, phi: str = "kl", *,
                 event_shape: Sequence[int] | None = None, alpha: float = 1.0,
                 alpha_final: float | None = None, instance_noise: float = 0.0, noise_dim: int = 0,
                 first_phase_iters: int | None = None, lr_schedule: str = "constant",
                 hidden: Sequence[int] = (128, 128, 128), activation: str = "silu", lr_g: float = 1e-4,
                 lr_v: float = 1e-4, betas: Sequence[float] = (0.5, 0.9), r1: float = 0.0, seed: int = 0,
                 device: str | None = "cpu"):
        shape = dim_or_event_shape(dim, event_shape)
        check_number("h", h, low=0, low_open=True)
        check_number("n_phases", n_phases, low=1, integer=True)
        self.phi = make_conjugate(phi, alpha)
        if alpha_final is not None:
            check_number("alpha_final", alpha_final, low=0, low_open=True)
        check_number("instance_noise", instance_noise, low=0)
        check_number("noise_dim", noise_dim, low=0, integer=True)
        if first_phase_iters is not None:
            check_number("first_phase_iters", first_phase_iters, low=1, integer=True)
        if lr_schedule not in LR_SCHEDULES:
            raise ValueError(f"lr_schedule must be one of {LR_SCHEDULES}, got {lr_schedule!r}")
        check_number("lr_g", lr_g, low=0, low_open=True)
        check_number("lr_v", lr_v, low=0, low_open=True)
        betas = check_betas(betas)
        check_number("r1", r1, low=0)
        super().__init__(seed=seed, device=device)

        self._set_shape(shape)
        self.h, self.n_phases = float(h), int(n_phases)
        self.alpha, self.alpha_final = float(alpha), None if alpha_final is None else float(alpha_final)
        self.instance_noise, self.noise_dim, self.r1 = float(instance_noise), int(noise_dim), float(r1)
        self._build_networks(hidden, activation, lr_g, lr_v, betas, seed)
        self.first_phase_iters = None if first_phase_iters is None else int(first_phase_iters)
        self.lr_schedule = lr_schedule
        self.iters_per_phase = 0  # phases 1.. (and phase 0 unless first_phase_iters): set by prepare()
        self.previous: StochasticMLP | None = None  # frozen T_{k−1}; None in phase 0 (identity)
        self.phase_states: list[dict[str, torch.Tensor]] = []  # the weights of T_0, T_1, ... once trained
        self.config = dict(**shape_config(dim, shape), h=self.h, n_phases=self.n_phases, phi=phi, alpha=self.alpha,
                           alpha_final=self.alpha_final, instance_noise=self.instance_noise,
                           noise_dim=self.noise_dim, first_phase_iters=self.first_phase_iters,
                           lr_schedule=lr_schedule, hidden=[int(w) for w in hidden], activation=activation,
                           lr_g=float(lr_g), lr_v=float(lr_v), betas=list(betas), r1=self.r1, seed=seed,
                           device=str(device) if device is not None else None)

    # -- phases ----------------------------------------------------------------------------------
    @property
    def phase_zero_iters(self) -> int:
        """The length of phase 0 in steps (``first_phase_iters``, else that of every phase)."""
        return self.first_phase_iters if self.first_phase_iters is not None else self.iters_per_phase

    def phase_bounds(self, phase: int) -> tuple[int, int]:
        """Steps [start, end) of ``phase`` (0-based step counts; step s is the (s+1)-th update)."""
        if phase == 0:
            return 0, self.phase_zero_iters
        start = self.phase_zero_iters + (phase - 1) * self.iters_per_phase
        return start, start + self.iters_per_phase

    def run_steps(self, n_iters: int) -> int:
        """Steps of a whole run whose phases 1.. have ``n_iters`` steps each."""
        first = self.first_phase_iters if self.first_phase_iters is not None else n_iters
        return first + (self.n_phases - 1) * n_iters

    @property
    def phase(self) -> int:
        """The phase the next step belongs to (n_phases once training is over)."""
        if not self.iters_per_phase:
            return 0
        if self.step < self.phase_zero_iters:
            return 0
        return min(1 + (self.step - self.phase_zero_iters) // self.iters_per_phase, self.n_phases)

    def alpha_of(self, phase: int) -> float:
        """The strength alpha of ``phase``: ``alpha``, or the linear schedule to ``alpha_final``."""
        if self.alpha_final is None or self.n_phases == 1:
            return self.alpha
        return self.alpha + (self.alpha_final - self.alpha) * phase / (self.n_phases - 1)

    def _frozen_copy(self) -> StochasticMLP:
        net = copy.deepcopy(self.generator_net).eval()
        for p in net.parameters():
            p.requires_grad_(False)
        return net

    def _end_phase(self) -> None:
        """Keep T_k's weights and freeze a copy as T_{k−1} of the next phase."""
        self.phase_states.append({k: v.detach().clone() for k, v in self.generator_net.state_dict().items()})
        self.previous = self._frozen_copy()

    # -- the maps --------------------------------------------------------------------------------
    def cost(self, x_new: torch.Tensor, x_old: torch.Tensor) -> torch.Tensor:
        """‖x_new − x_old‖² / (2h) per sample, summed over all coordinates: (n, ...), (n, ...) -> (n,)."""
        return (x_new - x_old).pow(2).flatten(1).sum(1) / (2.0 * self.h)

    @torch.no_grad()
    def transport(self, x: torch.Tensor, phase: int | None = None,
                  generator: torch.Generator | None = None) -> torch.Tensor:
        """T_k(x, z) for phase k (default: the last trained one; the current weights while training).
        T_k pushes mu_0 towards mu_{k+1}. (n, *event_shape) -> (n, *event_shape)."""
        x = self._as_source(x)
        net = self.generator_net
        if phase is not None:
            check_number("phase", phase, low=0, integer=True)
            if phase >= len(self.phase_states):
                raise ValueError(f"phase must be < {len(self.phase_states)} (the phases trained so far), got {phase}")
            net = copy.deepcopy(self.generator_net)
            net.load_state_dict(self.phase_states[phase])
        return self._unflat(net(x, self._noise(x.shape[0], self.sample_generator if generator is None else generator)))

    @torch.no_grad()
    def sample(self, x: torch.Tensor, n_per_x: int = 1, phase: int | None = None) -> torch.Tensor:
        """``n_per_x`` draws T_k(x, z) per x: (n, *event_shape) -> (n, n_per_x, *event_shape)."""
        check_number("n_per_x", n_per_x, low=1, integer=True)
        x = self._unflat(self._as_source(x))
        y = self.transport(x.repeat_interleave(n_per_x, dim=0), phase)
        return y.reshape(x.shape[0], n_per_x, *self.event_shape)

    # -- training --------------------------------------------------------------------------------
    def prepare(self, source, target, n_iters: int) -> None:
        """Set the phase lengths from the run's total number of steps ``n_iters`` (``fit`` passes
        ``run_steps(n)``): ``first_phase_iters`` + (n_phases − 1)·n, or n_phases·n without it. A model
        that has trained already (a resumed run, a second ``fit``) must keep its phase length."""
        per = self._phase_length(n_iters)
        if self.step and per != self.iters_per_phase:
            raise ValueError(f"n_iters must stay {self.iters_per_phase} steps per phase for this model, which "
                             f"has trained {self.step} steps with that phase length; got a run of {n_iters} "
                             f"steps in all, i.e. {per} per phase")
        self.iters_per_phase = per

    def _phase_length(self, n_iters: int) -> int:
        """The steps of phases 1.. in a run of ``n_iters`` steps in all (ValueError if none fits)."""
        if self.first_phase_iters is None:
            if n_iters % self.n_phases:
                raise ValueError(f"the total number of steps ({n_iters}) must be a multiple of n_phases "
                                 f"({self.n_phases})")
            return n_iters // self.n_phases
        rest = n_iters - self.first_phase_iters
        if self.n_phases == 1:
            if rest:
                raise ValueError(f"with one phase the total number of steps ({n_iters}) must equal "
                                 f"first_phase_iters ({self.first_phase_iters})")
            return self.first_phase_iters
        if rest <= 0 or rest % (self.n_phases - 1):
            raise ValueError(f"the total number of steps ({n_iters}) must be first_phase_iters "
                             f"({self.first_phase_iters}) plus a positive multiple of n_phases − 1 "
                             f"({self.n_phases - 1})")
        return rest // (self.n_phases - 1)

    def _set_lr(self, phase: int) -> None:
        """Both learning rates for the next step: constant, a cosine over the run, or within ``phase``."""
        if self.lr_schedule == "cosine":
            set_cosine_lr((self.opt_g, self.opt_v), self.step, self.phase_bounds(self.n_phases - 1)[1])
        elif self.lr_schedule == "phase_cosine":
            start, end = self.phase_bounds(phase)
            set_cosine_lr((self.opt_g, self.opt_v), self.step - start, end - start)

    def train_step(self, x: torch.Tensor, y: torch.Tensor) -> dict[str, float]:
        """One potential and one generator update in the current phase on (x, y), both (n, *event_shape);
        ends the phase on its last step."""
        if not self.iters_per_phase:
            raise RuntimeError("call fit (or prepare) before train_step: the phase length is not set")
        x, y = self._flat("x", x), self._flat("y", y)
        phase = self.phase
        if phase >= self.n_phases:
            raise RuntimeError(f"all {self.n_phases} phases are trained (step {self.step})")
        self.phi.alpha = self.alpha_of(phase)
        self._set_lr(phase)
        n, m = x.shape[0], y.shape[0]
        if self.instance_noise:
            y = y + (self.instance_noise / (phase + 1)) * torch.randn(y.shape, generator=self.generator,
                                                                       device=self.device)
        # potential step (fixed source: the fake term is linear)
        with torch.no_grad():
            y_fake = self.generator_net(x, self._noise(n, self.generator))
        y = y.detach().requires_grad_(self.r1 > 0)
        v_real = per_sample("v(y)", self.potential(y), m)
        v_fake = per_sample("v(T(x))", self.potential(y_fake), n)
        loss_v = v_fake.mean() + self.phi(-v_real).mean()
        if self.r1 > 0:
            loss_v = loss_v + 0.5 * self.r1 * r1_penalty(v_real, y)
        self.opt_v.zero_grad(set_to_none=True)
        loss_v.backward()
        self.opt_v.step()
        # generator step against the frozen previous map (identity in phase 0), independent noises
        with torch.no_grad():
            x_old = x if self.previous is None else self.previous(x, self._noise(n, self.generator))
        self.potential.requires_grad_(False)
        try:
            x_new = self.generator_net(x, self._noise(n, self.generator))
            cost = per_sample("cost", self.cost(x_new, x_old), n)
            loss_g = (cost - per_sample("v(T(x))", self.potential(x_new), n)).mean()
            self.opt_g.zero_grad(set_to_none=True)
            loss_g.backward()
            self.opt_g.step()
        finally:
            self.potential.requires_grad_(True)
        self.step += 1
        if self.step == self.phase_bounds(phase)[1]:
            self._end_phase()
        return {"loss_v": loss_v.item(), "loss_g": loss_g.item(), "cost": cost.mean().item(), "phase": float(phase)}

    # -- state -----------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {"generator_net": self.generator_net.state_dict(), "potential": self.potential.state_dict(),
                "opt_g": self.opt_g.state_dict(), "opt_v": self.opt_v.state_dict(),
                "phase_states": list(self.phase_states), "iters_per_phase": self.iters_per_phase,
                "generator": self.generator.get_state(), "sample_generator": self.sample_generator.get_state(),
                "step": self.step}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.generator_net.load_state_dict(state["generator_net"])
        self.potential.load_state_dict(state["potential"])
        self.opt_g.load_state_dict(state["opt_g"])
        self.opt_v.load_state_dict(state["opt_v"])
        self.phase_states = [dict(s) for s in state["phase_states"]]
        self.iters_per_phase = int(state["iters_per_phase"])
        self._load_generators(state)
        self.step = int(state["step"])
        self.previous = None
        if self.phase_states:  # T_{k−1} of the current phase is the last finished one
            self.previous = self._frozen_copy()
            self.previous.load_state_dict(self.phase_states[-1])
