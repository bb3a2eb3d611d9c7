"""Atomic, safe reading and writing of files (checkpoints, arrays, configs).

Writes go to a temporary file in the destination folder, are flushed to disk and then renamed over
the destination (``os.replace`` is atomic on POSIX and Windows), so a crash or Ctrl-C never leaves a
half-written file where a good one stood. Reads of ``.pt`` files use ``torch.load(weights_only=True)``:
tensors, numbers, strings, lists and dicts only, no pickled code.
"""

from __future__ import annotations

import io
import os
import tempfile
from pathlib import Path
from typing import Any, Callable

import torch


def atomic_write(path: str | os.PathLike, write: Callable[[Any], None], binary: bool = True) -> Path:
    """Call ``write(fileobj)`` on a temporary file, fsync it and rename it to ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb" if binary else "w") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    return path


def save_torch(obj: Any, path: str | os.PathLike) -> Path:
    """``torch.save`` ``obj`` to ``path`` atomically. ``obj`` must be loadable with weights_only."""
    buf = io.BytesIO()
    torch.save(obj, buf)
    data = buf.getvalue()
    return atomic_write(path, lambda f: f.write(data))


def load_torch(path: str | os.PathLike, map_location: Any = "cpu") -> Any:
    """Load a file written by ``save_torch`` with ``weights_only=True`` (no code is unpickled)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no such file: {path}")
    return torch.load(path, map_location=map_location, weights_only=True)


def write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` to ``path`` atomically (UTF-8)."""
    data = text.encode("utf-8")
    return atomic_write(path, lambda f: f.write(data))
