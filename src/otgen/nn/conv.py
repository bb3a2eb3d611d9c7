"""Convolutional networks for image batches (n, C, H, W), values in [-1, 1]: DCGAN-style encoders,
decoders, potentials (critics) and generators, hand-written from plain stride-2 4×4 blocks.

Every class is sized by its image shape. L stride-2 blocks take an H×W image to an
(H/2^L)×(W/2^L) map, so H and W must be multiples of 2^L; ``n_down=None`` (or ``n_up=None``) picks
L = log2(min(H, W)/4), a 4×4 map at the bottom, and then needs min(H, W) = 4·2^L (8, 16, 32, ...).
Channels double from ``width`` on the way down: width, 2·width, ..., width·2^(L−1).
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import nn

from .mlp import activation as make_activation

__all__ = ["ConvEncoder", "ConvDecoder", "ConvPotential", "ConvGenerator", "ConvNoiseGenerator",
           "check_batch", "output_activation"]

OUTPUTS = ("tanh", "sigmoid", "none")
NORMS = ("batch", "group", "none")


# ----------------------------------------------------------------------------- shared helpers


def _ints(shape: int | Sequence[int]) -> tuple[int, ...]:
    return (int(shape),) if isinstance(shape, int) else tuple(int(s) for s in shape)


def image_levels(name: str, shape: Sequence[int], levels: int | None, levels_name: str = "n_down") -> int:
    """The number L of stride-2 levels for an image ``shape`` (C, H, W): ``levels`` checked, or
    log2(min(H, W)/4) when None; ValueError naming ``name`` / ``levels_name`` otherwise."""
    shape = tuple(shape)
    if len(shape) != 3 or min(shape, default=0) < 1:
        raise ValueError(f"{name} must be (C, H, W) with positive sizes, got {shape}")
    _, h, w = shape
    if levels is None:
        side = min(h, w)
        lv = int(round(math.log2(side / 4))) if side >= 8 else 0
        if lv < 1 or side != 4 * 2 ** lv or h % 2 ** lv or w % 2 ** lv:
            raise ValueError(f"{name} must be (C, H, W) with min(H, W) = 4·2^L (8, 16, 32, 64, ...) and H, W "
                             f"multiples of 2^L for the automatic {levels_name}=None (or pass {levels_name}), "
                             f"got {shape}")
        return lv
    if isinstance(levels, bool) or not isinstance(levels, int) or levels < 1:
        raise ValueError(f"{levels_name} must be an int >= 1 or None, got {levels!r}")
    if h % 2 ** levels or w % 2 ** levels:
        raise ValueError(f"{name} must be (C, H, W) with H, W multiples of 2^{levels_name} = {2 ** levels} "
                         f"for {levels_name}={levels}, got {shape}")
    return levels


def _check_width(width: int) -> int:
    if isinstance(width, bool) or not isinstance(width, int) or width < 1:
        raise ValueError(f"width must be an int >= 1, got {width!r}")
    return width


def _check_dim(name: str, value: int, low: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ValueError(f"{name} must be an int >= {low}, got {value!r}")
    return value


def check_batch(name: str, t: torch.Tensor | None, shape: Sequence[int], n: int | None = None) -> None:
    """ValueError unless ``t`` is a batch (n, *shape) (of ``n`` rows, if given), naming ``name`` and
    the expected shape."""
    if t is None or t.dim() != len(shape) + 1 or tuple(t.shape[1:]) != tuple(shape) or \
            (n is not None and t.shape[0] != n):
        got = None if t is None else tuple(t.shape)
        raise ValueError(f"{name} must have shape ({'n' if n is None else n}, {', '.join(map(str, shape))}), "
                         f"got {got}")


def norm_layer(norm: str, channels: int) -> nn.Module:
    """BatchNorm2d ("batch"), GroupNorm with gcd(channels, 8) groups ("group"), or nothing ("none")."""
    if norm == "batch":
        return nn.BatchNorm2d(channels)
    if norm == "group":
        return nn.GroupNorm(math.gcd(channels, 8), channels)
    if norm == "none":
        return nn.Identity()
    raise ValueError(f"norm must be one of {NORMS}, got {norm!r}")


def output_activation(output: str) -> nn.Module:
    """The last nonlinearity of an image decoder: "tanh" ([-1, 1]), "sigmoid" ([0, 1]) or "none"."""
    if output not in OUTPUTS:
        raise ValueError(f"output must be one of {OUTPUTS}, got {output!r}")
    return {"tanh": nn.Tanh, "sigmoid": nn.Sigmoid, "none": nn.Identity}[output]()


def _block(conv: nn.Module, channels: int, norm: str, act: str) -> nn.Sequential:
    return nn.Sequential(conv, norm_layer(norm, channels), make_activation(act))


def _down(c_in: int, c_out: int, norm: str, act: str) -> nn.Sequential:
    """(n, c_in, h, w) -> (n, c_out, h/2, w/2): a stride-2 4×4 conv, norm, activation."""
    return _block(nn.Conv2d(c_in, c_out, 4, 2, 1, bias=norm == "none"), c_out, norm, act)


def _up(c_in: int, c_out: int, norm: str, act: str) -> nn.Sequential:
    """(n, c_in, h, w) -> (n, c_out, 2h, 2w): a stride-2 4×4 transposed conv, norm, activation."""
    return _block(nn.ConvTranspose2d(c_in, c_out, 4, 2, 1, bias=norm == "none"), c_out, norm, act)


def _same(c_in: int, c_out: int, norm: str, act: str) -> nn.Sequential:
    """(n, c_in, h, w) -> (n, c_out, h, w): a stride-1 3×3 conv, norm, activation."""
    return _block(nn.Conv2d(c_in, c_out, 3, 1, 1, bias=norm == "none"), c_out, norm, act)


def _down_stack(c_in: int, width: int, levels: int, norm: str, act: str) -> nn.Sequential:
    chans = [c_in] + [width * 2 ** i for i in range(levels)]
    return nn.Sequential(*[_down(a, b, norm, act) for a, b in zip(chans[:-1], chans[1:])])


# ----------------------------------------------------------------------------- encoder, decoder


class ConvEncoder(nn.Module):
    """x (n, C, H, W) -> (n, out_dim): L stride-2 4×4 convs (width, 2·width, ..., width·2^(L−1)
    channels), each with ``norm`` and ``activation``, then a Linear from the flattened
    (H/2^L)×(W/2^L) map to ``out_dim``. WAE's DCGAN encoder (BatchNorm, ReLU) in spirit.
    ``n_down=None``: L = log2(min(H, W)/4), a 4×4 map.
    """

    def __init__(self, event_shape: Sequence[int], out_dim: int, width: int = 64, n_down: int | None = None,
                 norm: str = "batch", activation: str = "relu"):
        super().__init__()
        self.event_shape = _ints(event_shape)
        self.n_down = image_levels("event_shape", self.event_shape, n_down, "n_down")
        self.out_dim = _check_dim("out_dim", out_dim)
        width = _check_width(width)
        c, h, w = self.event_shape
        self.convs = _down_stack(c, width, self.n_down, norm, activation)
        self.linear = nn.Linear(width * 2 ** (self.n_down - 1) * (h >> self.n_down) * (w >> self.n_down), out_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_batch("x", x, self.event_shape)
        return self.linear(self.convs(x).flatten(1))


class ConvDecoder(nn.Module):
    """z (n, latent_dim) -> (n, C, H, W): a Linear to a (width·2^(L−1), H/2^L, W/2^L) map, L stride-2
    4×4 transposed convs with ``norm`` and ``activation`` halving the channels down to ``width``
    (the last one keeps ``width``), a stride-1 3×3 conv to C channels, then ``output``: "tanh"
    (default, images in [-1, 1]), "sigmoid" ([0, 1]) or "none". ``n_up=None``: L = log2(min(H, W)/4).
    """

    def __init__(self, latent_dim: int, event_shape: Sequence[int], width: int = 64, n_up: int | None = None,
                 norm: str = "batch", activation: str = "relu", output: str = "tanh"):
        super().__init__()
        self.latent_dim = _check_dim("latent_dim", latent_dim)
        self.event_shape = _ints(event_shape)
        self.n_up = image_levels("event_shape", self.event_shape, n_up, "n_up")
        width = _check_width(width)
        c, h, w = self.event_shape
        lv = self.n_up
        self.map_shape = (width * 2 ** (lv - 1), h >> lv, w >> lv)
        self.linear = nn.Linear(latent_dim, math.prod(self.map_shape))
        chans = [width * 2 ** max(lv - 1 - i, 0) for i in range(lv + 1)]
        self.ups = nn.Sequential(*[_up(a, b, norm, activation) for a, b in zip(chans[:-1], chans[1:])])
        self.head = nn.Conv2d(width, c, 3, 1, 1)
        self.output = output_activation(output)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        check_batch("z", z, (self.latent_dim,))
        h = self.linear(z).reshape(z.shape[0], *self.map_shape)
        return self.output(self.head(self.ups(h)))


# ----------------------------------------------------------------------------- potential / critic


class ConvPotential(nn.Module):
    """A scalar f(y): (n, C, H, W) -> (n,). L stride-2 4×4 convs (width, ..., width·2^(L−1) channels)
    with ``activation`` (and GroupNorm with ``norm="group"``), then flatten, Linear(-> 8·width),
    ``activation``, Linear(-> 1).

    No BatchNorm: each f(y_i) depends on y_i alone, and f is twice differentiable for smooth
    activations, so ∇_y f (EgNOT's Langevin steps) and gradients of ‖∇_y f‖² with
    ``create_graph=True`` (R1 penalties) work. ``zero_init`` (EgNOT's default) zeroes the last layer:
    f ≡ 0 at initialisation. As the critic / potential v(y) of UOTM and S-JKO: ``zero_init=False``,
    and "leaky_relu" is the usual choice of activation.
    """

    def __init__(self, event_shape: Sequence[int], width: int = 32, n_down: int | None = None,
                 activation: str = "silu", norm: str = "none", zero_init: bool = True):
        super().__init__()
        if norm not in ("none", "group"):
            raise ValueError(f"norm must be 'none' or 'group' (no BatchNorm in a potential), got {norm!r}")
        self.event_shape = _ints(event_shape)
        self.n_down = image_levels("event_shape", self.event_shape, n_down, "n_down")
        width = _check_width(width)
        c, h, w = self.event_shape
        lv = self.n_down
        self.convs = _down_stack(c, width, lv, norm, activation)
        hidden = 8 * width
        self.head = nn.Sequential(nn.Linear(width * 2 ** (lv - 1) * (h >> lv) * (w >> lv), hidden),
                                  make_activation(activation), nn.Linear(hidden, 1))
        if zero_init:
            nn.init.zeros_(self.head[-1].weight)
            nn.init.zeros_(self.head[-1].bias)

    @property
    def output_bias(self) -> nn.Parameter:
        """The parameter that adds a constant to f (the last Linear's bias)."""
        return self.head[-1].bias

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        check_batch("y", y, self.event_shape)
        return self.head(self.convs(y).flatten(1)).squeeze(1)


# ----------------------------------------------------------------------------- generators T(x, z)


class ConvGenerator(nn.Module):
    """T(x, z): x (n, C_s, H, W), z (n, noise_dim) -> (n, C, H, W), a small U-Net for UOTM / S-JKO.

    A stride-1 3×3 stem to ``width`` channels; L stride-2 4×4 down blocks (2·width, then 4·width
    channels); at the (H/2^L)×(W/2^L) bottleneck a Linear of z, reshaped to the bottleneck map, is
    added, then a 3×3 block; L up blocks (a stride-2 4×4 transposed conv, the skip of that resolution
    concatenated, a 3×3 block); a 3×3 conv to C channels. Blocks use ``norm`` (GroupNorm by default:
    per-sample, the same in train and eval mode) and ``activation``.

    Output: ``output`` of the last conv, "tanh" by default (images in [-1, 1]; "none": unbounded, for
    data outside [-1, 1]; "sigmoid": [0, 1]); with ``residual=True`` (equal source and event shapes)
    x + net(x, z) with no output activation (``output`` None or "none"), the last conv
    zero-initialised so that T starts as the identity exactly. ``noise_dim = 0``: deterministic, ``z``
    omitted. Source and event shapes may differ in channels but not in H, W. ``noise_shape``:
    (noise_dim,), or () without noise.
    """

    def __init__(self, source_shape: Sequence[int], event_shape: Sequence[int], noise_dim: int = 0,
                 width: int = 32, activation: str = "silu", residual: bool = False, n_down: int | None = None,
                 norm: str = "group", output: str | None = None):
        super().__init__()
        self.source_shape, self.event_shape = _ints(source_shape), _ints(event_shape)
        self.n_down = image_levels("event_shape", self.event_shape, n_down, "n_down")
        if residual and output not in (None, "none"):
            raise ValueError(f"output must be None or 'none' with residual=True (x + net has no output "
                             f"activation), got {output!r}")
        if len(self.source_shape) != 3 or self.source_shape[1:] != self.event_shape[1:]:
            raise ValueError(f"source_shape must be (C, H, W) with the H, W of event_shape {self.event_shape}, "
                             f"got {self.source_shape}")
        if residual and self.source_shape != self.event_shape:
            raise ValueError(f"residual=True needs equal source and event shapes, got {self.source_shape} "
                             f"and {self.event_shape}")
        self.noise_dim = _check_dim("noise_dim", noise_dim, 0)
        self.residual = bool(residual)
        width = _check_width(width)
        lv = self.n_down
        chans = [width * 2 ** min(i, 2) for i in range(lv + 1)]  # capped at 4·width: modest on CPU
        self.stem = _same(self.source_shape[0], width, norm, activation)
        self.downs = nn.ModuleList(_down(a, b, norm, activation) for a, b in zip(chans[:-1], chans[1:]))
        _, h, w = self.event_shape
        self.bottleneck_shape = (chans[-1], h >> lv, w >> lv)
        self.noise = nn.Linear(self.noise_dim, math.prod(self.bottleneck_shape)) if self.noise_dim else None
        self.mid = _same(chans[-1], chans[-1], norm, activation)
        self.ups = nn.ModuleList(_up(b, a, norm, activation) for a, b in zip(chans[:-1], chans[1:]))
        self.fuses = nn.ModuleList(_same(2 * a, a, norm, activation) for a in chans[:-1])
        self.head = nn.Conv2d(width, self.event_shape[0], 3, 1, 1)
        self.output = output_activation("none" if residual else "tanh" if output is None else output)
        if self.residual:
            nn.init.zeros_(self.head.weight)
            nn.init.zeros_(self.head.bias)

    @property
    def noise_shape(self) -> tuple[int, ...]:
        return (self.noise_dim,) if self.noise_dim else ()

    def forward(self, x: torch.Tensor, z: torch.Tensor | None = None) -> torch.Tensor:
        check_batch("x", x, self.source_shape)
        h = self.stem(x)
        skips = []
        for down in self.downs:
            skips.append(h)
            h = down(h)
        if self.noise is not None:
            check_batch("z", z, (self.noise_dim,), x.shape[0])
            h = h + self.noise(z).reshape(x.shape[0], *self.bottleneck_shape)
        h = self.mid(h)
        for up, fuse, skip in zip(reversed(self.ups), reversed(self.fuses), reversed(skips)):
            h = fuse(torch.cat([up(h), skip], dim=1))
        out = self.head(h)
        return x + out if self.residual else self.output(out)


class ConvNoiseGenerator(nn.Module):
    """T(x, z): x (n, d), z (n, noise_dim) -> (n, C, H, W): a :class:`ConvDecoder` on [x, z], for
    generating images from vectors (UOTM / S-JKO from N(0, I)). ``noise_dim = 0``: deterministic,
    ``z`` omitted. ``norm`` defaults to GroupNorm (per-sample, the same in train and eval mode);
    ``output`` as for the decoder (tanh: images in [-1, 1]). ``noise_shape``: (noise_dim,) or ().
    """

    def __init__(self, source_shape: int | Sequence[int], event_shape: Sequence[int], noise_dim: int = 0,
                 width: int = 64, n_up: int | None = None, norm: str = "group", activation: str = "relu",
                 output: str = "tanh"):
        super().__init__()
        self.source_shape, self.event_shape = _ints(source_shape), _ints(event_shape)
        if len(self.source_shape) != 1 or self.source_shape[0] < 1:
            raise ValueError(f"source_shape must be (d,) with d >= 1, got {self.source_shape}")
        self.noise_dim = _check_dim("noise_dim", noise_dim, 0)
        self.decoder = ConvDecoder(self.source_shape[0] + self.noise_dim, self.event_shape, width, n_up, norm,
                                   activation, output)

    @property
    def noise_shape(self) -> tuple[int, ...]:
        return (self.noise_dim,) if self.noise_dim else ()

    def forward(self, x: torch.Tensor, z: torch.Tensor | None = None) -> torch.Tensor:
        check_batch("x", x, self.source_shape)
        if self.noise_dim:
            check_batch("z", z, (self.noise_dim,), x.shape[0])
            x = torch.cat([x, z], dim=1)
        return self.decoder(x)
