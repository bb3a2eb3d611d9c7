"""Run-directory checkpoints: the model plus the loop's own state, written atomically.

``checkpoints/last.pt`` = {"model": solver checkpoint (loadable by ``otgen.load``), "loop": {"step",
"data_generator", "torch_rng"[, "cuda_rng"]}}: with the solver's own streams in its state, every
random stream of the run. It is replaced (never overwritten in place) every ``checkpoint_every``
steps and at the end, so the file on disk is always the last complete, finite state.

It is written straight into its temporary file (``io.save_torch``: no copy of it in memory) and read
once per process when a run resumes: ``load_checkpoint`` verifies its checksums on a memory map and
torch maps the tensors from the same pages (``mmap``); ``otgen train --resume`` checks the
checkpoint and the loop restores it from that one read. State that grows with the run (S-JKO's
phases) is not in it but in files of the run directory that it lists (``Solver.attach_run_dir``).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from .. import io
from ..solvers.base import LEGACY_FORMATS

LAST = "last.pt"


def checkpoint_path(out: Path) -> Path:
    return Path(out) / "checkpoints" / LAST


def save_checkpoint(out: Path, solver: Any, step: int, data_generator: torch.Generator) -> Path:
    loop = {"step": step, "data_generator": data_generator.get_state(), "torch_rng": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        loop["cuda_rng"] = torch.cuda.get_rng_state_all()
    global _last_read
    _last_read = None
    path = io.save_torch({"model": solver.to_checkpoint(), "loop": loop}, checkpoint_path(out))
    solver.checkpoint_saved()  # what no checkpoint lists any more may go (S-JKO's phases beyond keep_phases)
    return path


def state_tensors(state: Any) -> list[torch.Tensor]:
    """Every Tensor of a nested state (dicts, lists, tuples), in order."""
    if isinstance(state, torch.Tensor):
        return [state]
    if isinstance(state, dict):
        return [t for v in state.values() for t in state_tensors(v)]
    if isinstance(state, (list, tuple)):
        return [t for v in state for t in state_tensors(v)]
    return []


def saved_step(checkpoint: Any, path: Path | str = LAST) -> int:
    """The step a loaded run checkpoint ``{"model": ..., "loop": {"step": k, ...}}`` was written at;
    ValueError naming ``path`` for anything else (a model file, a foreign dict)."""
    if isinstance(checkpoint, dict) and isinstance(checkpoint.get("model"), dict) \
            and isinstance(checkpoint.get("loop"), dict):
        step = checkpoint["loop"].get("step")
        if isinstance(step, int) and not isinstance(step, bool) and step >= 0:
            return step
    what = (f"a dict with keys {sorted(map(str, checkpoint))[:8]}" if isinstance(checkpoint, dict)
            else f"a {type(checkpoint).__name__}")
    raise ValueError(f"{path} is not an otgen run checkpoint (model and loop state): it holds {what}")


#: the checkpoint read last, handed once to the next ``load_checkpoint`` of the same unchanged file (the
#: check of ``otgen train --resume`` and the loop's restore share one read); dropped when a run restores
#: it (the solver's optimiser state may then share its tensors and change them) or writes a checkpoint
_last_read: tuple[tuple, dict[str, Any]] | None = None


def _identity(path: Path) -> tuple:
    st = path.stat()
    return os.path.abspath(path), st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns


def load_checkpoint(out: Path) -> dict[str, Any] | None:
    """The checkpoint in run directory ``out``, or None if there is none: read once, memory-mapped
    (``io.load_torch``). The next call for the same unchanged file (same inode, size and time) gets
    the object this one read, unless a run has restored it in between; any later call reads the file
    again."""
    global _last_read
    path = checkpoint_path(out)
    if not path.is_file():
        return None
    key = _identity(path)
    if _last_read is not None and _last_read[0] == key:
        checkpoint, _last_read = _last_read[1], None
        return checkpoint
    checkpoint = io.load_torch(path, mmap=True)
    _last_read = (key, checkpoint)
    return checkpoint


def restore(solver: Any, checkpoint: dict[str, Any], data_generator: torch.Generator | None = None) -> int:
    """Load ``checkpoint`` into ``solver`` (and, with ``data_generator``, the loop's RNGs: a run continues
    from it); returns the step to continue from."""
    global _last_read
    if data_generator is not None:
        _last_read = None  # the run trains on from here: the solver's state may share the checkpoint's tensors
    model = checkpoint["model"]
    if model.get("solver") != solver.name:
        raise ValueError(f"the checkpoint holds a {model.get('solver')} model, not {solver.name}")
    if model.get("format") in LEGACY_FORMATS:
        # a checkpoint of the first format stores flat options, and a few defaults have changed since
        # (EgNOT's sampler: Options.EARLIER_DEFAULTS): where the file relies on one, continue as it was
        # trained, not with today's default
        options = type(solver).Options
        flat = {k: v for k, v in model.get("config", {}).items() if v != "custom"}
        missing = {k: v for k, v in getattr(options, "EARLIER_DEFAULTS", {}).items() if k not in flat}
        changed: list[str] = []
        if missing:
            touched = set(options.from_legacy(dict(missing), saved=False))  # the options they belong to
            stored = options.from_config(options.from_legacy(flat, saved=True)).to_config()
            now = solver.config
            changed = sorted(k for k in touched if now.get(k) != stored.get(k))
        if changed:
            raise ValueError("the checkpoint (first file format) was trained with "
                             + ", ".join(f"{k}={stored[k]!r}" for k in changed) + "; this model has "
                             + ", ".join(f"{k}={now.get(k)!r}" for k in changed)
                             + ". Pass the checkpoint's values to continue it")
    solver.load_state_dict(model["state"])
    loop = checkpoint["loop"]
    if data_generator is not None:
        data_generator.set_state(loop["data_generator"])
        torch.set_rng_state(loop["torch_rng"])
        if "cuda_rng" in loop and torch.cuda.is_available() and len(loop["cuda_rng"]) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(loop["cuda_rng"])
    return int(loop["step"])
