"""Sampling in batches: ``transport`` / ``sample`` with ``batch_size`` on every solver (the same
numbers as one call where the random stream allows it, the same distribution otherwise), and
``otgen sample`` with ``--batch-size``, ``--out DIR`` (.npz shards, PNG files) and its bad flags."""

import re

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

import otgen
from otgen import sampling_run
from otgen.cli import main
from otgen.solvers.base import map_batches

# Float tolerance, not bitwise: the same inputs and noise give outputs that differ in the last bits
# when a network runs on another batch shape (other matmul / conv blocking); measured <= 7e-7 here.
ATOL = 1e-5
N = 23


def gen(seed: int = 3) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def error(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    return err


# ----------------------------------------------------------------------------- the random stream
@pytest.mark.parametrize("n, d, b, equal", [(N, 16, 1, True), (N, 16, 7, True), (N, 256, 7, True), (24, 2, 8, True),
                                            (N, 2, 8, False), (N, 2, 7, False), (N, 2, 1, False)])
def test_cpu_normals_of_successive_batches_are_one_draw_when_each_batch_draws_a_multiple_of_16(n, d, b, equal):
    """What ``semidual.push`` relies on: torch's CPU generator fills normals in blocks of 16 (fewer
    one by one: (23, 2, 8) fails on its last batch of 7·2 = 14 numbers)."""
    one = torch.randn(n, d, generator=gen())
    g = gen()
    parts = torch.cat([torch.randn(min(b, n - i), d, generator=g) for i in range(0, n, b)])
    assert torch.equal(one, parts) == equal


# ----------------------------------------------------------------------------- the helper
def test_map_batches_calls_in_order_and_fills_one_output():
    x = torch.arange(N, dtype=torch.float32)[:, None]
    sizes = []

    def double(rows):
        sizes.append(len(rows))
        return torch.cat([rows, 2 * rows], dim=1)

    out = map_batches(double, x, 7)
    assert sizes == [7, 7, 7, 2] and out.shape == (N, 2) and torch.equal(out[:, 1], 2 * x[:, 0])
    sizes.clear()
    assert torch.equal(map_batches(double, x, None), out) and sizes == [N]
    with pytest.raises(RuntimeError, match="a batch of 7 inputs gave 6 outputs"):
        map_batches(lambda rows: rows[:6], x, 7)


# ----------------------------------------------------------------------------- the solvers
def uotm(noise_dim=16, **kw):
    mlp = {"name": "mlp", "hidden": [8, 8]}
    return otgen.UOTM(**{**dict(dim=2, tau=0.5, generator={**mlp, "noise_dim": noise_dim}, potential=mlp, seed=0),
                         **kw})


def uotm_images():
    return otgen.UOTM(event_shape=(1, 8, 8), generator={"name": "conv", "width": 8, "noise_dim": 16},
                      potential={"name": "conv", "width": 8}, seed=0)


def sjko():
    mlp = {"name": "mlp", "hidden": [8, 8]}
    return otgen.SJKO(dim=2, h=0.5, n_phases=2, generator={**mlp, "noise_dim": 16}, potential=mlp, seed=0)


def wae():
    mlp = {"name": "mlp", "hidden": [16]}
    return otgen.WAE(data_shape=(6,), latent_dim=2, encoder=mlp, decoder=mlp, seed=0)


def egnot(sampler="smc"):
    return otgen.EgNOT(dim=2, eps=0.5, potential={"hidden": [8, 8]}, sampler={"name": sampler, "sample_steps": 3},
                       seed=0)


def source_points(model, n=N):
    """n points that ``model.transport`` takes: prior draws for a WAE, standard normals otherwise."""
    own = model.own_source()
    return own(n, generator=gen(1)) if own else torch.randn(n, *model.expected_shapes()[0], generator=gen(1))


# Where one call's numbers are kept: z of 16 numbers per point (UOTM, S-JKO: any batch size), the
# noise-free decoder of a WAE, and noise_dim 2 with batches of 8 points (16 numbers) out of 24.
SAME_NUMBERS = {"uotm": uotm, "uotm_images": uotm_images, "sjko": sjko, "wae": wae,
                "uotm_noise2_batch8": lambda: uotm(noise_dim=2)}


@pytest.mark.parametrize("name", SAME_NUMBERS)
def test_transport_and_sample_in_batches_give_one_calls_numbers(name):
    model = SAME_NUMBERS[name]()
    n = 24 if name == "uotm_noise2_batch8" else N
    x = source_points(model, n)
    sizes = [8, n] if name == "uotm_noise2_batch8" else [1, 7, n]
    one = model.transport(x, rng=gen())
    draws = model.sample(x, 3, rng=gen())
    for b in sizes:
        y = model.transport(x, rng=gen(), batch_size=b)
        assert y.shape == one.shape and torch.allclose(y, one, rtol=0, atol=ATOL), (b, (y - one).abs().max())
        if b not in (1, 8):  # sample: b x, so 3·b points, per call
            y = model.sample(x, 3, rng=gen(), batch_size=b)
            assert torch.allclose(y, draws, rtol=0, atol=ATOL), b
    assert torch.equal(model.transport(x, rng=gen(), batch_size=n), one)  # one batch: bit for bit
    assert torch.equal(model.transport(x, rng=gen(), batch_size=10 * n), one)


def test_wae_sample_decodes_each_code_once_for_its_equal_draws():
    """A WAE's decoder is deterministic: its n_per_x draws of a code are one decoding repeated, in
    every batch size."""
    model = wae()
    z = source_points(model)
    one = model.sample(z, 3)
    assert one.shape == (N, 3, 6) and all(torch.equal(one[:, k], model.transport(z)) for k in range(3))
    for b in (1, 7, N):
        assert torch.allclose(model.sample(z, 3, batch_size=b), one, rtol=0, atol=ATOL)


def test_sjko_phases_are_batched_too():
    model = sjko().fit(otgen.distributions.Gaussian.standard(2), otgen.distributions.Gaussian.standard(2),
                       n_iters=2, batch_size=8, progress=False)
    x = source_points(model)
    one = model.transport(x, phase=0, rng=gen())
    assert torch.allclose(model.transport(x, phase=0, rng=gen(), batch_size=7), one, rtol=0, atol=ATOL)


@pytest.mark.parametrize("sampler", ["smc", "langevin"])
def test_egnot_in_batches_draws_from_the_same_distribution(sampler):
    """Each batch runs its own chains (start, noise, resampling), so only the distribution is kept:
    means and spreads of 1200 draws agree within a few standard errors; one batch is bit for bit."""
    model = egnot(sampler)
    x = torch.tensor([[1.0, -0.5]]).repeat(1200, 1)
    one = model.transport(x, rng=gen())
    batched = model.transport(x, rng=gen(), batch_size=150)
    assert batched.shape == one.shape and not torch.equal(batched, one)
    se = one.std(0) / len(x) ** 0.5
    assert ((batched.mean(0) - one.mean(0)).abs() < 5 * se * 2 ** 0.5).all()
    assert ((batched.std(0) / one.std(0) - 1).abs() < 0.15).all()
    assert model.sample(x[:5], 4, rng=gen(), batch_size=2).shape == (5, 4, 2)
    assert torch.equal(model.transport(x, rng=gen(), batch_size=len(x)), one)


@pytest.mark.parametrize("make", [uotm, sjko, wae, egnot], ids=["uotm", "sjko", "wae", "egnot"])
@pytest.mark.parametrize("bad", [0, -2, 2.5, "4", True])
def test_a_bad_batch_size_is_named(make, bad):
    model = make()
    x = source_points(model, 4)
    with pytest.raises(ValueError, match=re.escape(f"batch_size must be an int >= 1, got {bad!r}")):
        model.transport(x, batch_size=bad)
    with pytest.raises(ValueError, match="batch_size must be an int >= 1"):
        model.sample(x, 2, batch_size=bad)


def test_numpy_ints_are_batch_sizes():
    model = uotm()
    x = source_points(model)
    one = model.transport(x, rng=gen())
    assert torch.allclose(model.transport(x, rng=gen(), batch_size=np.int64(7)), one, rtol=0, atol=ATOL)


# ----------------------------------------------------------------------------- the writers
def test_png_files_round_trip_grey_and_rgb_images(tmp_path):
    y = torch.rand(5, 3, 4, 4, generator=gen()).mul(2.2).sub(1.1).numpy()  # some values beyond [-1, 1]
    for channels in (1, 3):
        folder = tmp_path / f"c{channels}"
        writer = sampling_run.PngFiles(folder, 5)
        writer.put(0, y[:, :channels], None)
        assert [p.name for p in writer.written] == [f"{i:06d}.png" for i in range(5)]
        for i, path in enumerate(writer.written):
            with Image.open(path) as image:
                assert image.mode == ("L" if channels == 1 else "RGB")
                back = np.asarray(image, dtype=np.float32) / 127.5 - 1
            want = np.clip(y[i, :channels], -1, 1)
            assert np.abs(back.reshape(4, 4, channels).transpose(2, 0, 1) - want).max() <= 1 / 255 + 1e-6


def test_png_of_outputs_that_are_not_images_is_refused_before_writing(tmp_path):
    model = uotm()
    where = sampling_run.Layout(tmp_path / "pngs", "png", folder=True)
    with pytest.raises(ValueError, match=re.escape("--format png writes images (C, H, W) with C = 1 (grey) or 3 "
                                                   "(RGB); this run's outputs have shape (2,) each")):
        sampling_run.write_samples(model, lambda k: source_points(model, k), 5, where, gen(), progress=False)
    assert not (tmp_path / "pngs").exists()


def test_numbers_widen_for_many_files(tmp_path):
    assert sampling_run.numbered(tmp_path, 7, 10, 6, "{}.png").name == "000007.png"
    assert sampling_run.numbered(tmp_path, 7, 10 ** 7 + 1, 6, "{}.png").name == "00000007.png"


# ----------------------------------------------------------------------------- otgen sample
@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A tiny UOTM image run: N(0, I) on 1×8×8 -> digits, noise_dim 16, 2 steps."""
    root = tmp_path_factory.mktemp("uotm_images")
    cfg = {"model": {"name": "UOTM", "event_shape": [1, 8, 8], "tau": 0.001,
                     "generator": {"name": "conv", "width": 8, "noise_dim": 16},
                     "potential": {"name": "conv", "width": 8}},
           "data": {"source": {"name": "normal", "shape": [1, 8, 8]}, "target": {"name": "digits", "size": 8}},
           "train": {"n_iters": 2, "batch_size": 8}, "eval": {"n_samples": 20}}
    (root / "uotm.yaml").write_text(yaml.safe_dump(cfg))
    assert main(["train", str(root / "uotm.yaml"), "--out", str(root / "run"), "--threads", "1"]) == 0
    return root / "run"


def sample(run, out, *flags) -> int:
    return main(["sample", str(run), "--out", str(out), *map(str, flags)])


def test_batches_give_the_unbatched_output(run, tmp_path):
    assert sample(run, tmp_path / "one.npz", "--n", 40, "--batch-size", 40) == 0
    one = np.load(tmp_path / "one.npz")
    for b in (1, 7):
        assert sample(run, tmp_path / f"b{b}.npz", "--n", 40, "--batch-size", b) == 0
        batched = np.load(tmp_path / f"b{b}.npz")
        assert np.array_equal(batched["x"], one["x"])
        assert batched["y"].shape == (40, 1, 8, 8) and np.abs(batched["y"] - one["y"]).max() <= ATOL
    assert sample(run, tmp_path / "draws.npz", "--n", 5, "--n-per-x", 3, "--batch-size", 2) == 0
    assert np.load(tmp_path / "draws.npz")["y"].shape == (5, 3, 1, 8, 8)


def test_a_folder_gets_npz_shards_that_add_up_to_the_file(run, tmp_path, capsys):
    assert sample(run, tmp_path / "all.npz", "--n", 25, "--batch-size", 4) == 0
    capsys.readouterr()
    assert sample(run, tmp_path / "shards", "--n", 25, "--batch-size", 4, "--shard-size", 10) == 0
    names = sorted(p.name for p in (tmp_path / "shards").iterdir())
    assert names == ["samples_00000.npz", "samples_00001.npz", "samples_00002.npz"]
    assert "wrote 3 files to" in capsys.readouterr().out
    shards = [np.load(tmp_path / "shards" / name) for name in names]
    assert [len(s["x"]) for s in shards] == [10, 10, 5] and all(len(s["y"]) == len(s["x"]) for s in shards)
    whole = np.load(tmp_path / "all.npz")  # x: 64 normals a point, so drawn per shard they are the same numbers
    assert np.array_equal(np.concatenate([s["x"] for s in shards]), whole["x"])
    assert np.abs(np.concatenate([s["y"] for s in shards]) - whole["y"]).max() <= ATOL


def test_a_folder_gets_one_png_per_image(run, tmp_path):
    assert sample(run, tmp_path / "s.npz", "--n", 6, "--n-per-x", 2, "--batch-size", 4) == 0
    assert sample(run, tmp_path / "pngs", "--n", 6, "--n-per-x", 2, "--batch-size", 4, "--format", "png",
                  "--shard-size", 4) == 0
    paths = sorted((tmp_path / "pngs").iterdir())
    assert [p.name for p in paths] == [f"{i:06d}.png" for i in range(12)]
    y = np.load(tmp_path / "s.npz")["y"].reshape(12, 8, 8)  # image i·2 + j is draw j of point i
    for image, path in zip(y, paths):
        with Image.open(path) as png:
            assert png.mode == "L" and png.size == (8, 8)
            assert np.abs(np.asarray(png, dtype=np.float32) / 127.5 - 1 - image).max() <= 1 / 255 + 1e-6


def test_a_grid_comes_with_a_folder_too(run, tmp_path):
    assert sample(run, tmp_path / "shards", "--n", 30, "--shard-size", 7, "--grid", tmp_path / "g.png") == 0
    assert (tmp_path / "g.png").stat().st_size > 1000 and len(list((tmp_path / "shards").iterdir())) == 5


@pytest.mark.parametrize("flags, message", [
    (["--n", "0"], "--n must be >= 1, got 0"),
    (["--n", "-5"], "--n must be >= 1, got -5"),
    (["--n", "4", "--batch-size", "0"], "--batch-size must be >= 1, got 0"),
    (["--n", "4", "--batch-size", "-1"], "--batch-size must be >= 1, got -1"),
    (["--n", "4", "--shard-size", "0"], "--shard-size must be >= 1, got 0"),
    (["--n", "4", "--format", "png"], "--format png writes one PNG file per image into a folder; give --out a folder"),
    (["--n", "4", "--shard-size", "5"], "--shard-size applies to --out DIR (a folder of shards)"),
])
def test_bad_flags_are_named(flags, message, run, tmp_path, capsys):
    assert sample(run, tmp_path / "s.npz", *flags) == 2
    err = error(capsys)
    assert err.startswith("otgen sample: error: ") and message in err
    assert list(tmp_path.iterdir()) == []


def test_an_out_that_is_neither_npz_nor_folder_and_a_folder_with_earlier_outputs_are_refused(run, tmp_path, capsys):
    assert sample(run, tmp_path / "s.txt", "--n", 4) == 2
    assert "--out must name an .npz file or a folder" in error(capsys)
    assert sample(run, tmp_path / "pngs", "--n", 3, "--format", "png") == 0
    capsys.readouterr()
    assert sample(run, tmp_path / "pngs", "--n", 3, "--format", "png") == 2
    assert "holds 3 png output(s) of an earlier run (000000.png, ...); give a new or empty folder" in error(capsys)
    assert sample(run, tmp_path / "pngs", "--n", 3) == 0  # shards beside the images do not mix with them
