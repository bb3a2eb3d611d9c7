"""Which rows of a global batch this process holds, and the random draws and gathers of a training
step that make K processes compute what one process computes on the whole batch.

A training step of any solver draws its random numbers (Langevin noise, generator noise z, prior
draws, chain picks) through the functions below instead of ``torch.randn`` & co. In one process
(the default) they *are* ``torch.randn`` & co., bit for bit. While the training loop runs a step of a
K-process run (``with using(Shard(rank, K))``), every process draws the numbers of the **whole**
global batch from the same seeded stream and keeps its own rows (rank r holds rows
[r·n, (r+1)·n) of each batch of K·n). So the K processes together make exactly the draws of one
process on the global batch, the random streams stay identical on every rank, and a run continues
the same way under any number of processes (drawing K× the noise costs little beside the networks).

``gather`` joins the rows of every process (for state every rank keeps whole: persistent chains,
replay buffers), ``gather_with_grad`` does so inside a loss that couples samples (a WAE's MMD), and
``average_gradients`` is the gradient all-reduce of the one shared optimisation step.

No otgen imports (a bottom layer, like ``checks``).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any, Iterable, Iterator, Sequence

import torch


@dataclass(frozen=True)
class Shard:
    """Process ``rank`` of ``world_size`` (one process: rank 0 of 1); ``group``: the
    ``torch.distributed`` process group (None: the default group)."""

    rank: int = 0
    world_size: int = 1
    group: Any = None

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    def mine(self, rows: torch.Tensor) -> torch.Tensor:
        """This process's rows of a global tensor (K·n, ...) -> (n, ...)."""
        if not self.distributed:
            return rows
        n = rows.shape[0] // self.world_size
        return rows[self.rank * n:(self.rank + 1) * n]

    def global_rows(self, n: int) -> int:
        """The number of rows of the global batch of which this process holds ``n``."""
        return n * self.world_size


_SINGLE = Shard()
_current: Shard = _SINGLE


def current() -> Shard:
    """The shard of the training step running now (one process outside training)."""
    return _current


@contextlib.contextmanager
def using(shard: Shard) -> Iterator[Shard]:
    """Make ``shard`` the current one inside the block (the training loop wraps each step)."""
    global _current
    previous, _current = _current, shard
    try:
        yield shard
    finally:
        _current = previous


# -- random draws: (n, ...) local rows of a global draw -------------------------------------------
def randn(shape: Sequence[int], generator: torch.Generator | None = None, dtype: torch.dtype | None = None,
          device: torch.device | str | None = None) -> torch.Tensor:
    """``torch.randn(shape)`` for this process's rows: shape[0] is the local row count."""
    s = current()
    shape = tuple(shape)
    return s.mine(torch.randn((s.global_rows(shape[0]), *shape[1:]), generator=generator, dtype=dtype, device=device))


def rand(shape: Sequence[int], generator: torch.Generator | None = None, dtype: torch.dtype | None = None,
         device: torch.device | str | None = None) -> torch.Tensor:
    """``torch.rand(shape)`` for this process's rows."""
    s = current()
    shape = tuple(shape)
    return s.mine(torch.rand((s.global_rows(shape[0]), *shape[1:]), generator=generator, dtype=dtype, device=device))


def randint(high: int, n: int, generator: torch.Generator | None = None,
            device: torch.device | str | None = None) -> torch.Tensor:
    """``torch.randint(high, (n,))`` for this process's n rows."""
    s = current()
    return s.mine(torch.randint(high, (s.global_rows(n),), generator=generator, device=device))


def pick(m: int, n: int, generator: torch.Generator | None = None,
         device: torch.device | str | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Indices of ``n`` local rows among ``m`` items, distinct across all processes when the global
    count fits (a prefix of a permutation), else drawn with replacement: (this process's indices (n,),
    every process's indices (K·n,) in rank order)."""
    s = current()
    total = s.global_rows(n)
    if total <= m:
        every = torch.randperm(m, generator=generator, device=device)[:total]
    else:
        every = torch.randint(m, (total,), generator=generator, device=device)
    return s.mine(every), every


# -- joining the rows of every process ------------------------------------------------------------
def gather(rows: torch.Tensor) -> torch.Tensor:
    """Every process's rows in rank order, (n, ...) -> (K·n, ...), without a gradient."""
    s = current()
    if not s.distributed:
        return rows
    import torch.distributed as dist

    parts = [torch.empty_like(rows) for _ in range(s.world_size)]
    dist.all_gather(parts, rows.detach().contiguous(), group=s.group)
    return torch.cat(parts)


class _GatherWithGrad(torch.autograd.Function):
    """all_gather whose backward sums the gradient of the joined tensor over processes and returns
    this process's rows: every process computes the same loss of all rows, so after the gradient
    average of the shared step each row's gradient is that of the one-process loss."""

    @staticmethod
    def forward(ctx, rows: torch.Tensor, rank: int, world_size: int, group: Any) -> torch.Tensor:
        import torch.distributed as dist

        ctx.rank, ctx.world_size, ctx.group, ctx.n = rank, world_size, group, rows.shape[0]
        parts = [torch.empty_like(rows) for _ in range(world_size)]
        dist.all_gather(parts, rows.contiguous(), group=group)
        return torch.cat(parts)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        import torch.distributed as dist

        grad = grad.contiguous().clone()
        dist.all_reduce(grad, group=ctx.group)
        return grad[ctx.rank * ctx.n:(ctx.rank + 1) * ctx.n], None, None, None


def gather_with_grad(rows: torch.Tensor) -> torch.Tensor:
    """``gather`` inside a loss that couples the samples of the whole batch (an MMD between codes
    and prior draws), keeping the graph: (n, ...) -> (K·n, ...)."""
    s = current()
    if not s.distributed:
        return rows
    return _GatherWithGrad.apply(rows, s.rank, s.world_size, s.group)


def average_gradients(params: Iterable[torch.nn.Parameter]) -> None:
    """Replace each parameter's gradient by its mean over the processes (one flat all-reduce). A
    parameter without a gradient keeps none, as in one process (the graph is the same in every
    process, so they all skip the same ones). A no-op in one process."""
    s = current()
    if not s.distributed:
        return
    import torch.distributed as dist

    params = [p for p in params if p.grad is not None]
    if not params:
        return
    flat = torch.cat([p.grad.reshape(-1) for p in params])
    dist.all_reduce(flat, group=s.group)
    flat.div_(s.world_size)
    offset = 0
    for p in params:
        size = p.numel()
        p.grad = flat[offset:offset + size].view_as(p)
        offset += size
