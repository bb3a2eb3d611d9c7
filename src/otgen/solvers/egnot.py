"""EgNOT: energy-guided entropic neural optimal transport (Mokrov et al., ICLR 2024).

One potential f(y) defines the conditional plan

    pi_f(y | x) ∝ exp( (f(y) − c(x, y)) / eps ),

the Gibbs minimiser of the weak dual of  min_pi E_pi[c] − eps·E_x H(pi(·|x)),  which has the same
solution as E_pi[c] + eps·KL(pi ‖ P⊗Q) (design.md's convention for c = ½‖x − y‖²). f is trained like
an energy-based model: the dual's gradient is E_Q ∇f − E_{x~P, y~pi_f(·|x)} ∇f, so each step
minimises  mean f(ỹ) − mean f(y)  with positives y ~ Q and Langevin negatives ỹ ~ pi_f(·|x̃).

Shapes: a source batch is (n, *source_shape), a target batch (n, *event_shape); ``sample(x, k)``
returns (n, k, *event_shape).
"""

from __future__ import annotations

from typing import Any, Sequence

import torch
from torch import nn

from ..checks import check_shape, derived_seed, dim_or_event_shape
from ..costs import Cost, make_cost
from ..distributions.base import draw
from ..nn import build
from ..nn.mlp import QUADRATIC
from ..nn.registry import Network, as_spec
from ..sampling import (FreshStart, GaussianBase, LangevinSampler, PersistentChains, PersistentParticles,
                        ReplayBuffer, TemperedSMC, noise_init, source_init)
from ..schema import Anything, Betas, Choice, Flag, Number, Numbers, Schema, Shape, Text
from .base import DEVICE, DIM, EMA_DECAY, EVENT_SHAPE, GRAD_CLIP, SEED, Solver, check_batch_size, frozen, map_batches

CHAINS = ("replay", "fresh", "persistent")
CHAIN_INITS = ("auto", "noise", "source")
SAMPLERS = ("smc", "langevin")
PERSISTENT = (PersistentChains, PersistentParticles)  # the chain stores built in prepare() from the source pool
LR_SCHEDULES = ("constant", "cosine")

POSITIVE = Number(low=0, low_open=True)
# iterations between redraws of the visited particles by a fresh tempered SMC (docs/egnot.md)
REFRESH_EVERY = 20
# most particles in one tempered-SMC group of ``sample``: more draws per x come from independent groups
SAMPLE_GROUP = 20
SCHEMA = Schema("EgNOT", {
    "dim": DIM, "eps": POSITIVE, "event_shape": EVENT_SHAPE,
    "source_shape": Shape(nullable=True), "cost": Anything("a cost name, a Cost or a callable c(x, y) -> (n,)"),
    "potential": Network("potential"), "hidden": Numbers(int), "activation": Text(),
    "quadratic": Choice(QUADRATIC), "lr": POSITIVE, "betas": Betas(),
    "grad_clip": GRAD_CLIP, "lr_schedule": Choice(LR_SCHEDULES),
    "ema": EMA_DECAY, "energy_reg": Number(low=0),
    "sampler": Choice(SAMPLERS), "particles": Number(integer=True, low=1, nullable=True),
    "langevin_steps": Number(integer=True, low=1, nullable=True), "step_size": Number(low=0, low_open=True, nullable=True),
    "metropolis": Flag(), "score_clip": Number(low=0, low_open=True, nullable=True), "step_decay": POSITIVE,
    "chains": Choice(CHAINS), "buffer_size": Number(integer=True, low=1), "reinit_prob": Number(low=0, high=1),
    "chain_init": Choice(CHAIN_INITS), "init_scale": POSITIVE, "sample_steps": Number(integer=True, low=0, nullable=True),
    "refresh_every": Number(integer=True, low=0, nullable=True), "refresh_steps": Number(integer=True, low=1),
    "sample_group": Number(integer=True, low=1, nullable=True),
    "seed": SEED, "device": DEVICE,
})


class EgNOTSolver(Solver):
    """EgNOT losses, Langevin negatives and the update step (``otgen.EgNOT`` adds ``fit``).

    Args:
        dim: dimension of source and target vectors (or give ``event_shape``).
        eps: entropic regularisation eps > 0 (cost ½‖x − y‖² + eps·KL convention).
        event_shape: shape of one target sample, e.g. (3, 32, 32); ``dim=D`` means ``(D,)``.
        source_shape: shape of one source sample if it differs from the target's (custom or
            generator costs); defaults to ``event_shape``.
        cost: "sqeuclidean" (½‖x − y‖², default), "zero" (plain EBM of the target), a ``Cost``
            (e.g. ``GeneratorCost(G)`` for energies in a generator's latent space), or a callable
            ``c(x, y) -> (n,)``.
        potential: the network f: (n, *event_shape) -> (n,): a name of ``otgen.nn.registry`` ("mlp",
            default), a mapping ``{"name": "mlp", **kwargs}``, or a ``nn.Module`` of your own. The
            "mlp" is ``ScalarMLP`` with ``hidden`` widths, ``activation`` and a ``quadratic`` term
            ("auto", "full", "diag" or "none"; see ``otgen.nn.ScalarMLP``), bounded by the cost's
            curvature so the plan stays a proper density. "auto" means "none" for costs of unknown
            curvature (zero, custom).
        lr, betas: Adam settings for the potential. grad_clip: max gradient norm (None: off).
        lr_schedule: "constant" or "cosine" (from lr down to 0 over the ``n_iters`` of ``fit``).
        ema: decay of an exponential moving average of the potential's weights, used by
            ``sample``/``transport`` (None: sample with the trained weights themselves).
        energy_reg: alpha of the penalty alpha·mean(f(y)² + f(ỹ)²) (0: off, as in the paper). At 0 the
            loss fixes f only up to a constant, and the potential's ``output_bias`` (the built-in
            networks name the parameter that adds a constant to f) is not trained.
        sampler: how pi(·|x) is sampled, for the training negatives and for ``sample``/``transport``
            (docs/egnot.md has the measurements that chose the default):
            "smc" (default): weighted particles with MALA moves whose step adapts to the acceptance
            rate (never diverges, whatever eps). ``sample`` runs tempered SMC from a Gaussian base q0
            (the cost's kernel N(x, eps/curvature·I) for the quadratic cost, else N(0, init_scale² I))
            to the plan, which gets the weights of separated modes right; training keeps
            ``particles`` weighted particles per pool point ("persistent"), or draws them afresh per
            batch ("fresh": ``langevin_steps`` moves of tempered SMC, which for fewer than 6 moves is
            one importance-resampling step from the base followed by the moves); see ``otgen.sampling``.
            "langevin": the paper's ULA (or MALA with ``metropolis``) with step ``step_size``.
        particles: particles per conditioning point (default 4): per pool point in training, and the
            least number in one SMC group of ``sample`` (``transport`` returns one of 4, with the
            O(1/N) bias of self-normalised weights). "smc" only.
        langevin_steps: sampler steps (MALA moves for "smc") per training iteration (default 30
            for "langevin", 5 for "smc", which moves ``particles`` chains per point).
        step_size: eta of "langevin" (default 0.05·eps); "smc" adapts its own.
        metropolis: MALA instead of ULA ("langevin"). score_clip: max per-sample drift norm. step_decay:
            eta multiplier per step ("langevin").
        chains: "persistent" (default: the chains or particles of a pool of source points, never
            re-initialised: per sample of a source Tensor, or per each of ``buffer_size`` points drawn
            once from a source sampler), "replay" (IGEBM buffer of (y, x) pairs, as the paper;
            "langevin" only), "fresh" (no memory).
        buffer_size, reinit_prob: replay-buffer capacity (or number of persistent points) and the
            per-chain re-initialisation probability of the replay buffer.
        chain_init: where chains start (the base q0 of "smc"): "noise" N(0, init_scale² I); "source"
            x + sqrt(eps)·ξ for "langevin" (the plan of ½‖x − y‖² alone; needs equal shapes), the cost's
            kernel N(x, eps/curvature·I) for "smc"; "auto" (default): the kernel for "smc" when the cost
            has one, noise otherwise.
        sample_steps: sampler steps of ``sample``/``transport`` per draw (default 10·langevin_steps
            for "langevin", 300 for "smc").
        refresh_every: every this many iterations the particles of the visited pool points are
            replaced by a fresh tempered SMC of ``refresh_steps`` moves under the current potential
            (default 20 for "smc" with "persistent" chains, else 0 = never). Reweighting only moves
            mass between a point's existing particles and MALA moves are local, so without it a
            point whose particles all sit in one mode keeps that mode's weight while f sharpens.
        sample_group: most particles in one tempered-SMC group of ``sample`` (default 20; "smc"
            only): ``sample(x, n)`` draws its n particles per x in ceil(n / size) independent groups of
            size = max(``particles``, min(n, sample_group)). Where the kernel is much wider than the
            plan's modes (large eps) one large group weighs the modes wrongly (most likely through
            its shared resampling ancestry); groups of 20 lose little against one group at small
            eps and are much better at large eps (docs/egnot.md, ``benchmarks/smc_groups.py``).
        seed: seeds the initial weights and every random draw of the solver.
        device: "cpu" (default), "cuda", "cuda:N" or "auto".
    """

    name = "EgNOT"
    schema = SCHEMA
    divergence_hint = ("Try a smaller learning rate or set grad_clip (with sampler='langevin': a smaller "
                       "step_size, or score_clip).")
    # files saved before sampler="smc" became the default, and before its particles were refreshed
    earlier_defaults = {"sampler": "langevin", "refresh_every": 0}

    def __init__(self, dim: int | None = None, eps: float = 1.0, *, event_shape: Sequence[int] | None = None,
                 source_shape: Sequence[int] | None = None, cost: str | Cost | Any = "sqeuclidean",
                 potential: str | dict | nn.Module | None = None, hidden: Sequence[int] = (256, 256),
                 activation: str = "silu", quadratic: str = "auto", lr: float = 3e-4,
                 betas: Sequence[float] = (0.5, 0.99), grad_clip: float | None = None, lr_schedule: str = "cosine",
                 ema: float | None = None, energy_reg: float = 0.0, sampler: str = "smc", particles: int | None = None,
                 langevin_steps: int | None = None, step_size: float | None = None, metropolis: bool = False,
                 score_clip: float | None = None, step_decay: float = 1.0, chains: str = "persistent",
                 buffer_size: int = 4096, reinit_prob: float = 0.05, chain_init: str = "auto",
                 init_scale: float = 1.0, sample_steps: int | None = None, refresh_every: int | None = None,
                 refresh_steps: int = 60, sample_group: int | None = None, seed: int = 0,
                 device: str | None = "cpu"):
        args = SCHEMA.arguments(locals())
        event_shape = dim_or_event_shape(dim, event_shape)
        source_shape = event_shape if source_shape is None else check_shape("source_shape", source_shape)
        smc = sampler == "smc"
        if smc and chains == "replay":
            raise ValueError("chains='replay' stores single chains, which sampler='smc' cannot weight; "
                             "use chains='persistent' or 'fresh', or sampler='langevin'")
        if not smc and particles is not None:
            raise ValueError(f"particles={particles!r} is an option of sampler='smc'; sampler='langevin' runs one "
                             f"chain per draw")
        args["particles"] = particles = 4 if smc and particles is None else particles
        if not smc and sample_group is not None:
            raise ValueError(f"sample_group={sample_group!r} is an option of sampler='smc'; sampler='langevin' runs "
                             f"one chain per draw")
        args["sample_group"] = sample_group = SAMPLE_GROUP if smc and sample_group is None else sample_group
        if smc:
            langevin_only = (("step_size", step_size), ("metropolis", metropolis or None), ("score_clip", score_clip),
                             ("step_decay", None if step_decay == 1.0 else step_decay))
            given = {k: v for k, v in langevin_only if v is not None}
            if given:
                raise ValueError(f"{', '.join(f'{k}={v!r}' for k, v in given.items())}: options of sampler='langevin'; "
                                 f"sampler='smc' (the default) adapts its MALA step to the acceptance rate. "
                                 f"Pass sampler='langevin' to use them")
        persistent_particles = smc and chains == "persistent"
        if refresh_every and not persistent_particles:
            raise ValueError(f"refresh_every={refresh_every!r} redraws the persistent particles of sampler='smc' "
                             f"with chains='persistent'; got sampler={sampler!r}, chains={chains!r} (pass 0 or None)")
        if refresh_every is None:
            refresh_every = REFRESH_EVERY if persistent_particles else 0
        args["refresh_every"] = refresh_every
        args["langevin_steps"] = langevin_steps = (5 if smc else 30) if langevin_steps is None else langevin_steps
        if not smc:  # stored resolved, so that a saved model samples the same way
            args["step_size"] = step_size = 0.05 * eps if step_size is None else args["step_size"]
        langevin_step = 0.05 * eps if step_size is None else step_size
        args["sample_steps"] = sample_steps = (
            (300 if smc else 10 * langevin_steps) if sample_steps is None else sample_steps)
        super().__init__(seed=seed, device=device)

        self.eps = float(eps)
        self.event_shape = event_shape
        self.source_shape = source_shape
        self.cost = make_cost(cost).to(self.device)
        self.cost.check_shapes(source_shape, event_shape)
        if chain_init == "source" and source_shape != event_shape:
            raise ValueError(f"chain_init='source' needs equal source and target shapes, "
                             f"got {source_shape} and {event_shape}")
        kernel = self.cost.kernel_std(self.eps)
        if smc and chain_init == "source" and kernel is None:
            raise ValueError(f"chain_init='source' with sampler='smc' needs a cost whose kernel exp(-c/eps) is "
                             f"Gaussian (sqeuclidean with reduce='sum'); cost {self.cost.name!r} has none: "
                             f"use chain_init='noise' or 'auto'")
        curvature = self.cost.curvature
        spec = potential if isinstance(potential, nn.Module) else as_spec("potential", potential)
        if isinstance(spec, dict) and spec["name"] == "mlp":  # the bounded quadratic term needs a curvature
            spec["quadratic"] = self._quadratic_for(spec.get("quadratic", quadratic), curvature)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            net = build("potential", spec, context={"event_shape": event_shape, "curvature": curvature or 1.0},
                        defaults={"hidden": hidden, "activation": activation, "zero_init": True})
        self.potential = self.add_network("potential", net)
        if hasattr(self.potential, "parameter_groups"):
            groups = self.potential.parameter_groups(lr)
        else:
            groups = [{"params": [p for p in self.potential.parameters() if p.requires_grad], "lr": lr}]
        groups = [g for g in groups if g["params"]]
        constant = getattr(self.potential, "output_bias", None)
        if not energy_reg and isinstance(constant, nn.Parameter):
            # The loss and the plan see f only up to a constant, so the gradient of a parameter that adds
            # one is 0 but for float rounding (which differs with the number of processes), and Adam
            # rescales that rounding into steps of up to lr. Built-in potentials name it output_bias; it
            # keeps its place in the optimiser's groups (model files keep their layout) but gets no
            # gradient, so Adam skips it.
            constant.requires_grad_(False)
        # a potential without trainable parameters (a fixed, known f) can still be sampled from
        self.ema = self.add_ema("ema", self.potential, ema)
        self.optimizer = self.add_optimizer(
            "optimizer", torch.optim.Adam(groups, lr=lr, betas=tuple(args["betas"])) if groups else None,
            schedule=self.run_cosine if lr_schedule == "cosine" else None, grad_clip=args["grad_clip"], ema=self.ema)
        self.energy_reg = float(energy_reg)
        self.sampler = sampler
        self.particles = particles
        self.langevin_steps = langevin_steps
        self.langevin = LangevinSampler(langevin_step, langevin_steps, metropolis, score_clip, step_decay)
        self.smc = TemperedSMC(sample_steps)  # its level settings were chosen in docs/egnot.md
        self.refresh_every, self.refresh_steps = int(refresh_every), int(refresh_steps)
        self.sample_steps = sample_steps
        self.sample_group = sample_group
        # the base of "smc": the cost's kernel (mean x, this std) or noise N(0, init_scale² I)
        self._kernel_std = kernel if smc and chain_init != "noise" else None
        self._init_scale = float(init_scale)
        use_source = chain_init == "source" or (chain_init == "auto" and self._kernel_std is not None)
        self._init = source_init(self.eps) if use_source else noise_init(event_shape, init_scale)
        self.chains_kind = chains
        self.buffer_size = buffer_size
        if chains == "replay":
            self.chains: Any = ReplayBuffer(self._init, buffer_size, reinit_prob, device=self.device)
        else:
            self.chains = FreshStart(self._init)  # "persistent" is built in prepare(), from the source set
        self._pending_chains: dict | None = None
        self.config = args

    def _quadratic_for(self, quadratic: str, curvature: float | None) -> str:
        """The MLP potential's quadratic term for a cost of ``curvature``: "auto" is "none" without one."""
        if quadratic == "none" or curvature:
            return quadratic
        if quadratic != "auto":
            raise ValueError(f"quadratic={quadratic!r} needs a cost of known curvature (sqeuclidean); "
                             f"cost {self.cost.name!r} has none: use quadratic='none'")
        return "none"

    # -- the plan ------------------------------------------------------------------------------
    def log_density(self, x: torch.Tensor, potential: nn.Module | None = None):
        """u(y) = (f(y) − c(x, y)) / eps for chains conditioned on ``x``, in the sampler's form
        ``(y, need_value) -> (u or None, ∇_y u)``; gradients never build a graph of the graph.
        ``potential`` defaults to the trained f."""
        eps, cost = self.eps, self.cost
        potential = self.potential if potential is None else potential

        def value_and_grad(y: torch.Tensor):
            if hasattr(potential, "value_and_grad"):  # e.g. ScalarMLP: a hand-written backward pass
                return potential.value_and_grad(y)
            with torch.enable_grad():
                y_ = y.detach().requires_grad_(True)
                f = potential(y_)
                (grad_f,) = torch.autograd.grad(f.sum(), y_)
            return f.detach(), grad_f

        def fn(y: torch.Tensor, need_value: bool):
            f, grad_f = value_and_grad(y)
            grad = (grad_f - cost.grad_y(x, y)) / eps
            value = (f - cost(x, y)) / eps if need_value else None
            return value, grad

        return fn

    def _run_chains(self, x: torch.Tensor, y0: torch.Tensor, n_steps: int | None = None):
        with frozen(self.potential, eval_mode=True):
            return self.langevin.run(self.log_density(x), y0, self.generator, n_steps)

    def _base(self, x_rows: torch.Tensor) -> GaussianBase:
        """The Gaussian q0 of "smc" for chains conditioned on ``x_rows``: the cost's kernel
        N(x, sigma²·I), or the noise start N(0, init_scale²·I)."""
        if self._kernel_std is not None:
            return GaussianBase(self._kernel_std, x_rows)
        return GaussianBase(self._init_scale)

    def _smc_draws(self, x: torch.Tensor, particles: int, n_steps: int, generator, potential: nn.Module):
        """Tempered SMC: equally weighted draws (len(x), particles, *event_shape) and the stats."""
        xr = x.repeat_interleave(particles, dim=0)
        with frozen(potential, eval_mode=True):
            return self.smc.run(self.log_density(xr, potential), self._base(xr), x.shape[0], particles,
                                self.event_shape, generator, n_steps, dtype=x.dtype, device=x.device)

    def _refresh_draws(self, x: torch.Tensor) -> torch.Tensor:
        """Fresh particles for the pool points ``x`` under the current potential (a short tempered SMC)."""
        return self._smc_draws(x, self.particles, self.refresh_steps, self.generator, self.potential)[0]

    @torch.no_grad()
    def sample(self, x: torch.Tensor, n_per_x: int = 1, n_steps: int | None = None,
               generator: torch.Generator | None = None, batch_size: int | None = None) -> torch.Tensor:
        """Draws from pi(·|x): (len(x), n_per_x, *event_shape). Fresh chains, ``n_steps`` sampler
        steps per draw (default ``sample_steps``). "smc" runs independent tempered-SMC groups of
        max(``particles``, min(n_per_x, ``sample_group``)) particles per x, as many as n_per_x draws
        need, and returns a random n_per_x of their particles. Neither the training chains nor the
        training random stream are touched: without ``generator`` the draws come from the model's
        own sampling generator.
        ``x``: a Tensor, array or list of shape (n, *source_shape), n >= 1, cast to float32 on the
        model's device; NaN/Inf, an empty x or a non-numeric one raise ValueError/TypeError naming x.
        ``n_per_x`` (>= 1) and ``n_steps`` (>= 0) are ints (ValueError otherwise).
        ``batch_size``: at most that many x (``batch_size·n_per_x`` chains) per sampler run, one run
        after the other (None, the default: all x in one run); an int >= 1 or None (ValueError naming
        ``batch_size`` otherwise). Each run draws its own starting points and noise for all its steps,
        so batched draws are other draws from the same distribution, not one run's numbers (only a
        ``batch_size`` >= len(x) gives them)."""
        x = self._as_source(x, "x")
        n_per_x = self._count("n_per_x", n_per_x, low=1)
        n_steps = self._count("n_steps", self.sample_steps if n_steps is None else n_steps, low=0)
        batch_size = check_batch_size(batch_size)
        gen = self._sampling_generator(generator)
        potential = self.ema.shadow if self.ema is not None else self.potential
        return map_batches(lambda rows: self._draws(rows, n_per_x, n_steps, gen, potential), x, batch_size)

    def _draws(self, x: torch.Tensor, n_per_x: int, n_steps: int, gen, potential: nn.Module) -> torch.Tensor:
        """One sampler run: n_per_x draws per x, (len(x), n_per_x, *event_shape)."""
        if self.sampler == "smc":
            return self._grouped_smc_draws(x, n_per_x, n_steps, gen, potential)
        xr = x.repeat_interleave(n_per_x, dim=0)
        y0 = self._init(xr, gen)
        with frozen(potential, eval_mode=True):
            y, _ = self.langevin.run(self.log_density(xr, potential), y0, gen, n_steps)
        return y.reshape(x.shape[0], n_per_x, *self.event_shape)

    def _grouped_smc_draws(self, x: torch.Tensor, n_per_x: int, n_steps: int, gen, potential: nn.Module):
        """n_per_x draws per x, (len(x), n_per_x, *event_shape), from independent SMC groups.

        Measured on the mixture pairs' exact potential (docs/egnot.md): where the kernel is much
        wider than the plan's modes (eps >= 10 there) one large group weighs the modes wrongly,
        most likely because its particles share one resampling ancestry; independent groups of
        about 20 keep most of a large group's accuracy at eps <= 1 and are far better at eps >= 10."""
        size = max(self.particles, min(n_per_x, self.sample_group))
        n_groups = -(-n_per_x // size)
        y, _ = self._smc_draws(x.repeat_interleave(n_groups, dim=0), size, n_steps, gen, potential)
        y = y.reshape(x.shape[0], n_groups * size, *self.event_shape)
        if n_groups * size > n_per_x:  # a random subset: resampled particles come ordered by ancestor
            keep = torch.rand(y.shape[:2], generator=gen, device=gen.device).argsort(1)[:, :n_per_x]
            y = y[torch.arange(len(x), device=y.device)[:, None], keep.to(y.device)]
        return y

    def transport(self, x: torch.Tensor, n_steps: int | None = None,
                  generator: torch.Generator | None = None, batch_size: int | None = None) -> torch.Tensor:
        """One draw from pi(·|x) per x: (len(x), *event_shape) (``batch_size``: as ``sample`` takes it)."""
        return self.sample(x, 1, n_steps, generator=generator, batch_size=batch_size)[:, 0]

    def present(self, y: torch.Tensor) -> torch.Tensor:
        """Draws as images: G(z) for a generator cost (latents (n[, k], *event_shape) decoded to
        (n[, k], *source_shape)); the draws themselves otherwise."""
        if not self.decodes:
            return y
        lead = y.shape[: y.dim() - len(self.event_shape)]
        decoded = self.cost.decode(y.reshape(-1, *self.event_shape).to(self.device)).to(y.device)
        return decoded.reshape(*lead, *decoded.shape[1:])

    def run_arrays(self, x: torch.Tensor, generator: torch.Generator,
                   y: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """``y_hat``: one draw from pi(·|x) per x, presented (G(z) for a generator cost, and then the
        latent draws as ``z``)."""
        draws = self.transport(x, generator=generator)
        shown = self.present(draws)
        return {"y_hat": shown, "z": draws} if self.decodes else {"y_hat": draws}

    @property
    def decodes(self) -> bool:
        """Whether the samples are latents that ``present`` decodes (a cost with its own ``decode``)."""
        return type(self.cost).decode is not Cost.decode

    def _as_source(self, x: Any, name: str) -> torch.Tensor:
        return self._as_input(name, x, self.source_shape)

    # -- training ------------------------------------------------------------------------------
    def expected_shapes(self):
        return self.source_shape, self.event_shape

    def prepare(self, source, target, *, n_iters: int) -> None:
        super().prepare(source, target, n_iters=n_iters)
        if self.chains_kind == "persistent" and not isinstance(self.chains, PERSISTENT):
            if self._pending_chains is not None:  # resumed: continue the saved chains
                state = {k: v.to(self.device) if isinstance(v, torch.Tensor) else v
                         for k, v in self._pending_chains.items()}
                kind = PersistentParticles if self.sampler == "smc" else PersistentChains
                self.chains, self._pending_chains = kind.restored(state), None
                return
            if isinstance(source, torch.Tensor):
                pool = source
            else:  # a sampler: one chain for each of buffer_size source points drawn once
                pool_gen = torch.Generator().manual_seed(derived_seed(self.seed, 4))  # samplers draw on the CPU
                pool = draw(source, self.buffer_size, pool_gen)
            pool = pool.to(self.device, torch.float32)
            if self.sampler == "smc":
                self.chains = PersistentParticles(self._base, pool, self.particles, self.event_shape, self.generator)
            else:
                self.chains = PersistentChains(self._init, pool, self.generator)

    def _negatives(self, x: torch.Tensor):
        """Negatives for the batch's ``x``: (draws (n, N, *event_shape), weights (n, N) summing to 1
        per row, metrics of the sampler)."""
        n = x.shape[0]
        if self.sampler == "langevin":
            y0, x_chain, handle = self.chains.begin(x, self.generator)
            y_neg, stats = self._run_chains(x_chain, y0)
            self.chains.end(y_neg, x_chain, handle)
            ones = torch.ones(n, 1, dtype=y_neg.dtype, device=y_neg.device)
            return y_neg[:, None], ones, {"accept": stats.acceptance_rate, "drift": stats.drift_norm}
        if isinstance(self.chains, PersistentParticles):
            refresh, n_refresh = None, 0
            if self.refresh_every and self.step and self.step % self.refresh_every == 0:
                refresh, n_refresh = self._refresh_draws, n
            with frozen(self.potential, eval_mode=True):
                _, y_neg, weights, st = self.chains.step(n, self.log_density, self.langevin_steps, self.generator,
                                                         refresh, n_refresh)
            return y_neg, weights, {"accept": st.acceptance_rate, "ess": st.ess_fraction, "mala_step": st.step_size}
        y_neg, st = self._smc_draws(x, self.particles, self.langevin_steps, self.generator, self.potential)
        weights = torch.full(y_neg.shape[:2], 1.0 / self.particles, dtype=y_neg.dtype, device=y_neg.device)
        return y_neg, weights, {"accept": st.acceptance_rate, "ess": st.ess_fraction, "mala_step": st.final_step_size}

    def train_step(self, x: torch.Tensor, y: torch.Tensor) -> dict[str, torch.Tensor]:
        """One EgNOT update: negatives from the sampler, then one Adam step on
        mean f(ỹ) − mean f(y) (+ energy_reg·mean(f² on both)); weighted particles enter with their
        self-normalised weights. Returns detached 0-d tensors (the loss, mean f on both sides, the
        sampler's statistics); nothing is read on the host."""
        x, y = x.to(self.device), y.to(self.device)
        y_neg, weights, sampler_metrics = self._negatives(x)
        f_pos = self.potential(y)
        f_neg = self.potential(y_neg.reshape(-1, *self.event_shape)).view(weights.shape)
        mean_pos, mean_neg = f_pos.mean(), (weights * f_neg).sum(1).mean()
        loss = mean_neg - mean_pos
        if self.energy_reg:
            loss = loss + self.energy_reg * (f_pos.pow(2).mean() + (weights * f_neg.pow(2)).sum(1).mean())
        if self.optimizer is not None:
            self.update("optimizer", loss)
        self.step += 1
        return {"loss": loss.detach(), "f_pos": mean_pos.detach(), "f_neg": mean_neg.detach(), **sampler_metrics}

    # -- state ---------------------------------------------------------------------------------
    def extra_state(self) -> dict[str, Any]:
        return {"chains": self._pending_chains if self._pending_chains is not None else self.chains.state_dict()}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        if state["chains"] and self.sampler == "langevin" and "log_w" in state["chains"]:
            raise ValueError("the saved chains are weighted particles of sampler='smc'; pass sampler='smc' "
                             "to continue them")
        if state["chains"]:
            if self.chains_kind == "persistent" and not isinstance(self.chains, PERSISTENT):
                self._pending_chains = state["chains"]
            else:
                self.chains.load_state_dict(state["chains"])
