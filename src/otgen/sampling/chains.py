"""Where Langevin chains start: fresh draws, a replay buffer, or persistent chains.

Every chain start has the same two calls:

    y0, x, handle = start.begin(x_batch, generator)   # initial states and the x each chain is conditioned on
    start.end(y, x, handle)                           # hand back the states after sampling

* ``FreshStart``      every chain starts from ``init(x, generator)`` (no memory between iterations).
* ``ReplayBuffer``    IGEBM-style buffer of (y, x) pairs, FIFO, capacity ``capacity``. Each chain is
                      re-initialised with probability ``reinit_prob`` (from ``init`` with the batch's x),
                      otherwise continues a random stored pair (its x comes from the buffer too).
                      ``end`` pushes the new pairs once.
* ``PersistentChains`` one chain per sample of a finite source set, never re-initialised
                      (long-run chains); each iteration continues a random subset of them.

``init(x, generator) -> y0`` builds the fresh states: ``noise_init(shape, scale)`` draws
N(0, scale² I); ``source_init(eps)`` draws x + sqrt(eps)·ξ, the plan of the squared cost alone.

In a run of K processes every process keeps the whole buffer or set of chains, picks its chains as
its rows of one global pick and hands back the states of all processes (``otgen.shard``), so the
chains are those of the one-process run and any process can save them.
"""

from __future__ import annotations

from typing import Callable

import torch

from .. import shard

Init = Callable[[torch.Tensor, "torch.Generator | None"], torch.Tensor]


def noise_init(event_shape: tuple[int, ...], scale: float = 1.0) -> Init:
    """y0 ~ N(0, scale² I) of shape (len(x), *event_shape)."""

    def init(x, generator=None):
        return scale * shard.randn((x.shape[0], *event_shape), generator=generator, dtype=x.dtype, device=x.device)

    return init


def source_init(eps: float) -> Init:
    """y0 = x + sqrt(eps)·ξ: the conditional plan of the cost ½‖x − y‖² alone (needs equal shapes)."""

    def init(x, generator=None):
        return x + eps ** 0.5 * shard.randn(x.shape, generator=generator, dtype=x.dtype, device=x.device)

    return init


class FreshStart:
    """Chains start afresh every time."""

    def __init__(self, init: Init):
        self.init = init

    def begin(self, x, generator=None):
        return self.init(x, generator), x, None

    def end(self, y, x, handle) -> None:
        pass

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass


class ReplayBuffer:
    """Replay buffer of (y, x) pairs; see the module docstring."""

    def __init__(self, init: Init, capacity: int = 10_000, reinit_prob: float = 0.05,
                 device: torch.device | str | None = None):
        if isinstance(capacity, bool) or not isinstance(capacity, int) or capacity < 1:
            raise ValueError(f"buffer_size must be an int >= 1, got {capacity!r}")
        if not 0.0 <= reinit_prob <= 1.0:
            raise ValueError(f"reinit_prob must be in [0, 1], got {reinit_prob!r}")
        self.init = init
        self.capacity = capacity
        self.reinit_prob = float(reinit_prob)
        self.device = device  # where a buffer loaded from a (CPU) checkpoint lives; None: where it was saved
        self.y: torch.Tensor | None = None
        self.x: torch.Tensor | None = None
        self.size = 0
        self.head = 0  # next slot to overwrite

    def begin(self, x, generator=None):
        y0 = self.init(x, generator)
        if self.size == 0:
            return y0, x, None
        n = x.shape[0]
        dev = x.device
        replay = shard.rand((n,), generator=generator, device=dev) >= self.reinit_prob
        idx = shard.randint(self.size, n, generator=generator, device=dev)
        # every row gathers a stored pair and ``where`` keeps it for the replayed rows (picking those
        # rows by index would read the mask on the host: a device sync)
        y0 = torch.where(replay.view(-1, *([1] * (y0.dim() - 1))), self.y[idx], y0)
        x = torch.where(replay.view(-1, *([1] * (x.dim() - 1))), self.x[idx], x)
        return y0, x, None

    def end(self, y, x, handle) -> None:
        y, x = shard.gather(y.detach()), shard.gather(x.detach())  # every process pushes the whole batch
        if self.y is None:
            self.y = torch.empty((self.capacity, *y.shape[1:]), dtype=y.dtype, device=y.device)
            self.x = torch.empty((self.capacity, *x.shape[1:]), dtype=x.dtype, device=x.device)
        n = min(y.shape[0], self.capacity)
        y, x = y[-n:], x[-n:]
        slots = (self.head + torch.arange(n, device=y.device)) % self.capacity
        self.y[slots] = y
        self.x[slots] = x
        self.head = (self.head + n) % self.capacity
        self.size = min(self.size + n, self.capacity)

    def state_dict(self) -> dict:
        if self.y is None:
            return {"size": 0, "head": 0}
        return {"y": self.y[: self.size].clone(), "x": self.x[: self.size].clone(), "size": self.size, "head": self.head}

    def load_state_dict(self, state: dict) -> None:
        self.size, self.head = int(state["size"]), int(state["head"])
        if self.size == 0:
            self.y = self.x = None
            return
        y, x = state["y"], state["x"]
        device = self.y.device if self.y is not None else self.device  # keep the buffer where it lives
        if device is not None:
            y, x = y.to(device), x.to(device)
        self.y = torch.empty((self.capacity, *y.shape[1:]), dtype=y.dtype, device=y.device)
        self.x = torch.empty((self.capacity, *x.shape[1:]), dtype=x.dtype, device=x.device)
        self.y[: self.size] = y
        self.x[: self.size] = x


class PersistentChains:
    """One chain per sample of a finite source set ``source`` (m, *shape), never re-initialised."""

    def __init__(self, init: Init, source: torch.Tensor, generator: torch.Generator | None = None):
        if source.dim() < 2 or source.shape[0] < 1:
            raise ValueError(f"persistent chains need a finite source set (m, *shape), got shape {tuple(source.shape)}")
        self.source = source
        self.y = init(source, generator)

    def begin(self, x, generator=None):
        # distinct chains when they suffice, so none is advanced twice and overwritten
        idx, every = shard.pick(self.source.shape[0], x.shape[0], generator=generator, device=self.source.device)
        return self.y[idx], self.source[idx], every

    def end(self, y, x, handle) -> None:
        self.y[handle] = shard.gather(y.detach())  # every process keeps all chains

    @classmethod
    def restored(cls, state: dict) -> "PersistentChains":
        """Chains continued from ``state_dict()`` (the source points and their chains)."""
        chains = cls.__new__(cls)
        chains.source, chains.y = state["source"], state["y"]
        return chains

    def state_dict(self) -> dict:
        return {"source": self.source.clone(), "y": self.y.clone()}

    def load_state_dict(self, state: dict) -> None:
        self.source = state["source"].to(self.source.device)
        self.y = state["y"].to(self.y.device)
