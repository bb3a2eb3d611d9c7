"""Batches for the training loop from what users pass as ``source`` and ``target``.

Accepted: a ``Tensor`` / ndarray of samples (n, *shape) (minibatches drawn uniformly with
replacement), a built-in ``Sampler`` (called with the loop's generator), or any callable
``n -> Tensor(n, *shape)``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from ..distributions.base import accepts_generator


def check_finite(batch: torch.Tensor, name: str, where: str = "") -> None:
    """Raise ValueError if ``batch`` has NaN or Inf entries."""
    if not torch.isfinite(batch).all():
        bad = int((~torch.isfinite(batch)).reshape(batch.shape[0], -1).any(dim=1).sum())
        raise ValueError(f"{name} contains NaN or Inf values ({bad} of {batch.shape[0]} samples{where})")


class BatchStream:
    """``stream(batch_size) -> Tensor (batch_size, *shape)`` drawn from ``data``."""

    def __init__(self, data: Any, name: str, generator: torch.Generator):
        self.name = name
        self.generator = generator
        if isinstance(data, np.ndarray):
            data = torch.as_tensor(data)
        if isinstance(data, torch.Tensor):
            if data.dim() < 2 or data.shape[0] < 1:
                raise ValueError(f"{name} samples must have shape (n, *event_shape) with n >= 1, got {tuple(data.shape)}")
            if not data.is_floating_point():
                data = data.float()
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
        return self.samples if self.samples is not None else self.fn

    def __call__(self, n: int) -> torch.Tensor:
        if self.samples is not None:
            idx = torch.randint(self.samples.shape[0], (n,), generator=self.generator)
            return self.samples[idx.to(self.samples.device)]
        batch = self.fn(n, generator=self.generator) if self._with_generator else self.fn(n)
        if not isinstance(batch, torch.Tensor):
            batch = torch.as_tensor(np.asarray(batch), dtype=torch.float32)
        if batch.dim() < 2 or batch.shape[0] != n:
            raise ValueError(f"{self.name}({n}) must return a Tensor of shape ({n}, *event_shape), got {tuple(batch.shape)}")
        return batch.float() if not batch.is_floating_point() else batch
