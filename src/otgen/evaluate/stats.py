"""Reference statistics files: ``.npz`` archives with ``mu`` (k,) and ``sigma`` (k, k).

This is the format pytorch-fid writes (``--save-stats``) and the papers' repositories ship, e.g. UOTM's
``fid_stats_cifar10_train.npz`` (Inception pool-3: k = 2048): ``mu`` the mean and ``sigma`` the unbiased
covariance (``np.cov``) of the reference features, both float64. Other arrays may sit beside them (otgen
writes e.g. ``n``, the number of features); ``load_stats`` reads only ``mu`` and ``sigma``.

Files are written atomically (a temporary file in the same folder, then ``os.replace``, via
``otgen.io.atomic_write``) and read with ``np.load(allow_pickle=False)``, so loading never runs code.
"""

from __future__ import annotations

import io
import os
import zipfile
from pathlib import Path

import numpy as np

from .. import io as otgen_io
from .scores import SYM_RTOL

__all__ = ["save_stats", "load_stats"]


def _as_real(name: str, value) -> np.ndarray:
    """``value`` as a float64 array; ValueError naming ``name`` for non-numeric, complex or boolean data."""
    if hasattr(value, "detach"):  # a torch Tensor on any device
        value = value.detach().cpu().numpy()
    try:
        arr = np.asarray(value)
    except (TypeError, ValueError) as e:
        raise ValueError(f"{name} must be an array of real numbers ({e})") from None
    if arr.dtype == np.bool_ or not (np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)):
        raise ValueError(f"{name} must hold real numbers, got dtype {arr.dtype}")
    return arr.astype(np.float64)


def _checked(mu, sigma, mu_name: str, sigma_name: str) -> tuple[np.ndarray, np.ndarray]:
    """(mu (k,), sigma (k, k)) as float64, sigma symmetrised; ValueError naming the offender for a wrong
    shape, non-finite values or a sigma with |S − Sᵀ| > SYM_RTOL · max|S|."""
    m, s = _as_real(mu_name, mu), _as_real(sigma_name, sigma)
    if m.ndim != 1 or m.shape[0] < 1:
        raise ValueError(f"{mu_name} must have shape (k,) with k >= 1, got {m.shape}")
    k = m.shape[0]
    if s.shape != (k, k):
        raise ValueError(f"{sigma_name} must have shape ({k}, {k}) to match {mu_name} of shape ({k},), got {s.shape}")
    for name, arr in ((mu_name, m), (sigma_name, s)):
        if not np.isfinite(arr).all():
            raise ValueError(f"{name} has non-finite values (nan or inf)")
    if np.abs(s - s.T).max() > SYM_RTOL * np.abs(s).max():
        raise ValueError(f"{sigma_name} must be symmetric (|S - S^T| <= {SYM_RTOL:g} max|S|), "
                         f"largest asymmetry {np.abs(s - s.T).max():.3g}")
    return m, 0.5 * (s + s.T)


def save_stats(path: str | os.PathLike, mu, sigma, **extra) -> Path:
    """Write ``mu`` (k,) and ``sigma`` (k, k) (float64) and any ``extra`` numeric arrays or strings to
    the ``.npz`` at ``path`` (used as given: no suffix is added), atomically; returns the path.

    ValueError naming the argument for a bad ``mu``/``sigma`` (as ``load_stats`` checks) or an
    ``extra`` value that would need pickling."""
    m, s = _checked(mu, sigma, "mu", "sigma")
    arrays = {"mu": m, "sigma": s}
    for key, value in extra.items():
        if hasattr(value, "detach"):
            value = value.detach().cpu().numpy()
        arr = np.asarray(value)
        if arr.dtype == object:
            raise ValueError(f"{key} must be a number, a string or an array of them (no pickled objects), "
                             f"got {type(value).__name__}")
        arrays[key] = arr
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    data = buf.getvalue()
    return otgen_io.atomic_write(path, lambda f: f.write(data))


def _open_npz(path: Path):
    """``np.load(path, allow_pickle=False)`` as an NpzFile; errors naming ``path`` otherwise."""
    if not path.exists():
        raise FileNotFoundError(f"no such statistics file: {path}")
    if path.is_dir():
        raise ValueError(f"{path} is a directory, not a statistics file (.npz with mu and sigma)")
    if not zipfile.is_zipfile(path):
        with open(path, "rb") as f:
            head = f.read(6)
        what = "a .npy array" if head == b"\x93NUMPY" else ("empty" if not head else "not a zip archive")
        raise ValueError(f"{path} is not an .npz statistics file ({what}); expected an .npz with mu and sigma")
    try:
        data = np.load(path, allow_pickle=False)
    except (ValueError, OSError, zipfile.BadZipFile, EOFError) as e:
        raise ValueError(f"{path} is not a readable .npz statistics file ({e})") from None
    return data


def _read_key(data, key: str, path: Path) -> np.ndarray:
    try:
        return data[key]
    except (ValueError, OSError, zipfile.BadZipFile, EOFError, KeyError) as e:
        raise ValueError(f"{path}: {key} cannot be read ({e}); it must be a numeric array "
                         "(files holding pickled objects are refused)") from None


def load_stats(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """Read reference statistics: ``(mu (k,), sigma (k, k))`` as float64 (sigma symmetrised).

    Read with ``np.load(allow_pickle=False)``. FileNotFoundError for a missing file; ValueError naming
    the file for a directory, a file that is not an ``.npz`` archive (e.g. a ``.npy`` array) or is
    corrupt, missing ``mu``/``sigma`` keys (listing the keys found), an entry that is not a numeric
    array, wrong shapes (mu (k,), sigma (k, k)), non-finite values, or an asymmetric sigma
    (|S − Sᵀ| > 1e-6 · max|S|)."""
    path = Path(path)
    data = _open_npz(path)
    with data:
        keys = sorted(data.files)
        missing = [key for key in ("mu", "sigma") if key not in keys]
        if missing:
            raise ValueError(f"{path} has no {' and no '.join(missing)} (keys found: {', '.join(keys) or 'none'}); "
                             "a statistics file holds mu (k,) and sigma (k, k)")
        mu, sigma = _read_key(data, "mu", path), _read_key(data, "sigma", path)
    return _checked(mu, sigma, f"{path}: mu", f"{path}: sigma")
