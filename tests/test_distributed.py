"""Multi-process training: K gloo processes with B/K samples each compute what one process computes
with batch B (every solver), and a 2-process ``torchrun ... otgen train`` run writes one checkpoint
that one process resumes; SIGTERM to torchrun stops every rank after the same step with one
checkpoint."""

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

import otgen
from otgen.models import SOLVERS

STEPS, BATCH = 4, 16  # S-JKO: STEPS per phase, 2 phases (the boundary is crossed)


def _points(seed, n=64, d=2, shift=0.0):
    return torch.randn(n, d, generator=torch.Generator().manual_seed(seed)) + shift


def case(name):
    """(model, data) of one equivalence case: small networks, Tensors of samples (the same in every
    process). A registered solver's name builds it from its ``small_options`` on Gaussian samples of
    its ``expected_shapes()``, so every solver in the registry is covered; the other cases are EgNOT
    samplers beyond its small instance's (persistent SMC particles, redrawn at step 2) and its
    Gaussian-mixture potential."""
    x, y = _points(1), _points(2, shift=1.0)
    if name == "egnot_replay_mala":
        return otgen.EgNOT(dim=2, eps=0.5, potential={"hidden": [16, 16]}, seed=0,
                           sampler={"name": "langevin", "steps": 3, "metropolis": True,
                                    "chains": {"name": "replay", "size": 24, "reinit_prob": 0.3}}), (x, y)
    if name == "egnot_fresh_smc":  # a short tempered SMC per batch: resampling and adaptive steps per x
        return otgen.EgNOT(dim=2, eps=0.5, potential={"hidden": [16, 16]}, seed=0,
                           sampler={"name": "smc", "steps": 8, "chains": "fresh"}), (x, y)
    if name == "egnot_mixture":  # the closed-form plan: exact loss, the k-means start in every process
        return otgen.EgNOT(dim=2, eps=0.5, potential={"name": "gaussian_mixture", "components": 4}, seed=0,
                           optim={"lr": 1e-2}), (x, y)
    cls = SOLVERS.get(name)
    model = cls(**cls.small_options)
    data = [torch.randn(64, *shape, generator=torch.Generator().manual_seed(side + 1)) + side
            for side, shape in enumerate(model.expected_shapes())]
    return model, tuple(data)


CASES = ["egnot_replay_mala", "egnot_fresh_smc", "egnot_mixture", *SOLVERS.names()]


def trained_state(name):
    model, data = case(name)
    model.fit(*data, n_iters=STEPS, batch_size=BATCH, progress=False, log_every=1)
    return model.state_dict(), model.history.metrics


def nan_in_one_row(n, generator=None):
    """A sampler whose 3rd global batch has NaN in its last row only (held by the last process)."""
    nan_in_one_row.calls += 1
    x = torch.randn(n, 2, generator=generator)
    if nan_in_one_row.calls == 4:  # the first call is the loop's probe
        x[-1, 0] = float("nan")
    return x


def stops(rank, out):
    """What one process saw: a NaN row that only the last process holds, and Ctrl-C (KeyboardInterrupt)
    in a callback of rank 1 only, at step 2 of a run written to ``out``."""
    seen = {}
    nan_in_one_row.calls = 0
    model, (x, y) = case("UOTM")
    try:
        model.fit(nan_in_one_row, y, n_iters=STEPS, batch_size=BATCH, progress=False)
    except ValueError as e:
        seen["nan"] = str(e)

    def ctrl_c_on_rank_1(step, solver, metrics):
        if rank == 1 and step == 2:
            raise KeyboardInterrupt

    model, data = case("UOTM")
    try:
        model.fit(*data, n_iters=STEPS + 4, batch_size=BATCH, progress=False, out=out, checkpoint_every=100,
                  callbacks=[ctrl_c_on_rank_1])
    except KeyboardInterrupt:
        seen["interrupted_at"] = model.step
    return seen


def _worker(rank, world, init_file, out):
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    try:
        for name in CASES:
            state, metrics = trained_state(name)
            torch.save({"state": state, "metrics": metrics}, Path(out) / f"{name}_{rank}.pt")
        torch.save(stops(rank, Path(out) / "stopped_run"), Path(out) / f"stops_{rank}.pt")
    finally:
        dist.destroy_process_group()


def tensors(state, prefix=""):
    """Every floating-point tensor of a (nested) state dict by its path."""
    found = {}
    if isinstance(state, torch.Tensor):
        if state.is_floating_point():
            found[prefix] = state
    elif isinstance(state, dict):
        for k, v in state.items():
            found.update(tensors(v, f"{prefix}/{k}"))
    elif isinstance(state, (list, tuple)):
        for i, v in enumerate(state):
            found.update(tensors(v, f"{prefix}/{i}"))
    return found


@pytest.fixture(scope="module")
def two_process_states(tmp_path_factory):
    out = tmp_path_factory.mktemp("ddp")
    mp.spawn(_worker, args=(2, str(out / "init"), str(out)), nprocs=2, join=True)
    return {name: [torch.load(out / f"{name}_{r}.pt", weights_only=True) for r in range(2)]
            for name in [*CASES, "stops"]} | {"out": out}


@pytest.mark.parametrize("name", CASES)
def test_two_processes_with_half_batches_equal_one_process_with_the_whole(two_process_states, name):
    torch.set_num_threads(1)
    one, one_metrics = trained_state(name)
    rank0, rank1 = two_process_states[name]
    a, b, c = tensors(one), tensors(rank0["state"]), tensors(rank1["state"])
    assert a.keys() == b.keys() == c.keys()
    # networks, optimiser moments, EMA, chains/buffers/phase maps: all of them, to float rounding
    assert len(a) >= 8
    for key in a:
        assert torch.allclose(a[key], b[key], rtol=1e-4, atol=1e-5), key
        assert torch.equal(b[key], c[key]), key  # the ranks hold one state
    for key in ("generator", "sample_generator"):
        assert torch.equal(one[key], rank0["state"][key])  # the random streams advanced alike
    assert rank0["metrics"].keys() == one_metrics.keys()
    for k, v in one_metrics.items():
        if k == "time":
            continue
        assert rank0["metrics"][k] == pytest.approx(v, rel=1e-3, abs=1e-4), k  # averaged over the processes


def test_every_process_stops_alike_on_a_nan_row_one_of_them_holds_and_on_one_process_ctrl_c(two_process_states):
    """No process is left waiting in a collective: the NaN row of the last process's part of a batch
    is refused by both (the whole batch is checked), and a KeyboardInterrupt in rank 1's callback at
    step 2 stops both after step 3 (agreed with the next step's reduction), with one checkpoint."""
    seen = two_process_states["stops"]
    for rank in (0, 1):
        assert "source contains NaN or Inf values (1 of 16 samples in the batch of step 3)" in seen[rank]["nan"]
        assert seen[rank]["interrupted_at"] == 3
    assert otgen.load(two_process_states["out"] / "stopped_run" / "checkpoints" / "last.pt").step == 3


def test_a_global_batch_not_divisible_by_the_processes_is_refused_before_training():
    model, data = case("UOTM")
    two = otgen.train.distributed.SingleProcess(world_size=2)  # the check reads world_size only
    with pytest.raises(ValueError, match="batch_size 15 is the global batch of the 2 processes"):
        otgen.train.train(model, data, n_iters=2, batch_size=15, progress=False, dist=two)
    assert model.step == 0


# -- torchrun ------------------------------------------------------------------------------------
CONFIG = Path(__file__).resolve().parents[1] / "configs" / "gauss_egnot.yaml"
TINY = ["--set", "model.potential.hidden=[16, 16]", "--set", "model.sampler.steps=3", "--set", "model.sampler.sample_steps=3",
        "--set", "train.batch_size=32", "--set", "eval.n_conditions=4", "--set", "eval.n_per_condition=16",
        "--set", "eval.n_samples=64"]


def _env():
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    env.pop("WORLD_SIZE", None)
    return env


def torchrun(*args, nproc=2, **kw):
    exe = shutil.which("torchrun", path=str(Path(sys.executable).parent)) or shutil.which("torchrun")
    return [exe, "--standalone", f"--nproc_per_node={nproc}", "-m", "otgen", "train", *args]


@pytest.mark.skipif(not CONFIG.is_file(), reason="the shipped config is missing")
def test_torchrun_two_processes_write_one_checkpoint_that_one_process_resumes(tmp_path):
    out = tmp_path / "run"
    done = subprocess.run(torchrun(str(CONFIG), "--out", str(out), *TINY, "--set", "train.n_iters=6",
                                   "--set", "train.checkpoint_every=3", "--threads", "1"),
                          env=_env(), capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count("trained to step 6") == 1  # rank 0 alone reports (and writes)
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["last.pt"]
    assert otgen.load(out / "checkpoints" / "last.pt").step == 6
    steps = [line for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert len(steps) == 6 // 50 + 1  # log_every 50: the last step only, once

    more = subprocess.run([sys.executable, "-m", "otgen", "train", str(CONFIG), "--out", str(out), "--resume",
                           "--set", "train.n_iters=8", "--threads", "1"],
                          env=_env(), capture_output=True, text=True, timeout=240)
    assert more.returncode == 0, more.stderr[-3000:]
    assert f"resuming {out / 'checkpoints' / 'last.pt'} at step 6 of 8" in more.stdout
    assert otgen.load(out / "model.pt").step == 8


def test_sigterm_to_torchrun_stops_every_rank_after_one_step_with_one_checkpoint(tmp_path):
    out = tmp_path / "run"
    proc = subprocess.Popen(torchrun(str(CONFIG), "--out", str(out), *TINY, "--set", "train.n_iters=100000",
                                     "--set", "train.checkpoint_every=100000", "--set", "train.log_every=1",
                                     "--threads", "1"),
                            env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    log = out / "metrics.jsonl"
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and (not log.is_file() or len(log.read_text().splitlines()) < 3):
        time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode != 0
    assert stderr.count("interrupted (the last checkpoint, if any, is kept)") == 2  # both ranks, cleanly
    step = otgen.load(out / "checkpoints" / "last.pt").step
    logged = [int(line.split('"step": ')[1].split(",")[0]) for line in log.read_text().splitlines()]
    assert step >= 3 and logged[-1] == step  # the checkpoint is of the last step logged: one state
    resumed = otgen.load(out / "checkpoints" / "last.pt")
    assert resumed.step == step and torch.isfinite(next(resumed.potential.parameters())).all()
