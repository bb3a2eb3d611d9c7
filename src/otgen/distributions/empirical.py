"""The empirical distribution of a fixed set of samples (resampling rows with replacement)."""

from __future__ import annotations

import numpy as np
import torch

from ..checks import real_array
from .base import Sampler


class Empirical(Sampler):
    """Uniform distribution over the rows of ``samples``: draws rows with replacement.

    ``samples``: a Tensor or array-like of shape ``(N, *event_shape)`` with ``N >= 1`` and finite
    entries. It is stored as float32 (on the Tensor's device, if a Tensor is given); draws come back
    on that device. ``event_shape`` is ``samples.shape[1:]``. The row indices are drawn with the
    given ``torch.Generator`` (a CPU generator), so a fixed seed gives the same rows.
    """

    def __init__(self, samples):
        if isinstance(samples, torch.Tensor):
            data = samples.detach()
        else:  # booleans (masks) are numbers here; checks.real_array names anything else
            if isinstance(samples, np.ndarray) and samples.dtype == np.bool_:
                samples = samples.astype(np.float32)
            data = torch.from_numpy(real_array("samples", samples, np.float32))
        if data.ndim < 1 or data.shape[0] < 1 or data.numel() == 0:
            raise ValueError(f"samples must be non-empty with shape (N >= 1, ...), got shape {tuple(data.shape)}")
        if data.is_complex():
            raise ValueError("samples must be real, got a complex array")
        data = data.to(torch.float32)
        if not bool(torch.isfinite(data).all()):
            raise ValueError("samples has non-finite entries (nan or inf)")
        self.samples = data.contiguous()
        self.event_shape = tuple(data.shape[1:])

    def __len__(self) -> int:
        return self.samples.shape[0]

    def sample(self, n, generator=None):
        idx = torch.randint(0, len(self), (n,), generator=generator)
        return self.samples[idx.to(self.samples.device)]

    def __repr__(self) -> str:
        return f"Empirical(n_rows={len(self)}, event_shape={self.event_shape})"
