"""The gradient mean over the processes of a K-process run, all-reduced in buckets while the backward
pass runs: what ``DistributedDataParallel``'s reducer does, for networks that otgen calls in ways DDP's
wrapper does not support (a potential inside Langevin chains, a frozen potential in a generator's
loss, R1's double backward). In a K-process run, ``Solver.update`` runs the backward of every update
of every solver through the ``Reducer`` of the optimiser it steps (made on its first such update).

Buckets. A ``Reducer`` takes the parameters of one optimiser in **reverse** order (a backward pass
reaches a network's last layers first) and cuts them into consecutive buckets of one device and dtype,
as DDP does: the first bucket closes once it holds ``first_bucket_bytes`` (1 MiB), every later one at
``bucket_bytes`` (25 MiB), so a bucket exceeds its cap by at most its last parameter. A parameter that
requires no gradient when the reducer is made (one that is never trained, like EgNOT's output bias)
can carry no hook: such parameters are cut into buckets of their own after the others, which go out
when the backward returns.

When the hooks fire. Every parameter carries a post-accumulate-grad hook
(``Tensor.register_post_accumulate_grad_hook``), which the autograd engine calls right after it has
written the parameter's ``.grad``. It fires **once per parameter per backward call**: the engine sums
every gradient that reaches a leaf (a network called twice in one loss, the double backward of an R1
penalty) before the leaf's one AccumulateGrad node runs. ``torch.autograd.grad`` writes no ``.grad``
and fires none; a frozen parameter (``requires_grad`` off) or one outside the loss's graph fires none.
The hooks act only inside ``Reducer.backward`` (each optimiser's reducer only in its own update), so
a parameter of another optimiser that receives a gradient in the same backward keeps its local one,
and between updates (``autograd.grad`` of a sampler, another optimiser's backward) they do nothing.
A parameter whose hook fired twice in one ``Reducer.backward`` (a backward re-entered from inside
the backward) is an error: its bucket may already be on the wire.

Launch and finish. When every parameter of a bucket has fired, its gradients are copied into one
flat buffer and all-reduced with ``async_op=True`` while the backward pass goes on. Buckets go out in
bucket order only (a bucket that fills early waits for those before it), so every process issues the
same collectives in the same order whatever order its hooks fire in. When ``loss.backward()`` returns,
the buckets that did not fill (they hold parameters without a gradient) go out with the gradients
they hold: a parameter without a gradient keeps none, as in one process (the graph is the same in
every process, so all skip the same ones). Then each collective is waited for, its buffer divided
by K, and the parameters' ``.grad`` become views of it: the numbers of one flat all-reduce after the
backward (``shard.average_gradients``) up to the order of the float sums (bit for bit with 2
processes). Every ``torch.distributed`` backend (gloo, NCCL, MPI, UCC) runs asynchronous all-reduces;
``OVERLAP = False`` makes ``Solver.update`` use the one flat all-reduce instead (for a backend that
cannot, and to compare: benchmarks/grad_overlap.py).

Unlike DDP, the buckets are not rebuilt in the order the first backward fired the hooks (that order
would have to be agreed between the processes); an out-of-order bucket only waits a little longer.

No otgen imports but ``shard`` (a bottom layer).
"""

from __future__ import annotations

import functools
from typing import Any, Iterable

import torch

from .shard import Shard

# the bucket caps of a reducer made without them (read when it is made)
BUCKET_BYTES = 25 * 2**20  # DDP's bucket_cap_mb = 25
FIRST_BUCKET_BYTES = 2**20  # DDP's first bucket: 1 MiB, so that the first all-reduce starts early

#: False: ``Solver.update`` all-reduces every gradient in one flat all-reduce after the backward pass
#: (``shard.average_gradients``) instead of overlapping buckets with it
OVERLAP = True


def bucket_indices(params: list[torch.Tensor], bucket_bytes: int | None = None,
                   first_bucket_bytes: int | None = None) -> list[list[int]]:
    """The buckets of ``params``: lists of indices into ``params``, in reverse order, consecutive; a
    bucket holds one device and dtype and closes once its bytes reach ``first_bucket_bytes`` (the
    first bucket) or ``bucket_bytes`` (the others); None: ``FIRST_BUCKET_BYTES`` / ``BUCKET_BYTES``.
    ValueError unless both are ints >= 1."""
    bucket_bytes = BUCKET_BYTES if bucket_bytes is None else bucket_bytes
    first_bucket_bytes = FIRST_BUCKET_BYTES if first_bucket_bytes is None else first_bucket_bytes
    for name, value in (("bucket_bytes", bucket_bytes), ("first_bucket_bytes", first_bucket_bytes)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be an int >= 1, got {value!r}")
    buckets: list[list[int]] = []
    current: list[int] = []
    size, key = 0, None
    for i in reversed(range(len(params))):
        p = params[i]
        if current and (p.device, p.dtype) != key:
            buckets.append(current)
            current, size = [], 0
        key = (p.device, p.dtype)
        current.append(i)
        size += p.numel() * p.element_size()
        if size >= (bucket_bytes if buckets else first_bucket_bytes):
            buckets.append(current)
            current, size = [], 0
    if current:
        buckets.append(current)
    return buckets


class Reducer:
    """Averages the gradients of ``params`` (one optimiser's) over the processes while the backward
    pass runs; see the module docstring. The hooks are registered here, once, and act only inside
    :meth:`backward`. ``bucket_bytes`` / ``first_bucket_bytes``: as in :func:`bucket_indices`."""

    def __init__(self, params: Iterable[torch.nn.Parameter], bucket_bytes: int | None = None,
                 first_bucket_bytes: int | None = None):
        self.params = list(params)
        # a parameter that requires no gradient now can carry no hook: those go in buckets of their own,
        # after the others, sent when the backward returns (with a gradient if they got one after all)
        hooked = [i for i, p in enumerate(self.params) if p.requires_grad]
        hookless = [i for i, p in enumerate(self.params) if not p.requires_grad]
        self.buckets = [[part[j] for j in members] for part in (hooked, hookless)
                        for members in bucket_indices([self.params[i] for i in part], bucket_bytes, first_bucket_bytes)]
        self._bucket_of = [0] * len(self.params)
        for b, members in enumerate(self.buckets):
            for i in members:
                self._bucket_of[i] = b
        self._shard: Shard | None = None  # set only while backward runs: the hooks act
        self._fired: list[bool] = []
        self._left: list[int] = []  # per bucket: the parameters not fired yet
        self._next = 0  # the next bucket to launch
        self._launched: list[tuple[list[torch.nn.Parameter], torch.Tensor, Any]] = []
        self._handles = [self.params[i].register_post_accumulate_grad_hook(functools.partial(self._ready, i))
                         for i in hooked]

    def backward(self, loss: torch.Tensor, shard: Shard) -> None:
        """``loss.backward()``, after which each gradient of ``params`` is its mean over the processes
        of ``shard`` (a parameter without a gradient keeps none). Other tensors' gradients are left as
        the backward wrote them. In one process: ``loss.backward()`` alone."""
        if not shard.distributed:
            loss.backward()
            return
        self._shard = shard
        self._fired = [False] * len(self.params)
        self._left = [len(members) for members in self.buckets]
        self._next = 0
        self._launched = []
        try:
            loss.backward()
            self._launch_ready(flush=True)
            self._finish(shard.world_size)
        finally:
            self._shard = None
            self._launched = []

    def remove(self) -> None:
        """Unregister the hooks (the reducer does nothing afterwards)."""
        for handle in self._handles:
            handle.remove()
        self._handles = []

    def _ready(self, i: int, param: torch.Tensor) -> None:
        """The hook of parameter ``i``: its ``.grad`` is final for this backward."""
        if self._shard is None:
            return
        if self._fired[i]:
            raise RuntimeError(f"the gradient of parameter {i} (shape {tuple(param.shape)}) was accumulated twice "
                               "in one backward pass; its bucket may already be all-reduced")
        self._fired[i] = True
        b = self._bucket_of[i]
        self._left[b] -= 1
        if b == self._next and self._left[b] == 0:
            self._launch_ready()

    def _launch_ready(self, flush: bool = False) -> None:
        """Launch the full buckets from ``_next`` on, in order (``flush``: every remaining one)."""
        while self._next < len(self.buckets) and (flush or self._left[self._next] == 0):
            self._launch(self.buckets[self._next])
            self._next += 1

    def _launch(self, members: list[int]) -> None:
        import torch.distributed as dist

        params = [p for p in (self.params[i] for i in members) if p.grad is not None]
        if not params:
            return
        flat = torch.cat([p.grad.reshape(-1) for p in params])
        work = dist.all_reduce(flat, group=self._shard.group, async_op=True)
        self._launched.append((params, flat, work))

    def _finish(self, world_size: int) -> None:
        """Wait for every bucket; each gradient becomes a view of its bucket's mean."""
        for params, flat, work in self._launched:
            work.wait()
            flat.div_(world_size)
            offset = 0
            for p in params:
                size = p.numel()
                p.grad = flat[offset:offset + size].view_as(p)
                offset += size
