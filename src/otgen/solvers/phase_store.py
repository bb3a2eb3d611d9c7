"""Where S-JKO keeps the weights of its finished phases T_0, T_1, ...: in memory, or one file per phase
in the ``phases/`` folder of a run directory, so that a run's checkpoints stay the same size however
many phases it has trained.

A store holds the phases ``first .. trained − 1`` (``keep``: at most that many of the newest; None: all)
and says so in ``state()``, which the solver puts into its state dict:

- :class:`MemoryPhases` (no run directory): ``{"phase_states": [the weights of phase first, ...],
  "phases_trained": trained}``: the format of otgen before phase files, which had no
  ``phases_trained`` (every phase was kept).
- :class:`FilePhases` (a run directory): ``{"phase_files": {"folder": the folder's absolute path,
  "trained": trained, "names": ["phase_003.pt", ...], "bytes": [size or None, ...]}}``: a few hundred
  bytes, whatever the phases weigh. Each file ``phase_007.pt`` = ``{"format": "otgen-phase-1",
  "phase": 7, "state": the generator's state dict}`` is written once, atomically (``io.save_torch``),
  by the process that ``writes`` (rank 0; the others only list it), and read with ``weights_only``,
  memory-mapped (``io.load_torch``), when a phase is asked for. A phase that falls out of ``keep``
  is removed from the list at once; its file is deleted by ``prune``, which the solver calls once a
  checkpoint that no longer lists it is on disk (an earlier checkpoint may still need it to resume).

Files are looked for in ``folders`` in order: the run directory's ``phases/`` first (the run may have
moved), then the folder the state names.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any, Sequence

import torch

from .. import io

PHASE_FORMAT = "otgen-phase-1"
FOLDER = "phases"

State = dict[str, torch.Tensor]


def phase_name(k: int) -> str:
    """The file name of phase ``k``: ``phase_007.pt`` (wider past 999)."""
    return f"phase_{k:03d}.pt"


class MemoryPhases:
    """Phases held in memory (a model without a run directory): O(kept phases) memory."""

    def __init__(self, keep: int | None, states: Sequence[State] = (), trained: int | None = None):
        self.keep = keep
        self.states = [dict(s) for s in states]
        self.trained = len(self.states) if trained is None else int(trained)
        if not 0 <= len(self.states) <= self.trained:
            raise ValueError(f"phases_trained ({self.trained}) must be at least the number of phase weights "
                             f"stored ({len(self.states)})")
        self._trim()

    @property
    def first(self) -> int:
        """The oldest phase held."""
        return self.trained - len(self.states)

    def add(self, state: State) -> None:
        """Hold a copy of ``state`` as phase ``trained``."""
        self.states.append({k: v.detach().clone() for k, v in state.items()})
        self.trained += 1
        self._trim()

    def _trim(self) -> None:
        if self.keep is not None and len(self.states) > self.keep:
            del self.states[:len(self.states) - self.keep]

    def get(self, k: int) -> State:
        """The weights of kept phase ``k`` (``first <= k < trained``)."""
        return self.states[k - self.first]

    def state(self) -> dict[str, Any]:
        return {"phase_states": list(self.states), "phases_trained": self.trained}

    def prune(self) -> None:
        """Nothing to delete: dropped phases are gone from memory already."""


class FilePhases:
    """Phases in files, one per phase, in ``folders[0]`` (a run's ``phases/``); O(1) memory.

    ``writes``: this process writes the files of new phases (and deletes those ``prune`` lets go);
    otherwise another process of the same run does (rank 0), or nobody (a model read from a run), and
    this one only lists them."""

    def __init__(self, keep: int | None, folders: Sequence[Path], writes: bool, trained: int = 0,
                 names: Sequence[str] = (), sizes: Sequence[int | None] | None = None):
        if not folders:
            raise ValueError("a FilePhases store needs a folder")
        self.keep, self.writes = keep, bool(writes)
        self.folders = _unique([Path(f) for f in folders])
        self.trained = int(trained)
        self.names = list(names)
        self.sizes = list(sizes) if sizes is not None else [None] * len(self.names)
        if len(self.sizes) != len(self.names) or len(self.names) > self.trained:
            raise ValueError(f"a phase file list of {len(self.names)} names and {len(self.sizes)} sizes does not "
                             f"fit {self.trained} trained phases")
        self._pruned_below = 0  # files of phases below this were deleted (or checked absent) already
        self._trim()

    @property
    def folder(self) -> Path:
        """Where this store writes (and first looks)."""
        return self.folders[0]

    @property
    def first(self) -> int:
        return self.trained - len(self.names)

    # -- the state ----------------------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        """The list of phase files, with the folder that holds them (absolute: a file that lists them
        may be saved anywhere): the first of ``folders`` that holds the newest one, else ``folder``."""
        home = self.folder
        if self.names and not self.writes:
            home = next((f for f in self.folders if (f / self.names[-1]).is_file()), home)
        return {"phase_files": {"folder": os.fspath(home.absolute()), "trained": self.trained,
                                "names": list(self.names), "bytes": list(self.sizes)}}

    @classmethod
    def from_state(cls, manifest: Any, keep: int | None, folders: Sequence[Path], writes: bool) -> "FilePhases":
        """The store a state's ``phase_files`` describes; its folder is looked in after ``folders``."""
        if not isinstance(manifest, dict) or not {"folder", "trained", "names"} <= set(manifest):
            raise ValueError(f"phase_files must be a dict with folder, trained and names, got {manifest!r:.200}")
        return cls(keep, [*folders, Path(manifest["folder"])], writes, manifest["trained"], manifest["names"],
                   manifest.get("bytes"))

    # -- phases -------------------------------------------------------------------------------------
    def add(self, state: State) -> None:
        """Phase ``trained``: written to its file by the process that writes, listed by every one."""
        name = phase_name(self.trained)
        self.names.append(name)
        self.sizes.append(self._write(self.trained, state) if self.writes else None)
        self.trained += 1
        self._trim()

    def _write(self, k: int, state: State) -> int:
        path = io.save_torch({"format": PHASE_FORMAT, "phase": k, "state": state}, self.folder / phase_name(k))
        return path.stat().st_size

    def _trim(self) -> None:
        if self.keep is not None and len(self.names) > self.keep:
            drop = len(self.names) - self.keep
            del self.names[:drop], self.sizes[:drop]

    def path(self, k: int) -> Path:
        """The file of kept phase ``k``: the first folder that holds it; ValueError naming where it was
        looked for if none does."""
        name = self.names[k - self.first]
        for folder in self.folders:
            if (folder / name).is_file():
                return folder / name
        where = " or ".join(str(f) for f in self.folders)
        raise ValueError(f"phase {k}'s weights are in the file {name}, which is in none of {where}: copy the "
                         f"run's {FOLDER}/ folder beside its model.pt (or its checkpoints/ folder)")

    def get(self, k: int) -> State:
        """The weights of kept phase ``k``, read (memory-mapped) from its file; ValueError naming the file
        if it is missing, corrupt, another phase's or not the size the state lists."""
        path = self.path(k)
        size = self.sizes[k - self.first]
        if size is not None and path.stat().st_size != size:
            raise ValueError(f"{path} has {path.stat().st_size} bytes, but the model lists {size} for phase {k}: "
                             "not the file this run wrote (replaced, or cut short)")
        blob = io.load_torch(path, mmap=True)
        if not (isinstance(blob, dict) and blob.get("format") == PHASE_FORMAT and blob.get("phase") == k
                and isinstance(blob.get("state"), dict)):
            what = (f"phase {blob.get('phase')!r} of format {blob.get('format')!r}" if isinstance(blob, dict)
                    else f"a {type(blob).__name__}")
            raise ValueError(f"{path} is not the weights of S-JKO phase {k} ({PHASE_FORMAT}): it holds {what}")
        return blob["state"]

    # -- moving and deleting ------------------------------------------------------------------------
    def adopt(self, other: "MemoryPhases | FilePhases") -> None:
        """Take over the phases of ``other``: the process that writes puts each kept phase into this
        store's folder unless its file is there already (a run resumed where it was moved to); the
        others only list them (and look in ``other``'s folders too)."""
        self.trained = other.trained
        kept = range(other.first, other.trained)
        self.names = [phase_name(k) for k in kept]
        self.sizes = [other.sizes[i] if isinstance(other, FilePhases) else None for i in range(len(kept))]
        if isinstance(other, FilePhases):
            self.folders = _unique([*self.folders, *other.folders])
        if self.writes:
            for i, k in enumerate(kept):
                target = self.folder / self.names[i]
                if isinstance(other, MemoryPhases):
                    self.sizes[i] = self._write(k, other.get(k))
                elif not (target.is_file() and self.sizes[i] in (None, target.stat().st_size)):
                    _copy(other.path(k), target)
                    self.sizes[i] = target.stat().st_size
        self._trim()

    def stop_writing(self, look_in: Sequence[Path] = ()) -> None:
        """Write (and delete) nothing from now on; look for files in ``look_in`` first."""
        self.writes = False
        self.folders = _unique([*map(Path, look_in), *self.folders])

    def prune(self) -> None:
        """Delete the files of phases older than the kept ones (the process that writes; in this store's
        own folder only). Called once a checkpoint that no longer lists them is on disk."""
        if not self.writes:
            return
        for k in range(self._pruned_below, self.first):
            (self.folder / phase_name(k)).unlink(missing_ok=True)
        self._pruned_below = max(self._pruned_below, self.first)

    def to_memory(self) -> MemoryPhases:
        """The same phases held in memory (each file read once, memory-mapped)."""
        return MemoryPhases(self.keep, [self.get(k) for k in range(self.first, self.trained)], self.trained)


def _unique(folders: list[Path]) -> list[Path]:
    """``folders`` without repeats of the same folder (by absolute path), in order."""
    seen, out = set(), []
    for f in folders:
        key = os.path.normpath(os.fspath(f.absolute()))
        if key not in seen:
            seen.add(key)
            out.append(f)
    return out


def _copy(source: Path, target: Path) -> None:
    """``source``'s bytes into ``target``, atomically, without reading the whole file into memory."""
    with open(source, "rb") as src:
        io.atomic_write(target, lambda f: shutil.copyfileobj(src, f, 1 << 20))
