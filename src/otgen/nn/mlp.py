"""Multi-layer perceptrons for potentials and maps."""

from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import nn

_ACTIVATIONS = {
    "relu": lambda: nn.ReLU(),
    "leaky_relu": lambda: nn.LeakyReLU(0.2),
    "silu": lambda: nn.SiLU(),
    "elu": lambda: nn.ELU(),
    "softplus": lambda: nn.Softplus(),
    "tanh": lambda: nn.Tanh(),
}


def activation(name: str) -> nn.Module:
    """An activation module by name: relu, leaky_relu (slope 0.2), silu, elu, softplus, tanh."""
    if name not in _ACTIVATIONS:
        raise ValueError(f"activation must be one of {sorted(_ACTIVATIONS)}, got {name!r}")
    return _ACTIVATIONS[name]()


class MLP(nn.Module):
    """x (n, in_dim) -> (n, out_dim): Linear layers of widths ``hidden`` with ``act`` between them."""

    def __init__(self, in_dim: int, out_dim: int, hidden: Sequence[int] = (256, 256, 256), act: str = "leaky_relu"):
        super().__init__()
        if in_dim < 1 or out_dim < 1:
            raise ValueError(f"in_dim and out_dim must be >= 1, got {in_dim}, {out_dim}")
        if any(int(h) < 1 for h in hidden):
            raise ValueError(f"hidden widths must be >= 1, got {list(hidden)}")
        widths = [in_dim, *[int(h) for h in hidden], out_dim]
        layers: list[nn.Module] = []
        for i, (a, b) in enumerate(zip(widths[:-1], widths[1:])):
            layers.append(nn.Linear(a, b))
            if i < len(widths) - 2:
                layers.append(activation(act))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class ScalarMLP(nn.Module):
    """A scalar function of a batch: (n, *event_shape) -> (n,), an MLP on the flattened input.

    The last layer starts at zero, so the function is 0 at initialisation: for EgNOT this makes the
    first conditional plan pi(y|x) ∝ exp(−c(x, y)/eps), the plan of the cost alone.
    """

    def __init__(self, event_shape: Sequence[int], hidden: Sequence[int] = (256, 256, 256), act: str = "leaky_relu"):
        super().__init__()
        self.event_shape = tuple(int(s) for s in event_shape)
        self.mlp = MLP(math.prod(self.event_shape), 1, hidden, act)
        last = self.mlp.net[-1]
        nn.init.zeros_(last.weight)
        nn.init.zeros_(last.bias)

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        return self.mlp(y.reshape(y.shape[0], -1)).squeeze(1)
