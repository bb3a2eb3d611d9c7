"""Image data: the ``ImageSet`` sampler and scikit-learn's bundled 8×8 digits (no download).

Conventions used by every image sampler in otgen:

- a batch of images is a float32 Tensor ``(n, C, H, W)`` with ``C`` in {1, 3} (grey or RGB);
- pixel values lie in ``[-1, 1]``: −1 is black (no ink), +1 is full intensity;
- labels, where a data set has them, are a LongTensor ``(N,)``; they are for evaluation only
  (the samplers draw images, never labels, unless asked with ``sample_with_labels``).

The readers of a user's files (a folder of images, ``.npy``/``.npz``, MNIST IDX, CIFAR-10) are in
``readers.py`` and return ``ImageSet`` too.
"""

from __future__ import annotations

import functools
import math
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from .empirical import Empirical

__all__ = ["ImageSet", "digits", "with_outliers", "far_outliers", "hsv_to_rgb", "DIGITS_SIZES",
           "DIGITS_SPLIT_COUNTS", "OUTLIER_KINDS", "OUTLIER_LABEL"]

#: The output sizes ``digits`` accepts (``size × size`` pixels); 16 and 32 are the intended ones.
DIGITS_SIZES = (8, 16, 32, 64)

#: Number of images in each split of ``digits`` (all ten classes): test is image ``i % 5 == 4``.
DIGITS_SPLIT_COUNTS = {"train": 1438, "test": 359, "all": 1797}

_SPLITS = ("train", "test", "all")


class ImageSet(Empirical):
    """A fixed set of images, resampled uniformly with replacement (like ``Empirical``).

    ``images``: Tensor or array ``(N, C, H, W)``, ``C`` in {1, 3}, values in ``value_range`` (default
    ``[-1, 1]``; wider only for data built to lie outside it, as ``with_outliers(kind="far")``); stored
    as float32. ``labels``: optional integer array ``(N,)`` (stored as a LongTensor), for evaluation
    only. ``class_names``: optional names indexed by label value (``class_names[label]``).

    ``ImageSet(...)(n, generator=g)`` returns ``(n, C, H, W)``; ``sample_with_labels`` returns the
    same rows together with their labels. ``images`` is the same Tensor as ``samples``.
    """

    value_range = (-1.0, 1.0)  # the default; an instance built with another keeps its own

    def __init__(self, images, labels=None, class_names: Sequence[str] | None = None,
                 value_range: tuple[float, float] = (-1.0, 1.0)):
        super().__init__(images)
        shape = tuple(self.samples.shape)
        if len(shape) != 4 or shape[1] not in (1, 3):
            raise ValueError(f"images must have shape (N, C, H, W) with C in (1, 3), got shape {shape}")
        low, high = value_range_pair(value_range)
        self.value_range = (low, high)
        lo, hi = float(self.samples.min()), float(self.samples.max())
        if lo < low or hi > high:
            raise ValueError(f"images must lie in [{low:g}, {high:g}], got values in [{lo:.4g}, {hi:.4g}]")
        self.labels = None if labels is None else _as_labels(labels, shape[0])
        self.class_names = None if class_names is None else tuple(str(c) for c in class_names)

    @property
    def images(self) -> torch.Tensor:
        """The images, ``(N, C, H, W)`` float32 in ``value_range`` (the same Tensor as ``samples``)."""
        return self.samples

    @property
    def channels(self) -> int:
        return self.event_shape[0]

    def sample_with_labels(self, n: int, generator: torch.Generator | None = None):
        """``(images (n, C, H, W), labels (n,))``: ``n`` rows drawn with replacement, with their labels.

        Draws the same rows as ``self(n, generator=...)`` for the same generator state.
        Raises ``ValueError`` if the set has no labels.
        """
        if self.labels is None:
            raise ValueError("sample_with_labels: this ImageSet has no labels")
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ValueError(f"n must be a positive int, got {n!r}")
        idx = torch.randint(0, len(self), (n,), generator=generator).to(self.samples.device)
        return self.samples[idx], self.labels.to(idx.device)[idx]

    def __repr__(self) -> str:
        c, h, w = self.event_shape
        lab = "" if self.labels is None else f", classes={sorted(set(self.labels.tolist()))}"
        return f"ImageSet(N={len(self)}, shape=(C={c}, H={h}, W={w}){lab})"


def _as_labels(labels, n: int) -> torch.Tensor:
    """``labels`` as a LongTensor ``(n,)``; ``ValueError`` if the shape or type is wrong."""
    t = labels.detach().cpu() if isinstance(labels, torch.Tensor) else torch.as_tensor(np.asarray(labels))
    if t.is_floating_point() or t.is_complex() or t.dtype == torch.bool:
        raise ValueError(f"labels must be integers, got dtype {t.dtype}")
    if tuple(t.shape) != (n,):
        raise ValueError(f"labels must have shape ({n},) (one per image), got shape {tuple(t.shape)}")
    return t.to(torch.long).contiguous()


# --------------------------------------------------------------------------- colour


def hsv_to_rgb(h: np.ndarray, s: np.ndarray | float = 1.0, v: np.ndarray | float = 1.0) -> np.ndarray:
    """HSV to RGB, elementwise: arrays (any shape, broadcast) in [0, 1] -> array ``(..., 3)`` in [0, 1].

    The standard six-sector formula (the same numbers as ``matplotlib.colors.hsv_to_rgb`` and
    ``colorsys.hsv_to_rgb``); the hue wraps around (``h`` and ``h + 1`` are the same colour).
    """
    h, s, v = np.broadcast_arrays(np.asarray(h, np.float64), np.asarray(s, np.float64), np.asarray(v, np.float64))
    h6 = np.mod(h, 1.0) * 6.0
    sector = np.floor(h6).astype(np.int64) % 6
    f = h6 - np.floor(h6)
    p, q, t = v * (1 - s), v * (1 - s * f), v * (1 - s * (1 - f))
    table = [(v, t, p), (q, v, p), (p, v, t), (p, q, v), (t, p, v), (v, p, q)]
    out = np.zeros(h.shape + (3,))
    for k, (r, g, b) in enumerate(table):
        m = sector == k
        out[m] = np.stack([r[m], g[m], b[m]], -1)
    return out


# --------------------------------------------------------------------------- digits


@functools.lru_cache(maxsize=1)
def _load_digits() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's digits: images (1797, 8, 8) float64 in 0..16 and targets (1797,) int64 (read-only)."""
    from sklearn.datasets import load_digits  # bundled with scikit-learn: no download

    d = load_digits()
    images = np.ascontiguousarray(d.images, dtype=np.float64)
    targets = np.asarray(d.target, dtype=np.int64)
    images.flags.writeable = False
    targets.flags.writeable = False
    return images, targets


def digits_split_mask(split: str, n: int) -> np.ndarray:
    """Boolean mask ``(n,)`` of the images of ``split``: test iff index ``i % 5 == 4``, train otherwise."""
    test = np.arange(n) % 5 == 4
    return {"train": ~test, "test": test, "all": np.ones(n, bool)}[split]


def check_classes(classes, high: int | None = None) -> list[int]:
    """``classes`` (an int or a list/tuple of distinct ints in 0..``high``, no upper bound if None) as a
    list of ints; ValueError naming ``classes`` otherwise (an empty selection included)."""
    accepted = f"0..{high}" if high is not None else ">= 0"
    if isinstance(classes, (int, np.integer)) and not isinstance(classes, (bool, np.bool_)):
        classes = [classes]
    if isinstance(classes, (str, bytes)) or not isinstance(classes, (list, tuple, range, np.ndarray)):
        raise ValueError(f"classes must be an int or a list of distinct ints {accepted}, got {classes!r}")
    out = []
    for c in list(classes):
        if (isinstance(c, (bool, np.bool_)) or not isinstance(c, (int, np.integer)) or c < 0
                or (high is not None and c > high)):
            raise ValueError(f"classes must be ints {accepted}, got {c!r} in classes={classes!r}")
        out.append(int(c))
    if not out:
        raise ValueError(f"classes must name at least one class ({accepted}), got an empty classes={classes!r}")
    if len(set(out)) != len(out):
        raise ValueError(f"classes must be distinct ints {accepted}, got duplicates in classes={classes!r}")
    return out


def _check_digits_args(size, colored, split, seed, return_labels) -> None:
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or int(size) not in DIGITS_SIZES:
        raise ValueError(f"size must be one of {DIGITS_SIZES} (16 or 32 intended), got {size!r}")
    for name, value in (("colored", colored), ("return_labels", return_labels)):
        if not isinstance(value, (bool, np.bool_)):
            raise ValueError(f"{name} must be True or False, got {value!r}")
    if split not in _SPLITS:
        raise ValueError(f"split must be one of {_SPLITS}, got {split!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be an int >= 0, got {seed!r}")


def _upsample(grey: np.ndarray, size: int) -> torch.Tensor:
    """(N, 8, 8) in [0, 1] -> (N, 1, size, size) float32, bilinear with ``align_corners=False``.

    Bilinear weights are a convex combination, so the result stays in [0, 1].
    """
    x = torch.from_numpy(np.array(grey, dtype=np.float32))[:, None]
    if size == x.shape[-1]:
        return x
    return F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False).clamp_(0.0, 1.0)


def digit_hues(seed: int = 0) -> np.ndarray:
    """The hue ``(1797,)`` in [0, 1) of every digit image (in ``load_digits`` order) for ``seed``.

    Drawn as ``np.random.default_rng(seed).uniform(0, 1, 1797)`` once for the whole data set, so an
    image keeps its hue whichever ``classes`` and ``split`` select it.
    """
    n = _load_digits()[0].shape[0]
    return np.random.default_rng(int(seed)).uniform(0.0, 1.0, n)


def digits(
    classes=(0, 1, 2, 3, 4, 5, 6, 7, 8, 9),
    size: int = 16,
    colored: bool = False,
    split: str = "train",
    seed: int = 0,
    return_labels: bool = False,
):
    """scikit-learn's bundled 8×8 handwritten digits as an ``ImageSet`` (no download).

    Pixels (0..16 in ``load_digits``) are scaled to [0, 1], upsampled to ``size × size`` with
    ``torch.nn.functional.interpolate(mode="bilinear", align_corners=False)`` and mapped to
    [-1, 1] by ``2 g − 1`` (background −1, full stroke +1).

    Args:
        classes: an int or a list/tuple of distinct ints in 0..9 (the digits kept; order irrelevant,
            images stay in ``load_digits`` order).
        size: one of 8, 16, 32, 64 (16 or 32 intended).
        colored: the Coloured-MNIST recipe of the EgNOT paper: image ``i`` gets the hue
            ``h_i = digit_hues(seed)[i] ~ U[0, 1)``, and its grey intensity ``g`` in [0, 1] becomes
            ``rgb = g · hsv_to_rgb(h_i, 1, 1)`` (3 channels; the channel max equals ``g``), then
            mapped to [-1, 1] (black background −1).
        split: ``"train"``, ``"test"`` or ``"all"``. The split is fixed and independent of ``seed``:
            image ``i`` of ``load_digits()`` is test iff ``i % 5 == 4``. With all ten classes,
            train has 1438 images, test 359, all 1797. Per class (train/test): 0: 151/27, 1: 161/21,
            2: 143/34, 3: 131/52, 4: 147/34, 5: 154/28, 6: 150/31, 7: 136/43, 8: 127/47, 9: 138/42.
            No image occurs in both train and test.
        seed: int >= 0; only the hues of ``colored=True`` depend on it.
        return_labels: if True, return ``(images, labels)`` instead of an ``ImageSet``.

    Returns:
        ``ImageSet`` with ``images`` ``(N, C, size, size)`` float32 in [-1, 1] (``C`` = 3 if
        ``colored`` else 1) and ``labels`` ``(N,)`` (the digits); or, with ``return_labels=True``,
        the tuple ``(images Tensor (N, C, size, size), labels LongTensor (N,))``.

    Raises ``ValueError`` naming the argument, its value and the accepted range for a bad argument.
    """
    keep = check_classes(classes, high=9)
    _check_digits_args(size, colored, split, seed, return_labels)
    raw, target = _load_digits()
    mask = digits_split_mask(split, len(raw)) & np.isin(target, keep)
    grey = _upsample(raw[mask] / 16.0, int(size))  # (N, 1, S, S) in [0, 1]
    if colored:
        rgb = torch.from_numpy(hsv_to_rgb(digit_hues(seed)[mask]).astype(np.float32))  # (N, 3)
        grey = grey * rgb[:, :, None, None]  # (N, 3, S, S) in [0, 1]
    images = (grey * 2.0 - 1.0).contiguous()
    labels = torch.from_numpy(target[mask].copy())
    if return_labels:
        return images, labels
    return ImageSet(images, labels, class_names=[str(d) for d in range(10)])


# --------------------------------------------------------------------------- outliers

#: The outlier images ``with_outliers`` can add: "inverted" (−x of a random image of the set: a white
#: background, a dark stroke), "noise" (uniform noise images, U[−1, 1] per pixel) and "far" (an
#: inverted image binarised and doubled: every pixel ±2, outside the inliers' [−1, 1]). Only "far"
#: outliers cost more to reach from N(0, I) noise than the inliers (E‖x − y‖² = D + ‖y‖²: 4·D against
#: ‖y‖² ≤ D), as the MNIST outliers among CIFAR-10 images of the UOTM paper do (expected, not measured
#: there); the others have a digit's norm or less.
OUTLIER_KINDS = ("inverted", "noise", "far")
#: The label of an added outlier image (the classes of ``digits`` are 0..9).
OUTLIER_LABEL = 10


def value_range_pair(value_range) -> tuple[float, float]:
    """``value_range`` as (low, high) floats; ValueError unless a pair of finite numbers, low < high."""
    bad = ValueError(f"value_range must be a pair (low, high) of finite numbers with low < high, e.g. (0, 1), "
                     f"(-1, 1) or (0, 255), got {value_range!r}")
    if isinstance(value_range, (str, bytes)):
        raise bad
    try:
        low, high = (float(v) for v in value_range)
    except (TypeError, ValueError):
        raise bad from None
    if not (math.isfinite(low) and math.isfinite(high) and low < high):
        raise bad
    return low, high


def far_outliers(inverted: torch.Tensor) -> torch.Tensor:
    """The "far" outlier of each image of ``inverted`` (already inverted, values in [−1, 1]): its sign
    (a pixel at 0 counts as +1), doubled: every pixel ±2."""
    return torch.where(inverted >= 0, 2.0, -2.0).to(inverted.dtype)


def with_outliers(images: ImageSet, fraction: float = 0.03, kind: str = "inverted", seed: int = 0) -> ImageSet:
    """``images`` with outlier images added, so that they make up ``fraction`` of the returned set
    (round(fraction·N/(1 − fraction)) of them, at least one): the UOTM paper's outlier experiment
    (CIFAR-10 with a few per cent of MNIST) in small. The outliers are appended after the N inliers
    and labelled ``OUTLIER_LABEL`` (10, class name "outlier"); ``kind`` is one of ``OUTLIER_KINDS``;
    ``seed`` picks the inverted images (also those made "far") or draws the noise. With "far" the
    returned set's ``value_range`` widens to take ±2. ValueError naming a bad argument.
    """
    if not isinstance(images, ImageSet):
        raise ValueError(f"images must be an ImageSet, got {type(images).__name__}")
    if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) or not 0.0 < fraction < 0.5:
        raise ValueError(f"fraction must be a number in (0, 0.5), got {fraction!r}")
    if kind not in OUTLIER_KINDS:
        raise ValueError(f"kind must be one of {OUTLIER_KINDS}, got {kind!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be an int >= 0, got {seed!r}")
    n = len(images)
    m = max(1, round(fraction * n / (1.0 - fraction)))
    gen = torch.Generator().manual_seed(int(seed))
    value_range = images.value_range
    if kind in ("inverted", "far"):
        outliers = -images.images[torch.randint(n, (m,), generator=gen)]
        if kind == "far":
            outliers = far_outliers(outliers)
            value_range = (min(value_range[0], -2.0), max(value_range[1], 2.0))
    else:
        outliers = torch.rand((m, *images.event_shape), generator=gen) * 2.0 - 1.0
    labels = images.labels if images.labels is not None else torch.zeros(n, dtype=torch.long)
    names = list(images.class_names or [str(c) for c in range(OUTLIER_LABEL)])
    names += [str(c) for c in range(len(names), OUTLIER_LABEL)] + ["outlier"]
    return ImageSet(torch.cat([images.images, outliers]),
                    torch.cat([labels, torch.full((m,), OUTLIER_LABEL, dtype=torch.long)]), class_names=names,
                    value_range=value_range)
