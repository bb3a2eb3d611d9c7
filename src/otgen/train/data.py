"""Batches for the training loop from what users pass as ``source`` and ``target``.

Accepted: a ``Tensor`` / ndarray of samples (n, *shape) or an ``Empirical`` / ``ImageSet`` (minibatches
drawn uniformly with replacement: each process draws only its own rows' indices, keyed by global
row, ``otgen.shard``), a built-in ``Sampler`` (called with the loop's generator), or any callable
``n -> Tensor(n, *shape)`` (called for the whole global batch in every process: a callable cannot be
asked for rows r·n..(r+1)·n of a batch).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from .. import shard as shards
from ..distributions.base import Sampler, accepts_generator
from ..distributions.empirical import Empirical
from ..shard import Shard


def check_finite(batch: torch.Tensor, name: str, where: str = "") -> None:
    """Raise ValueError if ``batch`` has NaN or Inf entries."""
    if not torch.isfinite(batch).all():
        bad = int((~torch.isfinite(batch)).reshape(batch.shape[0], -1).any(dim=1).sum())
        raise ValueError(f"{name} contains NaN or Inf values ({bad} of {batch.shape[0]} samples{where})")


class BatchStream:
    """``stream(batch_size) -> Tensor (batch_size / K, *shape)``: this process's rows of a global batch
    of ``batch_size`` drawn from ``data`` (K processes, ``shard``; one: the whole batch). A Tensor of
    samples (or an ``Empirical`` sampler's rows) is indexed: each process draws only its own rows'
    indices, keyed by global row from ``generator`` (``shard.randint``), on the samples' device, so K
    processes draw what one draws for the whole batch. So is a ``row_keyed`` built-in sampler (the
    Gaussian noise of image generators): each process draws its rows, on ``device``. Any other
    sampler is called for the whole batch in every process alike, which keeps its rows."""

    def __init__(self, data: Any, name: str, generator: torch.Generator, shard: Shard | None = None,
                 device: torch.device | str = "cpu"):
        self.name = name
        self.generator = generator
        self.shard = shard or Shard()
        self.device = torch.device(device)
        self.row_keyed = isinstance(data, Sampler) and data.row_keyed
        self.original = data  # what prepare() sees for an Empirical sampler (drawn from by index here)
        if isinstance(data, Empirical) and type(data).sample is Empirical.sample:
            data = data.samples
        if isinstance(data, np.ndarray):
            data = torch.as_tensor(data)
        if isinstance(data, torch.Tensor):
            if data.dim() < 2 or data.shape[0] < 1:
                raise ValueError(f"{name} samples must have shape (n, *event_shape) with n >= 1, got {tuple(data.shape)}")
            data = _real_float32(data, name)
            check_finite(data, name)
            self.samples: torch.Tensor | None = data
            self.fn = None
        elif callable(data):
            self.samples = None
            self.fn = data
            self._with_generator = accepts_generator(data)  # inspected once, not per batch
        else:
            raise ValueError(f"{name} must be a Tensor of samples or a callable n -> Tensor, got {type(data).__name__}")

    @property
    def data(self) -> Any:
        """What the solver's ``prepare`` is given: the Tensor of samples, the ``Empirical`` sampler
        given, or the sampler with its outputs checked as the batches are."""
        if isinstance(self.original, Empirical):
            return self.original
        return self.samples if self.samples is not None else self._checked

    def _checked(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        batch = self.fn(n, generator=generator) if self._with_generator else self.fn(n)
        if batch is None or isinstance(batch, (str, bytes, dict)):
            raise ValueError(f"{self.name}({n}) must return a Tensor of shape ({n}, *event_shape), "
                             f"got {type(batch).__name__}")
        if not isinstance(batch, torch.Tensor):
            try:
                batch = torch.as_tensor(np.asarray(batch, dtype=np.float32))
            except (TypeError, ValueError) as e:
                raise ValueError(f"{self.name}({n}) must return a Tensor of shape ({n}, *event_shape); its "
                                 f"{type(batch).__name__} is not an array of numbers ({e})") from None
        if batch.dim() < 2 or batch.shape[0] != n:
            raise ValueError(f"{self.name}({n}) must return a Tensor of shape ({n}, *event_shape), got {tuple(batch.shape)}")
        return _real_float32(batch, self.name)

    def __call__(self, n: int, where: str = "") -> torch.Tensor:
        """This process's rows of a global batch of ``n``. A sampler's whole batch is checked for
        NaN/Inf first (ValueError naming the side, ``where`` added), so every process refuses it alike;
        a Tensor of samples was checked once, when the stream was made."""
        if self.samples is not None:
            with shards.using(self.shard):
                idx = shards.randint(self.samples.shape[0], n // self.shard.world_size, generator=self.generator,
                                     device=self.samples.device)
            return self.samples[idx]
        if self.row_keyed:  # finite by construction: no check (a host read)
            with shards.using(self.shard):
                return self.fn.sample_rows(n // self.shard.world_size, self.generator, self.device)
        batch = self.whole(n)
        check_finite(batch, self.name, where)
        return self.shard.mine(batch)

    def whole(self, n: int) -> torch.Tensor:
        """A batch of ``n`` samples, all of them (in every process alike)."""
        if self.samples is not None:
            idx = torch.randint(self.samples.shape[0], (n,), generator=self.generator)
            return self.samples[idx.to(self.samples.device)]
        return self._checked(n, self.generator)


def _real_float32(t: torch.Tensor, name: str) -> torch.Tensor:
    """Samples as float32 (the models' dtype: float64, float16 and integer data are cast); complex
    samples are refused, naming ``name``."""
    if t.is_complex():
        raise ValueError(f"{name} samples must be real numbers, got dtype {t.dtype}")
    return t if t.dtype == torch.float32 else t.float()
