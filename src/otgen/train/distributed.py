"""The process context of the training loop: one process, or K processes under ``torch.distributed``.

The loop asks its context who writes files and shows progress (``is_main``), for the ``shard``
the solver's steps draw and gather through (``otgen.shard``), to make every process start from the
same state (``broadcast_state``, after the solver's ``prepare``), to agree on a stop request after
every step (``agree_stop``: a host-side all-reduce of one flag, so every process stops after the same
step), to reduce the metrics summed on the device at log and checkpoint steps
(``mean_over_processes``, ``min_over_processes``: every process logs the same numbers and stops
together on NaN/Inf) and to wait for the others (``barrier``).

``context(device)`` picks it: the process group the caller initialised; else, in a process started
by ``torchrun`` (``WORLD_SIZE`` > 1 in the environment), a new default group — NCCL for a CUDA
device, gloo for the CPU — initialised from the environment; else one process.

How a K-process run computes (docs/distributed.md): the config's batch is the global batch, split
in K equal parts; every process draws only its rows' random numbers (data rows, noise), keyed by
global row from the same seeded streams (``otgen.shard``), so together they draw what one process
draws for the whole batch; gradients are averaged over the processes in the solver's one
shared step — what ``DistributedDataParallel``'s reducer does, bucketed all-reduces overlapping the
backward pass (``otgen.gradsync``), without DDP's wrapper, since the solvers call their networks in
ways it does not support (a potential inside Langevin chains and twice per loss, a frozen potential
in the generator's loss, R1's double backward). Every process so holds the whole state, identical, and rank 0 alone writes it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import torch

from ..shard import Shard
from .checkpoint import state_tensors


@dataclass(frozen=True)
class SingleProcess:
    """One process: every method is a no-op."""

    rank: int = 0
    world_size: int = 1

    @property
    def is_main(self) -> bool:
        return True

    @property
    def shard(self) -> Shard:
        return Shard()

    def broadcast_state(self, solver: Any) -> None:
        pass

    def mean_over_processes(self, values: torch.Tensor) -> torch.Tensor:
        return values

    def min_over_processes(self, values: torch.Tensor) -> torch.Tensor:
        return values

    def agree_stop(self, stop: bool) -> bool:
        return stop

    def barrier(self) -> None:
        pass


class ProcessGroup:
    """Process ``rank`` of ``world_size`` in an initialised ``torch.distributed`` group; ``device``:
    where the reductions' tensors live (the solver's device: CUDA for NCCL)."""

    def __init__(self, device: torch.device, group: Any = None):
        import torch.distributed as dist

        self.dist, self.group, self.device = dist, group, torch.device(device)
        self.rank = dist.get_rank(group)
        self.world_size = dist.get_world_size(group)
        self._host: Any = False  # the gloo group of the per-step stop flag (made when first needed)

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def shard(self) -> Shard:
        return Shard(self.rank, self.world_size, self.group)

    def broadcast_state(self, solver: Any) -> None:
        """Rank 0's whole state (``solver.state_dict()``: weights, optimisers, EMAs, chains and
        buffers, random streams) to every process, once ``prepare`` has run: a run starts, or
        resumes, from one state everywhere, even where the processes built or pre-trained it
        differently. On CUDA, BatchNorm layers become SyncBatchNorm first (statistics of the whole
        batch; the same parameters and buffers); torch has no CPU SyncBatchNorm, so on the CPU they
        normalise each process's rows."""
        if self.device.type == "cuda":
            for module in solver.networks().values():
                for name, child in list(module.named_children()):
                    setattr(module, name, torch.nn.SyncBatchNorm.convert_sync_batchnorm(child, self.group))
        src = self.dist.get_global_rank(self.group, 0) if self.group is not None else 0
        state = solver.state_dict()
        for tensor in state_tensors(state):  # the same order in every process: the same code built the state
            on_device = tensor if self.device.type != "cuda" or tensor.is_cuda else tensor.to(self.device)
            self.dist.broadcast(on_device, src=src, group=self.group)
            if on_device is not tensor:
                tensor.copy_(on_device)
        if not self.is_main:
            solver.load_state_dict(state)

    def mean_over_processes(self, values: torch.Tensor) -> torch.Tensor:
        """The mean of ``values`` over the processes (an all-reduce on the reduction device)."""
        values = values.to(self.device)
        self.dist.all_reduce(values, group=self.group)
        return values / self.world_size

    def min_over_processes(self, values: torch.Tensor) -> torch.Tensor:
        """The element-wise minimum of ``values`` over the processes."""
        values = values.to(self.device)
        self.dist.all_reduce(values, op=self.dist.ReduceOp.MIN, group=self.group)
        return values

    def agree_stop(self, stop: bool) -> bool:
        """Whether any process was asked to stop: an all-reduce of one host flag over a gloo group (the
        run's own group unless that is NCCL), so the host waits for the other hosts, never for a device."""
        flag = torch.tensor([1 if stop else 0], dtype=torch.int32)
        self.dist.all_reduce(flag, op=self.dist.ReduceOp.MAX, group=self._host_group())
        return bool(flag[0])

    def _host_group(self) -> Any:
        if self._host is False:
            if self.dist.get_backend(self.group) == "nccl":
                ranks = self.dist.get_process_group_ranks(self.group or self.dist.group.WORLD)
                self._host = self.dist.new_group(ranks=ranks, backend="gloo")
            else:
                self._host = self.group
        return self._host

    def barrier(self) -> None:
        if self.device.type == "cuda":
            self.dist.barrier(group=self.group, device_ids=[self.device.index])
        else:
            self.dist.barrier(group=self.group)


def launched_by_torchrun() -> bool:
    """Whether this process is one of several started by ``torchrun`` (or another launcher that
    sets ``WORLD_SIZE``)."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def context(device: torch.device) -> SingleProcess | ProcessGroup:
    """The context of a training run on ``device``: the initialised default group, a new one for a
    process started by torchrun, or one process."""
    import torch.distributed as dist

    if not dist.is_available():
        if launched_by_torchrun():
            raise RuntimeError("WORLD_SIZE > 1 but this torch build has no torch.distributed")
        return SingleProcess()
    if not dist.is_initialized() and launched_by_torchrun():
        device = torch.device(device)
        if device.type == "cuda":
            torch.cuda.set_device(device)
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo", **_attempt_store(dist))
    if dist.is_initialized() and dist.get_world_size() > 1:
        return ProcessGroup(device)
    return SingleProcess()


def _attempt_store(dist: Any) -> dict[str, Any]:
    """``init_process_group``'s store, rank and world size for a process of a torchrun whose agent
    hosts the store (``TORCHELASTIC_USE_AGENT_STORE``, torch's default): a namespace of this attempt
    in the agent's store; {} (torch's env:// rendezvous) otherwise.

    The agent keeps that one store across the restarts of ``--max-restarts``, with the keys the
    processes of the failed attempt wrote: gloo's and NCCL's addresses, under the names the next
    attempt uses. A restarted process that reads its dead peer's address first waits to connect
    until the group's timeout (30 min for gloo). Each attempt's group so gets keys of its own, named
    by torchrun's restart count (the same in every process one agent starts; docs/distributed.md
    for several machines)."""
    if os.environ.get("TORCHELASTIC_USE_AGENT_STORE") != str(True):
        return {}
    from datetime import timedelta

    store = dist.TCPStore(os.environ["MASTER_ADDR"], int(os.environ["MASTER_PORT"]), is_master=False,
                          timeout=timedelta(minutes=30))
    attempt = os.environ.get("TORCHELASTIC_RESTART_COUNT", "0")
    return {"store": dist.PrefixStore(f"otgen/attempt_{attempt}", store), "rank": int(os.environ["RANK"]),
            "world_size": int(os.environ["WORLD_SIZE"])}


def shutdown() -> None:
    """Leave the default process group, if this process joined one (the end of ``otgen train``)."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def is_main_process() -> bool:
    """Rank 0 of the default group, or a process outside any group: the one that writes and prints."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank() == 0
    return int(os.environ.get("RANK", "0")) == 0
