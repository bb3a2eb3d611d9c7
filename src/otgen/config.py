"""Experiment configs: YAML with the sections ``model``, ``data``, ``train`` (and optional ``eval``).

    model: {name: EgNOT, dim: 2, eps: 0.1, hidden: [256, 256, 256], ...}   # constructor arguments
    data:  {source: {name: standard_gaussian, dim: 2}, target: {name: swiss_roll}}
           # or a ground-truth pair, whose exact plan scores the run at the end:
           # {pair: {name: gaussian_eot, dim: 16, eps: 0.1, seed: 0}}  (or mixture_eot, + n_components)
    train: {n_iters: 2000, batch_size: 256, seed: 0, log_every: 50, checkpoint_every: 500}
    eval:  {n_conditions: 100, n_per_condition: 500, n_samples: 10000}

Every key is checked before anything runs: an unknown key or a value of the wrong type raises
``ConfigError`` naming it. ``apply_overrides`` implements ``--set a.b=value`` (values parsed as YAML).
"""

from __future__ import annotations

import copy
import inspect
import re
from pathlib import Path
from typing import Any

import yaml

from . import distributions, groundtruth
from .models import MODELS

TRAIN_KEYS = {"n_iters": int, "batch_size": int, "seed": int, "log_every": int, "checkpoint_every": int}
EVAL_KEYS = {"n_conditions": int, "n_per_condition": int, "n_samples": int, "seed": int}
SECTIONS = ("model", "data", "train", "eval")
PAIRS = {"gaussian_eot": groundtruth.GaussianEOTPair, "mixture_eot": groundtruth.MixtureEOTPair}


class ConfigError(ValueError):
    """A config key is unknown, missing, or has a value of the wrong type."""


def load_yaml(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    with open(path) as f:
        cfg = yaml.safe_load(f) or {}
    if not isinstance(cfg, dict):
        raise ConfigError(f"{path}: a config must be a mapping with sections {SECTIONS}")
    return cfg


def apply_overrides(cfg: dict[str, Any], assignments: list[str]) -> dict[str, Any]:
    """``["train.n_iters=20", "model.hidden=[64, 64]"]`` -> a new config with those values set."""
    cfg = copy.deepcopy(cfg)
    for item in assignments:
        if "=" not in item:
            raise ConfigError(f"--set expects key=value (e.g. train.n_iters=20), got {item!r}")
        key, raw = item.split("=", 1)
        parts = key.strip().split(".")
        if len(parts) < 2 or not all(parts):
            raise ConfigError(f"--set key must be section.name (e.g. train.n_iters), got {key!r}")
        node = cfg
        for p in parts[:-1]:
            node = node.setdefault(p, {})
            if not isinstance(node, dict):
                raise ConfigError(f"--set {key}: {p!r} is not a section")
        node[parts[-1]] = yaml.safe_load(raw)
    return cfg


def _type_ok(value: Any, expected: type) -> bool:
    if expected is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if expected is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    return isinstance(value, expected)


def _check_annotated(section: str, key: str, value: Any, annotation: Any) -> None:
    """Check ``value`` against a constructor annotation written as a string: ``"float | None"``,
    ``"Sequence[int]"``, ``"str | Cost | Any"`` (Any: left to the constructor)."""
    ann = str(annotation)
    where = f"{section}.{key}"
    if "Any" in ann or ann == "inspect._empty":
        return
    if value is None:
        if "None" in ann:
            return
        raise ConfigError(f"{where} may not be null")
    if ann.startswith("Sequence["):
        inner = ann[len("Sequence["):ann.index("]")]
        elem = {"int": int, "float": float}.get(inner)
        if not isinstance(value, (list, tuple)) or (elem and not all(_type_ok(v, elem) for v in value)):
            raise ConfigError(f"{where} must be a list of {inner}, got {value!r}")
        return
    simple = {"bool": bool, "int": int, "float": float, "str": str}
    allowed = [t for name, t in simple.items() if re.search(rf"\b{name}\b", ann)]
    if isinstance(value, bool):
        ok = bool in allowed
    else:
        ok = any(_type_ok(value, t) for t in allowed if t is not bool)
    if not ok:
        raise ConfigError(f"{where} must be of type {ann}, got {value!r} ({type(value).__name__})")


def validate(cfg: dict[str, Any]) -> dict[str, Any]:
    """Check a whole config; returns it with defaults of ``train`` and ``eval`` filled in."""
    unknown = sorted(set(cfg) - set(SECTIONS))
    if unknown:
        raise ConfigError(f"unknown config section(s) {unknown}; accepted: {list(SECTIONS)}")
    for s in ("model", "data", "train"):
        if not isinstance(cfg.get(s), dict):
            raise ConfigError(f"config section {s!r} is missing or not a mapping")

    model = dict(cfg["model"])
    name = model.pop("name", "EgNOT")
    if name not in MODELS:
        raise ConfigError(f"model.name must be one of {sorted(MODELS)}, got {name!r}")
    params = inspect.signature(MODELS[name].__init__).parameters
    for key, value in model.items():
        if key not in params or key == "self":
            raise ConfigError(f"unknown key model.{key} for {name}; accepted: {sorted(set(params) - {'self'})}")
        _check_annotated("model", key, value, params[key].annotation)

    data = cfg["data"]
    if "pair" in data:
        if set(data) != {"pair"}:
            raise ConfigError(f"data: give either 'pair' or 'source' and 'target', got keys {sorted(data)}")
        if not isinstance(data["pair"], dict):
            raise ConfigError(f"data.pair must be a mapping with a 'name' (one of {sorted(PAIRS)})")
        spec = dict(data["pair"])
        if spec.get("name") not in PAIRS:
            raise ConfigError(f"data.pair.name must be one of {sorted(PAIRS)}, got {spec.get('name')!r}")
    else:
        unknown = sorted(set(data) - {"source", "target"})
        if unknown or not {"source", "target"} <= set(data):
            raise ConfigError(f"data needs 'source' and 'target' (or 'pair'); got keys {sorted(data)}")
        for side in ("source", "target"):
            if not isinstance(data[side], dict) or "name" not in data[side]:
                raise ConfigError(f"data.{side} must be a mapping with a 'name' (one of {distributions.names()})")

    out = copy.deepcopy(cfg)
    for section, keys, defaults in (("train", TRAIN_KEYS, {"seed": 0, "log_every": 50, "checkpoint_every": 500}),
                                    ("eval", EVAL_KEYS, {"n_conditions": 100, "n_per_condition": 500,
                                                         "n_samples": 10000, "seed": 0})):
        if not isinstance(cfg.get(section) or {}, dict):
            raise ConfigError(f"config section {section!r} must be a mapping")
        values = dict(cfg.get(section) or {})
        for key, value in values.items():
            if key not in keys:
                raise ConfigError(f"unknown key {section}.{key}; accepted: {sorted(keys)}")
            if not _type_ok(value, keys[key]):
                raise ConfigError(f"{section}.{key} must be an {keys[key].__name__}, got {value!r}")
        if section == "train":
            for req in ("n_iters", "batch_size"):
                if req not in values:
                    raise ConfigError(f"train.{req} is required")
        out[section] = {**defaults, **values}
    out["model"] = {"name": name, **model}
    return out


def build_data(data: dict[str, Any]):
    """(source, target, pair or None) from a validated ``data`` section."""
    if "pair" in data:
        spec = dict(data["pair"])
        cls = PAIRS[spec.pop("name")]
        try:
            pair = cls(**spec)
        except (TypeError, ValueError) as e:
            raise ConfigError(f"data.pair: {e}") from None
        return pair.source, pair.target, pair
    sides = []
    for side in ("source", "target"):
        spec = dict(data[side])
        try:
            sides.append(distributions.make(spec.pop("name"), **spec))
        except ValueError as e:
            raise ConfigError(f"data.{side}: {e}") from None
    return sides[0], sides[1], None


def build_model(model_cfg: dict[str, Any], pair: Any = None, **overrides: Any):
    """The model of a validated ``model`` section. With a ground-truth ``pair``, ``dim`` and ``eps``
    default to the pair's and must agree with it if given."""
    spec = dict(model_cfg)
    name = spec.pop("name")
    if pair is not None:
        accepted = inspect.signature(MODELS[name].__init__).parameters
        for key in [k for k in ("dim", "eps") if k in accepted]:
            if key in spec and spec[key] != getattr(pair, key):
                raise ConfigError(f"model.{key} = {spec[key]!r} disagrees with data.pair.{key} = {getattr(pair, key)!r}; "
                                  f"drop model.{key} to use the pair's")
            spec.setdefault(key, getattr(pair, key))
    return MODELS[name](**{**spec, **overrides})


def dump(cfg: dict[str, Any]) -> str:
    return yaml.safe_dump(cfg, sort_keys=False)
