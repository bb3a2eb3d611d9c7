"""The sampler interface shared by every built-in distribution.

A sampler is a callable ``n -> Tensor`` of shape ``(n, *event_shape)``, float32 by default.
Every built-in sampler also accepts ``generator=`` (a ``torch.Generator``) so that a fixed seed
gives the same numbers; user callables that take only ``n`` work wherever a sampler is expected.
"""

from __future__ import annotations

import inspect
import numbers
from typing import Callable

import numpy as np
import torch


class Sampler:
    """Base class: subclasses set ``event_shape`` and implement ``sample(n, generator)``.

    A sampler whose draws are row by row through ``otgen.shard`` (each sample from its own row of
    ``shard.randn`` & co., nothing shared between rows) sets ``row_keyed = True`` and takes
    ``device=``: in a training step of K processes each process then draws only its own rows of
    the global batch (``sample_rows``), on the training device; outside one, its draws are torch's."""

    event_shape: tuple[int, ...] = ()
    dtype: torch.dtype = torch.float32
    row_keyed: bool = False

    @property
    def dim(self) -> int:
        """Number of coordinates of one sample (the product of ``event_shape``)."""
        d = 1
        for s in self.event_shape:
            d *= s
        return d

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        raise NotImplementedError

    def __call__(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """``n`` samples (n: a positive int, numpy ints too): ``(n, *event_shape)``, drawn from ``generator``
        (a ``torch.Generator``; None: torch's global one). ValueError / TypeError naming the argument."""
        if isinstance(n, (bool, np.bool_)) or not isinstance(n, numbers.Integral) or n < 1:
            raise ValueError(f"n must be a positive int, got {n!r}")
        if generator is not None and not isinstance(generator, torch.Generator):
            raise TypeError(f"generator must be a torch.Generator or None, got {type(generator).__name__} "
                            f"{generator!r} (for a seed s, pass generator=torch.Generator().manual_seed(s))")
        return self.sample(int(n), generator)

    def sample_rows(self, n: int, generator: torch.Generator | None, device: torch.device) -> torch.Tensor:
        """``n`` samples on ``device``: drawn there by a ``row_keyed`` sampler (inside
        ``shard.using``: this process's rows of the global draw), else drawn and moved."""
        if self.row_keyed:
            return self.sample(n, generator, device=device)
        return self.sample(n, generator).to(device)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(event_shape={self.event_shape})"


def accepts_generator(fn: Callable) -> bool:
    """Whether ``fn`` takes a ``generator=`` keyword (built-in samplers do; user callables may not)."""
    try:
        return "generator" in inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False


def draw(sampler: Callable, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """``sampler(n, generator=generator)`` if it accepts a generator, else ``sampler(n)``."""
    return sampler(n, generator=generator) if accepts_generator(sampler) else sampler(n)
