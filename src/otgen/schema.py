"""Declared argument schemas: one place that says which arguments a solver takes, of what type, in
what range, so that the constructor, ``otgen train``'s config check, ``save`` and ``load`` all apply
the same rules.

A :class:`Schema` maps argument names to fields::

    SCHEMA = Schema("EgNOT", {
        "eps": Number(low=0, low_open=True),
        "hidden": Numbers(int),
        "lr_schedule": Choice(("constant", "cosine")),
        "ema": Number(low=0, high=1, low_open=True, high_open=True, nullable=True),
        "cost": Anything("a cost name, a Cost or a callable"),
    })
    values = SCHEMA.check({"eps": 0.1, "hidden": [64, 64]})           # normalised copy, or ValueError
    values, problems = SCHEMA.check_all(config)                      # every problem, one message each

Errors name the argument (with the ``where`` prefix a config gives, e.g. ``model.``), the value and
what is accepted; an unknown name gets a "did you mean" from the accepted ones. A type error reads
"must be of type ...", a range error is :func:`otgen.checks.check_number`'s message. Cross-argument
rules (e.g. exactly one of ``dim`` and ``event_shape``) stay in the constructor that owns them.
"""

from __future__ import annotations

import difflib
import numbers
from dataclasses import dataclass
from typing import Any, Iterable, Mapping

from .checks import check_betas, check_number, check_shape

__all__ = ["Schema", "Field", "Number", "Flag", "Choice", "Text", "Shape", "Numbers", "Betas", "Anything",
           "Device", "did_you_mean"]


def did_you_mean(name: str, accepted: Iterable[str]) -> str:
    """``" (did you mean 'x'?)"`` for the closest accepted name, or ``""``."""
    close = difflib.get_close_matches(name, list(accepted), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _is_real(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


class Field:
    """One argument: ``check(name, value) -> value`` (normalised) or a ValueError naming ``name``."""

    nullable: bool = False

    def check(self, name: str, value: Any) -> Any:
        if value is None:
            if self.nullable:
                return None
            raise ValueError(f"{name} may not be null")
        return self._check(name, value)

    def _check(self, name: str, value: Any) -> Any:
        raise NotImplementedError


@dataclass(frozen=True)
class Number(Field):
    """A float (or with ``integer`` an int) in an optional range."""

    integer: bool = False
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    nullable: bool = False

    def _check(self, name, value):
        if not _is_real(value):
            kind = "an int" if self.integer else "of type float"
            raise ValueError(f"{name} must be {kind}, got {value!r} ({type(value).__name__})")
        check_number(name, value, self.low, self.high, self.low_open, self.integer, self.high_open)
        return int(value) if self.integer else float(value)


@dataclass(frozen=True)
class Flag(Field):
    """A bool."""

    def _check(self, name, value):
        if not isinstance(value, bool):
            raise ValueError(f"{name} must be of type bool, got {value!r} ({type(value).__name__})")
        return value


@dataclass(frozen=True)
class Choice(Field):
    """One of a fixed set of strings."""

    options: tuple[str, ...]
    nullable: bool = False

    def _check(self, name, value):
        if value not in self.options:
            hint = did_you_mean(value, self.options) if isinstance(value, str) else ""
            raise ValueError(f"{name} must be one of {self.options}, got {value!r}{hint}")
        return value


@dataclass(frozen=True)
class Text(Field):
    """Any string (its meaning is checked by whatever it names, e.g. a conjugate or an activation)."""

    nullable: bool = False

    def _check(self, name, value):
        if not isinstance(value, str):
            raise ValueError(f"{name} must be of type str, got {value!r} ({type(value).__name__})")
        return value


@dataclass(frozen=True)
class Shape(Field):
    """A non-empty tuple of positive ints (an event shape)."""

    nullable: bool = False

    def _check(self, name, value):
        return list(check_shape(name, value))


@dataclass(frozen=True)
class Numbers(Field):
    """A list of ints or floats (``kind``), e.g. hidden widths."""

    kind: type = float
    nullable: bool = False

    def _check(self, name, value):
        ok = isinstance(value, (list, tuple)) and all(
            _is_real(v) and (self.kind is float or isinstance(v, numbers.Integral)) for v in value)
        if not ok:
            raise ValueError(f"{name} must be a list of {self.kind.__name__}, got {value!r}")
        return [self.kind(v) for v in value]


@dataclass(frozen=True)
class Betas(Field):
    """Adam's (beta1, beta2), each in [0, 1)."""

    def _check(self, name, value):
        if not isinstance(value, (list, tuple)):
            raise ValueError(f"{name} must be a list of float (Adam's beta1, beta2), got {value!r}")
        return list(check_betas(value, name))


@dataclass(frozen=True)
class Anything(Field):
    """A value the constructor checks itself (an object: a cost, a module, a network spec, a device)."""

    describe: str = "any value"
    nullable: bool = True

    def _check(self, name, value):
        return value


@dataclass(frozen=True)
class Device(Field):
    """A device name ("cpu", "cuda", "cuda:N", "auto") or a ``torch.device``, stored as its string
    (the solver resolves it)."""

    nullable: bool = True

    def _check(self, name, value):
        return str(value)


class Schema:
    """The arguments of one solver (``owner``): name -> :class:`Field`, in constructor order."""

    def __init__(self, owner: str, fields: Mapping[str, Field]):
        self.owner = owner
        self.fields = dict(fields)

    def __contains__(self, name: str) -> bool:
        return name in self.fields

    def __iter__(self):
        return iter(self.fields)

    def check_names(self, names: Iterable[str], where: str = "") -> None:
        """ValueError for the first name that is not an argument, with a "did you mean"."""
        for name in names:
            if name not in self.fields:
                raise ValueError(f"unknown key {where}{name} for {self.owner}{did_you_mean(str(name), self.fields)}; "
                                 f"accepted: {sorted(self.fields)}")

    def check(self, values: Mapping[str, Any], where: str = "") -> dict[str, Any]:
        """A normalised copy of ``values`` (a subset of the arguments); ValueError naming the first bad one."""
        self.check_names(values, where)
        return {name: self.fields[name].check(where + name, value) for name, value in values.items()}

    def check_all(self, values: Mapping[str, Any], where: str = "") -> tuple[dict[str, Any], list[str]]:
        """Like :meth:`check`, but collecting instead of raising: ``(normalised, problems)``, the
        normalised copy of the good values and one message per bad one (unknown names, with their
        "did you mean", then wrong types and ranges), worded as :meth:`check` words them."""
        good: dict[str, Any] = {}
        problems: list[str] = []
        for name, value in values.items():
            if name not in self.fields:
                problems.append(f"unknown key {where}{name} for {self.owner}{did_you_mean(str(name), self.fields)}; "
                                f"accepted: {sorted(self.fields)}")
                continue
            try:
                good[name] = self.fields[name].check(where + name, value)
            except ValueError as e:
                problems.append(str(e))
        return good, problems

    def arguments(self, frame_locals: Mapping[str, Any]) -> dict[str, Any]:
        """The checked arguments of a constructor, from ``locals()`` taken at its first line."""
        return self.check({name: frame_locals[name] for name in self.fields})
