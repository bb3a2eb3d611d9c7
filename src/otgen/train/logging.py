"""Metrics log (one JSON object per logged step) and the progress bar."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from .. import io


class MetricsLog:
    """Appends ``{"step": k, "time": seconds, **metrics}`` lines to ``metrics.jsonl`` (if a path is given)
    and keeps the last record in memory."""

    def __init__(self, path: Path | None, truncate_after: int | None = None):
        self.path = path
        self.last: dict[str, Any] = {}
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            if truncate_after is not None and path.exists():
                # on resume drop records written after the checkpoint we continue from (and a line
                # cut short by a kill)
                keep = [ln for ln in path.read_text().splitlines() if _step(ln) is not None
                        and _step(ln) <= truncate_after]
                io.write_text(path, "".join(k + "\n" for k in keep))

    def write(self, record: dict[str, Any]) -> None:
        self.last = record
        if self.path is not None:
            clean = {k: (v if not isinstance(v, float) or math.isfinite(v) else str(v)) for k, v in record.items()}
            with open(self.path, "a") as f:
                f.write(json.dumps(clean) + "\n")


def _step(line: str) -> int | None:
    try:
        return int(json.loads(line)["step"])
    except (ValueError, KeyError, TypeError):
        return None


def progress_bar(total: int, initial: int, enabled: bool, desc: str):
    """A tqdm bar on a terminal (stderr a TTY) when ``enabled``; silent otherwise."""
    return tqdm(total=total, initial=initial, desc=desc, disable=not (enabled and sys.stderr.isatty()),
                dynamic_ncols=True, leave=True)
