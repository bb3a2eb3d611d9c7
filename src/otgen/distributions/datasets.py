"""Image data sets that stream: the pixels stay where they are stored and are read per item.

A data set of 200 000 photos costs its list of file names, not its pixels. Every data set here is a
``torch.utils.data.Dataset`` (for the training loop's ``DataLoader`` and its worker processes) and a
``Sampler`` (``ds(n, generator=g)`` -> ``(n, C, H, W)`` float32 in [-1, 1], for everything that only
needs a few images):

- ``FolderImages``: PNG / JPEG / BMP files, decoded (and cropped, resized, converted) by PIL per item
  into uint8 ``(C, H, W)``;
- ``ArrayImages``: the rows of an array, kept in its stored dtype and layout: a ``.npy`` file is
  memory-mapped, a ``.npz`` archive, a gzipped MNIST file or CIFAR-10's pickled batches are read into
  memory as stored (uint8: a quarter of the float32 size).

Reading and converting are two steps, so the conversion can run per batch on the training device:

- ``ds.read(i)`` -> the raw item ``(C, H', W')`` (uint8 for image files; the array's dtype for arrays),
  ``ds[i]`` the same;
- ``ds.convert(raw)`` -> ``(n, *ds.event_shape)`` float32 in [-1, 1] for a raw batch ``(n, C, H', W')``
  on any device (value range, channels and, for arrays, the resize happen here).

A file that cannot be read while the data streams (corrupt, truncated, deleted since the listing) is
*skipped*: ``read_rows`` puts another row of the same batch in its place and reports it once
(``SkippedImageWarning``, naming the file). A file whose pixels do not fit the data set (another
size with ``size=None``) is an error naming the file.
"""

from __future__ import annotations

import struct
import warnings
import zlib
from dataclasses import dataclass
from typing import Iterator, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from .base import Sampler

__all__ = ["ImageDataset", "FolderImages", "ArrayImages", "SkippedImageWarning", "ReadProblem", "read_rows",
           "read_one", "assemble", "announce", "LUMA"]

#: ITU-R 601 luma weights (PIL's ``convert("L")``): RGB -> grey.
LUMA = (0.299, 0.587, 0.114)


class SkippedImageWarning(UserWarning):
    """An image file that could not be read was skipped (announced once per file)."""


@dataclass(frozen=True)
class ReadProblem:
    """Why item ``index`` could not be read: ``message`` names the file; ``fatal`` problems stop the
    run (the data set is inconsistent), the others skip the item."""

    index: int
    message: str
    fatal: bool = False


class ImageDataset(Sampler, torch.utils.data.Dataset):
    """Base class of the streaming image data sets (see the module docstring).

    Attributes: ``event_shape`` ``(C, H, W)`` of converted images, ``labels`` (LongTensor ``(N,)`` or
    None; for evaluation only), ``class_names``, ``flip`` (random horizontal flips while training:
    the training loop draws one fair coin per image and position of its data order), ``source`` (the
    path, for messages).
    """

    value_range = (-1.0, 1.0)

    def __init__(self, n: int, event_shape: tuple[int, int, int], labels=None, class_names=None,
                 flip: bool = False, source: str = "the data set"):
        if not isinstance(flip, (bool, np.bool_)):
            raise ValueError(f"flip must be True or False (random horizontal flips while training), got {flip!r}")
        self._n = int(n)
        self.event_shape = tuple(int(s) for s in event_shape)
        self.labels = None if labels is None else torch.as_tensor(np.asarray(labels, dtype=np.int64))
        self.class_names = None if class_names is None else tuple(str(c) for c in class_names)
        self.flip = bool(flip)
        self.source = source

    # -- what a subclass provides ---------------------------------------------------------------------
    def read(self, i: int) -> torch.Tensor:
        """The raw item ``i``: ``(C, H', W')`` as stored. ``OSError``/``ValueError`` naming the file if
        it cannot be read (``ReadProblem`` sorting: see ``read_one``)."""
        raise NotImplementedError

    def convert(self, raw: torch.Tensor) -> torch.Tensor:
        """Raw items ``(n, C, H', W')`` (any device) -> ``(n, *event_shape)`` float32 in [-1, 1]."""
        raise NotImplementedError

    # -- the Dataset and Sampler interfaces -----------------------------------------------------------
    def __len__(self) -> int:
        return self._n

    def __getitem__(self, i: int) -> torch.Tensor:
        return self.read(int(i))

    @property
    def channels(self) -> int:
        return self.event_shape[0]

    def _check_index(self, idx: torch.Tensor) -> None:
        if idx.numel() and (int(idx.min()) < 0 or int(idx.max()) >= self._n):
            raise IndexError(f"indices must lie in 0..{self._n - 1}, got {idx.min()}..{idx.max()}")

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """``n`` images drawn uniformly with replacement (read in this process): ``(n, C, H, W)``."""
        idx = torch.randint(0, self._n, (n,), generator=generator)
        return self.convert(read_rows(self, idx.tolist()))

    def sample_with_labels(self, n: int, generator: torch.Generator | None = None):
        """``(images (n, C, H, W), labels (n,))``: the rows ``self(n, generator)`` draws, with their labels."""
        if self.labels is None:
            raise ValueError(f"sample_with_labels: {self.source} has no labels")
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ValueError(f"n must be a positive int, got {n!r}")
        idx = torch.randint(0, self._n, (n,), generator=generator)
        return self.convert(read_rows(self, idx.tolist())), self.labels[idx]

    def batches(self, batch_size: int = 256, limit: int | None = None, device: torch.device | str | None = None,
                indices: Sequence[int] | None = None) -> Iterator[torch.Tensor]:
        """The images ``indices`` (default: all, in order), at most ``limit`` of them, ``batch_size`` at a
        time, converted on ``device``: for evaluation, in memory of one batch."""
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be an int >= 1, got {batch_size!r}")
        rows = list(range(self._n)) if indices is None else [int(i) for i in indices]
        rows = rows if limit is None else rows[:int(limit)]
        for lo in range(0, len(rows), batch_size):
            raw = read_rows(self, rows[lo:lo + batch_size])
            yield self.convert(raw.to(device) if device is not None else raw)

    @property
    def images(self) -> torch.Tensor:
        """Every image, converted: ``(N, C, H, W)`` float32 in [-1, 1]. This holds the whole set in
        memory (4 bytes a pixel): for small sets and tests; training streams instead."""
        return torch.cat(list(self.batches(1024)))

    def __repr__(self) -> str:
        c, h, w = self.event_shape
        return f"{type(self).__name__}(N={len(self)}, shape=(C={c}, H={h}, W={w}), source={self.source})"


# --------------------------------------------------------------------------- reading many rows


def read_one(dataset: ImageDataset, i: int, flip: bool = False) -> tuple[torch.Tensor | None, ReadProblem | None]:
    """``(raw item, None)``, flipped left-right if ``flip``; or ``(None, problem)`` if it cannot be read.
    Never raises for a bad file (so a ``DataLoader`` worker returns the problem instead of a traceback)."""
    try:
        item = dataset.read(i)
    except _FatalItem as e:
        return None, ReadProblem(i, str(e), fatal=True)
    except Exception as e:  # anything a decoder raises on a corrupt, truncated or vanished file
        text = str(e) if isinstance(e, (ValueError, OSError)) and str(e) else f"{type(e).__name__}: {e}"
        return None, ReadProblem(i, text)
    return (item.flip(-1) if flip else item), None


def assemble(results: Sequence[tuple[torch.Tensor | None, ReadProblem | None]]) -> tuple[torch.Tensor, list[ReadProblem]]:
    """One raw batch ``(n, C, H', W')`` from ``read_one`` results: an item that could not be read is
    replaced by the next readable item of the batch (cyclically), so the batch keeps its size; the
    problems are returned. ValueError if no item of the batch could be read."""
    problems = [p for _, p in results if p is not None]
    good = [k for k, (item, _) in enumerate(results) if item is not None]
    if not good:
        raise ValueError("no image of a batch could be read: " + "; ".join(p.message for p in problems[:3]))
    if problems:
        nxt = {k: next((g for g in good if g > k), good[0]) for k in range(len(results))}
        items = [results[k][0] if results[k][0] is not None else results[nxt[k]][0] for k in range(len(results))]
    else:
        items = [item for item, _ in results]
    return torch.stack(items), problems


_announced: set[str] = set()


def announce(problems: Sequence[ReadProblem], name: str = "data") -> None:
    """In the main process: raise ``ValueError`` for a fatal problem; warn once per file for the others."""
    for p in problems:
        if p.fatal:
            raise ValueError(f"{name}: {p.message}")
    for p in problems:
        if p.message not in _announced:
            _announced.add(p.message)
            warnings.warn(f"{name}: skipped an image that cannot be read ({p.message}); "
                          "a row of the same batch stands in for it", SkippedImageWarning, stacklevel=3)


def read_rows(dataset: ImageDataset, indices: Sequence[int], flips: Sequence[bool] | None = None,
              name: str | None = None) -> torch.Tensor:
    """The raw batch of ``indices`` read in this process (unreadable files skipped and announced)."""
    flips = flips if flips is not None else [False] * len(indices)
    batch, problems = assemble([read_one(dataset, int(i), bool(f)) for i, f in zip(indices, flips)])
    announce(problems, name or dataset.source)
    return batch


class _FatalItem(ValueError):
    """An item that does not fit the data set (e.g. another size): stops the run, naming the file."""


# --------------------------------------------------------------------------- a folder of image files

_GREY_8BIT = ("1", "L", "LA", "La")
_GREY_16BIT = ("I;16", "I;16L", "I;16B", "I;16N", "I")
#: what PIL raises for files it cannot decode
DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, IndexError, struct.error, zlib.error)


def is_grey(im) -> bool:
    """Whether a PIL image is grey (a palette image only if every palette entry is grey)."""
    if im.mode == "P":
        pal = np.asarray(im.convert("RGB")).reshape(-1, 3)
        return bool((pal == pal[:, :1]).all())
    return im.mode in _GREY_8BIT + _GREY_16BIT or im.mode == "F"


def open_header(path: str):
    """The PIL image of ``path`` opened lazily (header only): size and mode; ValueError naming the file."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            if im.mode == "P":
                im.load()  # the palette decides grey or colour
                return im.copy()
            return im
    except DECODE_ERRORS + (Image.DecompressionBombError,) as e:
        raise ValueError(f"cannot read image file {path!r} ({type(e).__name__}: {e}); "
                         "expected a complete PNG, JPEG or BMP image") from None


def decode_uint8(path: str, channels: int, size: int | None) -> np.ndarray:
    """The image file ``path`` as uint8 ``(channels, H, W)``.

    RGB (alpha dropped) or grey (PIL ``convert("L")``); 16-bit grey is scaled to 8 bits
    (round(v·255/65535)); with ``size``: centre-crop to a square, then PIL bicubic resize to
    ``size × size``. ValueError naming the file if it cannot be decoded.
    """
    from PIL import Image

    try:
        with Image.open(path) as im:
            im.load()  # decode now: a truncated or corrupt file fails here
            if channels == 3 and not is_grey(im):
                im = im.convert("RGB")
            elif im.mode in _GREY_16BIT:
                a = np.asarray(im, dtype=np.float64)
                if a.min() < 0 or a.max() > 65535:
                    raise ValueError(f"mode {im.mode} values outside 0..65535")
                im = Image.fromarray(np.rint(a * (255.0 / 65535.0)).astype(np.uint8), mode="L")
            elif im.mode == "F":
                raise ValueError("floating-point pixels (mode F); expected 8- or 16-bit pixels")
            else:
                im = im.convert("L") if im.mode in _GREY_8BIT else im.convert("RGB").convert("L")
            if size is not None:
                w, h = im.size
                side = min(w, h)
                left, top = (w - side) // 2, (h - side) // 2
                im = im.crop((left, top, left + side, top + side))  # crop first: pixels outside never leak in
                if side != size:
                    im = im.resize((size, size), Image.Resampling.BICUBIC)
            a = np.array(im, dtype=np.uint8)  # a writable copy
    except DECODE_ERRORS + (Image.DecompressionBombError,) as e:
        raise ValueError(f"cannot read image file {path!r} ({type(e).__name__}: {e}); "
                         "expected a complete PNG, JPEG or BMP image") from None
    a = a[None] if a.ndim == 2 else np.moveaxis(a, -1, 0)
    if a.shape[0] != channels:  # grey -> RGB
        a = np.repeat(a, channels, axis=0)
    return np.ascontiguousarray(a)


class FolderImages(ImageDataset):
    """Image files, decoded per item into uint8 ``(C, H, W)`` (see ``decode_uint8``).

    ``files``: the paths, in order; ``channels``: 1 or 3; ``size``: None (every file must have the
    first file's size: another size stops the run naming the file) or the side of the square images.
    The first file's header gives the shape; nothing else is opened until it is read.
    """

    def __init__(self, files: Sequence[str], channels: int, size: int | None, labels=None, class_names=None,
                 flip: bool = False, source: str = "the image folder"):
        self.files = list(files)
        first = open_header(self.files[0])
        w, h = first.size if size is None else (size, size)
        super().__init__(len(self.files), (channels, h, w), labels, class_names, flip, source)
        self.size = size

    def read(self, i: int) -> torch.Tensor:
        path = self.files[i]
        a = decode_uint8(path, self.event_shape[0], self.size)
        if a.shape[1:] != self.event_shape[1:]:
            raise _FatalItem(f"image file {path!r} is {a.shape[2]}x{a.shape[1]} pixels but {self.files[0]!r} is "
                             f"{self.event_shape[2]}x{self.event_shape[1]}; pass size= to resize all images to one size")
        return torch.from_numpy(a)

    def convert(self, raw: torch.Tensor) -> torch.Tensor:
        return (raw.to(torch.float32) / 255.0 * 2.0 - 1.0).clamp_(-1.0, 1.0)


# --------------------------------------------------------------------------- rows of an array


def convert_channels(x: torch.Tensor, channels: int | None) -> torch.Tensor:
    """(N, C, H, W) with C in {1, 3} -> ``channels`` channels (None: unchanged; 3 -> 1 by ``LUMA``)."""
    c = x.shape[1]
    if channels is None or channels == c:
        return x
    if channels == 3:
        return x.expand(-1, 3, -1, -1).contiguous()
    w = torch.tensor(LUMA, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    return (x * w).sum(1, keepdim=True)


def resize_square(x: torch.Tensor, size: int | None) -> torch.Tensor:
    """(N, C, H, W) in [0, 1] -> (N, C, size, size): centre-crop to a square, then antialiased bilinear
    resize (a convex combination of pixels: the result stays in [0, 1])."""
    if size is None:
        return x
    h, w = x.shape[-2:]
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    x = x[..., top: top + side, left: left + side]
    if side == size:
        return x.contiguous()
    y = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
    return y.clamp_(0.0, 1.0)


class ArrayImages(ImageDataset):
    """The rows ``rows`` of an image array kept as stored (a ``np.memmap`` is read row by row).

    ``array``: ``(N, H, W)``, ``(N, H, W, C)`` or ``(N, C, H, W)`` as ``layout`` ('nhw', 'nhwc',
    'nchw') says, C in {1, 3, 4} (a 4th channel is alpha, dropped); ``value_range`` ``(lo, hi)``: the
    values mapped linearly to [-1, 1]; ``channels``: None (as stored) or 1 / 3; ``size``: None or the
    side after a centre crop and an antialiased bilinear resize (per batch, in ``convert``).
    """

    def __init__(self, array: np.ndarray, layout: str, value_range: tuple[float, float], rows: np.ndarray,
                 channels: int | None = None, size: int | None = None, labels=None, class_names=None,
                 flip: bool = False, source: str = "the array"):
        self.array, self.layout, self.rows = array, layout, np.asarray(rows, dtype=np.int64)
        self.lo, self.hi = float(value_range[0]), float(value_range[1])
        shape = array.shape
        stored_c = 1 if layout == "nhw" else (shape[1] if layout == "nchw" else shape[-1])
        h, w = shape[-2:] if layout in ("nhw", "nchw") else shape[1:3]
        c = channels or min(stored_c, 3)
        super().__init__(len(self.rows), (c, size or h, size or w), labels, class_names, flip, source)
        self.channels_out, self.size = channels, size
        # the arithmetic of the conversion: float32, or float64 for wide dtypes (as the values demand)
        self.work = torch.float32 if array.dtype.itemsize <= 2 or array.dtype == np.float32 else torch.float64

    def read(self, i: int) -> torch.Tensor:
        row = np.asarray(self.array[self.rows[i]])
        if self.layout == "nhw":
            row = row[None]
        elif self.layout == "nhwc":
            row = np.moveaxis(row, -1, 0)
        if row.shape[0] == 4:
            row = row[:3]
        if row.dtype == np.bool_:
            row = row.astype(np.uint8)
        return torch.from_numpy(np.array(row, order="C"))  # a copy: the array itself may be a read-only map

    def convert(self, raw: torch.Tensor) -> torch.Tensor:
        unit = ((raw.to(self.work) - self.lo) / (self.hi - self.lo)).to(torch.float32).clamp_(0.0, 1.0)
        x = resize_square(convert_channels(unit, self.channels_out), self.size)
        return (x * 2.0 - 1.0).clamp_(-1.0, 1.0).contiguous()
