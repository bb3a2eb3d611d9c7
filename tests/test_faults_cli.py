"""Faults a user meets on the command line, and what otgen does about them (issue 12): errors that
name the file, argument or value in one line with exit code 2 and no traceback; a resume that cannot
lose anything; files that are refused without running code, and run files written atomically with
the user's umask. Everything runs on tiny settings, in-process (one subprocess: a kill mid-write)."""

import errno
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

import otgen
from otgen import config as cfgmod
from otgen import io
from otgen.cli import main

ROOT = Path(__file__).resolve().parent.parent
GAUSS = str(ROOT / "configs" / "gauss_egnot.yaml")
UOTM1D = str(ROOT / "configs" / "uotm_outliers.yaml")
TINY = ["--threads", "1", "--set", "train.n_iters=3", "--set", "train.batch_size=16", "--set", "train.checkpoint_every=2",
        "--set", "model.potential.hidden=[8]", "--set", "model.sampler.steps=2", "--set", "model.sampler.sample_steps=2",
        "--set", "model.sampler.chains.pool_size=32", "--set", "eval.n_conditions=2", "--set", "eval.n_per_condition=10",
        "--set", "eval.n_samples=50"]
TINY_EVAL = TINY[-6:]  # the eval settings, which a resumed run may change
NO_CUDA = pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
CUDA_MESSAGE = (f"--device cuda: CUDA is not available on this machine (torch {torch.__version__} built without CUDA "
                "or no GPU visible); use --device cpu or auto")


def snapshot(root: Path) -> dict:
    """Every file and folder under ``root``: path -> (bytes, mtime) for files, None for folders."""
    if not root.exists():
        return {}
    return {p.relative_to(root): ((p.read_bytes(), p.stat().st_mtime_ns) if p.is_file() else None)
            for p in sorted(root.rglob("*"))}


def error(capsys) -> str:
    """The one line a failed command printed on stderr (asserting it is one line, without traceback)."""
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert "Traceback" not in err and "weights_only" not in err
    return err


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A finished tiny EgNOT run on the 2-D Gaussian pair: 3 steps, checkpoint at step 3."""
    out = tmp_path_factory.mktemp("trained") / "run"
    assert main(["train", GAUSS, "--out", str(out), *TINY]) == 0
    return out


@pytest.fixture
def run(trained, tmp_path):
    """A copy of the trained run to damage."""
    return Path(shutil.copytree(trained, tmp_path / "run"))


# ----------------------------------------------------------------------------- 1. resume safety
def test_resume_without_a_checkpoint_is_refused_and_creates_nothing(tmp_path, capsys):
    typo = tmp_path / "rnu"
    assert main(["train", GAUSS, "--out", str(typo), "--resume", *TINY]) == 2
    err = error(capsys)
    assert f"there is no checkpoint in {typo}" in err and "drop --resume to start a fresh run" in err
    assert not typo.exists() and list(tmp_path.iterdir()) == []


def test_resume_of_a_directory_holding_only_a_config_is_refused_untouched(tmp_path, capsys):
    out = tmp_path / "half"
    out.mkdir()
    (out / "config.yaml").write_text("model: {name: EgNOT}\n")
    (out / "checkpoints").mkdir()  # a first checkpoint never finished
    before = snapshot(out)
    assert main(["train", GAUSS, "--out", str(out), "--resume", *TINY]) == 2
    assert "there is no checkpoint in" in error(capsys) and snapshot(out) == before
    # and without --resume a fresh run starts there (nothing in it can be continued)
    assert main(["train", GAUSS, "--out", str(out), *TINY]) == 0
    assert (out / "checkpoints" / "last.pt").is_file()


def test_resume_below_the_checkpoint_step_is_refused_before_anything_is_written(run, capsys):
    before = snapshot(run)
    assert main(["train", GAUSS, "--out", str(run), "--resume", "--set", "train.n_iters=2"]) == 2
    err = error(capsys)
    assert "train.n_iters = 2 is below the step 3 of the checkpoint" in err and str(run / "checkpoints" / "last.pt") in err
    assert snapshot(run) == before  # config.yaml, metrics, checkpoint, model: all as they were
    assert yaml.safe_load((run / "config.yaml").read_text())["train"]["n_iters"] == 3


def test_resume_with_a_bad_config_value_leaves_the_run_untouched(run, capsys):
    before = snapshot(run)
    assert main(["train", GAUSS, "--out", str(run), "--resume", "--set", "train.batch_size=0"]) == 2
    assert "train.batch_size must be an int >= 1, got 0" in error(capsys)
    assert snapshot(run) == before


def test_resume_with_a_malformed_saved_config_names_its_line(run, capsys):
    (run / "config.yaml").write_text("model:\n  name: EgNOT\n  hidden: [8\ntrain: {n_iters: 3}\n")
    before = snapshot(run)
    assert main(["train", GAUSS, "--out", str(run), "--resume"]) == 2
    err = error(capsys)
    assert f"{run / 'config.yaml'}, line 4, column 6: invalid YAML" in err
    assert snapshot(run) == before


def test_resume_of_a_checkpoint_of_another_model_is_refused(run, tmp_path, capsys):
    other = tmp_path / "uotm"
    assert main(["train", UOTM1D, "--out", str(other), "--threads", "1", "--set", "train.n_iters=2",
                 "--set", "model.hidden=[8]", "--set", "train.batch_size=16"]) == 0
    shutil.copy(other / "checkpoints" / "last.pt", run / "checkpoints" / "last.pt")
    before = snapshot(run)
    assert main(["train", GAUSS, "--out", str(run), "--resume", "--set", "train.n_iters=4"]) == 2
    err = error(capsys)
    assert f"{run / 'checkpoints' / 'last.pt'} does not fit the EgNOT of {run / 'config.yaml'}" in err
    assert "UOTM" in err and snapshot(run) == before


def test_a_resumed_run_says_what_it_resumed_and_continues(run, capsys):
    assert main(["train", GAUSS, "--out", str(run), "--resume", "--set", "train.n_iters=5", *TINY_EVAL]) == 0
    assert f"resuming {run / 'checkpoints' / 'last.pt'} at step 3 of 5" in capsys.readouterr().out
    assert otgen.load(run / "checkpoints" / "last.pt").step == 5
    assert yaml.safe_load((run / "config.yaml").read_text())["train"]["n_iters"] == 5


def test_checks_of_the_training_loop_come_before_the_run_directory_is_written(tmp_path, capsys):
    out = tmp_path / "r"  # a 2-D model on the 1-D data of the config: refused by the loop's data check
    assert main(["train", UOTM1D, "--out", str(out), "--threads", "1", "--set", "model.dim=2",
                 "--set", "train.n_iters=2", "--set", "model.hidden=[8]"]) == 2
    assert "shape" in error(capsys)
    assert not out.exists()


# ----------------------------------------------------------------------------- 2. one-line errors
def test_malformed_yaml_in_a_config_file_names_the_file_and_line(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("model:\n  name: EgNOT\n\thidden: [8]\n")
    assert main(["train", str(bad), "--out", str(tmp_path / "r")]) == 2
    assert f"{bad}, line 3, column 1: invalid YAML: found character '\\t'" in error(capsys)
    assert not (tmp_path / "r").exists()


def test_malformed_yaml_in_a_set_value_names_the_key(tmp_path, capsys):
    assert main(["train", GAUSS, "--out", str(tmp_path / "r"), "--set", "model.hidden=[8, 8"]) == 2
    assert "--set model.hidden: the value '[8, 8' is not valid YAML" in error(capsys)
    assert not (tmp_path / "r").exists()


def test_an_out_that_is_a_file_is_named(trained, tmp_path, capsys):
    out = tmp_path / "notes.txt"
    out.write_text("keep me\n")
    assert main(["train", GAUSS, "--out", str(out), *TINY]) == 2
    assert f"--out {out}: exists and is not a directory" in error(capsys)
    assert main(["sample", str(trained), "--n", "2", "--out", str(out / "s.npz")]) == 2
    assert f"--out {out / 's.npz'}: {out} is a file, not a directory" in error(capsys)
    assert out.read_text() == "keep me\n" and sorted(tmp_path.iterdir()) == [out]


def test_an_out_directory_that_is_not_writable_is_named(tmp_path, monkeypatch, capsys):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    if os.geteuid() == 0:  # root writes into read-only directories: let the permission check see it as others do
        real_access = os.access
        monkeypatch.setattr(otgen.cli.os, "access", lambda p, mode: Path(p) != locked and real_access(p, mode))
    try:
        assert main(["train", GAUSS, "--out", str(locked / "run"), *TINY]) == 2
        assert f"--out {locked / 'run'}: {locked} is not writable" in error(capsys)
        assert list(locked.iterdir()) == []
    finally:
        locked.chmod(0o700)


def test_permission_denied_while_writing_names_the_file(tmp_path, monkeypatch, capsys):
    """Root passes the early check; a PermissionError from the file system then reads as one line."""
    def denied(*args, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied", kwargs.get("dir"))

    monkeypatch.setattr(io.tempfile, "mkstemp", denied)
    out = tmp_path / "r"
    assert main(["train", GAUSS, "--out", str(out), *TINY]) == 2
    assert error(capsys) == f"otgen train: error: {out / 'config.yaml'}: Permission denied"
    assert not (out / "config.yaml").exists() and not (out / "checkpoints").exists()


def test_a_full_disk_names_the_file_and_leaves_nothing_half_written(trained, tmp_path, monkeypatch, capsys):
    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(io.os, "fsync", full)
    npz = tmp_path / "s.npz"
    assert main(["sample", str(trained), "--n", "3", "--out", str(npz)]) == 2
    assert error(capsys) == f"otgen sample: error: {npz}: No space left on device"
    assert list(tmp_path.iterdir()) == []  # neither the file nor its temporary


def test_a_full_disk_while_checkpointing_keeps_the_previous_checkpoint(run, monkeypatch, capsys):
    """A write that fails in the middle (here at the rename) leaves the last good checkpoint in place,
    loadable by otgen.load and otgen sample, and the run resumes from it."""
    last = run / "checkpoints" / "last.pt"
    good = last.read_bytes()
    real_replace = os.replace

    def crash(src, dst):
        if Path(dst).name == "last.pt":
            raise OSError(errno.ENOSPC, "No space left on device")
        real_replace(src, dst)

    monkeypatch.setattr(io.os, "replace", crash)
    assert main(["train", GAUSS, "--out", str(run), "--resume", "--set", "train.n_iters=5", *TINY_EVAL]) == 2
    assert error(capsys) == f"otgen train: error: {last}: No space left on device"
    assert last.read_bytes() == good and sorted(p.name for p in last.parent.iterdir()) == ["last.pt"]
    monkeypatch.undo()
    assert otgen.load(last).step == 3
    assert main(["sample", str(run), "--n", "2", "--out", str(run / "s.npz")]) == 0
    assert main(["train", GAUSS, "--out", str(run), "--resume", "--set", "train.n_iters=5", *TINY_EVAL]) == 0
    assert otgen.load(last).step == 5


def test_a_process_killed_between_write_and_rename_leaves_a_loadable_checkpoint(run, capsys):
    last = run / "checkpoints" / "last.pt"
    good = last.read_bytes()
    script = ("import os, sys\n"
              "real = os.replace\n"
              "def die(src, dst):\n"
              "    if os.path.basename(dst) == 'last.pt':\n"
              "        os._exit(9)  # as a kill -9 after the temporary file is complete\n"
              "    real(src, dst)\n"
              "os.replace = die\n"
              "from otgen.cli import main\n"
              "sys.exit(main(sys.argv[1:]))\n")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-c", script, "train", GAUSS, "--out", str(run), "--resume",
                           "--set", "train.n_iters=5", *TINY_EVAL], env=env, capture_output=True, timeout=120)
    assert done.returncode == 9
    assert last.read_bytes() == good  # the temporary file is left, the checkpoint is not touched
    assert any(p.name.endswith(".tmp") for p in last.parent.iterdir())
    assert otgen.load(last).step == 3
    assert main(["train", GAUSS, "--out", str(run), "--resume", "--set", "train.n_iters=5", *TINY_EVAL]) == 0
    assert otgen.load(last).step == 5


def test_run_files_get_the_permissions_of_the_umask(tmp_path):
    old = os.umask(0o022)
    try:
        assert main(["train", GAUSS, "--out", str(tmp_path / "r"), *TINY]) == 0
        for name in ("config.yaml", "checkpoints/last.pt", "model.pt", "metrics.jsonl", "samples/samples.npz"):
            assert (tmp_path / "r" / name).stat().st_mode & 0o777 == 0o644, name
        os.umask(0o077)
        assert (io.write_text(tmp_path / "private.txt", "x").stat().st_mode & 0o777) == 0o600
    finally:
        os.umask(old)


# ----------------------------------------------------------------------------- 3. files
class RunsCode:
    """A pickle that runs code when it is unpickled (what weights_only refuses)."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def real_checkpoint(trained: Path) -> bytes:
    return (trained / "checkpoints" / "last.pt").read_bytes()


def make_bad(kind: str, path: Path, trained: Path) -> None:
    """Write a file of ``kind`` that is no loadable otgen model to ``path``."""
    good = real_checkpoint(trained)
    if kind == "random_bytes":
        path.write_bytes(np.random.default_rng(0).bytes(4096))
    elif kind == "text":
        path.write_text("model: EgNOT\nthis is not a checkpoint\n")
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "tensor":
        torch.save(torch.ones(3), path)
    elif kind == "plain_dict":
        torch.save({"weights": torch.ones(3), "step": 3}, path)
    elif kind == "truncated":
        path.write_bytes(good[: len(good) // 2])
    elif kind == "byte_flipped":
        flipped = bytearray(good)
        flipped[len(flipped) // 2] ^= 0xFF
        path.write_bytes(bytes(flipped))
    elif kind == "runs_code":
        torch.save({"model": RunsCode(path.parent / "MARKER"), "loop": {"step": 1}}, path)
    else:
        raise AssertionError(kind)


BAD_FILES = {
    "random_bytes": "is not a readable otgen file (truncated or corrupt: not a torch file)",
    "text": "is not a readable otgen file (truncated or corrupt: not a torch file; it holds text)",
    "empty": "is not a readable otgen file (truncated or corrupt: the file is empty)",
    "tensor": "it holds a Tensor of shape (3,)",
    "plain_dict": "it holds a dict with keys ['step', 'weights']",
    "truncated": "is not a readable otgen file (truncated or corrupt: ",
    "byte_flipped": "is not a readable otgen file (truncated or corrupt: checksum mismatch in",
    "runs_code": "holds objects otgen does not load (it loads only tensors and plain data, so no code in the file runs)",
}


@pytest.mark.parametrize("kind", sorted(BAD_FILES))
def test_otgen_load_refuses_bad_files_by_name(kind, trained, tmp_path):
    path = tmp_path / "m.pt"
    make_bad(kind, path, trained)
    with pytest.raises(ValueError) as info:
        otgen.load(path)
    message = str(info.value)
    assert message.startswith(str(path)) and BAD_FILES[kind] in message
    assert "weights_only" not in message and "\n" not in message
    assert not (tmp_path / "MARKER").exists()
    if kind in ("tensor", "plain_dict"):
        assert "is not an otgen model file" in message


@pytest.mark.parametrize("kind", sorted(BAD_FILES))
def test_otgen_sample_refuses_bad_model_files_by_name(kind, run, tmp_path, capsys):
    make_bad(kind, run / "model.pt", run)
    npz = tmp_path / "s.npz"
    assert main(["sample", str(run), "--n", "2", "--out", str(npz)]) == 2
    err = error(capsys)
    assert f"otgen sample: error: {run / 'model.pt'}" in err and BAD_FILES[kind] in err
    assert not (run / "MARKER").exists() and not npz.exists()


RESUME_MESSAGES = {**BAD_FILES, "tensor": "is not an otgen run checkpoint (model and loop state): it holds a Tensor",
                   "plain_dict": "is not an otgen run checkpoint (model and loop state): it holds a dict with keys "
                                 "['step', 'weights']"}


@pytest.mark.parametrize("kind", sorted(BAD_FILES))
def test_otgen_train_resume_refuses_bad_checkpoints_by_name(kind, run, capsys):
    last = run / "checkpoints" / "last.pt"
    make_bad(kind, last, run)
    before = snapshot(run)
    assert main(["train", GAUSS, "--out", str(run), "--resume", "--set", "train.n_iters=5"]) == 2
    err = error(capsys)
    assert f"otgen train: error: {last}" in err and RESUME_MESSAGES[kind] in err
    assert not (run / "checkpoints" / "MARKER").exists()
    assert snapshot(run) == before


# ----------------------------------------------------------------------------- 4. config validation
def test_every_config_problem_is_reported_at_once(tmp_path, capsys):
    sets = ["model.potentail=mlp", "model.optim.lr=fast", "train.batch_size=0", "train.log_every=1.5", "eval.n_sample=3",
            "eval.seed=-1", "extra.key=1"]
    assert main(["train", GAUSS, "--out", str(tmp_path / "r"), *[a for s in sets for a in ("--set", s)]]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines[0] == "otgen train: error: 7 problems in the config:"
    expected = ["unknown config section 'extra'", "unknown key model.potentail for EgNOT (did you mean 'potential'?)",
                "model.optim.lr must be of type float, got 'fast' (str)", "train.batch_size must be an int >= 1, got 0",
                "train.log_every must be an int >= 1, got 1.5",
                "unknown key eval.n_sample for the eval section (did you mean 'n_samples'?)",
                "eval.seed must be an int >= 0, got -1"]
    assert len(lines) == 8
    for want in expected:
        assert sum(want in line for line in lines[1:]) == 1, want
    assert not (tmp_path / "r").exists()


def test_validate_collects_problems_of_every_section():
    cfg = cfgmod.load_yaml(GAUSS)
    with pytest.raises(cfgmod.ConfigError) as info:
        cfgmod.validate(cfgmod.apply_overrides(cfg, ["model.name=UOMT", "train.n_iters=0", "eval.n_draws=x"]))
    assert info.value.problems == ["model.name must be one of ['EgNOT', 'SJKO', 'UOTM', 'WAE'], got 'UOMT' "
                                   "(did you mean 'UOTM'?)", "train.n_iters must be an int >= 1, got 0",
                                   "eval.n_draws must be an int, got 'x' (str)"]
    del cfg["train"]["batch_size"]
    with pytest.raises(cfgmod.ConfigError, match=r"^train.batch_size is required$"):
        cfgmod.validate(cfg)


# ----------------------------------------------------------------------------- 5. otgen sample
@pytest.mark.parametrize("flags, message", [
    (["--n", "0"], "--n must be >= 1, got 0"),
    (["--n", "-3"], "--n must be >= 1, got -3"),
    (["--n", "2", "--n-per-x", "0"], "--n-per-x must be >= 1, got 0"),
    (["--n", "2", "--n-per-x", "-1"], "--n-per-x must be >= 1, got -1"),
])
def test_sample_counts_must_be_positive(flags, message, trained, tmp_path, capsys):
    assert main(["sample", str(trained), *flags, "--out", str(tmp_path / "s.npz")]) == 2
    assert message in error(capsys) and not (tmp_path / "s.npz").exists()


def write_source(kind: str, path: Path) -> None:
    if kind == "missing":
        return
    if kind == "text":
        path.write_text("0.1 0.2\n0.3 0.4\n")
    elif kind == "npz":
        np.savez(path, x=np.zeros((3, 2)))
    elif kind == "pickled_objects":
        np.save(path, np.array([{"x": 1}], dtype=object), allow_pickle=True)
    elif kind == "strings":
        np.save(path, np.array(["a", "b"]))
    elif kind == "truncated":
        np.save(path, np.zeros((100, 2)))
        path.write_bytes(path.read_bytes()[:300])
    elif kind == "empty_rows":
        np.save(path, np.zeros((0, 2), dtype=np.float32))
    elif kind == "nan":
        np.save(path, np.array([[0.0, 1.0], [np.nan, 0.0]]))
    elif kind == "inf":
        np.save(path, np.array([[0.0, np.inf]], dtype=np.float32))
    elif kind == "wrong_width":
        np.save(path, np.zeros((4, 3), dtype=np.float32))
    elif kind == "one_dimensional":
        np.save(path, np.zeros(4, dtype=np.float32))
    else:
        raise AssertionError(kind)


@pytest.mark.parametrize("kind, message", [
    ("missing", "no such file"),
    ("text", "not a readable .npy array file (no .npy header: a text file or another format)"),
    ("npz", "an .npz archive (arrays ['x']); give one array of points as a .npy file"),
    ("pickled_objects", "holds an array of Python objects, which otgen does not unpickle; give an array of numbers"),
    ("strings", "holds values of type <U1; give an array of numbers"),
    ("truncated", "not a readable .npy array file"),
    ("empty_rows", "holds no points (shape (0, 2))"),
    ("nan", "has 1 NaN or Inf value(s) (the first in row 1)"),
    ("inf", "has 1 NaN or Inf value(s) (the first in row 0)"),
    ("wrong_width", "points of shape (3,) (array (4, 3)); this EgNOT transports points of shape (2,): give an array (n, 2)"),
    ("one_dimensional", "points of shape () (array (4,)); this EgNOT transports points of shape (2,)"),
])
def test_sample_refuses_a_bad_source_file_by_name(kind, message, trained, tmp_path, capsys):
    source = tmp_path / ("x.npz" if kind == "npz" else "x.npy")
    write_source(kind, source)
    npz = tmp_path / "s.npz"
    assert main(["sample", str(trained), "--n", "2", "--source", str(source), "--out", str(npz)]) == 2
    err = error(capsys)
    assert err.startswith(f"otgen sample: error: --source {source}: ") and message in err
    assert not npz.exists()


def test_sample_accepts_a_float64_source(trained, tmp_path):
    points = np.random.default_rng(0).normal(size=(5, 2))  # float64
    np.save(tmp_path / "x.npy", points)
    npz = tmp_path / "s.npz"
    assert main(["sample", str(trained), "--n", "3", "--source", str(tmp_path / "x.npy"), "--out", str(npz)]) == 0
    arrays = np.load(npz)
    assert arrays["x"].dtype == np.float32 and np.array_equal(arrays["x"], points[:3].astype(np.float32))
    assert arrays["y"].shape == (3, 2) and np.isfinite(arrays["y"]).all()


def test_sample_of_a_directory_without_weights_says_so(run, tmp_path, capsys):
    (run / "model.pt").unlink()
    (run / "checkpoints" / "last.pt").unlink()
    assert main(["sample", str(run), "--n", "2", "--out", str(tmp_path / "s.npz")]) == 2
    assert f"{run} holds no trained model (no model.pt, no checkpoints/last.pt)" in error(capsys)


# ----------------------------------------------------------------------------- 6. --device
@NO_CUDA
@pytest.mark.parametrize("command", ["train", "demo", "sample"])
def test_device_cuda_without_cuda_is_refused_before_any_work(command, trained, tmp_path, capsys):
    out = tmp_path / "r"
    args = {"train": ["train", GAUSS, "--out", str(out), *TINY],
            "demo": ["demo", "--out", str(out), "--set", "train.n_iters=2"],
            "sample": ["sample", str(trained), "--n", "2", "--out", str(out / "s.npz")]}[command]
    assert main([*args, "--device", "cuda"]) == 2
    assert error(capsys) == f"otgen {command}: error: {CUDA_MESSAGE}"
    assert not out.exists()


@NO_CUDA
@pytest.mark.parametrize("how, message", [
    (["--device", "cuda:1"], "--device cuda:1: CUDA is not available on this machine"),
    (["--set", "model.device=cuda"], "model.device cuda: CUDA is not available on this machine"),
])
def test_cuda_asked_for_otherwise_is_refused_too(how, message, tmp_path, capsys):
    assert main(["train", GAUSS, "--out", str(tmp_path / "r"), *TINY, *how]) == 2
    assert message in error(capsys) and not (tmp_path / "r").exists()


@pytest.mark.parametrize("command", ["train", "sample"])
def test_an_unknown_device_lists_the_accepted_ones(command, trained, tmp_path, capsys):
    args = (["train", GAUSS, "--out", str(tmp_path / "r"), *TINY] if command == "train"
            else ["sample", str(trained), "--n", "2", "--out", str(tmp_path / "s.npz")])
    assert main([*args, "--device", "gpu"]) == 2
    assert f"otgen {command}: error: --device must be one of cpu, cuda, cuda:N (N: a GPU's number) or auto, got 'gpu'" \
        == error(capsys)
    assert list(tmp_path.iterdir()) == []


def test_device_cpu_and_auto_run(tmp_path):
    out = tmp_path / "r"
    assert main(["train", GAUSS, "--out", str(out), *TINY, "--device", "cpu"]) == 0
    assert yaml.safe_load((out / "config.yaml").read_text())["model"]["device"] == "cpu"
    assert main(["sample", str(out), "--n", "2", "--out", str(tmp_path / "s.npz"), "--device", "auto"]) == 0
    assert np.load(tmp_path / "s.npz")["y"].shape == (2, 2)


@pytest.mark.parametrize("damage, message", [
    ("no_state", "is not a complete otgen model file: its 'state' entry is missing"),
    ("other_shapes", "the stored weights do not fit the EgNOT its config describes (truncated or corrupt: "),
    ("unknown_solver", "unknown model 'EgNTO' (did you mean 'EgNOT'?)"),
    ("bad_stored_config", "the stored config: eps must be a number > 0"),
])
def test_otgen_load_names_a_model_file_whose_parts_do_not_fit(damage, message, trained, tmp_path, capsys):
    blob = torch.load(trained / "model.pt", weights_only=True)
    if damage == "no_state":
        del blob["state"]
    elif damage == "other_shapes":
        blob["config"]["potential"] = {"name": "mlp", "hidden": [16]}
    elif damage == "unknown_solver":
        blob["solver"] = "EgNTO"
    else:
        blob["config"]["eps"] = -1.0
    torch.save(blob, tmp_path / "model.pt")
    with pytest.raises(ValueError) as info:
        otgen.load(tmp_path / "model.pt")
    assert str(info.value).startswith(str(tmp_path / "model.pt")) and message in str(info.value)
    run = Path(shutil.copytree(trained, tmp_path / "run"))
    shutil.copy(tmp_path / "model.pt", run / "model.pt")
    assert main(["sample", str(run), "--n", "2", "--out", str(tmp_path / "s.npz")]) == 2
    assert message in error(capsys)
