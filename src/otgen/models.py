"""The public model classes (solver + ``fit``), the one solver registry, and ``load``.

A solver in ``otgen.solvers`` knows its losses and update step; ``otgen.train`` knows how to loop.
This module, above both, joins them into the classes users call, so that no lower layer needs to
import the training loop. ``SOLVERS`` is the registry every face uses: ``otgen train`` (a config's
``model.name``), ``otgen bench`` (``--solver``) and ``otgen.load`` (a model file's ``solver``).
"""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Any

import torch

from . import io
from .checks import check_number
from .costs import GeneratorCost, SquaredEuclidean
from .registry import Registry
from .solvers.base import FORMAT, LEGACY_FORMATS
from .solvers.egnot import EgNOTSolver
from .solvers.sjko import SJKOSolver
from .solvers.uotm import UOTMSolver
from .solvers.wae import WAESolver
from .train import Trainable

SOLVERS: Registry[type] = Registry("model")  # the one name rule of otgen.registry ("egnot" finds EgNOT)


def register(cls: type) -> type:
    """Add a public model class to the registry under its solver's ``name``; ValueError if taken."""
    return SOLVERS.add(cls.name, cls)


def solver_names() -> list[str]:
    """The registered solvers' names, as configs and model files spell them."""
    return sorted(SOLVERS.names())


def get_solver(name: str) -> type:
    """The public class of solver ``name`` ("EgNOT", "uotm", ...); ValueError with a "did you mean" and
    the names otherwise."""
    return SOLVERS.get(name)


@register
class EgNOT(Trainable, EgNOTSolver):
    __doc__ = EgNOTSolver.__doc__ + """
    Besides the costs above, ``cost={"name": "generator", "run": DIR}`` measures the cost through the
    frozen generator of a model otgen trained and saved in the run directory DIR (a WAE's decoder:
    ``latent_generator()``): c(x, z) = ½‖x − G(z)‖² (``scale``: another factor than ½). The spec is
    stored with the model, so ``otgen.load`` finds G again in DIR.
    """

    @functools.wraps(EgNOTSolver.__init__)  # the same signature (and schema) as the solver's
    def __init__(self, *args: Any, cost: Any = "sqeuclidean", **kwargs: Any):
        super().__init__(*args, cost=resolve_cost(cost), **kwargs)


@register
class UOTM(Trainable, UOTMSolver):
    __doc__ = UOTMSolver.__doc__


@register
class SJKO(Trainable, SJKOSolver):
    __doc__ = SJKOSolver.__doc__


@register
class WAE(Trainable, WAESolver):
    __doc__ = WAESolver.__doc__


def run_weights(run: str | os.PathLike) -> Path:
    """The weights of a run directory: ``model.pt`` when training finished, else ``checkpoints/last.pt``."""
    run = Path(run)
    weights = run / "model.pt"
    return weights if weights.is_file() else run / "checkpoints" / "last.pt"


GENERATOR_KEYS = ("name", "run", "scale", "config")


def is_generator_spec(cost: Any) -> bool:
    """Whether a cost spec names a generator run: a mapping with ``name: generator``."""
    return isinstance(cost, dict) and cost.get("name") == "generator"


def check_generator_spec(cost: dict) -> dict:
    """``{"name": "generator", "run": DIR[, "scale": s][, "config": CONFIG]}`` checked (before any work),
    with ``run`` (and ``config``) as strings and ``run`` made absolute, so that the spec stored with a
    model finds DIR from any working directory; ValueError naming the key otherwise."""
    extra = sorted(set(cost) - set(GENERATOR_KEYS))
    if extra or "run" not in cost:
        raise ValueError(f"a generator cost is {{name: generator, run: DIR[, scale: s][, config: CONFIG]}} "
                         f"(config: what `otgen train` trains into DIR first if DIR holds no model); "
                         f"got {cost!r}" + (f" (unknown keys {extra})" if extra else " (no run)"))
    spec = dict(cost)
    for key in ("run", "config"):
        if key in spec:
            if not isinstance(spec[key], (str, os.PathLike)) or not os.fspath(spec[key]):
                raise ValueError(f"cost.{key} must be a path, got {spec[key]!r}")
            spec[key] = os.fspath(spec[key])
    spec["run"] = os.fspath(Path(spec["run"]).resolve())
    if "scale" in spec:
        check_number("cost.scale", spec["scale"], low=0, low_open=True)
        spec["scale"] = float(spec["scale"])
    return spec


def resolve_cost(cost: Any) -> Any:
    """A cost spec ``{"name": "generator", "run": DIR[, "scale": s][, "config": CONFIG]}`` as the
    ``GeneratorCost`` c(x, z) = scale·‖x − G(z)‖² (scale ½ by default) of the generator saved in the *finished*
    run directory DIR (its ``model.pt``; ``config`` names what ``otgen train`` trains into DIR first
    when DIR holds none, unused here); every other cost as it is (``make_cost`` reads it)."""
    if not is_generator_spec(cost):
        return cost
    spec = check_generator_spec(cost)
    weights = Path(spec["run"]) / "model.pt"
    if not weights.is_file():
        partial = " (only checkpoints: the run did not finish; resume it)" if run_weights(spec["run"]).is_file() else ""
        raise ValueError(f"cost.run: {spec['run']!r} holds no trained model (no model.pt){partial}; train the "
                         f"generator first: `otgen train {spec.get('config', 'CONFIG')} --out {spec['run']}`, or name "
                         "its config as cost.config and `otgen train` does it")
    source = load(weights)
    generator = source.latent_generator()
    if generator is None:
        raise ValueError(f"cost.run: the {source.name} in {spec['run']!r} has no latent generator G(z) "
                         "(a WAE has: its decoder)")
    return GeneratorCost(generator, SquaredEuclidean(spec.get("scale", 0.5)), origin=spec)


def from_config(name: str, config: dict[str, Any], **overrides: Any):
    """Build model ``name`` from a config dict of its options (``cls.Options``: every key and value is
    checked first) and ``overrides`` of top-level options."""
    cls = get_solver(name)
    cls.Options.check_names(config)
    cls.Options.check_names(overrides)
    return cls(**{**config, **overrides})


def load(path: str | os.PathLike, **overrides: Any):
    """Load a model saved by ``model.save(path)`` or a run's ``checkpoints/last.pt`` / ``model.pt``.

    Uses ``torch.load(weights_only=True)``: no code is unpickled. Networks given by name (``"mlp"``,
    ``{"name": "mlp", ...}``) are rebuilt from the stored config; arguments that could not be stored
    (a ``cost`` function or a network module of your own, marked "custom") must be passed again as
    ``overrides``; ``device=`` moves the model. Files written by otgen 0.1 load as they are.
    An S-JKO model of a run lists its phases' files (``RUN/phases/``) instead of holding them: they
    are read when ``transport(x, phase=k)`` needs them, from the ``phases/`` folder of the file's run
    directory, else from where the run wrote them.

    A file that is missing raises FileNotFoundError; one that is empty, truncated, corrupt, holds
    pickled objects other than plain data, or is not an otgen model raises ValueError naming the file
    and what is wrong with it.
    """
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a file path (str or os.PathLike), got {type(path).__name__}")
    name = os.fspath(path)
    blob = io.load_torch(path, mmap=True)  # tensors mapped from the file, not copied (read once)
    run = Path(path).parent  # the run directory of RUN/model.pt ...
    if isinstance(blob, dict) and "model" in blob and "loop" in blob:
        blob, run = blob["model"], run.parent  # ... and of RUN/checkpoints/last.pt
    if not isinstance(blob, dict) or blob.get("format") not in (FORMAT, *LEGACY_FORMATS):
        raise ValueError(f"{name} is not an otgen model file ({FORMAT}): it holds {_describe(blob)}")
    for key, kind in (("solver", str), ("config", dict), ("state", dict)):
        if not isinstance(blob.get(key), kind):
            raise ValueError(f"{name} is not a complete otgen model file: its {key!r} entry is "
                             f"{'missing' if key not in blob else 'a ' + type(blob[key]).__name__}")
    try:
        cls = get_solver(blob["solver"])
    except ValueError as e:
        raise ValueError(f"{name}: {e}") from None
    config = dict(blob["config"])
    if blob["format"] in LEGACY_FORMATS:  # flat constructor arguments: the options of today's spec
        config = cls.Options.from_legacy(config)
    custom = [k for k, v in config.items() if _holds_custom(v)]  # a module or function inside the option
    missing = [k for k in custom if k not in overrides]
    if missing:
        raise ValueError(f"the model was saved with a custom {', '.join(missing)}; pass it again: "
                         f"otgen.load(path, {'=..., '.join(missing)}=...)")
    for k in custom:
        config.pop(k)
    if "device" not in overrides and str(config.get("device", "cpu")).startswith("cuda") \
            and not torch.cuda.is_available():
        config["device"] = "cpu"  # trained on a GPU, loaded where there is none
    problems = cls.Options.check_all(config)
    if problems:
        raise ValueError(f"{name}: the stored config: {problems[0]}") from None
    model = from_config(blob["solver"], config, **overrides)
    model.attach_run_dir(run, writes=None)  # where files the state lists are looked for (S-JKO's phases)
    try:
        model.load_state_dict(blob["state"])
    except (RuntimeError, KeyError, ValueError, TypeError, AttributeError, IndexError) as e:
        reason = f"no entry {e}" if isinstance(e, KeyError) else " ".join(str(e).split())
        stored = blob["config"]
        changed = sorted(k for k in overrides if k != "device" and overrides[k] != stored.get(k, overrides[k]))
        if changed:
            given = ", ".join(f"{k}={overrides[k]!r}" for k in changed)
            saved = ", ".join(f"{k}={stored[k]!r}" for k in changed)
            raise ValueError(f"{name}: the stored weights do not fit a {cls.name} with {given} (saved with "
                             f"{saved}); an override may change only what the weights do not depend on "
                             f"({reason[:200]})") from None
        raise ValueError(f"{name}: the stored weights do not fit the {cls.name} its config describes "
                         f"(truncated or corrupt: {reason[:300]})") from None
    return model


def _holds_custom(value: Any) -> bool:
    """Whether a stored option is, or holds at any depth, ``"custom"`` (an object that was not stored)."""
    if isinstance(value, dict):
        return any(_holds_custom(v) for v in value.values())
    if isinstance(value, list):
        return any(_holds_custom(v) for v in value)
    return value == "custom"


def _describe(blob: Any) -> str:
    """What a loaded file holds, in words: ``"a Tensor of shape (3,)"``, ``"a dict with keys ['a']"``."""
    if isinstance(blob, torch.Tensor):
        return f"a Tensor of shape {tuple(blob.shape)}"
    if isinstance(blob, dict):
        fmt = blob.get("format")
        if isinstance(fmt, str) and fmt.startswith("otgen-model-"):
            return f"a model of format {fmt!r}, which this version of otgen does not read"
        keys = sorted(map(str, blob))
        return f"a dict with keys {keys[:8]}{' ...' if len(keys) > 8 else ''}" if keys else "an empty dict"
    return f"a {type(blob).__name__}"
