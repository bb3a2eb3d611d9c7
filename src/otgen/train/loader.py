"""Batches of a streaming image data set: one seeded data order, each process reading its own rows
through a ``torch.utils.data.DataLoader`` with worker processes.

**The data order** (``DataOrder``): epoch ``e`` is a permutation of the N images, drawn from the run's
seed and ``e`` alone, with one fair coin per position for the horizontal flip (when the data set has
``flip``). The positions of all epochs, end to end, form one infinite stream; the global batch of step
``t`` (counting from 1) is the stream's positions ``[(t − 1)·B, t·B)``, and process ``r`` of ``K``
reads ``[(t − 1)·B + r·B/K, (t − 1)·B + (r + 1)·B/K)`` of them. So every image is seen once per epoch,
K processes together read exactly what one process reads (the pattern of StyleGAN2-ADA's
``InfiniteSampler``, with the rank's slice taken per global batch, not per epoch), and a run resumed
at step t continues at position t·B with nothing stored but the step. Each process draws the
permutation of N once per epoch (a few ms for 200 000 images), whatever K is.

**Reading** happens in ``num_workers`` worker processes (0: in the training process), each decoding
whole batches into uint8; the batch goes to the training device (pinned memory on CUDA) and is
converted to float32 in [-1, 1] there (``ImageDataset.convert``). An unreadable file is skipped (its
row takes another image of the batch) and announced once; a worker never raises its own traceback:
problems travel back with the batch and are raised or announced in the training process. A worker
that dies (killed, out of memory) stops the run with ``DataLoaderFailed`` naming the data side.
"""

from __future__ import annotations

import os
import signal
from typing import Iterator

import torch
from torch.utils.data import DataLoader

from ..checks import derived_seed
from ..distributions.datasets import ImageDataset, announce, assemble, read_one, read_rows
from ..shard import Shard

__all__ = ["DataOrder", "DatasetStream", "DataLoaderFailed", "default_workers"]


class DataLoaderFailed(RuntimeError):
    """A data-loading worker process died, or the loader failed outside the data set's own reads."""


def default_workers(world_size: int = 1) -> int:
    """Worker processes per training process: the cores this process may use, shared among the
    ``world_size`` processes of the machine, less one for the training process; at most 8."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cores = os.cpu_count() or 1
    local = int(os.environ.get("LOCAL_WORLD_SIZE", world_size))
    return max(0, min(8, cores // max(1, local) - 1))


class DataOrder:
    """The infinite, seeded order of ``n`` images (see the module docstring): ``rows(start, count)``
    gives the image indices and flip coins of stream positions ``[start, start + count)``."""

    def __init__(self, n: int, seed: int, flip: bool):
        self.n, self.seed, self.flip = int(n), int(seed), bool(flip)
        self._epoch, self._perm, self._coins = -1, None, None

    def _load_epoch(self, epoch: int) -> None:
        if epoch != self._epoch:
            gen = torch.Generator().manual_seed(derived_seed(self.seed, epoch))
            self._perm = torch.randperm(self.n, generator=gen)
            self._coins = (torch.rand(self.n, generator=gen) < 0.5) if self.flip else None
            self._epoch = epoch

    def rows(self, start: int, count: int) -> tuple[list[int], list[bool]]:
        indices: list[int] = []
        flips: list[bool] = []
        pos, end = start, start + count
        while pos < end:
            epoch, offset = divmod(pos, self.n)
            self._load_epoch(epoch)
            take = min(end - pos, self.n - offset)
            indices += self._perm[offset:offset + take].tolist()
            flips += self._coins[offset:offset + take].tolist() if self.flip else [False] * take
            pos += take
        return indices, flips


class _RankBatches(torch.utils.data.Sampler):
    """This process's part of each global batch, from ``first_step`` on, forever: lists of
    ``(index, flip)`` pairs (the ``batch_sampler`` of the ``DataLoader``; it runs in the training process)."""

    def __init__(self, order: DataOrder, batch_size: int, shard: Shard, first_step: int):
        self.order, self.batch_size, self.shard, self.first_step = order, batch_size, shard, first_step

    def __iter__(self) -> Iterator[list[tuple[int, bool]]]:
        local = self.batch_size // self.shard.world_size
        step = self.first_step
        while True:
            start = (step - 1) * self.batch_size + self.shard.rank * local
            yield list(zip(*self.order.rows(start, local)))
            step += 1


class _Items(torch.utils.data.Dataset):
    """The data set as a worker reads it: item ``(index, flip)`` -> ``read_one``'s (item, problem)."""

    def __init__(self, dataset: ImageDataset):
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, key):
        index, flip = key
        return read_one(self.dataset, index, flip)


def _ignore_interrupts(worker_id: int) -> None:
    """In each worker: ignore SIGINT. Ctrl-C in a terminal reaches the whole process group; the training
    process decides when to stop (``loop.StopRequest``: under torchrun one step later, which reads one
    more batch) and then closes its workers itself."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _collate(results):
    """In the worker: the uint8 batch and its problems (never an exception for a bad file)."""
    try:
        return assemble(results)
    except ValueError as e:  # no image of the batch could be read: the training process raises it
        return None, [str(e)]


class DatasetStream:
    """Batches of an ``ImageDataset`` for the training loop (``stream(n)`` as ``BatchStream``'s): the
    global batch ``n`` of every step in the data order of ``seed``, this process's rows of it read by
    ``num_workers`` workers, converted to float32 in [-1, 1] on ``device``. ``start(batch_size, step)``
    positions the stream after ``step`` steps (a resumed run); ``close()`` ends the workers."""

    def __init__(self, dataset: ImageDataset, name: str, seed: int, shard: Shard | None = None,
                 num_workers: int | None = None, device: torch.device | str = "cpu"):
        self.dataset, self.name = dataset, name
        self.shard = shard or Shard()
        self.order = DataOrder(len(dataset), seed, dataset.flip)
        self.num_workers = default_workers(self.shard.world_size) if num_workers is None else int(num_workers)
        self.device = torch.device(device)
        self._loader = None
        self._iter = None
        self._batch_size = None

    @property
    def data(self) -> ImageDataset:
        """What the solver's ``prepare`` is given: the data set (a sampler)."""
        return self.dataset

    def whole(self, n: int) -> torch.Tensor:
        """The first ``n`` images of the data order's first batch, read here (the loop's shape probe)."""
        indices, flips = self.order.rows(0, n)
        return self.dataset.convert(read_rows(self.dataset, indices, flips, self.name))

    def start(self, batch_size: int, step: int = 0) -> None:
        """Read the global batches of ``batch_size`` from step ``step + 1`` on."""
        self.close()
        self._batch_size = batch_size
        pin = self.device.type == "cuda"
        workers = self.num_workers
        self._loader = DataLoader(_Items(self.dataset), batch_sampler=_RankBatches(self.order, batch_size, self.shard,
                                                                                   step + 1),
                                  num_workers=workers, collate_fn=_collate, pin_memory=pin,
                                  worker_init_fn=_ignore_interrupts if workers > 0 else None,
                                  persistent_workers=workers > 0, prefetch_factor=4 if workers > 0 else None)
        self._iter = iter(self._loader)

    def __call__(self, n: int, where: str = "") -> torch.Tensor:
        if self._iter is None or n != self._batch_size:
            raise RuntimeError(f"the {self.name} stream was started for batches of {self._batch_size}, asked for {n}")
        try:
            raw, problems = next(self._iter)
        except RuntimeError as e:  # a worker killed or crashed outside the data set's reads
            self.close()
            raise DataLoaderFailed(
                f"a data-loading worker of the {self.name} data ({self.dataset.source}) failed{where}: {e}. "
                f"It may have run out of memory; try fewer workers (train.num_workers, now {self.num_workers}; "
                "0 reads in the training process)") from None
        if raw is None:
            self.close()
            raise ValueError(f"{self.name}{where}: {problems[0]}")
        announce(problems, self.name)
        return self.dataset.convert(raw.to(self.device, non_blocking=True))

    def close(self) -> None:
        """End the worker processes (if any)."""
        if self._iter is not None:
            shutdown = getattr(self._iter, "_shutdown_workers", None)
            if shutdown is not None:
                shutdown()
        self._loader = self._iter = None
