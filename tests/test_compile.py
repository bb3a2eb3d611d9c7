"""``compile`` (``fit(compile=True)``, ``train.compile``): networks compiled with torch.compile in place.

Ground truth is the eager run: the same seeds give the same parameters up to float rounding (inductor
fuses kernels), the state_dict keys are the eager ones, a model trained compiled saves, loads and
resumes as an eager one. Networks a solver cannot compile (an R1 penalty's double backward) stay
eager with the reason. Inductor compiles C++ on the CPU (seconds per graph): the fast tests use tiny
MLPs and 3 steps; the other solvers' runs are marked slow.
"""

import copy
from pathlib import Path

import pytest
import torch
import torch._dynamo
from torch import nn

import otgen
from otgen import config as cfgmod
from otgen.cli import main
from otgen.nn.compiled import compile_in_place, compile_problem, is_compiled

ROOT = Path(__file__).resolve().parent.parent
UOTM_1D = str(ROOT / "configs" / "uotm_mixture_1d.yaml")

pytestmark = pytest.mark.skipif(compile_problem(torch.device("cpu")) is not None,
                                reason=f"torch.compile cannot run here: {compile_problem(torch.device('cpu'))}")


def graphs_compiled() -> int:
    """Graphs torch.compile has compiled in this process so far (TorchDynamo's own counter)."""
    return torch._dynamo.utils.counters["stats"]["unique_graphs"]


@pytest.fixture(autouse=True)
def fresh_compile_caches():
    """Every test compiles from empty caches (a network's graphs are cached per class of forward)."""
    torch._dynamo.reset()
    yield
    torch._dynamo.reset()


def assert_states_close(a: dict, b: dict, rtol: float = 1e-4, atol: float = 1e-6) -> None:
    """The same keys at every level; floating tensors within tolerance, everything else equal."""
    assert list(a) == list(b)
    for key in a:
        x, y = a[key], b[key]
        if isinstance(x, dict):
            assert_states_close(x, y, rtol, atol)
        elif isinstance(x, list):  # S-JKO's kept phase maps
            assert_states_close(dict(enumerate(x)), dict(enumerate(y)), rtol, atol)
        elif isinstance(x, torch.Tensor) and x.is_floating_point():
            torch.testing.assert_close(x, y, rtol=rtol, atol=atol, msg=lambda m: f"{key}: {m}")
        elif isinstance(x, torch.Tensor):
            assert torch.equal(x, y), key
        else:
            assert x == y, key


MLP8 = {"name": "mlp", "hidden": [8]}  # UOTM's / S-JKO's networks, small


def toy_data(dim: int = 2, n: int = 64):
    g = torch.Generator().manual_seed(1)
    return torch.randn(n, dim, generator=g), torch.randn(n, dim, generator=g) + 2.0


# -- what compile declares: no graph is compiled here -----------------------------------------------
def test_compile_reports_each_network_and_keeps_the_state_keys():
    builders = {
        "UOTM": lambda **kw: otgen.UOTM(dim=2, generator=MLP8, potential=MLP8, optim_g={"ema": 0.9}, **kw),
        "SJKO": lambda **kw: otgen.SJKO(dim=2, n_phases=2, generator=MLP8, potential=MLP8, **kw),
        "EgNOT": lambda **kw: otgen.EgNOT(dim=2, potential={"hidden": [8]}, **kw),
        "WAE": lambda **kw: otgen.WAE(data_shape=[4], latent_dim=2, encoder={"name": "mlp", "hidden": [8]},
                                      decoder={"name": "mlp", "hidden": [8]},
                                      penalty={"name": "gan", "adversary": {"name": "mlp", "hidden": [8]}}, **kw),
    }
    expected = {"UOTM": ["generator_net", "potential"], "SJKO": ["generator_net", "potential"],
                "EgNOT": ["potential"], "WAE": ["encoder", "decoder", "adversary"]}
    for name, build in builders.items():
        eager, model = build(), build()
        assert model.compile_report is None
        report = model.compile()
        assert report == {net: None for net in expected[name]} == model.compile_report
        assert all(is_compiled(m) for m in model.networks().values())
        assert list(model.state_dict()) == list(eager.state_dict())
        for net, module in model.networks().items():
            assert list(module.state_dict()) == list(eager.networks()[net].state_dict())
        assert model.compile() == report  # a second call compiles nothing more
        with pytest.raises(ValueError, match="mode='max-autotune'.*compiled with mode 'default'"):
            model.compile(mode="max-autotune")
    # an R1 penalty differentiates the potential twice: it stays eager, and says why
    for model in (otgen.UOTM(dim=2, generator=MLP8, potential=MLP8, critic={"r1": 0.2}),
                  otgen.SJKO(dim=2, n_phases=2, generator=MLP8, potential=MLP8, critic={"r1": 0.2})):
        report = model.compile()
        assert report["generator_net"] is None and "R1" in report["potential"] and "twice" in report["potential"]
        assert is_compiled(model.generator_net) and not is_compiled(model.potential)
    with pytest.raises(ValueError, match="mode must be one of"):
        otgen.UOTM(dim=2, generator=MLP8, potential=MLP8).compile(mode="fast")
    with pytest.raises(ValueError, match="compile must be True or False, got 'yes'"):
        otgen.UOTM(dim=2, generator=MLP8, potential=MLP8).fit(*toy_data(), n_iters=1, batch_size=8, progress=False, compile="yes")


def test_train_compile_is_a_checked_config_key():
    cfg = cfgmod.load_yaml(UOTM_1D)
    assert cfgmod.validate(cfg)["train"]["compile"] is False
    assert cfgmod.validate(cfgmod.apply_overrides(cfg, ["train.compile=true"]))["train"]["compile"] is True
    with pytest.raises(cfgmod.ConfigError, match=r"train.compile must be of type bool, got 1 \(int\)"):
        cfgmod.validate(cfgmod.apply_overrides(cfg, ["train.compile=1"]))


# -- compiled against eager ----------------------------------------------------------------------
def test_double_backward_through_a_compiled_network_is_unsupported():
    """Why the R1 potentials stay eager; a torch that supports it fails this test (drop the exclusion)."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(2, 8), nn.SiLU(), nn.Linear(8, 1), nn.Flatten(0))  # torch's own modules
    eager = copy.deepcopy(net)
    keys = list(net.state_dict())
    before = graphs_compiled()
    compile_in_place(net)
    assert list(net.state_dict()) == keys and not is_compiled(copy.deepcopy(net))  # copies run eager
    y = torch.randn(5, 2, requires_grad=True)
    v = net(y)
    assert graphs_compiled() > before  # compiled, not silently skipped (torch.nn frames are in Dynamo's skip list)
    (grad,) = torch.autograd.grad(v.sum(), y)  # first order w.r.t. the input (Langevin): fine
    torch.testing.assert_close(grad, torch.autograd.grad(eager(y).sum(), y)[0], rtol=1e-5, atol=1e-7)
    with pytest.raises(RuntimeError, match="double backward|create_graph=False"):  # at the grad or at its backward
        (grad,) = torch.autograd.grad(net(y).sum(), y, create_graph=True)
        grad.pow(2).sum().backward()


def test_uotm_trained_compiled_by_the_cli_equals_eager_and_loads_eager(tmp_path, capsys):
    sets = ["train.n_iters=3", "train.batch_size=16", "model.hidden=[16]", "model.n_critic=1", "eval.n_samples=16"]
    before = graphs_compiled()
    assert main(["train", UOTM_1D, "--out", str(tmp_path), "--threads", "1", "--set", "train.compile=true",
                 *[a for s in sets for a in ("--set", s)]]) == 0
    assert graphs_compiled() > before
    out = capsys.readouterr().out
    assert "train.compile: compiled generator_net, potential with torch.compile" in out and "left eager" not in out
    compiled = otgen.load(tmp_path / "model.pt")
    assert compiled.compile_report is None and not is_compiled(compiled.generator_net)  # loads eager
    # the same run, eager, through the API: the config's model, data and seeds
    cfg = cfgmod.validate(cfgmod.apply_overrides(cfgmod.load_yaml(UOTM_1D), sets))
    *data, _ = cfgmod.build_data(cfg["data"])
    eager = cfgmod.build_model(cfg["model"]).fit(*data, n_iters=3, batch_size=16, seed=cfg["train"]["seed"],
                                                 progress=False)
    assert_states_close(eager.state_dict(), compiled.state_dict())


def test_compiled_uotm_resumes_eager_as_if_never_stopped(tmp_path):
    """2 compiled steps, checkpointed, then 2 eager steps resumed from the checkpoint = 4 eager steps.
    (The shapes of the CLI test above: inductor's cache serves its graphs.)"""
    source, target = toy_data(dim=1)
    mlp = {"name": "mlp", "hidden": [16]}
    build = lambda: otgen.UOTM(dim=1, generator=mlp, potential=mlp, seed=0)  # noqa: E731
    straight = build().fit(source, target, n_iters=4, batch_size=16, progress=False)
    first = build().fit(source, target, n_iters=2, batch_size=16, progress=False, out=tmp_path, checkpoint_every=1,
                        compile=True)
    assert first.compile_report == {"generator_net": None, "potential": None}
    resumed = build().fit(source, target, n_iters=4, batch_size=16, progress=False, out=tmp_path, resume=True)
    assert resumed.step == straight.step == 4
    assert_states_close(straight.state_dict(), resumed.state_dict())
    # the compiled model's sampling: the same numbers as the eager one's, up to rounding
    x = torch.randn(5, 1, generator=torch.Generator().manual_seed(3))
    eager_two = build().fit(source, target, n_iters=2, batch_size=16, progress=False)
    torch.testing.assert_close(first.transport(x, rng=torch.Generator().manual_seed(4)),
                               eager_two.transport(x, rng=torch.Generator().manual_seed(4)),
                               rtol=1e-4, atol=1e-6)


SLOW_SOLVERS = {
    "SJKO": (lambda: otgen.SJKO(dim=2, n_phases=3, generator={"name": "mlp", "hidden": [16, 16]},
                                potential={"name": "mlp", "hidden": [16, 16]}, seed=0), 2),
    "EgNOT-smc": (lambda: otgen.EgNOT(dim=2, potential={"hidden": [16, 16]}, seed=0, sampler={
        "sample_steps": 5, "chains": {"name": "persistent", "pool_size": 32, "refresh_every": 2,
                                      "refresh_steps": 5}}), 2),
    # softplus: no closed-form input gradient, so the Langevin moves differentiate the compiled forward
    "EgNOT-langevin": (lambda: otgen.EgNOT(dim=2, potential={"hidden": [16, 16], "activation": "softplus"}, seed=0,
                                           sampler={"name": "langevin", "steps": 3, "sample_steps": 5}), 2),
    "WAE-mmd": (lambda: otgen.WAE(data_shape=[4], latent_dim=2, encoder={"name": "mlp", "hidden": [16, 16]},
                                  decoder={"name": "mlp", "hidden": [16, 16]}, seed=0), 1),
    "WAE-gan": (lambda: otgen.WAE(data_shape=[4], latent_dim=2, encoder={"name": "mlp", "hidden": [16, 16]},
                                  decoder={"name": "mlp", "hidden": [16, 16]},
                                  penalty={"name": "gan", "adversary": {"name": "mlp", "hidden": [16]}}, seed=0), 1),
}


@pytest.mark.slow
@pytest.mark.parametrize("name", list(SLOW_SOLVERS))
def test_every_solver_trains_compiled_like_eager(name):
    build, sides = SLOW_SOLVERS[name]
    data = toy_data(4 if name.startswith("WAE") else 2)[:sides]
    eager = build().fit(*data, n_iters=3, batch_size=16, progress=False)
    before = graphs_compiled()
    compiled = build().fit(*data, n_iters=3, batch_size=16, progress=False, compile=True)
    assert graphs_compiled() > before
    assert all(why is None for why in compiled.compile_report.values())
    assert_states_close(eager.state_dict(), compiled.state_dict())
    fresh = build()
    fresh.load_state_dict(compiled.state_dict())  # into an eager model
    assert_states_close(fresh.state_dict(), compiled.state_dict(), rtol=0, atol=0)
    if name == "SJKO":  # the kept phase maps (copies of the compiled generator) run eager
        x = data[0][:5]
        assert len(compiled.phase_states) == 3
        torch.testing.assert_close(compiled.transport(x, phase=1), eager.transport(x, phase=1), rtol=1e-4, atol=1e-6)
