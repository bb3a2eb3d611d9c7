"""Pieces shared by the semi-dual generator solvers (UOTM, S-JKO): a scalar potential network,
per-sample shape checks, and the vector-data plumbing of a map T(x, z)."""

from __future__ import annotations

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


class VectorMapMixin:
    """For solvers of maps between vectors of ``self.dim`` coordinates with noise of ``self.noise_dim``."""

    dim: int
    noise_dim: int
    device: torch.device

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

    def _as_source(self, x: Any) -> torch.Tensor:
        x = torch.as_tensor(x, dtype=torch.float32) if not isinstance(x, torch.Tensor) else x
        if x.ndim != 2 or x.shape[1] != self.dim:
            raise ValueError(f"x must have shape (n, {self.dim}), got {tuple(x.shape)}")
        return x.to(self.device)

    def check_data(self, source_shape, target_shape) -> None:
        for name, shape in (("source", source_shape), ("target", target_shape)):
            if tuple(shape) != (self.dim,):
                raise ValueError(f"{name} samples have shape {tuple(shape)} but the model expects ({self.dim},)")
