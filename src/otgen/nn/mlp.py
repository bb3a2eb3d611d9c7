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


QUADRATIC = ("auto", "full", "diag", "none")


class ScalarMLP(nn.Module):
    """A scalar function of a batch: (n, *event_shape) -> (n,), an MLP on the flattened input plus an
    optional quadratic term ½ yᵀAy + bᵀy bounded above: A = c·I − M Mᵀ ("full") or a diagonal
    c − m² ("diag"), with ceiling c = ``quadratic_ceiling`` > 0.

    Why: for the squared cost ½‖x − y‖² the optimal potentials are a quadratic plus a correction in
    many cases (exactly quadratic between Gaussians), and a piecewise-linear or SiLU MLP approximates
    the gradient of a quadratic only coarsely. Why bounded: exp((f(y) − ½‖x − y‖²)/eps) is a proper
    density only if f grows slower than ½‖y‖², i.e. A ≺ I (the MLP grows at most linearly). With c = 1,
    A ≼ I by construction, so the quadratic term can never outgrow the cost (only a singular M would
    leave a direction in which the density is flat). M starts at sqrt(c)·I so A = 0.
    ``quadratic="auto"`` is "full" up to 1024 coordinates and "diag" beyond. The quadratic
    parameters ask for ``quadratic_lr_scale`` times the MLP's learning rate (``parameter_groups``).

    The MLP's last layer starts at zero: the function is 0 at initialisation, so for EgNOT the first
    plan is pi(y|x) ∝ exp(−c(x, y)/eps).
    """

    quadratic_lr_scale = 10.0

    def __init__(self, event_shape: Sequence[int], hidden: Sequence[int] = (256, 256, 256), act: str = "leaky_relu",
                 quadratic: str = "none", quadratic_ceiling: float = 1.0):
        super().__init__()
        if quadratic not in QUADRATIC:
            raise ValueError(f"quadratic must be one of {QUADRATIC}, got {quadratic!r}")
        if quadratic != "none" and not quadratic_ceiling > 0:
            raise ValueError(f"quadratic_ceiling must be > 0, got {quadratic_ceiling!r}")
        self.event_shape = tuple(int(s) for s in event_shape)
        dim = math.prod(self.event_shape)
        if quadratic == "auto":
            quadratic = "full" if dim <= 1024 else "diag"
        self.quadratic = quadratic
        self.ceiling = float(quadratic_ceiling)
        self.mlp = MLP(dim, 1, hidden, act)
        last = self.mlp.net[-1]
        nn.init.zeros_(last.weight)
        nn.init.zeros_(last.bias)
        if quadratic != "none":
            root = math.sqrt(self.ceiling)
            self.quad = nn.Parameter(root * (torch.eye(dim) if quadratic == "full" else torch.ones(dim)))
            self.lin = nn.Parameter(torch.zeros(dim))

    def parameter_groups(self, lr: float) -> list[dict]:
        """Optimiser parameter groups: the MLP at ``lr``, the quadratic term at ``quadratic_lr_scale·lr``."""
        groups = [{"params": list(self.mlp.parameters()), "lr": lr}]
        if self.quadratic != "none":
            groups.append({"params": [self.quad, self.lin], "lr": lr * self.quadratic_lr_scale})
        return groups

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        flat = y.reshape(y.shape[0], -1)
        out = self.mlp(flat).squeeze(1)
        if self.quadratic == "none":
            return out
        if self.quadratic == "full":  # ½ c‖y‖² − ½‖Mᵀy‖²
            below = (flat @ self.quad).pow(2).sum(1)
        else:  # ½ Σ (c − m_i²) y_i²
            below = flat.pow(2) @ self.quad.pow(2)
        return out + 0.5 * (self.ceiling * flat.pow(2).sum(1) - below) + flat @ self.lin
