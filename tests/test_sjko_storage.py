"""S-JKO's phases in files: each finished phase written once to RUN/phases/, checkpoints the same size
however many phases a run has, exact resume across phase files, keep_phases, model files and run
checkpoints of the code before phase files, and checkpoints written and read without whole copies."""

import os
import shutil
import signal
import tracemalloc
from collections import Counter
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

import otgen
from otgen import io
from otgen.cli import main
from otgen.distributions import Gaussian
from otgen.solvers.phase_store import FilePhases, MemoryPhases
from otgen.train import checkpoint as ckpt
from test_distributed import tensors

DATA = Path(__file__).parent / "data" / "sjko_v1"  # written by the code before phase files (written_by.py)
ROOT = Path(__file__).resolve().parent.parent
SOURCE, TARGET = Gaussian.standard(2), Gaussian([1.0, 0.0], [[0.5, 0.0], [0.0, 0.5]])
g = lambda: torch.Generator().manual_seed(3)  # noqa: E731


def model(n_phases, hidden=(64, 64), keep_phases="all", **kw):
    net = {"name": "mlp", "hidden": list(hidden)}
    return otgen.SJKO(dim=2, h=0.5, n_phases=n_phases, generator={**net, "noise_dim": 2}, potential=net,
                      phases={"keep": keep_phases}, seed=0, **kw)


def fit(m, out, per=2, **kw):
    kw = {"batch_size": 16, "progress": False, "log_every": 1000, "checkpoint_every": 1000, **kw}
    return m.fit(SOURCE, TARGET, n_iters=per, out=out, **kw)


def phase_files(run):
    return sorted(p.name for p in (run / "phases").iterdir())


class Crash(Exception):
    """A crash between two checkpoints: nothing is saved."""


def crash_after(k):
    def callback(step, solver, metrics):
        if step == k:
            raise Crash
    return callback


def assert_same_state(a, b):
    ta, tb = tensors(a.state_dict()), tensors(b.state_dict())
    assert ta.keys() == tb.keys() and len(ta) >= 8
    for key in ta:
        assert torch.equal(ta[key], tb[key]), key
    for key in ("generator", "sample_generator"):
        assert torch.equal(a.state_dict()[key], b.state_dict()[key])


# ----------------------------------------------------------------------------- O(1) checkpoints
def test_checkpoints_stay_the_same_size_however_many_phases_and_each_phase_is_written_once(tmp_path, monkeypatch):
    written = Counter()
    save = io.save_torch

    def counting(obj, path):
        written[Path(path).name] += 1
        return save(obj, path)

    monkeypatch.setattr(io, "save_torch", counting)
    two = fit(model(2), tmp_path / "two")
    written.clear()
    twelve = fit(model(12), tmp_path / "twelve", checkpoint_every=5)
    # each phase's file once, however many checkpoints (4 here, and model.pt) list it
    assert {k: v for k, v in written.items() if k.startswith("phase_")} == {f"phase_{k:03d}.pt": 1 for k in range(12)}
    assert written["last.pt"] == 5 and phase_files(tmp_path / "twelve") == [f"phase_{k:03d}.pt" for k in range(12)]
    sizes = {name: [(tmp_path / run / name).stat().st_size for run in ("two", "twelve")]
             for name in ("checkpoints/last.pt", "model.pt")}
    for small, big in sizes.values():
        # the weights of 10 more phases (18 KB each here) are not in them: only 10 more names in the list
        assert big <= 1.5 * small and big - small < 1500, sizes
    phase_bytes = (tmp_path / "twelve" / "phases" / "phase_000.pt").stat().st_size
    assert phase_bytes > 15_000  # what each checkpoint would otherwise grow by per phase
    # and in memory: the same tensors for 12 phases as for 2 (no phase weights in the state)
    assert tensors(twelve.state_dict()).keys() == tensors(two.state_dict()).keys()
    assert isinstance(twelve._phases, FilePhases) and twelve.phases_trained == 12


def test_every_phase_reads_back_from_its_file_one_at_a_time(tmp_path):
    m = fit(model(4), tmp_path / "run")
    x = torch.randn(5, 2)
    outputs = [m.transport(x, phase=k, rng=g()) for k in range(4)]
    assert m._loaded is not None and m._loaded[0] == 2  # one loaded phase is kept; the last is the generator
    loaded = otgen.load(tmp_path / "run" / "model.pt")
    assert all(torch.equal(loaded.transport(x, phase=k, rng=g()), outputs[k]) for k in range(4))
    assert torch.equal(outputs[-1], m.transport(x, rng=g()))
    stored = torch.load(tmp_path / "run" / "phases" / "phase_001.pt", weights_only=True)
    assert stored["format"] == "otgen-phase-1" and stored["phase"] == 1
    assert all(torch.equal(stored["state"][k], v) for k, v in m.phase_states[1].items())


# ----------------------------------------------------------------------------- exact resume
@pytest.mark.parametrize("keep", ["all", 1])
def test_a_12_phase_run_that_crashed_mid_phase_resumes_bitwise_equal_to_the_run_never_stopped(tmp_path, keep):
    """Phases of 2 steps, checkpoints every 3 steps, a crash after step 15: the run restarts from the
    checkpoint of step 12 (phase 6), which needs T_5, though phase 6 ended (step 14) and, with
    keep_phases=1, made phase 5's file old: it is deleted only once a checkpoint no longer lists it."""
    kw = dict(per=2, checkpoint_every=3)
    make = lambda: model(12, hidden=(16, 16), keep_phases=keep)  # noqa: E731
    straight = fit(make(), tmp_path / "a", **kw)
    run = tmp_path / "b"
    with pytest.raises(Crash):
        fit(make(), run, callbacks=[crash_after(15)], **kw)
    stopped = otgen.load(run / "checkpoints" / "last.pt")
    assert stopped.step == 12 and stopped.phase == 6 and stopped.phases_trained == 6
    assert "phase_005.pt" in phase_files(run) and "phase_006.pt" in phase_files(run)
    if keep == 1:
        assert phase_files(run) == ["phase_005.pt", "phase_006.pt"]  # phase 4's went with checkpoint 12
    resumed = fit(make(), run, resume=True, **kw)
    assert resumed.history.resumed_from == 12 and resumed.step == straight.step == 24
    assert_same_state(straight, resumed)
    x = torch.randn(6, 2)
    kept = range(12) if keep == "all" else range(11, 12)
    assert resumed.phases_kept == straight.phases_kept == kept
    for k in kept:
        assert all(torch.equal(a, resumed.phase_states[k][n]) for n, a in straight.phase_states[k].items())
        assert torch.equal(straight.transport(x, phase=k, rng=g()), resumed.transport(x, phase=k, rng=g()))
    assert phase_files(run) == phase_files(tmp_path / "a") == [f"phase_{k:03d}.pt" for k in kept]


# ----------------------------------------------------------------------------- files of the code before
def test_a_model_file_of_the_code_before_phase_files_gives_the_same_transports_of_every_phase(tmp_path):
    """tests/data/sjko_v1/model.pt: 4 phases whose weights were set from fixed seeds (no training
    randomness), saved with every phase in the file, and what that code's transport gave."""
    expected = torch.load(DATA / "expected.pt", weights_only=True)
    x = expected["x"]
    old = otgen.load(DATA / "model.pt")
    assert isinstance(old._phases, MemoryPhases) and old.phases_trained == 4
    for k in range(4):
        assert torch.equal(old.transport(x, phase=k, rng=g()), expected[f"phase{k}"]), k
    assert torch.equal(old.transport(x, rng=g()), expected["current"])

    # moved into a run directory: each phase written to its file once, then read from there
    run = tmp_path / "run"
    old.attach_run_dir(run, writes=True)
    assert phase_files(run) == [f"phase_{k:03d}.pt" for k in range(4)]
    old.save(run / "model.pt")
    assert (run / "model.pt").stat().st_size < (DATA / "model.pt").stat().st_size - 4 * 1000
    for path in (run / "model.pt", tmp_path / "run_moved" / "model.pt"):
        if path.parent.name == "run_moved":  # a run directory moved elsewhere: its phases/ moved with it
            run.rename(path.parent)
        new = otgen.load(path)
        assert "phase_states" not in new.state_dict() and "phase_files" in new.state_dict()
        for k in range(4):
            assert torch.equal(new.transport(x, phase=k, rng=g()), expected[f"phase{k}"]), (path, k)

    # model.pt copied alone: the last phase (the generator itself) and phase=None still work
    alone = tmp_path / "alone"
    alone.mkdir()
    shutil.copy(tmp_path / "run_moved" / "model.pt", alone / "model.pt")
    shutil.rmtree(tmp_path / "run_moved")
    copied = otgen.load(alone / "model.pt")
    assert torch.equal(copied.transport(x, phase=3, rng=g()), expected["phase3"])
    assert torch.equal(copied.transport(x, rng=g()), expected["current"])
    with pytest.raises(ValueError, match=r"phase 1's weights are in the file phase_001.pt, which is in none of .*"
                                         r"copy the run's phases/ folder beside its model.pt"):
        copied.transport(x, phase=1)


def test_a_run_checkpoint_of_the_code_before_phase_files_resumes_and_its_phases_move_to_files(tmp_path):
    """tests/data/sjko_v1/run: a run of 3 phases x 2 steps stopped after step 3 by that code, phase 0's
    weights inside its checkpoint. Resumed straight, and resumed with one more stop: bitwise equal."""
    expected = torch.load(DATA / "expected.pt", weights_only=True)
    make = lambda: model(3, hidden=(8, 8))  # noqa: E731  (the run's model)
    kw = dict(per=2, batch_size=8, log_every=1, checkpoint_every=100)
    for name in ("a", "b"):
        shutil.copytree(DATA / "run", tmp_path / name)
    assert "phase_states" in torch.load(DATA / "run" / "checkpoints" / "last.pt", weights_only=True)["model"]["state"]
    straight = fit(make(), tmp_path / "a", resume=True, **kw)
    assert straight.history.resumed_from == 3 and straight.step == 6
    assert phase_files(tmp_path / "a") == ["phase_000.pt", "phase_001.pt", "phase_002.pt"]
    state = torch.load(tmp_path / "a" / "checkpoints" / "last.pt", weights_only=True)["model"]["state"]
    assert "phase_states" not in state and state["phase_files"]["names"][0] == "phase_000.pt"
    assert torch.equal(straight.transport(expected["x"], phase=0, rng=g()), expected["run_phase0"])

    def sigterm_after(k):
        def callback(step, solver, metrics):
            if step == k:
                os.kill(os.getpid(), signal.SIGTERM)
        return callback

    with pytest.raises(KeyboardInterrupt):
        fit(make(), tmp_path / "b", resume=True, callbacks=[sigterm_after(4)], **kw)
    resumed = fit(make(), tmp_path / "b", resume=True, **kw)
    assert resumed.history.resumed_from == 4
    assert_same_state(straight, resumed)
    assert torch.equal(resumed.transport(expected["x"], phase=0, rng=g()), expected["run_phase0"])


# ----------------------------------------------------------------------------- keep_phases
@pytest.mark.parametrize("value", [0, -1, 1.5, "last", True, None, [2]])
def test_keep_phases_is_checked_by_name_before_any_work(value):
    with pytest.raises(ValueError, match=r"phases.keep (must be 'all' or an int >= 1 .*got|may not be null)"):
        model(3, keep_phases=value)
    problems = otgen.models.get_solver("SJKO").Options.check_all({"phases": {"keep": value}}, "model.")
    assert len(problems) == 1 and "model.phases.keep" in problems[0]


def test_keep_phases_without_a_run_directory_holds_only_the_newest_phases_in_memory(tmp_path):
    m = fit(model(5, keep_phases=2), None)
    assert isinstance(m._phases, MemoryPhases) and m.phases_trained == 5 and m.phases_kept == range(3, 5)
    assert len(m.state_dict()["phase_states"]) == 2 and m.state_dict()["phases_trained"] == 5
    x = torch.randn(4, 2)
    with pytest.raises(ValueError, match=r"phase=2 is not kept: phases.keep=2 keeps the newest phases only, 3 to 4"):
        m.transport(x, phase=2)
    arrays = m.run_arrays(x, torch.Generator().manual_seed(0))
    assert arrays["phases"].shape == (2, 4, 2) and arrays["phase_numbers"].tolist() == [4, 5]
    m.save(tmp_path / "m.pt")  # without a run directory the kept phases go into the model file
    loaded = otgen.load(tmp_path / "m.pt")
    assert loaded.phases_kept == range(3, 5)
    assert torch.equal(loaded.transport(x, phase=3, rng=g()), m.transport(x, phase=3, rng=g()))


def test_a_fit_without_a_directory_keeps_every_phase_in_memory_and_its_model_file_holds_them(tmp_path):
    m = fit(model(3), None)
    assert isinstance(m._phases, MemoryPhases) and len(m.state_dict()["phase_states"]) == 3
    m.save(tmp_path / "m.pt")
    loaded = otgen.load(tmp_path / "m.pt")
    x = torch.randn(4, 2)
    for k in range(3):
        assert torch.equal(loaded.transport(x, phase=k, rng=g()), m.transport(x, phase=k, rng=g()))


# ----------------------------------------------------------------------------- writing and reading checkpoints
def test_save_torch_writes_straight_into_the_file_without_a_copy_in_memory(tmp_path):
    weights = {"w": torch.randn(5_000_000)}  # 20 MB
    tracemalloc.start()
    try:
        io.save_torch(weights, tmp_path / "w.pt")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 1_000_000  # a BytesIO first would hold all 20 MB (twice, with getvalue)
    assert torch.equal(io.load_torch(tmp_path / "w.pt", mmap=True)["w"], weights["w"])
    data = bytearray((tmp_path / "w.pt").read_bytes())
    data[len(data) // 2] ^= 0xFF  # in the weights: the checksums still catch it
    (tmp_path / "w.pt").write_bytes(bytes(data))
    with pytest.raises(ValueError, match="checksum mismatch in archive/data/0"):
        io.load_torch(tmp_path / "w.pt", mmap=True)


def reads_of(path, monkeypatch):
    """Every ``io.load_torch`` of ``path`` from now on, with its ``mmap`` flag."""
    calls = []
    load = io.load_torch

    def counting(p, *args, **kwargs):
        if Path(p) == path:
            calls.append(kwargs.get("mmap", False))
        return load(p, *args, **kwargs)

    monkeypatch.setattr(io, "load_torch", counting)
    return calls


def test_a_resumed_run_reads_its_checkpoint_once_memory_mapped(tmp_path, monkeypatch, capsys, ctrl_c_after):
    out = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        fit(model(3), out, callbacks=[ctrl_c_after(3)])
    calls = reads_of(ckpt.checkpoint_path(out), monkeypatch)
    fit(model(3), out, resume=True)
    assert calls == [True]
    # otgen train --resume checks the checkpoint and the loop restores it: still one read
    cfg = str(ROOT / "configs" / "uotm_mixture_1d.yaml")
    args = ["train", cfg, "--out", str(tmp_path / "cli"), "--threads", "1"]
    assert main([*args, "--set", "model.hidden=[8]", "--set", "train.n_iters=3"]) == 0
    calls = reads_of(ckpt.checkpoint_path(tmp_path / "cli"), monkeypatch)
    assert main([*args, "--resume", "--set", "train.n_iters=5"]) == 0
    assert calls == [True]
    assert "resuming" in capsys.readouterr().out


# ----------------------------------------------------------------------------- several processes
def test_only_the_writing_process_writes_a_phase_and_every_process_lists_and_reads_it(tmp_path, monkeypatch):
    """Two processes of one run, stepped in lockstep here: rank 0 (writes=True) writes each phase's
    file once, rank 1 (writes=False) lists the same files, holds the same state (the same tensors:
    what broadcast_state sends) and reads every phase from rank 0's files; a model trained in memory
    that both continue in the run directory moves its phases to files the same way."""
    written = Counter()
    save = io.save_torch
    monkeypatch.setattr(io, "save_torch", lambda obj, path: written.update([Path(path).name]) or save(obj, path))
    run = tmp_path / "run"
    leader, follower = model(3, hidden=(8, 8)), model(3, hidden=(8, 8))
    for m in (leader, follower):  # phase 0 in memory, as a fit without out= leaves it ...
        m.prepare(SOURCE, TARGET, n_iters=6)
    gen = torch.Generator().manual_seed(0)
    batches = [(SOURCE(8, generator=gen), TARGET(8, generator=gen)) for _ in range(6)]
    for x, y in batches[:2]:
        leader.train_step(x, y), follower.train_step(x, y)
    leader.attach_run_dir(run, writes=True)  # ... then continued in a run directory
    follower.attach_run_dir(run, writes=False)
    for x, y in batches[2:]:
        leader.train_step(x, y), follower.train_step(x, y)
    assert written == Counter({"phase_000.pt": 1, "phase_001.pt": 1, "phase_002.pt": 1})
    a, b = leader.state_dict(), follower.state_dict()
    assert a["phase_files"]["names"] == b["phase_files"]["names"] == ["phase_000.pt", "phase_001.pt", "phase_002.pt"]
    assert b["phase_files"]["bytes"] == [None] * 3 and None not in a["phase_files"]["bytes"]
    ta, tb = tensors(a), tensors(b)
    assert ta.keys() == tb.keys() and all(torch.equal(ta[k], tb[k]) for k in ta)
    follower.load_state_dict(b)  # as broadcast_state leaves it: T_{k-1} read again, from rank 0's file
    x = torch.randn(5, 2)
    for k in range(3):
        assert torch.equal(follower.transport(x, phase=k, rng=g()), leader.transport(x, phase=k, rng=g()))
    z = torch.randn(5, 2)  # the generator's noise
    assert torch.equal(follower.previous(x, z), leader.previous(x, z))


def _two_process_worker(rank, init_file, out):
    """One of two gloo processes: a run of 3 phases straight (a), and the same run stopped by a
    Ctrl-C in rank 1's callback and resumed (b), both in shared run directories."""
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=2)
    try:
        out = Path(out)
        straight = fit(model(3, hidden=(8, 8)), out / "a", per=2, batch_size=8)

        def ctrl_c_on_rank_1(step, solver, metrics):
            if rank == 1 and step == 2:
                raise KeyboardInterrupt

        try:
            fit(model(3, hidden=(8, 8)), out / "b", per=2, batch_size=8, callbacks=[ctrl_c_on_rank_1])
        except KeyboardInterrupt:
            pass
        dist.barrier()  # rank 0 has written the checkpoint (a new launch, in real life)
        resumed = fit(model(3, hidden=(8, 8)), out / "b", per=2, batch_size=8, resume=True)
        x = torch.linspace(-1, 1, 10).reshape(5, 2)
        torch.save({"writes": straight._phases.writes, "resumed_from": resumed.history.resumed_from,
                    "straight": tensors(straight.state_dict()), "resumed": tensors(resumed.state_dict()),
                    "phases": [resumed.transport(x, phase=k, rng=g()) for k in range(3)]},
                   out / f"rank{rank}.pt")
    finally:
        dist.destroy_process_group()


@pytest.mark.slow
def test_two_processes_write_each_phase_once_read_them_all_and_resume_exactly(tmp_path):
    """2 gloo processes (about 30 s on 2 busy cores, mostly starting them): rank 0 alone writes the
    phase files, both read them, and a run stopped in phase 1 resumes to the same state."""
    mp.spawn(_two_process_worker, args=(str(tmp_path / "init"), str(tmp_path)), nprocs=2, join=True)
    r0, r1 = (torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in range(2))
    assert r0["writes"] and not r1["writes"] and r0["resumed_from"] == r1["resumed_from"] == 3
    for run in ("a", "b"):
        assert phase_files(tmp_path / run) == ["phase_000.pt", "phase_001.pt", "phase_002.pt"]
    for key in r0["straight"]:
        for state in (r0["straight"], r0["resumed"], r1["resumed"]):
            assert torch.equal(r1["straight"][key], state[key]), key
    assert all(torch.equal(a, b) for a, b in zip(r0["phases"], r1["phases"]))
