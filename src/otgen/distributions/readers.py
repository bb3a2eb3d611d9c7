"""Readers of a user's image files: a folder of images, ``.npy``/``.npz`` arrays, MNIST IDX files
and CIFAR-10 python batches. Nothing is downloaded; every reader reads local files only.

Every reader returns a streaming data set (``datasets.py``: ``FolderImages`` or ``ArrayImages``): the
images stay as stored (files decoded per item, a ``.npy`` memory-mapped, other arrays in their stored
dtype) and come out ``(n, C, H, W)`` float32 in [-1, 1] (−1 black, +1 full intensity) per batch, with
labels ``(N,)`` where the format has them. Common keyword arguments:

- ``size``: ``None`` (keep the stored size) or an int >= 1: centre-crop to a square, then resize to
  ``size × size`` (PIL bicubic for image files; antialiased bilinear for arrays);
- ``channels``: ``None`` (as stored), 1 (convert RGB to grey with the ITU-R 601 luma weights
  0.299, 0.587, 0.114, as PIL's ``convert("L")``) or 3 (grey repeated to RGB);
- ``classes``: where labels exist, the labels to keep (an int or a list of ints);
- ``limit``: at most this many images (the first ones, after the ``classes`` filter);
- ``flip``: random horizontal flips while training (augmentation; see ``train/loader.py``).

``load_array`` is the single place that reads ``.npy``/``.npz`` files (``allow_pickle=False``).
"""

from __future__ import annotations

import gzip
import io
import os
import pickle
import struct
import zlib
from typing import Sequence

import numpy as np

from .datasets import ArrayImages, FolderImages, is_grey, open_header
from .images import check_classes, value_range_pair

__all__ = ["load_array", "image_folder", "npy_images", "npy_labels", "images_from_array", "mnist_idx", "cifar10",
           "IMAGE_EXTENSIONS", "CIFAR10_CLASSES"]

#: File name endings ``image_folder`` reads (case-insensitive).
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp")

#: CIFAR-10's class names, indexed by label.
CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")



# --------------------------------------------------------------------------- npy / npz


def _check_path(path, what: str = "path") -> str:
    """``path`` (a str or os.PathLike) as a str; TypeError naming ``what`` for anything else."""
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"{what} must be a file path (a str or os.PathLike), got {type(path).__name__} {path!r}")
    path = os.fspath(path)
    return os.fsdecode(path) if isinstance(path, bytes) else path


def _real_array(arr: np.ndarray, source: str) -> np.ndarray:
    """``arr`` if it holds real numbers (bool, int or float); ValueError naming ``source`` otherwise."""
    if not (arr.dtype == np.bool_ or np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)):
        raise ValueError(f"{source} holds an array of dtype {arr.dtype}; expected real numbers (bool, int or float)")
    return arr


def load_array(path, key: str | None = None, mmap: bool = False) -> np.ndarray:
    """Read an array from a ``.npy`` file, or the array ``key`` (default: the first) of a ``.npz``.

    ``mmap=True`` memory-maps a ``.npy`` file (read-only ``np.memmap``: rows are read from disk when
    used); a ``.npz`` archive is always read into memory, in its stored dtype.

    Pickled object arrays are refused (``allow_pickle=False``), and so are arrays of strings, complex
    numbers or records. ``FileNotFoundError`` for a missing file; ``ValueError`` naming the file for
    anything else that is not a readable array of real numbers (a folder, a corrupt or truncated
    file, a ``.npz`` saved under ``.npy`` or the other way round, a missing ``key``); ``TypeError``
    for a ``path`` that is not a path.
    """
    path = _check_path(path)
    ext = os.path.splitext(path)[1].lower()
    if ext not in (".npy", ".npz"):
        raise ValueError(f"path must end in .npy or .npz, got {path!r}")
    if key is not None and ext == ".npy":
        raise ValueError(f"key applies only to .npz files, got key={key!r} for {path!r}")
    if key is not None and not isinstance(key, str):
        raise ValueError(f"key must be the name (a str) of an array in {path!r}, got {key!r}")
    if not os.path.exists(path):
        raise FileNotFoundError(f"no such file: {path!r}")
    if os.path.isdir(path):
        raise ValueError(f"{path!r} is a folder, not a {ext} file")
    with open(path, "rb") as f:
        head = f.read(6)
    if not (head.startswith(b"\x93NUMPY") or head.startswith(b"PK")):
        raise ValueError(f"{path!r} is not a {ext} file (it starts with neither the NumPy header nor a zip one: "
                         f"{len(head)} bytes {head!r}); write it with numpy.save / numpy.savez")
    loaded = None
    if mmap and ext == ".npy":
        try:
            loaded = np.load(path, allow_pickle=False, mmap_mode="r")
        except Exception:  # not mappable (e.g. an object array): the plain read below names the problem
            loaded = None
    try:
        loaded = np.load(path, allow_pickle=False) if loaded is None else loaded
    except Exception as e:  # whatever a corrupt, truncated or pickled file raises: name the file
        raise ValueError(f"cannot read {path!r} as a {ext} array ({type(e).__name__}: {e})") from None
    if ext == ".npy":
        if not isinstance(loaded, np.ndarray):
            loaded.close()
            raise ValueError(f"{path!r} is a .npz archive, not a .npy array: rename it to .npz")
        return _real_array(loaded, repr(path))
    if isinstance(loaded, np.ndarray):
        raise ValueError(f"{path!r} holds a single .npy array, not a .npz archive: rename it to .npy")
    with loaded as z:
        if not z.files:
            raise ValueError(f"{path!r} holds no arrays")
        if key is None:
            key = z.files[0]
        if key not in z.files:
            raise ValueError(f"key={key!r} not in {path!r}; its arrays are {z.files}")
        try:
            arr = z[key]
        except Exception as e:  # a corrupt member
            raise ValueError(f"cannot read the array {key!r} of {path!r} ({type(e).__name__}: {e})") from None
    if not isinstance(arr, np.ndarray):  # a member that is no .npy array comes back as bytes
        raise ValueError(f"the entry {key!r} of {path!r} is not a .npy array")
    return _real_array(arr, f"the array {key!r} of {path!r}")


# --------------------------------------------------------------------------- shared checks


def _check_size(size) -> int | None:
    if size is None:
        return None
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 1:
        raise ValueError(f"size must be None (keep the stored size) or an int >= 1, got {size!r}")
    return int(size)


def _check_channels(channels) -> int | None:
    if channels is None:
        return None
    if isinstance(channels, bool) or not isinstance(channels, (int, np.integer)) or int(channels) not in (1, 3):
        raise ValueError(f"channels must be None (as stored), 1 (grey) or 3 (RGB), got {channels!r}")
    return int(channels)


def _check_limit(limit) -> int | None:
    if limit is None:
        return None
    if isinstance(limit, bool) or not isinstance(limit, (int, np.integer)) or limit < 1:
        raise ValueError(f"limit must be None (all images) or an int >= 1, got {limit!r}")
    return int(limit)


def _check_int_classes(classes) -> list[int] | None:
    """``classes``: None (all), or an int or a list/tuple of distinct ints >= 0 (``images.check_classes``)."""
    return None if classes is None else check_classes(classes)


def _check_split(split, accepted: Sequence[str]) -> str:
    if split not in accepted:
        raise ValueError(f"split must be one of {tuple(accepted)}, got {split!r}")
    return split


def _select(n: int, labels: np.ndarray | None, classes: list[int] | None, limit: int | None, source: str):
    """Indices of the images kept by ``classes`` (needs labels) then ``limit``; ValueError if none."""
    idx = np.arange(n)
    if classes is not None:
        if labels is None:
            raise ValueError(f"classes={classes!r} needs labels, but {source} has none")
        idx = idx[np.isin(labels, classes)]
        if idx.size == 0:
            found = sorted(set(np.asarray(labels).tolist()))
            raise ValueError(f"classes={classes!r} selects no image of {source}; its labels are {found}")
    if limit is not None:
        idx = idx[:limit]
    return idx


# --------------------------------------------------------------------------- arrays


_LAYOUTS = ("nchw", "nhwc", "nhw")


def _detect_layout(shape: tuple[int, ...], layout, source: str) -> str:
    """The layout of an image array of ``shape``: 'nhw' (3-D) or 'nchw' / 'nhwc' (4-D).

    4-D: channel-first iff ``shape[1]`` in (1, 3, 4), channel-last iff ``shape[-1]`` in (1, 3, 4);
    when both or neither hold, ``layout`` must say which.
    """
    if layout is not None and layout not in _LAYOUTS:
        raise ValueError(f"layout must be None (auto-detect), 'nchw', 'nhwc' or 'nhw', got {layout!r}")
    if len(shape) == 3:
        if layout not in (None, "nhw"):
            raise ValueError(f"layout={layout!r} needs a 4-D array, but {source} is 3-D {shape} (N, H, W): use layout=None")
        return "nhw"
    if len(shape) != 4:
        raise ValueError(
            f"{source} has shape {shape}: image arrays must be (N, H, W), (N, H, W, C) or (N, C, H, W) with C in (1, 3)"
        )
    if layout == "nhw":
        raise ValueError(f"layout='nhw' needs a 3-D array, but {source} has shape {shape}")
    first, last = shape[1] in (1, 3, 4), shape[-1] in (1, 3, 4)
    if layout is None:
        if first and last:
            raise ValueError(
                f"{source} has shape {shape}: the layout is ambiguous (channels could be axis 1 or the last axis); "
                "pass layout='nchw' or layout='nhwc'"
            )
        if not (first or last):
            raise ValueError(
                f"{source} has shape {shape}: no axis holds 1, 3 or 4 channels; image arrays must be "
                "(N, H, W), (N, H, W, C) or (N, C, H, W) with C in (1, 3) (4: RGBA, alpha dropped)"
            )
        layout = "nchw" if first else "nhwc"
    c = shape[1] if layout == "nchw" else shape[-1]
    if c not in (1, 3, 4):
        raise ValueError(f"{source} has shape {shape}: with layout={layout!r} it has {c} channels, expected 1, 3 or 4 (RGBA)")
    return layout


def _check_value_range(value_range, dtype) -> tuple[float, float]:
    """``value_range`` as (low, high); None: the dtype's natural range ([0, 255] for uint8, else [0, 1])."""
    if value_range is None:
        return (0.0, 255.0) if dtype == np.uint8 else (0.0, 1.0)
    return value_range_pair(value_range)


def _scan_values(arr: np.ndarray, lo: float, hi: float, source: str, chunk_bytes: int = 1 << 26) -> None:
    """Check, a chunk of rows at a time (memory of one chunk, also for a memory-mapped file), that the
    array is finite and inside ``[lo, hi]``; ValueError naming ``source`` otherwise."""
    if arr.dtype == np.uint8 and lo <= 0 and hi >= 255:
        return  # every uint8 value lies in the range
    per_row = max(1, arr[:1].nbytes)
    step = max(1, chunk_bytes // per_row)
    mn, mx = np.inf, -np.inf
    for i in range(0, arr.shape[0], step):
        part = np.asarray(arr[i:i + step])
        if part.dtype.kind == "f" and not np.isfinite(part).all():
            raise ValueError(f"{source} has non-finite values (nan or inf)")
        mn, mx = min(mn, float(part.min())), max(mx, float(part.max()))
    tol = 1e-6 * (hi - lo)
    if mn < lo - tol or mx > hi + tol:
        raise ValueError(
            f"{source} has values in [{mn:.6g}, {mx:.6g}], outside value_range=({lo:g}, {hi:g}); "
            "pass the range the data uses, e.g. value_range=(0, 255), (-1, 1) or (0, 1)"
        )


def images_from_array(
    arr,
    layout: str | None = None,
    value_range=None,
    labels=None,
    size: int | None = None,
    channels: int | None = None,
    classes=None,
    limit: int | None = None,
    source: str = "the array",
    flip: bool = False,
) -> ArrayImages:
    """The images of an array ``(N, H, W)``, ``(N, H, W, C)`` or ``(N, C, H, W)``, C in {1, 3, 4}, as a
    streaming data set (``ArrayImages``: the rows stay in the array, a memory-mapped one included, and
    are converted per batch).

    ``layout``: None (auto-detect, see ``_detect_layout``), ``"nchw"``, ``"nhwc"`` or ``"nhw"``. A 4th
    channel is taken as alpha and dropped. ``value_range``: the range the data uses, mapped
    linearly to [-1, 1]; default ``(0, 255)`` for uint8 and ``(0, 1)`` for every other dtype (use
    ``(-1, 1)`` or ``(0, 255)`` to declare others). Values outside it raise ``ValueError`` (checked a
    chunk of rows at a time). ``labels``: optional integer array ``(N,)``. ``source`` names the data in
    error messages. ``flip``: random horizontal flips while training.
    """
    if not isinstance(arr, np.ndarray):
        arr = np.asarray(arr)
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool) or np.iscomplexobj(arr):
        raise ValueError(f"{source} must be a real numeric array, got dtype {arr.dtype}")
    layout = _detect_layout(tuple(arr.shape), layout, source)
    size, channels, limit = _check_size(size), _check_channels(channels), _check_limit(limit)
    classes = _check_int_classes(classes)
    lo, hi = _check_value_range(value_range, arr.dtype)
    if arr.shape[0] < 1 or arr.size == 0:
        raise ValueError(f"{source} holds no images (shape {arr.shape})")
    if labels is not None:
        labels = np.asarray(labels)
        if labels.shape != (arr.shape[0],) or not np.issubdtype(labels.dtype, np.integer):
            raise ValueError(f"labels must be integers of shape ({arr.shape[0]},) (one per image), got {labels.dtype} {labels.shape}")
    idx = _select(arr.shape[0], labels, classes, limit, source)
    _scan_values(arr, lo, hi, source)
    return ArrayImages(arr, layout, (lo, hi), idx, channels, size, None if labels is None else labels[idx],
                       flip=flip, source=source)


def npy_labels(path, labels_key: str) -> np.ndarray:
    """The labels array ``labels_key`` of the ``.npz`` file ``path`` (read by ``load_array``)."""
    path = os.fspath(path)
    if not path.lower().endswith(".npz"):
        raise ValueError(f"labels_key applies only to .npz files, got labels_key={labels_key!r} for {path!r}")
    return load_array(path, labels_key)


def npy_images(
    path,
    key: str | None = None,
    layout: str | None = None,
    value_range=None,
    size: int | None = None,
    channels: int | None = None,
    labels_key: str | None = None,
    classes=None,
    limit: int | None = None,
    flip: bool = False,
) -> ArrayImages:
    """Images from a ``.npy`` file (memory-mapped) or the array ``key`` of a ``.npz`` (read into memory
    in its stored dtype), as a streaming data set (see ``images_from_array``).

    ``labels_key``: for a ``.npz``, the array holding the labels ``(N,)`` (integers), if any.
    Arrays are read by ``load_array`` (``allow_pickle=False``).
    """
    path = os.fspath(path)
    labels = None if labels_key is None else npy_labels(path, labels_key)
    arr = load_array(path, key, mmap=True)
    return images_from_array(arr, layout, value_range, labels, size, channels, classes, limit, source=repr(path),
                             flip=flip)


# --------------------------------------------------------------------------- a folder of images


def _list_images(root: str, recursive: bool) -> list[str]:
    """Sorted paths of the image files in ``root`` (names starting with '.' are skipped)."""
    found = []
    if recursive:
        for d, subdirs, files in os.walk(root):
            subdirs[:] = sorted(s for s in subdirs if not s.startswith("."))
            found += [os.path.join(d, f) for f in files]
    else:
        with os.scandir(root) as entries:
            found = [e.path for e in entries if e.is_file()]
    keep = [p for p in found if p.lower().endswith(IMAGE_EXTENSIONS) and not os.path.basename(p).startswith(".")]
    return sorted(keep, key=lambda p: os.path.relpath(p, root))


def _folder_labels(root: str, files: list[str]) -> tuple[np.ndarray, list[str]]:
    """Label of each file: the index of its top-level subfolder of ``root`` among the sorted names."""
    tops = []
    for p in files:
        parts = os.path.relpath(p, root).split(os.sep)
        if len(parts) < 2:
            raise ValueError(
                f"labels_from_subfolders=True: image file {p!r} lies directly in {root!r}; "
                "expected every image inside a class subfolder (root/CLASS/...)"
            )
        tops.append(parts[0])
    names = sorted(set(tops))
    lookup = {n: i for i, n in enumerate(names)}
    return np.array([lookup[t] for t in tops], dtype=np.int64), names


def _folder_classes(classes, names: list[str], root: str):
    """``classes`` given as subfolder names (or label indices) -> label indices (None stays None)."""
    if classes is None:
        return None
    items = [classes] if isinstance(classes, (str, int, np.integer)) else classes
    if not isinstance(items, (list, tuple)):
        raise ValueError(f"classes must be a subfolder name, a label or a list of them, got {classes!r}")
    unknown = [c for c in items if isinstance(c, str) and c not in names]
    if unknown:
        raise ValueError(f"classes={unknown!r} are not subfolders of {root!r}; its subfolders are {names}")
    return [names.index(c) if isinstance(c, str) else c for c in items]


def image_folder(
    path,
    size: int | None = None,
    channels: int | None = None,
    recursive: bool = False,
    labels_from_subfolders: bool = False,
    classes=None,
    limit: int | None = None,
    flip: bool = False,
) -> FolderImages:
    """All PNG / JPEG / BMP files of the folder ``path`` (sorted by relative path) as a streaming data
    set: the files are listed now and decoded per item when read (``FolderImages``).

    Args:
        path: a folder. ``recursive=True`` also reads its subfolders. Names starting with '.' are
            skipped. Alpha is dropped; 16-bit grey PNGs are scaled to 8 bits (round(v·255/65535)).
        size: None (every image must then have the same height and width) or an int >= 1:
            centre-crop each image to a square, then resize it to ``size × size`` with PIL bicubic.
        channels: None (the first image's: 1 if it is grey, else 3; the others are converted to it),
            1 (grey, PIL's ``convert("L")``) or 3 (RGB; grey repeated).
        labels_from_subfolders: if True, reads the subfolders recursively and labels each image by
            its top-level subfolder (label = index among the sorted subfolder names, kept in
            ``class_names``). Subfolder names are not labels otherwise.
        classes: with ``labels_from_subfolders``, the subfolder names (or label indices) to keep.
        limit: at most this many images (the first ones in sorted order, after ``classes``).
        flip: random horizontal flips while training.

    Returns a ``FolderImages`` of images ``(C, size, size)`` in [-1, 1] (white +1, black −1).

    Raises ``FileNotFoundError`` for a missing folder, ``ValueError`` naming the file or folder for a
    folder without images or an unreadable first file. A later file that cannot be read is skipped
    when it is read (announced once, naming it); one of another size (``size=None``) stops the run.
    """
    root = os.fspath(path)
    if not os.path.exists(root):
        raise FileNotFoundError(f"image folder {root!r} does not exist")
    if not os.path.isdir(root):
        raise ValueError(f"path must be a folder of images, got the file {root!r}")
    size, channels, limit = _check_size(size), _check_channels(channels), _check_limit(limit)
    for name, value in (("recursive", recursive), ("labels_from_subfolders", labels_from_subfolders)):
        if not isinstance(value, bool):
            raise ValueError(f"{name} must be True or False, got {value!r}")
    if classes is not None and not labels_from_subfolders:
        raise ValueError(f"classes={classes!r} needs labels: pass labels_from_subfolders=True")
    files = _list_images(root, recursive or labels_from_subfolders)
    if not files:
        where = "or its subfolders " if recursive or labels_from_subfolders else ""
        raise ValueError(f"image folder {root!r} {where}holds no image files; expected files ending in {IMAGE_EXTENSIONS}")
    labels, names = (None, None)
    if labels_from_subfolders:
        labels, names = _folder_labels(root, files)
        classes = _folder_classes(classes, names, root)
    idx = _select(len(files), labels, _check_int_classes(classes), limit, f"image folder {root!r}")
    files = [files[i] for i in idx]
    target = channels or (1 if is_grey(open_header(files[0])) else 3)
    return FolderImages(files, target, size, None if labels is None else labels[idx], names, flip=flip,
                        source=f"image folder {root!r}")


# --------------------------------------------------------------------------- MNIST IDX


_IDX_IMAGES_MAGIC = 0x00000803  # unsigned bytes, 3 dimensions (N, rows, cols)
_IDX_LABELS_MAGIC = 0x00000801  # unsigned bytes, 1 dimension (N,)


def _read_bytes(path: str) -> bytes:
    """The bytes of ``path``, gunzipped if it ends in ``.gz``; ValueError naming a corrupt gzip file."""
    if not path.lower().endswith(".gz"):
        with open(path, "rb") as f:
            return f.read()
    try:
        with gzip.open(path, "rb") as f:
            return f.read()
    except (OSError, EOFError, zlib.error) as e:
        raise ValueError(f"cannot decompress {path!r} ({type(e).__name__}: {e}); expected a complete gzip file") from None


def _parse_idx(path: str, magic: int) -> np.ndarray:
    """The uint8 array of an IDX file with the given ``magic`` (0x00000803 images, 0x00000801 labels):
    memory-mapped for a plain file, decompressed into memory for a ``.gz`` one."""
    gz = path.lower().endswith(".gz")
    ndim = magic & 0xFF
    header = 4 + 4 * ndim
    if gz:
        data = _read_bytes(path)
        head, length = data[:header], len(data)
    else:
        with open(path, "rb") as f:
            head = f.read(header)
        length = os.path.getsize(path)
    what = "images (N, rows, cols)" if magic == _IDX_IMAGES_MAGIC else "labels (N,)"
    if len(head) < 4:
        raise ValueError(f"IDX file {path!r} is truncated: {length} bytes, expected a header of {header} bytes")
    (found,) = struct.unpack(">I", head[:4])
    if found != magic:
        raise ValueError(
            f"IDX file {path!r} has magic number 0x{found:08x}, expected 0x{magic:08x} (unsigned-byte {what})"
        )
    if len(head) < header:
        raise ValueError(f"IDX file {path!r} is truncated: {length} bytes, expected a header of {header} bytes")
    dims = struct.unpack(f">{ndim}I", head[4:header])
    expected = header + int(np.prod(dims, dtype=np.int64))
    if length != expected:
        state = "truncated" if length < expected else "longer than its header says"
        raise ValueError(
            f"IDX file {path!r} is {state}: {length} bytes, expected {expected} for {what} of shape {dims}"
        )
    if gz:
        return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(dims)
    return np.memmap(path, dtype=np.uint8, mode="r", offset=header, shape=tuple(dims))


def _idx_labels_path(images_path: str) -> str | None:
    """The labels file beside an IDX image file (``*-images-idx3-ubyte`` -> ``*-labels-idx1-ubyte``,
    with or without ``.gz``), or None if there is none."""
    d, name = os.path.split(images_path)
    stem = name[:-3] if name.lower().endswith(".gz") else name
    if "images" not in stem:
        return None
    stem = stem.replace("images", "labels").replace("idx3", "idx1")
    for cand in (stem, stem + ".gz"):
        if os.path.isfile(os.path.join(d, cand)):
            return os.path.join(d, cand)
    return None


def _idx_images_in_folder(folder: str, split: str) -> str:
    prefix = "train" if split == "train" else "t10k"
    names = [f"{prefix}-images-idx3-ubyte", f"{prefix}-images.idx3-ubyte"]
    for n in names:
        for cand in (n, n + ".gz"):
            if os.path.isfile(os.path.join(folder, cand)):
                return os.path.join(folder, cand)
    raise FileNotFoundError(
        f"no MNIST {split} images in folder {folder!r}: expected {names[0]} or {names[0]}.gz (or {names[1]})"
    )


def mnist_idx(
    path,
    split: str = "train",
    size: int | None = None,
    channels: int | None = None,
    classes=None,
    limit: int | None = None,
    flip: bool = False,
) -> ArrayImages:
    """MNIST-format IDX files (plain or ``.gz``; also Fashion-MNIST, KMNIST, ...) as a streaming data
    set (a plain file memory-mapped, a ``.gz`` one decompressed into memory as uint8).

    ``path``: an IDX image file (magic 0x00000803, shape (N, rows, cols), unsigned bytes), its
    labels read from the matching file beside it if present (``train-images-idx3-ubyte`` ->
    ``train-labels-idx1-ubyte``, ``t10k-images...`` -> ``t10k-labels...``, with or without
    ``.gz``); or a folder holding the standard file names, ``split`` (``"train"`` or ``"test"``)
    picking ``train-*`` or ``t10k-*``. With a file, ``split`` is not used.

    Pixels 0..255 map to [-1, 1]; returns ``(N, 1, H, W)`` (``channels=3``: grey repeated).
    Raises ``ValueError`` naming the file for a wrong magic number, a truncated file, or a label
    count different from the image count.
    """
    split = _check_split(split, ("train", "test"))
    size, channels, limit = _check_size(size), _check_channels(channels), _check_limit(limit)
    classes = _check_int_classes(classes)
    p = os.fspath(path)
    if not os.path.exists(p):
        raise FileNotFoundError(f"MNIST IDX path {p!r} does not exist (expected an IDX image file or a folder of them)")
    images_path = _idx_images_in_folder(p, split) if os.path.isdir(p) else p
    images = _parse_idx(images_path, _IDX_IMAGES_MAGIC)
    labels_path = _idx_labels_path(images_path)
    labels = None
    if labels_path is not None:
        labels = _parse_idx(labels_path, _IDX_LABELS_MAGIC).astype(np.int64)
        if labels.shape[0] != images.shape[0]:
            raise ValueError(
                f"IDX labels file {labels_path!r} holds {labels.shape[0]} labels, expected {images.shape[0]} "
                f"(one per image of {images_path!r})"
            )
    idx = _select(images.shape[0], labels, classes, limit, f"IDX file {images_path!r}")
    return ArrayImages(images, "nhw", (0.0, 255.0), idx, channels, size, None if labels is None else labels[idx],
                       flip=flip, source=f"IDX file {images_path!r}")


# --------------------------------------------------------------------------- CIFAR-10


def _numpy_reconstruct():
    try:
        from numpy._core.multiarray import _reconstruct, scalar  # numpy >= 2
    except ImportError:  # pragma: no cover - numpy 1.x
        from numpy.core.multiarray import _reconstruct, scalar
    return _reconstruct, scalar


class _Refused(ValueError):
    """A global (or persistent id) refused by ``_ArraysOnlyUnpickler``."""


class _ArraysOnlyUnpickler(pickle.Unpickler):
    """An unpickler that builds only numpy arrays (and the lists, dicts, bytes, strings and numbers
    that pickle makes without looking up a global): every other global is refused, so no pickled
    code runs. Admitted: ``numpy(._core|.core).multiarray._reconstruct`` and ``.scalar``,
    ``numpy.ndarray``, ``numpy.dtype``, and ``_codecs.encode`` restricted to latin-1 (protocol 2
    written by Python 3 stores bytes that way)."""

    def __init__(self, file, source: str):
        super().__init__(file, encoding="bytes")
        self.source = source
        reconstruct, scalar = _numpy_reconstruct()
        self.allowed = {
            ("numpy.core.multiarray", "_reconstruct"): reconstruct,
            ("numpy._core.multiarray", "_reconstruct"): reconstruct,
            ("numpy.core.multiarray", "scalar"): scalar,
            ("numpy._core.multiarray", "scalar"): scalar,
            ("numpy", "ndarray"): np.ndarray,
            ("numpy", "dtype"): np.dtype,
            ("_codecs", "encode"): self._latin1_encode,  # how protocol 2 stores bytes from Python 3
        }

    def _latin1_encode(self, text, encoding="latin1"):
        """``_codecs.encode`` restricted to the latin-1 codec (protocol 2's encoding of bytes)."""
        if not isinstance(text, str) or str(encoding).lower().replace("_", "-") not in ("latin1", "latin-1"):
            raise _Refused(f"refusing _codecs.encode with encoding {encoding!r} in {self.source}: only latin-1 bytes are expected")
        return text.encode("latin-1")

    def find_class(self, module, name):
        obj = self.allowed.get((module, name))
        if obj is None:
            raise _Refused(
                f"refusing to unpickle {module}.{name} in {self.source}: "
                "CIFAR-10 batches hold only arrays, lists, dicts and strings"
            )
        return obj

    def persistent_load(self, pid):
        raise _Refused(f"refusing a persistent id in {self.source}: CIFAR-10 batches hold only arrays, lists, dicts and strings")


def _load_cifar_batch(path: str) -> tuple[np.ndarray, np.ndarray]:
    """One CIFAR-10 python batch -> (data uint8 (n, 3, 32, 32), labels int64 (n,))."""
    with open(path, "rb") as f:
        raw = f.read()
    try:
        batch = _ArraysOnlyUnpickler(io.BytesIO(raw), repr(path)).load()
    except _Refused:
        raise
    except Exception as e:  # anything else a corrupt pickle raises: name the file
        raise ValueError(f"cannot read CIFAR-10 batch {path!r} ({type(e).__name__}: {e}); expected a pickled dict") from None
    if not isinstance(batch, dict):
        raise ValueError(f"CIFAR-10 batch {path!r} holds a {type(batch).__name__}, expected a dict with b'data' and b'labels'")

    def get(key):
        for k in (key.encode(), key):
            if k in batch:
                return batch[k]
        raise ValueError(f"CIFAR-10 batch {path!r} has no {key.encode()!r} entry; its keys are {list(batch)}")

    data, labels = get("data"), get("labels")
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072:
        desc = f"{data.dtype} array of shape {data.shape}" if isinstance(data, np.ndarray) else type(data).__name__
        raise ValueError(f"CIFAR-10 batch {path!r}: b'data' is a {desc}, expected a uint8 array (n, 3072)")
    try:
        labels = np.asarray(labels)
    except (TypeError, ValueError):
        labels = np.asarray([None])
    if labels.shape != (data.shape[0],) or not np.issubdtype(labels.dtype, np.integer) or (labels.size and (labels.min() < 0 or labels.max() > 9)):
        raise ValueError(f"CIFAR-10 batch {path!r}: b'labels' must be {data.shape[0]} ints in 0..9 (one per row of b'data')")
    # each row: the R plane (1024 bytes, row-major 32x32), then G, then B
    return data.reshape(-1, 3, 32, 32), labels.astype(np.int64)


_CIFAR_TRAIN = tuple(f"data_batch_{i}" for i in range(1, 6))
_CIFAR_TEST = ("test_batch",)


def _cifar_batch_files(path: str, split: str) -> list[str]:
    """The batch files of ``split`` in the folder ``path`` (or in ``path/cifar-10-batches-py``)."""
    inner = os.path.join(path, "cifar-10-batches-py")
    folder = inner if os.path.isdir(inner) else path
    names = {"train": _CIFAR_TRAIN, "test": _CIFAR_TEST, "all": _CIFAR_TRAIN + _CIFAR_TEST}[split]
    missing = [n for n in names if not os.path.isfile(os.path.join(folder, n))]
    if missing:
        raise FileNotFoundError(
            f"CIFAR-10 folder {folder!r} lacks the {split} batch file(s) {missing}; expected {list(names)} "
            "(to read only some batches, pass a single batch file as path)"
        )
    return [os.path.join(folder, n) for n in names]


def cifar10(
    path,
    split: str = "train",
    size: int | None = None,
    channels: int | None = None,
    classes=None,
    limit: int | None = None,
    flip: bool = False,
) -> ArrayImages:
    """CIFAR-10 "python version" batches as a streaming data set of ``(3, 32, 32)`` images in [-1, 1]
    (the batches are pickled, so they are read into memory: uint8, 150 MB for the 50 000 train images).

    ``path``: the folder ``cifar-10-batches-py`` (or a folder holding it), or a single batch file.
    For a folder, ``split`` is ``"train"`` (``data_batch_1`` .. ``data_batch_5``, 50 000 images),
    ``"test"`` (``test_batch``, 10 000) or ``"all"`` (train then test); every batch of the split must
    be present (a missing one is an error naming it; pass one batch file to read a part). With a
    file, ``split`` is not used.

    Batches are read with a restricted unpickler: only numpy arrays, dtypes and scalars are
    admitted, anything else (e.g. ``os.system``) raises ``ValueError`` before any pickled code can
    run. Each batch is a dict with ``b"data"`` (n, 3072) uint8 (rows: R, G, B planes of 32×32, each
    row-major) and ``b"labels"`` (n ints in 0..9); ``class_names`` is ``CIFAR10_CLASSES``.
    """
    split = _check_split(split, ("train", "test", "all"))
    size, channels, limit = _check_size(size), _check_channels(channels), _check_limit(limit)
    classes = _check_int_classes(classes)
    p = os.fspath(path)
    if not os.path.exists(p):
        raise FileNotFoundError(f"CIFAR-10 path {p!r} does not exist (expected the folder cifar-10-batches-py or a batch file)")
    files = _cifar_batch_files(p, split) if os.path.isdir(p) else [p]
    parts = [_load_cifar_batch(f) for f in files]
    data = np.concatenate([d for d, _ in parts]) if len(parts) > 1 else parts[0][0]
    labels = np.concatenate([lab for _, lab in parts]) if len(parts) > 1 else parts[0][1]
    idx = _select(data.shape[0], labels, classes, limit, f"CIFAR-10 {p!r}")
    return ArrayImages(data, "nchw", (0.0, 255.0), idx, channels, size, labels[idx], CIFAR10_CLASSES, flip=flip,
                       source=f"CIFAR-10 {p!r}")
