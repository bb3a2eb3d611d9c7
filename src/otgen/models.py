"""The public model classes (solver + ``fit``) and ``load``.

A solver in ``otgen.solvers`` knows its losses and update step; ``otgen.train`` knows how to loop.
This module, above both, joins them into the classes users call, so that no lower layer needs to
import the training loop.
"""

from __future__ import annotations

import inspect
import os
from typing import Any

import torch

from . import io
from .solvers.base import FORMAT
from .solvers.egnot import EgNOTSolver
from .checks import check_number
from .solvers.sjko import SJKOSolver
from .solvers.uotm import UOTMSolver
from .train import Trainable


class EgNOT(Trainable, EgNOTSolver):
    __doc__ = EgNOTSolver.__doc__


class UOTM(Trainable, UOTMSolver):
    __doc__ = UOTMSolver.__doc__


class SJKO(Trainable, SJKOSolver):
    __doc__ = SJKOSolver.__doc__

    def fit(self, source: Any, target: Any, n_iters: int, batch_size: int = 256, **kwargs: Any):
        """Train all phases: ``n_iters`` counts the iterations of each phase (the run has
        ``n_iters · n_phases`` steps, or ``first_phase_iters + n_iters · (n_phases − 1)``;
        ``resume=True`` continues in the right phase). Other arguments as ``otgen.EgNOT.fit``."""
        check_number("n_iters", n_iters, low=1, integer=True)
        return Trainable.fit(self, source, target, self.run_steps(n_iters), batch_size, **kwargs)


MODELS: dict[str, type] = {"EgNOT": EgNOT, "UOTM": UOTM, "SJKO": SJKO}


def from_config(name: str, config: dict[str, Any], **overrides: Any):
    """Build model ``name`` from a config dict, rejecting unknown keys by name."""
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; known models: {sorted(MODELS)}")
    cls = MODELS[name]
    params = inspect.signature(cls.__init__).parameters
    unknown = sorted(set(config) - set(params) - {"self"})
    if unknown:
        raise ValueError(f"unknown {name} argument(s) {unknown}; accepted: {sorted(set(params) - {'self'})}")
    kwargs = {**config, **overrides}
    return cls(**kwargs)


def load(path: str | os.PathLike, **overrides: Any):
    """Load a model saved by ``model.save(path)`` or a run's ``checkpoints/last.pt`` / ``model.pt``.

    Uses ``torch.load(weights_only=True)``: no code is unpickled. Arguments that could not be stored
    (a custom ``cost`` or ``potential`` module, marked "custom") must be passed again as ``overrides``;
    ``device=`` moves the model.
    """
    blob = io.load_torch(path)
    if isinstance(blob, dict) and "model" in blob and "loop" in blob:
        blob = blob["model"]
    if not isinstance(blob, dict) or blob.get("format") != FORMAT:
        raise ValueError(f"{os.fspath(path)!r} is not an otgen model file (format {FORMAT})")
    config = dict(blob["config"])
    missing = [k for k, v in config.items() if v == "custom" and k not in overrides]
    if missing:
        raise ValueError(f"the model was saved with a custom {', '.join(missing)}; pass it again: "
                         f"otgen.load(path, {'=..., '.join(missing)}=...)")
    for k in [k for k, v in config.items() if v == "custom"]:
        config.pop(k)
    if "device" not in overrides and str(config.get("device", "cpu")).startswith("cuda") \
            and not torch.cuda.is_available():
        config["device"] = "cpu"  # trained on a GPU, loaded where there is none
    model = from_config(blob["solver"], config, **overrides)
    model.load_state_dict(blob["state"])
    return model
