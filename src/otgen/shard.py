"""Which rows of a global batch this process holds, and the random draws and gathers of a training
step that make K processes compute what one process computes on the whole batch.

A training step of any solver draws its random numbers (Langevin noise, generator noise z, prior
draws, chain picks, data rows) through the functions below instead of ``torch.randn`` & co. While the
training loop runs a step (``with using(Shard(rank, K))``, K = 1 included) the draws are **keyed by
the global element**: each call takes one key from the generator, and element e of the global draw
is a fixed function of (key, e) (SplitMix64, a counter-based generator). A process computes only
its own elements (rank r holds rows [r·n, (r+1)·n) of each batch of K·n), so it draws n rows' worth
of numbers, not K·n, on the draw's device, with no host read; the K processes together make exactly
the draws of one process on the global batch, every generator advances alike in every process, and a
run continues the same way under any number of processes. Outside a training step they *are*
``torch.randn`` & co., bit for bit (inference keeps torch's streams).

``gather`` joins the rows of every process (for state every rank keeps whole: persistent chains,
replay buffers), ``gather_with_grad`` does so inside a loss that couples samples (a WAE's MMD), and
``average_gradients`` is the gradient all-reduce of the one shared optimisation step.

No otgen imports (a bottom layer, like ``checks``).
"""

from __future__ import annotations

import contextlib
import math
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
_keyed = False  # inside a training step (``using``): the draws below are keyed by global element


def current() -> Shard:
    """The shard of the training step running now (one process outside training)."""
    return _current


@contextlib.contextmanager
def using(shard: Shard) -> Iterator[Shard]:
    """Make ``shard`` the current one inside the block (the training loop wraps each step)."""
    global _current, _keyed
    previous, _current = (_current, _keyed), shard
    _keyed = True
    try:
        yield shard
    finally:
        _current, _keyed = previous


# -- random draws: (n, ...) local rows of a global draw -------------------------------------------
# Inside a training step the draws are keyed, not streamed: each call takes one 63-bit key from the
# generator (the same in every process: it advances every process's stream alike), and element e of
# the global draw gets the bits mix(key + (e + 1)·GAMMA) (SplitMix64: a counter-based generator, its
# sequential form passes BigCrush). A process computes its own elements [rank·N, (rank + 1)·N) only,
# so K processes draw exactly the numbers of one process on the whole batch at 1/K of the work each.
# Outside a training step (``transport``, ``sample``, the samplers called directly) they are plain
# ``torch.randn`` & co., so inference keeps torch's streams (and its batch-size invariances).
_GAMMA = -7046029254386353131   # 0x9E3779B97F4A7C15 as a signed int64 (torch's int64 arithmetic wraps)
_MIX1 = -4658895280553007687    # 0xBF58476D1CE4E5B9
_MIX2 = -7723592293110705685    # 0x94D049BB133111EB
_drawn = 0                      # keyed numbers drawn by this process (``numbers_drawn``)


def numbers_drawn() -> int:
    """How many keyed random numbers this process has drawn (a counter for tests and benchmarks)."""
    return _drawn


def _shr(z: torch.Tensor, k: int) -> torch.Tensor:
    """Logical right shift of int64 bits (torch's ``>>`` is arithmetic)."""
    return (z >> k) & ((1 << (64 - k)) - 1)


def _bits(generator: torch.Generator | None, device: torch.device | str | None, start: int, count: int) -> torch.Tensor:
    """64 random bits (int64) for elements [start, start + count) of a global draw keyed by one draw
    of ``generator``, computed on ``device``: no device sync (a CPU generator's key for a GPU draw is
    read on the host, where it was made)."""
    global _drawn
    _drawn += count
    gen_device = generator.device if generator is not None else torch.device("cpu")
    key = torch.empty((), dtype=torch.int64, device=gen_device).random_(generator=generator)
    device = torch.device(device) if device is not None else gen_device
    if gen_device.type == "cpu" and device.type != "cpu":  # a CPU generator's key for a GPU draw: a host
        key = int(key)  # number, passed as a kernel argument (a blocking copy to the GPU would wait for its queue)
    elif key.device != device:
        key = key.to(device)
    z = torch.arange(start + 1, start + count + 1, dtype=torch.int64, device=device)
    z.mul_(_GAMMA).add_(key)
    z.bitwise_xor_(_shr(z, 30)).mul_(_MIX1)
    z.bitwise_xor_(_shr(z, 27)).mul_(_MIX2)
    return z.bitwise_xor_(_shr(z, 31))


def _uniform(bits: torch.Tensor, dtype: torch.dtype, shift: int, width: int) -> torch.Tensor:
    """Uniforms k·2^-width in [0, 1) from ``width`` bits of ``bits`` starting at bit ``shift``."""
    return _shr(bits, shift).bitwise_and_((1 << width) - 1).to(dtype).mul_(2.0 ** -width)


def _local(shape: Sequence[int]) -> tuple[int, int]:
    """(this process's first element of the global draw, its element count) for local ``shape``."""
    count = math.prod(shape)
    return current().rank * count, count


def randn(shape: Sequence[int], generator: torch.Generator | None = None, dtype: torch.dtype | None = None,
          device: torch.device | str | None = None) -> torch.Tensor:
    """``torch.randn(shape)`` for this process's rows: shape[0] is the local row count. Keyed inside a
    training step: Box–Muller on two uniforms per element (|z| < 5.8 in float32, 6.7 in float64)."""
    shape = tuple(shape)
    if not _keyed:
        return torch.randn(shape, generator=generator, dtype=dtype, device=device)
    dtype = dtype or torch.get_default_dtype()
    work = torch.float64 if dtype == torch.float64 else torch.float32
    start, count = _local(shape)
    bits = _bits(generator, device, start, count)
    width = 32 if work == torch.float64 else 24  # two uniforms from the 64 bits: high and low
    radius = _uniform(bits, work, 64 - width, width)
    radius.neg_().add_(1.0).log_().mul_(-2.0).sqrt_()  # 1 − u in (0, 1]: the log is finite
    angle = _uniform(bits, work, 0, width).mul_(2 * math.pi)
    return radius.mul_(angle.cos_()).to(dtype).reshape(shape)


def rand(shape: Sequence[int], generator: torch.Generator | None = None, dtype: torch.dtype | None = None,
         device: torch.device | str | None = None) -> torch.Tensor:
    """``torch.rand(shape)`` for this process's rows (uniforms in [0, 1))."""
    shape = tuple(shape)
    if not _keyed:
        return torch.rand(shape, generator=generator, dtype=dtype, device=device)
    dtype = dtype or torch.get_default_dtype()
    start, count = _local(shape)
    work = torch.float64 if dtype == torch.float64 else torch.float32
    # as many bits as the dtype's significand holds, so that no uniform rounds up to 1
    width = {torch.float64: 53, torch.float16: 11, torch.bfloat16: 8}.get(dtype, 24)
    return _uniform(_bits(generator, device, start, count), work, 64 - width, width).to(dtype).reshape(shape)


def randint(high: int, n: int, generator: torch.Generator | None = None,
            device: torch.device | str | None = None) -> torch.Tensor:
    """``torch.randint(high, (n,))`` for this process's n rows (keyed: the bits modulo ``high``, a
    bias below high/2^63)."""
    if not _keyed:
        return torch.randint(high, (n,), generator=generator, device=device)
    start, count = _local((n,))
    return _shr(_bits(generator, device, start, count), 1).remainder_(high)


def pick(m: int, n: int, generator: torch.Generator | None = None,
         device: torch.device | str | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Indices of ``n`` local rows among ``m`` items, distinct across all processes when the global
    count fits (a prefix of a uniform random permutation), else drawn with replacement: (this
    process's indices (n,), every process's indices (K·n,) in rank order). Keyed: the prefix is the
    K·n items of the smallest random keys, one key per item (m numbers in every process); with
    replacement, each process draws its own n."""
    s = current()
    total = s.global_rows(n)
    if not _keyed:
        if total <= m:
            every = torch.randperm(m, generator=generator, device=device)[:total]
        else:
            every = torch.randint(m, (total,), generator=generator, device=device)
        return s.mine(every), every
    if total <= m:
        keys = _bits(generator, device, 0, m)
        every = torch.topk(keys, total, largest=False, sorted=True).indices
        return s.mine(every), every
    mine = randint(m, n, generator=generator, device=device)
    return mine, gather(mine)


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
    """Replace each parameter's gradient by its mean over the processes (one flat all-reduce, after
    the backward pass). A parameter without a gradient keeps none, as in one process (the graph is the
    same in every process, so they all skip the same ones). A no-op in one process. ``Solver.update``
    overlaps the same mean with the backward pass (``otgen.gradsync``) and uses this with
    ``gradsync.OVERLAP = False``."""
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
