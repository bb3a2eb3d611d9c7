"""Name -> object registries: one mechanism and one name rule for every registry in otgen (solvers,
networks, costs, conjugates, samplers, data, pairs, bench suites).

A name is looked up without regard to case, and '-' reads as '_' ("Swiss-Roll" finds "swiss_roll";
letters and digits must match). An unknown name raises ValueError with the registry's kind (or the
argument it came from, ``where``), the closest registered name ("did you mean") and the sorted list
of names::

    PENALTIES = Registry("conjugate")
    PENALTIES.add("kl", KL)

    @PENALTIES.register("chi")
    class ChiSquare: ...

    PENALTIES.get("KL")           # KL
    PENALTIES.get("kll")          # ValueError: unknown conjugate 'kll' (did you mean 'kl'?); known: [...]
    PENALTIES.get("kll", where="model.phi1")
                                  # ValueError: model.phi1 must be one of [...], got 'kll' (did you mean 'kl'?)
    PENALTIES.canonical("Chi")    # "chi", the name as registered (what configs and files store)

A registry is also a mapping of its names (``in``, ``reg[name]``, ``reg.get(name, default)``,
iteration over the names): ``add`` / ``register`` refuse a taken name, while item assignment
``reg[name] = obj`` replaces on purpose (a test's or a script's override; ``del reg[name]`` undoes it).
"""

from __future__ import annotations

import difflib
from typing import Any, Callable, Generic, Iterator, TypeVar

__all__ = ["Registry", "normalise"]

T = TypeVar("T")
_RAISE = object()  # get()'s default: raise for an unknown name


def normalise(name: str) -> str:
    """The lookup key of ``name``: lower case, '-' read as '_'."""
    return name.strip().lower().replace("-", "_")


class Registry(Generic[T]):
    """Names -> objects of one ``kind`` ("solver", "conjugate", ...), in registration order."""

    def __init__(self, kind: str):
        self.kind = kind
        self._items: dict[str, tuple[str, T]] = {}  # normalised name -> (name as registered, object)

    def add(self, name: str, obj: T) -> T:
        """Register ``obj`` under ``name``; ValueError if that name (up to the name rule) is taken."""
        if not isinstance(name, str) or not name:
            raise ValueError(f"a {self.kind} name must be a non-empty str, got {name!r}")
        key = normalise(name)
        if key in self._items:
            raise ValueError(f"a {self.kind} named {self._items[key][0]!r} is registered already")
        self._items[key] = (name, obj)
        return obj

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator form of :meth:`add`."""
        return lambda obj: self.add(name, obj)

    def __setitem__(self, name: str, obj: T) -> None:
        """Register ``obj`` under ``name``, replacing what was registered under it (a deliberate override)."""
        if not isinstance(name, str) or not name:
            raise ValueError(f"a {self.kind} name must be a non-empty str, got {name!r}")
        self._items[normalise(name)] = (name, obj)

    def __delitem__(self, name: str) -> None:
        """Remove ``name``; KeyError if it is not registered (as a dict)."""
        if name not in self:
            raise KeyError(name)
        del self._items[normalise(name)]

    def __getitem__(self, name: str) -> T:
        return self.get(name)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and normalise(name) in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._items)

    def names(self) -> list[str]:
        """The registered names, as registered, in registration order."""
        return [name for name, _ in self._items.values()]

    def keys(self) -> list[str]:
        return self.names()

    def items(self) -> list[tuple[str, T]]:
        return list(self._items.values())

    def values(self) -> list[T]:
        return [obj for _, obj in self._items.values()]

    def canonical(self, name: Any, where: str = "") -> str:
        """``name`` as registered; ValueError naming ``where`` (e.g. ``model.phi1``) otherwise."""
        return self._entry(name, where)[0]

    def get(self, name: Any, default: Any = _RAISE, *, where: str = "") -> T:
        """The object registered as ``name``; without a ``default``, ValueError with a "did you mean"
        (naming ``where``, e.g. ``model.phi1``) for a name that is not registered."""
        if default is not _RAISE and name not in self:
            return default
        return self._entry(name, where)[1]

    def suggest(self, name: Any) -> str:
        """``" (did you mean 'x'?)"`` for the registered name closest to ``name``, or ``""``."""
        if not isinstance(name, str):
            return ""
        close = difflib.get_close_matches(normalise(name), list(self._items), n=1, cutoff=0.6)
        return f" (did you mean {self._items[close[0]][0]!r}?)" if close else ""

    def _entry(self, name: Any, where: str) -> tuple[str, T]:
        entry = self._items.get(normalise(name)) if isinstance(name, str) else None
        if entry is not None:
            return entry
        known = sorted(self.names())
        if not isinstance(name, str):
            raise ValueError(f"{where} must be a {self.kind} name, one of {known}, got {name!r}" if where else
                             f"a {self.kind} name must be a str, one of {known}; got {name!r}")
        raise ValueError(f"{where} must be one of {known}, got {name!r}{self.suggest(name)}" if where else
                         f"unknown {self.kind} {name!r}{self.suggest(name)}; known: {known}")

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, {self.names()})"
