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
from pathlib import Path
from typing import Any

import yaml

from . import distributions, groundtruth
from .models import get_solver, solver_names
from .schema import Number, Schema

TRAIN = Schema("the train section", {
    "n_iters": Number(integer=True, low=1), "batch_size": Number(integer=True, low=1),
    "seed": Number(integer=True, low=0), "log_every": Number(integer=True, low=1),
    "checkpoint_every": Number(integer=True, low=1)})
EVAL = Schema("the eval section", {
    "n_conditions": Number(integer=True, low=1), "n_per_condition": Number(integer=True, low=1),
    "n_samples": Number(integer=True, low=1), "n_draws": Number(integer=True, low=1),
    "seed": Number(integer=True, low=0)})
DEFAULTS = {"train": {"seed": 0, "log_every": 50, "checkpoint_every": 500},
            "eval": {"n_conditions": 100, "n_per_condition": 500, "n_samples": 10000, "n_draws": 4, "seed": 0}}
SECTIONS = ("model", "data", "train", "eval")
PAIRS = {"gaussian_eot": groundtruth.GaussianEOTPair, "mixture_eot": groundtruth.MixtureEOTPair}
TWO_SIDED = ("source", "target")  # the sides a ground-truth pair provides


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


def _checked(schema: Schema, values: dict[str, Any], where: str) -> dict[str, Any]:
    try:
        return schema.check(values, where=where)
    except ValueError as e:
        raise ConfigError(str(e)) from None


def validate(cfg: dict[str, Any]) -> dict[str, Any]:
    """Check a whole config; returns it with defaults of ``train`` and ``eval`` filled in. The model
    section is checked by the solver's own schema (the one its constructor uses), the data section
    against the solver's ``data_sides``."""
    unknown = sorted(set(cfg) - set(SECTIONS))
    if unknown:
        raise ConfigError(f"unknown config section(s) {unknown}; accepted: {list(SECTIONS)}")
    for s in ("model", "data", "train"):
        if not isinstance(cfg.get(s), dict):
            raise ConfigError(f"config section {s!r} is missing or not a mapping")

    model = dict(cfg["model"])
    name = model.pop("name", "EgNOT")
    try:
        cls = get_solver(name)
    except ValueError:
        raise ConfigError(f"model.name must be one of {solver_names()}, got {name!r}") from None
    _checked(cls.schema, model, "model.")
    _check_data(cfg["data"], tuple(cls.data_sides))

    out = copy.deepcopy(cfg)
    for section, schema in (("train", TRAIN), ("eval", EVAL)):
        if not isinstance(cfg.get(section) or {}, dict):
            raise ConfigError(f"config section {section!r} must be a mapping")
        values = _checked(schema, dict(cfg.get(section) or {}), section + ".")
        if section == "train":
            for req in ("n_iters", "batch_size"):
                if req not in values:
                    raise ConfigError(f"train.{req} is required")
        out[section] = {**DEFAULTS[section], **values}
    out["model"] = {"name": cls.name, **model}
    return out


def _check_data(data: dict[str, Any], sides: tuple[str, ...]) -> None:
    """``data`` names a sampler for each side (``{name: ..., **kwargs}``), or a ground-truth ``pair``
    for a solver of a source and a target."""
    if "pair" in data:
        if sides != TWO_SIDED:
            raise ConfigError(f"data.pair gives a source and a target; this model trains on {list(sides)}")
        if set(data) != {"pair"}:
            raise ConfigError(f"data: give either 'pair' or 'source' and 'target', got keys {sorted(data)}")
        if not isinstance(data["pair"], dict):
            raise ConfigError(f"data.pair must be a mapping with a 'name' (one of {sorted(PAIRS)})")
        if data["pair"].get("name") not in PAIRS:
            raise ConfigError(f"data.pair.name must be one of {sorted(PAIRS)}, got {data['pair'].get('name')!r}")
        return
    if set(data) != set(sides):
        also = " (or 'pair')" if sides == TWO_SIDED else ""
        raise ConfigError(f"data needs {' and '.join(repr(s) for s in sides)}{also}; got keys {sorted(data)}")
    for side in sides:
        if not isinstance(data[side], dict) or "name" not in data[side]:
            raise ConfigError(f"data.{side} must be a mapping with a 'name' (one of {distributions.names()})")


def build_data(data: dict[str, Any], sides: tuple[str, ...] = TWO_SIDED):
    """(one sampler per side..., pair or None) from a validated ``data`` section: ``(source, target,
    pair)`` for the transport solvers."""
    if "pair" in data:
        spec = dict(data["pair"])
        cls = PAIRS[spec.pop("name")]
        try:
            pair = cls(**spec)
        except (TypeError, ValueError) as e:
            raise ConfigError(f"data.pair: {e}") from None
        return pair.source, pair.target, pair
    samplers = []
    for side in sides:
        spec = dict(data[side])
        try:
            samplers.append(distributions.make(spec.pop("name"), **spec))
        except ValueError as e:
            raise ConfigError(f"data.{side}: {e}") from None
    return (*samplers, None)


def build_model(model_cfg: dict[str, Any], pair: Any = None, **overrides: Any):
    """The model of a validated ``model`` section. With a ground-truth ``pair``, ``dim`` and ``eps``
    default to the pair's and must agree with it if given."""
    spec = dict(model_cfg)
    cls = get_solver(spec.pop("name"))
    if pair is not None:
        for key in [k for k in ("dim", "eps") if k in cls.schema]:
            if key in spec and spec[key] != getattr(pair, key):
                raise ConfigError(f"model.{key} = {spec[key]!r} disagrees with data.pair.{key} = {getattr(pair, key)!r}; "
                                  f"drop model.{key} to use the pair's")
            spec.setdefault(key, getattr(pair, key))
    return cls(**{**spec, **overrides})


def dump(cfg: dict[str, Any]) -> str:
    return yaml.safe_dump(cfg, sort_keys=False)
