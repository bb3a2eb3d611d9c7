"""S-JKO on images: the per-phase outputs of a run (``run_arrays``), their plots (one grid per phase,
the phases overview, draws per source), a tiny noise -> 8×8 digits flow, and the run on the CLI."""

import pytest
import torch
import yaml
from PIL import Image

import otgen
from otgen.cli import main
from otgen.distributions.images import digits
from otgen.distributions import StandardNormal
from otgen.viz import image_tiles, plot_image_draws, plot_image_phases, plot_image_run

SHAPE = (1, 8, 8)


def pngs(folder):
    return sorted(p.name for p in folder.glob("*.png"))


def image_size(path):
    with Image.open(path) as im:
        return im.size


# ----------------------------------------------------------------------------- plots


def fake_arrays(n_phases=3, n=12, k=4):
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(n, *SHAPE, generator=gen)
    phases = torch.stack([torch.full((n, *SHAPE), -1.0 + 2.0 * j / n_phases) for j in range(n_phases)])
    return {"x": x, "y": digits(size=8).images[:n], "y_hat": phases[-1], "phases": phases,
            "draws": torch.rand(n, k, *SHAPE, generator=gen) * 4 - 2}  # outside [−1, 1]: clamped


def test_phases_give_one_grid_per_phase_and_an_overview(tmp_path):
    arrays = fake_arrays(n_phases=3)
    paths = plot_image_run({k: v for k, v in arrays.items() if k != "draws"}, tmp_path, name="SJKO")
    assert pngs(tmp_path) == ["data.png", "phase_1.png", "phase_2.png", "phase_3.png", "phases.png",
                              "samples.png", "transport.png"]
    assert all(p.is_file() for p in paths) and len(paths) == 7
    # the overview has one column per phase beside the source: 8 phases draw wider than 2
    many = fake_arrays(n_phases=8)["phases"]
    narrow = plot_image_phases(arrays["x"], many[:2], tmp_path / "two.png")
    wide = plot_image_phases(arrays["x"], many, tmp_path / "eight.png")
    assert image_size(wide)[0] > image_size(narrow)[0]


def test_draws_are_drawn_source_then_draws(tmp_path):
    arrays = fake_arrays(k=4)
    paths = plot_image_run({k: v for k, v in arrays.items() if k != "phases"}, tmp_path, name="UOTM")
    assert "draws.png" in pngs(tmp_path) and not (tmp_path / "phases.png").exists()
    assert tmp_path / "draws.png" in paths
    path = plot_image_draws(arrays["x"], arrays["draws"], tmp_path / "d.png", title="t", n_rows=3)
    assert path.stat().st_size > 1000
    # a row is the source and its k draws, clamped to [0, 1] for display
    tiles = image_tiles(torch.cat([arrays["x"][:1], arrays["draws"][0]]), nrow=5)
    assert tiles.shape == (8 + 2, 5 * 9 + 1, 3) and tiles.min() >= 0 and tiles.max() <= 1


def test_a_run_of_many_phases_plots_an_even_spread_of_them_named_by_their_numbers(tmp_path):
    """An S-JKO run of more than MAX_PHASES_SHOWN phases (the GPU config has 100) plots and stores 10 of
    them, evenly spread, the first and the last included, each grid named by its phase number."""
    from otgen.image_runs import MAX_PHASES_SHOWN, write_image_run

    class ManyPhases:  # the hooks write_image_run asks for, with 25 constant "phases"
        device = torch.device("cpu")

        def own_source(self):
            return None

        def present(self, y):
            return y

        def run_arrays(self, x, rng, y=None):
            phases = torch.stack([torch.full_like(x, -1 + 2 * k / 24) for k in range(25)])
            return {"y_hat": phases[-1], "phases": phases}

        def sample(self, x, k, rng=None):
            return x[:, None].expand(-1, k, *x.shape[1:])

    data = [StandardNormal(shape=list(SHAPE)), digits(size=8)]
    write_image_run(ManyPhases(), data, tmp_path)
    names = [p for p in pngs(tmp_path / "plots") if p.startswith("phase_")]
    assert MAX_PHASES_SHOWN == 10 and len(names) == 10
    assert {"phase_1.png", "phase_25.png"} <= set(names)
    import numpy as np

    with np.load(tmp_path / "samples" / "samples.npz") as f:
        assert f["phases"].shape[0] == 10 and f["phase_numbers"][0] == 1 and f["phase_numbers"][-1] == 25


def test_every_png_of_a_run_with_phases_and_draws(tmp_path):
    plot_image_run(fake_arrays(n_phases=2), tmp_path)
    assert len(pngs(tmp_path)) == 2 + 1 + 2 + 1 + 1  # samples, data, transport, 2 phases, overview, draws


def test_bad_phase_and_draw_shapes_are_named(tmp_path):
    arrays = fake_arrays()
    with pytest.raises(ValueError, match="phases"):
        plot_image_run({**arrays, "phases": arrays["phases"][0]}, tmp_path)
    with pytest.raises(ValueError, match="draws"):
        plot_image_draws(arrays["x"], arrays["draws"][:, 0], tmp_path / "d.png")
    with pytest.raises(ValueError, match="n_rows"):
        plot_image_draws(arrays["x"], arrays["draws"], tmp_path / "d.png", n_rows=0)


# ----------------------------------------------------------------------------- a tiny flow on 8×8 digits


@pytest.fixture(scope="module")
def tiny_flow():
    """Noise -> 8×8 digits in 2 phases of a few steps, one thread (a few seconds)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        model = otgen.SJKO(event_shape=SHAPE, h=50.0, n_phases=2, phases={"first_iters": 60},
                           generator={"name": "conv", "width": 8, "noise_dim": 4},
                           potential={"name": "conv", "width": 8, "activation": "leaky_relu"},
                           optim_g={"lr": 1e-3}, optim_v={"lr": 1e-3}, seed=0)
        model.fit(StandardNormal(SHAPE), digits(size=8).images, n_iters=30, batch_size=32, seed=0, progress=False)
    finally:
        torch.set_num_threads(threads)
    return model


def test_run_arrays_give_every_phase_on_the_same_noise(tiny_flow):
    x = torch.randn(50, *SHAPE, generator=torch.Generator().manual_seed(1))
    out = tiny_flow.run_arrays(x, torch.Generator().manual_seed(2))
    phases = out["phases"]
    assert phases.shape == (2, 50, *SHAPE)
    assert torch.equal(out["y_hat"], phases[-1])
    for k in range(2):  # entry k is T_k(x) with the same z as a direct call
        assert torch.allclose(phases[k], tiny_flow.transport(x, phase=k, rng=torch.Generator().manual_seed(2)))
    assert (phases[1] - phases[0]).abs().mean() > 1e-3  # the second phase has its own map


def test_the_last_phase_moved_from_the_noise_towards_the_digits(tiny_flow):
    x = torch.randn(500, *SHAPE, generator=torch.Generator().manual_seed(3))
    last = tiny_flow.run_arrays(x, torch.Generator().manual_seed(4))["phases"][-1]
    data = digits(size=8).images
    # digits are mostly background (mean ≈ −0.39), the noise has mean 0 and std 1
    assert abs(last.mean() - data.mean()) < 0.5 * abs(x.mean() - data.mean())
    assert last.min() >= -1 and last.max() <= 1  # the conv generator's tanh: the data's range


def test_plots_of_the_tiny_flow(tiny_flow, tmp_path):
    x = torch.randn(16, *SHAPE, generator=torch.Generator().manual_seed(5))
    produced = tiny_flow.run_arrays(x, torch.Generator().manual_seed(6))
    draws = tiny_flow.sample(x, n_per_x=3, rng=torch.Generator().manual_seed(7))
    assert draws.shape == (16, 3, *SHAPE)
    plot_image_run({"x": x, "y": digits(size=8).images[:16], **produced, "draws": draws}, tmp_path, name="SJKO")
    assert {"phase_1.png", "phase_2.png", "phases.png", "draws.png"} <= set(pngs(tmp_path))
    assert len(pngs(tmp_path)) == 7


def test_the_cli_run_writes_the_phase_plots(tmp_path):
    cfg = {"model": {"name": "SJKO", "event_shape": list(SHAPE), "h": 50.0, "n_phases": 2,
                     "generator": {"name": "conv", "width": 8}, "potential": {"name": "conv", "width": 8}},
           "data": {"source": {"name": "normal", "shape": list(SHAPE)}, "target": {"name": "digits", "size": 8}},
           "train": {"n_iters": 5, "batch_size": 16, "log_every": 5}, "eval": {"n_samples": 100}}
    path = tmp_path / "sjko.yaml"
    path.write_text(yaml.safe_dump(cfg))
    out = tmp_path / "run"
    assert main(["train", str(path), "--out", str(out), "--threads", "1"]) == 0
    assert {"phase_1.png", "phase_2.png", "phases.png"} <= set(pngs(out / "plots"))
    assert (out / "eval.json").is_file()
