"""The one training loop, shared by every solver.

It owns iteration, batches, the progress bar, ``metrics.jsonl``, checkpoints, resume, Ctrl-C and the
NaN/Inf guard; the solver owns its networks and its ``train_step``. Everything is validated before
the first step: argument ranges, data shapes (against the solver) and finiteness of the data.
"""

from __future__ import annotations

import contextlib
import math
import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import torch

from .. import shard
from ..checks import check_number, derived_seed
from . import checkpoint as ckpt
from ..distributions.datasets import ImageDataset
from .data import BatchStream, check_finite
from .distributed import context
from .loader import DatasetStream
from .logging import MetricsLog, progress_bar
from .metrics import LazyMetrics, MetricSums

Callback = Callable[[int, Any, dict], "dict | None"]


class TrainingDiverged(RuntimeError):
    """Raised when a step produces NaN/Inf; the last good checkpoint is kept (and reloaded)."""


@dataclass
class TrainResult:
    steps: int                      # the step count reached
    seconds: float                  # wall time of this call
    metrics: dict[str, float] = field(default_factory=dict)  # the last logged record
    out: Path | None = None
    resumed_from: int | None = None  # the checkpoint's step, for a resumed run


def _finite_state(state: Any) -> bool:
    """Whether every floating-point tensor of ``state`` is finite (one host read per device)."""
    flags: dict[torch.device, list[torch.Tensor]] = {}
    for t in ckpt.state_tensors(state):
        if t.is_floating_point():
            flags.setdefault(t.device, []).append(torch.isfinite(t).all())
    return all(bool(torch.stack(f).all()) for f in flags.values())


PRECISIONS = ("fp32", "bf16")


def train(solver: Any, data: Sequence[Any], n_iters: int, batch_size: int, *, seed: int = 0,
          out: str | Path | None = None, resume: bool | str = False, progress: bool = True, log_every: int = 50,
          checkpoint_every: int = 500, callbacks: Iterable[Callback] = (), precision: str = "fp32",
          num_workers: int | None = None, dist: Any = None) -> TrainResult:
    """Train ``solver`` until it has taken ``n_iters`` steps in all (counting resumed ones and those of
    an earlier ``fit`` of the same model object).

    Args:
        data: one entry per side the solver names in ``solver.data_sides`` (e.g. source and target;
            a solver that samples its own prior needs one): Tensors of samples (n, *shape),
            ``Sampler``s or callables ``n -> Tensor``.
        n_iters: total number of steps >= 1 (with ``resume``: at least the checkpoint's step).
        batch_size: samples of each side per step >= 1: the global batch of all processes (a multiple
            of their number, each process taking an equal part).
        seed: seeds the loop's data draws (the solver has its own seed).
        out: run directory for ``metrics.jsonl``, ``checkpoints/last.pt`` and ``model.pt``; None: no files.
        resume: True: continue from ``out``'s checkpoint (which must exist); False: start a run, and a
            directory that already holds a checkpoint is refused (nothing saved is overwritten); "auto":
            continue if ``out`` holds a checkpoint, else start (the same call serves a first start and
            a restart, e.g. under ``torchrun --max-restarts``).
        progress: a progress bar when stderr is a terminal.
        log_every, checkpoint_every: in steps.
        callbacks: ``cb(step, solver, metrics) -> dict | None`` after each step; ``metrics`` is a mapping
            whose values are read from the device only if the callback looks at them (this process's
            own values); returned dicts are logged.
        precision: "fp32", or "bf16": each step under ``torch.autocast`` with bfloat16 (for the
            convolutional networks on a GPU; weights, optimiser state and chains stay float32).
        num_workers: data-loading worker processes of each process for a streaming image data set
            (``distributions.ImageDataset``: a folder, ``.npy``, MNIST, CIFAR-10); None: one fewer than
            the cores per process, at most 8 (``loader.default_workers``); 0: read in this process.
            Such data is read in epochs of a seeded order (``train/loader.py``); Tensors and samplers
            are drawn from uniformly with replacement, as before.
        dist: the process context (default: ``distributed.context``: torchrun's processes, or one).

    In a process group (``torchrun``, or a group the caller initialised) each of the K processes
    trains on its part of every batch; together they compute what one process computes on the whole
    batch (``otgen.shard``), and only rank 0 writes files. SIGINT/SIGTERM stop every process after
    the same step, with one checkpoint, and raise KeyboardInterrupt. On NaN/Inf the run stops with
    ``TrainingDiverged``; with ``out`` the last good checkpoint is kept and reloaded into the model,
    without ``out`` the model is left as it diverged. The metrics stay on the device between log
    steps (``train/metrics.py``): a NaN/Inf is found at the next log or checkpoint step, named by
    the step it came from, and no checkpoint is written after it.
    """
    check_number("n_iters", n_iters, low=1, integer=True)
    check_number("batch_size", batch_size, low=1, integer=True)
    check_number("seed", seed, low=0, integer=True)
    check_number("log_every", log_every, low=1, integer=True)
    check_number("checkpoint_every", checkpoint_every, low=1, integer=True)
    callbacks = [callbacks] if callable(callbacks) else list(callbacks)
    for cb in callbacks:
        if not callable(cb):
            raise ValueError(f"callbacks must be callables cb(step, solver, metrics), got {type(cb).__name__}")
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    if num_workers is not None:
        check_number("num_workers", num_workers, low=0, integer=True)
    sides = tuple(solver.data_sides)
    if len(data) != len(sides):
        raise ValueError(f"{type(solver).__name__} trains on {len(sides)} data set(s) ({', '.join(sides)}), "
                         f"got {len(data)}")
    out = Path(out) if out is not None else None
    if out is not None and out.exists() and not out.is_dir():
        raise ValueError(f"out={str(out)!r} exists and is not a directory (a run directory holds metrics.jsonl, "
                         "checkpoints/ and model.pt)")
    if not (isinstance(resume, bool) or (isinstance(resume, str) and resume == "auto")):
        raise ValueError(f"resume must be True (continue the run in out), False (start one there) or \"auto\" "
                         f"(continue it if out holds a checkpoint, else start it), got {resume!r}")
    if resume and out is None:
        raise ValueError(f"resume={resume!r} continues the run in a directory: pass out=")
    dist = dist or context(solver.device)
    if batch_size % dist.world_size:
        raise ValueError(f"batch_size {batch_size} is the global batch of the {dist.world_size} processes and "
                         f"must be a multiple of {dist.world_size}")

    # one data stream for the whole batch, the same in every process (which keeps its own rows); a
    # streaming image data set is read in its own seeded order, each process reading only its rows
    data_gen = torch.Generator().manual_seed(derived_seed(seed, 3, 0))
    streams = [DatasetStream(d, side, derived_seed(seed, 3, 1 + k), dist.shard, num_workers, solver.device)
               if isinstance(d, ImageDataset) else BatchStream(d, side, data_gen, dist.shard, solver.device)
               for k, (d, side) in enumerate(zip(data, sides))]
    probes = [stream.whole(min(batch_size, 2)) for stream in streams]
    for probe, side in zip(probes, sides):
        check_finite(probe, side, " in the first batch")
    solver.check_data(*(tuple(p.shape[1:]) for p in probes))

    start = solver.step  # a model fitted before in memory continues; a checkpoint overrides below
    existing = ckpt.load_checkpoint(out) if out is not None else None
    if resume == "auto":
        # Every process decides alike, from checkpoints/last.pt alone: only rank 0 writes it
        # (atomically, by rename), at the end of a step whose all-reduce needs every process, so not
        # before every process has decided here; and torchrun stops every process of a failed attempt
        # before it starts the next. (A decision broadcast from rank 0 would add nothing: each process
        # reads the checkpoint itself, for its step and random streams.)
        resume = existing is not None
    if existing is not None and not resume:
        raise ValueError(f"out={str(out)!r} already holds a run (checkpoints/{ckpt.LAST}); "
                         "pass resume=True to continue it, or choose another directory")
    if resume and existing is None:
        raise ValueError(f"resume=True, but {ckpt.checkpoint_path(out)} does not exist: there is no run to "
                         "continue in out (drop resume to start one there)")
    if existing is not None:
        saved_step = ckpt.saved_step(existing, ckpt.checkpoint_path(out))
        if n_iters < saved_step:
            raise ValueError(f"n_iters {n_iters} is below the step {saved_step} of the checkpoint "
                             f"{ckpt.checkpoint_path(out)}; a resumed run continues to n_iters >= {saved_step}")
        start = ckpt.restore(solver, existing, data_gen)
    solver.attach_run_dir(out, writes=dist.is_main)  # state kept in files of the run (S-JKO's phases)
    solver.prepare(*(stream.data for stream in streams), n_iters=n_iters)
    dist.broadcast_state(solver)  # every process continues from rank 0's state
    log = MetricsLog(out / "metrics.jsonl" if (out is not None and dist.is_main) else None,
                     continue_after=start if existing is not None else None)

    def save(step: int) -> None:
        if out is None:
            return
        if not _finite_state(solver.state_dict()):  # every process holds this state: all of them stop
            _diverged(solver, out, step, {"model state": "NaN/Inf"})
        if dist.is_main:
            ckpt.save_checkpoint(out, solver, step, data_gen)

    autocast = (torch.autocast(solver.device.type, dtype=torch.bfloat16) if precision == "bf16"
                else contextlib.nullcontext())

    t0 = time.perf_counter()
    sums = MetricSums()
    completed, in_step = start, False
    bar = progress_bar(n_iters, start, progress and dist.is_main, desc=type(solver).__name__)

    def check(step: int) -> dict[str, float]:
        """The means of the steps since the last record (over the processes too): the one host read
        of the metrics, at log and checkpoint steps; stops on a non-finite step among them."""
        record, bad_step = sums.read(dist)
        if bad_step is not None:
            _diverged(solver, out, bad_step, {k: v for k, v in record.items() if not math.isfinite(v)})
        return record

    try:
        for stream in streams:
            if isinstance(stream, DatasetStream):  # a resumed run reads on from where step `start` left off
                stream.start(batch_size, start)
        with StopRequest() as stop:
            for step in range(start + 1, n_iters + 1):
                # a sampler's whole batch is checked (NaN/Inf in its draw), in every process alike
                batches = [stream(batch_size, f" in the batch of step {step}") for stream in streams]
                in_step = True
                with shard.using(dist.shard), autocast:
                    metrics = solver.train_step(*batches)
                completed, in_step = step, False
                sums.add(step, metrics)  # on the device: no host read
                # the processes agree on a stop request every step: a host-side all-reduce of one flag
                # (gloo, beside NCCL), no wait on the device; one process: its own flag
                agreed = dist.agree_stop(stop.requested)
                interrupted = False  # Ctrl-C (KeyboardInterrupt) inside a callback: this step is logged first
                for cb in callbacks:
                    try:
                        extra = cb(step, solver, LazyMetrics(metrics))
                    except KeyboardInterrupt:
                        interrupted = True
                        break
                    if extra:
                        sums.add_extra(extra)
                if interrupted and dist.world_size > 1:  # a request like a signal's: agreed after the next step
                    stop.requested, interrupted = True, False
                last = step == n_iters
                if step % log_every == 0 or last or (step % checkpoint_every == 0 and not last):
                    record = check(step)
                    if step % log_every == 0 or last:
                        log.write({"step": step, "time": round(time.perf_counter() - t0, 3), **record})
                        bar.set_postfix({k: f"{v:.4g}" for k, v in list(record.items())[:3]}, refresh=False)
                        sums.reset()
                if step % checkpoint_every == 0 and not last:
                    save(step)
                bar.update(1)
                # Ctrl-C / SIGTERM arrived during this step: stop between steps (all processes after the
                # same step, as agreed above; one process sees its callbacks' signals too)
                if interrupted or agreed or (dist.world_size == 1 and stop.requested):
                    check(step)  # no checkpoint of a diverged state
                    raise KeyboardInterrupt
    except KeyboardInterrupt:
        if not in_step:  # between two steps the state is consistent: resume continues from here
            save(completed)
        raise
    finally:
        bar.close()
        for stream in streams:
            if isinstance(stream, DatasetStream):
                stream.close()
    solver.finish(*(stream.data for stream in streams))
    save(n_iters)
    if out is not None and dist.is_main and start < n_iters:
        solver.save(out / "model.pt")
    dist.barrier()  # the files are written when train returns, in every process
    return TrainResult(steps=n_iters, seconds=time.perf_counter() - t0, metrics=log.last, out=out,
                       resumed_from=start if existing is not None else None)


class StopRequest:
    """While active (in the main thread), the first SIGINT/SIGTERM only sets ``requested`` so the loop
    can stop between two steps and checkpoint; another one more than ``GRACE`` seconds later
    interrupts at once. (Ctrl-C under torchrun reaches each process twice, from the terminal and
    forwarded by torchrun: the second copy must not cut the checkpoint short.)"""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)
    GRACE = 2.0

    def __init__(self):
        self.requested = False
        self._first = 0.0
        self._previous: dict = {}

    def _handle(self, signum, frame):
        now = time.monotonic()
        if self.requested:
            if now - self._first > self.GRACE:
                raise KeyboardInterrupt
            return
        self.requested, self._first = True, now

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for sig in self.SIGNALS:
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc):
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        return False


def _diverged(solver: Any, out: Path | None, step: int, bad: dict[str, float]) -> None:
    what = ", ".join(f"{k}={v}" for k, v in bad.items())
    kept = ""
    existing = ckpt.load_checkpoint(out) if out is not None else None
    if existing is not None:
        good = ckpt.restore(solver, existing)
        kept = (f" The last good checkpoint (step {good}) is kept at {ckpt.checkpoint_path(out)} and was "
                "reloaded into the model.")
    hint = getattr(solver, "divergence_hint", "Try a smaller learning rate.")
    raise TrainingDiverged(f"training diverged at step {step}: {what}.{kept} {hint}")
