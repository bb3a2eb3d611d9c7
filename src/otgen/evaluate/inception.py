"""The InceptionV3 feature network of standard FID, in plain torch (no torchvision).

This is the network of pytorch-fid (``InceptionV3([3])``, built by ``fid_inception_v3``) and of
torch-fidelity: the TensorFlow "2015-12-05" InceptionV3 graph of the original FID code, ported to
torch. It differs from torchvision's ``Inception3`` in three places: 1008 classes, the average pools of
the pool branches skip the zero padding (``count_include_pad=False``) in Mixed_5b–5d, Mixed_6b–6e and
Mixed_7b, and Mixed_7c's pool branch is a *max* pool.

The pool-3 features (the 2048-d adaptive average pool after Mixed_7c) are what FID, KID and
precision/recall are computed on. ``fc`` (1008 classes) is kept only so that the weights file loads; the
features never pass through it.

Weights are never downloaded. ``load_inception`` reads pytorch-fid's
``pt_inception-2015-12-05-6726825d.pth`` (or torch-fidelity's copy of it) from a path, from the file
named by the ``OTGEN_INCEPTION_WEIGHTS`` environment variable, or from torch's hub cache where those
packages store it.

Input convention. pytorch-fid takes images in [0, 1], resizes them to 299×299 (bilinear,
``align_corners=False``) and then maps them to [−1, 1] by ``2·x − 1``. otgen's images are already in
[−1, 1], so ``FIDInceptionV3`` resizes them and feeds them on. Bilinear resizing is linear with weights
summing to 1, so resize(2·u − 1) = 2·resize(u) − 1: for x = 2·u − 1 this is pytorch-fid's path on u up
to float rounding (~1e-7). Grey images are repeated to RGB, as pytorch-fid's ``convert("RGB")`` does.

torch-fidelity uses the same weights but takes uint8 images, resizes them with TensorFlow 1's bilinear
rule (no half-pixel offset) and maps them by ``(x − 128)/128``; its features therefore differ slightly
from pytorch-fid's and from these (for images not already 299×299). The statistics papers ship follow
either the TF reference code or pytorch-fid; this module follows pytorch-fid.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["FIDInceptionV3", "load_inception", "find_weights", "FID_WEIGHTS_URL", "WEIGHTS_FILES", "ENV_VAR", "INPUT_SIZE"]

FID_WEIGHTS_URL = ("https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/"
                   "pt_inception-2015-12-05-6726825d.pth")
# pytorch-fid's name, then torch-fidelity's (v0.2.0 and later) for the same converted TF weights;
# both packages download into torch.hub.get_dir()/checkpoints.
WEIGHTS_FILES = ("pt_inception-2015-12-05-6726825d.pth", "weights-inception-2015-12-05-6726825d.pth")
ENV_VAR = "OTGEN_INCEPTION_WEIGHTS"
INPUT_SIZE = 299
FEATURES = 2048
N_CLASSES = 1008


class _Conv(nn.Module):
    """Conv (no bias) -> BatchNorm (eps 1e-3) -> ReLU; state-dict keys ``conv.*`` and ``bn.*``."""

    def __init__(self, c_in: int, c_out: int, kernel_size, stride=1, padding=0):
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, kernel_size, stride=stride, padding=padding, bias=False)
        self.bn = nn.BatchNorm2d(c_out, eps=0.001)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn(self.conv(x)))


def _avg_pool_3x3(x: torch.Tensor) -> torch.Tensor:
    # TensorFlow's SAME average pool divides by the number of real (unpadded) pixels in the window
    return F.avg_pool2d(x, kernel_size=3, stride=1, padding=1, count_include_pad=False)


class _MixedA(nn.Module):
    """35×35 block (Mixed_5b–5d): c_in -> 224 + pool_features channels."""

    def __init__(self, c_in: int, pool_features: int):
        super().__init__()
        self.branch1x1 = _Conv(c_in, 64, 1)
        self.branch5x5_1 = _Conv(c_in, 48, 1)
        self.branch5x5_2 = _Conv(48, 64, 5, padding=2)
        self.branch3x3dbl_1 = _Conv(c_in, 64, 1)
        self.branch3x3dbl_2 = _Conv(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = _Conv(96, 96, 3, padding=1)
        self.branch_pool = _Conv(c_in, pool_features, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([
            self.branch1x1(x),
            self.branch5x5_2(self.branch5x5_1(x)),
            self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x))),
            self.branch_pool(_avg_pool_3x3(x)),
        ], dim=1)


class _ReductionB(nn.Module):
    """35×35 -> 17×17 (Mixed_6a): c_in -> 480 + c_in channels."""

    def __init__(self, c_in: int):
        super().__init__()
        self.branch3x3 = _Conv(c_in, 384, 3, stride=2)
        self.branch3x3dbl_1 = _Conv(c_in, 64, 1)
        self.branch3x3dbl_2 = _Conv(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = _Conv(96, 96, 3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([
            self.branch3x3(x),
            self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x))),
            F.max_pool2d(x, kernel_size=3, stride=2),
        ], dim=1)


class _MixedC(nn.Module):
    """17×17 block with factorised 7×7 convolutions (Mixed_6b–6e): c_in -> 768 channels."""

    def __init__(self, c_in: int, c7: int):
        super().__init__()
        self.branch1x1 = _Conv(c_in, 192, 1)
        self.branch7x7_1 = _Conv(c_in, c7, 1)
        self.branch7x7_2 = _Conv(c7, c7, (1, 7), padding=(0, 3))
        self.branch7x7_3 = _Conv(c7, 192, (7, 1), padding=(3, 0))
        self.branch7x7dbl_1 = _Conv(c_in, c7, 1)
        self.branch7x7dbl_2 = _Conv(c7, c7, (7, 1), padding=(3, 0))
        self.branch7x7dbl_3 = _Conv(c7, c7, (1, 7), padding=(0, 3))
        self.branch7x7dbl_4 = _Conv(c7, c7, (7, 1), padding=(3, 0))
        self.branch7x7dbl_5 = _Conv(c7, 192, (1, 7), padding=(0, 3))
        self.branch_pool = _Conv(c_in, 192, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b7 = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
        d7 = x
        for conv in (self.branch7x7dbl_1, self.branch7x7dbl_2, self.branch7x7dbl_3,
                     self.branch7x7dbl_4, self.branch7x7dbl_5):
            d7 = conv(d7)
        return torch.cat([self.branch1x1(x), b7, d7, self.branch_pool(_avg_pool_3x3(x))], dim=1)


class _ReductionD(nn.Module):
    """17×17 -> 8×8 (Mixed_7a): c_in -> 512 + c_in channels."""

    def __init__(self, c_in: int):
        super().__init__()
        self.branch3x3_1 = _Conv(c_in, 192, 1)
        self.branch3x3_2 = _Conv(192, 320, 3, stride=2)
        self.branch7x7x3_1 = _Conv(c_in, 192, 1)
        self.branch7x7x3_2 = _Conv(192, 192, (1, 7), padding=(0, 3))
        self.branch7x7x3_3 = _Conv(192, 192, (7, 1), padding=(3, 0))
        self.branch7x7x3_4 = _Conv(192, 192, 3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b7 = x
        for conv in (self.branch7x7x3_1, self.branch7x7x3_2, self.branch7x7x3_3, self.branch7x7x3_4):
            b7 = conv(b7)
        return torch.cat([
            self.branch3x3_2(self.branch3x3_1(x)),
            b7,
            F.max_pool2d(x, kernel_size=3, stride=2),
        ], dim=1)


class _MixedE(nn.Module):
    """8×8 block with split 1×3 / 3×1 outputs (Mixed_7b: pool="avg"; Mixed_7c: pool="max"): -> 2048."""

    def __init__(self, c_in: int, pool: str):
        super().__init__()
        if pool not in ("avg", "max"):
            raise ValueError(f"pool must be 'avg' or 'max', got {pool!r}")
        self.pool = pool
        self.branch1x1 = _Conv(c_in, 320, 1)
        self.branch3x3_1 = _Conv(c_in, 384, 1)
        self.branch3x3_2a = _Conv(384, 384, (1, 3), padding=(0, 1))
        self.branch3x3_2b = _Conv(384, 384, (3, 1), padding=(1, 0))
        self.branch3x3dbl_1 = _Conv(c_in, 448, 1)
        self.branch3x3dbl_2 = _Conv(448, 384, 3, padding=1)
        self.branch3x3dbl_3a = _Conv(384, 384, (1, 3), padding=(0, 1))
        self.branch3x3dbl_3b = _Conv(384, 384, (3, 1), padding=(1, 0))
        self.branch_pool = _Conv(c_in, 192, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = self.branch3x3_1(x)
        d = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        # the TF graph's last block max-pools here (torchvision's Inception3 average-pools)
        pooled = _avg_pool_3x3(x) if self.pool == "avg" else F.max_pool2d(x, kernel_size=3, stride=1, padding=1)
        return torch.cat([
            self.branch1x1(x),
            self.branch3x3_2a(s), self.branch3x3_2b(s),
            self.branch3x3dbl_3a(d), self.branch3x3dbl_3b(d),
            self.branch_pool(pooled),
        ], dim=1)


class FIDInceptionV3(nn.Module):
    """pytorch-fid's FID InceptionV3: images (n, C, H, W) in [−1, 1] -> pool-3 features (n, 2048) float32.

    C is 1 (grey, repeated to RGB) or 3; any H, W (images are resized to 299×299, bilinear,
    ``align_corners=False``, as pytorch-fid does). Values are used as given, not clamped. Inputs move to
    the device of the network. ``forward(x)`` equals pytorch-fid's ``InceptionV3([3])((x + 1) / 2)[0]``
    flattened, up to float rounding (see the module docstring).

    The state dict has torchvision's Inception3 names (``Conv2d_1a_3x3.conv.weight``,
    ``Mixed_5b.branch_pool.bn.running_var``, …, ``fc.weight`` (1008, 2048)), the keys of pytorch-fid's
    weights file; no ``AuxLogits``. The network starts with random weights, in eval mode and with
    ``requires_grad`` off: it is a fixed feature map (use ``load_inception`` for the real weights).
    """

    def __init__(self):
        super().__init__()
        self.Conv2d_1a_3x3 = _Conv(3, 32, 3, stride=2)
        self.Conv2d_2a_3x3 = _Conv(32, 32, 3)
        self.Conv2d_2b_3x3 = _Conv(32, 64, 3, padding=1)
        self.Conv2d_3b_1x1 = _Conv(64, 80, 1)
        self.Conv2d_4a_3x3 = _Conv(80, 192, 3)
        self.Mixed_5b = _MixedA(192, pool_features=32)
        self.Mixed_5c = _MixedA(256, pool_features=64)
        self.Mixed_5d = _MixedA(288, pool_features=64)
        self.Mixed_6a = _ReductionB(288)
        self.Mixed_6b = _MixedC(768, c7=128)
        self.Mixed_6c = _MixedC(768, c7=160)
        self.Mixed_6d = _MixedC(768, c7=160)
        self.Mixed_6e = _MixedC(768, c7=192)
        self.Mixed_7a = _ReductionD(768)
        self.Mixed_7b = _MixedE(1280, pool="avg")
        self.Mixed_7c = _MixedE(2048, pool="max")
        self.fc = nn.Linear(FEATURES, N_CLASSES)  # unused by forward; part of the weights file
        self.requires_grad_(False)
        self.eval()

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if not isinstance(images, torch.Tensor) or images.ndim != 4 or images.shape[1] not in (1, 3):
            shape = tuple(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__
            raise ValueError(f"images must be a Tensor (n, C, H, W) with C in (1, 3), in [-1, 1]; got {shape}")
        x = images.to(device=self.fc.weight.device, dtype=torch.float32)
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        if tuple(x.shape[2:]) != (INPUT_SIZE, INPUT_SIZE):  # at 299×299 the resize is the identity
            x = F.interpolate(x, size=(INPUT_SIZE, INPUT_SIZE), mode="bilinear", align_corners=False)
        x = self.Conv2d_2b_3x3(self.Conv2d_2a_3x3(self.Conv2d_1a_3x3(x)))   # (n, 64, 147, 147)
        x = F.max_pool2d(x, kernel_size=3, stride=2)                          # (n, 64, 73, 73)
        x = self.Conv2d_4a_3x3(self.Conv2d_3b_1x1(x))                         # (n, 192, 71, 71)
        x = F.max_pool2d(x, kernel_size=3, stride=2)                          # (n, 192, 35, 35)
        for block in (self.Mixed_5b, self.Mixed_5c, self.Mixed_5d, self.Mixed_6a,   # -> (n, 768, 17, 17)
                      self.Mixed_6b, self.Mixed_6c, self.Mixed_6d, self.Mixed_6e,
                      self.Mixed_7a, self.Mixed_7b, self.Mixed_7c):                  # -> (n, 2048, 8, 8)
            x = block(x)
        return F.adaptive_avg_pool2d(x, 1).flatten(1)


def _candidates(path) -> list[tuple[Path, str]]:
    """The files to try, in order, each with where it came from."""
    if path is not None:
        return [(Path(path).expanduser(), "path argument")]
    env = os.environ.get(ENV_VAR)
    if env:
        return [(Path(env).expanduser(), f"${ENV_VAR}")]
    hub = Path(torch.hub.get_dir()) / "checkpoints"
    return [(hub / name, "torch hub cache") for name in WEIGHTS_FILES]


def _not_found_message(tried: list[tuple[Path, str]]) -> str:
    places = "\n".join(f"  {p}  ({how})" for p, how in tried)
    return (f"no InceptionV3 FID weights found; looked in:\n{places}\n"
            f"otgen never downloads. On a machine with network access, download\n  {FID_WEIGHTS_URL}\n"
            f"(pytorch-fid's weights; torch-fidelity's {WEIGHTS_FILES[1]} works too), copy it here and "
            f"pass load_inception(path=...) or set {ENV_VAR}=/path/to/{WEIGHTS_FILES[0]}.")


def _check_state_dict(state, model: nn.Module, file: Path) -> dict:
    """``state`` as a complete state dict of ``model``; ValueError naming ``file`` otherwise.

    The one tolerance: BatchNorm ``num_batches_tracked`` counters may be absent (files converted from
    TensorFlow, or saved before torch 0.4.1, lack them); they do not affect eval-mode outputs and are set
    to 0. Every other key must be there with its shape, and no key may be extra.
    """
    if not isinstance(state, Mapping) or not all(isinstance(k, str) and isinstance(v, torch.Tensor)
                                                 for k, v in state.items()):
        raise ValueError(f"{file} is not a state dict (a mapping of names to tensors): it holds a "
                         f"{type(state).__name__}; expected pytorch-fid's {WEIGHTS_FILES[0]}")
    own = model.state_dict()
    state = dict(state)
    for key, value in own.items():
        if key.endswith(".num_batches_tracked") and key not in state:
            state[key] = torch.zeros_like(value)
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    wrong = [f"{k} {tuple(state[k].shape)} (expected {tuple(own[k].shape)})"
             for k in own if k in state and state[k].shape != own[k].shape]
    if missing or unexpected or wrong:
        def some(keys):
            return ", ".join(keys[:6]) + (f", … ({len(keys)} in all)" if len(keys) > 6 else "")
        problems = [f"{label}: {some(keys)}" for label, keys in
                    (("missing keys", missing), ("unexpected keys", unexpected), ("wrong shapes", wrong)) if keys]
        raise ValueError(f"{file} is not a state dict of the FID InceptionV3 (pytorch-fid's {WEIGHTS_FILES[0]}); "
                         + "; ".join(problems))
    return state


def find_weights(path: str | os.PathLike | None = None) -> Path | None:
    """The weights file ``load_inception(path)`` would read, or None where there is none."""
    return next((p for p, _ in _candidates(path) if p.is_file()), None)


def load_inception(path: str | os.PathLike | None = None, device: str | torch.device = "cpu") -> FIDInceptionV3:
    """The FID InceptionV3 with pytorch-fid's weights, in eval mode on ``device``.

    The weights file is ``path`` if given; else the file named by ``$OTGEN_INCEPTION_WEIGHTS``; else
    ``pt_inception-2015-12-05-6726825d.pth`` (pytorch-fid) or ``weights-inception-2015-12-05-6726825d.pth``
    (torch-fidelity) in ``torch.hub.get_dir()/checkpoints``, where those packages cache it. Nothing is
    downloaded. The file is read with ``torch.load(weights_only=True)``: no code is unpickled.

    Raises FileNotFoundError (listing the places looked in and how to get the file) when there is no file,
    and ValueError naming the file when it is not a state dict of this network.
    """
    file = find_weights(path)
    if file is None:
        raise FileNotFoundError(_not_found_message(_candidates(path)))
    try:
        state = torch.load(file, map_location="cpu", weights_only=True)
    except Exception as e:  # not a torch file, a pickle of code, a truncated download, ...
        raise ValueError(f"{file} cannot be read as a torch state dict ({type(e).__name__}: {e}); "
                         f"expected pytorch-fid's {WEIGHTS_FILES[0]}") from e
    model = FIDInceptionV3()
    model.load_state_dict(_check_state_dict(state, model, file))
    return model.to(device).eval()
