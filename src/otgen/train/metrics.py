"""A run's step metrics between two log records, kept where ``train_step`` made them.

A solver's ``train_step`` returns ``{name: value}``: 0-d tensors on its device (or Python floats).
Reading a device tensor on the host waits for every kernel queued before it, so the loop reads them
only at log and checkpoint steps: ``MetricSums`` adds each step's values on the device, remembers
the first step whose values were not finite (a device scalar, no host read), and ``read`` returns the
means since the last record and that step in one transfer (one all-reduce over the processes).
Callbacks get a ``LazyMetrics``: its values are read (one transfer) only if the callback looks at them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, Iterator

import torch

_NONE = 2 ** 62  # "no non-finite step" in the min-reduction of the first bad step


class MetricSums:
    """Sums of the metrics of the steps since ``reset``: tensors on their device, floats on the host.

    A metric that appears in only some steps (a generator loss every n_critic steps) is divided by
    the number of steps all the same, as before: the logged value is its sum per step."""

    def __init__(self):
        self.reset()

    def reset(self) -> None:
        self.tensors: dict[str, torch.Tensor] = {}
        self.floats: dict[str, float] = {}
        self.extras: dict[str, float] = {}  # what callbacks returned: this process's own values
        self.count = 0
        self.first_bad: torch.Tensor | None = None  # device int64: the first non-finite step, or _NONE
        self.first_bad_host: int | None = None

    def add(self, step: int, metrics: Mapping[str, Any]) -> None:
        """Add one step's metrics: no host read of a tensor."""
        self.count += 1
        names, values = [], []
        for name, value in metrics.items():
            if isinstance(value, torch.Tensor):
                names.append(name)
                values.append(value.detach().reshape(()))
            else:
                value = float(value)
                self.floats[name] = self.floats.get(name, 0.0) + value
                if not math.isfinite(value) and self.first_bad_host is None:
                    self.first_bad_host = step
        if not values:
            return
        device = values[0].device
        stacked = torch.stack([v.to(device, torch.float64) for v in values])
        if self.first_bad is None:
            self.first_bad = torch.full((), _NONE, dtype=torch.int64, device=device)
        bad = torch.isfinite(stacked).all().logical_not_()
        # (a Python number, not a new tensor: a host-to-device copy would wait for the device)
        self.first_bad = torch.where(bad, self.first_bad.clamp(max=step), self.first_bad)
        for name, value in zip(names, stacked.unbind()):
            self.tensors[name] = self.tensors[name] + value if name in self.tensors else value

    def add_extra(self, extra: Mapping[str, Any]) -> None:
        """Add what a callback returned (host floats, this process's own, not averaged over processes)."""
        for name, value in extra.items():
            self.extras[name] = self.extras.get(name, 0.0) + float(value)

    def read(self, dist: Any) -> tuple[dict[str, float], int | None]:
        """(the mean per step of every metric since ``reset``, over the processes too; the first
        step whose metrics were not finite, in any process, or None). One host read and, in a
        K-process run, two all-reduces: every process gets the same numbers."""
        if self.count == 0:
            return {}, None
        names = [*self.tensors, *self.floats]
        device = self.first_bad.device if self.first_bad is not None else torch.device("cpu")
        parts = [*self.tensors.values()]
        if self.floats:
            parts += torch.tensor(list(self.floats.values()), dtype=torch.float64).to(device).unbind()
        sums = torch.stack(parts) if parts else torch.zeros(0, dtype=torch.float64, device=device)
        first = self.first_bad if self.first_bad is not None else torch.full((), _NONE, dtype=torch.int64)
        if self.first_bad_host is not None:
            first = first.clamp(max=self.first_bad_host)
        sums, first = dist.mean_over_processes(sums), dist.min_over_processes(first.to(device))
        values = torch.cat([sums, first.to(torch.float64).reshape(1)]).tolist()  # the one host read
        record = {name: v / self.count for name, v in zip(names, values)}
        record.update({name: v / self.count for name, v in self.extras.items()})
        bad = int(values[-1])
        return record, (bad if bad != _NONE else None)


class LazyMetrics(Mapping):
    """One step's metrics for a callback, read to host floats on first access (this process's own
    values: in a K-process run the logged records are the means over the processes)."""

    def __init__(self, metrics: Mapping[str, Any]):
        self._raw = metrics
        self._floats: dict[str, float] | None = None

    def _read(self) -> dict[str, float]:
        if self._floats is None:
            tensors = {k: v for k, v in self._raw.items() if isinstance(v, torch.Tensor)}
            values = []
            if tensors:
                device = next(iter(tensors.values())).device
                values = torch.stack([v.detach().reshape(()).to(device, torch.float64)
                                      for v in tensors.values()]).tolist()  # one read
            read = dict(zip(tensors, values))
            self._floats = {k: read[k] if k in read else float(v) for k, v in self._raw.items()}
        return self._floats

    def __getitem__(self, name: str) -> float:
        return self._read()[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._raw)

    def __len__(self) -> int:
        return len(self._raw)

    def __repr__(self) -> str:
        return f"LazyMetrics({self._read()!r})"
