"""Pieces shared by the semi-dual generator solvers (UOTM, S-JKO): their option specs (the conjugates
of the marginal penalties, the squared-Euclidean cost, the networks, the critic's training), their
networks (a generator T(x, z) and a scalar potential v, from ``otgen.nn``'s registry), the noise z,
per-sample shape checks and R1."""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import torch
from torch import nn

from .. import conjugates, shard
from ..costs import Cost, SquaredEuclidean, ZeroCost, make_cost
from ..nn import build
from ..nn.registry import as_spec, check_spec, takes_defaults
from ..registry import Registry
from ..schema import Choice, Field, Number
from ..spec import OneOf, Spec, encode, option
from .base import frozen, map_batches
from .shared_options import POSITIVE

__all__ = ["Conjugate", "CONJUGATE_SPECS", "SqEuclidean", "Zero", "COST_SPECS", "CostOption", "NetworkOption",
           "Critic", "JKOCritic", "NETWORK_DEFAULTS", "build_cost", "generator_spec", "build_map_networks",
           "legacy_networks", "legacy_conjugate", "legacy_cost", "legacy_optimisers", "nested_doc"]


# ----------------------------------------------------------------------------- conjugates


@dataclass(frozen=True)
class Conjugate(Spec):
    """The conjugate Psi* of a marginal penalty (``otgen.conjugates``: "kl", "chi", "softplus",
    "linear") with its strength: alpha·Psi*(s/alpha). YAML: ``kl`` or ``{name: kl, alpha: 2.0}``."""

    alpha: float = option(1.0, POSITIVE, "strength alpha > 0 of the penalty alpha·Psi (larger: closer to a hard "
                                         "marginal; no effect for 'linear')")

    def build(self, where: str) -> conjugates.Conjugate:
        """The conjugate object (``where`` names it in messages, e.g. ``phi1``)."""
        return conjugates.make_conjugate(self.name, self.alpha, where)


def _conjugate_specs() -> Registry:
    """One ``Conjugate`` spec class per conjugate of ``otgen.conjugates``, by its name."""
    specs: Registry = Registry("conjugate")
    for name in conjugates.CONJUGATES:
        cls = type(f"{name.title()}Conjugate", (Conjugate,),
                   {"name": name, "__module__": __name__, "__doc__": f"The {name!r} conjugate and its strength."})
        specs.add(name, dataclass(frozen=True)(cls))
    return specs


#: the conjugate specs by name: a field ``OneOf(CONJUGATE_SPECS)`` takes ``"kl"`` or ``{name: kl, alpha: 2}``
CONJUGATE_SPECS = _conjugate_specs()


# ----------------------------------------------------------------------------- costs


@dataclass(frozen=True)
class SqEuclidean(Spec):
    """c(x, y) = scale · reduce((x − y)²) over every coordinate; ``scale`` None: the solver's (UOTM:
    tau; S-JKO: 1/(2h))."""

    name = "sqeuclidean"
    reduce: str = option("sum", Choice(SquaredEuclidean.REDUCTIONS), "'sum' or 'mean' over the coordinates")
    scale: float | None = option(None, Number(low=0, low_open=True, nullable=True),
                                 "factor > 0 (None: the solver's, tau for UOTM, 1/(2h) for S-JKO)")


@dataclass(frozen=True)
class Zero(Spec):
    """c ≡ 0 (no coupling to the source)."""

    name = "zero"


#: the named costs of the semi-dual solvers
COST_SPECS: Registry = Registry("cost")
COST_SPECS.add("sqeuclidean", SqEuclidean)
COST_SPECS.add("zero", Zero)


@dataclass(frozen=True)
class CostOption(Field):
    """``cost``: a named cost (``sqeuclidean`` or ``{name: sqeuclidean, reduce: mean}`` (without a name:
    sqeuclidean), ``zero``; None: the default ``sqeuclidean``), or an object: a ``Cost`` or a callable
    c(x, y) -> (n,). A ``SquaredEuclidean`` or ``ZeroCost`` object becomes its spec (so that it is
    stored by value, and a model file rebuilds it)."""

    nullable: bool = False

    def check(self, name: str, value: Any) -> Any:
        return SqEuclidean() if value is None else self._check(name, value)

    def _check(self, name, value):
        if isinstance(value, SquaredEuclidean):
            return SqEuclidean(reduce=value.reduce, scale=value.scale)
        if isinstance(value, ZeroCost):
            return Zero()
        if isinstance(value, Cost) or (callable(value) and not isinstance(value, type)):
            return value
        return OneOf(COST_SPECS, base=SqEuclidean())._check(name, value)  # no name: sqeuclidean


def build_cost(cost: Any, scale: float) -> Cost:
    """The ``Cost`` of a ``cost`` option: a spec (``SqEuclidean`` with ``scale`` where it names none),
    or the user's object (``make_cost``)."""
    if isinstance(cost, SqEuclidean):
        return SquaredEuclidean(scale if cost.scale is None else cost.scale, cost.reduce)
    if isinstance(cost, Zero):
        return ZeroCost()
    return make_cost(cost)


# ----------------------------------------------------------------------------- networks

#: widths and activation of the networks where their spec names none (and their builder takes them)
NETWORK_DEFAULTS: dict[str, Any] = {"hidden": (128, 128, 128), "activation": "silu"}

NOISE_DIM = Number(integer=True, low=0)


@dataclass(frozen=True)
class NetworkOption(Field):
    """A network of ``otgen.nn``'s registry for ``role``: a name (``mlp``), a mapping with its keyword
    arguments (``{name: conv, width: 32}``; without a name: the ``mlp``, so that ``{hidden: [64, 64]}``
    and ``--set model.potential.hidden=[64]`` work), or a ``torch.nn.Module``. The "generator" role
    also takes ``noise_dim``, the dimension of the generator's noise z (0: a deterministic map; not
    given: the solver's default), which the solver passes to the builder."""

    role: str = "potential"
    nullable: bool = True

    def _check(self, name, value):
        if isinstance(value, Mapping) and "name" not in value:
            value = {"name": "mlp", **value}
        if self.role == "generator" and isinstance(value, Mapping) and "noise_dim" in value:
            noise_dim = NOISE_DIM.check(f"{name}.noise_dim", value["noise_dim"])
            check_spec(self.role, {k: v for k, v in value.items() if k != "noise_dim"}, name)
            return {**value, "noise_dim": noise_dim}
        check_spec(self.role, value, name)
        return value


def generator_spec(spec: Any, noise_dim: int) -> Any:
    """The generator option with its noise dimension resolved: a network spec as a mapping with
    ``noise_dim`` (``noise_dim`` where it gives none); a module as it is."""
    if isinstance(spec, nn.Module):
        return spec
    resolved = as_spec("generator", spec)
    resolved.setdefault("noise_dim", noise_dim)
    return resolved


def build_map_networks(generator: Any, potential: Any, source_shape: Sequence[int], event_shape: Sequence[int],
                       seed: int) -> tuple[nn.Module, nn.Module]:
    """The generator T(x, z): (n, *source_shape) -> (n, *event_shape) and the potential v:
    (n, *event_shape) -> (n,), specs or modules (``otgen.nn.build``, with ``NETWORK_DEFAULTS``);
    ``generator`` as ``generator_spec`` resolves it (its ``noise_dim`` goes to the builder as
    context). Built networks take their initial weights from ``seed``, the generator first."""
    if isinstance(generator, nn.Module):
        gen_spec, noise_dim = generator, 0
    else:
        gen_spec = dict(generator)
        noise_dim = gen_spec.pop("noise_dim")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        gen = build("generator", gen_spec, context={"source_shape": tuple(source_shape),
                                                    "event_shape": tuple(event_shape), "noise_dim": noise_dim},
                    defaults=NETWORK_DEFAULTS)
        pot = build("potential", potential, context={"event_shape": tuple(event_shape)},
                    defaults={**NETWORK_DEFAULTS, "zero_init": False})
    return gen, pot


# ----------------------------------------------------------------------------- the critic's training


R1_DOC = "weight gamma >= 0 of the R1 penalty (gamma/2)·E‖∇_y v(y)‖² on real data (0: off)"


@dataclass(frozen=True)
class Critic(Spec):
    """How UOTM trains its potential (critic) v: the R1 penalty and the updates per generator update."""

    r1: float = option(0.0, Number(low=0), R1_DOC)
    n_critic: int = option(1, Number(integer=True, low=1),
                           "potential updates per generator update, >= 1 (each train_step updates v once and T "
                           "every n_critic-th step, so fit's n_iters counts potential updates)")


@dataclass(frozen=True)
class JKOCritic(Spec):
    """How S-JKO trains its potential (critic) v: the R1 penalty (one potential update per generator
    update, always)."""

    r1: float = option(0.0, Number(low=0), R1_DOC)

    @classmethod
    def _unknown(cls, name: Any, where: str) -> str:
        hint = (" (S-JKO updates the potential once per generator update: it has no n_critic)"
                if name == "n_critic" else "")
        return super()._unknown(name, where) + hint


def nested_doc(*entries: tuple[str, type[Spec]]) -> str:
    """A docstring section listing the options of nested specs: ``entries`` of (the solver's option
    names, the spec class), each with its fields as ``Spec.describe`` writes them."""
    lines = ["", "    Nested options (mappings; the keys not given keep their defaults)::", ""]
    for label, cls in entries:
        lines += [f"        {label} ({cls.__name__}):", cls.describe(12)]
    return "\n".join(lines) + "\n"


# ----------------------------------------------------------------------------- old flat options
def _plain(value: Any) -> Any:
    """A spec as plain data (``to_config`` with its name); anything else as it is."""
    return encode(value) if isinstance(value, Spec) else value


def fold(flat: Mapping[str, Any], out: dict[str, Any], option_name: str, keys: Mapping[str, str]) -> None:
    """Move the flat keys of ``keys`` (old name -> key in the nested option) found in ``flat`` into
    the mapping ``out[option_name]`` (over what it gives already: a flat key set later, e.g. by
    ``--set``, wins)."""
    moved = {new: flat[old] for old, new in keys.items() if old in flat}
    if moved:
        base = _plain(out.get(option_name))
        out[option_name] = {**(dict(base) if isinstance(base, Mapping) else {}), **moved}


def legacy_conjugate(flat: Mapping[str, Any], out: dict[str, Any], phi: str, alpha: str) -> None:
    """The flat ``phi`` (a conjugate name) and its strength ``alpha`` as one conjugate option
    ``out[phi]``: ``"kl"``, or ``{name: kl, alpha: 2.0}`` where alpha is not 1."""
    if alpha not in flat:
        return
    value = _plain(out.get(phi, "kl"))
    if isinstance(value, str):
        out[phi] = value if flat[alpha] == 1.0 else {"name": value, "alpha": flat[alpha]}
    elif isinstance(value, Mapping):
        out[phi] = {**value, "alpha": flat[alpha]}


def legacy_cost(flat: Mapping[str, Any], out: dict[str, Any], old_layout: bool, reduce: str | None = None) -> None:
    """The flat ``cost`` (and UOTM's ``cost_reduce``) as today's cost option. In the old layout a named
    ``sqeuclidean`` without a scale had scale ½ (``make_cost``'s default), which is now the solver's
    scale: it gets ½ written out (``old_layout``: the mapping has no option of today's layout only). A
    ``cost_reduce`` other than "sum" beside a given cost was refused then and is refused here."""
    cost = _plain(out.get("cost"))
    if reduce is not None and reduce != "sum":
        if cost is not None:
            raise ValueError(f"tau and cost_reduce define the default cost; with cost= leave cost_reduce at "
                             f"'sum', got cost_reduce={reduce!r} and cost={cost!r}")
        out["cost"] = {"name": "sqeuclidean", "reduce": reduce}
        return
    if cost is None:
        out.pop("cost", None)
    elif old_layout and cost == "sqeuclidean":
        out["cost"] = {"name": "sqeuclidean", "scale": 0.5}
    elif old_layout and isinstance(cost, Mapping) and cost.get("name") == "sqeuclidean" and "scale" not in cost:
        out["cost"] = {**cost, "scale": 0.5}


def legacy_networks(flat: Mapping[str, Any], out: dict[str, Any]) -> None:
    """The flat ``noise_dim`` into the generator spec, and the flat ``hidden`` / ``activation`` (where
    they differ from ``NETWORK_DEFAULTS``) into each network spec whose builder took them from the
    solver (and that does not set them itself): the same networks as the old layout built."""
    shorthands = {k: flat[k] for k in NETWORK_DEFAULTS
                  if k in flat and _as_list(flat[k]) != _as_list(NETWORK_DEFAULTS[k])}
    for role in ("generator", "potential"):
        spec = out.get(role)
        if isinstance(spec, nn.Module) or spec == "custom":
            continue
        extra = {"noise_dim": flat["noise_dim"]} if role == "generator" and flat.get("noise_dim") is not None else {}
        if not extra and not shorthands:
            continue
        spec = {"name": "mlp"} if spec is None else {"name": spec} if isinstance(spec, str) else spec
        if not isinstance(spec, Mapping):
            continue  # a bad value: the check names it
        name = spec.get("name", "mlp")
        given = {k: copy.deepcopy(v) for k, v in shorthands.items() if k in takes_defaults(role, name, NETWORK_DEFAULTS) and k not in spec}
        if extra or given:
            out[role] = {**spec, **given, **extra}


def _as_list(value: Any) -> Any:
    """A sequence as a list (so that (8, 8) and [8, 8] compare equal); anything else as it is."""
    return list(value) if isinstance(value, (list, tuple)) else value


def legacy_optimisers(flat: Mapping[str, Any], out: dict[str, Any], ema: bool) -> None:
    """The flat ``lr_g``, ``lr_v``, ``betas``, ``grad_clip``, ``lr_schedule`` (both networks) and, with
    ``ema``, UOTM's generator ``ema`` as the Adam options ``optim_g`` and ``optim_v``."""
    shared = {"betas": "betas", "grad_clip": "grad_clip", "lr_schedule": "schedule"}
    fold(flat, out, "optim_g", {"lr_g": "lr", **shared, **({"ema": "ema"} if ema else {})})
    fold(flat, out, "optim_v", {"lr_v": "lr", **shared})



def per_sample(name: str, t: torch.Tensor, n: int) -> torch.Tensor:
    """``t`` if it has shape (n,); else stop with a message (a network returned the wrong shape,
    which would otherwise broadcast into an n x n matrix, as in the original UOTM toy code)."""
    if tuple(t.shape) != (n,):
        raise RuntimeError(f"{name} must have shape ({n},), got {tuple(t.shape)}: a network returned the wrong shape")
    return t


def r1_penalty(v_real: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """mean_i ‖∇_y v(y_i)‖² with the graph kept (R1 on real data); ``y`` must require grad."""
    (grad,) = torch.autograd.grad(v_real.sum(), y, create_graph=True)
    return grad.pow(2).flatten(1).sum(1).mean()


#: why the potential stays eager under ``compile`` when an R1 penalty is on (``Solver.compile_exclusions``)
R1_EAGER = ("its R1 penalty (r1 > 0) differentiates v(y) twice (torch.autograd.grad with create_graph=True), "
            "which torch.compile does not support (AOTAutograd has no double backward)")


def r1_exclusions(r1: float) -> dict[str, str]:
    """``{"potential": R1_EAGER}`` when ``r1 > 0``, else nothing: the networks ``compile`` leaves eager."""
    return {"potential": R1_EAGER} if r1 > 0 else {}


def adam(name: str, module: nn.Module, lr: float, betas: Sequence[float]) -> torch.optim.Adam:
    """Adam over ``module``'s parameters; ValueError naming ``name`` if it has none to train."""
    params = [p for p in module.parameters() if p.requires_grad]
    if not params:
        raise ValueError(f"{name} has no trainable parameters: UOTM and S-JKO train both networks")
    return torch.optim.Adam(params, lr=lr, betas=tuple(betas))


def draw_noise(net: nn.Module, n: int, generator: torch.Generator, device: torch.device) -> torch.Tensor | None:
    """z ~ N(0, I) of shape (n, *net.noise_shape) for a generator network, or None if it has none."""
    shape = tuple(getattr(net, "noise_shape", ()))
    if not shape or not math.prod(shape):
        return None
    return shard.randn((n, *shape), generator=generator, device=device)


def push(net: nn.Module, x: torch.Tensor, generator: torch.Generator, device: torch.device,
         batch_size: int | None) -> torch.Tensor:
    """T(x, z) = ``net(x, z)`` in eval mode, gradients off, for x (n, *source_shape) in consecutive
    batches of at most ``batch_size`` rows (``map_batches``; None: one call); z ~ N(0, I) of shape
    (rows, *net.noise_shape) drawn on ``device`` for each batch in turn from ``generator``.
    Returns (n, *event_shape).

    The random numbers: with a CPU generator, the z of successive batches are one call's z whenever
    each batch but the last draws a multiple of 16 numbers and the last at least 16 (torch's CPU
    generator fills normals in blocks of 16, and fewer than 16 one by one), i.e. ``batch_size·noise
    numbers per row`` divisible by 16 — for every batch size when the noise numbers per row are a
    multiple of 16 (the image configs' noise_dim 16; the default, one noise number per pixel, on
    16×16 or 32×32 images). Then the outputs equal one call's up to the network's float rounding on
    another batch shape. Otherwise (e.g. noise_dim 2 with odd batches) the z differ from one call's
    but have the same distribution. (Not checked for CUDA generators.)"""
    with frozen(net, eval_mode=True):  # inference: BatchNorm's running statistics, no dropout
        return map_batches(lambda rows: net(rows, draw_noise(net, rows.shape[0], generator, device)), x, batch_size)
