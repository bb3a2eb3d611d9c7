"""Multi-layer perceptrons for potentials and maps."""

from __future__ import annotations

import math
from typing import Callable, Sequence

import torch
from torch import nn

from ..registry import Registry

ACTIVATIONS: Registry[Callable[[], nn.Module]] = Registry("activation")
ACTIVATIONS.add("relu", lambda: nn.ReLU())
ACTIVATIONS.add("leaky_relu", lambda: nn.LeakyReLU(0.2))
ACTIVATIONS.add("silu", lambda: nn.SiLU())
ACTIVATIONS.add("elu", lambda: nn.ELU())
ACTIVATIONS.add("softplus", lambda: nn.Softplus())
ACTIVATIONS.add("tanh", lambda: nn.Tanh())


def activation(name: str) -> nn.Module:
    """An activation module by name: relu, leaky_relu (slope 0.2), silu, elu, softplus, tanh (case and
    '-'/'_' do not matter); ValueError with a "did you mean" otherwise."""
    return ACTIVATIONS.get(name, where="activation")()


def _act_and_slope(name: str, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(act(z), act'(z)) for the activations with a closed-form derivative."""
    if name == "silu":
        s = torch.sigmoid(z)
        h = z * s
        return h, torch.addcmul(s, h, 1 - s)  # silu' = s (1 + z (1 − s)) = s + h (1 − s)
    if name == "leaky_relu":
        pos = z > 0
        return torch.where(pos, z, 0.2 * z), torch.where(pos, 1.0, 0.2)
    if name == "relu":
        pos = z > 0
        return torch.where(pos, z, 0.0), pos.to(z.dtype)
    raise KeyError(name)


CLOSED_FORM_SLOPES = ("silu", "leaky_relu", "relu")


class MLP(nn.Module):
    """x (n, in_dim) -> (n, out_dim): Linear layers of widths ``hidden`` with ``act`` between them."""

    def __init__(self, in_dim: int, out_dim: int, hidden: Sequence[int] = (256, 256, 256), act: str = "leaky_relu"):
        super().__init__()
        self.act = ACTIVATIONS.canonical(act, where="activation")  # as registered: _act_and_slope reads it
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

    @torch.no_grad()
    def value_and_input_grad(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """For ``out_dim == 1``: (value (n,), ∂value/∂x (n, in_dim)), by a hand-written backward pass
        (matmuls and one elementwise product per layer; no autograd graph). About 8 % faster than
        autograd for Langevin steps of a 3x256 MLP (BENCHMARKS.md). Needs an activation of
        ``CLOSED_FORM_SLOPES``."""
        linears = [m for m in self.net if isinstance(m, nn.Linear)]
        h, slopes = x, []
        for layer in linears[:-1]:
            h, slope = _act_and_slope(self.act, torch.addmm(layer.bias, h, layer.weight.T))
            slopes.append(slope)
        last = linears[-1]
        value = torch.addmm(last.bias, h, last.weight.T).squeeze(1)
        grad = slopes[-1] * last.weight if slopes else last.weight.expand_as(x)
        for layer, slope in zip(reversed(linears[1:-1]), reversed(slopes[:-1])):
            grad = torch.mm(grad, layer.weight).mul_(slope)
        if slopes:
            grad = torch.mm(grad, linears[0].weight)
        return value, grad


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

    With ``zero_init`` (EgNOT's default) the MLP's last layer starts at zero: the function is 0 at
    initialisation, so for EgNOT the first plan is pi(y|x) ∝ exp(−c(x, y)/eps). Without it (UOTM and
    S-JKO potentials) every layer keeps PyTorch's default initialisation.
    """

    quadratic_lr_scale = 10.0

    def __init__(self, event_shape: Sequence[int], hidden: Sequence[int] = (256, 256, 256), act: str = "leaky_relu",
                 quadratic: str = "none", quadratic_ceiling: float = 1.0, zero_init: bool = True):
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
        if zero_init:
            last = self.mlp.net[-1]
            nn.init.zeros_(last.weight)
            nn.init.zeros_(last.bias)
        if quadratic != "none":
            root = math.sqrt(self.ceiling)
            self.quad = nn.Parameter(root * (torch.eye(dim) if quadratic == "full" else torch.ones(dim)))
            self.lin = nn.Parameter(torch.zeros(dim))

    @property
    def output_bias(self) -> nn.Parameter:
        """The parameter that adds a constant to f (the last Linear's bias)."""
        return self.mlp.net[-1].bias

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # model files of otgen <= 0.1 stored the UOTM / S-JKO potential as ``ScalarNet`` (``net.`` = this MLP)
        for key in [k for k in state_dict if k.startswith(prefix + "net.")]:
            state_dict[prefix + "mlp." + key[len(prefix) + len("net."):]] = state_dict.pop(key)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def parameter_groups(self, lr: float) -> list[dict]:
        """Optimiser parameter groups: the MLP at ``lr``, the quadratic term at ``quadratic_lr_scale·lr``."""
        groups = [{"params": list(self.mlp.parameters()), "lr": lr}]
        if self.quadratic != "none":
            groups.append({"params": [self.quad, self.lin], "lr": lr * self.quadratic_lr_scale})
        return groups

    @torch.no_grad()
    def value_and_grad(self, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(f(y) (n,), ∇_y f(y) shaped like y) without autograd; what Langevin steps need."""
        if self.mlp.act not in CLOSED_FORM_SLOPES:
            with torch.enable_grad():
                y_ = y.detach().requires_grad_(True)
                f = self(y_)
                (grad,) = torch.autograd.grad(f.sum(), y_)
            return f.detach(), grad
        flat = y.reshape(y.shape[0], -1)
        f, grad = self.mlp.value_and_input_grad(flat)
        if self.quadratic == "full":  # ∇[½ c‖y‖² − ½‖Mᵀy‖²] = c y − M Mᵀ y
            proj = flat @ self.quad
            f = f + 0.5 * (self.ceiling * flat.pow(2).sum(1) - proj.pow(2).sum(1)) + flat @ self.lin
            grad = grad + self.ceiling * flat - proj @ self.quad.T + self.lin
        elif self.quadratic == "diag":
            m2 = self.quad.pow(2)
            f = f + 0.5 * (self.ceiling * flat.pow(2).sum(1) - flat.pow(2) @ m2) + flat @ self.lin
            grad = grad + (self.ceiling - m2) * flat + self.lin
        return f, grad.reshape(y.shape)

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
