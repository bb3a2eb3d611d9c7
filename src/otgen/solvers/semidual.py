"""Pieces shared by the semi-dual generator solvers (UOTM, S-JKO): their networks (a generator T(x, z)
and a scalar potential v, from ``otgen.nn``'s registry), the noise z, per-sample shape checks and R1."""

from __future__ import annotations

import math
from typing import Any, Sequence

import torch
from torch import nn

from .. import shard
from ..nn import build
from ..nn.registry import Network
from ..schema import Betas, Number, Numbers, Text
from .base import GRAD_CLIP, frozen, map_batches

#: the schema fields the two solvers share (their networks and Adam settings)
NETWORK_FIELDS = {
    "generator": Network("generator"),
    "potential": Network("potential"),
    "hidden": Numbers(int), "activation": Text(),
    "lr_g": Number(low=0, low_open=True), "lr_v": Number(low=0, low_open=True), "betas": Betas(),
    "grad_clip": GRAD_CLIP, "r1": Number(low=0),
}


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


def build_map_networks(generator: Any, potential: Any, source_shape: Sequence[int], event_shape: Sequence[int],
                       noise_dim: int, hidden: Sequence[int], activation: str,
                       seed: int) -> tuple[nn.Module, nn.Module]:
    """The generator T(x, z): (n, *source_shape) -> (n, *event_shape) and the potential v:
    (n, *event_shape) -> (n,), specs or modules (``otgen.nn.build``); built networks take their
    initial weights from ``seed``, the generator first."""
    shared = {"hidden": hidden, "activation": activation}
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        gen = build("generator", generator, context={"source_shape": tuple(source_shape),
                                                     "event_shape": tuple(event_shape), "noise_dim": noise_dim},
                    defaults=shared)
        pot = build("potential", potential, context={"event_shape": tuple(event_shape)},
                    defaults={**shared, "zero_init": False})
    return gen, pot


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
