"""Atomic, safe reading and writing of files (checkpoints, arrays, configs).

Writes go to a temporary file in the destination folder, are flushed to disk and then renamed over
the destination (``os.replace`` is atomic on POSIX and Windows), so a crash or Ctrl-C never leaves a
half-written file where a good one stood; the file gets the permissions of the user's umask (as
``open`` would give it), and an OS error (no space left, permission denied) names the destination.
Reads of ``.pt`` files use ``torch.load(weights_only=True)``: tensors, numbers, strings, lists and
dicts only, no pickled code; a truncated, corrupt or foreign file raises a ValueError naming the file
and what is wrong with it (the checksums of a ``.pt`` archive are verified first, so a flipped byte
in the weights is caught rather than loaded).

Big files are never copied whole in memory: ``save_torch`` serialises straight into the temporary
file, and ``load_torch`` checks the checksums on a memory map of the file, from which torch then
maps the tensors (``mmap=True``), so the file is read from disk once.
"""

from __future__ import annotations

import mmap as _mmap
import os
import pickle
import re
import struct
import tempfile
import warnings
import zipfile
import zlib
from pathlib import Path
from typing import Any, Callable

import torch


def umask() -> int:
    """The process's umask (read from /proc where there is one, so it is never changed, even briefly)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    old = os.umask(0o022)
    os.umask(old)
    return old


def atomic_write(path: str | os.PathLike, write: Callable[[Any], None], binary: bool = True) -> Path:
    """Call ``write(fileobj)`` on a temporary file, fsync it and rename it to ``path``.

    The file is created with mode ``0o666 & ~umask`` (a plain ``open`` would give the same). An
    ``OSError`` of the file system (ENOSPC, EACCES, ...) is raised again with ``path`` as its
    filename; nothing is left behind but what stood at ``path`` before."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as e:
        raise _named(e, path) from None
    try:
        with os.fdopen(fd, "wb" if binary else "w") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~umask())
        os.replace(tmp, path)
    except BaseException as e:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        if isinstance(e, OSError):
            raise _named(e, path) from None
        raise
    return path


def _named(e: OSError, path: Path) -> OSError:
    """``e`` as an OSError of the same kind whose filename is ``path`` (the file the caller asked for,
    not a temporary one); errors without an errno are returned as they are."""
    if e.errno is None:
        return e
    return OSError(e.errno, e.strerror or os.strerror(e.errno), os.fspath(path))


def save_torch(obj: Any, path: str | os.PathLike) -> Path:
    """``torch.save`` ``obj`` to ``path`` atomically: serialised straight into the temporary file (no
    copy of the whole file in memory), then fsync and rename. ``obj`` must be loadable with weights_only."""
    return atomic_write(path, lambda f: torch.save(obj, f))


# what torch.load (and zipfile) raise for a file that is not a complete torch archive
_BAD_FILE = (pickle.UnpicklingError, EOFError, zipfile.BadZipFile, RuntimeError, KeyError, ValueError,
             TypeError, AttributeError, IndexError, struct.error, OverflowError, NotImplementedError, zlib.error)


def _corrupt(path: Path, reason: str) -> ValueError:
    return ValueError(f"{path} is not a readable otgen file (truncated or corrupt: {reason})")


def _reason(e: BaseException) -> str:
    """A short reason from one of torch's exceptions: its first sentence, without torch's advice."""
    if isinstance(e, EOFError):
        return "the file ends early"
    if isinstance(e, KeyError):
        return f"no entry {e}"
    text = " ".join(str(e).split())
    text = re.sub(r"^PytorchStreamReader ", "", text)
    text = re.split(r"(?<=[a-z0-9)])\. ", text, maxsplit=1)[0].rstrip(".")
    if not text or "weights_only" in text or len(text) > 160:
        return type(e).__name__
    return text


def load_torch(path: str | os.PathLike, map_location: Any = "cpu", mmap: bool = False) -> Any:
    """Load a file written by ``save_torch`` with ``weights_only=True`` (no code is unpickled).

    The file is read from disk once: its archive checksums are verified on a memory map of it, and
    with ``mmap`` torch maps the tensors from the same pages instead of copying them (copy-on-write:
    changing a loaded tensor never changes the file). FileNotFoundError if there is no file;
    ValueError naming the file for an empty, truncated or corrupt one (including a checksum mismatch anywhere in the archive) and for one that
    holds pickled objects other than tensors and plain data (refused without running anything)."""
    path = Path(path)
    if not path.is_file():
        if path.is_dir():
            raise ValueError(f"{path} is a directory, not a file")
        raise FileNotFoundError(f"no such file: {path}")
    with open(path, "rb") as f:  # an OSError here (permission denied) is the file system's, and names the file
        if os.fstat(f.fileno()).st_size == 0:
            raise _corrupt(path, "the file is empty")
        with _mmap.mmap(f.fileno(), 0, access=_mmap.ACCESS_READ) as view:
            archive = zipfile.is_zipfile(view)
            if archive:  # torch's archives store a CRC-32 of every entry: check them all
                bad = _bad_entry(path, view)
                if bad is not None:
                    raise _corrupt(path, f"checksum mismatch in {bad}")
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*pickle protocol.*")
        try:  # torch maps only its zip archives (every file torch >= 1.6 writes)
            return torch.load(path, map_location=map_location, weights_only=True, mmap=mmap and archive)
        except pickle.UnpicklingError as e:
            if "global" in str(e).lower():  # a class or function to import and call: refused unrun
                raise ValueError(f"{path} holds objects otgen does not load (it loads only tensors and plain "
                                 "data, so no code in the file runs)") from None
            raise _corrupt(path, _foreign(path) or "unreadable data") from None
        except _BAD_FILE as e:
            raise _corrupt(path, _foreign(path) or _reason(e)) from None
        except OSError as e:  # torch's archive reader seeking past the end of a cut file
            reason = f"the archive is cut short or damaged ({e.strerror or e})"
            raise _corrupt(path, _foreign(path) or reason) from None


def _bad_entry(path: Path, view: _mmap.mmap) -> str | None:
    """The name of the first entry of the zip archive ``view`` whose data does not match its CRC-32 (or
    whose local header is damaged), None if all match. Entries stored uncompressed (all of torch's)
    are checked in place on the map, without copying; others through ``zipfile``. ValueError naming
    ``path`` for an archive whose directory cannot be read."""
    try:
        with zipfile.ZipFile(view) as z, memoryview(view) as whole:
            for info in z.infolist():
                if info.compress_type != zipfile.ZIP_STORED or info.flag_bits & 0x1:
                    try:
                        with z.open(info) as member:  # zipfile checks the CRC at the end of the entry
                            while member.read(1 << 20):
                                pass
                    except zipfile.BadZipFile:
                        return info.filename
                    continue
                start = info.header_offset
                head = bytes(whole[start:start + 30])
                if len(head) < 30 or head[:4] != b"PK\x03\x04":
                    return info.filename
                name_len, extra_len = struct.unpack("<HH", head[26:30])
                begin = start + 30 + name_len + extra_len
                if begin + info.compress_size > len(whole):
                    return info.filename
                with whole[begin:begin + info.compress_size] as data:
                    if zlib.crc32(data) != info.CRC:
                        return info.filename
    except _BAD_FILE as e:
        raise _corrupt(path, _reason(e)) from None
    return None


def _foreign(path: Path) -> str | None:
    """Why a file that does not begin as a zip archive (as every torch file since 1.6 does) failed to
    load: ``"not a torch file"`` (naming text); None for one that begins as an archive (then torch's
    own reason, e.g. a missing central directory of a cut file, says more)."""
    with open(path, "rb") as f:
        head = f.read(512)
    if head.startswith(b"PK"):
        return None
    is_text = all(32 <= b < 127 or b in b"\n\r\t" for b in head)
    return "not a torch file; it holds text" if is_text else "not a torch file"


def write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` to ``path`` atomically (UTF-8)."""
    data = text.encode("utf-8")
    return atomic_write(path, lambda f: f.write(data))
