"""Flat encoders and decoders (WAE): MLPs and single linear maps on flattened samples of any shape.

Encoder: x (n, *event_shape) -> (n, out_dim). Decoder: z (n, latent_dim) -> (n, *event_shape).
The convolutional ones are in :mod:`otgen.nn.conv`.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import nn

from .conv import _check_dim, check_batch, output_activation
from .mlp import MLP

__all__ = ["MLPEncoder", "MLPDecoder", "LinearEncoder", "LinearDecoder"]


def _shape(name: str, shape: int | Sequence[int]) -> tuple[int, ...]:
    shape = (int(shape),) if isinstance(shape, int) else tuple(int(s) for s in shape)
    if not shape or min(shape) < 1:
        raise ValueError(f"{name} must be a non-empty shape of positive sizes, got {shape}")
    return shape


class MLPEncoder(nn.Module):
    """x (n, *event_shape) -> (n, out_dim): an MLP of widths ``hidden`` on the flattened x."""

    def __init__(self, event_shape: int | Sequence[int], out_dim: int, hidden: Sequence[int] = (256, 256),
                 activation: str = "relu"):
        super().__init__()
        self.event_shape = _shape("event_shape", event_shape)
        self.out_dim = _check_dim("out_dim", out_dim)
        self.mlp = MLP(math.prod(self.event_shape), out_dim, hidden, activation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_batch("x", x, self.event_shape)
        return self.mlp(x.flatten(1))


class MLPDecoder(nn.Module):
    """z (n, latent_dim) -> (n, *event_shape): an MLP of widths ``hidden`` to prod(event_shape)
    outputs, reshaped, then ``output``: "none" (default), "tanh" ([-1, 1]) or "sigmoid" ([0, 1])."""

    def __init__(self, latent_dim: int, event_shape: int | Sequence[int], hidden: Sequence[int] = (256, 256),
                 activation: str = "relu", output: str = "none"):
        super().__init__()
        self.latent_dim = _check_dim("latent_dim", latent_dim)
        self.event_shape = _shape("event_shape", event_shape)
        self.mlp = MLP(latent_dim, math.prod(self.event_shape), hidden, activation)
        self.output = output_activation(output)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        check_batch("z", z, (self.latent_dim,))
        return self.output(self.mlp(z)).reshape(z.shape[0], *self.event_shape)


class LinearEncoder(nn.Module):
    """x (n, *event_shape) -> (n, out_dim): one ``nn.Linear`` on the flattened x (``bias`` optional)."""

    def __init__(self, event_shape: int | Sequence[int], out_dim: int, bias: bool = True):
        super().__init__()
        self.event_shape = _shape("event_shape", event_shape)
        self.out_dim = _check_dim("out_dim", out_dim)
        self.linear = nn.Linear(math.prod(self.event_shape), out_dim, bias=bool(bias))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_batch("x", x, self.event_shape)
        return self.linear(x.flatten(1))


class LinearDecoder(nn.Module):
    """z (n, latent_dim) -> (n, *event_shape): x = G z (+ b), reshaped. ``weight`` is the matrix G,
    (prod(event_shape), latent_dim); ``bias`` optional (the linear-Gaussian WAE ground truth)."""

    def __init__(self, latent_dim: int, event_shape: int | Sequence[int], bias: bool = True):
        super().__init__()
        self.latent_dim = _check_dim("latent_dim", latent_dim)
        self.event_shape = _shape("event_shape", event_shape)
        self.linear = nn.Linear(latent_dim, math.prod(self.event_shape), bias=bool(bias))

    @property
    def weight(self) -> nn.Parameter:
        return self.linear.weight

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        check_batch("z", z, (self.latent_dim,))
        return self.linear(z).reshape(z.shape[0], *self.event_shape)
