"""Process-group context for the training loop.

Single-process today; the loop only ever asks ``is_main`` (who writes files and shows progress),
``rank``/``world_size`` (seeding and batch split) and ``all_reduce_mean`` (logged metrics), so a
``torch.distributed`` (DDP, ``torchrun``) context can replace this one without touching the loop.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SingleProcess:
    rank: int = 0
    world_size: int = 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def all_reduce_mean(self, metrics: dict[str, float]) -> dict[str, float]:
        return metrics

    def barrier(self) -> None:
        pass
