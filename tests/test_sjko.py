"""S-JKO: every phase against the exact Gaussian JKO recursion; phases, resume by phase, per-phase
maps, learning-rate schedules, bad input, divergence."""

import math

import pytest
import torch

import otgen
from otgen import metrics
from otgen.distributions import Gaussian
from otgen.bench_maps import JKO_GAP, jko_gaussian_problem, jko_phase_errors
from otgen.groundtruth import jko_gaussian_path
from otgen.train import TrainingDiverged

SOURCE, TARGET = Gaussian.standard(2), Gaussian([1.0, 0.0], [[0.5, 0.0], [0.0, 0.5]])


NET16 = {"name": "mlp", "hidden": [16, 16]}


def small(**kw):
    return otgen.SJKO(**{**dict(dim=2, h=0.5, n_phases=3, generator=NET16, potential=NET16, seed=0), **kw})


GAP = JKO_GAP


def train_jko_check(dim: int, seed: int = 0, first: int = 2000, per: int = 1000, n_phases: int = 3,
                    h: float = 0.5, batch_size: int = 1024, gap: float = GAP, callbacks=()):
    """The settings of the accuracy test (and of benchmarks/sjko_gaussian.py)."""
    m0, S0, mu, Sigma = jko_gaussian_problem(dim, gap)
    net, optim = {"name": "mlp", "hidden": [128, 128]}, {"lr": 5e-4, "schedule": "phase_cosine"}
    model = otgen.SJKO(dim=dim, h=h, n_phases=n_phases, phi="kl", generator=net, potential=net, optim_g=optim,
                       optim_v=optim, phases={"first_iters": first}, seed=seed)
    model.fit(Gaussian(m0, S0), Gaussian(mu, Sigma), n_iters=per, batch_size=batch_size, progress=False,
              callbacks=callbacks)
    return model


def phase_errors(model, dim: int, gap: float = GAP) -> list[float]:
    """BW2-UVP (%) of T_k # mu_0 against the exact JKO iterate mu_{k+1}, for every trained phase k."""
    return jko_phase_errors(model, dim, gap=gap)


# Both run in `make bench` (D = 2 about a minute on one core, D = 8 about two): in the default run
# test_bench's jko-gaussian quick suite scores every phase of a shorter D = 2 run against the same
# recursion.
@pytest.mark.parametrize("dim", [pytest.param(2, marks=pytest.mark.slow), pytest.param(8, marks=pytest.mark.slow)])
def test_every_phase_matches_the_exact_jko_recursion(dim):
    """KL towards N(mu, Sigma), h = 0.5, 3 phases: after each phase T_k # mu_0 is within 2 % BW2-UVP of
    the exact JKO iterate (closed form, groundtruth.jko_gaussian_path). Measured for seeds 0, 1, 2:
    D = 2: 0.83/0.04/0.01, 1.23/0.21/0.07, 0.94/0.15/0.05 %; D = 8: 1.18/0.21/0.05, 0.92/0.16/0.05,
    0.78/0.14/0.04 %. (The sampling floor at 20 000 draws is about 0.02 %.)"""
    errors = phase_errors(train_jko_check(dim), dim)
    assert len(errors) == 3
    assert max(errors) <= 2.0, errors
    # the phases are different problems: T_0 # mu_0 is far from mu_3
    m0, S0, mu, Sigma = jko_gaussian_problem(dim)
    path = jko_gaussian_path(m0, S0, mu, Sigma, 0.5, 3)
    assert metrics.bw2_uvp(Gaussian(*path[1])(20_000), *path[3]) > 10 * max(errors)


def test_fit_counts_iterations_per_phase_and_keeps_every_map():
    model = small().fit(SOURCE, TARGET, n_iters=5, batch_size=16, progress=False)
    assert model.step == 15 and model.iters_per_phase == 5 and len(model.phase_states) == 3
    x = torch.randn(4, 2)
    maps = [model.transport(x, phase=k) for k in range(3)]
    assert torch.equal(maps[-1], model.transport(x))  # the last phase is the current generator
    assert not torch.equal(maps[0], maps[2])
    assert model.sample(x, 3, phase=1).shape == (4, 3, 2)
    with pytest.raises(ValueError, match="phase must be < 3"):
        model.transport(x, phase=3)


def test_phase_zero_moves_from_the_identity_and_later_phases_from_the_previous_map():
    model = small()
    model.prepare(SOURCE, TARGET, n_iters=6)
    assert model.previous is None and model.phase == 0
    for _ in range(2):
        model.train_step(SOURCE(8), TARGET(8))
    assert model.phase == 1 and model.previous is not None
    x = torch.randn(5, 2)
    assert torch.equal(model.previous(x), model.transport(x, phase=0))  # T_{k-1} is the frozen T_0


def test_resume_restarts_in_the_right_phase_at_the_right_step(tmp_path, ctrl_c_after):
    kw = dict(batch_size=16, progress=False, checkpoint_every=2, log_every=2)
    straight = small().fit(SOURCE, TARGET, n_iters=4, out=tmp_path / "a", **kw)
    with pytest.raises(KeyboardInterrupt):
        small().fit(SOURCE, TARGET, n_iters=4, out=tmp_path / "b", callbacks=[ctrl_c_after(6)], **kw)
    stopped = otgen.load(tmp_path / "b" / "checkpoints" / "last.pt")
    assert stopped.step == 6 and stopped.phase == 1 and len(stopped.phase_states) == 1
    resumed = small().fit(SOURCE, TARGET, n_iters=4, out=tmp_path / "b", resume=True, **kw)
    assert resumed.step == 12 and len(resumed.phase_states) == 3
    for a, b in zip(straight.phase_states, resumed.phase_states):
        assert all(torch.equal(a[k], b[k]) for k in a)


def test_alpha_schedule():
    model = small(phi={"name": "kl", "alpha": 1.0}, phases={"alpha_final": 5.0})
    assert [model.alpha_of(k) for k in range(3)] == [1.0, 3.0, 5.0]


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"h": 0.0}, "h must be"),
        ({"h": math.inf}, "h must be"),
        ({"n_phases": 0}, "n_phases"),
        ({"phi": "wasserstein"}, "phi must be one of"),
        ({"phi": {"name": "kl", "alpha": -1.0}}, "phi.alpha must be"),
        ({"phases": {"instance_noise": -0.1}}, "phases.instance_noise must be"),
        ({"optim_v": {"ema": 0.9}}, "optim_v.ema must be None"),
        ({"critic": {"n_critic": 2}}, "unknown key critic.n_critic for JKOCritic"),
    ],
)
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        small(**kwargs)


def test_mismatched_shapes_and_n_iters_are_refused_before_training():
    with pytest.raises(ValueError, match="shape"):
        small().fit(Gaussian.standard(3), TARGET, n_iters=2, progress=False)
    with pytest.raises(ValueError, match="n_iters"):
        small().fit(SOURCE, TARGET, n_iters=0, progress=False)


def test_first_phase_length_and_phase_boundaries():
    model = small(phases={"first_iters": 4})
    model.fit(SOURCE, TARGET, n_iters=2, batch_size=8, progress=False)
    assert model.step == 8 and model.iters_per_phase == 2 and len(model.phase_states) == 3
    assert [model.phase_bounds(k) for k in range(3)] == [(0, 4), (4, 6), (6, 8)]
    with pytest.raises(ValueError, match="phases.first_iters"):
        small(phases={"first_iters": 4}).prepare(SOURCE, TARGET, n_iters=5)  # 4 + a positive multiple of 2 only
    with pytest.raises(ValueError, match="phases.first_iters"):
        small(phases={"first_iters": 0})


@pytest.mark.parametrize("schedule", ["cosine", "phase_cosine"])
def test_learning_rate_schedules(schedule):
    optim = {"lr": 1e-3, "schedule": schedule}
    model = small(optim_g=optim, optim_v=optim)
    model.prepare(SOURCE, TARGET, n_iters=12)  # 3 phases of 4 steps
    seen = []
    for _ in range(12):
        model.train_step(SOURCE(8), TARGET(8))
        seen.append(model.opt_g.param_groups[0]["lr"])
    # the rate used by step s (0-based) is the cosine at s / length: the whole run, or the step's phase
    expected = [1e-3 * 0.5 * (1 + math.cos(math.pi * (s / 12 if schedule == "cosine" else (s % 4) / 4)))
                for s in range(12)]
    assert seen == pytest.approx(expected)
    with pytest.raises(ValueError, match="optim_g.schedule must be one of"):
        small(optim_g={"schedule": "linear"})


def test_training_past_the_last_phase_is_refused():
    model = small()
    model.prepare(SOURCE, TARGET, n_iters=3)
    for _ in range(3):
        model.train_step(SOURCE(8), TARGET(8))
    with pytest.raises(RuntimeError, match="all 3 phases are trained"):
        model.train_step(SOURCE(8), TARGET(8))


def test_a_diverging_potential_stops_and_keeps_the_last_good_checkpoint(tmp_path):
    def poison(step, solver, m):  # a potential that blew up, as an unstable update would leave it
        if step == 5:
            with torch.no_grad():
                next(solver.potential.parameters()).fill_(float("inf"))

    model = small()
    with pytest.raises(TrainingDiverged, match="diverged at step 6.*last good checkpoint \\(step 4\\).*instance noise"):
        model.fit(SOURCE, TARGET, n_iters=4, batch_size=8, out=tmp_path, progress=False, checkpoint_every=2,
                  callbacks=[poison])
    kept = otgen.load(tmp_path / "checkpoints" / "last.pt")
    assert kept.step == 4 and kept.phase == 1 and len(kept.phase_states) == 1
    assert all(torch.isfinite(p).all() for p in kept.potential.parameters())


def test_phase_cosine_restarts_in_every_phase_with_a_longer_phase_zero():
    optim = {"lr": 1e-3, "schedule": "phase_cosine"}
    model = small(optim_g=optim, optim_v=optim, phases={"first_iters": 4})
    model.prepare(SOURCE, TARGET, n_iters=8)  # phases of 4, 2, 2 steps
    seen = []
    for _ in range(8):
        model.train_step(SOURCE(8), TARGET(8))
        seen.append(model.opt_v.param_groups[0]["lr"])
    expected = [1e-3 * 0.5 * (1 + math.cos(math.pi * f)) for f in (0, 1 / 4, 2 / 4, 3 / 4, 0, 1 / 2, 0, 1 / 2)]
    assert seen == pytest.approx(expected)


def test_one_phase_with_first_phase_iters():
    model = small(n_phases=1, phases={"first_iters": 3}).fit(SOURCE, TARGET, n_iters=99, batch_size=8, progress=False)
    assert model.step == 3 and len(model.phase_states) == 1 and model.phase == 1


def test_a_trained_model_keeps_its_phase_length():
    """Fitting again (or resuming) with another n_iters would move the phase boundaries under the maps
    already kept; it is refused by name."""
    model = small().fit(SOURCE, TARGET, n_iters=2, batch_size=8, progress=False)
    with pytest.raises(ValueError, match="n_iters must stay 2 steps per phase"):
        model.fit(SOURCE, TARGET, n_iters=4, batch_size=8, progress=False)
    assert model.step == 6 and len(model.phase_states) == 3  # nothing was trained


def test_resume_is_exact_with_a_longer_phase_zero_and_phase_cosine(tmp_path, ctrl_c_after):
    kw = dict(batch_size=16, progress=False, checkpoint_every=1, log_every=1)
    optim = {"schedule": "phase_cosine"}
    make = lambda: small(phases={"first_iters": 4}, optim_g=optim, optim_v=optim)  # noqa: E731
    straight = make().fit(SOURCE, TARGET, n_iters=2, out=tmp_path / "a", **kw)
    with pytest.raises(KeyboardInterrupt):
        make().fit(SOURCE, TARGET, n_iters=2, out=tmp_path / "b", callbacks=[ctrl_c_after(5)], **kw)
    resumed = make().fit(SOURCE, TARGET, n_iters=2, out=tmp_path / "b", resume=True, **kw)
    assert resumed.step == straight.step == 8
    for a, b in zip(straight.phase_states, resumed.phase_states):
        assert all(torch.equal(a[k], b[k]) for k in a)
