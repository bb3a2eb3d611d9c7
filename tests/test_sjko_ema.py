"""S-JKO's generator EMA (``optim_g.ema``): one EMA of the generator's weights across the phases, as
the paper's code keeps it; each phase's map T_k is the EMA's weights at the end of phase k (what
``transport(x, phase=k)`` and sampling use), while T_{k−1} in the next phase's cost is the trained
generator's copy. Its resume is bitwise on the CPU and its checkpoints stay O(1) in the phases."""

from __future__ import annotations

import copy

import pytest
import torch

import otgen
from otgen.solvers.sjko import SJKOOptions
from test_sjko_storage import SOURCE, TARGET, Crash, assert_same_state, crash_after, fit, g, model


def ema_model(n_phases=4, decay=0.9):
    return model(n_phases, hidden=(16, 16), optim_g={"lr": 1e-3, "ema": decay})


def test_the_ema_follows_every_generator_step_and_each_phase_keeps_the_ema_weights():
    """An independent EMA, updated by hand after every step of a copy of the generator, equals the
    solver's; the phase store holds the EMA's weights of each phase's end, and transport(phase=k)
    uses them; the T_{k−1} of the cost is the trained generator's copy, not the EMA's."""
    m = ema_model(n_phases=3, decay=0.8)
    m.fit(SOURCE, TARGET, n_iters=4, batch_size=16, progress=False,
          callbacks=[lambda step, solver, metrics: shadows.append(copy.deepcopy(solver.generator_net.state_dict()))])
    assert len(shadows) == 12
    # the EMA starts as the initial weights (the same seed builds the same generator)
    expected = {k: v.clone() for k, v in ema_model(3, 0.8).generator_net.state_dict().items()}
    for step, trained in enumerate(shadows, start=1):
        for k, v in trained.items():
            if v.is_floating_point() and "running" not in k:
                expected[k].lerp_(v, 1 - 0.8)
            else:
                expected[k] = v.clone()
        if step % 4 == 0:
            phase = step // 4 - 1
            stored = m.phase_states[phase]
            assert all(torch.allclose(stored[k], expected[k], atol=1e-6) for k in expected), phase
    x = torch.randn(5, 2)
    net = copy.deepcopy(m.generator_net)
    net.load_state_dict(m.phase_states[1])
    assert torch.equal(m.transport(x, phase=1, rng=g()), net(x, torch.randn(5, 2, generator=g())))
    assert torch.equal(m.transport(x, rng=g()), m.ema.shadow(x, torch.randn(5, 2, generator=g())))
    # the frozen T_k after the last phase: the trained weights of step 12, not the EMA's
    assert all(torch.equal(a, b) for a, b in zip(m.previous.state_dict().values(), shadows[11].values()))
    assert not all(torch.equal(a, b) for a, b in zip(m.previous.state_dict().values(), m.phase_states[2].values()))


shadows: list = []


@pytest.fixture(autouse=True)
def _reset():
    shadows.clear()


def test_a_run_with_the_ema_resumes_bitwise_mid_phase(tmp_path):
    """Phases of 2 steps, checkpoints every 3, a crash after step 7: resumed from step 6 (phase 3, whose
    T_2 is the trained copy from the checkpoint), every tensor equals the uninterrupted run's."""
    kw = dict(per=2, checkpoint_every=3)
    straight = fit(ema_model(6), tmp_path / "a", **kw)
    run = tmp_path / "b"
    with pytest.raises(Crash):
        fit(ema_model(6), run, callbacks=[crash_after(7)], **kw)
    resumed = fit(ema_model(6), run, resume=True, **kw)
    assert resumed.history.resumed_from == 6
    assert_same_state(straight, resumed)
    x = torch.randn(4, 2)
    for k in range(6):
        assert torch.equal(straight.transport(x, phase=k, rng=g()), resumed.transport(x, phase=k, rng=g()))
    back = otgen.load(run / "model.pt")
    assert torch.equal(back.transport(x, rng=g()), straight.transport(x, rng=g()))


def test_checkpoints_with_the_ema_stay_the_same_size_however_many_phases(tmp_path):
    sizes = {}
    for n in (2, 12):
        fit(ema_model(n), tmp_path / str(n), per=2, checkpoint_every=1000)
        sizes[n] = (tmp_path / str(n) / "checkpoints" / "last.pt").stat().st_size
    assert sizes[12] <= 1.02 * sizes[2], sizes


def test_the_default_is_off_and_the_decay_is_checked():
    assert SJKOOptions(dim=2).optim_g.ema is None and model(2).ema is None
    with pytest.raises(ValueError, match="ema"):
        model(2, optim_g={"ema": 1.5})
