"""The solver core: one declared optimisation path, networks by name or by module, one cost object,
one-sided data, solver hooks, one option spec per solver, one registry, and files of otgen 0.1."""

import inspect
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from torch import nn

import otgen
from otgen import config as cfgmod
from otgen.costs import CallableCost, GeneratorCost, SquaredEuclidean
from otgen.distributions import Gaussian
from otgen.models import SOLVERS, get_solver
from otgen.nn import registry
from otgen.schema import Number
from otgen.spec import Spec, option
from otgen.solvers.base import Solver
from otgen.train import Trainable

DATA = Path(__file__).parent / "data" / "legacy_v1"
SOURCE, TARGET = Gaussian.standard(2), Gaussian([1.0, 0.0], [[0.5, 0.0], [0.0, 0.5]])
SMALL = {
    "EgNOT": dict(dim=2, eps=0.5, potential={"hidden": [8, 8]},
                  sampler={"steps": 2, "sample_steps": 3, "chains": {"pool_size": 16}}),
    "UOTM": dict(dim=2, tau=0.5, generator={"name": "mlp", "hidden": [8, 8]},
                 potential={"name": "mlp", "hidden": [8, 8]}),
    "SJKO": dict(dim=2, h=0.5, n_phases=2, generator={"name": "mlp", "hidden": [8, 8]},
                 potential={"name": "mlp", "hidden": [8, 8]}),
}
g = lambda: torch.Generator().manual_seed(3)  # noqa: E731


def fitted(name, n_iters=4, **kw):
    return get_solver(name)(**{**SMALL[name], **kw}).fit(SOURCE, TARGET, n_iters=n_iters, batch_size=8,
                                                          progress=False)


# ----------------------------------------------------------------------------- files of otgen 0.1


@pytest.mark.parametrize("name", ["egnot", "uotm", "sjko"])
def test_model_files_written_before_the_core_change_load_and_give_the_same_outputs(name):
    """tests/data/legacy_v1 holds models saved by commit 274dc4a (4 steps each) and their transports
    of fixed points with a fixed generator; they load unchanged (the UOTM / S-JKO potential was then a
    ScalarNet, whose weights map onto today's ScalarMLP)."""
    expected = torch.load(DATA / "expected.pt", weights_only=True)
    model = otgen.load(DATA / f"{name}.pt")
    assert model.step == (8 if name == "sjko" else 4)  # S-JKO: 4 per phase, 2 phases
    assert torch.equal(model.transport(expected["x"], rng=g()), expected[name])
    if name == "sjko":
        assert torch.equal(model.transport(expected["x"], phase=0, rng=g()), expected["sjko_phase0"])


# ----------------------------------------------------------------------------- schema and registry


@pytest.mark.parametrize("name", ["EgNOT", "UOTM", "SJKO"])
def test_each_schema_covers_exactly_the_constructor_arguments(name):
    cls = get_solver(name)
    params = [p for p in inspect.signature(cls.__init__).parameters if p != "self"]
    assert cls.Options.option_names() == params


@pytest.mark.parametrize("name", ["EgNOT", "UOTM", "SJKO"])
def test_saved_config_rebuilds_the_same_model(name, tmp_path):
    model = fitted(name)
    model.save(tmp_path / "m.pt")
    loaded = otgen.load(tmp_path / "m.pt")
    assert loaded.config == model.config
    x = torch.randn(5, 2)
    assert torch.equal(loaded.transport(x, rng=g()), model.transport(x, rng=g()))


def test_unknown_keys_get_a_did_you_mean_in_configs_and_files(tmp_path):
    cfg = cfgmod.load_yaml(Path(__file__).parent.parent / "configs" / "uotm_outliers.yaml")
    with pytest.raises(cfgmod.ConfigError, match=r"unknown key model.critc for UOTM\w* \(did you mean 'critic'\?\)"):
        cfgmod.validate(cfgmod.apply_overrides(cfg, ["model.critc={r1: 0.1}"]))
    with pytest.raises(cfgmod.ConfigError, match=r"unknown key train.n_iter .*did you mean 'n_iters'"):
        cfgmod.validate(cfgmod.apply_overrides(cfg, ["train.n_iter=5"]))
    with pytest.raises(ValueError, match=r"unknown model 'UOMT' \(did you mean 'UOTM'\?\)"):
        get_solver("UOMT")
    with pytest.raises(ValueError, match="unknown key potentail"):
        otgen.models.from_config("EgNOT", {"dim": 2, "potentail": "mlp"})


def test_a_learning_rate_written_1e_3_is_a_float_in_files_and_in_set(tmp_path):
    # PyYAML reads 1e-3 (no dot) as a string, which no float option takes; configs read it as 0.001
    path = tmp_path / "c.yaml"
    path.write_text("model: {name: UOTM, dim: 2, optim_g: {lr: 5e-5}, optim_v: {lr: 2E-4}}\n"
                    "data: {source: {name: normal, dim: 2}, target: {name: normal, dim: 2}}\n"
                    "train: {n_iters: 10, batch_size: 8}\n")
    cfg = cfgmod.load_yaml(path)
    assert cfg["model"]["optim_g"]["lr"] == 5e-5 and cfg["model"]["optim_v"]["lr"] == 2e-4
    cfg = cfgmod.apply_overrides(cfg, ["model.optim_g.lr=1e-3", "model.phi1=kl", "train.seed=7"])
    assert cfg["model"]["optim_g"]["lr"] == 1e-3 and cfg["model"]["phi1"] == "kl" and cfg["train"]["seed"] == 7
    model = cfgmod.build_model(cfgmod.validate(cfg)["model"])
    assert model.options.optim_g.lr == 1e-3 and model.options.optim_v.lr == 2e-4
    # an exponent makes a float, never an int: train.n_iters = 1e3 is refused by its type, by name
    with pytest.raises(cfgmod.ConfigError, match=r"train.n_iters must be an int >= 1, got 1000.0"):
        cfgmod.validate(cfgmod.apply_overrides(cfgmod.load_yaml(path), ["train.n_iters=1e3"]))


def test_a_key_given_twice_in_a_config_is_refused_with_its_lines(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("eval:\n  seed: 0\n  temperature: 0.25\n  temperature: 1.0\n")
    with pytest.raises(cfgmod.ConfigError, match=r"c.yaml, line 4, column 3: invalid YAML: the key "
                                                 r"'temperature' is given twice in one mapping \(first on line 3\)"):
        cfgmod.load_yaml(path)
    # the same key in two mappings is two keys; every shipped config loads
    path.write_text("model: {seed: 1}\ntrain: {seed: 1}\n")
    assert cfgmod.load_yaml(path) == {"model": {"seed": 1}, "train": {"seed": 1}}
    for config in (Path(__file__).parent.parent / "configs").glob("*.yaml"):
        cfgmod.load_yaml(config)


def test_the_registry_is_case_insensitive_and_serves_every_face():
    assert get_solver("uotm") is get_solver("UOTM") is otgen.UOTM
    assert sorted(cls.name for cls in SOLVERS.values()) == ["EgNOT", "SJKO", "UOTM", "WAE"]


# ----------------------------------------------------------------------------- networks


def test_networks_by_name_are_rebuilt_from_the_stored_config(tmp_path):
    model = fitted("UOTM", generator={"name": "mlp", "hidden": [6], "residual": True},
                   potential={"name": "mlp", "hidden": [5, 5]})
    assert model.generator_net.residual and model.potential.mlp.net[0].out_features == 5
    model.save(tmp_path / "m.pt")
    loaded = otgen.load(tmp_path / "m.pt")  # no module passed: the spec is in the file
    x = torch.randn(4, 2)
    assert torch.equal(loaded.transport(x, rng=g()), model.transport(x, rng=g()))
    with pytest.raises(ValueError, match=r"unknown key 'hiden' for the generator network 'mlp' \(did you mean"):
        otgen.UOTM(dim=2, generator={"name": "mlp", "hiden": [6]})
    with pytest.raises(ValueError, match=r"potential network must be one of \['conv', 'gaussian_mixture', 'mlp', 'resnet', 'vanilla'\]"):
        otgen.EgNOT(dim=2, potential="unet")
    assert registry.names("potential") == ["conv", "gaussian_mixture", "mlp", "resnet", "vanilla"]
    assert registry.names("generator") == ["conv", "mlp", "unet"]
    assert registry.names("encoder") == registry.names("decoder") == ["conv", "linear", "mlp"]


class Quadratic(nn.Module):
    """f(y) = −½ a‖y‖² with one trainable a: a module of the user's own."""

    def __init__(self):
        super().__init__()
        self.a = nn.Parameter(torch.tensor(0.5))

    def forward(self, y):
        return -0.5 * self.a * y.flatten(1).pow(2).sum(1)


def test_a_users_module_is_accepted_and_must_be_passed_again_at_load(tmp_path):
    model = otgen.EgNOT(dim=2, eps=0.5, potential=Quadratic(),
                        sampler={"steps": 2, "sample_steps": 3, "chains": {"pool_size": 16}})
    model.fit(SOURCE, TARGET, n_iters=3, batch_size=8, progress=False)
    model.save(tmp_path / "m.pt")
    with pytest.raises(ValueError, match="custom potential; pass it again"):
        otgen.load(tmp_path / "m.pt")
    loaded = otgen.load(tmp_path / "m.pt", potential=Quadratic())
    assert loaded.potential.a.item() == model.potential.a.item() != 0.5


def test_networks_take_image_shaped_batches_themselves():
    gen = registry.build("generator", "mlp", context={"source_shape": (1, 4, 4), "event_shape": (1, 4, 4),
                                                      "noise_dim": 3}, defaults={"hidden": (8,)})
    assert gen.noise_shape == (3,) and gen(torch.randn(5, 1, 4, 4), torch.randn(5, 3)).shape == (5, 1, 4, 4)
    pot = registry.build("potential", {"name": "mlp", "hidden": [8]}, context={"event_shape": (1, 4, 4)})
    assert pot(torch.randn(5, 1, 4, 4)).shape == (5,)


# ----------------------------------------------------------------------------- one optimisation path


@pytest.mark.parametrize("name", ["EgNOT", "UOTM", "SJKO"])
def test_gradient_clipping_is_one_shared_step_for_every_solver(name):
    """grad_clip is applied by Solver.update: after a step every optimiser's gradient norm is at most
    the bound (without it the norms here are far above it)."""
    def norms(model):
        return [torch.nn.utils.get_total_norm([p.grad for p in o.params if p.grad is not None]).item()
                for o in model._optimizers.values()]

    assert max(norms(fitted(name, n_iters=2))) > 1e-3
    clip = {"optim": {"grad_clip": 1e-3}} if name == "EgNOT" else \
        {"optim_g": {"grad_clip": 1e-3}, "optim_v": {"grad_clip": 1e-3}}
    assert max(norms(fitted(name, n_iters=2, **clip))) <= 1e-3 * (1 + 1e-4)


def test_state_dict_is_built_from_the_declarations():
    model = fitted("UOTM", optim_g={"ema": 0.9})
    assert set(model.state_dict()) == {"generator_net", "potential", "opt_g", "opt_v", "ema", "generator",
                                       "sample_generator", "step", "total_steps"}
    assert set(fitted("SJKO").state_dict()) >= {"phase_states", "iters_per_phase"}  # + the solver's own


# ----------------------------------------------------------------------------- one cost object


def test_the_uot_cost_is_the_shared_cost_object_and_a_users_cost_plugs_in():
    uotm = otgen.UOTM(dim=3, tau=0.5, cost={"name": "sqeuclidean", "reduce": "mean"})
    assert isinstance(uotm.cost, SquaredEuclidean) and (uotm.cost.scale, uotm.cost.reduce) == (0.5, "mean")
    assert otgen.SJKO(dim=2, h=2.0).cost.scale == 0.25  # ‖x − y‖²/(2h)
    # the same cost given as a function trains the same model bit for bit
    default = fitted("UOTM", n_iters=6)
    as_function = fitted("UOTM", n_iters=6, tau=1.0, cost=lambda x, y: 0.5 * ((x - y) ** 2).sum(1))
    assert isinstance(as_function.cost, CallableCost)
    x = torch.randn(5, 2)
    assert torch.equal(default.transport(x, rng=g()), as_function.transport(x, rng=g()))
    with pytest.raises(ValueError, match="tau scales the default cost"):
        otgen.UOTM(dim=2, tau=0.5, cost=lambda x, y: x.sum(1))


def test_a_generator_cost_lets_uotm_map_into_a_latent_space():
    """UOTM with source_shape (2,) and latents z of shape (3,): the cost is measured through a frozen
    linear G: z -> G z in the source space, as EgNOT's latent-space variant."""
    G = nn.Linear(3, 2, bias=False)
    model = otgen.UOTM(event_shape=(3,), source_shape=(2,), cost=GeneratorCost(G),
                       generator={"name": "mlp", "hidden": [8], "noise_dim": 0},
                       potential={"name": "mlp", "hidden": [8]})
    model.fit(SOURCE, Gaussian.standard(3), n_iters=3, batch_size=8, progress=False)
    assert model.transport(torch.randn(4, 2)).shape == (4, 3)


# ----------------------------------------------------------------------------- one-sided data, hooks


@dataclass(frozen=True)
class MeanOptions(Spec):
    dim: int = option(2, Number(integer=True, low=1), "dimension", positional=True)
    lr: float = option(0.5, Number(low=0, low_open=True), "SGD learning rate")
    seed: int = option(0, Number(integer=True, low=0), "seed")


class MeanSolver(Solver):
    """A one-sided toy solver: learns the mean m of its data by SGD on ½‖m − y‖² (data_sides = ("data",))."""

    name = "MeanToy"
    Options = MeanOptions
    data_sides = ("data",)
    shape_names = ("event_shape",)

    def __init__(self, *args, **kwargs):
        self.options = o = MeanOptions(*args, **kwargs)
        super().__init__(seed=o.seed)
        self.event_shape = (o.dim,)
        self.mean = self.add_network("mean", nn.Linear(1, o.dim, bias=False))
        nn.init.zeros_(self.mean.weight)
        self.add_optimizer("opt", torch.optim.SGD(self.mean.parameters(), lr=o.lr), schedule=self.run_cosine)

    def expected_shapes(self):
        return (self.event_shape,)

    def train_step(self, y):
        m = self.mean.weight[:, 0]
        loss = 0.5 * (m - y).pow(2).sum(1).mean()
        self.update("opt", loss)
        self.step += 1
        return {"loss": loss.item()}

    def transport(self, x, *, rng=None, batch_size=None):
        return self.mean.weight[:, 0].detach().expand(x.shape[0], -1)


def test_a_one_sided_solver_trains_resumes_and_loads_through_the_shared_loop(tmp_path, monkeypatch, ctrl_c_after):
    cls = type("MeanToy", (Trainable, MeanSolver), {})
    monkeypatch.setitem(SOLVERS, "meantoy", cls)
    data = Gaussian([3.0, -1.0], [[0.1, 0.0], [0.0, 0.1]])
    kw = dict(n_iters=40, batch_size=64, progress=False, checkpoint_every=5, log_every=5)
    straight = cls().fit(data, out=tmp_path / "a", **kw)  # one data set: no dummy source
    assert torch.allclose(straight.transport(torch.zeros(1, 2))[0], torch.tensor([3.0, -1.0]), atol=0.1)
    with pytest.raises(KeyboardInterrupt):
        cls().fit(data, out=tmp_path / "b", callbacks=[ctrl_c_after(13)], **kw)
    resumed = cls().fit(data, out=tmp_path / "b", resume=True, **kw)
    assert torch.equal(resumed.mean.weight, straight.mean.weight)
    assert torch.equal(otgen.load(tmp_path / "a" / "model.pt").mean.weight, straight.mean.weight)
    with pytest.raises(ValueError, match=r"trains on 1 data set\(s\) \(data\), got 2"):
        cls().fit(data, data, n_iters=2, progress=False)


def test_solver_hooks_say_how_a_run_counts_and_what_it_writes():
    sjko = otgen.SJKO(dim=2, n_phases=3, phases={"first_iters": 10})
    assert sjko.run_steps(4) == 18 and sjko.describe_steps(4) == "4 iterations per phase, 10 in phase 0"
    assert otgen.UOTM(dim=2).run_steps(4) == 4
    trained = fitted("SJKO")
    arrays = trained.run_arrays(torch.randn(6, 2), torch.Generator().manual_seed(1))
    assert arrays["phases"].shape == (2, 6, 2) and torch.equal(arrays["phases"][-1], arrays["y_hat"])
    assert set(fitted("UOTM").run_arrays(torch.randn(6, 2), torch.Generator())) == {"y_hat"}


@pytest.mark.parametrize("name", ["EgNOT", "UOTM", "SJKO"])
def test_sample_and_transport_take_generator_everywhere(name):
    model = fitted(name, **({"generator": {"hidden": [8, 8], "noise_dim": 2}} if name != "EgNOT" else {}))
    x = torch.randn(4, 2)
    assert torch.equal(model.sample(x, 3, rng=g()), model.sample(x, 3, rng=g()))
    assert torch.equal(model.transport(x, rng=g()), model.transport(x, rng=g()))
    assert model.sample(x, 3, rng=g()).shape == (4, 3, 2)


def test_network_specs_and_overrides_are_checked_by_name():
    cfg = cfgmod.load_yaml(Path(__file__).parent.parent / "configs" / "uotm_outliers.yaml")
    with pytest.raises(cfgmod.ConfigError, match=r"model.potential: unknown key 'hiden' .*did you mean 'hidden'"):
        cfgmod.validate(cfgmod.apply_overrides(cfg, ["model.potential={name: mlp, hiden: [8]}"]))
    assert otgen.UOTM(dim=2, generator={"name": "mlp", "noise_dim": 3}).generator_net.noise_shape == (3,)
    with pytest.raises(ValueError, match="generator has no trainable parameters"):
        otgen.UOTM(dim=2, generator=nn.Identity())
    # the bounded quadratic term needs the cost's curvature, however the network is named
    with pytest.raises(ValueError, match="quadratic='full' needs a cost of known curvature"):
        otgen.EgNOT(dim=2, cost="zero", potential={"name": "mlp", "quadratic": "full"})
    assert otgen.EgNOT(dim=2, cost="zero", potential={"name": "mlp", "quadratic": "auto"}).potential.quadratic == "none"


def test_load_names_an_unknown_override(tmp_path):
    fitted("UOTM").save(tmp_path / "m.pt")
    with pytest.raises(ValueError, match=r"unknown key devcie for UOTM\w* \(did you mean 'device'\?\)"):
        otgen.load(tmp_path / "m.pt", devcie="cpu")


def test_sjko_refuses_a_cost_between_two_spaces():
    with pytest.raises(ValueError, match="GeneratorCost compares two different spaces"):
        otgen.SJKO(dim=2, cost=GeneratorCost(nn.Linear(2, 2)))


def test_a_config_in_the_first_flat_layout_is_converted_with_a_warning_that_shows_it_written_anew():
    cfg = cfgmod.load_yaml(Path(__file__).parent.parent / "configs" / "uotm_outliers.yaml")
    flat = cfgmod.apply_overrides(cfg, ["model.lr_g=2.0e-4", "model.hidden=[8]", "model.r1=0.5"])
    with pytest.warns(FutureWarning, match=r"(?s)hidden, lr_g, r1 are options of the flat layout.*optim_g:"):
        out = cfgmod.validate(flat)
    model = cfgmod.build_model(out["model"])
    assert model.options.optim_g.lr == 2.0e-4 and model.options.critic.r1 == 0.5
    assert model.config["generator"]["hidden"] == [8] and model.config["potential"]["hidden"] == [8]
    nested = cfgmod.apply_overrides(cfg, ["model.optim_g.lr=2.0e-4", "model.generator.hidden=[8]",
                                          "model.potential.hidden=[8]", "model.critic.r1=0.5"])
    assert cfgmod.build_model(cfgmod.validate(nested)["model"]).config == model.config
