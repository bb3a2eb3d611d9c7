"""Argument checks and seed derivation shared by every layer (no otgen imports)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np


def check_number(name: str, value: Any, low: float | None = None, high: float | None = None,
                 low_open: bool = False, integer: bool = False, high_open: bool = False) -> None:
    """Raise ValueError naming ``name``, ``value`` and the accepted range unless ``value`` is in it."""
    kind = "an int" if integer else "a number"
    is_num = isinstance(value, int) if integer else isinstance(value, (int, float))
    ok = is_num and not isinstance(value, bool) and (isinstance(value, int) or math.isfinite(value))
    if ok and low is not None:
        ok = value > low if low_open else value >= low
    if ok and high is not None:
        ok = value < high if high_open else value <= high
    if not ok:
        lo = "" if low is None else (f"> {low}" if low_open else f">= {low}")
        hi = "" if high is None else (f"< {high}" if high_open else f"<= {high}")
        rng = " and ".join(r for r in (lo, hi) if r)
        raise ValueError(f"{name} must be {kind}{' ' + rng if rng else ''}, got {value!r}")


def check_shape(name: str, value: Any) -> tuple[int, ...]:
    """``value`` as a non-empty tuple of positive ints; a ValueError naming ``name`` otherwise (floats,
    even integral ones, and booleans are refused rather than truncated)."""
    try:
        items = None if isinstance(value, (str, bytes, dict, set, frozenset)) else list(value)
    except TypeError:
        items = None
    if not items or not all(isinstance(s, (int, np.integer)) and not isinstance(s, bool) and s >= 1 for s in items):
        raise ValueError(f"{name} must be a non-empty sequence of positive ints, got {value!r}")
    return tuple(int(s) for s in items)


def dim_or_event_shape(dim: Any, event_shape: Any) -> tuple[int, ...]:
    """The event shape given by exactly one of ``dim`` (an int, meaning ``(dim,)``) and ``event_shape``."""
    if (dim is None) == (event_shape is None):
        raise ValueError("give exactly one of dim (an int >= 1) and event_shape (a tuple of ints), "
                         f"got dim={dim!r}, event_shape={event_shape!r}")
    if dim is not None:
        check_number("dim", dim, low=1, integer=True)
        return (int(dim),)
    return check_shape("event_shape", event_shape)


def as_points(name: str, value: Any) -> np.ndarray:
    """A point cloud (array or Tensor, any device) as a finite float64 array of shape (n, D), n >= 1;
    a ValueError naming ``name`` otherwise."""
    if hasattr(value, "detach"):  # a torch.Tensor (this module imports nothing of torch)
        value = value.detach().cpu().double().numpy()
    arr = np.asarray(value, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[0] < 1:
        raise ValueError(f"{name} must have shape (n, D) with n >= 1, got {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} has non-finite entries")
    return arr


def real_array(name: str, value: Any, dtype: Any = np.float64, error: type = ValueError) -> np.ndarray:
    """``value`` (a Tensor on any device, an array, a list of numbers) as a numpy array of ``dtype``;
    ``error`` (ValueError, or TypeError where the type is at fault) naming ``name`` for what holds no
    real numbers: None, a string, a mapping or set, a ragged list, complex, boolean or object values.
    Values beyond ``dtype``'s range become inf (the caller's finiteness check names them)."""
    if hasattr(value, "detach"):  # a torch.Tensor (this module imports nothing of torch)
        if value.is_complex() or str(value.dtype) == "torch.bool":
            raise error(f"{name} must hold real numbers, got a Tensor of dtype {value.dtype}")
        value = value.detach().cpu().numpy()
    if value is None or isinstance(value, (str, bytes, dict, set, frozenset)):
        raise error(f"{name} must be a Tensor, an array or a list of numbers, got {type(value).__name__}")
    try:
        arr = np.asarray(value)
    except (TypeError, ValueError) as e:  # e.g. a ragged list
        raise error(f"{name} must be a Tensor, an array or a list of numbers, got a {type(value).__name__} "
                    f"numpy cannot read as an array ({e})") from None
    if arr.dtype == np.bool_ or not (np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)):
        what = f"an array of dtype {arr.dtype}" if isinstance(value, np.ndarray) else \
            f"a {type(value).__name__} that numpy reads as dtype {arr.dtype}"
        raise error(f"{name} must hold real numbers (ints or floats), got {what}")
    with np.errstate(over="ignore"):
        return np.array(arr, dtype=dtype, order="C")


def derived_seed(seed: int, *stream: int) -> int:
    """An independent 63-bit seed for the named ``stream`` of ``seed`` (so the solver's training draws,
    its sampling draws and the loop's data draws never share a random sequence)."""
    return int(np.random.SeedSequence([seed, *stream]).generate_state(2, np.uint64)[0] >> np.uint64(1))


def check_betas(betas: Any, name: str = "betas") -> tuple[float, float]:
    """Adam's (beta1, beta2) as floats, each in [0, 1); a ValueError naming ``name`` otherwise."""
    try:
        out = tuple(float(b) for b in betas)
    except (TypeError, ValueError, OverflowError):
        out = ()
    if len(out) != 2 or not all(0 <= b < 1 for b in out):
        raise ValueError(f"{name} must be two numbers in [0, 1), got {betas!r}")
    return out  # type: ignore[return-value]
