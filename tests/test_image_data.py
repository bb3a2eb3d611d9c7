"""Tests for the image data of otgen.distributions: ImageSet, digits and the file readers.

Every file read here is written by the test into tmp_path; nothing is downloaded.
"""

from __future__ import annotations

import gzip
import io
import os
import pickle
import struct

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from sklearn.datasets import load_digits

from otgen import distributions as D
from otgen.distributions import Empirical, ImageDataset, ImageSet, cifar10, digits, image_folder, make, mnist_idx, npy_images


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@pytest.fixture(scope="module")
def sk():
    d = load_digits()
    return d.images, d.target


# --------------------------------------------------------------------------- ImageSet


def test_image_set_resamples_rows_with_labels():
    imgs = torch.linspace(-1, 1, 5 * 2 * 3 * 4).reshape(5, 2 * 3 * 4)[:, :12].reshape(5, 1, 3, 4)
    s = ImageSet(imgs, labels=[0, 1, 2, 3, 4])
    assert len(s) == 5 and s.event_shape == (1, 3, 4) and s.value_range == (-1.0, 1.0)
    assert s.images is s.samples and s.labels.dtype == torch.long
    assert "N=5" in repr(s) and "C=1, H=3, W=4" in repr(s)
    x = s(50, generator=gen(0))
    assert x.shape == (50, 1, 3, 4) and x.dtype == torch.float32
    assert torch.equal(x, s(50, generator=gen(0)))
    xi, yi = s.sample_with_labels(50, generator=gen(0))
    assert torch.equal(xi, x)  # the same rows as a plain draw
    assert torch.equal(xi, imgs[yi])  # each label belongs to its image
    with pytest.raises(ValueError, match="no labels"):
        ImageSet(imgs).sample_with_labels(3)


@pytest.mark.parametrize(
    "images, labels, msg",
    [
        (torch.zeros(2, 2, 4, 4), None, r"C in \(1, 3\)"),
        (torch.zeros(2, 4, 4), None, r"\(N, C, H, W\)"),
        (torch.full((2, 1, 4, 4), 1.5), None, r"\[-1, 1\]"),
        (torch.zeros(2, 1, 4, 4), [0, 1, 2], r"shape \(2,\)"),
        (torch.zeros(2, 1, 4, 4), [0.5, 1.0], "integers"),
    ],
)
def test_image_set_validation(images, labels, msg):
    with pytest.raises(ValueError, match=msg):
        ImageSet(images, labels)


# --------------------------------------------------------------------------- digits


def test_digits_split_counts_and_disjointness(sk):
    raw, target = sk
    sizes = {split: len(digits(split=split, size=8)) for split in ("train", "test", "all")}
    assert sizes == {"train": 1438, "test": 359, "all": 1797} == D.images.DIGITS_SPLIT_COUNTS
    tr, ltr = digits(split="train", size=8, return_labels=True)
    te, lte = digits(split="test", size=8, return_labels=True)
    i = np.arange(len(raw))
    assert np.array_equal(ltr.numpy(), target[i % 5 != 4]) and np.array_equal(lte.numpy(), target[i % 5 == 4])
    # size 8: exactly 2 * v / 16 - 1 of scikit-learn's pixels, in load_digits order
    assert torch.allclose(te[:, 0].double(), torch.from_numpy(raw[i % 5 == 4] / 8.0 - 1.0), atol=1e-6)
    # no test image equals a train image
    train_keys = {bytes(r) for r in ((tr.flatten(1) + 1) * 8).round().to(torch.uint8).numpy()}
    test_keys = [bytes(r) for r in ((te.flatten(1) + 1) * 8).round().to(torch.uint8).numpy()]
    assert not any(k in train_keys for k in test_keys)
    # the split does not depend on seed
    assert torch.equal(digits(split="test", seed=5).images, digits(split="test", seed=0).images)


@pytest.mark.parametrize("size", [8, 16, 32, 64])
def test_digits_shapes_and_range(size, sk):
    s = digits(size=size, split="test")
    assert isinstance(s, ImageSet) and s.images.shape == (359, 1, size, size) and s.images.dtype == torch.float32
    assert s.images.min() == -1.0 and s.images.max() <= 1.0 and s.images.max() > 0.9
    assert (s.images[:, :, 0, 0] == -1).float().mean() > 0.9  # the corners are background
    x = s(10, generator=gen(0))
    assert x.shape == (10, 1, size, size)


def test_digits_upsampling_is_bilinear(sk):
    raw, _ = sk
    x = digits(size=16, split="all").images
    ref = F.interpolate(torch.from_numpy(raw / 16.0).float()[:, None], size=(16, 16), mode="bilinear", align_corners=False)
    assert torch.allclose(x, ref * 2 - 1, atol=1e-6)


def test_digits_class_selection(sk):
    _, target = sk
    i = np.arange(len(target))
    s = make("digits", classes=[3], size=16)
    assert set(s.labels.tolist()) == {3} and len(s) == int(((target == 3) & (i % 5 != 4)).sum()) == 131
    assert len(digits(classes=3)) == 131
    two = digits(classes=(7, 1), split="test")
    assert set(two.labels.tolist()) == {1, 7} and len(two) == 21 + 43
    per_class = [len(digits(classes=[c], split="train")) for c in range(10)]
    assert per_class == [151, 161, 143, 131, 147, 154, 150, 136, 127, 138] and sum(per_class) == 1438


def test_digits_colored():
    grey = digits(size=16, split="all")
    col = digits(size=16, split="all", colored=True, seed=0)
    assert col.images.shape == (1797, 3, 16, 16) and col.images.min() == -1.0 and col.images.max() <= 1.0
    # the grey structure is kept: the channel max is the grey image (hsv_to_rgb(h, 1, 1) has max 1)
    assert torch.allclose(col.images.max(1, keepdim=True).values, grey.images, atol=1e-6)
    assert torch.equal(col.labels, grey.labels)
    # one hue per image, drawn U[0, 1) by numpy's default_rng(seed): the colour of the brightest pixel
    hues = D.images.digit_hues(0)
    assert np.array_equal(hues, np.random.default_rng(0).uniform(0, 1, 1797))
    flat = (col.images.flatten(2) + 1) / 2  # (N, 3, P) in [0, 1]
    top = flat[torch.arange(1797), :, flat.max(1).values.argmax(1)]  # (N, 3): colour where g is largest
    assert torch.allclose(top, torch.from_numpy(D.images.hsv_to_rgb(hues)).float() * top.max(1, keepdim=True).values, atol=1e-5)
    dominant = top.argmax(1)
    assert torch.bincount(dominant, minlength=3).min() > 400  # red, green and blue strokes all occur
    # reproducible; another seed gives other hues but the same grey structure
    assert torch.equal(col.images, digits(size=16, split="all", colored=True, seed=0).images)
    other = digits(size=16, split="all", colored=True, seed=1).images
    assert not torch.equal(col.images, other) and torch.allclose(other.max(1, keepdim=True).values, grey.images, atol=1e-6)
    # an image keeps its hue whichever classes select it
    threes = digits(size=16, split="all", colored=True, classes=[3])
    assert torch.equal(threes.images, col.images[col.labels == 3])


def test_hsv_to_rgb_matches_colorsys():
    import colorsys

    h = np.linspace(0, 0.999, 37)
    ref = np.array([colorsys.hsv_to_rgb(v, 1.0, 1.0) for v in h])
    assert np.allclose(D.images.hsv_to_rgb(h), ref)
    ref2 = np.array([colorsys.hsv_to_rgb(v, 0.3, 0.7) for v in h])
    assert np.allclose(D.images.hsv_to_rgb(h, 0.3, 0.7), ref2)


def test_digits_return_labels_matches_sklearn(sk):
    _, target = sk
    x, y = digits(return_labels=True, split="all", size=32)
    assert isinstance(x, torch.Tensor) and x.shape == (1797, 1, 32, 32)
    assert y.dtype == torch.long and np.array_equal(y.numpy(), target)


@pytest.mark.parametrize(
    "kwargs, arg",
    [
        ({"size": 12}, "size"),
        ({"size": True}, "size"),
        ({"classes": []}, "classes"),
        ({"classes": [10]}, "classes"),
        ({"classes": [1, 1]}, "classes"),
        ({"classes": "3"}, "classes"),
        ({"split": "val"}, "split"),
        ({"colored": "yes"}, "colored"),
        ({"seed": -1}, "seed"),
        ({"return_labels": 1}, "return_labels"),
    ],
)
def test_digits_bad_arguments(kwargs, arg):
    with pytest.raises(ValueError, match=arg) as info:
        digits(**kwargs)
    value = next(iter(kwargs.values()))
    assert repr(value) in str(info.value) or str(value) in str(info.value)


# --------------------------------------------------------------------------- folder of images


def _png_bytes(im: Image.Image) -> bytes:
    buf = io.BytesIO()
    im.save(buf, format="PNG")
    return buf.getvalue()


@pytest.fixture
def folder(tmp_path):
    d = tmp_path / "imgs"
    d.mkdir()
    Image.new("RGB", (10, 6), (255, 255, 255)).save(d / "a_white.png")
    Image.new("L", (6, 10), 0).save(d / "b_black.png")
    Image.new("RGB", (8, 8), (255, 0, 0)).save(d / "c_red.jpg", quality=100)
    (d / "notes.txt").write_text("not an image")
    return d


def test_image_folder_values_resize_and_channels(folder):
    s = image_folder(folder, size=4)
    assert isinstance(s, ImageDataset) and s.images.shape == (3, 3, 4, 4) and s.labels is None
    white, black, red = s.images
    assert torch.all(white == 1.0) and torch.all(black == -1.0)  # grey repeated to RGB
    assert torch.allclose(red, torch.tensor([1.0, -1.0, -1.0]).view(3, 1, 1).expand(3, 4, 4), atol=0.05)
    grey = image_folder(folder, size=4, channels=1)
    assert grey.images.shape == (3, 1, 4, 4)
    assert torch.all(grey.images[0] == 1) and torch.all(grey.images[1] == -1)
    assert torch.allclose(grey.images[2], torch.tensor(2 * 76 / 255 - 1), atol=0.02)  # luma of red: 0.299
    assert len(image_folder(folder, size=4, limit=2)) == 2


def test_image_folder_centre_crop(tmp_path):
    a = np.zeros((4, 8), np.uint8)
    a[:, 2:6] = 200  # the centre square is uniform, the sides black
    Image.fromarray(a, "L").save(tmp_path / "x.png")
    s = image_folder(tmp_path, size=4)
    assert s.images.shape == (1, 1, 4, 4)
    assert torch.allclose(s.images, torch.tensor(2 * 200 / 255 - 1), atol=1e-6)
    s2 = image_folder(tmp_path, size=2)  # downscaled centre: still uniform
    assert torch.allclose(s2.images, torch.tensor(2 * 200 / 255 - 1), atol=2 / 255)
    # no size: kept as stored, exact 8-bit values
    s3 = image_folder(tmp_path)
    assert s3.images.shape == (1, 1, 4, 8)
    assert torch.allclose(s3.images[0, 0], torch.from_numpy(a / 127.5 - 1).float(), atol=1e-6)


def test_image_folder_mixed_sizes_need_size(folder):
    with pytest.raises(ValueError, match="size=") as info:
        image_folder(folder).images  # files are read lazily: a size mismatch stops the first read of it
    assert "b_black.png" in str(info.value)


def test_image_folder_16_bit_and_alpha(tmp_path):
    Image.fromarray(np.full((3, 3), 65535, np.uint16)).save(tmp_path / "a16.png")
    Image.new("RGBA", (3, 3), (0, 0, 0, 0)).save(tmp_path / "b_rgba.png")
    s = image_folder(tmp_path)
    assert s.images.shape == (2, 1, 3, 3)
    assert torch.all(s.images[0] == 1.0) and torch.all(s.images[1] == -1.0)


def test_image_folder_recursive_and_labels(tmp_path):
    for k, (name, value) in enumerate([("cat", 0), ("dog", 255)]):
        (tmp_path / name).mkdir()
        for j in range(k + 2):
            Image.new("L", (4, 4), value).save(tmp_path / name / f"{j}.png")
    with pytest.raises(ValueError, match="no image files"):
        image_folder(tmp_path)  # not recursive: the top folder holds none
    assert len(image_folder(tmp_path, recursive=True)) == 5
    s = image_folder(tmp_path, labels_from_subfolders=True)
    assert s.labels.tolist() == [0, 0, 1, 1, 1] and s.class_names == ("cat", "dog")
    assert torch.all(s.images[s.labels == 1] == 1) and torch.all(s.images[s.labels == 0] == -1)
    dogs = image_folder(tmp_path, labels_from_subfolders=True, classes=["dog"])
    assert dogs.labels.tolist() == [1, 1, 1]
    with pytest.raises(ValueError, match="bird"):
        image_folder(tmp_path, labels_from_subfolders=True, classes=["bird"])


def test_image_folder_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing"):
        image_folder(tmp_path / "missing")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ValueError, match="empty.*no image files"):
        image_folder(empty)
    text = tmp_path / "text"
    text.mkdir()
    (text / "a.txt").write_text("hello")
    (text / "b.csv").write_text("1,2")
    with pytest.raises(ValueError, match=r"text.*no image files.*\.png"):
        image_folder(text)
    bad = tmp_path / "bad"
    bad.mkdir()
    data = _png_bytes(Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)))
    (bad / "cut.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="cut.png.*expected a complete"):  # read lazily: the only image
        image_folder(bad).images
    (bad / "cut.png").write_bytes(b"this is not a png file at all")
    with pytest.raises(ValueError, match="cut.png"):
        image_folder(bad)
    with pytest.raises(ValueError, match="channels"):
        image_folder(text, channels=2)
    with pytest.raises(ValueError, match="size"):
        image_folder(text, size=0)


# --------------------------------------------------------------------------- npy / npz


def _u8(shape, seed=0):
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


@pytest.mark.parametrize(
    "shape, layout, to_nchw",
    [
        ((5, 6, 7), None, lambda a: a[:, None]),
        ((5, 6, 7, 3), None, lambda a: a.transpose(0, 3, 1, 2)),
        ((5, 6, 7, 1), None, lambda a: a.transpose(0, 3, 1, 2)),
        ((5, 3, 6, 7), None, lambda a: a),
        ((5, 1, 6, 7), None, lambda a: a),
        ((5, 3, 4, 3), "nhwc", lambda a: a.transpose(0, 3, 1, 2)),
        ((5, 3, 4, 3), "nchw", lambda a: a),
        ((5, 6, 7, 4), None, lambda a: a.transpose(0, 3, 1, 2)[:, :3]),  # RGBA: alpha dropped
    ],
)
def test_npy_layouts(tmp_path, shape, layout, to_nchw):
    a = _u8(shape)
    np.save(tmp_path / "x.npy", a)
    s = npy_images(tmp_path / "x.npy", layout=layout)
    ref = torch.from_numpy(to_nchw(a).astype(np.float64) / 127.5 - 1.0).float()
    assert s.images.shape == ref.shape and torch.allclose(s.images, ref, atol=1e-6)


@pytest.mark.parametrize(
    "dtype, value_range, lo, hi",
    [
        (np.float32, None, 0.0, 1.0),
        (np.float64, (0, 1), 0.0, 1.0),
        (np.float32, (-1, 1), -1.0, 1.0),
        (np.float64, (0, 255), 0.0, 255.0),
        (np.int16, (0, 1000), 0.0, 1000.0),
        (np.uint8, (0, 255), 0.0, 255.0),
        (np.float16, None, 0.0, 1.0),
    ],
)
def test_npy_dtypes_and_value_range(tmp_path, dtype, value_range, lo, hi):
    u = np.random.default_rng(1).uniform(0, 1, (4, 1, 5, 5))
    u[0, 0, 0, 0], u[0, 0, 0, 1] = 0.0, 1.0
    a = (lo + u * (hi - lo)).astype(dtype)
    np.save(tmp_path / "x.npy", a)
    s = npy_images(tmp_path / "x.npy", value_range=value_range)
    ref = 2 * (a.astype(np.float64) - lo) / (hi - lo) - 1
    assert torch.allclose(s.images.double(), torch.from_numpy(ref), atol=1e-5)
    assert s.images.min() == -1.0 and s.images.max() == 1.0


def test_npy_value_range_errors(tmp_path):
    p = tmp_path / "x.npy"
    np.save(p, np.full((2, 4, 4), 1.5, np.float32))
    with pytest.raises(ValueError, match=r"x\.npy.*\[1\.5, 1\.5\].*value_range=\(0, 1\)"):
        npy_images(p)
    np.save(p, np.linspace(0, 255, 32).reshape(2, 4, 4))
    with pytest.raises(ValueError, match="value_range"):
        npy_images(p)
    assert npy_images(p, value_range=(0, 255)).images.max() == 1.0
    with pytest.raises(ValueError, match="value_range"):
        npy_images(p, value_range=(1, 0))
    with pytest.raises(ValueError, match=r"value_range must be a pair .*got '01'"):
        npy_images(p, value_range="01")   # a string is not a pair, though float() reads each character
    np.save(p, np.full((2, 4, 4), np.nan))
    with pytest.raises(ValueError, match="non-finite"):
        npy_images(p)


def test_npy_layout_errors(tmp_path):
    p = tmp_path / "x.npy"
    np.save(p, _u8((5, 3, 4, 3)))
    with pytest.raises(ValueError, match="ambiguous.*layout='nchw' or layout='nhwc'"):
        npy_images(p)
    np.save(p, _u8((5, 6, 7, 8)))
    with pytest.raises(ValueError, match=r"\(5, 6, 7, 8\).*channels"):
        npy_images(p)
    with pytest.raises(ValueError, match="layout"):
        npy_images(p, layout="chw")
    np.save(p, _u8((5, 6)))
    with pytest.raises(ValueError, match=r"\(5, 6\)"):
        npy_images(p)


def test_npz_key_labels_size_channels(tmp_path):
    p = tmp_path / "x.npz"
    imgs = np.zeros((6, 8, 12), np.uint8)
    imgs[:, :, 2:10] = 255  # centre 8x8 white, sides black
    np.savez(p, other=np.zeros(3), images=imgs, y=np.array([0, 1, 2, 0, 1, 2]))
    s = npy_images(p, key="images", labels_key="y", size=8, channels=3)
    assert s.images.shape == (6, 3, 8, 8) and torch.all(s.images == 1.0) and s.labels.tolist() == [0, 1, 2, 0, 1, 2]
    small = npy_images(p, key="images", size=4)
    assert small.images.shape == (6, 1, 4, 4) and torch.allclose(small.images, torch.ones(1))
    sel = npy_images(p, key="images", labels_key="y", classes=[2], limit=1)
    assert sel.labels.tolist() == [2] and len(sel) == 1
    with pytest.raises(ValueError, match="needs labels"):
        npy_images(p, key="images", classes=[2])


def test_make_npy_dispatches_on_ndim(tmp_path):
    np.save(tmp_path / "img.npy", _u8((4, 2, 2, 3)))
    np.save(tmp_path / "pts.npy", np.ones((4, 3)))
    img = make("npy", path=tmp_path / "img.npy")
    assert isinstance(img, ImageDataset) and img(7, generator=gen(0)).shape == (7, 3, 2, 2)
    pts = make("npy", path=tmp_path / "pts.npy")
    assert type(pts) is Empirical and pts.event_shape == (3,)
    with pytest.raises(ValueError, match="layout"):
        make("npy", path=tmp_path / "pts.npy", layout="nchw")
    assert isinstance(make("npy", samples=np.zeros((3, 4, 4), np.float32)), ImageDataset)
    assert type(make("empirical", path=tmp_path / "img.npy")) is Empirical  # empirical: points, as before
    with pytest.raises(ValueError, match="value_range.*empirical"):
        make("npy", samples=np.full((3, 4, 4), 7.0))


def test_load_array_is_shared():
    from otgen.distributions import readers, registry

    assert D.load_array is readers.load_array is registry.load_array


# --------------------------------------------------------------------------- MNIST IDX


def _write_idx(path, magic, arr, gz=False):
    data = struct.pack(">I", magic) + struct.pack(f">{arr.ndim}I", *arr.shape) + arr.astype(np.uint8).tobytes()
    if gz:
        with gzip.open(path, "wb") as f:
            f.write(data)
    else:
        path.write_bytes(data)
    return data


@pytest.mark.parametrize("gz", [False, True])
def test_mnist_idx_file_and_folder(tmp_path, gz):
    ext = ".gz" if gz else ""
    imgs, labels = _u8((7, 5, 4)), np.array([3, 1, 4, 1, 5, 9, 2])
    _write_idx(tmp_path / f"train-images-idx3-ubyte{ext}", 0x803, imgs, gz)
    _write_idx(tmp_path / f"train-labels-idx1-ubyte{ext}", 0x801, labels, gz)
    test_imgs = _u8((2, 5, 4), seed=1)
    _write_idx(tmp_path / f"t10k-images-idx3-ubyte{ext}", 0x803, test_imgs, gz)
    _write_idx(tmp_path / f"t10k-labels-idx1-ubyte{ext}", 0x801, np.array([0, 8]), gz)
    s = mnist_idx(tmp_path / f"train-images-idx3-ubyte{ext}")
    assert s.images.shape == (7, 1, 5, 4) and s.labels.tolist() == labels.tolist()
    assert torch.allclose(s.images[:, 0], torch.from_numpy(imgs / 127.5 - 1).float(), atol=1e-6)
    assert torch.equal(mnist_idx(tmp_path).images, s.images)
    t = mnist_idx(tmp_path, split="test")
    assert t.labels.tolist() == [0, 8] and torch.allclose(t.images[:, 0], torch.from_numpy(test_imgs / 127.5 - 1).float())
    ones = mnist_idx(tmp_path, classes=[1], size=4, channels=3)
    assert ones.images.shape == (2, 3, 4, 4) and ones.labels.tolist() == [1, 1]
    assert len(mnist_idx(tmp_path, limit=3)) == 3


def test_mnist_idx_without_labels(tmp_path):
    _write_idx(tmp_path / "my-images-idx3-ubyte", 0x803, _u8((3, 4, 4)))
    s = mnist_idx(tmp_path / "my-images-idx3-ubyte")
    assert s.labels is None and len(s) == 3
    with pytest.raises(ValueError, match="needs labels"):
        mnist_idx(tmp_path / "my-images-idx3-ubyte", classes=[0])


def test_mnist_idx_errors(tmp_path):
    p = tmp_path / "train-images-idx3-ubyte"
    data = _write_idx(p, 0x801, _u8((3, 4, 4)))  # a wrong magic number
    with pytest.raises(ValueError, match=r"train-images-idx3-ubyte.*0x00000801.*expected 0x00000803"):
        mnist_idx(p)
    data = _write_idx(p, 0x803, _u8((3, 4, 4)))
    p.write_bytes(data[:-5])
    with pytest.raises(ValueError, match=r"train-images-idx3-ubyte.*truncated.*expected 64"):
        mnist_idx(p)
    p.write_bytes(data[:10])
    with pytest.raises(ValueError, match="truncated.*header of 16"):
        mnist_idx(p)
    p.write_bytes(data)
    _write_idx(tmp_path / "train-labels-idx1-ubyte", 0x801, np.array([1, 2]))
    with pytest.raises(ValueError, match=r"train-labels-idx1-ubyte.*2 labels, expected 3"):
        mnist_idx(p)
    gz = tmp_path / "g" / "train-images-idx3-ubyte.gz"
    gz.parent.mkdir()
    gz.write_bytes(gzip.compress(data)[:20])
    with pytest.raises(ValueError, match="train-images-idx3-ubyte.gz"):
        mnist_idx(gz)
    with pytest.raises(FileNotFoundError, match="t10k-images-idx3-ubyte"):
        mnist_idx(tmp_path, split="test")
    with pytest.raises(ValueError, match="split"):
        mnist_idx(tmp_path, split="valid")


# --------------------------------------------------------------------------- CIFAR-10


def _cifar_batch(path, n, seed, protocol=None):
    data = _u8((n, 3072), seed)
    labels = [int(v) for v in np.random.default_rng(seed).integers(0, 10, n)]
    with open(path, "wb") as f:
        pickle.dump({b"batch_label": b"fake batch", b"labels": labels, b"data": data, b"filenames": [b"a.png"] * n}, f, protocol=protocol)
    return data, labels


@pytest.mark.parametrize("protocol", [2, None])
def test_cifar10_batch_pixel_order(tmp_path, protocol):
    p = tmp_path / "data_batch_1"
    data, labels = _cifar_batch(p, 4, 0, protocol)
    s = cifar10(p)
    assert s.images.shape == (4, 3, 32, 32) and s.labels.tolist() == labels and s.class_names[0] == "airplane"
    unit = (s.images.double() + 1) * 127.5
    for c in range(3):  # R plane: entries 0..1023, row-major 32x32; then G, then B
        assert torch.allclose(unit[:, c], torch.from_numpy(data[:, 1024 * c : 1024 * (c + 1)].reshape(4, 32, 32)).double(), atol=1e-4)
    assert abs(float(unit[1, 0, 0, 5]) - float(data[1, 5])) < 1e-4  # R, row 0, column 5
    assert abs(float(unit[1, 1, 2, 0]) - float(data[1, 1024 + 64])) < 1e-4  # G, row 2, column 0


def test_cifar10_python2_style_globals(tmp_path):
    """Official batches name numpy.core.multiarray (numpy 1); that is admitted too."""
    raw = pickle.dumps({b"data": _u8((2, 3072)), b"labels": [1, 2]}, protocol=2)
    assert b"numpy._core.multiarray" in raw
    p = tmp_path / "test_batch"
    p.write_bytes(raw.replace(b"numpy._core.multiarray", b"numpy.core.multiarray"))
    assert cifar10(p).labels.tolist() == [1, 2]


def test_cifar10_folder_splits(tmp_path):
    d = tmp_path / "cifar-10-batches-py"
    d.mkdir()
    parts = [_cifar_batch(d / f"data_batch_{i}", 2, i) for i in range(1, 6)]
    test_data, test_labels = _cifar_batch(d / "test_batch", 3, 9)
    train = cifar10(d)
    assert len(train) == 10 and train.labels.tolist() == sum((lab for _, lab in parts), [])
    assert torch.equal(cifar10(tmp_path).images, train.images)  # the parent folder works too
    test = cifar10(d, split="test", size=16, channels=1)
    assert test.images.shape == (3, 1, 16, 16) and test.labels.tolist() == test_labels
    assert len(cifar10(d, split="all")) == 13
    keep = sorted(set(test_labels))[:1]
    assert set(cifar10(d, split="test", classes=keep).labels.tolist()) == set(keep)
    os.remove(d / "data_batch_3")
    with pytest.raises(FileNotFoundError, match="data_batch_3"):
        cifar10(d)


class _Evil:
    """Unpickling this would run a shell command that writes a marker file."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"echo pwned > {self.marker}",))


class _EvilEval:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (eval, (f"open({str(self.marker)!r}, 'w').write('pwned')",))


@pytest.mark.parametrize("cls, refused", [(_Evil, "system"), (_EvilEval, "(builtins|__builtin__).eval")])
@pytest.mark.parametrize("protocol", [2, None])
def test_cifar10_refuses_code_in_pickles(tmp_path, cls, refused, protocol):
    marker = tmp_path / "marker"
    p = tmp_path / "data_batch_1"
    with open(p, "wb") as f:
        pickle.dump({b"data": _u8((1, 3072)), b"labels": [0], b"x": cls(marker)}, f, protocol=protocol)
    with pytest.raises(ValueError, match=f"refusing to unpickle .*{refused}.*data_batch_1.*only arrays"):
        cifar10(p)
    assert not marker.exists()


def test_cifar10_bad_batches(tmp_path):
    p = tmp_path / "b"
    with open(p, "wb") as f:
        pickle.dump({b"data": _u8((2, 100)), b"labels": [0, 1]}, f)
    with pytest.raises(ValueError, match=r"b'data'.*\(n, 3072\)"):
        cifar10(p)
    with open(p, "wb") as f:
        pickle.dump({b"data": _u8((2, 3072)), b"labels": [0]}, f)
    with pytest.raises(ValueError, match="b'labels'"):
        cifar10(p)
    p.write_bytes(pickle.dumps({b"data": _u8((2, 3072))})[:50])
    with pytest.raises(ValueError, match="cannot read CIFAR-10 batch"):
        cifar10(p)


# --------------------------------------------------------------------------- registry


@pytest.fixture
def files(tmp_path):
    """A tiny file for each reader: {name: kwargs for make}."""
    (tmp_path / "folder").mkdir()
    for k in range(3):
        Image.new("L", (4, 4), 60 * k).save(tmp_path / "folder" / f"{k}.png")
    np.save(tmp_path / "x.npy", _u8((3, 4, 4)))
    _write_idx(tmp_path / "train-images-idx3-ubyte", 0x803, _u8((3, 4, 4)))
    _cifar_batch(tmp_path / "data_batch_1", 3, 0)
    return {
        "digits": {"classes": [3], "size": 16, "colored": True},
        "image_folder": {"path": tmp_path / "folder"},
        "npy": {"path": str(tmp_path / "x.npy")},
        "mnist_idx": {"path": tmp_path / "train-images-idx3-ubyte"},
        "cifar10": {"path": tmp_path / "data_batch_1"},
    }


@pytest.mark.parametrize("name", ["digits", "image_folder", "npy", "mnist_idx", "cifar10"])
def test_make_each_image_name(files, name):
    assert name in D.names()
    s = make(name, **files[name])
    assert isinstance(s, ImageSet if name == "digits" else ImageDataset)
    x = s(9, generator=gen(0))
    assert x.shape == (9, *s.event_shape) and x.min() >= -1 and x.max() <= 1
    assert torch.equal(x, s(9, generator=gen(0)))
    with pytest.raises(ValueError, match="bogus") as info:
        make(name, **files[name], bogus=1)
    assert "size" in str(info.value)  # the accepted arguments are listed


def test_make_digits_config_style():
    a = make("digits", classes=[3], size=16, colored=True)
    b = make("digits", classes=(3,), size=16, colored=True)
    c = make("Digits", classes=3, size=16, colored=True)
    assert torch.equal(a.images, b.images) and torch.equal(a.images, c.images)
    assert a.event_shape == (3, 16, 16)
    with pytest.raises(ValueError, match="return_labels"):
        make("digits", return_labels=True)
    with pytest.raises(ValueError, match="missing.*path"):
        make("cifar10")
