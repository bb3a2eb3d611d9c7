"""S-JKO's options (``SJKOOptions``): every option refused by its full path before any work, misspelt
names with a "did you mean", the round trip through plain data, ``from_legacy`` of the first (flat)
layout, and a model file of that layout with 2 phases in memory (tests/data/legacy/sjko_options.pt,
written by the code before, see written_by_uotm_sjko.py) giving the same numbers."""

import re
from pathlib import Path

import pytest
import torch

import otgen
from otgen.costs import GeneratorCost
from otgen.solvers.sjko import SJKOOptions, SJKOSolver

LEGACY = Path(__file__).parent / "data" / "legacy"


def test_default_options_as_plain_data():
    assert SJKOSolver(dim=2).config == {
        "dim": 2, "h": 1.0, "n_phases": 10, "phi": {"name": "kl", "alpha": 1.0}, "event_shape": None,
        "cost": {"name": "sqeuclidean", "reduce": "sum", "scale": None},
        "phases": {"first_iters": None, "keep": "all", "alpha_final": None, "instance_noise": 0.0},
        "generator": {"name": "mlp", "noise_dim": 0}, "potential": "mlp",
        "optim_g": {"lr": 1e-4, "betas": [0.5, 0.9], "schedule": "constant", "grad_clip": None, "ema": None},
        "optim_v": {"lr": 1e-4, "betas": [0.5, 0.9], "schedule": "constant", "grad_clip": None, "ema": None},
        "critic": {"r1": 0.0}, "seed": 0, "device": "cpu"}
    assert len(SJKOOptions.option_names()) <= 14


@pytest.mark.parametrize("options", [
    {"dim": 2, "n_phases": 3},
    {"dim": 2, "h": 0.5, "n_phases": 4, "phi": {"name": "chi", "alpha": 0.5}, "cost": {"reduce": "mean"},
     "phases": {"first_iters": 5, "keep": 2, "alpha_final": 2.0, "instance_noise": 0.1},
     "generator": {"hidden": [8], "noise_dim": 2}, "potential": {"name": "mlp", "hidden": [8]},
     "optim_g": {"lr": 2e-4, "schedule": "phase_cosine"}, "optim_v": {"schedule": "cosine", "grad_clip": 1.0},
     "critic": {"r1": 0.2}, "seed": 4},
])
def test_options_round_trip_through_plain_data(options):
    o = SJKOOptions.from_config(options)
    assert SJKOOptions.from_config(o.to_config()) == o
    model = SJKOSolver(**options)
    assert SJKOOptions.from_config(model.config) == model.options
    assert SJKOSolver(**model.config).config == model.config


BAD = [
    ({"h": 0}, "model.h must be a number > 0, got 0"),
    ({"n_phases": 0}, "model.n_phases must be an int >= 1, got 0"),
    ({"phi": "kll"}, "model.phi must be one of ['chi', 'kl', 'linear', 'softplus'], got 'kll' (did you mean 'kl'?)"),
    ({"phi": {"name": "kl", "alpha": 0}}, "model.phi.alpha must be a number > 0, got 0"),
    ({"dim": None, "event_shape": [2, 0]}, "model.event_shape must be a non-empty sequence of positive ints"),
    ({"cost": {"reduce": "median"}}, "model.cost.reduce must be one of ('sum', 'mean'), got 'median'"),
    ({"cost": {"name": "zeros"}}, "model.cost must be one of ['sqeuclidean', 'zero'], got 'zeros' (did you mean"),
    ({"phases": {"first_iters": 0}}, "model.phases.first_iters must be an int >= 1, got 0"),
    ({"phases": {"keep": 0}}, "model.phases.keep must be 'all' or an int >= 1"),
    ({"phases": {"alpha_final": 0}}, "model.phases.alpha_final must be a number > 0, got 0"),
    ({"phases": {"instance_noise": -1}}, "model.phases.instance_noise must be a number >= 0, got -1"),
    ({"phases": {"keepp": 2}}, "unknown key model.phases.keepp for Phases (did you mean 'keep'?)"),
    ({"generator": {"noise_dim": -2}}, "model.generator.noise_dim must be an int >= 0, got -2"),
    ({"generator": "unett"}, "model.generator: generator network must be one of ['conv', 'mlp', 'unet'], got 'unett' "
                             "(did you mean 'unet'?)"),
    ({"potential": "resnt"}, "(did you mean 'resnet'?)"),
    ({"optim_g": {"lr": -1}}, "model.optim_g.lr must be a number > 0, got -1"),
    ({"optim_v": {"ema": 0.9}}, "model.optim_v.ema must be None"),
    ({"optim_v": {"schedule": "steps"}},
     "model.optim_v.schedule must be one of ('constant', 'cosine', 'phase_cosine')"),
    ({"critic": {"r1": -0.5}}, "model.critic.r1 must be a number >= 0, got -0.5"),
    ({"critic": {"n_critic": 2}}, "unknown key model.critic.n_critic for JKOCritic; accepted: ['r1'] (S-JKO updates "
                                  "the potential once per generator update: it has no n_critic)"),
    ({"seed": 1.5}, "model.seed must be an int"),
    ({"dim": None}, "give exactly one of model.dim (an int >= 1) and model.event_shape"),
]


@pytest.mark.parametrize("options,message", BAD, ids=[str(i) for i in range(len(BAD))])
def test_every_bad_option_is_refused_by_its_full_path(options, message):
    config = {"dim": 2, **options}
    with pytest.raises(ValueError, match=re.escape(message)):
        SJKOOptions.from_config(config, "model.")
    problems = SJKOOptions.check_all(config, "model.")
    assert len(problems) == 1 and message in problems[0]
    with pytest.raises(ValueError, match=re.escape(message.replace("model.", ""))):
        SJKOSolver(**config)


def test_old_keywords_and_a_generator_cost_are_refused_by_name():
    with pytest.raises(ValueError, match=r"first_phase_iters is an option of otgen's first \(flat\) layout; it is now "
                                         r"phases.first_iters"):
        SJKOSolver(dim=2, first_phase_iters=3)
    with pytest.raises(ValueError, match="cost: a GeneratorCost compares two different spaces"):
        SJKOSolver(dim=2, cost=GeneratorCost(torch.nn.Linear(2, 2)))


def test_the_cost_and_the_phase_options_reach_the_solver():
    model = SJKOSolver(dim=2, h=2.0, n_phases=3, cost={"reduce": "mean"}, phi={"name": "chi", "alpha": 2.0},
                       phases={"first_iters": 4, "keep": 1, "alpha_final": 4.0, "instance_noise": 0.5})
    x, y = torch.randn(5, 2), torch.randn(5, 2)
    assert torch.allclose(model.cost(x, y), ((x - y) ** 2).mean(1) / 4.0)
    assert (model.first_phase_iters, model.keep_phases, model.instance_noise) == (4, 1, 0.5)
    assert [model.alpha_of(k) for k in range(3)] == [2.0, 3.0, 4.0] and model.phi.name == "chi"
    assert SJKOSolver(dim=2, cost={"scale": 0.125}).cost.scale == 0.125  # its own scale: h only names the step


def test_from_legacy_maps_every_old_option():
    flat = {"dim": 2, "h": 0.5, "n_phases": 4, "phi": "chi", "event_shape": None, "cost": None, "alpha": 0.5,
            "alpha_final": 2.0, "instance_noise": 0.1, "noise_dim": 2, "first_phase_iters": 3,
            "lr_schedule": "phase_cosine", "keep_phases": 2, "generator": None, "potential": None, "hidden": [8, 8],
            "activation": "silu", "lr_g": 1e-3, "lr_v": 2e-3, "betas": [0.5, 0.99], "grad_clip": None, "r1": 0.1,
            "seed": 2, "device": "cpu"}
    assert SJKOOptions.from_legacy(flat) == {
        "dim": 2, "h": 0.5, "n_phases": 4, "phi": {"name": "chi", "alpha": 0.5}, "event_shape": None,
        "phases": {"first_iters": 3, "keep": 2, "alpha_final": 2.0, "instance_noise": 0.1},
        "generator": {"name": "mlp", "hidden": [8, 8], "noise_dim": 2}, "potential": {"name": "mlp", "hidden": [8, 8]},
        "optim_g": {"lr": 1e-3, "betas": [0.5, 0.99], "grad_clip": None, "schedule": "phase_cosine"},
        "optim_v": {"lr": 2e-3, "betas": [0.5, 0.99], "grad_clip": None, "schedule": "phase_cosine"},
        "critic": {"r1": 0.1}, "seed": 2, "device": "cpu"}
    # a named sqeuclidean cost of the old layout had make_cost's scale ½, not 1/(2h)
    assert SJKOOptions.from_legacy({"cost": {"name": "sqeuclidean"}})["cost"] == {"name": "sqeuclidean", "scale": 0.5}


def test_a_model_file_of_the_flat_layout_with_two_phases_gives_the_same_numbers():
    """tests/data/legacy/sjko_options.pt (format 1: flat options; 2 phases of 3 + 2 steps trained
    without a run directory, so both phases' weights are in the file) and what the code before gave:
    today's S-JKO from the converted options has the same initial weights, losses and phase weights;
    from the stored state the same transport of every phase and the same samples."""
    expected = torch.load(LEGACY / "uotm_sjko_expected.pt", weights_only=True)
    blob = torch.load(LEGACY / "sjko_options.pt", weights_only=False)
    assert blob["format"] == "otgen-model-1" and blob["config"]["n_phases"] == 2
    want = expected["sjko_options"]
    model = otgen.SJKO(**SJKOOptions.from_legacy(blob["config"]))
    init = {f"{k}.{p}": v for k in ("generator_net", "potential") for p, v in getattr(model, k).state_dict().items()}
    assert init.keys() == want["init"].keys() and all(torch.equal(init[k], want["init"][k]) for k in init)
    model.prepare(None, None, n_iters=len(want["batches"]))
    for (x, y), losses in zip(want["batches"], want["losses"]):
        got = model.train_step(x, y)
        assert got.keys() == losses.keys() and all(torch.equal(torch.as_tensor(got[k]), losses[k]) for k in got)
    assert model.phases_trained == 2
    for k, state in enumerate(blob["state"]["phase_states"]):
        assert all(torch.equal(model.phase_states[k][p], v) for p, v in state.items()), k

    loaded = otgen.SJKO(**SJKOOptions.from_legacy(blob["config"]))
    loaded.load_state_dict(blob["state"])
    x, g = expected["x"], lambda s: torch.Generator().manual_seed(s)  # noqa: E731
    assert loaded.phases_trained == 2
    for k in range(2):
        assert torch.equal(loaded.transport(x, phase=k, rng=g(3)), want["phases"][k]), k
    assert torch.equal(loaded.transport(x, rng=g(3)), want["transport"])
    assert torch.equal(loaded.sample(x, 2, rng=g(4)), want["sample"])
