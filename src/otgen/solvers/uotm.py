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

The cost is an ``otgen.costs.Cost``: by default ``SquaredEuclidean(scale=tau)`` (the option
``cost={"name": "sqeuclidean", "reduce": "mean"}`` averages over the coordinates instead of summing);
any other cost c(x, y) -> (n,) differentiable in y (a callable, ``GeneratorCost(G)`` with a
generator T that outputs latents) plugs in through ``cost=``.

The options (``UOTMOptions``, ``otgen.spec``) nest: the conjugates with their strengths
(``phi1={"name": "kl", "alpha": 2.0}``), the networks with their widths and the generator's noise
(``generator={"name": "mlp", "hidden": [64, 64], "noise_dim": 0}``), the two Adam optimisers
(``optim_g={"lr": 2e-4, "ema": 0.999}``) and the critic's training (``critic={"r1": 0.2, "n_critic": 5}``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping

import torch

from ..checks import dim_or_event_shape
from ..costs import Cost
from ..spec import Nested, OneOf, Spec, check_keywords, option, takes
from .base import Solver, check_batch_size, frozen
from .semidual import (CONJUGATE_SPECS, Conjugate, CostOption, Critic, NetworkOption, SqEuclidean, adam,
                       build_cost, build_map_networks, draw_noise, fold,
                       generator_spec, legacy_conjugate, legacy_cost, legacy_networks, legacy_optimisers,
                       nested_doc, per_sample, push, r1_exclusions, r1_penalty)
from .shared_options import DEVICE, DIM, EVENT_SHAPE, POSITIVE, SEED, SOURCE_SHAPE, Adam, check_dim_or_shape

LR_SCHEDULES = ("constant", "cosine")

#: the options of the first (flat) layout and where each went
MOVED = {"alpha1": "phi1.alpha", "alpha2": "phi2.alpha", "cost_reduce": "cost.reduce",
         "noise_dim": "generator.noise_dim", "hidden": "generator.hidden and potential.hidden",
         "activation": "generator.activation and potential.activation", "lr_g": "optim_g.lr", "lr_v": "optim_v.lr",
         "betas": "optim_g.betas and optim_v.betas", "grad_clip": "optim_g.grad_clip and optim_v.grad_clip",
         "lr_schedule": "optim_g.schedule and optim_v.schedule", "ema": "optim_g.ema", "r1": "critic.r1",
         "n_critic": "critic.n_critic"}

#: options of today's layout that the first one did not have
NEW_ONLY = ("optim_g", "optim_v", "critic")


@dataclass(frozen=True)
class UOTMOptions(Spec):
    """The options of UOTM (``otgen.UOTM``)."""

    dim: int | None = option(None, DIM, "dimension of source and target vectors (or give event_shape)",
                             positional=True)
    tau: float = option(1.0, POSITIVE, "cost scale > 0: c(x, y) = tau·reduce((x − y)²) (no ½; uotm-sjko.md §1.3)",
                        positional=True)
    phi1: Any = option("kl", OneOf(CONJUGATE_SPECS),
                       "conjugate of the source penalty: 'kl', 'chi', 'softplus' or 'linear' (a hard marginal; "
                       "both 'linear' is balanced OT), or {name: kl, alpha: 2.0} with its strength alpha",
                       positional=True)
    phi2: Any = option("kl", OneOf(CONJUGATE_SPECS), "conjugate of the target penalty, as phi1", positional=True)
    event_shape: Any = option(None, EVENT_SHAPE, "shape of one sample, e.g. (1, 8, 8); dim=D means (D,)")
    source_shape: Any = option(None, SOURCE_SHAPE,
                               "shape of one source sample where it differs from the target's (a custom cost "
                               "such as GeneratorCost; None: event_shape)")
    cost: Any = option(SqEuclidean(), CostOption(),
                       "'sqeuclidean' (tau·Σ(x − y)²; {name: sqeuclidean, reduce: mean} for the mean), 'zero', "
                       "or a Cost / callable c(x, y) -> (n,) (then tau stays 1)")
    generator: Any = option("mlp", NetworkOption("generator"),
                            "the map T(x, z): a network of otgen.nn ('mlp', {name: conv, width: 32}) with its "
                            "noise_dim (default: the number of coordinates; 0: deterministic), or a "
                            "torch.nn.Module taking (x, z) that says its noise_shape")
    potential: Any = option("mlp", NetworkOption("potential"),
                            "the potential v(y): a network of otgen.nn ('mlp', {name: conv, width: 32}) or a "
                            "torch.nn.Module (n, *event_shape) -> (n,)")
    optim_g: Adam = option(Adam(), Nested(Adam),
                           "Adam of the generator (schedule 'constant' or 'cosine'; ema: an EMA of T used by "
                           "transport and sample)")
    optim_v: Adam = option(Adam(), Nested(Adam), "Adam of the potential (schedule 'constant' or 'cosine'; no ema)")
    critic: Critic = option(Critic(), Nested(Critic), "the potential's training: R1 penalty r1, n_critic updates "
                                                      "per generator update")
    seed: int = option(0, SEED, "seed of the initial weights and of every random draw")
    device: Any = option("cpu", DEVICE, "'cpu', 'cuda', 'cuda:N' or 'auto'")

    def validate(self, where: str) -> None:
        check_dim_or_shape(self.dim, self.event_shape, where)
        if self.tau != 1.0 and not (isinstance(self.cost, SqEuclidean) and self.cost.scale is None):
            raise ValueError(f"{where}tau scales the default cost; with {where}cost={_shown(self.cost)} leave tau at "
                             f"1.0 (a sqeuclidean cost without its own scale takes tau), got tau={self.tau!r}")
        self.optim_g.supported(f"{where}optim_g", LR_SCHEDULES)
        self.optim_v.supported(f"{where}optim_v", LR_SCHEDULES, ema=False)

    @classmethod
    def from_legacy(cls, flat: Mapping[str, Any], saved: bool = True) -> dict[str, Any]:
        """The options of a mapping of the first (flat) layout (a format-1 model file's config, an old
        config's model section, or one with flat keys mixed in): alpha1/alpha2 into phi1/phi2,
        cost_reduce into the cost, noise_dim/hidden/activation into the network specs, lr_g/lr_v/betas/
        grad_clip/lr_schedule/ema into optim_g/optim_v, r1/n_critic into critic. Keys of today's layout
        pass through (a flat key wins over them). UOTM had no ``earlier_defaults``: a key not given
        takes today's default, which is the old one, whether ``flat`` comes from a model file
        (``saved``) or not."""
        names = cls.option_names()
        out = {k: v for k, v in flat.items() if k in names or k not in MOVED}
        legacy_conjugate(flat, out, "phi1", "alpha1")
        legacy_conjugate(flat, out, "phi2", "alpha2")
        legacy_cost(flat, out, old_layout=not any(k in flat for k in NEW_ONLY), reduce=flat.get("cost_reduce"))
        legacy_networks(flat, out)
        legacy_optimisers(flat, out, ema=True)
        fold(flat, out, "critic", {"r1": "r1", "n_critic": "n_critic"})
        return out


def _shown(cost: Any) -> str:
    return repr(cost) if isinstance(cost, (Spec, Cost)) else type(cost).__name__


@takes(UOTMOptions)
class UOTMSolver(Solver):
    """UOTM losses and update step (``otgen.UOTM`` adds ``fit``).

    Options (``UOTMOptions``; YAML: the same names, nested options as mappings)::

        {options}
    """

    name = "UOTM"
    Options = UOTMOptions
    small_options = {"dim": 2, "tau": 0.5, "generator": {"hidden": [16, 16]}, "potential": {"hidden": [16, 16]},
                     "critic": {"r1": 0.1}, "optim_g": {"ema": 0.9, "grad_clip": 1.0}}
    divergence_hint = ("Try a smaller learning rate, an R1 penalty (critic.r1 > 0), a larger tau, or a conjugate "
                       "that grows more slowly than KL's exp (phi1/phi2 = 'softplus' or 'chi').")

    def __init__(self, *args: Any, **kwargs: Any):
        check_keywords(self.Options, kwargs, MOVED)
        o = self.Options(*args, **kwargs)  # every check, before any work
        shape = dim_or_event_shape(o.dim, o.event_shape)
        source = shape if o.source_shape is None else tuple(o.source_shape)
        self.phi1, self.phi2 = o.phi1.build("phi1"), o.phi2.build("phi2")
        cost = build_cost(o.cost, o.tau)
        cost.check_shapes(source, shape)
        self.options = o = o.replace(generator=generator_spec(o.generator, math.prod(shape)))
        super().__init__(seed=o.seed, device=o.device)

        self.event_shape, self.source_shape = shape, source
        self.dim = math.prod(shape)
        self.tau, self.cost = float(o.tau), cost
        gen, pot = build_map_networks(o.generator, o.potential, source, shape, o.seed)
        self.noise_dim = math.prod(getattr(gen, "noise_shape", ()) or (0,))
        self.generator_net = self.add_network("generator_net", gen)
        self.potential = self.add_network("potential", pot)
        self.n_critic, self.r1 = o.critic.n_critic, o.critic.r1
        self.ema = self.add_ema("ema", self.generator_net, o.optim_g.ema)
        self.opt_g = self.add_optimizer("opt_g", adam("generator", self.generator_net, o.optim_g.lr, o.optim_g.betas),
                                        schedule=self._schedule(o.optim_g), grad_clip=o.optim_g.grad_clip,
                                        ema=self.ema)
        self.opt_v = self.add_optimizer("opt_v", adam("potential", self.potential, o.optim_v.lr, o.optim_v.betas),
                                        schedule=self._schedule(o.optim_v), grad_clip=o.optim_v.grad_clip)

    def _schedule(self, optim: Adam):
        return self.run_cosine if optim.schedule == "cosine" else None

    # -- the map ---------------------------------------------------------------------------------
    def _noise(self, n: int, rng: torch.Generator) -> torch.Tensor | None:
        return draw_noise(self.generator_net, n, rng, self.device)

    @torch.no_grad()
    def transport(self, x: torch.Tensor, *, rng: torch.Generator | None = None,
                  batch_size: int | None = None) -> torch.Tensor:
        """T(x, z) with fresh z for every call: (n, *source_shape) -> (n, *event_shape). Uses the EMA
        weights if any. ``x``: a Tensor, array or list, cast to float32 on the model's device; an empty,
        non-finite or non-numeric x raises ValueError/TypeError naming x. ``batch_size``: at most that
        many x per network call (None: all at once), z drawn batch by batch (``semidual.push`` says
        when that gives one call's numbers); ValueError naming ``batch_size`` unless None or an int >= 1."""
        x = self._as_input("x", x, self.source_shape)
        batch_size = check_batch_size(batch_size)
        rng = self._sampling_rng(rng)
        net = self.ema.shadow if self.ema is not None else self.generator_net
        return push(net, x, rng, self.device, batch_size)

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
            y_fake = self.generator_net(x, self._noise(x.shape[0], self.rng))
        loss_v, stats = self.potential_loss(x, y, y_fake)
        self.update("opt_v", loss_v)
        out = {"loss_v": loss_v.detach(), **stats}
        if (self.step + 1) % self.n_critic == 0:
            with frozen(self.potential):
                y_fake = self.generator_net(x, self._noise(x.shape[0], self.rng))
                loss_g = self.generator_loss(x, y_fake)
                self.update("opt_g", loss_g)
            out["loss_g"] = loss_g.detach()
        self.step += 1
        return out


UOTMSolver.__doc__ += nested_doc(("phi1, phi2: {name: kl, alpha: 1.0}", Conjugate),
                                 ("cost: {name: sqeuclidean}", SqEuclidean), ("optim_g, optim_v", Adam),
                                 ("critic", Critic))
