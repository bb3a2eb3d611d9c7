"""Full-size image networks for a GPU: a DDGAN/NCSN++-style U-Net generator T(x, z), a DDGAN-
discriminator-style ResNet critic v(y), and the EgNOT paper's Coloured-MNIST energy network.

Hand-written after the published designs (uotm-sjko.md §1.5, egnot.md §8.4), no code taken from
them. Batches are (n, C, H, W), values in [-1, 1]; every network checks its input shapes with
:func:`otgen.nn.conv.check_batch`.

* :class:`ResUNetGenerator` — T(x, z): x (n, C_s, H, W), z (n, noise_dim) -> (n, C, H, W). BigGAN-
  type residual blocks (GroupNorm, SiLU, 3×3 convs, sum with the skip scaled by 1/√2), two per
  resolution by default; z mapped by an MLP (PixelNorm, Linear, SiLU, ...) to a style vector that
  sets the scale and shift of every GroupNorm in every residual block (adaptive GroupNorm); self-
  attention at the listed resolutions; U-Net skips; the input image also enters every lower
  resolution (NCSN++'s residual progressive input). Simplifications against NCSN++: average-pool
  and nearest-neighbour resampling instead of the FIR [1, 3, 3, 1] kernel; no time embedding.
  The DDGAN CIFAR-10 size (width 128, channel_mult (1, 2, 2, 2), n_res 2, attention at 16) is
  about 43.5 M parameters (noise_dim 100, z_embed_dim 256, n_mlp 4).
* :class:`ResNetCritic` — v(y): (n, C, H, W) -> (n,). A 1×1 stem, residual down blocks without any
  normalisation, a 3×3 conv, a global *sum* pool and a Linear. Without DDGAN's minibatch-stddev
  feature, so that v(y_i) depends on y_i alone (and any batch size works). Twice differentiable
  through autograd (no BatchNorm): R1 penalties with ``create_graph=True`` work.
* :class:`VanillaEnergyNet` — f(y): (n, C, H, W) -> (n,). The "VanillaNet" of the EgNOT Coloured-
  MNIST experiment: conv C→w→2w→4w→8w→1 with kernels 3/4/4/4/4 and LeakyReLU(0.05).
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .conv import _check_dim, _check_width, _ints, check_batch
from .mlp import ACTIVATIONS
from .mlp import activation as make_activation

__all__ = ["ResUNetGenerator", "ResNetCritic", "VanillaEnergyNet"]

_SKIP = 1.0 / math.sqrt(2.0)  # skip rescaling: (a + b)/√2 keeps the variance of a sum of two paths


# ----------------------------------------------------------------------------- argument checks


def _image_shape(name: str, shape: Sequence[int]) -> tuple[int, int, int]:
    shape = _ints(shape)
    if len(shape) != 3 or min(shape) < 1:
        raise ValueError(f"{name} must be (C, H, W) with positive sizes, got {shape}")
    return shape  # type: ignore[return-value]


def _check_mult(channel_mult: Sequence[int]) -> tuple[int, ...]:
    try:
        mult = tuple(channel_mult)
    except TypeError:
        mult = ()
    if not mult or any(isinstance(m, bool) or not isinstance(m, int) or m < 1 for m in mult):
        raise ValueError(f"channel_mult must be a non-empty list of ints >= 1, got {channel_mult!r}")
    return mult


def _check_divisible(name: str, shape: tuple[int, int, int], levels: int) -> None:
    f = 2 ** levels
    if shape[1] % f or shape[2] % f:
        raise ValueError(f"{name} must have H and W multiples of 2^(len(channel_mult) − 1) = {f} (one halving "
                         f"per level after the first), got {shape}")


def _groups(channels: int) -> int:
    """GroupNorm groups as NCSN++: min(32, channels // 4), lowered to a divisor of ``channels``."""
    g = max(1, min(32, channels // 4))
    while channels % g:
        g -= 1
    return g


def _zero(module: nn.Module) -> nn.Module:
    for p in module.parameters():
        nn.init.zeros_(p)
    return module


# ----------------------------------------------------------------------------- generator parts


class AdaGroupNorm(nn.Module):
    """GroupNorm whose per-channel scale and shift come from a style vector s (n, style_dim):
    (n, C, H, W) -> (1 + a(s)) · GN(h) + b(s), a and b one Linear; with ``style_dim = 0`` a plain
    affine GroupNorm (a deterministic generator)."""

    def __init__(self, channels: int, style_dim: int):
        super().__init__()
        self.norm = nn.GroupNorm(_groups(channels), channels, affine=style_dim == 0)
        self.style = nn.Linear(style_dim, 2 * channels) if style_dim else None
        if self.style is not None:
            nn.init.zeros_(self.style.bias)

    def forward(self, h: torch.Tensor, s: torch.Tensor | None) -> torch.Tensor:
        h = self.norm(h)
        if self.style is None:
            return h
        scale, shift = self.style(s)[:, :, None, None].chunk(2, dim=1)
        return h * (1 + scale) + shift


class StyleResBlock(nn.Module):
    """(n, c_in, H, W), style (n, style_dim) -> (n, c_out, H', W'): AdaGN, SiLU, [resample], 3×3
    conv, AdaGN, SiLU, dropout, 3×3 conv; plus the (1×1-projected, resampled) input; sum / √2.
    ``resample``: None (H' = H), "down" (average pool, H' = H/2) or "up" (nearest, H' = 2H)."""

    def __init__(self, c_in: int, c_out: int, style_dim: int, dropout: float, resample: str | None = None):
        super().__init__()
        self.resample = resample
        self.norm1 = AdaGroupNorm(c_in, style_dim)
        self.conv1 = nn.Conv2d(c_in, c_out, 3, 1, 1)
        self.norm2 = AdaGroupNorm(c_out, style_dim)
        self.dropout = nn.Dropout(dropout)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1)
        nn.init.zeros_(self.conv2.bias)
        with torch.no_grad():
            self.conv2.weight.mul_(0.1)  # small residual branch at initialisation
        self.skip = nn.Conv2d(c_in, c_out, 1) if c_in != c_out else nn.Identity()

    def _resample(self, h: torch.Tensor) -> torch.Tensor:
        if self.resample == "down":
            return F.avg_pool2d(h, 2)
        if self.resample == "up":
            return F.interpolate(h, scale_factor=2.0, mode="nearest")
        return h

    def forward(self, x: torch.Tensor, s: torch.Tensor | None) -> torch.Tensor:
        h = F.silu(self.norm1(x, s))
        h = self.conv1(self._resample(h))
        h = self.conv2(self.dropout(F.silu(self.norm2(h, s))))
        return (self.skip(self._resample(x)) + h) * _SKIP


class SelfAttention(nn.Module):
    """(n, C, H, W) -> (n, C, H, W): GroupNorm, single-head dot-product attention over the H·W
    positions (1×1 convs for q, k, v and the output, the output zero-initialised), added to the
    input and scaled by 1/√2."""

    def __init__(self, channels: int):
        super().__init__()
        self.norm = nn.GroupNorm(_groups(channels), channels)
        self.qkv = nn.Conv2d(channels, 3 * channels, 1)
        self.out = _zero(nn.Conv2d(channels, channels, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        q, k, v = self.qkv(self.norm(x)).reshape(n, 3, c, h * w).transpose(2, 3).unbind(1)  # (n, hw, c) each
        a = F.scaled_dot_product_attention(q, k, v)  # softmax(q kᵀ / √c) v
        return (x + self.out(a.transpose(1, 2).reshape(n, c, h, w))) * _SKIP


class _Level(nn.Module):
    """The blocks of one resolution: residual blocks, each optionally followed by attention."""

    def __init__(self, blocks: Sequence[nn.Module], attns: Sequence[nn.Module]):
        super().__init__()
        self.blocks = nn.ModuleList(blocks)
        self.attns = nn.ModuleList(attns)


# ----------------------------------------------------------------------------- the U-Net generator


class ResUNetGenerator(nn.Module):
    """T(x, z): x (n, C_s, H, W), z (n, noise_dim) -> (n, C, H, W), a DDGAN/NCSN++-style U-Net.

    Levels i = 0 .. L−1 (L = len(channel_mult)) work at H/2^i × W/2^i with ``width·channel_mult[i]``
    channels. Down path: a 3×3 stem to ``width``; per level ``n_res`` residual blocks (each followed
    by self-attention if the level's side H/2^i is in ``attn_resolutions``), then (but at the last
    level) a residual down block, whose output is averaged with a 1×1 conv of the average-pooled
    input image (progressive input). Middle: residual block, attention, residual block. Up path: per
    level ``n_res + 1`` residual blocks, each on the concatenation with the matching down-path
    activation (attention after the last one at the listed resolutions), then (but at level 0) a
    residual up block. Head: GroupNorm, SiLU, 3×3 conv to C channels.

    z: PixelNorm (z / rms(z)), Linear(noise_dim -> z_embed_dim), SiLU, then ``n_mlp − 1`` times
    Linear(z_embed_dim -> z_embed_dim), SiLU: the style vector s (n, z_embed_dim). Every residual
    block normalises with GroupNorm and scales / shifts by Linear(s) (adaptive GroupNorm).
    ``noise_dim = 0``: a deterministic map, ``z`` omitted, plain affine GroupNorms.

    Output: tanh, in [-1, 1], with ``residual=False``; with ``residual=True`` (equal source and event
    shapes) x + net(x, z), no tanh, the last conv zero-initialised so that T starts as the identity
    exactly (as :class:`otgen.nn.conv.ConvGenerator`). ``noise_shape``: (noise_dim,) or ().

    Size: 43.5 M parameters at the DDGAN CIFAR-10 settings (3×32×32, the defaults with
    noise_dim=100), about 14 GFLOP per image and forward pass: meant for a GPU.

    Args:
        source_shape: (C_s, H, W) of x; the H, W of ``event_shape``.
        event_shape: (C, H, W) of the output; H, W multiples of 2^(L−1).
        noise_dim: dimension of z, >= 0 (DDGAN: 100).
        width: channels of level 0 (DDGAN CIFAR-10: 128). channel_mult: per-level multipliers.
        n_res: residual blocks per level on the way down (one more on the way up), >= 1.
        attn_resolutions: the sides H/2^i at which attention is used; each must be one of the levels'.
        dropout: in [0, 1), inside every residual block. z_embed_dim: style dimension, >= 1.
        n_mlp: Linear layers of the z mapping, >= 1 (DDGAN CIFAR-10: 4).
        residual: x + net(x, z) with a zero-initialised head (identity at initialisation).
    """

    def __init__(self, source_shape: Sequence[int], event_shape: Sequence[int], noise_dim: int = 100,
                 width: int = 128, channel_mult: Sequence[int] = (1, 2, 2, 2), n_res: int = 2,
                 attn_resolutions: Sequence[int] = (16,), dropout: float = 0.0, z_embed_dim: int = 256,
                 n_mlp: int = 4, residual: bool = False):
        super().__init__()
        self.source_shape = _image_shape("source_shape", source_shape)
        self.event_shape = _image_shape("event_shape", event_shape)
        if self.source_shape[1:] != self.event_shape[1:]:
            raise ValueError(f"source_shape must be (C, H, W) with the H, W of event_shape {self.event_shape}, "
                             f"got {self.source_shape}")
        mult = _check_mult(channel_mult)
        _check_divisible("event_shape", self.event_shape, len(mult) - 1)
        if residual and self.source_shape != self.event_shape:
            raise ValueError(f"residual=True needs equal source and event shapes, got {self.source_shape} "
                             f"and {self.event_shape}")
        self.noise_dim = _check_dim("noise_dim", noise_dim, 0)
        width = _check_width(width)
        n_res = _check_dim("n_res", n_res, 1)
        z_embed_dim = _check_dim("z_embed_dim", z_embed_dim, 1)
        n_mlp = _check_dim("n_mlp", n_mlp, 1)
        if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) or not 0 <= dropout < 1:
            raise ValueError(f"dropout must be a number in [0, 1), got {dropout!r}")
        sides = [self.event_shape[1] >> i for i in range(len(mult))]
        try:
            attn = tuple(attn_resolutions)
        except TypeError:
            attn = None
        if attn is None or any(isinstance(r, bool) or not isinstance(r, int) or r not in sides for r in attn):
            raise ValueError(f"attn_resolutions must be a list of level sides H/2^i out of {sides}, "
                             f"got {attn_resolutions!r}")
        self.residual = bool(residual)
        self.channel_mult, self.n_res, self.attn_resolutions = mult, n_res, attn

        style = z_embed_dim if self.noise_dim else 0
        if self.noise_dim:
            layers: list[nn.Module] = []
            for i in range(n_mlp):
                layers += [nn.Linear(self.noise_dim if i == 0 else z_embed_dim, z_embed_dim), nn.SiLU()]
            self.mapping = nn.Sequential(*layers)
        else:
            self.mapping = None

        def block(a: int, b: int, resample: str | None = None) -> StyleResBlock:
            return StyleResBlock(a, b, style, float(dropout), resample)

        c_src = self.source_shape[0]
        self.stem = nn.Conv2d(c_src, width, 3, 1, 1)
        chans = [width * m for m in mult]
        skips = [width]  # channels of every down-path activation the up path concatenates
        ch = width
        self.down = nn.ModuleList()
        self.downsample = nn.ModuleList()
        self.pyramid = nn.ModuleList()  # progressive input: 1×1 conv of the pooled image per lower level
        for i, c in enumerate(chans):
            blocks, attns = [], []
            for _ in range(n_res):
                blocks.append(block(ch, c))
                attns.append(SelfAttention(c) if sides[i] in attn else nn.Identity())
                ch = c
                skips.append(ch)
            self.down.append(_Level(blocks, attns))
            if i < len(chans) - 1:
                self.downsample.append(block(ch, ch, "down"))
                self.pyramid.append(nn.Conv2d(c_src, ch, 1))
                skips.append(ch)
        self.mid = nn.ModuleList([block(ch, ch), SelfAttention(ch), block(ch, ch)])
        self.up = nn.ModuleList()
        self.upsample = nn.ModuleList()
        for i in reversed(range(len(chans))):
            c = chans[i]
            blocks = []
            for _ in range(n_res + 1):
                blocks.append(block(ch + skips.pop(), c))
                ch = c
            self.up.append(_Level(blocks, [SelfAttention(c) if sides[i] in attn else nn.Identity()]))
            if i > 0:
                self.upsample.append(block(ch, ch, "up"))
        assert not skips
        self.head = nn.Sequential(nn.GroupNorm(_groups(ch), ch), nn.SiLU(), nn.Conv2d(ch, self.event_shape[0], 3, 1, 1))
        if self.residual:
            _zero(self.head[-1])

    @property
    def noise_shape(self) -> tuple[int, ...]:
        return (self.noise_dim,) if self.noise_dim else ()

    def forward(self, x: torch.Tensor, z: torch.Tensor | None = None) -> torch.Tensor:
        check_batch("x", x, self.source_shape)
        s = None
        if self.mapping is not None:
            check_batch("z", z, (self.noise_dim,), x.shape[0])
            z = z * torch.rsqrt(z.pow(2).mean(dim=1, keepdim=True) + 1e-8)  # PixelNorm
            s = self.mapping(z)
        h = self.stem(x)
        hs = [h]
        pyr = x
        for i, level in enumerate(self.down):
            for blk, att in zip(level.blocks, level.attns):
                h = att(blk(h, s))
                hs.append(h)
            if i < len(self.downsample):
                h = self.downsample[i](h, s)
                pyr = F.avg_pool2d(pyr, 2)
                h = (h + self.pyramid[i](pyr)) * _SKIP
                hs.append(h)
        h = self.mid[0](h, s)
        h = self.mid[1](h)
        h = self.mid[2](h, s)
        for j, level in enumerate(self.up):
            for blk in level.blocks:
                h = blk(torch.cat([h, hs.pop()], dim=1), s)
            h = level.attns[0](h)
            if j < len(self.upsample):
                h = self.upsample[j](h, s)
        out = self.head(h)
        return x + out if self.residual else torch.tanh(out)


# ----------------------------------------------------------------------------- the ResNet critic


class _DownBlock(nn.Module):
    """(n, c_in, H, W) -> (n, c_out, H/2 or H, ...): act, 3×3 conv, act, 3×3 conv, [avg pool]; plus
    the (1×1-projected, pooled) input; sum / √2. No normalisation."""

    def __init__(self, c_in: int, c_out: int, act: str, down: bool):
        super().__init__()
        self.act1, self.act2 = make_activation(act), make_activation(act)
        self.conv1 = nn.Conv2d(c_in, c_out, 3, 1, 1)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1)
        self.skip = nn.Conv2d(c_in, c_out, 1, bias=False) if c_in != c_out else nn.Identity()
        self.down = down

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv2(self.act2(self.conv1(self.act1(x))))
        skip = self.skip(x)
        if self.down:
            h, skip = F.avg_pool2d(h, 2), F.avg_pool2d(skip, 2)
        return (h + skip) * _SKIP


class ResNetCritic(nn.Module):
    """v(y): (n, C, H, W) -> (n,), a DDGAN-discriminator-style ResNet without time input.

    A 1×1 stem to ``width·channel_mult[0]`` channels; for each level i a residual block to
    ``width·channel_mult[i]`` channels (act, 3×3 conv, act, 3×3 conv, skip, sum / √2), halving H and
    W at all levels but the last; then act, a 3×3 conv, act, a global sum over positions and a
    Linear to a scalar. At 3×32×32 with width 128 and channel_mult (1, 2, 4, 4) (channels 128, 256,
    512, 512; maps 16, 8, 4, 4) it has 12.0 M parameters, DDGAN's CIFAR-10 discriminator size.

    No normalisation layers and no minibatch-stddev feature: v(y_i) depends on y_i alone, and
    gradients of ‖∇_y v‖² with ``create_graph=True`` (R1 penalties) work. ``activation``:
    "leaky_relu" (slope 0.2, DDGAN's) by default. ``zero_init`` zeroes the last Linear (v ≡ 0 at
    initialisation); UOTM and S-JKO build critics with ``zero_init=False``.

    Args:
        event_shape: (C, H, W); H, W multiples of 2^(len(channel_mult) − 1).
        width, channel_mult: channels width·channel_mult[i] of level i.
        activation: a name of ``otgen.nn.mlp.activation``. zero_init: start at v ≡ 0.
    """

    def __init__(self, event_shape: Sequence[int], width: int = 128, channel_mult: Sequence[int] = (1, 2, 2, 2),
                 activation: str = "leaky_relu", zero_init: bool = False):
        super().__init__()
        self.event_shape = _image_shape("event_shape", event_shape)
        mult = _check_mult(channel_mult)
        _check_divisible("event_shape", self.event_shape, len(mult) - 1)
        width = _check_width(width)
        make_activation(activation)  # ValueError naming activation for an unknown name
        chans = [width * m for m in mult]
        self.stem = nn.Conv2d(self.event_shape[0], chans[0], 1)
        blocks, ch = [], chans[0]
        for i, c in enumerate(chans):
            blocks.append(_DownBlock(ch, c, activation, down=i < len(chans) - 1))
            ch = c
        self.blocks = nn.Sequential(*blocks)
        self.final = nn.Sequential(make_activation(activation), nn.Conv2d(ch, ch, 3, 1, 1), make_activation(activation))
        self.linear = nn.Linear(ch, 1)
        if zero_init:
            _zero(self.linear)

    @property
    def output_bias(self) -> nn.Parameter:
        """The parameter that adds a constant to v (the last Linear's bias)."""
        return self.linear.bias

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        check_batch("y", y, self.event_shape)
        h = self.final(self.blocks(self.stem(y)))
        return self.linear(h.sum(dim=(2, 3))).squeeze(1)


# ----------------------------------------------------------------------------- EgNOT's energy net


class VanillaEnergyNet(nn.Module):
    """f(y): (n, C, H, W) -> (n,), the EgNOT Coloured-MNIST "VanillaNet" (egnot.md §8.4).

    Convs C → w → 2w → 4w → 8w → 1 (w = ``width``, 32 in the paper): a 3×3 stride-1 conv, three 4×4
    stride-2 convs (H -> H/8), each followed by the activation, and a 4×4 stride-1 unpadded conv to
    one channel; at 32×32 that is one value per image (other sizes: the mean over the
    (H/8 − 3)×(W/8 − 3) outputs). 0.69 M parameters at 3×32×32, width 32.

    Sign and scale: the paper's network is an *energy* E (lower = more likely) in the update
    y ← y − ∇E(y) − (σ²/(2h))(y − x) + σξ; otgen's EgNOT potential is f with plan
    ∝ exp((f − c)/eps), i.e. f = −(2h/σ²)·E with eps = h and step_size = σ². This class returns
    ``scale · net(y)`` as f; a net trained from scratch learns either sign, so ``scale = 2h/σ²``
    reproduces the paper's parametrisation (and its effective learning rate), ``scale = 1`` the
    plain network.

    Args:
        event_shape: (C, H, W) with H, W multiples of 8 and at least 32.
        width: w, >= 1. activation: "leaky_relu" (with ``slope``, 0.05 as the paper) or a name of
            ``otgen.nn.mlp.activation``. slope: the LeakyReLU slope, in [0, 1).
        zero_init: zero the last conv (f ≡ 0 at initialisation, EgNOT's default).
        scale: the constant factor of the output, a finite nonzero number.
    """

    def __init__(self, event_shape: Sequence[int], width: int = 32, activation: str = "leaky_relu",
                 slope: float = 0.05, zero_init: bool = True, scale: float = 1.0):
        super().__init__()
        self.event_shape = _image_shape("event_shape", event_shape)
        c, h, w = self.event_shape
        if h % 8 or w % 8 or h < 32 or w < 32:
            raise ValueError(f"event_shape must be (C, H, W) with H, W multiples of 8 and >= 32 (the last 4×4 "
                             f"conv needs a 4×4 map after three halvings), got {self.event_shape}")
        width = _check_width(width)
        if isinstance(slope, bool) or not isinstance(slope, (int, float)) or not 0 <= slope < 1:
            raise ValueError(f"slope must be a number in [0, 1), got {slope!r}")
        if isinstance(scale, bool) or not isinstance(scale, (int, float)) or scale == 0 or not math.isfinite(scale):
            raise ValueError(f"scale must be a finite nonzero number, got {scale!r}")
        self.scale = float(scale)

        def act() -> nn.Module:
            leaky = ACTIVATIONS.canonical(activation, where="activation") == "leaky_relu"
            return nn.LeakyReLU(float(slope)) if leaky else make_activation(activation)

        act()  # ValueError naming activation for an unknown name
        chans = [width, 2 * width, 4 * width, 8 * width]
        layers: list[nn.Module] = [nn.Conv2d(c, chans[0], 3, 1, 1), act()]
        for a, b in zip(chans[:-1], chans[1:]):
            layers += [nn.Conv2d(a, b, 4, 2, 1), act()]
        layers.append(nn.Conv2d(chans[-1], 1, 4, 1, 0))
        self.net = nn.Sequential(*layers)
        if zero_init:
            _zero(self.net[-1])

    @property
    def output_bias(self) -> nn.Parameter:
        """The parameter that adds a constant to f (the last conv's bias, times ``scale``)."""
        return self.net[-1].bias

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        check_batch("y", y, self.event_shape)
        return self.scale * self.net(y).mean(dim=(1, 2, 3))
