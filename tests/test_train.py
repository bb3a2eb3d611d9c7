"""The training loop: resume, atomic checkpoints, the NaN/Inf guard, and bad input."""

import json
import math

import pytest
import torch

import otgen
from otgen import io
from otgen.distributions import Gaussian
from otgen.train import TrainingDiverged


def small_sampler(name="smc", chains="persistent", **chain_options):
    """A short sampler: 3 steps per iteration, 5 per draw, 64 pool points or replay pairs."""
    size = {"persistent": {"pool_size": 64}, "replay": {"size": 64}}.get(chains, {})
    return {"name": name, "steps": 3, "sample_steps": 5, "chains": {"name": chains, **size, **chain_options}}


def small_model(**kw):
    args = dict(dim=2, eps=0.5, potential={"hidden": [16, 16]}, sampler=small_sampler(), seed=0)
    return otgen.EgNOT(**{**args, **kw})


SOURCE = Gaussian.standard(2)
TARGET = Gaussian([1.0, 0.0], [[0.5, 0.0], [0.0, 0.5]])


def weights(model):
    return torch.cat([p.detach().flatten() for p in model.potential.parameters()])


@pytest.mark.parametrize("sampler, chains", [("langevin", "replay"), ("langevin", "persistent"), ("smc", "persistent"),
                                             ("smc", "fresh")])
def test_resume_continues_exactly_as_if_never_stopped(tmp_path, sampler, chains, ctrl_c_after):
    kw = dict(batch_size=32, progress=False, checkpoint_every=4, log_every=4)
    refresh = dict(refresh_every=5, refresh_steps=8) if (sampler, chains) == ("smc", "persistent") else {}
    model = lambda: small_model(sampler=small_sampler(sampler, chains, **refresh),  # noqa: E731
                                optim={"schedule": "cosine", "ema": 0.9})
    straight = model().fit(SOURCE, TARGET, n_iters=12, out=tmp_path / "a", **kw)

    with pytest.raises(KeyboardInterrupt):
        model().fit(SOURCE, TARGET, n_iters=12, out=tmp_path / "b", callbacks=[ctrl_c_after(7)], **kw)
    assert otgen.load(tmp_path / "b" / "checkpoints" / "last.pt").step == 7  # checkpointed where it stopped
    resumed = model().fit(SOURCE, TARGET, n_iters=12, out=tmp_path / "b", resume=True, **kw)
    assert resumed.step == 12
    assert torch.equal(weights(straight), weights(resumed))

    def logged(run):
        return [json.loads(line) for line in (tmp_path / run / "metrics.jsonl").read_text().splitlines()]

    a, b = logged("a"), logged("b")
    assert [r["step"] for r in a] == [r["step"] for r in b] == [4, 8, 12]
    # records average the steps since the previous one: the interval cut by the interruption differs
    assert a[0]["loss"] == b[0]["loss"] and a[2]["loss"] == b[2]["loss"]


def test_sampling_during_training_does_not_change_the_training_run():
    plain = small_model().fit(SOURCE, TARGET, n_iters=6, batch_size=16, progress=False)
    peek = lambda step, solver, metrics: solver.sample(torch.randn(3, 2), 2) is None  # noqa: E731
    watched = small_model().fit(SOURCE, TARGET, n_iters=6, batch_size=16, progress=False, callbacks=[peek])
    assert torch.equal(weights(plain), weights(watched))


def test_run_directory_is_never_overwritten_without_resume(tmp_path):
    small_model().fit(SOURCE, TARGET, n_iters=2, batch_size=8, out=tmp_path, progress=False)
    before = (tmp_path / "checkpoints" / "last.pt").read_bytes()
    with pytest.raises(ValueError, match="already holds a run"):
        small_model().fit(SOURCE, TARGET, n_iters=2, batch_size=8, out=tmp_path, progress=False)
    assert (tmp_path / "checkpoints" / "last.pt").read_bytes() == before


def test_save_load_roundtrip_gives_the_same_samples(tmp_path):
    m = small_model().fit(SOURCE, TARGET, n_iters=5, batch_size=16, progress=False)
    m.save(tmp_path / "m.pt")
    m2 = otgen.load(tmp_path / "m.pt")
    x = torch.randn(4, 2)
    g1, g2 = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    assert torch.equal(m.sample(x, 3, rng=g1), m2.sample(x, 3, rng=g2))
    assert m2.config == m.config


def test_interrupted_write_leaves_the_previous_file_intact(tmp_path, monkeypatch):
    path = tmp_path / "model.pt"
    small_model().save(path)
    before = path.read_bytes()

    def broken(f):
        f.write(b"partial")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        io.atomic_write(path, broken)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["model.pt"]  # no temporary file left behind


def test_divergence_stops_with_a_message_and_keeps_the_last_good_checkpoint(tmp_path):
    m = small_model()
    m.fit(SOURCE, TARGET, n_iters=4, batch_size=16, out=tmp_path, progress=False, checkpoint_every=2)
    good = weights(m).clone()

    def poison(step, solver, metrics):  # corrupt the weights as a diverging update would
        if step == 6:
            with torch.no_grad():
                next(solver.potential.parameters()).fill_(float("nan"))
        return None

    # step 6 leaves NaN weights: its checkpoint is refused and the run stops there
    with pytest.raises(TrainingDiverged, match="diverged at step 6: model state=NaN/Inf.*last good checkpoint \\(step 4\\)"):
        m.fit(SOURCE, TARGET, n_iters=20, batch_size=16, out=tmp_path, resume=True, progress=False,
              checkpoint_every=2, callbacks=[poison])
    saved = otgen.load(tmp_path / "checkpoints" / "last.pt")
    assert all(torch.isfinite(p).all() for p in saved.potential.parameters())
    assert torch.isfinite(weights(m)).all()  # the last good state was reloaded into the model
    assert saved.step == 4 and torch.equal(weights(saved), good)


@pytest.mark.parametrize("kwargs, match", [
    (dict(eps=0.0), "eps must be"),
    (dict(eps=-1.0), "eps must be"),
    (dict(eps=float("inf")), "eps must be"),
    (dict(optim={"lr": 0}), r"optim\.lr must be"),
    (dict(sampler={"name": "smc", "steps": 0}), r"sampler\.steps"),
    (dict(sampler={"name": "smc", "chains": "forever"}), r"sampler\.chains must be one of"),
    (dict(potential={"hidden": [0]}), "hidden"),
])
def test_bad_model_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        small_model(**kwargs)


def test_bad_fit_arguments_raise_before_any_training(tmp_path):
    m = small_model()
    with pytest.raises(ValueError, match="n_iters must be an int >= 1"):
        m.fit(SOURCE, TARGET, n_iters=0, batch_size=8)
    with pytest.raises(ValueError, match="batch_size"):
        m.fit(SOURCE, TARGET, n_iters=1, batch_size=0)
    with pytest.raises(ValueError, match="target samples have shape \\(3,\\).*event_shape \\(2,\\)"):
        m.fit(SOURCE, Gaussian.standard(3), n_iters=1, batch_size=8)
    with pytest.raises(ValueError, match="source samples have shape"):
        m.fit(torch.randn(50, 5), TARGET, n_iters=1, batch_size=8)
    bad = torch.randn(100, 2)
    bad[17, 1] = math.nan
    with pytest.raises(ValueError, match="target contains NaN or Inf"):
        m.fit(SOURCE, bad, n_iters=1, batch_size=8)
    with pytest.raises(ValueError, match="source contains NaN or Inf"):
        m.fit(lambda n: torch.full((n, 2), math.inf), TARGET, n_iters=1, batch_size=8)
    assert m.step == 0  # nothing ran
    with pytest.raises(ValueError, match="give exactly one of dim"):
        otgen.EgNOT(eps=1.0)


def test_nan_in_a_later_batch_is_caught_with_the_step(tmp_path):
    calls = {"n": 0}

    def source(n):
        calls["n"] += 1
        x = torch.randn(n, 2)
        if calls["n"] == 4:
            x[0, 0] = math.nan
        return x

    with pytest.raises(ValueError, match="source contains NaN or Inf .*step 3"):
        small_model(sampler=small_sampler("smc", "fresh")).fit(source, TARGET, n_iters=10, batch_size=8,
                                                               progress=False)


def test_bf16_autocast_runs_the_steps_in_bfloat16_and_keeps_float32_weights():
    from otgen.distributions import digits

    data = digits(size=8, split="train")
    runs = {}
    for precision in ("fp32", "bf16"):
        model = otgen.WAE(data_shape=(1, 8, 8), latent_dim=4, encoder={"name": "conv", "width": 8},
                          decoder={"name": "conv", "width": 8}, seed=0)
        seen = []
        conv = next(m for m in model.encoder.modules() if isinstance(m, torch.nn.Conv2d))
        conv.register_forward_hook(lambda mod, inp, out: seen.append(out.dtype))
        model.fit(data, n_iters=10, batch_size=32, progress=False, log_every=10, precision=precision)
        runs[precision] = model.history.metrics["rec"]
        # the 10 steps' encoder calls (after them, the latent sampler encodes the training data in float32)
        assert len(seen) > 10 and set(seen[:10]) == {torch.bfloat16 if precision == "bf16" else torch.float32}
        assert all(p.dtype == torch.float32 for p in model.encoder.parameters())
    assert runs["bf16"] == pytest.approx(runs["fp32"], rel=0.02)  # bfloat16 rounding, the same training
    with pytest.raises(ValueError, match="precision must be one of"):
        small_model().fit(SOURCE, TARGET, n_iters=1, precision="fp16", progress=False)


def test_resuming_a_run_written_before_a_default_changed_names_the_setting(tmp_path):
    """A checkpoint of the first format without refresh_every was trained without the refresh (the
    default then): resuming it with today's default must not switch it on silently."""
    kw = dict(batch_size=16, progress=False, checkpoint_every=2)
    small_model().fit(SOURCE, TARGET, n_iters=2, out=tmp_path, **kw)
    path = tmp_path / "checkpoints" / "last.pt"
    blob = torch.load(path, weights_only=True)
    blob["model"]["format"] = "otgen-model-1"  # the flat options of the first format, without refresh_every
    blob["model"]["config"] = dict(dim=2, eps=0.5, event_shape=None, source_shape=None, hidden=[16, 16],
                                   sampler="smc", langevin_steps=3, sample_steps=5, buffer_size=64, seed=0)
    torch.save(blob, path)
    with pytest.raises(ValueError, match=r"trained with sampler=.*'refresh_every': 0"):
        small_model().fit(SOURCE, TARGET, n_iters=4, out=tmp_path, resume=True, **kw)
    resumed = small_model(sampler=small_sampler(refresh_every=0)).fit(SOURCE, TARGET, n_iters=4, out=tmp_path,
                                                                      resume=True, **kw)
    assert resumed.step == 4
