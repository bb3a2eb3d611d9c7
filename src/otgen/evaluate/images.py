"""Scores of image sets in a feature space: Fréchet distance, KID and precision/recall, with images
fed batch by batch (memory of one batch and the kept features, never of every image).

* ``feature_network(features, device)`` -> a ``FeatureNetwork``: ``"digits"`` (otgen's digit
  classifier, 64-d; report its FD as "digits-FD"), ``"inception"`` (the 2048-d pool-3 features of the
  TF-ported InceptionV3 of standard FID, ``inception.load_inception``: the weights file must be on the
  machine) or any ``nn.Module`` / callable images -> (n, k).
* ``image_stats(net, images)`` -> ``FeatureStats`` of images given as a Tensor ``(n, C, H, W)``, an
  ``ImageDataset`` / ``ImageSet`` or any iterable of such batches (all in [-1, 1]).
* ``compare(samples, reference)`` -> ``{"fd", "kid", "kid_std", "kid_stderr", "precision", "recall",
  "n", "n_reference"}``: KID and precision/recall need the reference's features; a reference given
  only as statistics (``mu``, ``sigma``, e.g. a paper's ``fid_stats_cifar10_train.npz``) gives FD alone
  (the others are None, and ``"reference_features": False`` says why).
* ``reference_stats(...)``: statistics of reference images, cached in an ``.npz`` (``mu``, ``sigma``:
  the format pytorch-fid and the UOTM repository ship; otgen adds ``features`` for KID and
  precision/recall, and ``key``, what they were computed from).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

import numpy as np
import torch
from torch import nn

from .. import io
from ..image_metrics import load_digit_classifier, to_classifier_input
from .scores import FeatureStats, frechet_distance, kid, precision_recall
from .stats import load_stats

__all__ = ["FEATURE_SPACES", "FeatureNetwork", "feature_network", "image_batches", "image_stats", "compare",
           "reference_stats", "ReferenceStats"]

FEATURE_SPACES = ("digits", "inception")


@dataclass
class FeatureNetwork:
    """``fn``: images ``(n, C, H, W)`` in [-1, 1] on ``device`` -> features ``(n, k)``; ``name`` says which."""

    name: str
    fn: Callable[[torch.Tensor], torch.Tensor]
    device: torch.device

    @torch.no_grad()
    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        return self.fn(images.to(self.device, torch.float32)).double()


def feature_network(features: Any = "digits", device: str | torch.device = "cpu",
                    weights: str | os.PathLike | None = None) -> FeatureNetwork:
    """The feature network ``features`` names (see the module docstring) on ``device``; ``weights``:
    the InceptionV3 weights file (default: as ``inception.load_inception`` finds it)."""
    device = torch.device(device)
    if isinstance(features, FeatureNetwork):
        return features
    if isinstance(features, nn.Module):
        net = features.to(device).eval()
        return FeatureNetwork(type(features).__name__, net, device)
    if callable(features):
        return FeatureNetwork(getattr(features, "__name__", "custom"), features, device)
    if features == "digits":
        net = load_digit_classifier().to(device)
        return FeatureNetwork("digits", lambda x: net.features(to_classifier_input(x).to(device)), device)
    if features == "inception":
        from .inception import load_inception

        return FeatureNetwork("inception", load_inception(weights, device=device), device)
    raise ValueError(f"features must be one of {FEATURE_SPACES}, an nn.Module or a callable images -> (n, k), "
                     f"got {features!r}")


def image_batches(images: Any, batch_size: int = 500, limit: int | None = None) -> Iterator[torch.Tensor]:
    """Batches ``(b, C, H, W)`` of ``images``: a Tensor / array ``(n, C, H, W)``, a data set with
    ``batches`` (``ImageDataset``), an ``ImageSet`` (its ``images``) or an iterable of batches;
    at most ``limit`` images in all."""
    if hasattr(images, "batches"):
        yield from images.batches(batch_size, limit=limit)
        return
    if hasattr(images, "images") and isinstance(images.images, torch.Tensor):
        images = images.images
    if isinstance(images, np.ndarray):
        images = torch.from_numpy(images)
    if isinstance(images, torch.Tensor):
        if images.ndim != 4:
            raise ValueError(f"images must have shape (n, C, H, W), got {tuple(images.shape)}")
        stop = len(images) if limit is None else min(limit, len(images))
        for lo in range(0, stop, batch_size):
            yield images[lo:min(lo + batch_size, stop)]
        return
    seen = 0
    for batch in images:
        if limit is not None and seen >= limit:
            return
        batch = batch if limit is None else batch[:limit - seen]
        seen += len(batch)
        yield batch


def image_stats(net: FeatureNetwork, images: Any, batch_size: int = 500, limit: int | None = None,
                keep_features: bool = True, max_kept: int = 50_000) -> FeatureStats:
    """``FeatureStats`` of ``net``'s features of ``images`` (see ``image_batches``), fed a batch at a time."""
    stats = FeatureStats(keep_features=keep_features, max_kept=max_kept)
    for batch in image_batches(images, batch_size, limit):
        if not bool(torch.isfinite(batch).all()):
            raise ValueError("images have non-finite values (nan or inf)")
        stats.update(net(batch).cpu())
    if stats.n < 2:
        raise ValueError(f"scores need at least 2 images, got {stats.n}")
    return stats


@dataclass
class ReferenceStats:
    """Statistics of reference images: ``mu``, ``sigma``, and ``features`` (None for a statistics file
    without them); ``n`` images; ``source`` describes them."""

    mu: np.ndarray
    sigma: np.ndarray
    features: np.ndarray | None
    n: int
    source: str

    @classmethod
    def of(cls, stats: FeatureStats, source: str) -> "ReferenceStats":
        return cls(stats.mu, stats.sigma, stats.features if stats.n_kept else None, stats.n, source)

    def save(self, path: str | os.PathLike, key: str) -> Path:
        """The ``.npz`` of pytorch-fid's format (``mu``, ``sigma``) with ``features``, ``n`` and ``key`` added."""
        extra = {"n": np.int64(self.n), "key": np.str_(key)}
        if self.features is not None:
            extra["features"] = self.features.astype(np.float32)
        arrays = {"mu": self.mu, "sigma": self.sigma, **extra}
        return io.atomic_write(Path(path), lambda f: np.savez(f, **arrays))

    @classmethod
    def load(cls, path: str | os.PathLike, key: str | None = None) -> "ReferenceStats | None":
        """The statistics in ``path`` (ValueError naming the file if it holds no ``mu``/``sigma``); with
        ``key``, None if the file was computed from something else."""
        mu, sigma = load_stats(path)
        with np.load(path, allow_pickle=False) as z:
            stored_key = str(z["key"]) if "key" in z.files else None
            features = np.asarray(z["features"], np.float32) if "features" in z.files else None
            n = int(z["n"]) if "n" in z.files else (len(features) if features is not None else 0)
        if key is not None and stored_key != key:
            return None
        if features is not None and features.shape[1:] != mu.shape:
            raise ValueError(f"{str(path)!r}: 'features' has shape {features.shape}, expected (n, {mu.shape[0]})")
        return cls(mu, sigma, features, n, f"statistics file {str(path)!r}")


def reference_stats(net: FeatureNetwork, images: Any = None, *, path: str | os.PathLike | None = None,
                    cache: str | os.PathLike | None = None, key: str = "", source: str = "reference images",
                    batch_size: int = 500, limit: int | None = None) -> ReferenceStats:
    """The reference: the statistics file ``path`` (its features must match ``net``'s dimension), else
    the statistics of ``images`` — read from ``cache`` if it holds them for the same ``key``, and
    written there otherwise."""
    if path is not None:
        return ReferenceStats.load(path)
    if cache is not None and Path(cache).is_file():
        try:
            cached = ReferenceStats.load(cache, key)
        except ValueError:
            cached = None  # an unreadable cache is recomputed (and replaced)
        if cached is not None:
            cached.source = source + f" (cached in {cache})"
            return cached
    ref = ReferenceStats.of(image_stats(net, images, batch_size, limit), source)
    if cache is not None:
        ref.save(cache, key)
    return ref


def compare(samples: FeatureStats, reference: ReferenceStats, kid_subsets: int = 100, kid_subset_size: int = 1000,
            pr_k: int = 3, seed: int = 0) -> dict[str, Any]:
    """FD, KID (mean over subsets, its spread and standard error) and precision/recall of ``samples``
    against ``reference`` (KID and precision/recall None when the reference has no features)."""
    if samples.dim != reference.mu.shape[0]:
        raise ValueError(f"the reference statistics are {reference.mu.shape[0]}-d ({reference.source}) but the "
                         f"features are {samples.dim}-d: use the feature network the statistics were made with")
    out: dict[str, Any] = {"fd": frechet_distance(samples.mu, samples.sigma, reference.mu, reference.sigma),
                           "kid": None, "kid_std": None, "kid_stderr": None, "precision": None, "recall": None,
                           "n": samples.n, "n_reference": reference.n, "reference_features": reference.features is not None}
    if reference.features is not None and samples.n_kept >= 2:
        fake = samples.features
        k = kid(fake, reference.features, subsets=kid_subsets, subset_size=kid_subset_size, seed=seed)
        out.update(kid=k.kid, kid_std=k.kid_std, kid_stderr=k.kid_stderr)
        if min(len(fake), len(reference.features)) > pr_k:
            pr = precision_recall(reference.features, fake, k=pr_k)
            out.update(precision=pr.precision, recall=pr.recall)
    return out
