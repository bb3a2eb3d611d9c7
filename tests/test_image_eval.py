"""The image evaluator (otgen's digit classifier, digits-FD, class scores), image grids, and image runs
through the command line (``otgen train`` / ``otgen sample`` on tiny WAE runs)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import yaml

from otgen import metrics
from otgen.cli import main
from otgen.distributions.images import digits
from otgen.image_metrics import ImageEvaluator, digits_evaluator, frechet_distance, to_classifier_input
from otgen.viz import image_tiles, plot_image_grid, plot_image_pairs


@pytest.fixture(scope="module")
def evaluator():
    return digits_evaluator()


# ----------------------------------------------------------------------------- the evaluator


def test_the_shipped_classifier_reads_held_out_digits(evaluator):
    """Held-out accuracy as recorded by benchmarks/train_digits_classifier.py (99.4 %), grey and coloured,
    at 16×16 and 32×32 (the evaluator reduces colour to the channel max and resizes)."""
    for kw in ({}, {"colored": True}, {"size": 32}, {"size": 32, "colored": True}):
        x, y = digits(split="test", return_labels=True, **{"size": 16, **kw})
        assert evaluator.accuracy(x, y) >= 0.98, kw


def test_colour_reduces_to_the_grey_digit():
    grey = digits(split="test", size=16).images[:10]
    colour = digits(split="test", size=16, colored=True).images[:10]
    assert torch.allclose(to_classifier_input(colour), to_classifier_input(grey), atol=1e-6)


def test_frechet_distance_is_the_w2_between_gaussian_fits():
    g = torch.Generator().manual_seed(0)
    a = torch.randn(20000, 3, generator=g, dtype=torch.float64)
    b = torch.randn(20000, 3, generator=g, dtype=torch.float64) * torch.tensor([1.0, 2.0, 0.5]) + 1.0
    ca, cb = np.cov(a.numpy().T), np.cov(b.numpy().T)
    exact = 2 * metrics.bw2(a.mean(0).numpy(), ca, b.mean(0).numpy(), cb)
    assert frechet_distance(a, b) == pytest.approx(exact, rel=1e-9)
    # for these laws the population value is ‖1‖² + (1 − 1)² + (2 − 1)² + (0.5 − 1)² = 4.25
    assert frechet_distance(a, b) == pytest.approx(4.25, rel=0.05)
    assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-6)


def test_pluggable_features_give_a_frechet_distance_in_them():
    flat = ImageEvaluator(features=lambda x: x.flatten(1))
    x, y = digits(size=8).images[:500], digits(size=8, split="test").images
    assert flat.frechet_distance(x, y) == pytest.approx(frechet_distance(x.flatten(1), y.flatten(1)))
    with pytest.raises(ValueError, match="no classifier"):
        flat.coverage(x)
    with pytest.raises(ValueError, match="needs a classifier, a feature network"):
        ImageEvaluator()


def test_class_scores_and_translation_scores(evaluator):
    threes = digits(classes=[3], split="test").images
    assert evaluator.coverage(threes) == 1
    assert evaluator.class_histogram(threes)[3] > 0.98
    everything = digits(split="test").images
    assert evaluator.coverage(everything) == 10
    assert evaluator.confidence(everything) > 0.9
    scores = evaluator.sample_scores(everything, digits(split="train").images)
    assert scores["coverage"] == 10 and len(scores["histogram"]) == 10 and scores["fd"] > 0
    sevens = digits(classes=[7], split="test").images[: len(threes)]
    t = evaluator.translation_scores(threes[: len(sevens)], sevens, target=7)
    assert t["accuracy"] > 0.95
    assert t["content"] == pytest.approx(((threes[: len(sevens)] - sevens) ** 2).flatten(1).sum(1).mean().item())
    assert evaluator.translation_scores(threes, threes, target=[3])["content"] == 0.0
    with pytest.raises(ValueError, match="same shape"):
        evaluator.translation_scores(threes[:3], sevens[:4], target=7)
    with pytest.raises(ValueError, match="C in \\(1, 3\\)"):
        evaluator.predict(torch.zeros(2, 2, 16, 16))


def test_digits_fd_orders_real_noise_and_blur(evaluator):
    """A test the score can fail: the held-out digits are closer to the training digits than blurred
    digits are, and those closer than noise."""
    train, test = digits().images, digits(split="test").images
    blurred = torch.nn.functional.avg_pool2d(test, 5, stride=1, padding=2, count_include_pad=False)
    noise = torch.rand(test.shape, generator=torch.Generator().manual_seed(0)) * 2 - 1
    fd = [evaluator.frechet_distance(x, train) for x in (test, blurred, noise)]
    assert fd[0] < fd[1] < fd[2], fd


# ----------------------------------------------------------------------------- grids


def test_image_tiles_place_each_image():
    x = -torch.ones(3, 1, 4, 4)
    x[1] = 1.0
    canvas = image_tiles(x, nrow=2)
    assert canvas.shape == (2 * 5 + 1, 2 * 5 + 1, 3)
    assert canvas[1:5, 1:5].max() == 0.0 and canvas[1:5, 6:10].min() == 1.0  # black, then white
    assert np.all(canvas[6:10, 6:10] == 0.5)  # the empty fourth place stays background


def test_grids_are_written(tmp_path):
    grey, colour = digits(size=8).images[:12], digits(size=8, colored=True).images[:12]
    assert plot_image_grid(colour, tmp_path / "g.png").stat().st_size > 1000
    assert plot_image_pairs(grey, colour, tmp_path / "p.png").stat().st_size > 1000
    assert plot_image_pairs(grey[:3], torch.stack([colour[:3]] * 4, 1), tmp_path / "k.png").is_file()
    with pytest.raises(ValueError, match="images"):
        plot_image_grid(torch.zeros(2, 8, 8), tmp_path / "bad.png")


# ----------------------------------------------------------------------------- image runs on the CLI


def tiny_config(tmp_path, penalty="mmd"):
    conv8 = {"name": "conv", "width": 8}
    cfg = {"model": {"name": "WAE", "data_shape": [1, 8, 8], "latent_dim": 4, "encoder": conv8, "decoder": conv8,
                     "penalty": {"name": penalty, **({"adversary": {"name": "mlp", "hidden": [16]}}
                                                     if penalty == "gan" else {})}},
           "data": {"data": {"name": "digits", "size": 8}},
           "train": {"n_iters": 20, "batch_size": 32, "log_every": 10}, "eval": {"n_samples": 200}}
    path = tmp_path / f"wae_{penalty}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


@pytest.mark.parametrize("penalty", ["mmd", "gan"])
def test_train_writes_grids_scores_and_samples_of_an_image_run(tmp_path, capsys, penalty):
    run = tmp_path / "run"
    assert main(["train", str(tiny_config(tmp_path, penalty)), "--out", str(run)]) == 0
    for name in ("samples", "data", "reconstructions"):
        assert (run / "plots" / f"{name}.png").stat().st_size > 1000
    scores = json.loads((run / "eval.json").read_text())
    assert scores["n_samples"] == 200 and 1 <= scores["samples_coverage"] <= 10
    assert scores["samples_fd"] > scores["fd_floor_test_vs_train"] > 0  # 20 steps: far from real digits
    arrays = np.load(run / "samples" / "samples.npz")
    assert arrays["x"].shape == (100, 4) and arrays["y_hat"].shape == arrays["y_rec"].shape == (100, 1, 8, 8)
    assert np.abs(arrays["y_hat"]).max() <= 1.0
    assert "digits-FD (otgen classifier features)" in capsys.readouterr().out


def test_sample_gives_prior_draws_and_decoded_images(tmp_path):
    run = tmp_path / "run"
    main(["train", str(tiny_config(tmp_path)), "--out", str(run)])
    out, grid = tmp_path / "s.npz", tmp_path / "s.png"
    assert main(["sample", str(run), "--n", "16", "--out", str(out), "--grid", str(grid)]) == 0
    arrays = np.load(out)
    assert arrays["x"].shape == (16, 4) and arrays["y"].shape == (16, 1, 8, 8)
    assert np.abs(arrays["y"]).max() <= 1.0 and grid.stat().st_size > 1000
    again = tmp_path / "again.npz"
    main(["sample", str(run), "--n", "16", "--out", str(again)])
    assert np.array_equal(np.load(again)["y"], arrays["y"])  # same seed, same draws
    assert main(["sample", str(run), "--n", "4", "--n-per-x", "2", "--out", str(out)]) == 2
    assert main(["sample", str(run), "--n", "4", "--out", str(tmp_path / "s.txt")]) == 2


def test_a_config_with_a_wrong_image_shape_fails_before_training(tmp_path, capsys):
    cfg = yaml.safe_load(tiny_config(tmp_path).read_text())
    cfg["data"]["data"]["size"] = 16
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(cfg))
    assert main(["train", str(path), "--out", str(tmp_path / "bad")]) == 2
    assert "data samples have shape (1, 16, 16) but the model expects data_shape (1, 8, 8)" in capsys.readouterr().err
    assert not (tmp_path / "bad" / "checkpoints").exists()


def test_an_image_to_image_run_draws_sources_beside_their_outputs(tmp_path):
    cfg = {"model": {"name": "UOTM", "event_shape": [1, 8, 8], "noise_dim": 2,
                     "generator": {"name": "conv", "width": 8}, "potential": {"name": "conv", "width": 8}},
           "data": {"source": {"name": "digits", "size": 8, "classes": [0]},
                    "target": {"name": "digits", "size": 8, "classes": [1], "colored": False}},
           "train": {"n_iters": 4, "batch_size": 8}, "eval": {"n_samples": 50}}
    path = tmp_path / "uotm.yaml"
    path.write_text(yaml.safe_dump(cfg))
    run = tmp_path / "run"
    assert main(["train", str(path), "--out", str(run)]) == 0
    assert (run / "plots" / "transport.png").stat().st_size > 1000
    assert not (run / "plots" / "reconstructions.png").exists()
    arrays = np.load(run / "samples" / "samples.npz")
    assert arrays["x"].shape == arrays["y_hat"].shape == (100, 1, 8, 8)
    assert "heldout_reconstruction" not in json.loads((run / "eval.json").read_text())
    out, grid = tmp_path / "s.npz", tmp_path / "s.png"
    assert main(["sample", str(run), "--n", "6", "--n-per-x", "3", "--out", str(out), "--grid", str(grid)]) == 0
    assert np.load(out)["y"].shape == (6, 3, 1, 8, 8) and grid.is_file()
