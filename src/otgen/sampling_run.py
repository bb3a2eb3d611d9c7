"""What ``otgen sample`` writes: a trained model's outputs for n source points, generated in batches,
into one ``.npz`` file, ``.npz`` shards or PNG files, in memory that does not grow with n beyond the
output array (and, for a folder, not with n at all).

A face (beside ``cli`` and ``image_runs``): it asks any solver through the core's hooks
(``transport`` / ``sample`` for one batch of source points, ``present``) and holds no
solver-specific branch; nothing below the faces imports it.

Layouts (``Layout``, from ``--out``, ``--format`` and ``--shard-size``):

* ``FILE.npz`` — arrays ``x`` (n, *source_shape), ``y`` (n[, n_per_x], *shape) and, where the
  model's draws are latents that ``present`` decodes (EgNOT in a generator's latent space), ``z``
  (the draws themselves). The arrays are allocated once and filled batch by batch; the file is
  written atomically at the end.
* ``DIR`` with format ``npz`` — shards ``samples_00000.npz``, ``samples_00001.npz``, ... of up to
  ``shard_size`` source rows each, holding the same arrays for their rows; each is written atomically
  when full, and only one shard is held.
* ``DIR`` with format ``png`` — one image per output, ``000000.png``, ``000001.png``, ... in the order
  of ``y`` flattened over (n, n_per_x): uint8 from the [-1, 1] images (values outside are clipped;
  ``round((y + 1)·127.5)``, so ``png/127.5 − 1`` is within 1/255 of y), grey for one channel, RGB for
  three. Source points are drawn ``shard_size`` at a time; nothing else is held beyond one batch.

Random numbers: the source points are drawn block after block (all n at once for a file, one shard
at a time for a folder) from the caller's source generator, and the model's draws batch after batch
from its sampling generator, so the outputs are those of one ``transport(x, batch_size=b)`` call on
each block (the same numbers as one unbatched call wherever the solver's ``transport`` says so).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
import torch

from . import io
from .train.logging import progress_bar

DEFAULT_BATCH_SIZE = 512  # source points per network call (a multiple of 16: see semidual.push)
DEFAULT_SHARD_SIZE = 10_000  # source points per .npz shard (and drawn at once for a folder)
FORMATS = ("npz", "png")
SHARD_NAME = re.compile(r"samples_\d{5,}\.npz")
PNG_NAME = re.compile(r"\d{6,}\.png")


@dataclass(frozen=True)
class Layout:
    """Where the outputs go: ``path`` (a ``.npz`` file, or a folder when ``folder``), ``format``
    ("npz" or "png") and ``shard_size`` (source rows per shard / per draw of a folder's sources)."""

    path: Path
    format: str = "npz"
    folder: bool = False
    shard_size: int = DEFAULT_SHARD_SIZE


def layout(out: str, fmt: str | None = None, shard_size: int | None = None) -> Layout:
    """The ``Layout`` of ``--out`` / ``--format`` / ``--shard-size``; ValueError naming the flag for a
    path that is neither an ``.npz`` file nor a folder (a name without a suffix, or an existing
    folder), PNG into a file, a shard size given with a file or < 1, and a folder that already holds
    outputs of this kind (so that shards or images of two runs never mix)."""
    path = Path(out)
    if fmt is not None and fmt not in FORMATS:
        raise ValueError(f"--format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    if shard_size is not None and shard_size < 1:
        raise ValueError(f"--shard-size must be >= 1, got {shard_size}")
    if path.suffix == ".npz" and not path.is_dir():
        if fmt == "png":
            raise ValueError(f"--format png writes one PNG file per image into a folder; give --out a folder, "
                             f"got {out!r}")
        if shard_size is not None:
            raise ValueError(f"--shard-size applies to --out DIR (a folder of shards); --out {out} is one file")
        return Layout(path)
    if path.suffix and not path.is_dir():
        raise ValueError(f"--out must name an .npz file or a folder (a new name without a suffix, or an "
                         f"existing folder), got {out!r}")
    fmt = fmt or "npz"
    if path.is_dir():
        earlier = sorted(p.name for p in path.iterdir() if (SHARD_NAME if fmt == "npz" else PNG_NAME).fullmatch(p.name))
        if earlier:
            raise ValueError(f"--out {out}: holds {len(earlier)} {fmt} output(s) of an earlier run "
                             f"({earlier[0]}, ...); give a new or empty folder, or remove them")
    return Layout(path, fmt, folder=True, shard_size=shard_size or DEFAULT_SHARD_SIZE)


def blocks(n: int, size: int) -> Iterator[tuple[int, int]]:
    """Consecutive ranges [start, stop) of at most ``size`` rows that cover range(n)."""
    for start in range(0, n, size):
        yield start, min(start + size, n)


def numbered(folder: Path, index: int, total: int, width: int, pattern: str) -> Path:
    """``folder / pattern.format(number)``, the number zero-padded to ``width`` digits (more when
    ``total`` outputs need them), so the files sort in order."""
    return folder / pattern.format(f"{index:0{max(width, len(str(max(total - 1, 0))))}d}")


class NpzBlocks:
    """The arrays ``x``, ``y`` [, ``z``] of one block of rows, filled batch by batch and written as one
    ``.npz`` when the block ends: ``path_of(k)`` names the k-th block's file."""

    def __init__(self, path_of: Callable[[int], Path]):
        self.path_of, self.count, self.written = path_of, 0, []
        self.arrays: dict[str, np.ndarray] = {}

    def begin(self, x: np.ndarray) -> None:
        self.arrays = {"x": x}

    def put(self, start: int, y: np.ndarray, z: np.ndarray | None) -> None:
        """Rows [start, start + len(y)) of the block: y (rows[, k], *shape), z likewise or None."""
        rows = len(self.arrays["x"])
        for name, value in (("y", y), ("z", z)):
            if value is None:
                continue
            if name not in self.arrays:  # allocated once per block, from the first batch's shape
                self.arrays[name] = np.empty((rows, *value.shape[1:]), dtype=value.dtype)
            self.arrays[name][start:start + len(value)] = value

    def end(self) -> None:
        arrays, self.arrays = self.arrays, {}
        self.written.append(io.atomic_write(self.path_of(self.count), lambda f: np.savez(f, **arrays)))
        self.count += 1


class PngFiles:
    """One PNG file per image, numbered in the order of y flattened over (rows, k); ``total`` images
    in all (for the width of the numbers)."""

    def __init__(self, folder: Path, total: int):
        self.folder, self.total, self.count, self.written = folder, total, 0, []

    def begin(self, x: np.ndarray) -> None:
        pass

    def put(self, start: int, y: np.ndarray, z: np.ndarray | None) -> None:
        from PIL import Image

        for image in to_uint8(images_of(y)):
            path = numbered(self.folder, self.count, self.total, 6, "{}.png")
            picture = Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image)
            self.written.append(io.atomic_write(path, lambda f: picture.save(f, format="PNG")))
            self.count += 1

    def end(self) -> None:
        pass


def images_of(y: np.ndarray) -> np.ndarray:
    """Outputs (rows[, k], C, H, W) with C = 1 or 3 as images (rows·k, C, H, W); ValueError naming
    ``--format png`` for outputs that are not images."""
    if y.ndim < 4 or y.shape[-3] not in (1, 3):
        raise ValueError(f"--format png writes images (C, H, W) with C = 1 (grey) or 3 (RGB); this run's outputs "
                         f"have shape {tuple(y.shape[1:])} each: use --format npz")
    return y.reshape(-1, *y.shape[-3:])


def to_uint8(images: np.ndarray) -> np.ndarray:
    """Images (m, C, H, W) in [-1, 1] as uint8 (m, H, W, C): round((y + 1)·127.5), clipped to [0, 255]."""
    return np.clip(np.rint((images + 1.0) * 127.5), 0, 255).astype(np.uint8).transpose(0, 2, 3, 1)


@dataclass
class Written:
    """What ``write_samples`` wrote: the files, the shapes of all x and y together, and the first
    ``keep`` rows of x and of the (presented) y, for a grid (None without ``keep``)."""

    paths: list[Path]
    x_shape: tuple[int, ...]
    y_shape: tuple[int, ...]
    head_x: torch.Tensor | None = None
    head_y: torch.Tensor | None = None


def writer_for(where: Layout, n: int, n_per_x: int) -> NpzBlocks | PngFiles:
    """The writer of ``where`` for n source points with ``n_per_x`` outputs each."""
    if not where.folder:
        return NpzBlocks(lambda _: where.path)
    if where.format == "png":
        return PngFiles(where.path, n * n_per_x)
    n_shards = -(-n // where.shard_size)
    return NpzBlocks(lambda k: numbered(where.path, k, n_shards, 5, "samples_{}.npz"))


def rows_of(points: np.ndarray) -> Callable[[int], torch.Tensor]:
    """A ``draw_x`` for given points (n, *source_shape): each call returns the next rows, in order."""
    taken = 0

    def take(rows: int) -> torch.Tensor:
        nonlocal taken
        taken += rows
        return torch.from_numpy(np.ascontiguousarray(points[taken - rows:taken]))
    return take


def draws(model, x: torch.Tensor, n_per_x: int, generator: torch.Generator, **keywords: Any) -> torch.Tensor:
    """One batch of the model's draws: ``transport`` (n_per_x = 1) or ``sample``, with ``keywords``
    (e.g. EgNOT's ``temperature``)."""
    if n_per_x > 1:
        return model.sample(x, n_per_x, rng=generator, **keywords)
    return model.transport(x, rng=generator, **keywords)


def write_samples(model, draw_x: Callable[[int], torch.Tensor], n: int, where: Layout, generator: torch.Generator,
                  n_per_x: int = 1, batch_size: int = DEFAULT_BATCH_SIZE, keep: int = 0,
                  progress: bool = True, keywords: dict | None = None) -> Written:
    """Generate the outputs of ``n`` source points and write them to ``where``.

    ``draw_x(rows)``: the next ``rows`` source points (rows, *source_shape), called block after block
    (once with n for a file, once per shard for a folder); ``generator``: the model's draws, batch
    after batch of at most ``batch_size`` points; ``n_per_x``: draws per point (``sample``); ``keep``:
    rows of x and y to return for a grid; ``keywords``: passed to every ``sample`` / ``transport`` call.
    A progress bar counts the points (on a terminal only)."""
    writer = writer_for(where, n, n_per_x)
    result, heads = Written([], (n,), (n,)), []
    with progress_bar(total=n, initial=0, enabled=progress, desc="sample") as bar:
        for start, stop in blocks(n, where.shard_size if where.folder else n):
            x = draw_x(stop - start)
            writer.begin(x.cpu().numpy())
            for i, j in blocks(stop - start, batch_size):
                y = draws(model, x[i:j], n_per_x, generator, **(keywords or {}))
                shown = model.present(y)
                writer.put(i, shown.cpu().numpy(), None if shown is y else y.cpu().numpy())
                if start + i < keep:
                    heads.append((x[i:j][:keep - start - i].cpu(), shown[:keep - start - i].cpu()))
                result.x_shape, result.y_shape = (n, *x.shape[1:]), (n, *shown.shape[1:])
                bar.update(j - i)
            writer.end()
    result.paths = writer.written
    if heads:
        result.head_x, result.head_y = (torch.cat(part) for part in zip(*heads))
    return result
