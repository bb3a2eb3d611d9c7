"""The public model classes (solver + ``fit``), the one solver registry, and ``load``.

A solver in ``otgen.solvers`` knows its losses and update step; ``otgen.train`` knows how to loop.
This module, above both, joins them into the classes users call, so that no lower layer needs to
import the training loop. ``SOLVERS`` is the registry every face uses: ``otgen train`` (a config's
``model.name``), ``otgen bench`` (``--solver``) and ``otgen.load`` (a model file's ``solver``).
"""

from __future__ import annotations

import os
from typing import Any

import torch

from . import io
from .schema import did_you_mean
from .solvers.base import FORMAT
from .solvers.egnot import EgNOTSolver
from .solvers.sjko import SJKOSolver
from .solvers.uotm import UOTMSolver
from .solvers.wae import WAESolver
from .train import Trainable

SOLVERS: dict[str, type] = {}


def register(cls: type) -> type:
    """Add a public model class to the registry under its solver's ``name`` (looked up case-insensitively)."""
    key = cls.name.lower()
    if key in SOLVERS:
        raise ValueError(f"a solver named {cls.name!r} is registered already")
    SOLVERS[key] = cls
    return cls


def solver_names() -> list[str]:
    """The registered solvers' names, as configs and model files spell them."""
    return sorted(cls.name for cls in SOLVERS.values())


def get_solver(name: str) -> type:
    """The public class of solver ``name`` ("EgNOT", "uotm", ...); ValueError with the names otherwise."""
    cls = SOLVERS.get(str(name).lower())
    if cls is None:
        raise ValueError(f"unknown model {name!r}{did_you_mean(str(name), solver_names())}; "
                         f"known models: {solver_names()}")
    return cls


@register
class EgNOT(Trainable, EgNOTSolver):
    __doc__ = EgNOTSolver.__doc__


@register
class UOTM(Trainable, UOTMSolver):
    __doc__ = UOTMSolver.__doc__


@register
class SJKO(Trainable, SJKOSolver):
    __doc__ = SJKOSolver.__doc__


@register
class WAE(Trainable, WAESolver):
    __doc__ = WAESolver.__doc__


def from_config(name: str, config: dict[str, Any], **overrides: Any):
    """Build model ``name`` from a config dict (its schema checks every key and value first)."""
    cls = get_solver(name)
    cls.schema.check(config)
    cls.schema.check_names(overrides)
    return cls(**{**config, **overrides})


def load(path: str | os.PathLike, **overrides: Any):
    """Load a model saved by ``model.save(path)`` or a run's ``checkpoints/last.pt`` / ``model.pt``.

    Uses ``torch.load(weights_only=True)``: no code is unpickled. Networks given by name (``"mlp"``,
    ``{"name": "mlp", ...}``) are rebuilt from the stored config; arguments that could not be stored
    (a ``cost`` function or a network module of your own, marked "custom") must be passed again as
    ``overrides``; ``device=`` moves the model. Files written by otgen 0.1 load as they are.
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
