"""Elastic restarts (issue 27): ``otgen train CONFIG --out DIR --resume auto`` starts the run in DIR when
DIR holds no checkpoint and continues it from its checkpoint when it does, so that one command line
serves ``torchrun --max-restarts=N``. A worker killed (SIGKILL) after a checkpoint is restarted with
its group, which resumes; the run ends bitwise equal (CPU) to the run never interrupted, with every
step logged once and the records of steps run again moved to ``metrics.superseded.jsonl``."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

import otgen
from otgen import io
from otgen.cli import main

ROOT = Path(__file__).resolve().parent.parent
GAUSS = str(ROOT / "configs" / "gauss_egnot.yaml")
TINY = ["--threads", "1", "--set", "data.pair.dim=3", "--set", "train.n_iters=3", "--set", "train.batch_size=16", "--set", "train.checkpoint_every=2",
        "--set", "train.log_every=1", "--set", "model.potential.hidden=[8]", "--set", "model.sampler.steps=2",
        "--set", "model.sampler.sample_steps=2", "--set", "model.sampler.chains.pool_size=32",
        "--set", "eval.n_conditions=2",
        "--set", "eval.n_per_condition=10", "--set", "eval.n_samples=50"]


def leaves(state, prefix=""):
    """Every leaf of a nested checkpoint (dicts, lists, tuples) by its path: tensors and plain values."""
    if isinstance(state, dict):
        return {k: v for key, value in state.items() for k, v in leaves(value, f"{prefix}/{key}").items()}
    if isinstance(state, (list, tuple)):
        return {k: v for i, value in enumerate(state) for k, v in leaves(value, f"{prefix}/{i}").items()}
    return {prefix: state}


def assert_same_checkpoint(a: Path, b: Path) -> None:
    """The two run checkpoints hold the same model, optimiser, chains, random streams and step, bitwise.
    Torch's global generators aside: torch seeds them anew in every process, and otgen draws nothing
    from them (every draw of a run comes from the solver's and the loop's own seeded generators)."""
    x, y = ({k: v for k, v in leaves(io.load_torch(p)).items() if k not in ("/loop/torch_rng", "/loop/cuda_rng")}
            for p in (a, b))
    assert x.keys() == y.keys()
    assert sum(isinstance(v, torch.Tensor) for v in x.values()) >= 8
    for key in x:
        if isinstance(x[key], torch.Tensor):
            assert x[key].dtype == y[key].dtype and torch.equal(x[key], y[key]), key
        else:
            assert x[key] == y[key], key


def records(path: Path, cut_off: bool = False) -> list[dict]:
    """The records of a metrics file; ``cut_off``: leave out a line cut off mid-record (by a kill)."""
    lines = path.read_text().splitlines() if path.exists() else []
    return [json.loads(line) for line in lines if not cut_off or line.endswith("}")]


def without_time(rows: list[dict]) -> list[dict]:
    return [{k: v for k, v in r.items() if k != "time"} for r in rows]


# -- one process: what --resume auto decides, and its errors ---------------------------------------
@pytest.fixture(scope="module")
def started(tmp_path_factory):
    """A tiny EgNOT run started by a plain ``otgen train`` (no --resume): 3 steps, checkpoints at 2 and 3."""
    out = tmp_path_factory.mktemp("started") / "run"
    assert main(["train", GAUSS, "--out", str(out), *TINY]) == 0
    return out


@pytest.fixture
def run(started, tmp_path):
    """A copy of the started run to continue or damage."""
    return Path(shutil.copytree(started, tmp_path / "run"))


def test_resume_auto_without_out_is_refused_before_anything_is_written(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["train", GAUSS, "--resume", "auto", *TINY]) == 2
    err = capsys.readouterr().err.strip()
    assert err == ("otgen train: error: --resume auto needs --out DIR: it continues the run in DIR if DIR holds a "
                   "checkpoint, and starts it there if not")
    assert list(tmp_path.iterdir()) == []  # no runs/gauss_egnot


@pytest.mark.parametrize("argv", [["--resume", "yes"], ["--resume=Auto"]])
def test_resume_takes_no_value_or_auto(tmp_path, capsys, argv):
    with pytest.raises(SystemExit) as stop:
        main(["train", GAUSS, "--out", str(tmp_path / "r"), *argv, *TINY])
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert "argument --resume: --resume takes no value (continue the run in --out) or auto" in err
    assert repr(argv[-1].split("=")[-1]) in err and not (tmp_path / "r").exists()


def test_resume_auto_starts_a_fresh_directory_as_a_plain_start_and_says_so(started, tmp_path, capsys):
    out = tmp_path / "auto"
    assert main(["train", GAUSS, "--out", str(out), "--resume", "auto", *TINY]) == 0
    said = capsys.readouterr().out.splitlines()
    assert said[0] == f"--resume auto: {out} holds no checkpoint; starting a new run there"
    assert not any("resuming" in line for line in said)
    assert_same_checkpoint(out / "checkpoints" / "last.pt", started / "checkpoints" / "last.pt")
    assert without_time(records(out / "metrics.jsonl")) == without_time(records(started / "metrics.jsonl"))
    assert [r["step"] for r in records(out / "metrics.jsonl")] == [1, 2, 3]


def test_resume_auto_continues_a_checkpoint_as_plain_resume_does(run, tmp_path, capsys):
    plain = Path(shutil.copytree(run, tmp_path / "plain"))
    assert main(["train", GAUSS, "--out", str(plain), "--resume", "--set", "train.n_iters=5"]) == 0
    capsys.readouterr()
    # the command line of the first start (its model and data settings are the run's own), to 5 steps
    assert main(["train", GAUSS, "--out", str(run), "--resume", "auto", *TINY, "--set", "train.n_iters=5"]) == 0
    said = capsys.readouterr().out
    assert f"resuming {run / 'checkpoints' / 'last.pt'} at step 3 of 5" in said and "starting" not in said
    assert_same_checkpoint(run / "checkpoints" / "last.pt", plain / "checkpoints" / "last.pt")
    assert without_time(records(run / "metrics.jsonl")) == without_time(records(plain / "metrics.jsonl"))
    assert [r["step"] for r in records(run / "metrics.jsonl")] == [1, 2, 3, 4, 5]


def test_resume_auto_after_a_start_that_left_no_checkpoint_starts_again_and_keeps_its_records(run, started, capsys):
    """The job died before its first checkpoint: config.yaml and part of metrics.jsonl are there."""
    shutil.rmtree(run / "checkpoints")
    (run / "model.pt").unlink()
    early = (run / "metrics.jsonl").read_text().splitlines(keepends=True)[:2]
    (run / "metrics.jsonl").write_text("".join(early) + '{"step": 3, "ti')  # cut off mid-record
    assert main(["train", GAUSS, "--out", str(run), "--resume", "auto", *TINY]) == 0
    assert capsys.readouterr().out.splitlines()[0] == (
        f"--resume auto: {run} holds no checkpoint; starting a new run there (the records of an earlier start "
        "move from metrics.jsonl to metrics.superseded.jsonl)")
    assert (run / "metrics.superseded.jsonl").read_text() == "".join(early) + '{"step": 3, "ti\n'
    assert without_time(records(run / "metrics.jsonl")) == without_time(records(started / "metrics.jsonl"))
    assert_same_checkpoint(run / "checkpoints" / "last.pt", started / "checkpoints" / "last.pt")


@pytest.mark.parametrize("with_checkpoint", [True, False])
def test_resume_auto_refuses_a_directory_of_another_run_untouched(run, capsys, with_checkpoint):
    if not with_checkpoint:
        shutil.rmtree(run / "checkpoints")
    before = {p: p.read_bytes() for p in run.rglob("*") if p.is_file()}
    assert main(["train", GAUSS, "--out", str(run), "--resume", "auto", *TINY, "--set", "model.potential.hidden=[4]",
                 "--set", "data.pair.seed=1"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"otgen train: error: --resume auto: {run / 'config.yaml'} is of another run "
                          "(model.potential.hidden = [8] there, [4] here; data.pair.seed = 0 there, 1 here); a run keeps its "
                          "model and data: give the command line that started it")
    assert ("drop --resume auto to start a new run there" in err) != with_checkpoint
    assert {p: p.read_bytes() for p in run.rglob("*") if p.is_file()} == before


def test_fit_resume_auto_starts_then_continues_and_bad_values_are_refused(tmp_path):
    x = torch.randn(64, 2, generator=torch.Generator().manual_seed(1))
    y = torch.randn(64, 2, generator=torch.Generator().manual_seed(2)) + 1.0

    def model():
        mlp = {"name": "mlp", "hidden": [8]}
        return otgen.UOTM(dim=2, tau=0.5, generator=mlp, potential=mlp, seed=0)

    def fit(m, n, out, resume):
        return m.fit(x, y, n_iters=n, batch_size=16, out=out, resume=resume, progress=False, log_every=1)

    for bad in ("yes", 1, None):
        with pytest.raises(ValueError, match=r"resume must be True \(continue the run in out\), False \(start one "
                                             r"there\) or \"auto\" .*, got " + repr(bad).replace("'", ".")):
            fit(model(), 2, tmp_path / "bad", bad)
    with pytest.raises(ValueError, match=r"resume='auto' continues the run in a directory: pass out="):
        fit(model(), 2, None, "auto")
    assert not (tmp_path / "bad").exists()

    started = fit(model(), 3, tmp_path / "a", "auto")
    assert started.history.resumed_from is None and started.step == 3
    continued = fit(model(), 5, tmp_path / "a", "auto")
    assert continued.history.resumed_from == 3
    straight = fit(model(), 5, tmp_path / "b", False)  # no schedule depends on n_iters: resuming changes nothing
    assert_same_checkpoint(tmp_path / "a" / "checkpoints" / "last.pt", tmp_path / "b" / "checkpoints" / "last.pt")
    assert straight.step == 5


# -- torchrun --max-restarts: a worker killed after a checkpoint ----------------------------------
N_ITERS, EVERY = 80, 5
ELASTIC = ["--threads", "1", "--resume", "auto", "--set", "data.pair.dim=3", "--set", "model.potential.hidden=[16, 16]",
           "--set", "model.sampler.steps=3", "--set", "model.sampler.sample_steps=3", "--set", "train.batch_size=32",
           "--set", f"train.n_iters={N_ITERS}", "--set", f"train.checkpoint_every={EVERY}", "--set", "train.log_every=1",
           "--set", "eval.n_conditions=4", "--set", "eval.n_per_condition=16", "--set", "eval.n_samples=64"]


def torchrun(out: Path) -> list[str]:
    exe = shutil.which("torchrun", path=str(Path(sys.executable).parent)) or shutil.which("torchrun")
    return [exe, "--standalone", "--nproc_per_node=2", "--max-restarts=1", "-m", "otgen", "train", GAUSS,
            "--out", str(out), *ELASTIC]


def env() -> dict:
    e = dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    for key in ("WORLD_SIZE", "RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        e.pop(key, None)
    return e


def workers(pid: int) -> dict[int, int]:
    """rank -> pid of the worker processes torchrun ``pid`` started (its children, from /proc)."""
    found = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
            if ppid == pid:
                environ = (stat.parent / "environ").read_bytes().split(b"\0")
                rank = next(int(v[5:]) for v in environ if v.startswith(b"RANK="))
                found[rank] = int(stat.parent.name)
        except (OSError, IndexError, ValueError, StopIteration):  # a process that just ended, or no worker
            continue
    return found


@pytest.mark.slow  # 6 worker starts (8 s of CPU each: torch, torch._dynamo for the optimisers, POT), 2 agents: 30 s on 2 idle
# cores, 60-80 s on 2 loaded ones
def test_torchrun_max_restarts_restarts_a_killed_worker_and_the_run_ends_as_never_interrupted(tmp_path):
    out, ref = tmp_path / "killed", tmp_path / "straight"
    logs = {name: (open(tmp_path / f"{name}.out", "w"), open(tmp_path / f"{name}.err", "w")) for name in ("k", "s")}
    # the run never interrupted, beside (the two share the cores, and each waits on its own collectives)
    straight = subprocess.Popen(torchrun(ref), env=env(), stdout=logs["s"][0], stderr=logs["s"][1])
    proc = subprocess.Popen(torchrun(out), env=env(), stdout=logs["k"][0], stderr=logs["k"][1])
    try:
        last, deadline = out / "checkpoints" / "last.pt", time.monotonic() + 120
        while not last.is_file() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        ranks = workers(proc.pid)
        assert proc.poll() is None and sorted(ranks) == [0, 1], "the run ended before a worker could be killed"
        os.kill(ranks[0], signal.SIGKILL)  # the writer: it may die mid-step, after logging steps past the checkpoint
        proc.wait(timeout=180)
        straight.wait(timeout=180)
    finally:
        for p in (proc, straight):
            if p.poll() is None:  # a hang: end the workers of this test's torchrun, then torchrun
                for pid in workers(p.pid).values():
                    os.kill(pid, signal.SIGKILL)
                p.kill()
        for f in (f for pair in logs.values() for f in pair):
            f.close()
    stdout, stderr = (tmp_path / "k.out").read_text(), (tmp_path / "k.err").read_text()
    assert proc.returncode == 0, stderr[-3000:]
    assert straight.returncode == 0, (tmp_path / "s.err").read_text()[-3000:]
    assert stdout.startswith(f"--resume auto: {out} holds no checkpoint; starting a new run there\n")
    resumed = [line for line in stdout.splitlines() if line.startswith("resuming")]
    assert len(resumed) == 1, stdout  # one restart, which resumed
    step = int(resumed[0].split(" at step ")[1].split(" of ")[0])
    assert resumed[0] == f"resuming {out / 'checkpoints' / 'last.pt'} at step {step} of {N_ITERS}"
    assert step >= EVERY and step % EVERY == 0 and step < N_ITERS

    logged, superseded = records(out / "metrics.jsonl"), records(out / "metrics.superseded.jsonl", cut_off=True)
    assert [r["step"] for r in logged] == list(range(1, N_ITERS + 1))  # every step once
    assert without_time(logged) == without_time(records(ref / "metrics.jsonl"))  # the same numbers
    # records of the steps after the checkpoint (run again) were moved aside, not lost
    assert without_time(superseded) == without_time(logged)[step:step + len(superseded)]
    assert_same_checkpoint(out / "checkpoints" / "last.pt", ref / "checkpoints" / "last.pt")
    assert otgen.load(out / "model.pt").step == N_ITERS
