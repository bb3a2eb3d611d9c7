"""S-JKO: Wasserstein gradient flows of alpha·D_Psi(· | nu) through unbalanced OT (Choi et al., ICML 2024).

A JKO step with step size h, mu_{k+1} = argmin_rho W2²(mu_k, rho)/(2h) + alpha·D_Psi(rho | nu), is a UOT
problem with a hard source marginal (Psi1* linear) and a soft target marginal. S-JKO learns maps T_k
with T_k # mu_0 ≈ mu_{k+1} (every map pushes the *initial* measure, so sampling any phase costs one
network call), using the coupling (T_{k−1}, T_k) # mu_0 in the cost (uotm-sjko.md §2.1–2.2):

    potential v:  minimise  E_x v(T_k(x, z)) + E_y alpha·Psi*(−v(y)/alpha) (+ (r1/2) E‖∇v(y)‖²)
    generator:    minimise  E_x [ ‖T_k(x, z) − T_{k−1}(x, z')‖² / (2h) − v(T_k(x, z)) ]

T_{k−1} is a frozen copy of the generator at the end of phase k − 1 (the identity for phase 0); T_k
starts from it (warm start); v and the optimisers carry over. Phase 0 (learning T_0 # mu_0 ≈ mu_1 from
the identity) is the hardest problem; ``phases.first_iters`` gives it its own length, as the paper's
``init_num_iterations``. The solver counts steps and derives the phase from the step, so a resumed run
restarts in the right phase at the right step. After each phase the generator's weights are kept, so
``transport(x, phase=k)`` can use T_k.

Where the phases are kept (``solvers/phase_store.py``): in a run with a directory (``fit(out=...)``,
``otgen train``) each finished phase is written once to its own file ``RUN/phases/phase_007.pt`` (by
rank 0), and checkpoints and ``model.pt`` list the files instead of holding the weights, so they stay
the same size however many phases are trained; in memory only the current generator, the frozen
T_{k−1} and at most one phase loaded for ``transport`` are held. Without a directory (``fit`` without
``out``) the phases are held in memory, and ``save`` writes them into the model file. ``phases.keep``
= N keeps only the newest N phases (files or memory).

The cost is an ``otgen.costs.Cost`` on the sample space: by default ``SquaredEuclidean(scale=1/(2h))``,
i.e. ‖x − y‖²/(2h) summed over coordinates; a user's cost c(y_new, y_old) (a callable or a Cost
comparing two samples of the same space) gives a JKO step of another ground cost. A cost between
two different spaces (``GeneratorCost``) does not fit: both arguments are samples of the flow.
"""

from __future__ import annotations

import copy
import math
import numbers
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import torch
from torch import nn

from .. import shard
from ..checks import check_number, dim_or_event_shape
from ..costs import GeneratorCost
from ..schema import Field, Number
from ..spec import Nested, OneOf, Spec, check_keywords, option, takes
from .base import Solver, check_batch_size, cosine_factor, frozen
from .phase_store import FOLDER, FilePhases, MemoryPhases
from .semidual import (CONJUGATE_SPECS, Conjugate, CostOption, JKOCritic, NetworkOption, SqEuclidean, adam,
                       build_cost, build_map_networks, draw_noise, fold,
                       generator_spec, legacy_conjugate, legacy_cost, legacy_networks, legacy_optimisers,
                       nested_doc, per_sample, push, r1_exclusions, r1_penalty)
from .shared_options import DEVICE, DIM, EVENT_SHAPE, POSITIVE, SEED, Adam, check_dim_or_shape

LR_SCHEDULES = ("constant", "cosine", "phase_cosine")

#: the options of the first (flat) layout and where each went
MOVED = {"alpha": "phi.alpha", "alpha_final": "phases.alpha_final", "instance_noise": "phases.instance_noise",
         "noise_dim": "generator.noise_dim", "first_phase_iters": "phases.first_iters", "keep_phases": "phases.keep",
         "hidden": "generator.hidden and potential.hidden",
         "activation": "generator.activation and potential.activation", "lr_g": "optim_g.lr", "lr_v": "optim_v.lr",
         "betas": "optim_g.betas and optim_v.betas", "grad_clip": "optim_g.grad_clip and optim_v.grad_clip",
         "lr_schedule": "optim_g.schedule and optim_v.schedule", "r1": "critic.r1"}

#: options of today's layout that the first one did not have
NEW_ONLY = ("phases", "optim_g", "optim_v", "critic")


@dataclass(frozen=True)
class KeepPhases(Field):
    """``keep``: "all", or an int N >= 1 (the newest N phases)."""

    def _check(self, name, value):
        if isinstance(value, str) and value == "all":
            return value
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
            raise ValueError(f"{name} must be 'all' or an int >= 1 (how many of the newest phases to keep), "
                             f"got {value!r}")
        return int(value)


@dataclass(frozen=True)
class Phases(Spec):
    """The JKO phases beyond their number: phase 0's length, which phases' maps are kept, the schedule of
    the strength alpha and the instance noise on the data."""

    first_iters: int | None = option(None, Number(integer=True, low=1, nullable=True),
                                     "length of phase 0 in steps (None: that of every phase, fit's n_iters; the "
                                     "paper's init_num_iterations)")
    keep: Any = option("all", KeepPhases(),
                       "'all' or N >= 1: keep only the newest N phases' maps for transport(x, phase=k) (the last is "
                       "always kept); older phase files are deleted once no checkpoint lists them")
    alpha_final: float | None = option(None, Number(low=0, low_open=True, nullable=True),
                                       "if set, alpha moves linearly from phi's alpha (phase 0) to alpha_final "
                                       "(the last phase)")
    instance_noise: float = option(0.0, Number(low=0),
                                   "sigma_0 >= 0: phase k adds N(0, (sigma_0/(k+1))² I) to the target samples "
                                   "(0: off)")


@dataclass(frozen=True)
class SJKOOptions(Spec):
    """The options of S-JKO (``otgen.SJKO``)."""

    dim: int | None = option(None, DIM, "dimension of the samples (mu_0 and nu), or give event_shape",
                             positional=True)
    h: float = option(1.0, POSITIVE, "JKO step size > 0 (cost ‖x − y‖²/(2h), summed over coordinates)",
                      positional=True)
    n_phases: int = option(10, Number(integer=True, low=1), "number K >= 1 of JKO steps", positional=True)
    phi: Any = option("kl", OneOf(CONJUGATE_SPECS),
                      "conjugate of the target penalty ('kl', 'chi', 'softplus', 'linear'), or {name: kl, alpha: 2.0} "
                      "with the strength alpha of the functional alpha·D_Psi", positional=True)
    event_shape: Any = option(None, EVENT_SHAPE, "shape of one sample, e.g. (1, 8, 8); dim=D means (D,)")
    cost: Any = option(SqEuclidean(), CostOption(),
                       "'sqeuclidean' (‖x − y‖²/(2h); {name: sqeuclidean, reduce: mean} for the mean, or with "
                       "its own scale), 'zero', or a Cost / callable c(y_new, y_old) -> (n,) between two samples "
                       "of the flow (h then only names the step)")
    phases: Phases = option(Phases(), Nested(Phases), "phase 0's length, the phases kept, the alpha schedule, "
                                                      "instance noise")
    generator: Any = option("mlp", NetworkOption("generator"),
                            "the maps T_k(x, z): a network of otgen.nn ('mlp', {name: conv, width: 32}) with its "
                            "noise_dim (default 0: deterministic maps), or a torch.nn.Module taking (x, z)")
    potential: Any = option("mlp", NetworkOption("potential"),
                            "the potential v(y): a network of otgen.nn or a torch.nn.Module (n, *event_shape) -> (n,)")
    optim_g: Adam = option(Adam(), Nested(Adam),
                           "Adam of the generator: schedule 'constant' (the paper's toys), 'cosine' (to 0 over the "
                           "whole run) or 'phase_cosine' (to 0 within every phase); ema: an EMA of the generator's "
                           "weights across the phases (the paper's images: 0.9999), kept as each phase's map T_k "
                           "and used to sample (None: off, the paper's toys)")
    optim_v: Adam = option(Adam(), Nested(Adam), "Adam of the potential (schedules as optim_g; no ema)")
    critic: JKOCritic = option(JKOCritic(), Nested(JKOCritic), "the potential's training: R1 penalty r1")
    seed: int = option(0, SEED, "seed of the initial weights and of every random draw")
    device: Any = option("cpu", DEVICE, "'cpu', 'cuda', 'cuda:N' or 'auto'")

    def validate(self, where: str) -> None:
        check_dim_or_shape(self.dim, self.event_shape, where)
        if isinstance(self.cost, GeneratorCost):
            raise ValueError(f"{where}cost: a GeneratorCost compares two different spaces; a JKO step compares two "
                             "samples of the flow (give a Cost or a callable c(y_new, y_old) -> (n,))")
        self.optim_g.supported(f"{where}optim_g", LR_SCHEDULES)
        self.optim_v.supported(f"{where}optim_v", LR_SCHEDULES, ema=False)

    @classmethod
    def from_legacy(cls, flat: Mapping[str, Any], saved: bool = True) -> dict[str, Any]:
        """The options of a mapping of the first (flat) layout (a format-1 model file's config, an old
        config's model section, or one with flat keys mixed in): alpha into phi; first_phase_iters,
        keep_phases, alpha_final, instance_noise into phases; noise_dim/hidden/activation into the
        network specs; lr_g/lr_v/betas/grad_clip/lr_schedule into optim_g/optim_v; r1 into critic.
        Keys of today's layout pass through (a flat key wins over them). S-JKO had no
        ``earlier_defaults``: a key not given takes today's default, which is the old one, whether
        ``flat`` comes from a model file (``saved``) or not."""
        names = cls.option_names()
        out = {k: v for k, v in flat.items() if k in names or k not in MOVED}
        legacy_conjugate(flat, out, "phi", "alpha")
        legacy_cost(flat, out, old_layout=not any(k in flat for k in NEW_ONLY))
        fold(flat, out, "phases", {"first_phase_iters": "first_iters", "keep_phases": "keep",
                                   "alpha_final": "alpha_final", "instance_noise": "instance_noise"})
        legacy_networks(flat, out)
        legacy_optimisers(flat, out, ema=False)
        fold(flat, out, "critic", {"r1": "r1"})
        return out


@takes(SJKOOptions)
class SJKOSolver(Solver):
    """S-JKO phases and update step (``otgen.SJKO`` adds ``fit``; its ``n_iters`` counts per phase).

    Options (``SJKOOptions``; YAML: the same names, nested options as mappings)::

        {options}

    Where the phases' maps are kept (``phases.keep``): see the module docstring (files of the run
    directory when ``fit`` has ``out``, else memory).
    """

    name = "SJKO"
    Options = SJKOOptions
    small_options = {"dim": 2, "h": 0.5, "n_phases": 2, "generator": {"hidden": [16, 16], "noise_dim": 2},
                     "potential": {"hidden": [16, 16]}}
    shape_names = ("event_shape", "event_shape")
    divergence_hint = ("Try a smaller learning rate, an R1 penalty (critic.r1 > 0), instance noise "
                       "(phases.instance_noise), or a conjugate that grows more slowly than KL's exp (phi = "
                       "'softplus' or 'chi').")

    def __init__(self, *args: Any, **kwargs: Any):
        check_keywords(self.Options, kwargs, MOVED)
        o = self.Options(*args, **kwargs)  # every check, before any work
        shape = dim_or_event_shape(o.dim, o.event_shape)
        self.phi = o.phi.build("phi")
        cost = build_cost(o.cost, 1.0 / (2.0 * o.h))
        cost.check_shapes(shape, shape)
        self.options = o = o.replace(generator=generator_spec(o.generator, 0))
        super().__init__(seed=o.seed, device=o.device)

        self.event_shape = self.source_shape = shape
        self.dim = math.prod(shape)
        self.h, self.n_phases, self.cost = float(o.h), int(o.n_phases), cost
        self.alpha, self.alpha_final = o.phi.alpha, o.phases.alpha_final
        self.instance_noise, self.r1 = o.phases.instance_noise, o.critic.r1
        gen, pot = build_map_networks(o.generator, o.potential, shape, shape, o.seed)
        self.noise_dim = math.prod(getattr(gen, "noise_shape", ()) or (0,))
        self.generator_net = self.add_network("generator_net", gen)
        self.potential = self.add_network("potential", pot)
        self.first_phase_iters = o.phases.first_iters
        self.ema = self.add_ema("ema", self.generator_net, o.optim_g.ema)
        self.opt_g = self.add_optimizer("opt_g", adam("generator", self.generator_net, o.optim_g.lr, o.optim_g.betas),
                                        schedule=self._schedule(o.optim_g), grad_clip=o.optim_g.grad_clip,
                                        ema=self.ema)
        self.opt_v = self.add_optimizer("opt_v", adam("potential", self.potential, o.optim_v.lr, o.optim_v.betas),
                                        schedule=self._schedule(o.optim_v), grad_clip=o.optim_v.grad_clip)
        self.iters_per_phase = 0  # phases 1.. (and phase 0 unless phases.first_iters): set by prepare()
        self.keep_phases = o.phases.keep
        keep = None if self.keep_phases == "all" else self.keep_phases
        self._phases: MemoryPhases | FilePhases = MemoryPhases(keep)  # the weights of T_0, T_1, ... once trained
        self._previous: nn.Module | None = None  # frozen T_{k−1} (None: phase 0's identity, or not loaded yet)
        self._loaded: tuple[int, nn.Module] | None = None  # the last phase loaded for transport
        self._run: Path | None = None  # the run directory the phases are written to (attach_run_dir)
        self._writes = False  # whether this process writes them
        self._look_in: list[Path] = []  # where phase files are looked for first

    def _schedule(self, optim: Adam):
        return {"constant": None, "cosine": self._run_cosine, "phase_cosine": self._phase_cosine}[optim.schedule]

    # -- phases ----------------------------------------------------------------------------------
    @property
    def phase_zero_iters(self) -> int:
        """The length of phase 0 in steps (``phases.first_iters``, else that of every phase)."""
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

    def _frozen_copy(self, state: dict[str, torch.Tensor] | None = None) -> nn.Module:
        """A frozen eval-mode copy of the generator (with the weights ``state``, if given)."""
        net = copy.deepcopy(self.generator_net).eval()
        if state is not None:
            net.load_state_dict(state)
        for p in net.parameters():
            p.requires_grad_(False)
        return net

    @property
    def sampling_net(self) -> nn.Module:
        """The generator whose weights are the map T: the EMA's (``optim_g.ema``) or the trained ones."""
        return self.ema.shadow if self.ema is not None else self.generator_net

    def _end_phase(self) -> None:
        """Keep T_k's weights (in the phase store: the EMA's where there is one) and freeze a copy of
        the trained generator as T_{k−1} of the next phase (the trained weights, as the paper's code
        has it, whether or not an EMA is kept)."""
        if isinstance(self._phases, FilePhases) and self._run is None and not self._phases.writes:
            self._phases = self._phases.to_memory()  # a fit without a directory: new phases in memory
        self._phases.add(self.sampling_net.state_dict())
        self._previous = self._frozen_copy()

    @property
    def previous(self) -> nn.Module | None:
        """The frozen T_{k−1} of the current phase k: the last finished phase (None before phase 0 ends:
        the identity); after a load it is read from the phase store when first needed (with an EMA,
        the store holds the EMA's weights: the trained ones come with the checkpoint)."""
        if self._previous is None and self._phases.trained and self.ema is None:
            self._previous = self._frozen_copy(self._phases.get(self._phases.trained - 1))
        return self._previous

    @property
    def phases_trained(self) -> int:
        """How many phases have finished (T_0 .. T_{phases_trained − 1})."""
        return self._phases.trained

    @property
    def phases_kept(self) -> range:
        """The phases whose maps ``transport(x, phase=k)`` can use (all trained ones, or the newest
        ``phases.keep``)."""
        return range(self._phases.first, self._phases.trained)

    @property
    def phase_states(self) -> "PhaseStates":
        """The weights of every trained phase by index, read on demand (a phase that is not kept raises
        ValueError); ``len`` is the number of phases trained."""
        return PhaseStates(self)

    # -- where the phases are kept ---------------------------------------------------------------
    def attach_run_dir(self, run: os.PathLike | None, writes: bool | None) -> None:
        """Keep the phases in files of ``run``'s ``phases/`` folder from now on: written by this process
        if ``writes`` (with those it holds in memory so far: a model trained without a directory, a
        checkpoint of otgen before phase files), else (False) by another process of the same run, rank 0.
        ``writes`` None (``otgen.load`` of a file in ``run``) or ``run`` None (a ``fit`` without
        ``out``): nothing is written; phase files are looked for in ``run``'s ``phases/`` first, and new
        phases are held in memory."""
        self._loaded = None
        if run is None or writes is None:
            self._run, self._writes = None, False
            self._look_in = [] if run is None else [Path(run) / FOLDER]
            if isinstance(self._phases, FilePhases):
                self._phases.stop_writing(self._look_in)
            return
        self._run, self._writes = Path(run), bool(writes)
        self._look_in = [self._run / FOLDER]
        store = FilePhases(self._phases.keep, self._look_in, self._writes)
        store.adopt(self._phases)
        self._phases = store

    def checkpoint_saved(self) -> None:
        """A checkpoint of this state is on disk: the files of phases it no longer lists are deleted."""
        self._phases.prune()

    # -- the maps --------------------------------------------------------------------------------
    def _noise(self, n: int, rng: torch.Generator) -> torch.Tensor | None:
        return draw_noise(self.generator_net, n, rng, self.device)

    @torch.no_grad()
    def transport(self, x: torch.Tensor, *, phase: int | None = None, rng: torch.Generator | None = None,
                  batch_size: int | None = None) -> torch.Tensor:
        """T_k(x, z) for phase k (default: the last trained one; the current weights while training).
        T_k pushes mu_0 towards mu_{k+1}. (n, *event_shape) -> (n, *event_shape). ``x``: a Tensor, array
        or list, cast to float32 on the model's device (an empty, non-finite or non-numeric x raises
        ValueError/TypeError naming x); ``phase``: None or an int in [0, phases trained).
        ``batch_size``: at most that many x per network call (None: all at once), z drawn batch by
        batch (``semidual.push`` says when that gives one call's numbers); ValueError naming
        ``batch_size`` unless None or an int >= 1."""
        x = self._as_input("x", x, self.event_shape)
        batch_size = check_batch_size(batch_size)
        rng = self._sampling_rng(rng)
        return push(self._phase_net(phase), x, rng, self.device, batch_size)

    def _phase_net(self, phase: int | None) -> nn.Module:
        """T_k of ``phase`` k, or the current generator for None. The last phase, right after it ended
        (a trained model), is the current generator itself; another is loaded into a copy of it from
        the phase store, and that copy is kept for the next call with the same phase."""
        if phase is None:
            return self.sampling_net
        phase = self._count("phase", phase, low=0)
        self._check_phase(phase)
        if phase == self._phases.trained - 1 and self.step == self.phase_bounds(phase)[1]:
            return self.sampling_net  # no step since T_k was kept: the same weights
        if self._loaded is None or self._loaded[0] != phase:
            self._loaded = None  # one loaded phase at a time
            net = copy.deepcopy(self.generator_net)
            net.load_state_dict(self._phases.get(phase))
            self._loaded = (phase, net)
        return self._loaded[1]

    def _check_phase(self, phase: int) -> None:
        """ValueError unless ``phase`` is trained and kept."""
        trained = self._phases.trained
        if not trained:
            raise ValueError(f"phase={phase}: no phase is trained yet (fit the model first, or pass phase=None "
                             "for the current weights)")
        if phase >= trained:
            raise ValueError(f"phase must be < {trained} (the phases trained so far), got {phase}")
        if phase < self._phases.first:
            raise ValueError(f"phase={phase} is not kept: phases.keep={self.keep_phases} keeps the newest phases "
                             f"only, {self._phases.first} to {trained - 1} (phase must be in that range)")

    def sample(self, x: torch.Tensor, n_per_x: int = 1, *, phase: int | None = None,
               rng: torch.Generator | None = None, batch_size: int | None = None) -> torch.Tensor:
        """``n_per_x`` draws T_k(x, z) per x: (n, *event_shape) -> (n, n_per_x, *event_shape) (``x``,
        ``n_per_x``, ``batch_size`` (at most that many x per network call): as the base ``sample``
        checks them; ``phase``: as ``transport``)."""
        return super().sample(x, n_per_x, rng=rng, batch_size=batch_size, phase=phase)

    def run_arrays(self, x: torch.Tensor, rng: torch.Generator,
                   y: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """``y_hat`` (the last trained map's T(x)) and ``phases`` (K, n, *event_shape): T_k(x) of every
        kept phase, each with the same x and ``rng`` in the same state (one phase's weights loaded at a
        time); with ``phases.keep`` below the phases trained, also ``phase_numbers`` (K,): the 1-based
        number of each."""
        state = rng.get_state()
        phases = []
        for k in self.phases_kept:
            rng.set_state(state)
            phases.append(self.transport(x, phase=k, rng=rng))
        if not phases:
            return super().run_arrays(x, rng)
        arrays = {"y_hat": phases[-1], "phases": torch.stack(phases)}
        if self.phases_kept.start:
            arrays["phase_numbers"] = torch.arange(self.phases_kept.start, self.phases_kept.stop) + 1
        return arrays

    # -- compilation -----------------------------------------------------------------------------
    def compile_exclusions(self) -> dict[str, str]:
        """The potential stays eager under ``compile`` when r1 > 0 (the R1 penalty's double backward)."""
        return r1_exclusions(self.r1)

    # -- training --------------------------------------------------------------------------------
    def expected_shapes(self):
        return self.event_shape, self.event_shape

    def prepare(self, source, target, *, n_iters: int) -> None:
        """Set the phase lengths from the run's total number of steps ``n_iters`` (``fit`` passes
        ``run_steps(n)``): ``phases.first_iters`` + (n_phases − 1)·n, or n_phases·n without it. A model
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
                                 f"phases.first_iters ({self.first_phase_iters})")
            return self.first_phase_iters
        if rest <= 0 or rest % (self.n_phases - 1):
            raise ValueError(f"the total number of steps ({n_iters}) must be phases.first_iters "
                             f"({self.first_phase_iters}) plus a positive multiple of n_phases − 1 "
                             f"({self.n_phases - 1})")
        return rest // (self.n_phases - 1)

    def train_step(self, x: torch.Tensor, y: torch.Tensor) -> dict[str, torch.Tensor | float]:
        """One potential and one generator update in the current phase on (x, y), both (n, *event_shape);
        ends the phase on its last step. Returns detached 0-d tensors (the losses, the mean cost) and the
        phase as a float (known on the host); nothing is read on the host."""
        if not self.iters_per_phase:
            raise RuntimeError("call fit (or prepare) before train_step: the phase length is not set")
        x, y = self._as_batch("x", x, self.event_shape), self._as_batch("y", y, self.event_shape)
        phase = self.phase
        if phase >= self.n_phases:
            raise RuntimeError(f"all {self.n_phases} phases are trained (step {self.step})")
        self.phi.alpha = self.alpha_of(phase)
        n, m = x.shape[0], y.shape[0]
        if self.instance_noise:
            y = y + (self.instance_noise / (phase + 1)) * shard.randn(y.shape, generator=self.rng,
                                                                       device=self.device)
        # potential step (fixed source: the fake term is linear)
        with torch.no_grad():
            y_fake = self.generator_net(x, self._noise(n, self.rng))
        y = y.detach().requires_grad_(self.r1 > 0)
        v_real = per_sample("v(y)", self.potential(y), m)
        v_fake = per_sample("v(T(x))", self.potential(y_fake), n)
        loss_v = v_fake.mean() + self.phi(-v_real).mean()
        if self.r1 > 0:
            loss_v = loss_v + 0.5 * self.r1 * r1_penalty(v_real, y)
        self.update("opt_v", loss_v)
        # generator step against the frozen previous map (identity in phase 0), independent noises
        with torch.no_grad():
            x_old = x if self.previous is None else self.previous(x, self._noise(n, self.rng))
        with frozen(self.potential):
            x_new = self.generator_net(x, self._noise(n, self.rng))
            cost = per_sample("cost", self.cost(x_new, x_old), n)
            loss_g = (cost - per_sample("v(T(x))", self.potential(x_new), n)).mean()
            self.update("opt_g", loss_g)
        self.step += 1
        if self.step == self.phase_bounds(phase)[1]:
            self._end_phase()
        return {"loss_v": loss_v.detach(), "loss_g": loss_g.detach(), "cost": cost.detach().mean(), "phase": float(phase)}

    # -- state -----------------------------------------------------------------------------------
    def extra_state(self) -> dict[str, Any]:
        """The phase store's state (the list of phase files, or the weights held in memory), the phase
        length and, with an EMA after phase 0, the trained weights of T_{k−1} (the store holds the
        EMA's): one generator, however many phases."""
        state = {**self._phases.state(), "iters_per_phase": self.iters_per_phase}
        if self.ema is not None and self.previous is not None:
            state["previous_generator"] = self.previous.state_dict()
        return state

    def load_extra_state(self, state: dict[str, Any]) -> None:
        """Restore the phases: a list of phase files (looked for in the attached run directory first,
        then where the state says), or weights held in the state (``phase_states``: a model file
        written without a run directory, or by otgen before phase files). T_{k−1} is read again
        when first needed."""
        keep = self._phases.keep
        if "phase_files" in state:
            self._phases = FilePhases.from_state(state["phase_files"], keep, self._look_in, self._writes)
        else:
            self._phases = MemoryPhases(keep, state["phase_states"], state.get("phases_trained"))
        self.iters_per_phase = int(state["iters_per_phase"])
        self._previous = self._loaded = None
        if self.ema is not None and "previous_generator" in state:
            self._previous = self._frozen_copy(state["previous_generator"])



SJKOSolver.__doc__ += nested_doc(("phi: {name: kl, alpha: 1.0}", Conjugate),
                                 ("cost: {name: sqeuclidean}", SqEuclidean), ("phases", Phases),
                                 ("optim_g, optim_v", Adam), ("critic", JKOCritic))


class PhaseStates:
    """A read-only sequence view of a model's phase weights: ``len`` = phases trained, ``[k]`` reads
    phase k's state dict from the store (ValueError for a phase that is not kept)."""

    def __init__(self, solver: SJKOSolver):
        self._solver = solver

    def __len__(self) -> int:
        return self._solver.phases_trained

    def __getitem__(self, k: int) -> dict[str, torch.Tensor]:
        if not isinstance(k, int) or isinstance(k, bool):
            raise TypeError(f"phase index must be an int, got {type(k).__name__}")
        if k < 0:
            k += len(self)
        if not 0 <= k < len(self):
            raise IndexError(f"phase {k} is not trained ({len(self)} phases)")
        self._solver._check_phase(k)
        return self._solver._phases.get(k)
