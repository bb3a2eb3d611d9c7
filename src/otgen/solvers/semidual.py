"""Pieces shared by the semi-dual generator solvers (UOTM, S-JKO): a scalar potential network,
per-sample shape checks, and the data plumbing of a map T(x, z) (flat vectors inside)."""

from __future__ import annotations

import math
from typing import Any, Sequence

import torch
from torch import nn

from ..nn import MLP, StochasticMLP


def per_sample(name: str, t: torch.Tensor, n: int) -> torch.Tensor:
    """``t`` if it has shape (n,); else stop with a message (a network returned the wrong shape,
    which would otherwise broadcast into an n x n matrix, as in the original UOTM toy code)."""
    if tuple(t.shape) != (n,):
        raise RuntimeError(f"{name} must have shape ({n},), got {tuple(t.shape)}: a network returned the wrong shape")
    return t


class ScalarNet(nn.Module):
    """v(y): (n, dim) -> (n,), an MLP."""

    def __init__(self, dim: int, hidden: Sequence[int], act: str):
        super().__init__()
        self.net = MLP(dim, 1, hidden, act)

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        return self.net(y).squeeze(-1)


def r1_penalty(v_real: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """mean_i ‖∇_y v(y_i)‖² with the graph kept (R1 on real data); ``y`` must require grad."""
    (grad,) = torch.autograd.grad(v_real.sum(), y, create_graph=True)
    return grad.pow(2).flatten(1).sum(1).mean()


def cosine_factor(done: int, length: int) -> float:
    """½(1 + cos(pi·done/length)): 1 at the start, 0 at (and after) the end of ``length`` steps."""
    return 0.5 * (1.0 + math.cos(math.pi * min(done / max(length, 1), 1.0)))


def set_cosine_lr(optimizers: Sequence[torch.optim.Optimizer], done: int, length: int) -> None:
    """Every param group's lr = its ``base_lr`` · ``cosine_factor(done, length)``."""
    factor = cosine_factor(done, length)
    for opt in optimizers:
        for group in opt.param_groups:
            group["lr"] = group["base_lr"] * factor


def shape_config(dim: int | None, shape: tuple[int, ...]) -> dict[str, Any]:
    """The ``dim`` / ``event_shape`` entries of a solver's config, as the user gave them."""
    return {"dim": None if dim is None else int(dim), "event_shape": None if dim is not None else list(shape)}


class FlatMapMixin:
    """For solvers of maps between samples of shape ``self.event_shape`` (source and target alike),
    which the networks see as flat vectors of ``self.dim`` = prod(event_shape) coordinates, with noise
    of ``self.noise_dim``. Batches come in as (n, *event_shape); ``_flat`` / ``_unflat`` convert."""

    dim: int
    event_shape: tuple[int, ...]
    noise_dim: int
    device: torch.device

    def _set_shape(self, event_shape: tuple[int, ...]) -> None:
        self.event_shape = self.source_shape = tuple(event_shape)
        self.dim = int(math.prod(self.event_shape))

    def _build_networks(self, hidden: Sequence[int], activation: str, lr_g: float, lr_v: float,
                        betas: tuple[float, float], seed: int) -> None:
        """The generator T(x, z) and potential v (initial weights from ``seed``), and an Adam optimiser
        for each; every param group remembers its ``base_lr`` for learning-rate schedules."""
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.generator_net = StochasticMLP(self.dim, self.noise_dim, hidden, activation).to(self.device)
            self.potential = ScalarNet(self.dim, hidden, activation).to(self.device)
        self.opt_g = torch.optim.Adam(self.generator_net.parameters(), lr=lr_g, betas=betas)
        self.opt_v = torch.optim.Adam(self.potential.parameters(), lr=lr_v, betas=betas)
        for opt in (self.opt_g, self.opt_v):
            for group in opt.param_groups:
                group["base_lr"] = group["lr"]

    def _noise(self, n: int, generator: torch.Generator) -> torch.Tensor | None:
        if not self.noise_dim:
            return None
        return torch.randn(n, self.noise_dim, generator=generator, device=self.device)

    def _flat(self, name: str, t: torch.Tensor) -> torch.Tensor:
        """(n, *event_shape) -> (n, dim) on the solver's device; a ValueError naming ``name`` otherwise."""
        t = torch.as_tensor(t, dtype=torch.float32) if not isinstance(t, torch.Tensor) else t
        if t.ndim < 1 or tuple(t.shape[1:]) != self.event_shape:
            raise ValueError(f"{name} must have shape (n, {', '.join(map(str, self.event_shape))}), "
                             f"got {tuple(t.shape)}")
        return t.to(self.device).flatten(1)

    def _unflat(self, t: torch.Tensor) -> torch.Tensor:
        """(n, dim) -> (n, *event_shape)."""
        return t.reshape(t.shape[0], *self.event_shape)

    def _as_source(self, x: Any) -> torch.Tensor:
        return self._flat("x", x)

    def check_data(self, source_shape, target_shape) -> None:
        for name, shape in (("source", source_shape), ("target", target_shape)):
            if tuple(shape) != self.event_shape:
                raise ValueError(f"{name} samples have shape {tuple(shape)} but the model expects {self.event_shape}")
