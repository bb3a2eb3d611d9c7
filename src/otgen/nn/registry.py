"""Networks by name: one small registry of the potentials and generators a solver can build.

A network is named in a solver's arguments (and so in its saved config) as a *spec*:

    "mlp"                                   # the built-in MLP of that role
    {"name": "mlp", "hidden": [64, 64]}     # with keyword arguments (stored with the model)
    {"name": "mypkg.nets:MyEncoder", "width": 64}   # a user's class (or function) by import path
    my_module                               # a user's own torch.nn.Module (then passed again at load)

A name "module:attribute" is imported when a spec names it (and only then: importing a module runs
its code, so name only modules you trust) and called like a registered builder: with the spec's
keyword arguments and the solver's context (shapes) that its signature takes (all of it if it takes
``**kwargs``); it must return an ``nn.Module``. The name is stored in the model's config, so
``otgen.load`` imports it again (the module must be importable there too, e.g. on ``PYTHONPATH``;
the tensors are still read with ``weights_only``).

Roles, their names and call conventions (each network handles its own input shapes):

* ``"potential"`` ("mlp", "conv", "resnet", "vanilla", "gaussian_mixture"): f(y): (n, *event_shape) ->
  (n,); also the critic v(y) of UOTM and S-JKO (not "gaussian_mixture", EgNOT's). Context:
  ``event_shape`` (and EgNOT's ``curvature``, ``eps``, ``kernel_variance``).
* ``"generator"`` ("mlp", "conv", "unet"): T(x, z): x (n, *source_shape), z (n, *noise_shape) ->
  (n, *event_shape); the module says its ``noise_shape`` (``()``: deterministic). Context:
  ``source_shape``, ``event_shape``, ``noise_dim``.
* ``"encoder"`` ("mlp", "conv", "linear"): x (n, *event_shape) -> (n, out_dim). Context:
  ``event_shape``, ``out_dim``.
* ``"decoder"`` ("mlp", "conv", "linear"): z (n, latent_dim) -> (n, *event_shape). Context:
  ``latent_dim``, ``event_shape``.

A builder is registered with :func:`register`; :func:`build` calls it with the spec's keyword
arguments, plus those of the solver's ``context`` (shapes, the cost's curvature) and ``defaults``
(the solver's shorthand arguments such as ``hidden``) that the builder accepts, except those it
registers as its own (``own=("activation",)``: the full-size networks keep their published
activation unless the spec names one). Unknown keys of the spec are refused by name, with a "did you
mean". Later roles and names register the same way: one ``otgen.registry.Registry`` per role
(``NETWORKS``), so a name is found regardless of case and '-'/'_' and ``as_spec`` gives it as registered.
"""

from __future__ import annotations

import copy
import importlib
import inspect
import re
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

from torch import nn

from ..registry import Registry
from ..schema import Field, did_you_mean
from .autoencoder import LinearDecoder, LinearEncoder, MLPDecoder, MLPEncoder
from .conv import ConvDecoder, ConvEncoder, ConvGenerator, ConvNoiseGenerator, ConvPotential
from .generator import StochasticMLP
from .mixture import GaussianMixturePotential
from .mlp import ACTIVATIONS, ScalarMLP
from .unet import ResNetCritic, ResUNetGenerator, VanillaEnergyNet

__all__ = ["register", "build", "names", "as_spec", "check_spec", "takes_defaults", "Network", "NETWORKS", "Builder"]


@dataclass(frozen=True)
class Builder:
    """A registered network: ``build(**kwargs) -> nn.Module`` and ``own``, the keyword arguments that
    only the spec sets (the solver's ``defaults`` of those names are not passed)."""

    build: Callable[..., nn.Module]
    own: frozenset[str] = frozenset()


#: role -> the registry of its networks (names looked up by otgen.registry's rule: "MLP" finds mlp)
NETWORKS: dict[str, Registry[Builder]] = {}


def _role(role: str) -> Registry[Builder]:
    """The registry of ``role`` (an empty one for a role nothing is registered in)."""
    return NETWORKS[role] if role in NETWORKS else Registry(f"{role} network")


def register(role: str, name: str, own: Sequence[str] = ()) -> Callable:
    """Decorator: ``builder(**kwargs) -> nn.Module`` becomes network ``name`` of ``role``. ``own``:
    keyword arguments that only the spec sets (the solver's ``defaults`` of those names are not
    passed, so the builder's own default holds). ValueError if ``role`` has a network ``name``."""

    def deco(builder: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        NETWORKS.setdefault(role, Registry(f"{role} network")).add(name, Builder(builder, frozenset(own)))
        return builder

    return deco


IMPORT_PATH = re.compile(r"[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)*:[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)*")


def is_import_path(name: Any) -> bool:
    """Whether a network name is an import path "module:attribute" (a user's network)."""
    return isinstance(name, str) and ":" in name


def _imported(role: str, name: str) -> Builder:
    """The builder a "module:attribute" name points to (imported now); ValueError saying what failed."""
    if not IMPORT_PATH.fullmatch(name):
        raise ValueError(f"{role} network {name!r}: an import path must read 'package.module:Name' "
                         "(e.g. 'mypkg.nets:MyEncoder')")
    module_name, attribute = name.split(":")
    try:
        target: Any = importlib.import_module(module_name)
    except ImportError as e:
        raise ValueError(f"{role} network {name!r}: cannot import {module_name!r} ({e}); is it installed "
                         "or on PYTHONPATH?") from None
    for part in attribute.split("."):
        if not hasattr(target, part):
            raise ValueError(f"{role} network {name!r}: module {module_name!r} has no attribute {attribute!r}")
        target = getattr(target, part)
    if not callable(target):
        raise ValueError(f"{role} network {name!r} is not a class or function that returns a torch.nn.Module")
    return Builder(target)


def _entry(role: str, name: str) -> Builder:
    """The builder of network ``name`` of ``role``: registered, or imported from "module:attribute"."""
    return _imported(role, name) if is_import_path(name) else _role(role).get(name)


def _accepted(builder: Callable[..., Any], offered: Any) -> set[str]:
    """The keywords among ``offered`` that ``builder`` takes: its named parameters, or every one
    offered if it takes ``**kwargs``."""
    params = inspect.signature(builder).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return set(params) | set(offered)
    return set(params)


def names(role: str) -> list[str]:
    """The registered network names of ``role``, sorted."""
    return sorted(_role(role).names())


def as_spec(role: str, spec: Any) -> dict[str, Any] | nn.Module:
    """``spec`` (None, a name, a dict with "name", or a module) as a dict with "name", or the module;
    ValueError naming ``role`` otherwise. None means "mlp"."""
    if isinstance(spec, nn.Module):
        return spec
    if spec is None:
        spec = "mlp"
    if isinstance(spec, str):
        spec = {"name": spec}
    if not isinstance(spec, Mapping) or not isinstance(spec.get("name"), str):
        raise ValueError(f"{role} must be a network name {names(role)}, a mapping with a 'name', or a "
                         f"torch.nn.Module, got {spec!r}")
    name = spec["name"]
    if not is_import_path(name):
        name = _role(role).canonical(name, where=f"{role} network")  # as registered, as stored
    return {**copy.deepcopy(dict(spec)), "name": name}


def build(role: str, spec: Any, context: Mapping[str, Any] = (), defaults: Mapping[str, Any] = ()) -> nn.Module:
    """The network ``spec`` of ``role``: a user's module as it is, else the registered builder called
    with the spec's keyword arguments over the ``defaults`` and ``context`` it accepts (the context,
    what the solver derives from its own arguments, may not be given in the spec)."""
    check_spec(role, spec)
    spec = as_spec(role, spec)
    if isinstance(spec, nn.Module):
        return spec
    kwargs = dict(spec)
    name = kwargs.pop("name")
    entry = _entry(role, name)
    builder = entry.build
    context = dict(context)
    for key in kwargs:
        if key in context:
            raise ValueError(f"{key!r} of the {role} network {name!r} is set by the solver (from its own "
                             f"arguments), not in the network spec")
    accepted = _accepted(builder, context)
    defaults = {k: v for k, v in dict(defaults).items() if k in takes_defaults(role, name, defaults)}
    given = {k: v for k, v in {**defaults, **context}.items() if k in accepted}
    try:
        module = builder(**{**given, **kwargs})
    except ValueError as e:  # e.g. a conv network for vectors: say which of the solver's networks
        raise ValueError(f"{role} {{name: {name}}}: {e}") from None
    if not isinstance(module, nn.Module):
        raise ValueError(f"{role} network {name!r} returned {type(module).__name__}, not a torch.nn.Module")
    return module


def takes_defaults(role: str, name: Any, keys: Any) -> set[str]:
    """The solver defaults among ``keys`` (e.g. "hidden", "activation") that :func:`build` passes to
    network ``name`` of ``role``: those its builder takes and does not own; none for an unknown name."""
    if is_import_path(name):  # a user's network gets its own defaults, not the solver's shorthand
        return set()
    try:
        entry = _role(role).get(name)
    except (KeyError, ValueError, TypeError):
        return set()
    accepted = set(inspect.signature(entry.build).parameters)
    return {k for k in keys if k in accepted and k not in entry.own}


def check_spec(role: str, spec: Any, name: str = "") -> None:
    """ValueError naming ``name`` (e.g. ``model.potential``) if ``spec`` names no network of ``role``
    or gives keyword arguments its builder does not take (a module passes)."""
    try:
        spec = as_spec(role, spec)
        if isinstance(spec, nn.Module):
            return
        accepted = _accepted(_entry(role, spec["name"]).build, spec)
        for key in spec:
            if key != "name" and key not in accepted:
                raise ValueError(f"unknown key {key!r} for the {role} network {spec['name']!r}"
                                 f"{did_you_mean(key, accepted)}; accepted: {sorted(accepted)}")
        if isinstance(spec.get("activation"), str):  # a name: refused here, not when the network is built
            ACTIVATIONS.get(spec["activation"], where="activation")
    except ValueError as e:
        raise ValueError(f"{name}: {e}" if name else str(e)) from None


@dataclass(frozen=True)
class Network(Field):
    """A schema field: a network spec of ``role`` (checked against the registry) or a module."""

    role: str
    nullable: bool = True

    def _check(self, name, value):
        check_spec(self.role, value, name)
        return value


# ----------------------------------------------------------------------------- built-in networks


@register("potential", "mlp")
def mlp_potential(event_shape: Sequence[int], hidden: Sequence[int] = (256, 256), activation: str = "silu",
                  quadratic: str = "none", curvature: float = 1.0, zero_init: bool = True) -> ScalarMLP:
    """``ScalarMLP``: an MLP on the flattened sample, plus an optional quadratic term bounded by the
    cost's ``curvature`` (EgNOT: "auto", "full", "diag", "none"); ``zero_init`` starts it at f = 0."""
    return ScalarMLP(event_shape, hidden, activation, quadratic, curvature, zero_init=zero_init)


@register("potential", "gaussian_mixture")
def gaussian_mixture_potential(event_shape: Sequence[int], eps: float | None = None,
                               kernel_variance: float | None = None, components: int = 50,
                               covariance: str = "diagonal", init_var: float = 1.0,
                               weight_lr_scale: float = 1.0, init: str = "kmeans") -> GaussianMixturePotential:
    """``GaussianMixturePotential``: f(y) = eps·log Σ_k a_k N(y | r_k, τ·S_k) + (κ/2)‖y‖² (EgNOT only: it
    needs the solver's ``eps`` and, for the closed-form plan, the quadratic cost's kernel variance
    τ = eps/κ); ``components`` K, ``covariance`` "diagonal" or "full", S_k starting at ``init_var``·I,
    the means on the k-means centres of target samples (``init`` "kmeans") or on K samples ("samples"),
    the weights' logits learning at ``weight_lr_scale``·lr."""
    if eps is None:
        raise ValueError("the gaussian_mixture potential is EgNOT's: it needs the solver's eps (a critic of "
                         "UOTM or S-JKO cannot be one)")
    return GaussianMixturePotential(event_shape, components, covariance, eps, kernel_variance, init_var,
                                    weight_lr_scale, init)


@register("generator", "mlp")
def mlp_generator(source_shape: Sequence[int], event_shape: Sequence[int], noise_dim: int,
                  hidden: Sequence[int] = (128, 128, 128), activation: str = "silu",
                  residual: bool = False) -> StochasticMLP:
    """``StochasticMLP``: T(x, z) = MLP([x, z]) reshaped to ``event_shape`` (``residual``: x + MLP)."""
    return StochasticMLP(source_shape, noise_dim, hidden, activation, residual, out_shape=event_shape)


@register("potential", "conv")
def conv_potential(event_shape: Sequence[int], width: int = 32, n_down: int | None = None,
                   activation: str = "silu", norm: str = "none", zero_init: bool = True) -> ConvPotential:
    """``ConvPotential``: stride-2 convs to a 4×4 map, then a two-layer head to f(y) (no BatchNorm;
    ``norm``: "none" or "group"); ``zero_init`` starts it at f = 0."""
    return ConvPotential(event_shape, width, n_down, activation, norm, zero_init)


@register("generator", "conv")
def conv_generator(source_shape: Sequence[int], event_shape: Sequence[int], noise_dim: int,
                   width: int | None = None, activation: str = "silu", residual: bool = False,
                   n_down: int | None = None, norm: str = "group", output: str | None = None) -> nn.Module:
    """An image source (C, H, W): ``ConvGenerator``, a U-Net with z added at the bottleneck (``width``
    32 by default; ``residual``: x + net). A vector source (d,): ``ConvNoiseGenerator``, a decoder on
    [x, z] (``width`` 64 by default; ``n_down`` is its number of up-sampling levels). ``output``: the
    last activation, "tanh" (the default: images in [-1, 1]; with ``residual`` none), "sigmoid" or
    "none" (unbounded)."""
    source_shape = tuple(int(s) for s in source_shape)
    if len(source_shape) == 3:
        return ConvGenerator(source_shape, event_shape, noise_dim, 32 if width is None else width, activation,
                             residual, n_down, norm, output)
    if len(source_shape) == 1:
        if residual:
            raise ValueError(f"residual=True needs an image source_shape equal to event_shape, got {source_shape}")
        return ConvNoiseGenerator(source_shape, event_shape, noise_dim, 64 if width is None else width, n_down,
                                  norm, activation, "tanh" if output is None else output)
    raise ValueError(f"the conv generator needs source_shape (C, H, W) or (d,), got {source_shape}")


@register("encoder", "conv")
def conv_encoder(event_shape: Sequence[int], out_dim: int, width: int = 64, n_down: int | None = None,
                 norm: str = "batch", activation: str = "relu") -> ConvEncoder:
    """``ConvEncoder``: DCGAN-style stride-2 convs (BatchNorm, ReLU by default), then a Linear."""
    return ConvEncoder(event_shape, out_dim, width, n_down, norm, activation)


@register("decoder", "conv")
def conv_decoder(latent_dim: int, event_shape: Sequence[int], width: int = 64, n_up: int | None = None,
                 norm: str = "batch", activation: str = "relu", output: str = "tanh") -> ConvDecoder:
    """``ConvDecoder``: a Linear to a small map, stride-2 transposed convs, a 3×3 conv, ``output``."""
    return ConvDecoder(latent_dim, event_shape, width, n_up, norm, activation, output)


@register("encoder", "mlp")
def mlp_encoder(event_shape: Sequence[int], out_dim: int, hidden: Sequence[int] = (256, 256),
                activation: str = "relu") -> MLPEncoder:
    """``MLPEncoder``: an MLP on the flattened sample."""
    return MLPEncoder(event_shape, out_dim, hidden, activation)


@register("decoder", "mlp")
def mlp_decoder(latent_dim: int, event_shape: Sequence[int], hidden: Sequence[int] = (256, 256),
                activation: str = "relu", output: str = "none") -> MLPDecoder:
    """``MLPDecoder``: an MLP reshaped to ``event_shape``; ``output`` "none", "tanh" or "sigmoid"."""
    return MLPDecoder(latent_dim, event_shape, hidden, activation, output)


@register("encoder", "linear")
def linear_encoder(event_shape: Sequence[int], out_dim: int, bias: bool = True) -> LinearEncoder:
    """``LinearEncoder``: one Linear on the flattened sample."""
    return LinearEncoder(event_shape, out_dim, bias)


@register("decoder", "linear")
def linear_decoder(latent_dim: int, event_shape: Sequence[int], bias: bool = True) -> LinearDecoder:
    """``LinearDecoder``: x = G z (+ b) reshaped; ``weight`` is G (prod(event_shape), latent_dim)."""
    return LinearDecoder(latent_dim, event_shape, bias)


# ----------------------------------------------------------------------------- full-size image networks (GPU)


@register("generator", "unet")
def unet_generator(source_shape: Sequence[int], event_shape: Sequence[int], noise_dim: int, width: int = 128,
                   channel_mult: Sequence[int] = (1, 2, 2, 2), n_res: int = 2, attn_resolutions: Sequence[int] = (16,),
                   dropout: float = 0.0, z_embed_dim: int = 256, n_mlp: int = 4,
                   residual: bool = False) -> ResUNetGenerator:
    """``ResUNetGenerator``: a DDGAN/NCSN++-style U-Net for an image source (C, H, W) with the H, W of
    the target; z modulates every residual block through a mapping MLP and adaptive GroupNorm
    (43.5 M parameters at 3×32×32 with the defaults and noise_dim 100). SiLU throughout."""
    source_shape = tuple(int(s) for s in source_shape)
    if len(source_shape) != 3:
        raise ValueError(f"the unet generator needs an image source_shape (C, H, W), got {source_shape} "
                         f"(for a vector source use the 'conv' generator)")
    return ResUNetGenerator(source_shape, event_shape, noise_dim, width, channel_mult, n_res, attn_resolutions,
                            dropout, z_embed_dim, n_mlp, residual)


@register("potential", "resnet", own=("activation",))
def resnet_potential(event_shape: Sequence[int], width: int = 128, channel_mult: Sequence[int] = (1, 2, 2, 2),
                     activation: str = "leaky_relu", zero_init: bool = False) -> ResNetCritic:
    """``ResNetCritic``: a DDGAN-discriminator-style ResNet critic v(y) (no normalisation, global sum
    pool; ``activation`` "leaky_relu" unless the spec names another); ``zero_init`` starts at v = 0
    (EgNOT passes True, UOTM and S-JKO False)."""
    return ResNetCritic(event_shape, width, channel_mult, activation, zero_init)


@register("potential", "vanilla", own=("activation",))
def vanilla_potential(event_shape: Sequence[int], width: int = 32, activation: str = "leaky_relu",
                      slope: float = 0.05, zero_init: bool = True, scale: float = 1.0) -> VanillaEnergyNet:
    """``VanillaEnergyNet``: EgNOT's Coloured-MNIST conv net (kernels 3/4/4/4/4, LeakyReLU 0.05),
    f(y) = scale · net(y); ``scale = 2h/σ²`` is the paper's energy parametrisation (see the class)."""
    return VanillaEnergyNet(event_shape, width, activation, slope, zero_init, scale)
