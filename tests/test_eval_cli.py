"""``otgen eval`` and the eval.json of image runs: one code path (``image_runs.score_image_run``), the
same numbers for the same seed, any feature space, a reference statistics file, and clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

from otgen.cli import main
from otgen.evaluate.images import feature_network, image_stats
from otgen.evaluate.inception import FIDInceptionV3
from otgen.evaluate.stats import save_stats

ROOT = Path(__file__).resolve().parent.parent
DIGITS_UOTM = str(ROOT / "configs" / "digits_uotm.yaml")
SHORT = ["--set", "train.n_iters=4", "--set", "eval.n_samples=64", "--threads", "1"]


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "uotm"
    assert main(["train", DIGITS_UOTM, "--out", str(out), *SHORT]) == 0
    return out


def _close(a: dict, b: dict, keys=("fd", "kid", "kid_std", "precision", "recall", "samples_fd")):
    for k in keys:
        assert a[k] == pytest.approx(b[k], rel=1e-9, abs=1e-9), k


def test_a_digits_run_writes_every_score_and_eval_repeats_them(digits_run, tmp_path, capsys):
    scores = json.loads((digits_run / "eval.json").read_text())
    assert scores["features"] == "digits" and scores["n"] == 64 and scores["n_reference"] == 359
    assert {"fd", "kid", "kid_stderr", "precision", "recall", "samples_fd", "fd_floor_test_vs_train"} <= set(scores)
    assert scores["fd"] == scores["samples_fd"] and 0 <= scores["precision"] <= 1
    assert (digits_run / "eval_reference_digits.npz").is_file()  # the held-out digits' statistics, cached
    again = tmp_path / "again.json"
    assert main(["eval", str(digits_run), "--json", str(again)]) == 0
    _close(json.loads(again.read_text()), scores)  # the same code and seed: the same numbers
    other = tmp_path / "other.json"
    assert main(["eval", str(digits_run), "--seed", "3", "--json", str(other)]) == 0
    assert json.loads(other.read_text())["fd"] != scores["fd"]
    out = capsys.readouterr().out
    assert "digits-FD (otgen classifier features) of 64 samples" in out and "KID" in out


def test_batches_do_not_change_the_scores_of_a_deterministic_sampler(digits_run, tmp_path):
    # UOTM draws its noise batch by batch in the order of one call: the same samples in any batch size
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    assert main(["eval", str(digits_run), "--n", "40", "--batch-size", "16", "--json", str(a)]) == 0
    assert main(["eval", str(digits_run), "--n", "40", "--batch-size", "40", "--json", str(b)]) == 0
    sa, sb = json.loads(a.read_text()), json.loads(b.read_text())
    assert sa["fd"] == pytest.approx(sb["fd"], rel=1e-6)


def test_a_statistics_file_is_the_reference(digits_run, tmp_path):
    from otgen.distributions import digits

    net = feature_network("digits")
    ref = image_stats(net, digits(split="test").images)
    stats = save_stats(tmp_path / "ref.npz", ref.mu, ref.sigma)  # pytorch-fid's format: mu, sigma only
    out = tmp_path / "s.json"
    assert main(["eval", str(digits_run), "--ref", str(stats), "--features", "digits", "--json", str(out)]) == 0
    scores = json.loads(out.read_text())
    mine = json.loads((digits_run / "eval.json").read_text())
    assert scores["fd"] == pytest.approx(mine["fd"], rel=1e-6)  # the same reference, as statistics
    assert scores["kid"] is None and scores["reference_features"] is False


@pytest.mark.parametrize("args, message", [
    (["--n", "0"], "--n must be >= 2"),
    (["--batch-size", "0"], "--batch-size must be >= 1"),
    (["--ref", "{bad}"], "bad.npz"),
    (["--features", "inception"], "no InceptionV3 FID weights found"),
])
def test_bad_eval_arguments_are_clear_errors(digits_run, tmp_path, capsys, monkeypatch, args, message):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty_hub"))
    monkeypatch.delenv("OTGEN_INCEPTION_WEIGHTS", raising=False)
    bad = tmp_path / "bad.npz"
    np.savez(bad, images=np.zeros((3, 4)))
    args = [a.replace("{bad}", str(bad)) for a in args]
    assert main(["eval", str(digits_run), *args]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_eval_of_a_run_that_is_not_on_images_says_so(tmp_path, capsys):
    out = tmp_path / "gauss"
    assert main(["train", str(ROOT / "configs" / "gauss_egnot.yaml"), "--out", str(out), "--set", "train.n_iters=2",
                 "--set", "model.hidden=[8]", "--set", "eval.n_conditions=3", "--set", "eval.n_per_condition=10",
                 "--set", "eval.n_samples=50", "--threads", "1"]) == 0
    capsys.readouterr()
    assert main(["eval", str(out)]) == 2
    assert "not a run on images" in capsys.readouterr().err


def _train_tiny_uotm(tmp_path, target: dict, side: int, n_samples: int, workers: int) -> Path:
    """A 2-step UOTM run (conv networks of width 8) from noise to ``target`` images of side ``side``."""
    cfg = {"model": {"name": "UOTM", "event_shape": [3, side, side], "generator": {"name": "conv", "width": 8},
                     "potential": {"name": "conv", "width": 8}},
           "data": {"source": {"name": "normal", "shape": [3, side, side]}, "target": target},
           "train": {"n_iters": 2, "batch_size": 4, "num_workers": workers},
           "eval": {"n_samples": n_samples, "features": "digits"}}
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(cfg))
    run = tmp_path / "run"
    assert main(["train", str(path), "--out", str(run), "--threads", "1"]) == 0
    return run


def test_a_run_on_a_folder_is_scored_against_its_images_in_inception_features(tmp_path, monkeypatch):
    folder = tmp_path / "photos"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(12):
        Image.fromarray(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)).save(folder / f"{i}.jpg")
    run = _train_tiny_uotm(tmp_path, {"name": "image_folder", "path": str(folder), "flip": True}, 16, 6, workers=1)
    scores = json.loads((run / "eval.json").read_text())
    assert scores["features"] == "digits" and scores["n"] == 6 and scores["n_reference"] == 12
    assert scores["reference"].startswith("the target data (12 images)")
    # standard FID features: random weights stand in for pytorch-fid's file (nothing downloads in tests)
    torch.manual_seed(0)
    weights = tmp_path / "pt_inception.pth"
    torch.save(FIDInceptionV3().state_dict(), weights)
    monkeypatch.setenv("OTGEN_INCEPTION_WEIGHTS", str(weights))
    out = tmp_path / "inception.json"
    assert main(["eval", str(run), "--features", "inception", "--n", "4", "--json", str(out)]) == 0
    scores = json.loads(out.read_text())
    assert scores["features"] == "inception" and scores["n"] == 4 and scores["kid"] is not None
    reference = np.load(run / "eval_reference_inception.npz")
    assert reference["mu"].shape == (2048,) and reference["sigma"].shape == (2048, 2048)
    assert reference["features"].shape == (12, 2048)
    from otgen.distributions import image_folder
    from otgen.evaluate.inception import load_inception

    direct = load_inception(weights)(image_folder(folder).images).double()  # the 12 target images, at once
    assert np.allclose(reference["mu"], direct.mean(0).numpy(), rtol=1e-4, atol=1e-5)
    assert np.allclose(reference["sigma"], np.cov(direct.numpy().T), rtol=1e-3, atol=1e-5)


def test_a_cifar10_run_is_scored_against_the_test_batch(tmp_path):
    import pickle

    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for name, n in [(f"data_batch_{i}", 4) for i in range(1, 6)] + [("test_batch", 7)]:
        with open(folder / name, "wb") as f:
            pickle.dump({b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
                         b"labels": [int(v) for v in rng.integers(0, 10, n)]}, f)
    run = _train_tiny_uotm(tmp_path, {"name": "cifar10", "path": str(folder), "flip": True}, 32, 5, workers=0)
    scores = json.loads((run / "eval.json").read_text())
    assert scores["n_reference"] == 7 and scores["reference"].startswith("cifar10 test split")
