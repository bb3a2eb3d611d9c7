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

The cost is an ``otgen.costs.Cost`` on the sample space: by default ``SquaredEuclidean(scale=1/(2h))``,
i.e. ‖x − y‖²/(2h) summed over coordinates; a user's cost c(y_new, y_old) (a callable or a Cost
comparing two samples of the same space) gives a JKO step of another ground cost. A cost between
two different spaces (``GeneratorCost``) does not fit: both arguments are samples of the flow.
"""

from __future__ import annotations

import copy
import math
from typing import Any, Sequence

import torch
from torch import nn

from .. import shard
from ..checks import check_number, dim_or_event_shape
from ..conjugates import make_conjugate
from ..costs import Cost, GeneratorCost, SquaredEuclidean, make_cost
from ..schema import Anything, Choice, Number, Schema, Text
from .base import DEVICE, DIM, EVENT_SHAPE, SEED, Solver, check_batch_size, cosine_factor, frozen
from .semidual import NETWORK_FIELDS, adam, build_map_networks, draw_noise, per_sample, push, r1_penalty

LR_SCHEDULES = ("constant", "cosine", "phase_cosine")

SCHEMA = Schema("SJKO", {
    "dim": DIM, "h": Number(low=0, low_open=True),
    "n_phases": Number(integer=True, low=1), "phi": Text(), "event_shape": EVENT_SHAPE,
    "cost": Anything("None (‖x − y‖²/(2h)), a Cost or a callable c(y_new, y_old) -> (n,)"),
    "alpha": Number(low=0, low_open=True), "alpha_final": Number(low=0, low_open=True, nullable=True),
    "instance_noise": Number(low=0), "noise_dim": Number(integer=True, low=0),
    "first_phase_iters": Number(integer=True, low=1, nullable=True), "lr_schedule": Choice(LR_SCHEDULES),
    **NETWORK_FIELDS, "seed": SEED, "device": DEVICE,
})


class SJKOSolver(Solver):
    """S-JKO phases and update step (``otgen.SJKO`` adds ``fit``; its ``n_iters`` counts per phase).

    Args:
        dim: dimension of the samples (the initial measure mu_0 and the target nu), or give
            ``event_shape`` (e.g. (1, 8, 8)).
        h: JKO step size, > 0 (cost ‖x − y‖²/(2h), summed over coordinates).
        n_phases: number K ≥ 1 of JKO steps.
        phi: conjugate of the target penalty ("kl" default, "chi", "softplus", "linear").
        cost: None (the cost above) or a ``Cost`` / callable c(y_new, y_old) -> (n,) between two
            samples of the flow; h then only names the step (it is not applied to a custom cost).
        alpha: strength of the functional alpha·D_Psi, > 0. alpha_final: if set, alpha moves linearly
            from ``alpha`` (phase 0) to ``alpha_final`` (last phase) (an alpha schedule).
        instance_noise: sigma_0 ≥ 0; phase k adds N(0, (sigma_0/(k+1))² I) to the target samples (0: off).
        noise_dim: dimension of the generator's own noise z (default 0: deterministic maps).
        first_phase_iters: length of phase 0 in steps (None: the same as the other phases, i.e. ``fit``'s
            ``n_iters``).
        lr_schedule: "constant" (the paper's toys); "cosine" (to 0 over the whole run; the paper's CIFAR
            runs decay over the whole run to a floor of 5e-5); "phase_cosine" (from the base rate to 0
            within every phase: each JKO step is its own problem).
        generator, potential, hidden, activation, lr_g, lr_v, betas, grad_clip, r1: as ``otgen.UOTM``.
        seed, device: as every solver.
    """

    name = "SJKO"
    schema = SCHEMA
    shape_names = ("event_shape", "event_shape")
    divergence_hint = ("Try a smaller learning rate, an R1 penalty (r1 > 0), instance noise, or a conjugate that "
                       "grows more slowly than KL's exp (phi = 'softplus' or 'chi').")

    def __init__(self, dim: int | None = None, h: float = 1.0, n_phases: int = 10, phi: str = "kl", *,
                 event_shape: Sequence[int] | None = None, cost: Cost | Any = None, alpha: float = 1.0,
                 alpha_final: float | None = None, instance_noise: float = 0.0, noise_dim: int = 0,
                 first_phase_iters: int | None = None, lr_schedule: str = "constant",
                 generator: str | dict | nn.Module | None = None, potential: str | dict | nn.Module | None = None,
                 hidden: Sequence[int] = (128, 128, 128), activation: str = "silu", lr_g: float = 1e-4,
                 lr_v: float = 1e-4, betas: Sequence[float] = (0.5, 0.9), grad_clip: float | None = None,
                 r1: float = 0.0, seed: int = 0, device: str | None = "cpu"):
        args = SCHEMA.arguments(locals())
        shape = dim_or_event_shape(dim, event_shape)
        self.phi = make_conjugate(phi, alpha, "phi")
        super().__init__(seed=seed, device=device)

        self.event_shape = self.source_shape = shape
        self.dim = math.prod(shape)
        self.h, self.n_phases = float(h), int(n_phases)
        self.cost = SquaredEuclidean(1.0 / (2.0 * self.h)) if cost is None else make_cost(cost)
        if isinstance(self.cost, GeneratorCost):
            raise ValueError("cost: a GeneratorCost compares two different spaces; a JKO step compares two "
                             "samples of the flow (give a Cost or a callable c(y_new, y_old) -> (n,))")
        self.cost.check_shapes(shape, shape)
        self.alpha, self.alpha_final = float(alpha), None if alpha_final is None else float(alpha_final)
        self.instance_noise, self.noise_dim, self.r1 = float(instance_noise), int(noise_dim), float(r1)
        gen, pot = build_map_networks(generator, potential, shape, shape, self.noise_dim, hidden, activation, seed)
        self.generator_net = self.add_network("generator_net", gen)
        self.potential = self.add_network("potential", pot)
        self.first_phase_iters = None if first_phase_iters is None else int(first_phase_iters)
        self.lr_schedule = lr_schedule
        schedule = {"constant": None, "cosine": self._run_cosine, "phase_cosine": self._phase_cosine}[lr_schedule]
        self.opt_g = self.add_optimizer("opt_g", adam("generator", self.generator_net, lr_g, args["betas"]), schedule=schedule,
                                        grad_clip=args["grad_clip"])
        self.opt_v = self.add_optimizer("opt_v", adam("potential", self.potential, lr_v, args["betas"]), schedule=schedule,
                                        grad_clip=args["grad_clip"])
        self.iters_per_phase = 0  # phases 1.. (and phase 0 unless first_phase_iters): set by prepare()
        self.previous: nn.Module | None = None  # frozen T_{k−1}; None in phase 0 (identity)
        self.phase_states: list[dict[str, torch.Tensor]] = []  # the weights of T_0, T_1, ... once trained
        self.config = args

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
        check_number("n_iters", n_iters, low=1, integer=True)
        first = self.first_phase_iters if self.first_phase_iters is not None else n_iters
        return first + (self.n_phases - 1) * n_iters

    def describe_steps(self, n_iters: int) -> str:
        first = f", {self.first_phase_iters} in phase 0" if self.first_phase_iters is not None else ""
        return f"{n_iters} iterations per phase{first}"

    def phase_of(self, step: int) -> int:
        """The phase that step ``step`` (0-based) belongs to (n_phases past the end)."""
        if not self.iters_per_phase or step < self.phase_zero_iters:
            return 0
        return min(1 + (step - self.phase_zero_iters) // self.iters_per_phase, self.n_phases)

    @property
    def phase(self) -> int:
        """The phase the next step belongs to (n_phases once training is over)."""
        return self.phase_of(self.step)

    def alpha_of(self, phase: int) -> float:
        """The strength alpha of ``phase``: ``alpha``, or the linear schedule to ``alpha_final``."""
        if self.alpha_final is None or self.n_phases == 1:
            return self.alpha
        return self.alpha + (self.alpha_final - self.alpha) * phase / (self.n_phases - 1)

    def _run_cosine(self, step: int) -> float:
        """Learning-rate factor: a cosine over the whole run (to the end of the last phase)."""
        return cosine_factor(step, self.phase_bounds(self.n_phases - 1)[1])

    def _phase_cosine(self, step: int) -> float:
        """Learning-rate factor: a cosine within the phase of ``step``."""
        start, end = self.phase_bounds(self.phase_of(step))
        return cosine_factor(step - start, end - start)

    def _frozen_copy(self) -> nn.Module:
        net = copy.deepcopy(self.generator_net).eval()
        for p in net.parameters():
            p.requires_grad_(False)
        return net

    def _end_phase(self) -> None:
        """Keep T_k's weights and freeze a copy as T_{k−1} of the next phase."""
        self.phase_states.append({k: v.detach().clone() for k, v in self.generator_net.state_dict().items()})
        self.previous = self._frozen_copy()

    # -- the maps --------------------------------------------------------------------------------
    def _noise(self, n: int, generator: torch.Generator) -> torch.Tensor | None:
        return draw_noise(self.generator_net, n, generator, self.device)

    @torch.no_grad()
    def transport(self, x: torch.Tensor, phase: int | None = None,
                  generator: torch.Generator | None = None, batch_size: int | None = None) -> torch.Tensor:
        """T_k(x, z) for phase k (default: the last trained one; the current weights while training).
        T_k pushes mu_0 towards mu_{k+1}. (n, *event_shape) -> (n, *event_shape). ``x``: a Tensor, array
        or list, cast to float32 on the model's device (an empty, non-finite or non-numeric x raises
        ValueError/TypeError naming x); ``phase``: None or an int in [0, phases trained).
        ``batch_size``: at most that many x per network call (None: all at once), z drawn batch by
        batch (``semidual.push`` says when that gives one call's numbers); ValueError naming
        ``batch_size`` unless None or an int >= 1."""
        x = self._as_input("x", x, self.event_shape)
        batch_size = check_batch_size(batch_size)
        gen = self._sampling_generator(generator)
        return push(self._phase_net(phase), x, gen, self.device, batch_size)

    def _phase_net(self, phase: int | None) -> nn.Module:
        """T_k of ``phase`` k (a copy holding its weights), or the current generator for None."""
        if phase is None:
            return self.generator_net
        phase = self._count("phase", phase, low=0)
        if not self.phase_states:
            raise ValueError(f"phase={phase}: no phase is trained yet (fit the model first, or pass phase=None "
                             "for the current weights)")
        if phase >= len(self.phase_states):
            raise ValueError(f"phase must be < {len(self.phase_states)} (the phases trained so far), got {phase}")
        net = copy.deepcopy(self.generator_net)
        net.load_state_dict(self.phase_states[phase])
        return net

    def sample(self, x: torch.Tensor, n_per_x: int = 1, phase: int | None = None,
               generator: torch.Generator | None = None, batch_size: int | None = None) -> torch.Tensor:
        """``n_per_x`` draws T_k(x, z) per x: (n, *event_shape) -> (n, n_per_x, *event_shape) (``x``,
        ``n_per_x``, ``batch_size`` (at most that many x per network call): as the base ``sample``
        checks them; ``phase``: as ``transport``)."""
        return super().sample(x, n_per_x, generator=generator, batch_size=batch_size, phase=phase)

    def run_arrays(self, x: torch.Tensor, generator: torch.Generator,
                   y: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """``y_hat`` (the last trained map's T(x)) and ``phases`` (K, n, *event_shape): T_k(x) of every
        trained phase, each with the same x and a generator in the same state."""
        state = generator.get_state()
        phases = []
        for k in range(len(self.phase_states)):
            generator.set_state(state)
            phases.append(self.transport(x, phase=k, generator=generator))
        if not phases:
            return super().run_arrays(x, generator)
        return {"y_hat": phases[-1], "phases": torch.stack(phases)}

    # -- training --------------------------------------------------------------------------------
    def expected_shapes(self):
        return self.event_shape, self.event_shape

    def prepare(self, source, target, *, n_iters: int) -> None:
        """Set the phase lengths from the run's total number of steps ``n_iters`` (``fit`` passes
        ``run_steps(n)``): ``first_phase_iters`` + (n_phases − 1)·n, or n_phases·n without it. A model
        that has trained already (a resumed run, a second ``fit``) must keep its phase length."""
        per = self._phase_length(n_iters)
        if self.step and per != self.iters_per_phase:
            raise ValueError(f"n_iters must stay {self.iters_per_phase} steps per phase for this model, which "
                             f"has trained {self.step} steps with that phase length; got a run of {n_iters} "
                             f"steps in all, i.e. {per} per phase")
        self.iters_per_phase = per
        super().prepare(source, target, n_iters=n_iters)

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

    def train_step(self, x: torch.Tensor, y: torch.Tensor) -> dict[str, float]:
        """One potential and one generator update in the current phase on (x, y), both (n, *event_shape);
        ends the phase on its last step."""
        if not self.iters_per_phase:
            raise RuntimeError("call fit (or prepare) before train_step: the phase length is not set")
        x, y = self._as_batch("x", x, self.event_shape), self._as_batch("y", y, self.event_shape)
        phase = self.phase
        if phase >= self.n_phases:
            raise RuntimeError(f"all {self.n_phases} phases are trained (step {self.step})")
        self.phi.alpha = self.alpha_of(phase)
        n, m = x.shape[0], y.shape[0]
        if self.instance_noise:
            y = y + (self.instance_noise / (phase + 1)) * shard.randn(y.shape, generator=self.generator,
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
        self.update("opt_v", loss_v)
        # generator step against the frozen previous map (identity in phase 0), independent noises
        with torch.no_grad():
            x_old = x if self.previous is None else self.previous(x, self._noise(n, self.generator))
        with frozen(self.potential):
            x_new = self.generator_net(x, self._noise(n, self.generator))
            cost = per_sample("cost", self.cost(x_new, x_old), n)
            loss_g = (cost - per_sample("v(T(x))", self.potential(x_new), n)).mean()
            self.update("opt_g", loss_g)
        self.step += 1
        if self.step == self.phase_bounds(phase)[1]:
            self._end_phase()
        return {"loss_v": loss_v.item(), "loss_g": loss_g.item(), "cost": cost.mean().item(), "phase": float(phase)}

    # -- state -----------------------------------------------------------------------------------
    def extra_state(self) -> dict[str, Any]:
        return {"phase_states": list(self.phase_states), "iters_per_phase": self.iters_per_phase}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        self.phase_states = [dict(s) for s in state["phase_states"]]
        self.iters_per_phase = int(state["iters_per_phase"])
        self.previous = None
        if self.phase_states:  # T_{k−1} of the current phase is the last finished one
            self.previous = self._frozen_copy()
            self.previous.load_state_dict(self.phase_states[-1])
