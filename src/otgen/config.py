"""Experiment configs: YAML with the sections ``model``, ``data``, ``train`` (and optional ``eval``).

    model: {name: EgNOT, dim: 2, eps: 0.1, potential: {hidden: [256, 256, 256]}, sampler: {name: smc}, ...}
           # the solver's options (its Options spec), nested as the spec nests them
    data:  {source: {name: standard_gaussian, dim: 2}, target: {name: swiss_roll}}
           # or a ground-truth pair, whose exact plan scores the run at the end:
           # {pair: {name: gaussian_eot, dim: 16, eps: 0.1, seed: 0}}  (or mixture_eot, + n_components)
    train: {n_iters: 2000, batch_size: 256, seed: 0, log_every: 50, checkpoint_every: 500, precision: fp32}
    train: ... num_workers: 3   # data-loading processes for streamed image data (default: cores − 1, at most 8)
    train: ... compile: true    # torch.compile the networks (those a solver cannot compile stay eager; default false)
    eval:  {n_conditions: 100, n_per_condition: 500, n_samples: 10000}   # pairs
           # image runs: n_samples, seed, batch_size: 1000, features: auto | digits | inception,
           #             ref: STATS.npz (mu, sigma), n_reference: 50000 (reference images at most)

Every key is checked before anything runs: unknown keys and values of the wrong type or out of range
raise one ``ConfigError`` that names each of them, one line per problem. ``apply_overrides``
implements ``--set a.b=value`` (values parsed as YAML). ``train.batch_size`` is the global batch of a
multi-process (torchrun) run.
"""

from __future__ import annotations

import copy
import inspect
import re
import warnings
from pathlib import Path
from typing import Any

import yaml

from . import distributions, groundtruth
from .models import SOLVERS, get_solver
from .registry import Registry
from .schema import Choice, Flag, Number, Schema, Text, did_you_mean

TRAIN = Schema("the train section", {
    "n_iters": Number(integer=True, low=1), "batch_size": Number(integer=True, low=1),
    "seed": Number(integer=True, low=0), "log_every": Number(integer=True, low=1),
    "checkpoint_every": Number(integer=True, low=1), "precision": Choice(("fp32", "bf16")),
    "num_workers": Number(integer=True, low=0), "compile": Flag()})
EVAL = Schema("the eval section", {
    "n_conditions": Number(integer=True, low=1), "n_per_condition": Number(integer=True, low=1),
    "n_samples": Number(integer=True, low=1), "n_draws": Number(integer=True, low=1),
    "seed": Number(integer=True, low=0), "batch_size": Number(integer=True, low=1),
    "features": Choice(("auto", "digits", "inception")), "ref": Text(nullable=True),
    "n_reference": Number(integer=True, low=2), "temperature": Number(low=0, high=1, low_open=True)})
DEFAULTS = {"train": {"seed": 0, "log_every": 50, "checkpoint_every": 500, "precision": "fp32", "compile": False},
            "eval": {"n_conditions": 100, "n_per_condition": 500, "n_samples": 10000, "n_draws": 4, "seed": 0,
                     "batch_size": 1000, "features": "auto", "n_reference": 50000}}
SECTIONS = ("model", "data", "train", "eval")
PAIRS: Registry[type] = Registry("ground-truth pair")  # data.pair.name -> the pair's class
PAIRS.add("gaussian_eot", groundtruth.GaussianEOTPair)
PAIRS.add("mixture_eot", groundtruth.MixtureEOTPair)
TWO_SIDED = ("source", "target")  # the sides a ground-truth pair provides


class ConfigError(ValueError):
    """A config key is unknown, missing, or has a value of the wrong type; a config file or a ``--set``
    value is not valid YAML. ``problems``: one message per problem (the message lists them all, one
    line each, when there are several)."""

    def __init__(self, problems: str | list[str]):
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        if len(self.problems) == 1:
            message = self.problems[0]
        else:
            message = f"{len(self.problems)} problems in the config:\n" + "\n".join("  " + p for p in self.problems)
        super().__init__(message)


class ConfigLoader(yaml.SafeLoader):
    """PyYAML's safe loader (YAML 1.1), except that a number with an exponent and no dot, ``1e-3`` or
    ``5E-5``, is a float as in YAML 1.2 (PyYAML reads it as the string "1e-3", which no float option
    takes: the way learning rates are usually written), and that a key given twice in one mapping is
    an error (PyYAML keeps the last silently; YAML 1.2 forbids it)."""

    def construct_mapping(self, node, deep=False):
        seen: dict[Any, Any] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            if isinstance(key, (str, int, float, bool)) and key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"the key {key!r} is given twice in one mapping (first on line "
                    f"{seen[key].start_mark.line + 1})", key_node.start_mark)
            seen[key] = key_node
        return super().construct_mapping(node, deep=deep)


ConfigLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float", re.compile(r"^[-+]?[0-9][0-9_]*(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"))


def parse_yaml(text: str) -> Any:
    """``text`` read by :class:`ConfigLoader` (yaml.YAMLError if it is not YAML)."""
    return yaml.load(text, Loader=ConfigLoader)


def _yaml_problem(e: yaml.YAMLError) -> tuple[str, str]:
    """(where, what) of a YAML error: ``"line 3, column 7"`` (1-based) and the parser's problem, with
    the context it was parsing (and that context's line)."""
    mark = getattr(e, "problem_mark", None)
    where = f"line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
    what = " ".join(str(getattr(e, "problem", None) or e).split())
    context, context_mark = getattr(e, "context", None), getattr(e, "context_mark", None)
    if context and getattr(e, "problem", None):
        at = f" from line {context_mark.line + 1}" if context_mark is not None and mark is not None \
            and context_mark.line != mark.line else ""
        what += f" ({' '.join(context.split())}{at})"
    return where, what


def load_yaml(path: str | Path) -> dict[str, Any]:
    """The mapping in YAML file ``path``; ConfigError naming the file (and the line of a YAML error)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}" if not path.is_dir() else
                          f"{path} is a directory, not a config file")
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as e:
        raise ConfigError(f"{path}: not a UTF-8 text file (byte {e.start} cannot be read); a config is YAML text") from None
    try:
        cfg = parse_yaml(text) or {}
    except yaml.YAMLError as e:
        where, what = _yaml_problem(e)
        raise ConfigError(f"{path}{', ' + where if where else ''}: invalid YAML: {what}") from None
    if not isinstance(cfg, dict):
        raise ConfigError(f"{path}: a config must be a mapping with sections {SECTIONS}")
    return cfg


def apply_overrides(cfg: dict[str, Any], assignments: list[str]) -> dict[str, Any]:
    """``["train.n_iters=20", "model.optim.lr=1e-3"]`` -> a new config with those values set (a spec
    given by name, ``phi1: kl``, becomes ``{name: kl}`` when a key below it is set)."""
    cfg = copy.deepcopy(cfg)
    for item in assignments:
        if "=" not in item:
            raise ConfigError(f"--set expects key=value (e.g. train.n_iters=20), got {item!r}")
        key, raw = item.split("=", 1)
        key = key.strip()
        parts = key.split(".")
        if len(parts) < 2 or not all(parts):
            raise ConfigError(f"--set key must be section.name (e.g. train.n_iters), got {key!r}")
        try:
            value = parse_yaml(raw)
        except yaml.YAMLError as e:
            raise ConfigError(f"--set {key}: the value {raw!r} is not valid YAML ({_yaml_problem(e)[1]})") from None
        node = cfg
        for p in parts[:-1]:
            if node.get(p) is None:  # an absent or empty section
                node[p] = {}
            elif isinstance(node[p], str) and node is not cfg:  # a spec given by name: phi1: kl
                node[p] = {"name": node[p]}
            node = node[p]
            if not isinstance(node, dict):
                raise ConfigError(f"--set {key}: {p!r} is not a section")
        node[parts[-1]] = value
    return cfg


def validate(cfg: dict[str, Any]) -> dict[str, Any]:
    """Check a whole config; returns it with defaults of ``train`` and ``eval`` filled in. The model
    section is checked by the solver's own spec (``Options``, the one its constructor uses), the data section
    against the solver's ``data_sides``. Every problem found (unknown keys and sections, wrong types,
    values out of range, missing keys, in all sections) is reported together in one ConfigError."""
    problems: list[str] = []
    for s in sorted(set(cfg) - set(SECTIONS), key=str):
        problems.append(f"unknown config section {s!r}{did_you_mean(str(s), SECTIONS)}; accepted: {list(SECTIONS)}")
    for s in ("model", "data", "train"):
        if not isinstance(cfg.get(s), dict):
            problems.append(f"config section {s!r} is missing or not a mapping")
    if not isinstance(cfg.get("eval") or {}, dict):
        problems.append("config section 'eval' must be a mapping")

    model = dict(cfg["model"]) if isinstance(cfg.get("model"), dict) else {}
    name = model.pop("name", "EgNOT")
    try:
        cls = SOLVERS.get(name, where="model.name")
    except ValueError as e:
        cls = None
        problems.append(str(e))
    if cls is not None:
        model = convert_legacy_model(cls, model)
        pair = (cfg.get("data") or {}).get("pair") if isinstance(cfg.get("data"), dict) else None
        filled = {}
        if isinstance(pair, dict):  # dim and eps default to the pair's (build_model)
            filled = {k: pair[k] for k in ("dim", "eps") if k in pair and k not in model
                      and k in cls.Options.option_names()}
        # a bad value the pair gave is the pair's problem (build_data names it as data.pair.KEY)
        problems += [p for p in cls.Options.check_all({**model, **filled}, "model.")
                     if not any(p.startswith(f"model.{k} ") for k in filled)]
        if isinstance(cfg.get("data"), dict):
            problems += _data_problems(cfg["data"], tuple(cls.data_sides))

    out = copy.deepcopy(cfg)
    for section, schema in (("train", TRAIN), ("eval", EVAL)):
        given = cfg.get(section) or {}
        if not isinstance(given, dict):
            continue
        values, found = schema.check_all(given, section + ".")
        problems += found
        if section == "train":
            problems += [f"train.{req} is required" for req in ("n_iters", "batch_size") if req not in given]
        out[section] = {**DEFAULTS[section], **values}
    if problems:
        raise ConfigError(problems)
    out["model"] = {"name": cls.name, **model}
    out["data"] = _registered_names(out["data"])
    return out


def convert_legacy_model(cls: type, model: dict[str, Any]) -> dict[str, Any]:
    """A ``model`` section (without its name) in the nested layout of ``cls.Options``: a section in the
    flat layout of otgen's first format (``lr: 1e-4``, ``sampler: langevin``, ``langevin_steps: 30``,
    ...), or with flat keys mixed in (``--set model.lr=...``), is converted by the solver's
    ``Options.from_legacy``, with a warning that shows the section as it is written now."""
    names = set(cls.Options.option_names())
    if all(k in names for k in model):
        return model
    saved = "saved" in inspect.signature(cls.Options.from_legacy).parameters
    converted = cls.Options.from_legacy(model, saved=False) if saved else cls.Options.from_legacy(model)
    moved = sorted(k for k in model if k not in names and k not in converted)
    if moved:
        warnings.warn(f"model: {', '.join(moved)} {'is an option' if len(moved) == 1 else 'are options'} of the "
                      f"flat layout of otgen's first config format; converted. Write the section as:\n"
                      + yaml.safe_dump({"model": {"name": cls.name, **converted}}, sort_keys=False),
                      FutureWarning, stacklevel=3)
    return converted


def _data_problems(data: dict[str, Any], sides: tuple[str, ...]) -> list[str]:
    """What is wrong with a ``data`` section: it names a sampler for each side (``{name: ...,
    **kwargs}``), or a ground-truth ``pair`` for a solver of a source and a target."""
    if "pair" in data:
        if sides != TWO_SIDED:
            return [f"data.pair gives a source and a target; this model trains on {list(sides)}"]
        if set(data) != {"pair"}:
            return [f"data: give either 'pair' or 'source' and 'target', got keys {sorted(data)}"]
        if not isinstance(data["pair"], dict):
            return [f"data.pair must be a mapping with a 'name' (one of {sorted(PAIRS)})"]
        try:
            PAIRS.canonical(data["pair"].get("name"), where="data.pair.name")
        except ValueError as e:
            return [str(e)]
        return []
    if set(data) != set(sides):
        also = " (or 'pair')" if sides == TWO_SIDED else ""
        return [f"data needs {' and '.join(repr(s) for s in sides)}{also}; got keys {sorted(data, key=str)}"]
    problems = []
    for side in sides:
        if not isinstance(data[side], dict) or "name" not in data[side]:
            problems.append(f"data.{side} must be a mapping with a 'name' (one of {distributions.names()})")
            continue
        try:
            distributions.DISTRIBUTIONS.canonical(data[side]["name"], where=f"data.{side}.name")
        except ValueError as e:
            problems.append(str(e))
    return problems


def _registered_names(data: dict[str, Any]) -> dict[str, Any]:
    """A valid ``data`` section with every name as registered ("Swiss-Roll" -> "swiss_roll"): what
    config.yaml stores, so that two spellings of one run compare equal."""
    if "pair" in data:
        return {**data, "pair": {**data["pair"], "name": PAIRS.canonical(data["pair"]["name"])}}
    return {side: {**spec, "name": distributions.DISTRIBUTIONS.canonical(spec["name"])} for side, spec in data.items()}


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
        for key in [k for k in ("dim", "eps") if k in cls.Options.option_names()]:
            if key in spec and spec[key] != getattr(pair, key):
                raise ConfigError(f"model.{key} = {spec[key]!r} disagrees with data.pair.{key} = {getattr(pair, key)!r}; "
                                  f"drop model.{key} to use the pair's")
            spec.setdefault(key, getattr(pair, key))
    return cls(**{**spec, **overrides})


def dump(cfg: dict[str, Any]) -> str:
    return yaml.safe_dump(cfg, sort_keys=False)
