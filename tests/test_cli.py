"""The command line, end to end on tiny settings."""

import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from otgen import config as cfgmod
from otgen.cli import main
from otgen.models import get_solver

ROOT = Path(__file__).resolve().parent.parent
GAUSS = str(ROOT / "configs" / "gauss_egnot.yaml")

TINY = ["--set", "train.n_iters=6", "--set", "model.potential.hidden=[16, 16]", "--set", "model.sampler.steps=3",
        "--set", "model.sampler.sample_steps=5"]


def test_train_then_sample(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", GAUSS, "--out", str(out), *TINY,
                 "--set", "eval.n_conditions=5", "--set", "eval.n_per_condition=20", "--set", "eval.n_samples=100"]) == 0
    text = capsys.readouterr().out
    assert "cBW2-UVP" in text and "conditional_mean" in text
    saved = yaml.safe_load((out / "config.yaml").read_text())
    assert saved["train"]["n_iters"] == 6 and saved["model"]["potential"]["hidden"] == [16, 16]
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert records[-1]["step"] == 6
    assert set(json.loads((out / "eval.json").read_text())) >= {"cbw2_uvp", "bw2_uvp"}

    npz = tmp_path / "s.npz"
    assert main(["sample", str(out), "--n", "7", "--out", str(npz)]) == 0
    arrays = np.load(npz)
    assert arrays["x"].shape == (7, 2) and arrays["y"].shape == (7, 2)
    assert np.isfinite(arrays["y"]).all()

    # a resumed run keeps its model
    assert main(["train", GAUSS, "--out", str(out), "--resume", "--set", "model.optim.lr=0.1"]) == 2
    assert "a resumed run keeps its model" in capsys.readouterr().err
    # resume to more steps continues the same run
    assert main(["train", GAUSS, "--out", str(out), "--resume",
                 "--set", "train.n_iters=8", "--set", "eval.n_conditions=5", "--set", "eval.n_per_condition=20",
                 "--set", "eval.n_samples=100"]) == 0
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert records[-1]["step"] == 8
    # without --resume the run is not touched
    assert main(["train", GAUSS, "--out", str(out), *TINY]) == 2
    assert "already holds a run" in capsys.readouterr().err

    # an existing file named by --out, --grid or --json is refused (exit 2) and left as it was
    before = npz.read_bytes()
    assert main(["sample", str(out), "--n", "3", "--seed", "5", "--out", str(npz)]) == 2
    assert f"--out {npz}: exists; pass --overwrite" in capsys.readouterr().err
    assert npz.read_bytes() == before
    assert main(["sample", str(out), "--n", "3", "--seed", "5", "--out", str(npz), "--overwrite"]) == 0
    assert np.load(npz)["y"].shape == (3, 2)


@pytest.mark.parametrize("command", ["demo", "train", "bench"])
@pytest.mark.parametrize("value", ["0", "-2", "two", "1.5"])
def test_threads_checked_before_any_work(command, value, tmp_path, capsys):
    """--threads 0 (or any value that is not a whole number >= 1) stops argparse with exit 2 and a
    line naming the flag and the value, not torch's RuntimeError after the run has started."""
    args = {"demo": ["demo", "--out", str(tmp_path / "run")], "train": ["train", GAUSS, "--out", str(tmp_path / "run")],
            "bench": ["bench", "eot-gaussian", "--quick"]}[command]
    with pytest.raises(SystemExit) as stop:
        main([*args, "--threads", value])
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert f"argument --threads: must be a whole number of torch threads >= 1, got '{value}'" in err
    assert not (tmp_path / "run").exists()


def test_named_files_are_not_overwritten(tmp_path, capsys):
    """otgen eval --json and otgen bench --json refuse an existing file without --overwrite, before
    any work (the file keeps its bytes)."""
    kept = tmp_path / "scores.json"
    kept.write_text("mine\n")
    assert main(["bench", "eot-gaussian", "--quick", "--solver", "none", "--json", str(kept)]) == 2
    assert f"--json {kept}: exists; pass --overwrite" in capsys.readouterr().err
    (tmp_path / "config.yaml").write_text("{}\n")  # checked before the run's model is looked for
    assert main(["eval", str(tmp_path), "--json", str(kept)]) == 2
    assert f"--json {kept}: exists; pass --overwrite" in capsys.readouterr().err
    assert kept.read_text() == "mine\n"


@pytest.mark.parametrize("override, message", [
    ("model.colour=red", "unknown key model.colour"),
    ("train.n_iter=5", "unknown key train.n_iter"),
    ("train.n_iters=ten", "train.n_iters must be an int"),
    ("model.optim.lr=fast", "model.optim.lr must be of type"),
    ("model.eps=0.5", "model.eps = 0.5 disagrees with data.pair.eps"),
    ("train.n_iters=0", "n_iters must be an int >= 1"),
    ("data.pair.eps=-1", "data.pair: eps"),
    ("model.potential.hidden=[2.7, true]", "model.potential.hidden must be a list of int"),
    ("model.optim.betas=0.5", "model.optim.betas must be a list of float"),
    ("model.sampler.chains.pool_size=0", "model.sampler.chains.pool_size must be an int >= 1"),
    ("data.pair=3", "data.pair must be a mapping"),
    ("extra.key=1", "unknown config section"),
])
def test_bad_config_values_are_named_before_training(tmp_path, capsys, override, message):
    code = main(["train", GAUSS, "--out", str(tmp_path / "r"), "--set", override])
    assert code == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "r" / "checkpoints").exists()


def test_every_shipped_config_validates(tmp_path):
    """Every config builds its data and model; a config whose cost runs through another run's generator
    names a shipped config for it, which is trained for 2 steps here to stand in for the real run."""
    paths = sorted((ROOT / "configs").glob("*.yaml"))
    assert len(paths) >= 2
    for path in paths:
        cfg = cfgmod.validate(cfgmod.load_yaml(path))
        sides = get_solver(cfg["model"]["name"]).data_sides
        *samplers, pair = cfgmod.build_data(cfg["data"], sides)
        assert len(samplers) == len(sides)
        cost = cfg["model"].get("cost")
        if isinstance(cost, dict) and cost.get("name") == "generator":
            generator_config = ROOT / cost["config"]
            assert generator_config.is_file(), cost
            cost["run"] = str(tmp_path / path.stem)
            assert main(["train", str(generator_config), "--out", cost["run"], "--set", "train.n_iters=2",
                         "--set", "eval.n_samples=50", "--threads", "1"]) == 0
        cfgmod.build_model(cfg["model"], pair)


def test_demo_runs_end_to_end_on_tiny_settings(tmp_path, capsys):
    code = main(["demo", "--out", str(tmp_path), *TINY, "--set", "eval.n_samples=300"])
    assert code == 0
    text = capsys.readouterr().out
    assert "learned plan (EgNOT)" in text and "POT entropic plan" in text and "BW2-UVP" in text
    assert (tmp_path / "plots" / "plan.png").stat().st_size > 10_000


def test_train_and_sample_uotm_config(tmp_path):
    out = tmp_path / "uotm"
    cfg = str(ROOT / "configs" / "uotm_outliers.yaml")
    assert main(["train", cfg, "--out", str(out), "--set", "train.n_iters=10", "--set", "model.hidden=[8]"]) == 0
    npz = tmp_path / "u.npz"
    assert main(["sample", str(out), "--n", "4", "--n-per-x", "3", "--out", str(npz)]) == 0
    assert np.load(npz)["y"].shape == (4, 3, 1)


NEW_TOY_CONFIGS = ["uotm_mixture_1d", "sjko_25gaussians", "sjko_two_circles", "sjko_8gaussians",
                   "sjko_moons_to_spiral"]


@pytest.mark.parametrize("name", NEW_TOY_CONFIGS)
def test_toy_config_parses_and_builds(name):
    cfg = cfgmod.validate(cfgmod.load_yaml(ROOT / "configs" / f"{name}.yaml"))
    source, target, pair = cfgmod.build_data(cfg["data"])
    model = cfgmod.build_model(cfg["model"], pair)
    assert pair is None and type(model).__name__ == cfg["model"]["name"]
    x, y = source(8), target(8)
    assert x.shape == y.shape == (8, model.dim)
    assert model.transport(x).shape == (8, model.dim)


def test_train_sjko_config_writes_phase_plot_and_samples(tmp_path, capsys):
    out = tmp_path / "sjko"
    cfg = str(ROOT / "configs" / "sjko_25gaussians.yaml")
    assert main(["train", cfg, "--out", str(out), "--threads", "1", "--set", "train.n_iters=3",
                 "--set", "model.n_phases=2", "--set", "model.hidden=[8]", "--set", "train.batch_size=25"]) == 0
    assert f"plot: {out / 'plots' / 'phases.png'}" in capsys.readouterr().out
    assert (out / "plots" / "phases.png").stat().st_size > 5_000
    arrays = np.load(out / "samples" / "samples.npz")
    assert arrays["x"].shape == arrays["y_hat"].shape == (3000, 2) and arrays["phases"].shape == (2, 3000, 2)
    assert not np.array_equal(arrays["phases"][0], arrays["phases"][1])  # one panel per map T_0, T_1
    assert np.isfinite(arrays["y_hat"]).all()


def test_train_uotm_1d_config_writes_plot_and_samples(tmp_path, capsys):
    out = tmp_path / "uotm1d"
    cfg = str(ROOT / "configs" / "uotm_mixture_1d.yaml")
    args = ["train", cfg, "--out", str(out), "--threads", "1", "--set", "train.n_iters=5", "--set", "model.hidden=[8]"]
    assert main(args) == 0
    assert f"plot: {out / 'plots' / 'transport_1d.png'}" in capsys.readouterr().out
    assert (out / "plots" / "transport_1d.png").stat().st_size > 5_000
    first = np.load(out / "samples" / "samples.npz")
    assert first["x"].shape == first["y_hat"].shape == (3000, 1)
    # the plotting samples come from fixed seeds: a second identical run writes the same arrays
    out2 = tmp_path / "again"
    assert main([*args[:3], str(out2), *args[4:]]) == 0
    second = np.load(out2 / "samples" / "samples.npz")
    for key in ("x", "y", "y_hat"):
        np.testing.assert_array_equal(first[key], second[key])
