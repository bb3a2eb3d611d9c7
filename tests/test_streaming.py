"""Streaming image data: the readers keep pixels as stored, the training loop reads them through a
DataLoader in one seeded order that K processes share, resumes exactly, flips on request, and turns
every failure of a file or a worker into one clear message."""

from __future__ import annotations

import os
import signal
import warnings

import numpy as np
import pytest
import torch
from PIL import Image

import otgen
from otgen.distributions import ArrayImages, FolderImages, SkippedImageWarning, image_folder, make, npy_images
from otgen.distributions import datasets as ds_mod
from otgen.shard import Shard
from otgen.train.loader import DataLoaderFailed, DataOrder, DatasetStream


def _folder(path, n=24, size=8, seed=0):
    """n RGB PNGs (size x size): image i is filled with (i, 2i, 3i) mod 256 and has a bright left column."""
    path.mkdir(exist_ok=True)
    for i in range(n):
        a = np.zeros((size, size, 3), np.uint8)
        a[:] = (i % 256, (2 * i) % 256, (3 * i) % 256)
        a[:, 0] = 255
        Image.fromarray(a).save(path / f"{i:04d}.png")
    return path


def _ids(batch):
    """The image number i of each row of a converted batch made by ``_folder`` (from the red channel)."""
    red = ((batch[:, 0, :, 1:] + 1) * 127.5).round().long()
    return red[:, 0, 0].tolist()


def _stream(dataset, rank=0, world=1, workers=0, seed=5):
    return DatasetStream(dataset, "target", seed, Shard(rank, world), num_workers=workers)


def test_readers_keep_pixels_as_stored(tmp_path):
    np.save(tmp_path / "a.npy", np.random.default_rng(0).integers(0, 256, (50, 8, 8, 3), dtype=np.uint8))
    s = npy_images(tmp_path / "a.npy")
    assert isinstance(s, ArrayImages) and isinstance(s.array, np.memmap) and s.array.dtype == np.uint8
    assert s.read(3).dtype == torch.uint8 and s.read(3).shape == (3, 8, 8)
    f = image_folder(_folder(tmp_path / "f", n=3))
    assert isinstance(f, FolderImages) and f.read(2).dtype == torch.uint8
    # the conversion is the readers' documented one: v / 255 * 2 - 1
    assert torch.equal(f.convert(f.read(2)[None]), (f.read(2)[None].float() / 255 * 2 - 1))


def test_data_order_is_a_permutation_per_epoch_and_depends_only_on_the_seed():
    order = DataOrder(10, seed=3, flip=True)
    idx, flips = order.rows(0, 30)
    for e in range(3):
        assert sorted(idx[10 * e:10 * e + 10]) == list(range(10))
    assert idx[:10] != idx[10:20]  # a new permutation each epoch
    again = DataOrder(10, seed=3, flip=True)
    assert again.rows(17, 8) == (idx[17:25], flips[17:25])  # any window, any order of asking
    assert DataOrder(10, seed=4, flip=True).rows(0, 10)[0] != idx[:10]
    assert 5 <= sum(flips) <= 25


@pytest.mark.parametrize("world", [2, 4])
def test_k_processes_read_together_what_one_process_reads(tmp_path, world):
    data = image_folder(_folder(tmp_path / "f"))
    one = _stream(data)
    one.start(8)
    single = [_ids(one(8)) for _ in range(5)]
    one.close()
    parts = []
    for r in range(world):
        s = _stream(data, r, world)
        s.start(8)
        parts.append([_ids(s(8)) for _ in range(5)])
        s.close()
    for step in range(5):
        assert sum((parts[r][step] for r in range(world)), []) == single[step]
        assert all(len(parts[r][step]) == 8 // world for r in range(world))


def test_resume_continues_the_same_order_and_workers_change_nothing(tmp_path):
    data = image_folder(_folder(tmp_path / "f"), flip=True)
    full = _stream(data, workers=0)
    full.start(6)
    batches = [full(6) for _ in range(7)]
    full.close()
    resumed = _stream(data, workers=2)
    resumed.start(6, step=4)  # the run stopped after step 4
    for b in batches[4:]:
        assert torch.equal(resumed(6), b)
    resumed.close()


def test_flip_mirrors_the_image_on_its_coin(tmp_path):
    data = image_folder(_folder(tmp_path / "f"), flip=True)
    s = _stream(data)
    s.start(24)
    x = s(24)
    s.close()
    idx, coins = s.order.rows(0, 24)
    plain = data.convert(torch.stack([data.read(i) for i in idx]))
    for k, c in enumerate(coins):
        assert torch.equal(x[k], plain[k].flip(-1) if c else plain[k])
    assert 0 < sum(coins) < 24
    unflipped = image_folder(tmp_path / "f")
    s2 = _stream(unflipped)
    s2.start(24)
    assert torch.equal(s2(24), plain)
    s2.close()


def test_flip_is_a_data_option_of_each_reader(tmp_path):
    np.save(tmp_path / "a.npy", np.zeros((4, 8, 8), np.uint8))
    assert make("npy", path=tmp_path / "a.npy", flip=True).flip
    assert make("image_folder", path=_folder(tmp_path / "f", n=2), flip=True).flip
    with pytest.raises(ValueError, match="flip must be True or False"):
        make("image_folder", path=tmp_path / "f", flip="yes")
    with pytest.raises(ValueError, match="flip applies only to image arrays"):
        np.save(tmp_path / "pts.npy", np.zeros((4, 2)))
        make("npy", path=tmp_path / "pts.npy", flip=True)


@pytest.mark.parametrize("workers", [0, 2])
def test_a_corrupt_file_is_skipped_and_announced_once(tmp_path, workers):
    folder = _folder(tmp_path / "f", n=12)
    (folder / "0005.png").write_bytes(b"not a png at all")
    data = image_folder(folder)
    ds_mod._announced.clear()
    s = _stream(data, workers=workers)
    s.start(12)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        first, second = s(12), s(12)
    s.close()
    skipped = [w for w in caught if issubclass(w.category, SkippedImageWarning)]
    assert len(skipped) == 1 and "0005.png" in str(skipped[0].message)
    for batch in (first, second):
        ids = _ids(batch)
        assert len(ids) == 12 and 5 not in ids  # its row holds another image of the batch
        assert sorted(set(ids)) == [i for i in range(12) if i != 5]


def test_a_file_that_vanishes_while_training_is_skipped(tmp_path):
    folder = _folder(tmp_path / "f", n=8)
    data = image_folder(folder)
    os.remove(folder / "0003.png")  # listed, then deleted
    ds_mod._announced.clear()
    s = _stream(data)
    s.start(8)
    with pytest.warns(SkippedImageWarning, match="0003.png"):
        x = s(8)
    s.close()
    assert 3 not in _ids(x)


def _first_batch_raises(data, batch: int, workers: int, error: type, match: str) -> None:
    s = _stream(data, workers=workers)
    s.start(batch)
    try:
        with pytest.raises(error, match=match):
            s(batch)
    finally:
        s.close()


def test_a_file_of_another_size_stops_the_run_naming_it(tmp_path):
    folder = _folder(tmp_path / "f", n=6)
    Image.new("RGB", (5, 5)).save(folder / "0002.png")
    _first_batch_raises(image_folder(folder), 6, 1, ValueError, "0002.png.*5x5.*size=")


def test_a_batch_with_no_readable_image_is_an_error_naming_a_file(tmp_path):
    folder = _folder(tmp_path / "f", n=2)
    data = image_folder(folder)
    for p in folder.iterdir():
        p.write_bytes(b"garbage")
    _first_batch_raises(data, 2, 1, ValueError, "no image of a batch could be read.*png")


class _Killer(FolderImages):
    """Reads normally in the training process; a worker process kills itself on its first read."""

    def read(self, i):
        if torch.utils.data.get_worker_info() is not None:
            os.kill(os.getpid(), signal.SIGKILL)
        return super().read(i)


def test_a_worker_that_dies_stops_the_run_with_a_clear_error(tmp_path):
    base = image_folder(_folder(tmp_path / "f", n=8))
    data = _Killer(base.files, 3, None, source=base.source)
    _first_batch_raises(data, 4, 1, DataLoaderFailed, "data-loading worker of the target data.*num_workers")


def test_training_on_a_folder_streams_and_resumes_exactly(tmp_path):
    folder = _folder(tmp_path / "f", n=20, size=8)
    target = image_folder(folder, flip=True)

    def model():
        return otgen.UOTM(event_shape=[3, 8, 8], source_shape=[3, 8, 8], generator={"name": "conv", "width": 8},
                          potential={"name": "conv", "width": 8}, seed=0)

    source = make("normal", shape=[3, 8, 8])
    straight = model().fit(source, target, n_iters=6, batch_size=4, progress=False, num_workers=1)
    first = model().fit(source, target, n_iters=3, batch_size=4, progress=False, out=tmp_path / "run",
                        checkpoint_every=3, num_workers=0)
    resumed = model().fit(source, target, n_iters=6, batch_size=4, progress=False, out=tmp_path / "run",
                          resume=True, num_workers=2)
    assert first.history.steps == 3
    for name, net in straight.networks().items():
        for k, v in net.state_dict().items():
            assert torch.equal(v, resumed.networks()[name].state_dict()[k]), (name, k)
    with pytest.raises(ValueError, match="num_workers"):
        model().fit(source, target, n_iters=1, batch_size=4, progress=False, num_workers=-1)
