"""The one training loop, shared by every solver.

It owns iteration, batches, the progress bar, ``metrics.jsonl``, checkpoints, resume, Ctrl-C and the
NaN/Inf guard; the solver owns its networks and its ``train_step``. Everything is validated before
the first step: argument ranges, data shapes (against the solver) and finiteness of the data.
"""

from __future__ import annotations

import math
import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import torch

from ..checks import check_number, derived_seed
from . import checkpoint as ckpt
from .data import BatchStream, check_finite
from .distributed import SingleProcess
from .logging import MetricsLog, progress_bar

Callback = Callable[[int, Any, dict], "dict | None"]


class TrainingDiverged(RuntimeError):
    """Raised when a step produces NaN/Inf; the last good checkpoint is kept (and reloaded)."""


@dataclass
class TrainResult:
    steps: int                      # the step count reached
    seconds: float                  # wall time of this call
    metrics: dict[str, float] = field(default_factory=dict)  # the last logged record
    out: Path | None = None


def _finite_state(obj: Any) -> bool:
    if isinstance(obj, torch.Tensor):
        return not obj.is_floating_point() or bool(torch.isfinite(obj).all())
    if isinstance(obj, dict):
        return all(_finite_state(v) for v in obj.values())
    if isinstance(obj, (list, tuple)):
        return all(_finite_state(v) for v in obj)
    return True


def train(solver: Any, data: Sequence[Any], n_iters: int, batch_size: int, *, seed: int = 0,
          out: str | Path | None = None, resume: bool = False, progress: bool = True, log_every: int = 50,
          checkpoint_every: int = 500, callbacks: Iterable[Callback] = (), dist: Any = None) -> TrainResult:
    """Train ``solver`` until it has taken ``n_iters`` steps in all (counting resumed ones and those of
    an earlier ``fit`` of the same model object).

    Args:
        data: one entry per side the solver names in ``solver.data_sides`` (e.g. source and target;
            a solver that samples its own prior needs one): Tensors of samples (n, *shape),
            ``Sampler``s or callables ``n -> Tensor``.
        n_iters: total number of steps >= 1. batch_size: samples of each side per step >= 1.
        seed: seeds the loop's data draws (the solver has its own seed).
        out: run directory for ``metrics.jsonl``, ``checkpoints/last.pt`` and ``model.pt``; None: no files.
        resume: continue from ``out``'s checkpoint. Without it, a directory that already holds a
            checkpoint is refused (nothing saved is overwritten).
        progress: a progress bar when stderr is a terminal.
        log_every, checkpoint_every: in steps.
        callbacks: ``cb(step, solver, metrics) -> dict | None`` after each step; returned dicts are logged.

    On NaN/Inf the run stops with ``TrainingDiverged``; with ``out`` the last good checkpoint is kept
    and reloaded into the model, without ``out`` the model is left as it diverged.
    """
    check_number("n_iters", n_iters, low=1, integer=True)
    check_number("batch_size", batch_size, low=1, integer=True)
    check_number("seed", seed, low=0, integer=True)
    check_number("log_every", log_every, low=1, integer=True)
    check_number("checkpoint_every", checkpoint_every, low=1, integer=True)
    callbacks = list(callbacks)
    for cb in callbacks:
        if not callable(cb):
            raise ValueError(f"callbacks must be callables cb(step, solver, metrics), got {type(cb).__name__}")
    sides = tuple(solver.data_sides)
    if len(data) != len(sides):
        raise ValueError(f"{type(solver).__name__} trains on {len(sides)} data set(s) ({', '.join(sides)}), "
                         f"got {len(data)}")
    dist = dist or SingleProcess()
    out = Path(out) if out is not None else None

    data_gen = torch.Generator().manual_seed(derived_seed(seed, 3, dist.rank))
    streams = [BatchStream(d, side, data_gen) for d, side in zip(data, sides)]
    probes = [stream(min(batch_size, 2)) for stream in streams]
    for probe, side in zip(probes, sides):
        check_finite(probe, side, " in the first batch")
    solver.check_data(*(tuple(p.shape[1:]) for p in probes))

    start = solver.step  # a model fitted before in memory continues; a checkpoint overrides below
    existing = ckpt.load_checkpoint(out) if out is not None else None
    if existing is not None and not resume:
        raise ValueError(f"out={str(out)!r} already holds a run (checkpoints/{ckpt.LAST}); "
                         "pass resume=True to continue it, or choose another directory")
    if existing is not None:
        start = ckpt.restore(solver, existing, data_gen)
    solver.prepare(*(stream.data for stream in streams), n_iters=n_iters)
    log = MetricsLog(out / "metrics.jsonl" if (out is not None and dist.is_main) else None,
                     truncate_after=start if existing is not None else None)
    if out is not None and existing is None and dist.is_main and log.path.exists():
        log.path.unlink()  # a stale log without a checkpoint belongs to no run we can continue

    def save(step: int) -> None:
        if out is None or not dist.is_main:
            return
        if not _finite_state(solver.state_dict()):
            _diverged(solver, out, step, {"model state": "NaN/Inf"})
        ckpt.save_checkpoint(out, solver, step, data_gen)

    t0 = time.perf_counter()
    sums: dict[str, float] = {}
    count = 0
    completed, in_step = start, False
    bar = progress_bar(n_iters, start, progress and dist.is_main, desc=type(solver).__name__)
    try:
        with StopRequest() as stop:
            for step in range(start + 1, n_iters + 1):
                batches = [stream(batch_size) for stream in streams]
                for batch, side in zip(batches, sides):
                    check_finite(batch, side, f" in the batch of step {step}")
                in_step = True
                metrics = solver.train_step(*batches)
                in_step = False
                bad = {k: v for k, v in metrics.items() if not math.isfinite(v)}
                if bad:
                    _diverged(solver, out, step, bad)
                completed = step
                for cb in callbacks:
                    extra = cb(step, solver, metrics)
                    if extra:
                        metrics = {**metrics, **extra}
                for k, v in metrics.items():
                    sums[k] = sums.get(k, 0.0) + v
                count += 1
                if step % log_every == 0 or step == n_iters:
                    record = dist.all_reduce_mean({k: v / count for k, v in sums.items()})
                    log.write({"step": step, "time": round(time.perf_counter() - t0, 3), **record})
                    bar.set_postfix({k: f"{v:.4g}" for k, v in list(record.items())[:3]}, refresh=False)
                    sums, count = {}, 0
                if step % checkpoint_every == 0 and step != n_iters:
                    save(step)
                bar.update(1)
                if stop.requested:  # Ctrl-C / SIGTERM arrived during this step: stop between steps
                    raise KeyboardInterrupt
    except KeyboardInterrupt:
        if not in_step:  # between two steps the state is consistent: resume continues from here
            save(completed)
        raise
    finally:
        bar.close()
    save(n_iters)
    if out is not None and dist.is_main and start < n_iters:
        solver.save(out / "model.pt")
    return TrainResult(steps=n_iters, seconds=time.perf_counter() - t0, metrics=log.last, out=out)


class StopRequest:
    """While active (in the main thread), the first SIGINT/SIGTERM only sets ``requested`` so the loop
    can stop between two steps and checkpoint; a second one interrupts at once."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self):
        self.requested = False
        self._previous: dict = {}

    def _handle(self, signum, frame):
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

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
