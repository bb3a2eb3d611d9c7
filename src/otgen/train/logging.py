"""Metrics log (one JSON object per logged step) and the progress bar."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from .. import io


SUPERSEDED = "metrics.superseded.jsonl"


class MetricsLog:
    """Appends ``{"step": k, "time": seconds, **metrics}`` lines to ``metrics.jsonl`` (if a path is given)
    and keeps the last record in memory.

    ``continue_after=k`` (a run resumed from its checkpoint at step k) keeps the records up to step k;
    records of later steps (written before a crash, after the last checkpoint: those steps are run
    again) move to ``metrics.superseded.jsonl`` beside it, as does the whole log of a run that left no
    checkpoint when a new one starts (``continue_after=None``). Nothing logged is deleted.
    """

    def __init__(self, path: Path | None, continue_after: int | None = None):
        self.path = path
        self.last: dict[str, Any] = {}
        if path is not None and path.exists():
            lines = [ln for ln in path.read_text().splitlines() if ln.strip()]
            kept = [continue_after is not None and _step(ln) is not None and _step(ln) <= continue_after
                    for ln in lines]
            keep = [ln for ln, k in zip(lines, kept) if k]
            moved = [ln for ln, k in zip(lines, kept) if not k]
            if moved:
                side = path.with_name(SUPERSEDED)
                old = side.read_text() if side.exists() else ""
                io.write_text(side, old + "".join(m + "\n" for m in moved))
                io.write_text(path, "".join(k + "\n" for k in keep))

    def write(self, record: dict[str, Any]) -> None:
        self.last = record
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            clean = {k: (v if not isinstance(v, float) or math.isfinite(v) else str(v)) for k, v in record.items()}
            try:
                with open(self.path, "a") as f:
                    f.write(json.dumps(clean) + "\n")
            except OSError as e:  # a full disk or a lost permission, named with the file
                raise OSError(e.errno, f"cannot append to {self.path}: {e.strerror}") from e


def _step(line: str) -> int | None:
    try:
        return int(json.loads(line)["step"])
    except (ValueError, KeyError, TypeError):
        return None


def progress_bar(total: int, initial: int, enabled: bool, desc: str):
    """A tqdm bar on a terminal (stderr a TTY) when ``enabled``; silent otherwise."""
    return tqdm(total=total, initial=initial, desc=desc, disable=not (enabled and sys.stderr.isatty()),
                dynamic_ncols=True, leave=True)
