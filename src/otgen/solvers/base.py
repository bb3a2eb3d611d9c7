"""What every solver provides to the training loop and to users.

A solver owns its networks, optimisers and random generator. The loop in ``otgen.train`` calls:

    solver.check_data(source_shape, target_shape)   # before training: raise ValueError on a mismatch
    solver.prepare(source, target, n_iters)         # once, before the first step (e.g. persistent chains)
    metrics = solver.train_step(x, y)               # one update on batches x, y -> dict of floats
    solver.state_dict() / solver.load_state_dict()  # everything needed to resume exactly

A solver never parses configs, prints, or writes files other than through ``save``.
"""

from __future__ import annotations

import os
from typing import Any

import torch

from .. import io
from ..checks import check_number, derived_seed

FORMAT = "otgen-model-1"


def resolve_device(device: str | torch.device | None) -> torch.device:
    if device is None or device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        return torch.device(device)
    except (RuntimeError, TypeError) as e:
        raise ValueError(f"device must be 'cpu', 'cuda', 'cuda:N' or 'auto', got {device!r}") from e


class Solver:
    """Base class of the solvers. Subclasses set ``config`` (the constructor arguments, JSON-like)."""

    name = "solver"
    config: dict[str, Any]

    #: the advice printed when training diverges (NaN/Inf); each solver names its own remedies
    divergence_hint = "Try a smaller learning rate."

    def __init__(self, seed: int = 0, device: str | torch.device | None = "cpu"):
        check_number("seed", seed, low=0, integer=True)
        self.device = resolve_device(device)
        self.seed = seed
        self.generator = torch.Generator(device=self.device)  # training draws
        self.generator.manual_seed(derived_seed(seed, 1))
        self.sample_generator = torch.Generator(device=self.device)  # draws of sample()/transport()
        self.sample_generator.manual_seed(derived_seed(seed, 2))
        self.step = 0

    # -- the loop's interface ------------------------------------------------------------------
    def check_data(self, source_shape: tuple[int, ...], target_shape: tuple[int, ...]) -> None:
        raise NotImplementedError

    def prepare(self, source: Any, target: Any, n_iters: int) -> None:
        """Called once by the loop before the first step with the data and the total step count."""

    def train_step(self, x: torch.Tensor, y: torch.Tensor) -> dict[str, float]:
        raise NotImplementedError

    def state_dict(self) -> dict[str, Any]:
        raise NotImplementedError

    def load_state_dict(self, state: dict[str, Any]) -> None:
        raise NotImplementedError

    def _load_generators(self, state: dict[str, Any]) -> None:
        """Restore the random streams; a state saved on another kind of device cannot be, and the
        streams then restart from the seed (the weights are what matter when moving a model)."""
        for gen, key, stream in ((self.generator, "generator", 1), (self.sample_generator, "sample_generator", 2)):
            try:
                gen.set_state(state[key].cpu() if self.device.type == "cpu" else state[key])
            except (RuntimeError, KeyError):
                gen.manual_seed(derived_seed(self.seed, stream))

    # -- persistence ---------------------------------------------------------------------------
    def saveable_config(self) -> dict[str, Any]:
        """The config as stored in a file: objects that cannot be stored become ``"custom"``."""
        return dict(self.config)

    def to_checkpoint(self) -> dict[str, Any]:
        return {"format": FORMAT, "solver": self.name, "config": self.saveable_config(),
                "state": self.state_dict()}

    def save(self, path: str | os.PathLike) -> None:
        """Write the model (config, weights, optimiser, buffers, RNG) to ``path`` atomically."""
        io.save_torch(self.to_checkpoint(), path)
