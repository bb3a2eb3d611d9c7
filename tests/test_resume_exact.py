"""Exact resume for every solver: a run stopped at step k (SIGTERM, or Ctrl-C's KeyboardInterrupt
between steps) and resumed from its checkpoint ends bitwise equal to the run that was never stopped,
S-JKO also across a phase boundary."""

import os
import signal

import pytest
import torch

import otgen
from test_distributed import _points, tensors

N_ITERS = 8


def model_and_data(name):
    x, y = _points(1), _points(2, shift=1.0)
    if name == "egnot":
        return otgen.EgNOT(dim=2, eps=0.5, potential={"hidden": [16, 16]}, optim={"schedule": "cosine", "ema": 0.9},
                           sampler={"name": "langevin", "steps": 3, "chains": {"name": "replay", "size": 32}},
                           seed=0), (x, y), N_ITERS
    if name == "uotm":
        mlp = {"name": "mlp", "hidden": [16, 16]}
        return otgen.UOTM(dim=2, tau=0.5, generator=mlp, potential=mlp, critic={"n_critic": 2},
                          optim_g={"ema": 0.9, "schedule": "cosine"}, optim_v={"schedule": "cosine"},
                          seed=0), (x, y), N_ITERS
    if name == "sjko":  # 2 phases of 4 steps: fit counts n_iters per phase
        mlp = {"name": "mlp", "hidden": [16, 16]}
        return otgen.SJKO(dim=2, h=0.5, n_phases=2, generator={**mlp, "noise_dim": 2}, potential=mlp,
                          seed=0), (x, y), N_ITERS // 2
    if name == "wae":
        mlp = {"name": "mlp", "hidden": [16]}
        return otgen.WAE(data_shape=(6,), latent_dim=2, penalty={"name": "gan", "adversary": mlp,
                                                                 "optim": {"schedule": "cosine"}},
                         encoder=mlp, decoder=mlp, encoder_type="gaussian", input_noise=0.1,
                         optim={"schedule": "cosine"}, seed=0), (_points(3, d=6),), N_ITERS
    raise KeyError(name)


def stop_at(k, how):
    def callback(step, solver, metrics):
        if step == k:
            if how == "sigterm":
                os.kill(os.getpid(), signal.SIGTERM)  # handled between steps, as from a scheduler
            else:
                raise KeyboardInterrupt  # Ctrl-C arriving in a callback, between two steps
    return callback


def fit(name, out, **kw):
    model, data, n_iters = model_and_data(name)
    return model.fit(*data, n_iters=n_iters, batch_size=16, out=out, progress=False, log_every=1,
                     checkpoint_every=100, **kw)


@pytest.mark.parametrize("name,k,how", [
    ("egnot", 3, "sigterm"), ("egnot", 5, "ctrl-c"),
    ("uotm", 3, "sigterm"), ("uotm", 4, "ctrl-c"),
    ("sjko", 3, "sigterm"),   # resumed in phase 0, crosses into phase 1
    ("sjko", 4, "ctrl-c"),    # stopped on the phase's last step: resumed at the start of phase 1
    ("wae", 3, "sigterm"), ("wae", 6, "ctrl-c"),
])
def test_a_stopped_and_resumed_run_equals_the_run_never_stopped_bitwise(tmp_path, name, k, how):
    straight = fit(name, tmp_path / "a")
    with pytest.raises(KeyboardInterrupt):
        fit(name, tmp_path / "b", callbacks=[stop_at(k, how)])
    assert otgen.load(tmp_path / "b" / "checkpoints" / "last.pt").step == k
    assert not (tmp_path / "b" / "model.pt").exists()
    resumed = fit(name, tmp_path / "b", resume=True)
    assert resumed.history.resumed_from == k and resumed.step == straight.step == N_ITERS
    a, b = tensors(straight.state_dict()), tensors(resumed.state_dict())
    assert a.keys() == b.keys() and len(a) >= 8
    for key in a:
        assert torch.equal(a[key], b[key]), key
    for key in ("generator", "sample_generator"):
        assert torch.equal(straight.state_dict()[key], resumed.state_dict()[key])
    log = (tmp_path / "b" / "metrics.jsonl").read_text().splitlines()
    assert [int(line.split('"step": ')[1].split(",")[0]) for line in log] == list(range(1, N_ITERS + 1))
    x = _points(9)  # source points; for the WAE latent codes (latent_dim 2), decoded
    gen = lambda: torch.Generator().manual_seed(0)  # noqa: E731
    assert torch.equal(straight.transport(x, rng=gen()), resumed.transport(x, rng=gen()))
