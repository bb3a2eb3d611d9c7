"""Stochastic maps T(x, z): the generators of UOTM and S-JKO."""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from .mlp import MLP


class StochasticMLP(nn.Module):
    """T(x, z) = MLP([x, z]) for vectors: x (n, dim), z (n, noise_dim) -> (n, dim).

    ``noise_dim = 0`` gives a deterministic map T(x). With ``residual=True`` the output is
    x + MLP([x, z]), so that a network initialised near zero starts near the identity map.
    """

    def __init__(self, dim: int, noise_dim: int, hidden: Sequence[int] = (128, 128, 128), act: str = "silu",
                 residual: bool = False):
        super().__init__()
        if dim < 1 or noise_dim < 0:
            raise ValueError(f"dim must be >= 1 and noise_dim >= 0, got {dim}, {noise_dim}")
        self.dim, self.noise_dim, self.residual = int(dim), int(noise_dim), bool(residual)
        self.net = MLP(self.dim + self.noise_dim, self.dim, hidden, act)

    def forward(self, x: torch.Tensor, z: torch.Tensor | None = None) -> torch.Tensor:
        if x.ndim != 2 or x.shape[1] != self.dim:
            raise ValueError(f"x must have shape (n, {self.dim}), got {tuple(x.shape)}")
        if self.noise_dim:
            if z is None or tuple(z.shape) != (x.shape[0], self.noise_dim):
                raise ValueError(f"z must have shape ({x.shape[0]}, {self.noise_dim}), "
                                 f"got {None if z is None else tuple(z.shape)}")
            inp = torch.cat([x, z], dim=1)
        else:
            inp = x
        out = self.net(inp)
        return x + out if self.residual else out
