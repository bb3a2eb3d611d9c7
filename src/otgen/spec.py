"""Typed option specs: every option of a solver declared once — its type and range, its default and
its doc in one line — and used alike by the constructor, the config check, ``save`` and ``load``.

A spec is a frozen dataclass that subclasses :class:`Spec`; each field is an :func:`option`::

    @dataclass(frozen=True)
    class Adam(Spec):
        "Adam with a learning-rate schedule and gradient clipping."
        lr: float = option(1e-4, Number(low=0, low_open=True), "learning rate")
        betas: tuple = option((0.5, 0.9), Betas(), "Adam's (beta1, beta2)")

    Adam(lr=0)                          # ValueError: lr must be > 0, got 0
    Adam.from_config({"lr": 2e-4})      # from a YAML mapping; unknown keys get a "did you mean"
    Adam().to_config()                  # {"lr": 0.0001, "betas": [0.5, 0.9]}: what configs and files store

Specs compose: a field holds another spec (:class:`Nested`) or one of several (:class:`OneOf`, a
tagged union over a :class:`~otgen.registry.Registry` of spec classes, written in YAML as
``{name: smc, particles: 8}`` or just ``smc``). Options that only make sense together live in the
same spec, so that an illegal combination cannot be written rather than being checked.

Errors name the full path of the option (``sampler.particles``, and with a config's prefix
``model.sampler.particles``), the value and the accepted range.
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import difflib
import inspect
import textwrap
from typing import Any, ClassVar, Iterator, Mapping, TypeVar

from .registry import Registry
from .schema import Field, did_you_mean

__all__ = ["Spec", "option", "Nested", "OneOf", "encode", "takes", "check_keywords"]

S = TypeVar("S", bound="Spec")

#: the path of the spec being built (``"model.sampler."``), so that its fields' errors name it
_WHERE: contextvars.ContextVar[str] = contextvars.ContextVar("otgen_spec_where", default="")


@contextlib.contextmanager
def _building(where: str) -> Iterator[None]:
    token = _WHERE.set(where)
    try:
        yield
    finally:
        _WHERE.reset(token)


def option(default: Any, check: Field, doc: str, *, positional: bool = False) -> Any:
    """One option: its ``default``, the :class:`~otgen.schema.Field` that checks and normalises a
    value (type, range), and a one-line ``doc``. Options are keyword-only unless ``positional``."""
    if isinstance(check, (Nested, OneOf)) and isinstance(default, Spec):
        check = dataclasses.replace(check, base=default)  # a partial mapping fills in from this default
    kwargs: dict[str, Any] = {"metadata": {"check": check, "doc": doc}, "kw_only": not positional}
    if isinstance(default, list):
        kwargs["default_factory"] = lambda d=tuple(default): list(d)
    else:
        kwargs["default"] = default
    return dataclasses.field(**kwargs)


class Spec:
    """Base of the option specs (subclasses are ``@dataclass(frozen=True)``). ``name``: the spec's
    name where it is one choice of a :class:`OneOf` (e.g. ``"smc"``), else ``""``."""

    name: ClassVar[str] = ""

    def __post_init__(self) -> None:
        where = _WHERE.get()
        with _building(""):  # nested specs given as mappings set their own path
            for f in dataclasses.fields(self):
                check = f.metadata.get("check")
                if check is not None:
                    object.__setattr__(self, f.name, check.check(where + f.name, getattr(self, f.name)))
        self.validate(where)

    def validate(self, where: str) -> None:
        """Rules between fields that a field's own check cannot see (override; ``where`` prefixes names)."""

    # -- building ------------------------------------------------------------------------------
    @classmethod
    def option_names(cls) -> list[str]:
        return [f.name for f in dataclasses.fields(cls)]

    @classmethod
    def check_names(cls, names: Any, where: str = "") -> None:
        """ValueError for the first name that is no option, with a "did you mean"."""
        accepted = cls.option_names()
        for name in names:
            if name not in accepted:
                raise ValueError(cls._unknown(name, where))

    @classmethod
    def _unknown(cls, name: Any, where: str) -> str:
        owner = cls.__name__.removesuffix("Options") or cls.__name__  # a solver's options: its name
        owner = owner if not cls.name else f"{owner} ({cls.name!r})"
        accepted = cls.option_names()
        return (f"unknown key {where}{name} for {owner}{did_you_mean(str(name), accepted)}; "
                f"accepted: {sorted(accepted)}")

    @classmethod
    def from_config(cls: type[S], config: Mapping[str, Any], where: str = "") -> S:
        """The spec of a mapping of option values (a YAML section); ValueError naming the first bad
        option with the prefix ``where`` (e.g. ``"model."``)."""
        if isinstance(config, cls):
            return config
        if not isinstance(config, Mapping):
            raise ValueError(f"{where.rstrip('.') or cls.__name__} must be a mapping of {cls.__name__} options "
                             f"{cls.option_names()}, got {config!r}")
        cls.check_names(config, where)
        missing = [f.name for f in dataclasses.fields(cls) if f.name not in config
                   and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
        if missing:
            raise ValueError(f"{where}{missing[0]} is required ({cls.__name__})")
        with _building(where):
            return cls(**config)

    @classmethod
    def check_all(cls, config: Mapping[str, Any], where: str = "") -> list[str]:
        """Every problem of a mapping of option values, one message each (unknown keys with their
        "did you mean", then wrong values; rules between options once every value is good)."""
        problems = [cls._unknown(k, where) for k in config if k not in cls.option_names()]
        for f in dataclasses.fields(cls):
            if f.name in config and f.metadata.get("check") is not None:
                try:
                    with _building(""):
                        f.metadata["check"].check(where + f.name, config[f.name])
                except ValueError as e:
                    problems.append(str(e))
        if not problems:
            try:
                cls.from_config(config, where)
            except ValueError as e:
                problems.append(str(e))
        return problems

    # -- storing -------------------------------------------------------------------------------
    def to_config(self) -> dict[str, Any]:
        """The options as plain data (nested specs as mappings, a :class:`OneOf` choice with its
        ``name``); values that are objects as ``"custom"`` (a module, a cost function), except an
        object that names itself with a ``spec()`` method (a ``Cost``)."""
        return {f.name: encode(getattr(self, f.name)) for f in dataclasses.fields(self)}

    def changed(self) -> dict[str, Any]:
        """The options whose value differs from the default, as :meth:`to_config` writes them."""
        # each field's own default (not the spec of all defaults: its cross-field rules may refuse it)
        default = {f.name: encode(f.default if f.default is not dataclasses.MISSING else f.default_factory())
                   for f in dataclasses.fields(self) if _has_default(f)}
        return {k: v for k, v in self.to_config().items() if k not in default or default[k] != v}

    def replace(self: S, **changes: Any) -> S:
        """A copy with ``changes`` (checked like the constructor's arguments)."""
        return dataclasses.replace(self, **changes)

    # -- documenting ---------------------------------------------------------------------------
    @classmethod
    def describe(cls, indent: int = 4) -> str:
        """The options as a docstring section: ``name (default): doc`` per line, wrapped."""
        lines = []
        for f in dataclasses.fields(cls):
            default = f.default if f.default is not dataclasses.MISSING else (
                f.default_factory() if f.default_factory is not dataclasses.MISSING else None)
            shown = "required" if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING \
                else f"default {_show(default)}"
            text = f"{f.name} ({shown}): {f.metadata.get('doc', '')}"
            lines.append(textwrap.fill(text, 100, initial_indent=" " * indent,
                                       subsequent_indent=" " * (indent + 4)))
        return "\n".join(lines)


def _has_default(f: dataclasses.Field) -> bool:
    return f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING


def _show(value: Any) -> str:
    if isinstance(value, Spec):
        changed = value.changed()
        inner = ", ".join(f"{k}={v!r}" for k, v in changed.items())
        return f"{type(value).__name__}({inner})"
    return repr(value)


def encode(value: Any) -> Any:
    """A value as plain data (see :meth:`Spec.to_config`)."""
    if isinstance(value, Spec):
        out = value.to_config()
        return {"name": value.name, **out} if value.name else out
    if isinstance(value, (list, tuple)):
        return [encode(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): encode(v) for k, v in value.items()}
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    named = getattr(value, "spec", None)  # an object that can name itself (``Cost.spec``)
    if callable(named) and not isinstance(value, type):
        try:
            spec = named()
        except TypeError:
            spec = None
        if spec is not None:
            return encode(spec)
    return "custom"


def _values(spec: Spec) -> dict[str, Any]:
    return {f.name: getattr(spec, f.name) for f in dataclasses.fields(spec)}


def _over(base: Spec | None, cls: type[Spec], options: Mapping[str, Any], where: str) -> Spec:
    """``cls`` from a mapping of options, those not given taken from ``base`` when it is a ``cls``
    (the field's default: ``optim: {lr: 1e-3}`` keeps the solver's own betas and schedule)."""
    if not isinstance(options, Mapping):
        return cls.from_config(options, where)
    cls.check_names(options, where)
    start = _values(base) if type(base) is cls else {}
    return cls.from_config({**start, **options}, where)


@dataclasses.dataclass(frozen=True)
class Nested(Field):
    """A field holding a spec of class ``cls``: an instance, or a mapping of its options (those not
    given keep the field's default's values)."""

    cls: type = Spec
    nullable: bool = False
    base: Any = None

    def _check(self, name, value):
        if isinstance(value, self.cls):
            return value
        return _over(self.base, self.cls, value, name + ".")


@dataclasses.dataclass(frozen=True)
class OneOf(Field):
    """A field holding one of the spec classes of ``choices`` (a Registry of Spec classes): an instance
    of one of them, its name or a mapping ``{"name": ..., **options}`` (options not given: the field
    default's where it is of the same class, else the class's defaults; without a name: the kind of
    the field's default)."""

    choices: Registry = None  # type: ignore[assignment]
    nullable: bool = False
    base: Any = None

    def _check(self, name, value):
        classes = tuple(self.choices.values())
        if isinstance(value, classes):
            return value
        if isinstance(value, str):
            return _over(self.base, self.choices.get(value, where=name), {}, name + ".")
        if isinstance(value, Mapping) and "name" in value:
            options = {k: v for k, v in value.items() if k != "name"}
            return _over(self.base, self.choices.get(value["name"], where=name), options, name + ".")
        if isinstance(value, Mapping) and isinstance(self.base, classes):  # no name: the default's kind
            return _over(self.base, type(self.base), value, name + ".")
        raise ValueError(f"{name} must be one of {self.choices.names()} (a name, a mapping with a 'name', or "
                         f"a spec such as {classes[0].__name__}(...)), got {value!r}")


def takes(options: type[Spec]):
    """Class decorator: the class's ``__init__(self, *args, **kwargs)`` shows the signature of the
    spec ``options`` (for ``help`` and editors) and the class docstring lists the options."""

    def deco(cls):
        params = [inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD)]
        for f in dataclasses.fields(options):
            default = f.default if f.default is not dataclasses.MISSING else (
                f.default_factory() if f.default_factory is not dataclasses.MISSING else inspect.Parameter.empty)
            kind = inspect.Parameter.KEYWORD_ONLY if f.kw_only else inspect.Parameter.POSITIONAL_OR_KEYWORD
            params.append(inspect.Parameter(f.name, kind, default=default))
        init = cls.__init__
        init.__signature__ = inspect.Signature(params)
        if cls.__doc__ and "{options}" in cls.__doc__:
            cls.__doc__ = cls.__doc__.replace("{options}", options.describe(8).lstrip())
        return cls

    return deco


def check_keywords(options: type[Spec], kwargs: Mapping[str, Any], moved: Mapping[str, str] = ()) -> None:
    """ValueError for the first keyword argument of a constructor that is no option of ``options``
    (before the dataclass's own TypeError): an option of otgen's first (flat) layout says where it went
    (``moved``: old name -> new place), any other gets a "did you mean"."""
    moved = dict(moved)
    names = options.option_names()
    for key in kwargs:
        if key in moved and key not in names:
            raise ValueError(f"{key} is an option of otgen's first (flat) layout; it is now {moved[key]} "
                             f"({options.__name__}.from_legacy converts a whole flat mapping)")
        if key not in names and not did_you_mean(str(key), names) and did_you_mean(str(key), moved):
            old = difflib.get_close_matches(str(key), list(moved), n=1, cutoff=0.6)[0]
            raise ValueError(f"unknown key {key} for {options.__name__.removesuffix('Options')} (did you mean "
                             f"{old!r}? it is now "
                             f"{moved[old]}); accepted: {sorted(names)}")
    options.check_names(kwargs)
