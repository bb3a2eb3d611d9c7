"""UOTM's options (``UOTMOptions``): every option refused by its full path before any work, misspelt
names with a "did you mean", the round trip through plain data, ``from_legacy`` of the first (flat)
layout, and model files of that layout (tests/data/legacy, written by the code before, see
written_by_uotm_sjko.py) giving the same numbers."""

import re
from pathlib import Path

import pytest
import torch

import otgen
from otgen.costs import SquaredEuclidean, ZeroCost
from otgen.solvers.uotm import UOTMOptions, UOTMSolver

LEGACY = Path(__file__).parent / "data" / "legacy"
SMALL = {"name": "mlp", "hidden": [8]}


def test_default_options_as_plain_data():
    """The tree of today's options, as configs and model files store it; the generator's noise_dim is
    resolved (the number of coordinates) as the flat layout stored it."""
    assert UOTMSolver(dim=3).config == {
        "dim": 3, "tau": 1.0, "phi1": {"name": "kl", "alpha": 1.0}, "phi2": {"name": "kl", "alpha": 1.0},
        "event_shape": None, "source_shape": None, "cost": {"name": "sqeuclidean", "reduce": "sum", "scale": None},
        "generator": {"name": "mlp", "noise_dim": 3}, "potential": "mlp",
        "optim_g": {"lr": 1e-4, "betas": [0.5, 0.9], "schedule": "constant", "grad_clip": None, "ema": None},
        "optim_v": {"lr": 1e-4, "betas": [0.5, 0.9], "schedule": "constant", "grad_clip": None, "ema": None},
        "critic": {"r1": 0.0, "n_critic": 1}, "seed": 0, "device": "cpu"}
    assert len(UOTMOptions.option_names()) <= 14


@pytest.mark.parametrize("options", [
    {"dim": 2},
    {"event_shape": [1, 8, 8], "tau": 0.5, "phi1": {"name": "chi", "alpha": 0.5}, "phi2": "softplus",
     "cost": {"reduce": "mean"}, "generator": {"name": "conv", "width": 8, "noise_dim": 4},
     "potential": {"name": "conv", "width": 8}, "optim_g": {"lr": 2e-4, "ema": 0.99, "schedule": "cosine"},
     "optim_v": {"grad_clip": 1.0}, "critic": {"r1": 0.2, "n_critic": 3}, "seed": 4},
])
def test_options_round_trip_through_plain_data(options):
    o = UOTMOptions.from_config(options)
    assert UOTMOptions.from_config(o.to_config()) == o
    model = UOTMSolver(**options)
    assert UOTMOptions.from_config(model.config) == model.options
    assert UOTMSolver(**model.config).config == model.config


BAD = [
    ({"dim": 0}, "model.dim must be an int >= 1, got 0"),
    ({"tau": 0}, "model.tau must be a number > 0, got 0"),
    ({"phi1": "kll"}, "model.phi1 must be one of ['chi', 'kl', 'linear', 'softplus'], got 'kll' (did you mean 'kl'?)"),
    ({"phi2": {"name": "chi", "alpha": -1}}, "model.phi2.alpha must be a number > 0, got -1"),
    ({"phi1": {"name": "kl", "alpa": 2}}, "unknown key model.phi1.alpa for KlConjugate ('kl') (did you mean 'alpha'?)"),
    ({"dim": None, "event_shape": [0, 2]}, "model.event_shape must be a non-empty sequence of positive ints"),
    ({"source_shape": [0]}, "model.source_shape must be a non-empty sequence of positive ints"),
    ({"cost": {"reduce": "max"}}, "model.cost.reduce must be one of ('sum', 'mean'), got 'max'"),
    ({"cost": {"name": "sqeuclidean", "scale": 0}}, "model.cost.scale must be a number > 0, got 0"),
    ({"cost": "sqeuclidan"}, "model.cost must be one of ['sqeuclidean', 'zero'], got 'sqeuclidan' (did you mean"),
    ({"generator": {"name": "mlp", "noise_dim": -1}}, "model.generator.noise_dim must be an int >= 0, got -1"),
    ({"generator": {"name": "mlp", "hiden": [4]}}, "model.generator: unknown key 'hiden' for the generator network "
                                                   "'mlp' (did you mean 'hidden'?)"),
    ({"generator": "mpl"}, "model.generator: generator network must be one of ['conv', 'mlp', 'unet'], got 'mpl' "
                           "(did you mean 'mlp'?)"),
    ({"potential": {"activaton": "relu"}}, "model.potential: unknown key 'activaton' for the potential network 'mlp' "
                                           "(did you mean 'activation'?)"),
    ({"optim_g": {"lr": 0}}, "model.optim_g.lr must be a number > 0, got 0"),
    ({"optim_g": {"betas": [1.0, 0.9]}}, "model.optim_g.betas must be two numbers in [0, 1)"),
    ({"optim_g": {"schedule": "phase_cosine"}}, "model.optim_g.schedule must be one of ('constant', 'cosine')"),
    ({"optim_v": {"grad_clip": 0}}, "model.optim_v.grad_clip must be a number > 0, got 0"),
    ({"optim_g": {"ema": 1.0}}, "model.optim_g.ema must be a number > 0 and < 1, got 1.0"),
    ({"optim_v": {"ema": 0.9}}, "model.optim_v.ema must be None"),
    ({"critic": {"r1": -1}}, "model.critic.r1 must be a number >= 0, got -1"),
    ({"critic": {"n_critic": 0}}, "model.critic.n_critic must be an int >= 1, got 0"),
    ({"critic": {"ncritic": 2}}, "unknown key model.critic.ncritic for Critic (did you mean 'n_critic'?)"),
    ({"seed": -1}, "model.seed must be an int >= 0, got -1"),
    ({"event_shape": [2]}, "give exactly one of model.dim (an int >= 1) and model.event_shape"),
    ({"tau": 0.5, "cost": "zero"}, "model.tau scales the default cost; with model.cost=Zero() leave tau at 1.0"),
    ({"tau": 0.5, "cost": {"scale": 2.0}}, "model.tau scales the default cost"),
    ({"tau": 0.5, "cost": lambda x, y: (x - y).sum(1)}, "model.tau scales the default cost"),
]


@pytest.mark.parametrize("options,message", BAD, ids=[str(i) for i in range(len(BAD))])
def test_every_bad_option_is_refused_by_its_full_path(options, message):
    config = {"dim": 2, **options}
    with pytest.raises(ValueError, match=re.escape(message)):
        UOTMOptions.from_config(config, "model.")
    problems = UOTMOptions.check_all(config, "model.")
    assert len(problems) == 1 and message in problems[0]
    with pytest.raises(ValueError, match=re.escape(message.replace("model.", ""))):
        UOTMSolver(**config)


def test_check_all_reports_every_problem_and_old_keywords_say_where_they_went():
    problems = UOTMOptions.check_all({"dim": 2, "tau": 0, "critic": {"n_critic": 0}, "phi1": "kll", "lr_g": 2})
    assert len(problems) == 4 and problems[0].startswith("unknown key lr_g for UOTM")
    with pytest.raises(ValueError, match=r"lr_g is an option of otgen's first \(flat\) layout; it is now optim_g.lr"):
        UOTMSolver(dim=2, lr_g=1e-3)
    with pytest.raises(ValueError, match=r"unknown key critc for UOTM \(did you mean 'critic'\?\)"):
        UOTMSolver(dim=2, critc={"r1": 1})


def test_cost_option():
    """The sqeuclidean cost takes tau as its scale unless it names its own; a cost object is stored as
    its spec where it has one (so that a model file rebuilds it)."""
    x, y = torch.randn(5, 3), torch.randn(5, 3)
    model = UOTMSolver(dim=3, tau=0.5, cost={"reduce": "mean"})
    assert (model.cost.scale, model.cost.reduce) == (0.5, "mean")
    assert torch.allclose(model.cost(x, y), 0.5 * ((x - y) ** 2).mean(1))
    own = UOTMSolver(dim=3, cost=SquaredEuclidean(0.25, "sum"))
    assert own.config["cost"] == {"name": "sqeuclidean", "reduce": "sum", "scale": 0.25} and own.cost.scale == 0.25
    assert isinstance(UOTMSolver(dim=3, cost="zero").cost, ZeroCost)
    assert UOTMSolver(dim=3, cost=None).config["cost"] == UOTMSolver(dim=3).config["cost"]
    fn = lambda a, b: ((a - b) ** 2).sum(1)  # noqa: E731
    custom = UOTMSolver(dim=3, cost=fn)
    assert custom.config["cost"] == "custom" and torch.equal(custom.cost(x, y), fn(x, y))


def test_generator_noise_and_network_defaults():
    """noise_dim lives in the generator spec (default: the number of coordinates); widths not given are
    the solver's (128, 128, 128) with SiLU for both MLPs."""
    model = UOTMSolver(event_shape=(1, 2, 3))
    assert model.noise_dim == 6 and model.generator_net.noise_shape == (6,)
    widths = [m.out_features for m in model.potential.modules() if isinstance(m, torch.nn.Linear)]
    assert widths == [128, 128, 128, 1]
    model = UOTMSolver(dim=2, generator={"noise_dim": 0, "hidden": [8]}, potential={"hidden": [4, 4]})
    assert model.noise_dim == 0 and model.generator_net.noise_shape == ()
    assert model.config["generator"] == {"name": "mlp", "noise_dim": 0, "hidden": [8]}
    assert [m.out_features for m in model.potential.modules() if isinstance(m, torch.nn.Linear)] == [4, 4, 1]


def test_from_legacy_maps_every_old_option():
    flat = {"dim": 2, "event_shape": None, "source_shape": None, "tau": 0.5, "phi1": "chi", "phi2": "kl",
            "alpha1": 0.5, "alpha2": 1.0, "cost": None, "cost_reduce": "mean", "noise_dim": 1, "generator": None,
            "potential": {"name": "mlp", "hidden": [4]}, "hidden": [8, 8], "activation": "relu", "lr_g": 2e-3,
            "lr_v": 1e-3, "betas": [0.0, 0.99], "grad_clip": 1.0, "r1": 0.1, "n_critic": 2, "ema": 0.9,
            "lr_schedule": "cosine", "seed": 1, "device": "cpu"}
    assert UOTMOptions.from_legacy(flat) == {
        "dim": 2, "event_shape": None, "source_shape": None, "tau": 0.5, "phi1": {"name": "chi", "alpha": 0.5},
        "phi2": "kl", "cost": {"name": "sqeuclidean", "reduce": "mean"},
        "generator": {"name": "mlp", "hidden": [8, 8], "activation": "relu", "noise_dim": 1},
        "potential": {"name": "mlp", "hidden": [4], "activation": "relu"},
        "optim_g": {"lr": 2e-3, "betas": [0.0, 0.99], "grad_clip": 1.0, "schedule": "cosine", "ema": 0.9},
        "optim_v": {"lr": 1e-3, "betas": [0.0, 0.99], "grad_clip": 1.0, "schedule": "cosine"},
        "critic": {"r1": 0.1, "n_critic": 2}, "seed": 1, "device": "cpu"}


def test_from_legacy_keeps_what_the_old_layout_meant():
    """A named sqeuclidean cost of the old layout had make_cost's scale ½; hidden/activation reach
    only the networks whose builder took them from the solver (not a conv generator's hidden, not a
    resnet critic's activation, which it owns); flat keys mixed into today's layout win; a cost_reduce
    beside a given cost is refused as before."""
    assert UOTMOptions.from_legacy({"cost": "sqeuclidean"})["cost"] == {"name": "sqeuclidean", "scale": 0.5}
    assert UOTMOptions.from_legacy({"cost": {"name": "sqeuclidean", "reduce": "mean"}, "optim_g": {"lr": 1.0},
                                    "hidden": [8]})["cost"] == {"name": "sqeuclidean", "reduce": "mean"}
    nets = UOTMOptions.from_legacy({"generator": {"name": "conv", "width": 8}, "potential": "resnet",
                                    "hidden": [8], "activation": "relu"})
    assert nets["generator"] == {"name": "conv", "width": 8, "activation": "relu"} and nets["potential"] == "resnet"
    mixed = UOTMOptions.from_legacy({"dim": 2, "optim_g": {"lr": 1e-3, "ema": 0.9}, "lr_g": 2e-3, "n_critic": 3})
    assert mixed == {"dim": 2, "optim_g": {"lr": 2e-3, "ema": 0.9}, "critic": {"n_critic": 3}}
    with pytest.raises(ValueError, match="cost_reduce"):
        UOTMOptions.from_legacy({"cost": "zero", "cost_reduce": "mean"})


@pytest.mark.parametrize("name", ["uotm_small", "uotm_options"])
def test_a_model_file_of_the_flat_layout_gives_the_same_numbers(name):
    """tests/data/legacy/NAME.pt (format 1, flat options) and what the code before gave for it: from the
    converted options today's UOTM has the same initial weights and the same losses and weights after
    the same steps; from the stored state the same transport and sample."""
    expected = torch.load(LEGACY / "uotm_sjko_expected.pt", weights_only=True)
    blob = torch.load(LEGACY / f"{name}.pt", weights_only=False)
    assert blob["format"] == "otgen-model-1" and "lr_g" in blob["config"]
    want = expected[name]
    model = otgen.UOTM(**UOTMOptions.from_legacy(blob["config"]))
    init = {f"{k}.{p}": v for k in ("generator_net", "potential") for p, v in getattr(model, k).state_dict().items()}
    assert init.keys() == want["init"].keys() and all(torch.equal(init[k], want["init"][k]) for k in init)
    model.prepare(None, None, n_iters=len(want["batches"]))
    for (x, y), losses in zip(want["batches"], want["losses"]):
        got = model.train_step(x, y)
        assert got.keys() == losses.keys() and all(torch.equal(got[k], losses[k]) for k in got)
    trained = model.state_dict()
    for key in ("generator_net", "potential", "ema"):
        if key in blob["state"]:
            assert all(torch.equal(trained[key][k], v) for k, v in blob["state"][key].items()), key

    loaded = otgen.UOTM(**UOTMOptions.from_legacy(blob["config"]))
    loaded.load_state_dict(blob["state"])
    x, g = expected["x"], lambda s: torch.Generator().manual_seed(s)  # noqa: E731
    assert torch.equal(loaded.transport(x, rng=g(3)), want["transport"])
    assert torch.equal(loaded.sample(x, 2, rng=g(4)), want["sample"])
