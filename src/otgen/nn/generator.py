"""Stochastic maps T(x, z): the generators of UOTM and S-JKO."""

from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import nn

from .mlp import MLP


class StochasticMLP(nn.Module):
    """T(x, z) = MLP([x, z]) on batches of any event shape: x (n, *in_shape), z (n, noise_dim) ->
    (n, *out_shape). The MLP sees x flattened; ``out_shape`` defaults to ``in_shape``.

    ``noise_dim = 0`` gives a deterministic map T(x) (``z`` is then omitted). With ``residual=True``
    (equal shapes only) the output is x + MLP([x, z]), so a network initialised near zero starts
    near the identity map. ``noise_shape`` is the shape of one z, for whoever draws it.
    """

    def __init__(self, in_shape: int | Sequence[int], noise_dim: int, hidden: Sequence[int] = (128, 128, 128),
                 act: str = "silu", residual: bool = False, out_shape: int | Sequence[int] | None = None):
        super().__init__()
        self.in_shape = (int(in_shape),) if isinstance(in_shape, int) else tuple(int(s) for s in in_shape)
        out = self.in_shape if out_shape is None else out_shape
        self.out_shape = (int(out),) if isinstance(out, int) else tuple(int(s) for s in out)
        if min(self.in_shape) < 1 or min(self.out_shape) < 1 or noise_dim < 0:
            raise ValueError(f"shapes must be positive and noise_dim >= 0, got in_shape {self.in_shape}, "
                             f"out_shape {self.out_shape}, noise_dim {noise_dim}")
        if residual and self.in_shape != self.out_shape:
            raise ValueError(f"residual=True needs equal in and out shapes, got {self.in_shape} and {self.out_shape}")
        self.dim = math.prod(self.in_shape)
        self.noise_dim, self.residual = int(noise_dim), bool(residual)
        self.net = MLP(self.dim + self.noise_dim, math.prod(self.out_shape), hidden, act)

    @property
    def noise_shape(self) -> tuple[int, ...]:
        return (self.noise_dim,) if self.noise_dim else ()

    def forward(self, x: torch.Tensor, z: torch.Tensor | None = None) -> torch.Tensor:
        if tuple(x.shape[1:]) != self.in_shape:
            raise ValueError(f"x must have shape (n, {', '.join(map(str, self.in_shape))}), got {tuple(x.shape)}")
        flat = x.reshape(x.shape[0], self.dim)
        if self.noise_dim:
            if z is None or tuple(z.shape) != (x.shape[0], self.noise_dim):
                raise ValueError(f"z must have shape ({x.shape[0]}, {self.noise_dim}), "
                                 f"got {None if z is None else tuple(z.shape)}")
            inp = torch.cat([flat, z], dim=1)
        else:
            inp = flat
        out = self.net(inp)
        if self.residual:
            out = flat + out
        return out.reshape(x.shape[0], *self.out_shape)
