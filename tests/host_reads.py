"""Counting the host reads of tensor values: each one is a device sync on a GPU (the host waits for
the queue to drain), so a training step should make none. Used by tests/test_host_syncs.py and
benchmarks/host_syncs.py.

``HostReads`` is a ``torch.overrides.TorchFunctionMode``: it sees every Tensor method and torch
function called from Python, including ``Tensor.__bool__`` (``if t:``, ``while t.any():``),
``__float__``/``__int__``/``__index__``, ``item`` and ``tolist``, which patching ``torch.Tensor``
would miss when called from C. It counts, by the line of Python that made the call:

* reads of a value: ``item``, ``tolist``, ``__bool__``, ``__float__``, ``__int__``, ``__index__``,
  ``numpy``, ``cpu``, and functions that return a Python bool (``equal``, ``allclose``);
* ops whose output shape depends on the values, which read them on the host to size the output:
  ``nonzero``, ``argwhere``, ``masked_select``, ``unique``, ``bincount``, indexing with a boolean
  mask (``t[mask]``, ``t[mask] = v``), ``repeat_interleave`` with Tensor repeats.

A read made inside torch itself (e.g. Adam reading its step counter, a CPU tensor even for CUDA
parameters, so no device sync) is attributed to torch's own file and listed apart.
"""

from __future__ import annotations

import collections
import os
import sys
from typing import Any

import torch
from torch.overrides import TorchFunctionMode

VALUE_READS = {"item", "tolist", "__bool__", "__float__", "__int__", "__index__", "numpy", "cpu", "equal", "allclose"}
SHAPE_READS = {"nonzero", "argwhere", "masked_select", "unique", "unique_consecutive", "bincount"}
INDEXING = {"__getitem__", "__setitem__", "index_put", "index_put_"}

TORCH_DIR = os.path.dirname(torch.__file__) + os.sep
# torch's Python wrappers between a call site and the mode (skipped to find the caller)
WRAPPERS = tuple(os.path.join(TORCH_DIR, f) for f in ("overrides.py", "_tensor.py", "functional.py"))


def _has_bool_mask(index: Any) -> bool:
    items = index if isinstance(index, (tuple, list)) else (index,)
    return any(isinstance(i, torch.Tensor) and i.dtype in (torch.bool, torch.uint8) for i in items)


def _name(func: Any) -> str:
    return getattr(func, "__name__", str(func))


class HostReads(TorchFunctionMode):
    """Within ``with HostReads() as reads:``, ``reads.sites`` counts the host reads per
    (kind, file, line); ``reads.count(where)`` sums those made by code under ``where`` (a path part,
    e.g. ``"otgen"``) or, with ``where=None``, by code outside torch."""

    def __init__(self):
        super().__init__()
        self.sites: collections.Counter = collections.Counter()

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        name = _name(func)
        kind = None
        if name in VALUE_READS or name in SHAPE_READS:
            kind = name
        elif name in INDEXING and len(args) >= 2 and _has_bool_mask(args[1]):
            kind = f"bool-mask {name}"
        elif name == "repeat_interleave" and "output_size" not in kwargs:
            repeats = args[1] if len(args) > 1 else kwargs.get("repeats")
            if isinstance(repeats, torch.Tensor) and repeats.numel() > 1:
                kind = "repeat_interleave(Tensor)"
        if kind is not None:
            frame = sys._getframe(1)
            while frame is not None and frame.f_code.co_filename.startswith(WRAPPERS):
                frame = frame.f_back
            where = (frame.f_code.co_filename, frame.f_lineno) if frame is not None else ("?", 0)
            self.sites[(kind, *where)] += 1
        return func(*args, **kwargs)

    def count(self, where: str | None = "otgen") -> int:
        """Reads made by code in a file whose path contains ``/where/`` (None: any code outside torch)."""
        return sum(n for (_, path, _), n in self.sites.items() if self._matches(path, where))

    @staticmethod
    def _matches(path: str, where: str | None) -> bool:
        if where is None:
            return not path.startswith(TORCH_DIR)
        return f"{os.sep}{where}{os.sep}" in path

    def report(self, where: str | None = "otgen") -> str:
        """One line per call site: count, kind, file:line."""
        rows = sorted(((n, kind, path, line) for (kind, path, line), n in self.sites.items()
                       if self._matches(path, where)), key=lambda r: (r[2], r[3]))
        return "\n".join(f"{n:5d}  {kind:28s} {path}:{line}" for n, kind, path, line in rows)
