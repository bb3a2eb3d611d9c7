"""EgNOT: energy-guided entropic neural optimal transport (Mokrov et al., ICLR 2024).

One potential f(y) defines the conditional plan

    pi_f(y | x) ∝ exp( (f(y) − c(x, y)) / eps ),

the Gibbs minimiser of the weak dual of  min_pi E_pi[c] − eps·E_x H(pi(·|x)),  which has the same
solution as E_pi[c] + eps·KL(pi ‖ P⊗Q) (design.md's convention for c = ½‖x − y‖²). f is trained like
an energy-based model: the dual's gradient is E_Q ∇f − E_{x~P, y~pi_f(·|x)} ∇f, so each step
minimises  mean f(ỹ) − mean f(y)  with positives y ~ Q and negatives ỹ ~ pi_f(·|x̃) from the sampler.

Options: :class:`EgNOTOptions`, with the sampler one of :class:`SMC` (default) and :class:`Langevin`,
each with its own kinds of training chains (``SMC_CHAINS``, ``LANGEVIN_CHAINS``).

Shapes: a source batch is (n, *source_shape), a target batch (n, *event_shape); ``sample(x, k)``
returns (n, k, *event_shape).
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass
from typing import Any, Mapping

import torch
from torch import nn

from ..checks import derived_seed
from ..costs import COSTS, Cost, make_cost
from ..distributions.base import draw
from ..nn import build
from ..nn import registry as networks
from ..nn.mlp import QUADRATIC
from ..nn.registry import Network, as_spec
from ..registry import Registry
from ..sampling import (FreshStart, GaussianBase, LangevinSampler, PersistentChains, PersistentParticles,
                        ReplayBuffer, TemperedSMC, noise_init, source_init)
from ..schema import Anything, Choice, Flag, Number, Numbers, Text
from ..spec import Nested, OneOf, Spec, check_keywords, encode, option, takes
from .base import Solver, check_batch_size, frozen, map_batches
from .shared_options import DEVICE, DIM, EVENT_SHAPE, POSITIVE, SEED, SOURCE_SHAPE, Adam, check_dim_or_shape

__all__ = ["EgNOTOptions", "EgNOTSolver", "SMC", "Langevin", "ParticlePool", "FreshParticles", "ChainPool",
           "ReplayChains", "FreshChains", "SAMPLERS", "SMC_CHAINS", "LANGEVIN_CHAINS"]

CHAIN_INITS = ("auto", "noise", "source")
LR_SCHEDULES = ("constant", "cosine")
PERSISTENT = (PersistentChains, PersistentParticles)  # the chain stores built in prepare() from the source pool
# the potential's MLP widths and activation where its spec does not name them (also the keyword
# arguments of the other networks that take them), and the MLP's quadratic term
NET_DEFAULTS = {"hidden": (256, 256), "activation": "silu", "zero_init": True}
QUADRATIC_DEFAULT = "auto"
NET_CHECKS = {"hidden": Numbers(int), "activation": Text()}
# iterations between redraws of the visited particles by a fresh tempered SMC (docs/egnot.md)
REFRESH_EVERY = 20
# most particles in one tempered-SMC group of ``sample``: more draws per x come from independent groups
SAMPLE_GROUP = 20
# files of the first format were saved with these defaults when they do not store the option
# (before sampler "smc" became the default, and before its particles were refreshed)
EARLIER_DEFAULTS = {"sampler": "langevin", "refresh_every": 0}
#: the options of the first (flat) layout and where each went (docs/egnot.md has the table)
MOVED = {"hidden": "potential.hidden", "activation": "potential.activation", "quadratic": "potential.quadratic",
         "lr": "optim.lr", "betas": "optim.betas", "grad_clip": "optim.grad_clip", "lr_schedule": "optim.schedule",
         "ema": "optim.ema", "langevin_steps": "sampler.steps", "sample_steps": "sampler.sample_steps",
         "particles": "sampler.particles (SMC)", "sample_group": "sampler.sample_group (SMC)",
         "step_size": "sampler.step_size (Langevin)", "metropolis": "sampler.metropolis (Langevin)",
         "score_clip": "sampler.score_clip (Langevin)", "step_decay": "sampler.step_decay (Langevin)",
         "chain_init": "sampler.init", "init_scale": "sampler.init_scale", "chains": "sampler.chains",
         "buffer_size": "sampler.chains.pool_size (persistent) or sampler.chains.size (replay)",
         "reinit_prob": "sampler.chains.reinit_prob (replay)",
         "refresh_every": "sampler.chains.refresh_every (SMC, persistent)",
         "refresh_steps": "sampler.chains.refresh_steps (SMC, persistent)"}

COUNT = Number(integer=True, low=1)
STEPS = Number(integer=True, low=0)
INIT = Choice(CHAIN_INITS)
INIT_DOC = ("where chains start: 'noise' N(0, init_scale² I); 'source' x + sqrt(eps)·ξ (needs equal source "
            "and target shapes); 'auto'")

SAMPLERS: Registry[type[Spec]] = Registry("sampler")
SMC_CHAINS: Registry[type[Spec]] = Registry("smc chains")
LANGEVIN_CHAINS: Registry[type[Spec]] = Registry("langevin chains")


# ----------------------------------------------------------------------------- the samplers' chains
@SMC_CHAINS.register("persistent")
@dataclass(frozen=True)
class ParticlePool(Spec):
    """Training particles of sampler "smc" that live on: ``particles`` weighted particles for each
    point of a pool of source points, reweighted, resampled and moved at each visit, and every
    ``refresh_every`` iterations redrawn by a fresh tempered SMC. The pool is the source Tensor of
    ``fit``, or ``pool_size`` points drawn once from a source sampler."""

    name = "persistent"
    pool_size: int = option(4096, COUNT, "points drawn once from a source sampler (a source Tensor is the pool "
                                         "itself), int >= 1")
    refresh_every: int = option(REFRESH_EVERY, STEPS,
                                "every this many iterations the particles of the visited pool points are "
                                "redrawn by a fresh tempered SMC under the current potential (0: never)")
    refresh_steps: int = option(60, COUNT, "MALA moves of that tempered SMC, int >= 1")


@SMC_CHAINS.register("fresh")
@dataclass(frozen=True)
class FreshParticles(Spec):
    """No memory: each training batch draws its particles by a short tempered SMC of ``steps`` moves
    (for fewer than 6 moves: one importance-resampling step from the base, then the moves)."""

    name = "fresh"


@LANGEVIN_CHAINS.register("persistent")
@dataclass(frozen=True)
class ChainPool(Spec):
    """One Langevin chain per point of a pool of source points, never re-initialised (the source
    Tensor of ``fit``, or ``pool_size`` points drawn once from a source sampler)."""

    name = "persistent"
    pool_size: int = option(4096, COUNT, "points drawn once from a source sampler (a source Tensor is the pool "
                                         "itself), int >= 1")


@LANGEVIN_CHAINS.register("replay")
@dataclass(frozen=True)
class ReplayChains(Spec):
    """The paper's IGEBM replay buffer of (y, x) pairs: each chain restarts from ``init`` with
    probability ``reinit_prob`` (with the batch's x), else continues a random stored pair."""

    name = "replay"
    size: int = option(4096, COUNT, "capacity of the buffer (pairs), int >= 1")
    reinit_prob: float = option(0.05, Number(low=0, high=1), "probability that a chain restarts, in [0, 1]")


@LANGEVIN_CHAINS.register("fresh")
@dataclass(frozen=True)
class FreshChains(Spec):
    """No memory: every training batch starts its chains from ``init``."""

    name = "fresh"


# ----------------------------------------------------------------------------- the samplers
@SAMPLERS.register("smc")
@dataclass(frozen=True)
class SMC(Spec):
    """Weighted particles with MALA moves whose step adapts to the acceptance rate (never diverges,
    whatever eps). ``sample`` runs tempered SMC from a Gaussian base q0 (``init``: the cost's kernel
    N(x, eps/curvature·I) for the quadratic cost, else N(0, init_scale² I)) to the plan, which gets the
    weights of separated modes right; training keeps weighted particles per pool point
    (``chains``: :class:`ParticlePool`, "persistent") or draws them afresh per batch
    (:class:`FreshParticles`, "fresh"). YAML: ``sampler: {name: smc, particles: 8}``."""

    name = "smc"
    particles: int = option(4, COUNT, "particles per conditioning point: per pool point in training, and the "
                                      "least number in one SMC group of sample (transport returns one of them)")
    steps: int = option(5, COUNT, "MALA moves of each particle per training iteration, int >= 1")
    sample_steps: int = option(300, STEPS, "MALA moves per draw of sample / transport (tempering, then at the "
                                           "plan), int >= 0")
    sample_group: int = option(SAMPLE_GROUP, COUNT,
                               "most particles in one tempered-SMC group of sample: sample(x, n) draws ceil(n / "
                               "size) independent groups of size = max(particles, min(n, sample_group)) per x")
    init: str = option("auto", INIT, "the base q0: 'noise' N(0, init_scale² I); 'source' the cost's kernel "
                                     "N(x, eps/curvature·I) (the quadratic cost only); 'auto' the kernel where "
                                     "the cost has one, else noise")
    init_scale: float = option(1.0, POSITIVE, "std of the noise base, > 0")
    chains: Spec = option(ParticlePool(), OneOf(SMC_CHAINS),
                          "training particles: 'persistent' (ParticlePool(pool_size, refresh_every, "
                          "refresh_steps)) or 'fresh' (FreshParticles())")


@SAMPLERS.register("langevin")
@dataclass(frozen=True)
class Langevin(Spec):
    """The paper's sampler: unadjusted Langevin (ULA, or MALA with ``metropolis``) with step eta,
    y ← y + (eta / 2eps)·∇(f − c) + sqrt(eta)·ξ, from chains kept as ``chains`` says
    (:class:`ChainPool` "persistent", :class:`ReplayChains` "replay", :class:`FreshChains` "fresh").
    YAML: ``sampler: {name: langevin, step_size: 0.001, chains: replay}``."""

    name = "langevin"
    steps: int = option(30, COUNT, "Langevin steps per training iteration, int >= 1")
    step_size: float | None = option(None, Number(low=0, low_open=True, nullable=True),
                                     "eta > 0 (None: 0.05·eps, stored resolved)")
    metropolis: bool = option(False, Flag(), "MALA (accept/reject each step) instead of ULA")
    score_clip: float | None = option(None, Number(low=0, low_open=True, nullable=True),
                                      "max norm of each sample's drift per step (None: off)")
    step_decay: float = option(1.0, Number(low=0, high=1, low_open=True), "eta multiplier per step, in (0, 1]")
    sample_steps: int | None = option(None, Number(integer=True, low=0, nullable=True),
                                      "steps per draw of sample / transport (None: 10·steps, stored resolved)")
    init: str = option("auto", INIT, "where chains start: 'noise' N(0, init_scale² I); 'source' x + sqrt(eps)·ξ, "
                                     "the plan of ½‖x − y‖² alone; 'auto' noise")
    init_scale: float = option(1.0, POSITIVE, "std of the noise start, > 0")
    chains: Spec = option(ChainPool(), OneOf(LANGEVIN_CHAINS),
                          "training chains: 'persistent' (ChainPool(pool_size)), 'replay' (ReplayChains(size, "
                          "reinit_prob)) or 'fresh' (FreshChains())")


# ----------------------------------------------------------------------------- the potential
@dataclass(frozen=True)
class Potential(Network):
    """A potential network spec (``otgen.nn.registry``): a name, a mapping ``{name: ..., **kwargs}`` (no
    name: "mlp"), or a module; the MLP's ``quadratic`` is one of QUADRATIC."""

    role: str = "potential"

    def _check(self, name, value):
        if isinstance(value, Mapping) and "name" not in value:
            value = {"name": "mlp", **value}
        super()._check(name, value)
        if isinstance(value, Mapping):
            value = as_spec(self.role, value)  # a copy, its name as registered
            for key, check in NET_CHECKS.items():  # the solver's shorthands, in whichever network takes them
                if key in value:
                    value[key] = check.check(f"{name}.{key}", value[key])
            if value["name"] == "mlp" and value.get("quadratic", QUADRATIC_DEFAULT) not in QUADRATIC:
                raise ValueError(f"{name}.quadratic must be one of {QUADRATIC}, got {value['quadratic']!r}")
        return value


# ----------------------------------------------------------------------------- the options
@dataclass(frozen=True)
class EgNOTOptions(Spec):
    """The options of EgNOT (see ``EgNOTSolver``)."""

    dim: int | None = option(None, DIM, "dimension of source and target vectors (or give event_shape)",
                             positional=True)
    eps: float = option(1.0, POSITIVE, "entropic regularisation eps > 0 (cost + eps·KL convention)",
                        positional=True)
    event_shape: Any = option(None, EVENT_SHAPE, "shape of one target sample, e.g. (3, 32, 32); dim=D means (D,)")
    source_shape: Any = option(None, SOURCE_SHAPE,
                               "shape of one source sample where it differs from the target's (custom or "
                               "generator costs; None: event_shape)")
    cost: Any = option("sqeuclidean", Anything("a cost name, a Cost or a callable c(x, y) -> (n,)"),
                       "'sqeuclidean' (½‖x − y‖²), 'zero' (plain EBM of the target), a Cost (GeneratorCost(G): "
                       "energies in a generator's latent space) or a callable c(x, y) -> (n,)")
    potential: Any = option(None, Potential(),
                            "the network f: (n, *event_shape) -> (n,): a name of otgen.nn.registry (None: "
                            "'mlp'), a mapping {name: mlp, hidden: [64, 64]} (no name: the mlp), or an "
                            "nn.Module. The mlp (ScalarMLP) has hidden (256, 256), activation 'silu' and a "
                            "quadratic term 'auto' ('full', 'diag' or 'none') bounded by the cost's curvature; "
                            "'auto' is 'none' for costs of unknown curvature")
    optim: Adam = option(Adam(lr=3e-4, betas=(0.5, 0.99), schedule="cosine"), Nested(Adam),
                         "Adam of the potential (schedule 'constant' or 'cosine'; the quadratic term learns at "
                         "10× lr; ema: an EMA of the weights that sample / transport use)")
    energy_reg: float = option(0.0, Number(low=0),
                               "alpha of the penalty alpha·mean(f(y)² + f(ỹ)²) (0: off, as in the paper; then "
                               "the potential's output_bias, a constant the loss cannot see, is not trained)")
    sampler: Spec = option(SMC(), OneOf(SAMPLERS),
                           "how pi(·|x) is sampled, in training and by sample / transport: 'smc' (SMC(...), "
                           "default) or 'langevin' (Langevin(...)), a name or {name: ..., **options}")
    seed: int = option(0, SEED, "seeds the initial weights and every random draw of the solver")
    device: Any = option("cpu", DEVICE, "'cpu', 'cuda', 'cuda:N' or 'auto'")

    #: what a flat file that stores no such key meant (the defaults when it was written)
    EARLIER_DEFAULTS = EARLIER_DEFAULTS

    def validate(self, where: str) -> None:
        if isinstance(self.cost, str) or (isinstance(self.cost, Mapping) and self.cost.get("name") != "generator"):
            COSTS.get(self.cost if isinstance(self.cost, str) else self.cost.get("name"), where=f"{where}cost")
        check_dim_or_shape(self.dim, self.event_shape, where)
        self.optim.supported(f"{where}optim", LR_SCHEDULES)
        event_shape = [self.dim] if self.dim is not None else list(self.event_shape)
        if self.sampler.init == "source" and self.source_shape is not None and list(self.source_shape) != event_shape:
            raise ValueError(f"{where}sampler.init='source' needs equal source and target shapes, got "
                             f"{where}source_shape={list(self.source_shape)} and the event shape {event_shape}")

    @classmethod
    def from_legacy(cls, flat: Mapping[str, Any], saved: bool | None = None) -> dict[str, Any]:
        """The options of today's layout (a mapping ``from_config`` takes) from the flat constructor
        arguments of otgen's first format (``lr``, ``hidden``, ``sampler: langevin``, ``langevin_steps``,
        ``buffer_size``, ...; options of today's layout may be mixed in, the flat ones then win; the
        table of docs/egnot.md says where each went).

        ``saved``: whether ``flat`` is what a model file stores; then a missing ``sampler`` /
        ``refresh_every`` means the default of the time files did not store it (EARLIER_DEFAULTS:
        "langevin", 0), while in a config section it means today's. None (default): a file's, if
        ``flat`` holds all of dim, event_shape, source_shape and seed, as every file does (a custom
        cost or potential may have been taken out) and a config section, which gives only one of dim
        and event_shape, does not.

        Values that meant "the default" (None, and the options of the other sampler at their neutral
        values) are dropped; others that the old constructor refused stay where the spec refuses
        them again, by name."""
        if saved is None:
            saved = all(k in flat for k in ("dim", "event_shape", "source_shape", "seed"))
        flat = {**EARLIER_DEFAULTS, **flat} if saved else dict(flat)
        out = {k: flat.pop(k) for k in ("dim", "eps", "event_shape", "source_shape", "cost") if k in flat}
        optim = _moved(flat, "optim", {"lr": "lr", "betas": "betas", "grad_clip": "grad_clip",
                                        "lr_schedule": "schedule", "ema": "ema"})
        if optim is not None:
            out["optim"] = optim
        potential = _legacy_potential(flat)
        if potential is not None or "potential" in flat:
            out["potential"] = potential
        flat.pop("potential", None)
        if "energy_reg" in flat:
            out["energy_reg"] = flat.pop("energy_reg")
        sampler = _legacy_sampler(flat)
        if sampler is not None:
            out["sampler"] = sampler
        out.update({k: flat.pop(k) for k in ("seed", "device") if k in flat})
        out.update(flat)  # unknown keys: from_config names them, with a "did you mean"
        return out


def _moved(flat: dict, key: str, renames: Mapping[str, str]) -> Any:
    """``flat[key]`` (a mapping, or absent) updated by the flat options ``renames`` (old -> new name)
    taken out of ``flat``; None if there is neither."""
    nested = flat.pop(key, None)
    moved = {new: flat.pop(old) for old, new in renames.items() if old in flat}
    if not moved:
        return nested
    if nested is None:
        return moved
    nested = encode(nested) if isinstance(nested, Spec) else nested
    return {**nested, **moved} if isinstance(nested, Mapping) else nested  # not a mapping: refused as it is


def _legacy_potential(flat: dict) -> Any:
    """The potential spec with the flat ``hidden``, ``activation`` and ``quadratic`` taken out of
    ``flat`` and moved into it where they built the network (not its defaults, not a module's)."""
    potential = flat.get("potential")
    given = {k: flat.pop(k) for k in ("hidden", "activation", "quadratic") if k in flat}
    defaults = {**NET_DEFAULTS, "quadratic": QUADRATIC_DEFAULT}
    changed = {k: v for k, v in given.items()
               if (list(v) if isinstance(v, (list, tuple)) else v)
               != (list(defaults[k]) if isinstance(defaults[k], tuple) else defaults[k])}
    if not changed or isinstance(potential, nn.Module) or potential == "custom":
        return potential
    spec = {"name": "mlp"} if potential is None else {"name": potential} if isinstance(potential, str) \
        else dict(potential) if isinstance(potential, Mapping) else None
    if spec is None:
        return potential  # refused by the potential's own check
    name = spec.setdefault("name", "mlp")
    for k, v in changed.items():
        if k in spec:  # the spec's own value built the network
            continue
        if (k == "quadratic" and name == "mlp") or (k != "quadratic" and k in networks.takes_defaults("potential", name, (k,))):
            spec[k] = list(v) if isinstance(v, tuple) else v
    return spec if len(spec) > 1 else potential


def _legacy_sampler(flat: dict) -> Any:
    """The sampler spec from the flat sampler options taken out of ``flat``."""
    sampler = flat.pop("sampler", None)
    if isinstance(sampler, Spec):
        sampler = encode(sampler)
    spec = dict(sampler) if isinstance(sampler, Mapping) else {} if sampler is None else {"name": sampler}
    name = spec.get("name", "smc")
    if not isinstance(name, str) or name not in SAMPLERS:
        return sampler  # refused by name, with a "did you mean"
    smc = SAMPLERS.canonical(name) == "smc"
    spec["name"] = SAMPLERS.canonical(name)
    # None meant "the sampler's default" for every flat sampler option
    taken = {k: flat.pop(k) for k in ("langevin_steps", "sample_steps", "chain_init", "init_scale", "particles",
                                      "sample_group", "step_size", "metropolis", "score_clip", "step_decay",
                                      "chains", "buffer_size", "reinit_prob", "refresh_every", "refresh_steps")
             if k in flat}
    taken = {k: v for k, v in taken.items() if v is not None}
    for old, new in (("langevin_steps", "steps"), ("sample_steps", "sample_steps"), ("chain_init", "init"),
                     ("init_scale", "init_scale")):
        if old in taken:
            spec[new] = taken.pop(old)
    # the other sampler's options at their neutral values were stored by every file: dropped
    neutral = {"metropolis": False, "step_decay": 1.0} if smc else {}
    own = ("particles", "sample_group") if smc else ("step_size", "metropolis", "score_clip", "step_decay")
    other = ("step_size", "metropolis", "score_clip", "step_decay") if smc else ("particles", "sample_group")
    for k in own:
        if k in taken:
            spec[k] = taken.pop(k)
    for k in other:
        if k in taken and k in neutral and taken[k] == neutral[k]:
            taken.pop(k)
        elif k in taken:
            spec[k] = taken.pop(k)  # the old constructor refused it too
    chains = _legacy_chains(spec.get("chains"), taken, smc)
    if chains is not None:
        spec["chains"] = chains
    if len(spec) == 1:  # the name alone
        return None if sampler is None else spec["name"]
    return spec


def _legacy_chains(nested: Any, taken: dict, smc: bool) -> Any:
    """The chains spec of the sampler from the flat ``chains``, ``buffer_size``, ``reinit_prob``,
    ``refresh_every`` and ``refresh_steps`` (each meant only for some kinds of chains)."""
    kind = taken.pop("chains", None)
    spec = dict(nested) if isinstance(nested, Mapping) else {"name": nested} if isinstance(nested, str) else {}
    if kind is not None:
        spec = {"name": kind} if spec.get("name", kind) != kind else {**spec, "name": kind}
    name = spec.get("name", "persistent")
    if "buffer_size" in taken:
        size = taken.pop("buffer_size")
        if name == "persistent":
            spec["pool_size"] = size
        elif name == "replay":
            spec["size"] = size
    if "reinit_prob" in taken:
        prob = taken.pop("reinit_prob")
        if name == "replay":
            spec["reinit_prob"] = prob
    for key in ("refresh_every", "refresh_steps"):
        if key in taken:
            value = taken.pop(key)
            if smc and name == "persistent":
                spec[key] = value
            elif key == "refresh_every" and value:  # refused as the old constructor refused it
                spec[key] = value
    if nested is None and set(spec) <= {"name"}:
        return spec.get("name")
    return {"name": name, **spec}


def _closed_form_plan(potential: nn.Module, eps: float, kernel_std: float | None) -> bool:
    """Whether EgNOT uses ``potential``'s closed-form plan (``log_partition``, ``log_v``,
    ``conditional_sample``, built for this eps and the cost's kernel variance); ValueError for such a
    potential built for another eps or kernel than the solver's cost has."""
    if not all(callable(getattr(potential, m, None)) for m in ("log_partition", "log_v", "conditional_sample")):
        return False
    built_for = getattr(potential, "kernel_variance", None)
    if built_for is None:
        return False  # the mixture as a plain energy (a cost without a Gaussian kernel): sampled by the sampler
    kernel = None if kernel_std is None else kernel_std ** 2
    if kernel is None or abs(built_for - kernel) > 1e-9 * kernel or abs(potential.eps - eps) > 1e-12 * eps:
        raise ValueError(f"the potential's closed-form plan was built for eps={potential.eps:g} and kernel variance "
                         f"{built_for:g}; this solver has eps={eps:g} and a cost whose kernel variance is "
                         f"{'none (no Gaussian kernel)' if kernel is None else f'{kernel:g}'}")
    return True


def _describe_specs(cls):
    """Class decorator: fills the placeholders {SMC}, {ParticlePool}, ... of the docstring with the
    options of those specs (``Spec.describe``)."""
    for spec in (SMC, ParticlePool, FreshParticles, Langevin, ChainPool, ReplayChains, FreshChains):
        cls.__doc__ = cls.__doc__.replace("{%s}" % spec.__name__, spec.describe(12).lstrip() or "(no options)")
    return cls


@takes(EgNOTOptions)
@_describe_specs
class EgNOTSolver(Solver):
    """EgNOT losses, the sampler's negatives and the update step (``otgen.EgNOT`` adds ``fit``).

    Options (:class:`EgNOTOptions`; a config's ``model`` section takes the same names, nested specs as
    mappings, e.g. ``sampler: {name: smc, particles: 8, chains: {name: persistent, refresh_every: 10}}``):

        {options}

    Samplers (``sampler``; docs/egnot.md has the measurements that chose the default):

        ``SMC(...)`` ("smc", the default): weighted particles with MALA moves whose step adapts to
        the acceptance rate (never diverges, whatever eps). ``sample`` runs tempered SMC from a
        Gaussian base q0 to the plan, which gets the weights of separated modes right.
            {SMC}
        Its ``chains``: ``ParticlePool(...)`` ("persistent", the default): ``particles`` weighted
        particles per pool point, reweighted, resampled and moved at each visit; reweighting only
        moves mass between a point's particles and MALA moves are local, so without the refresh a
        point whose particles all sit in one mode keeps that mode's weight while f sharpens.
            {ParticlePool}
        ``FreshParticles()`` ("fresh"): a short tempered SMC of ``steps`` moves per batch (for fewer
        than 6 moves: one importance-resampling step from the base, then the moves).

        ``Langevin(...)`` ("langevin"): the paper's ULA (or MALA with ``metropolis``),
        y ← y + (eta / 2eps)·∇_y(f − c) + sqrt(eta)·ξ.
            {Langevin}
        Its ``chains``: ``ChainPool(...)`` ("persistent", the default), one chain per pool point,
        never re-initialised:
            {ChainPool}
        ``ReplayChains(...)`` ("replay"), the paper's IGEBM buffer of (y, x) pairs:
            {ReplayChains}
        ``FreshChains()`` ("fresh"): no memory.

    The pool of the persistent chains is the source Tensor of ``fit`` itself, or ``pool_size``
    points drawn once from a source sampler. Where the kernel is much wider than the plan's modes
    (large eps) one large SMC group weighs the modes wrongly (most likely through its shared
    resampling ancestry); groups of ``sample_group`` = 20 lose little against one group at small eps
    and are much better at large eps (docs/egnot.md, ``benchmarks/smc_groups.py``).

    Options of the first format (``lr``, ``hidden``, ``langevin_steps``, ``buffer_size``, ...) are
    converted by ``EgNOTOptions.from_legacy`` (docs/egnot.md lists where each went).
    """

    name = "EgNOT"
    Options = EgNOTOptions
    small_options = {"dim": 2, "eps": 0.5, "potential": {"hidden": [16, 16]},
                     "sampler": {"name": "smc", "steps": 3, "sample_steps": 8,
                                 "chains": {"name": "persistent", "pool_size": 16, "refresh_every": 2,
                                            "refresh_steps": 8}}}
    divergence_hint = ("Try a smaller optim.lr or set optim.grad_clip (with sampler 'langevin': a smaller "
                       "sampler.step_size, or sampler.score_clip).")

    def __init__(self, *args: Any, **kwargs: Any):
        check_keywords(self.Options, kwargs, MOVED)
        o = self.Options(*args, **kwargs)  # every check, before any work
        event_shape = (o.dim,) if o.dim is not None else tuple(o.event_shape)
        source_shape = event_shape if o.source_shape is None else tuple(o.source_shape)
        s = o.sampler
        smc = isinstance(s, SMC)
        if not smc:  # stored resolved, so that a saved model samples the same way
            s = s.replace(step_size=0.05 * o.eps if s.step_size is None else s.step_size,
                          sample_steps=10 * s.steps if s.sample_steps is None else s.sample_steps)
        super().__init__(seed=o.seed, device=o.device)
        self.options = o = o.replace(sampler=s)

        self.eps = o.eps
        self.event_shape = event_shape
        self.source_shape = source_shape
        self.cost = make_cost(o.cost).to(self.device)
        self.cost.check_shapes(source_shape, event_shape)
        kernel = self.cost.kernel_std(self.eps)
        if smc and s.init == "source" and kernel is None:
            raise ValueError(f"sampler.init='source' with sampler 'smc' needs a cost whose kernel exp(-c/eps) is "
                             f"Gaussian (sqeuclidean with reduce='sum'); cost {self.cost.name!r} has none: "
                             f"use sampler.init='noise' or 'auto'")
        curvature = self.cost.curvature
        spec = o.potential if isinstance(o.potential, nn.Module) else as_spec("potential", o.potential)
        if isinstance(spec, dict) and spec["name"] == "mlp":  # the bounded quadratic term needs a curvature
            spec["quadratic"] = self._quadratic_for(spec.get("quadratic", QUADRATIC_DEFAULT), curvature)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(o.seed)
            net = build("potential", spec, context={"event_shape": event_shape, "curvature": curvature or 1.0,
                                                    "eps": self.eps,
                                                    "kernel_variance": None if kernel is None else kernel ** 2},
                        defaults=NET_DEFAULTS)
        self.potential = self.add_network("potential", net)
        # a potential with a closed-form plan (the Gaussian mixture under the quadratic cost): an exact
        # loss and exact draws, no sampler
        self.exact_plan = _closed_form_plan(net, self.eps, kernel)
        if self.exact_plan and o.energy_reg:
            raise ValueError(f"energy_reg={o.energy_reg} applies to potentials trained with negatives; the "
                             f"{type(net).__name__}'s loss is exact (use energy_reg 0)")
        lr = o.optim.lr
        if hasattr(self.potential, "parameter_groups"):
            groups = self.potential.parameter_groups(lr)
        else:
            groups = [{"params": [p for p in self.potential.parameters() if p.requires_grad], "lr": lr}]
        groups = [g for g in groups if g["params"]]
        constant = getattr(self.potential, "output_bias", None)
        if not o.energy_reg and isinstance(constant, nn.Parameter):
            # The loss and the plan see f only up to a constant, so the gradient of a parameter that adds
            # one is 0 but for float rounding (which differs with the number of processes), and Adam
            # rescales that rounding into steps of up to lr. Built-in potentials name it output_bias; it
            # keeps its place in the optimiser's groups (model files keep their layout) but gets no
            # gradient, so Adam skips it.
            constant.requires_grad_(False)
        # a potential without trainable parameters (a fixed, known f) can still be sampled from
        self.ema = self.add_ema("ema", self.potential, o.optim.ema)
        self.optimizer = self.add_optimizer(
            "optimizer", torch.optim.Adam(groups, lr=lr, betas=tuple(o.optim.betas)) if groups else None,
            schedule=self.run_cosine if o.optim.schedule == "cosine" else None, grad_clip=o.optim.grad_clip,
            ema=self.ema)
        self.energy_reg = o.energy_reg
        self._smc = smc
        # the samplers: MALA-moved particles and tempered SMC (its level settings were chosen in
        # docs/egnot.md), or Langevin chains
        self.smc = TemperedSMC(s.sample_steps) if smc else None
        self.langevin = None if smc else LangevinSampler(s.step_size, s.steps, s.metropolis, s.score_clip,
                                                         s.step_decay)
        # the base of "smc": the cost's kernel (mean x, this std) or noise N(0, init_scale² I)
        self._kernel_std = kernel if smc and s.init != "noise" else None
        self._init_scale = s.init_scale
        use_source = s.init == "source" or (s.init == "auto" and self._kernel_std is not None)
        self._init = source_init(self.eps) if use_source else noise_init(event_shape, s.init_scale)
        self._persistent = isinstance(s.chains, (ParticlePool, ChainPool)) and not self.exact_plan
        self._refresh_every = s.chains.refresh_every if isinstance(s.chains, ParticlePool) else 0
        if isinstance(s.chains, ReplayChains):
            self.chains: Any = ReplayBuffer(self._init, s.chains.size, s.chains.reinit_prob, device=self.device)
        else:
            self.chains = FreshStart(self._init)  # "persistent" is built in prepare(), from the source set
        self._pending_chains: dict | None = None

    def _quadratic_for(self, quadratic: str, curvature: float | None) -> str:
        """The MLP potential's quadratic term for a cost of ``curvature``: "auto" is "none" without one."""
        if quadratic == "none" or curvature:
            return quadratic
        if quadratic != "auto":
            raise ValueError(f"potential.quadratic={quadratic!r} needs a cost of known curvature (sqeuclidean); "
                             f"cost {self.cost.name!r} has none: use quadratic 'none'")
        return "none"

    # -- the plan ------------------------------------------------------------------------------
    def log_density(self, x: torch.Tensor, potential: nn.Module | None = None, temperature: float = 1.0):
        """u(y) = (f(y) − c(x, y)) / (eps·temperature) for chains conditioned on ``x``, in the sampler's
        form ``(y, need_value) -> (u or None, ∇_y u)``; gradients never build a graph of the graph.
        ``potential`` defaults to the trained f; ``temperature`` 1 is the plan itself (``sample``)."""
        eps, cost = self.eps * temperature, self.cost
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

    def _run_chains(self, x: torch.Tensor, y0: torch.Tensor):
        with frozen(self.potential, eval_mode=True):
            return self.langevin.run(self.log_density(x), y0, self.rng)

    def _base(self, x_rows: torch.Tensor) -> GaussianBase:
        """The Gaussian q0 of "smc" for chains conditioned on ``x_rows``: the cost's kernel
        N(x, sigma²·I), or the noise start N(0, init_scale²·I)."""
        if self._kernel_std is not None:
            return GaussianBase(self._kernel_std, x_rows)
        return GaussianBase(self._init_scale)

    def _smc_draws(self, x: torch.Tensor, particles: int, steps: int, rng: torch.Generator, potential: nn.Module,
                   temperature: float = 1.0):
        """Tempered SMC: equally weighted draws (len(x), particles, *event_shape) and the stats."""
        xr = x.repeat_interleave(particles, dim=0)
        with frozen(potential, eval_mode=True):
            return self.smc.run(self.log_density(xr, potential, temperature), self._base(xr), x.shape[0], particles,
                                self.event_shape, rng, steps, dtype=x.dtype, device=x.device)

    def _refresh_draws(self, x: torch.Tensor) -> torch.Tensor:
        """Fresh particles for the pool points ``x`` under the current potential (a short tempered SMC)."""
        s = self.options.sampler
        return self._smc_draws(x, s.particles, s.chains.refresh_steps, self.rng, self.potential)[0]

    @torch.no_grad()
    def sample(self, x: torch.Tensor, n_per_x: int = 1, *, steps: int | None = None,
               rng: torch.Generator | None = None, batch_size: int | None = None,
               temperature: float = 1.0) -> torch.Tensor:
        """Draws from pi(·|x): (len(x), n_per_x, *event_shape). Fresh chains, ``steps`` sampler
        steps per draw (default the sampler's ``sample_steps``). "smc" runs independent tempered-SMC
        groups of max(``particles``, min(n_per_x, ``sample_group``)) particles per x, as many as
        n_per_x draws need, and returns a random n_per_x of their particles. Neither the training
        chains nor the training random stream are touched: without ``rng`` (a ``torch.Generator``)
        the draws come from the model's own sampling stream.
        ``x``: a Tensor, array or list of shape (n, *source_shape), n >= 1, cast to float32 on the
        model's device; NaN/Inf, an empty x or a non-numeric one raise ValueError/TypeError naming x.
        ``n_per_x`` (>= 1) and ``steps`` (>= 0) are ints (ValueError otherwise).
        ``batch_size``: at most that many x (``batch_size·n_per_x`` chains) per sampler run, one run
        after the other (None, the default: all x in one run); an int >= 1 or None (ValueError naming
        ``batch_size`` otherwise). Each run draws its own starting points and noise for all its steps,
        so batched draws are other draws from the same distribution, not one run's numbers (only a
        ``batch_size`` >= len(x) gives them).
        ``temperature`` T in (0, 1]: draw from pi(·|x)^(1/T) ∝ exp((f(y) − c(x, y))/(eps·T)) instead,
        the plan sharpened around its modes (the EgNOT paper samples its image plans this way): another
        law than the plan, with less of its noise (about T·eps per pixel around a mode). 1, the
        default, is the plan. The sampler keeps its step size, so the chains need
        step_size < 2·eps·T/curvature to stay stable (docs/egnot.md); a closed-form plan has T = 1 only."""
        x = self._as_source(x, "x")
        n_per_x = self._count("n_per_x", n_per_x, low=1)
        steps = self._count("steps", self.options.sampler.sample_steps if steps is None else steps, low=0)
        batch_size = check_batch_size(batch_size)
        temperature = self.check_temperature(temperature)
        rng = self._sampling_rng(rng)
        potential = self.ema.shadow if self.ema is not None else self.potential
        return map_batches(lambda rows: self._draws(rows, n_per_x, steps, rng, potential, temperature), x,
                           batch_size)

    def check_temperature(self, temperature: Any) -> float:
        """``temperature`` as a float in (0, 1]; ValueError naming it otherwise, or for T != 1 where the
        plan is drawn in closed form (pi^(1/T) of a Gaussian mixture is no Gaussian mixture)."""
        if isinstance(temperature, bool) or not isinstance(temperature, numbers.Real) or not 0 < temperature <= 1:
            raise ValueError(f"temperature must be a number in (0, 1] (1: the plan itself), got {temperature!r}")
        if self.exact_plan and temperature != 1:
            raise ValueError(f"temperature={temperature!r}: this EgNOT draws its plan in closed form (the "
                             "gaussian_mixture potential), at temperature 1 only")
        return float(temperature)

    def _draws(self, x: torch.Tensor, n_per_x: int, steps: int, rng: torch.Generator,
               potential: nn.Module, temperature: float = 1.0) -> torch.Tensor:
        """One sampler run: n_per_x draws per x, (len(x), n_per_x, *event_shape) (exact draws where
        the plan has a closed form: ``steps`` then plays no part)."""
        if self.exact_plan:
            return potential.conditional_sample(x, n_per_x, rng)
        if self._smc:
            return self._grouped_smc_draws(x, n_per_x, steps, rng, potential, temperature)
        xr = x.repeat_interleave(n_per_x, dim=0)
        y0 = self._init(xr, rng)
        with frozen(potential, eval_mode=True):
            y, _ = self.langevin.run(self.log_density(xr, potential, temperature), y0, rng, steps)
        return y.reshape(x.shape[0], n_per_x, *self.event_shape)

    def _grouped_smc_draws(self, x: torch.Tensor, n_per_x: int, steps: int, rng: torch.Generator,
                           potential: nn.Module, temperature: float = 1.0):
        """n_per_x draws per x, (len(x), n_per_x, *event_shape), from independent SMC groups.

        Measured on the mixture pairs' exact potential (docs/egnot.md): where the kernel is much
        wider than the plan's modes (eps >= 10 there) one large group weighs the modes wrongly,
        most likely because its particles share one resampling ancestry; independent groups of
        about 20 keep most of a large group's accuracy at eps <= 1 and are far better at eps >= 10."""
        s = self.options.sampler
        size = max(s.particles, min(n_per_x, s.sample_group))
        n_groups = -(-n_per_x // size)
        y, _ = self._smc_draws(x.repeat_interleave(n_groups, dim=0), size, steps, rng, potential, temperature)
        y = y.reshape(x.shape[0], n_groups * size, *self.event_shape)
        if n_groups * size > n_per_x:  # a random subset: resampled particles come ordered by ancestor
            keep = torch.rand(y.shape[:2], generator=rng, device=rng.device).argsort(1)[:, :n_per_x]
            y = y[torch.arange(len(x), device=y.device)[:, None], keep.to(y.device)]
        return y

    def transport(self, x: torch.Tensor, *, steps: int | None = None, rng: torch.Generator | None = None,
                  batch_size: int | None = None, temperature: float = 1.0) -> torch.Tensor:
        """One draw from pi(·|x) per x: (len(x), *event_shape) (``steps``, ``rng``, ``batch_size``,
        ``temperature``: as ``sample`` takes them)."""
        return self.sample(x, 1, steps=steps, rng=rng, batch_size=batch_size, temperature=temperature)[:, 0]

    def present(self, y: torch.Tensor) -> torch.Tensor:
        """Draws as images: G(z) for a generator cost (latents (n[, k], *event_shape) decoded to
        (n[, k], *source_shape)); the draws themselves otherwise."""
        if not self.decodes:
            return y
        lead = y.shape[: y.dim() - len(self.event_shape)]
        decoded = self.cost.decode(y.reshape(-1, *self.event_shape).to(self.device)).to(y.device)
        return decoded.reshape(*lead, *decoded.shape[1:])

    def run_arrays(self, x: torch.Tensor, rng: torch.Generator,
                   y: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """``y_hat``: one draw from pi(·|x) per x, presented (G(z) for a generator cost, and then the
        latent draws as ``z``)."""
        draws = self.transport(x, rng=rng)
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
        init_from = getattr(self.potential, "init_from", None)
        if callable(init_from) and not bool(self.potential.initialised) and self.step == 0:
            # the mixture's means from target samples (the same in every process: seeded, on the CPU)
            rng = torch.Generator().manual_seed(derived_seed(self.seed, 5))
            n = self.potential.init_draws
            if isinstance(target, torch.Tensor):
                rows = torch.randperm(len(target), generator=rng)[:n]
                samples = target[rows.to(target.device)]
            else:
                samples = draw(target, n, rng)
            init_from(samples, seed=derived_seed(self.seed, 6))
            if self.ema is not None:
                self.ema.shadow.load_state_dict(self.potential.state_dict())
        if self._persistent and not isinstance(self.chains, PERSISTENT):
            if self._pending_chains is not None:  # resumed: continue the saved chains
                state = {k: v.to(self.device) if isinstance(v, torch.Tensor) else v
                         for k, v in self._pending_chains.items()}
                kind = PersistentParticles if self._smc else PersistentChains
                self.chains, self._pending_chains = kind.restored(state), None
                return
            if isinstance(source, torch.Tensor):
                pool = source
            else:  # a sampler: one chain for each of pool_size source points drawn once
                pool_rng = torch.Generator().manual_seed(derived_seed(self.seed, 4))  # samplers draw on the CPU
                pool = draw(source, self.options.sampler.chains.pool_size, pool_rng)
            pool = pool.to(self.device, torch.float32)
            if self._smc:
                self.chains = PersistentParticles(self._base, pool, self.options.sampler.particles,
                                                  self.event_shape, self.rng)
            else:
                self.chains = PersistentChains(self._init, pool, self.rng)

    def _negatives(self, x: torch.Tensor):
        """Negatives for the batch's ``x``: (draws (n, N, *event_shape), weights (n, N) summing to 1
        per row, metrics of the sampler)."""
        n, s = x.shape[0], self.options.sampler
        if not self._smc:
            y0, x_chain, handle = self.chains.begin(x, self.rng)
            y_neg, stats = self._run_chains(x_chain, y0)
            self.chains.end(y_neg, x_chain, handle)
            ones = torch.ones(n, 1, dtype=y_neg.dtype, device=y_neg.device)
            return y_neg[:, None], ones, {"accept": stats.acceptance_rate, "drift": stats.drift_norm}
        if isinstance(self.chains, PersistentParticles):
            refresh, n_refresh = None, 0
            if self._refresh_every and self.step and self.step % self._refresh_every == 0:
                refresh, n_refresh = self._refresh_draws, n
            with frozen(self.potential, eval_mode=True):
                _, y_neg, weights, st = self.chains.step(n, self.log_density, s.steps, self.rng, refresh, n_refresh)
            return y_neg, weights, {"accept": st.acceptance_rate, "ess": st.ess_fraction, "mala_step": st.step_size}
        y_neg, st = self._smc_draws(x, s.particles, s.steps, self.rng, self.potential)
        weights = torch.full(y_neg.shape[:2], 1.0 / s.particles, dtype=y_neg.dtype, device=y_neg.device)
        return y_neg, weights, {"accept": st.acceptance_rate, "ess": st.ess_fraction, "mala_step": st.final_step_size}

    def train_step(self, x: torch.Tensor, y: torch.Tensor) -> dict[str, torch.Tensor]:
        """One EgNOT update: negatives from the sampler, then one Adam step on
        mean f(ỹ) − mean f(y) (+ energy_reg·mean(f² on both)); weighted particles enter with their
        self-normalised weights. Returns detached 0-d tensors (the loss, mean f on both sides, the
        sampler's statistics); nothing is read on the host.

        With a closed-form plan (``exact_plan``) the step minimises the exact loss
        mean log C(x) − mean log v(y) instead (nn/mixture.py: the dual objective's θ-dependent part
        over eps; KL(pi* ‖ pi_f) up to a constant), with no negatives."""
        x, y = x.to(self.device), y.to(self.device)
        if self.exact_plan:
            loss = self.potential.log_partition(x).mean() - self.potential.log_v(y).mean()
            if self.optimizer is not None:
                self.update("optimizer", loss)
            self.step += 1
            return {"loss": loss.detach()}
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
        if state["chains"] and not self._smc and "log_w" in state["chains"]:
            raise ValueError("the saved chains are weighted particles of sampler 'smc'; pass sampler='smc' "
                             "to continue them")
        if state["chains"]:
            if self._persistent and not isinstance(self.chains, PERSISTENT):
                self._pending_chains = state["chains"]
            else:
                self.chains.load_state_dict(state["chains"])
