"""One registry mechanism (``otgen.registry.Registry``) with one name rule for every name -> object
registry of otgen: solvers, networks, activations, costs, conjugates, distributions, ground-truth
pairs, benchmark suites and their solvers."""

import ast
import sys
from pathlib import Path

import pytest
import torch

import otgen
from otgen import bench, bench_maps, config, conjugates, costs, distributions, models
from otgen.nn import mlp
from otgen.nn import registry as networks
from otgen.registry import Registry, normalise

torch.set_num_threads(1)


def _colours() -> Registry:
    reg = Registry("colour")
    reg.add("dark_red", "#8b0000")
    reg.register("Navy")("#000080")
    return reg


def test_names_are_found_regardless_of_case_and_dash_or_underscore():
    reg = _colours()
    assert normalise(" Dark-Red ") == "dark_red"
    for name in ("dark_red", "Dark_Red", "DARK-RED", "dark-red"):
        assert name in reg and reg.get(name) == "#8b0000" and reg[name] == "#8b0000"
        assert reg.canonical(name) == "dark_red"  # the name as registered, what files store
    assert reg.canonical("navy") == "Navy" and reg.get("NAVY") == "#000080"
    for near_miss in ("darkred", "dark red", "dark__red", "navy2", ""):
        assert near_miss not in reg
        with pytest.raises(ValueError):
            reg.get(near_miss)
    assert reg.names() == ["dark_red", "Navy"] and list(reg) == reg.names() and len(reg) == 2
    assert reg.items() == [("dark_red", "#8b0000"), ("Navy", "#000080")]
    assert reg.values() == ["#8b0000", "#000080"]


def test_unknown_names_say_did_you_mean_and_list_the_names():
    reg = _colours()
    with pytest.raises(ValueError) as info:
        reg.get("dark_rde")
    assert str(info.value) == "unknown colour 'dark_rde' (did you mean 'dark_red'?); known: ['Navy', 'dark_red']"
    with pytest.raises(ValueError) as info:
        reg.canonical("Navi", where="paint.colour")
    assert str(info.value) == "paint.colour must be one of ['Navy', 'dark_red'], got 'Navi' (did you mean 'Navy'?)"
    with pytest.raises(ValueError) as info:
        reg.get("ultramarine", where="paint.colour")  # nothing close: no guess
    assert str(info.value) == "paint.colour must be one of ['Navy', 'dark_red'], got 'ultramarine'"
    with pytest.raises(ValueError, match=r"paint.colour must be a colour name, one of \['Navy', 'dark_red'\], got 3"):
        reg.get(3, where="paint.colour")
    with pytest.raises(ValueError, match=r"a colour name must be a str, one of \['Navy', 'dark_red'\]; got None"):
        reg.canonical(None)
    assert reg.suggest("NAVVY") == " (did you mean 'Navy'?)" and reg.suggest("zzz") == "" and reg.suggest(1) == ""


def test_a_taken_name_is_refused_but_item_assignment_overrides_on_purpose():
    reg = _colours()
    for taken in ("dark_red", "Dark-Red", "NAVY"):
        with pytest.raises(ValueError, match="a colour named '(dark_red|Navy)' is registered already"):
            reg.add(taken, "#000000")
    with pytest.raises(ValueError, match="a colour named 'Navy' is registered already"):
        reg.register("navy")(object())
    for bad in ("", None, 3):
        with pytest.raises(ValueError, match="a colour name must be a non-empty str"):
            reg.add(bad, "#000000")
    assert reg.get("navy") == "#000080"  # the refused registrations changed nothing
    # dict-style use (pytest's monkeypatch.setitem, scripts): get with a default, replace, delete
    sentinel = object()
    assert reg.get("teal", sentinel) is sentinel and reg.get("NAVY", sentinel) == "#000080"
    reg["navy"] = "#000081"
    assert reg.get("Navy") == "#000081" and len(reg) == 2
    reg["teal"] = "#008080"
    del reg["Teal"]
    assert "teal" not in reg
    with pytest.raises(KeyError):
        del reg["teal"]


def test_every_registry_is_a_registry_and_the_registry_module_imports_only_the_standard_library():
    for reg in (models.SOLVERS, conjugates.REGISTRY, costs.COSTS, mlp.ACTIVATIONS, distributions.DISTRIBUTIONS,
                config.PAIRS, bench.SUITES, bench.EOT_SOLVERS, bench_maps.UOT_SOLVERS, bench_maps.JKO_SOLVERS,
                *networks.NETWORKS.values()):
        assert isinstance(reg, Registry)
    assert set(networks.NETWORKS) == {"potential", "generator", "encoder", "decoder"}
    assert all(isinstance(suite.solvers, Registry) for suite in bench.SUITES.values())
    tree = ast.parse(Path(otgen.registry.__file__).read_text())
    imported = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    imported |= {n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.level == 0}
    assert not any(isinstance(n, ast.ImportFrom) and n.level for n in ast.walk(tree))  # nothing of otgen
    assert imported <= set(sys.stdlib_module_names) | {"__future__"}, imported


def test_valid_names_give_the_same_objects_and_are_stored_as_registered():
    assert models.get_solver("egnot") is models.get_solver("EgNOT") is otgen.EgNOT
    assert models.solver_names() == ["EgNOT", "SJKO", "UOTM", "WAE"]
    assert type(conjugates.make_conjugate("KL", 2.0)) is conjugates.KL and conjugates.make_conjugate("KL", 2.0).alpha == 2.0
    assert conjugates.CONJUGATES == ("linear", "kl", "chi", "softplus")
    assert type(costs.make_cost("Zero")) is costs.ZeroCost
    assert costs.make_cost({"name": "SqEuclidean", "scale": 2.0}).spec() == {"name": "sqeuclidean", "scale": 2.0,
                                                                              "reduce": "sum"}
    assert networks.as_spec("potential", {"name": "MLP", "hidden": [8]}) == {"name": "mlp", "hidden": [8]}
    assert networks.names("encoder") == ["conv", "linear", "mlp"]
    assert mlp.MLP(2, 1, (4,), "SiLU").act == "silu"  # the closed-form slope of the Langevin fast path
    assert isinstance(distributions.make("Swiss-Roll"), distributions.SwissRoll)
    assert distributions.names()[:3] == ["gaussian", "standard_gaussian", "normal"]  # registration order
    assert bench.get_suite("EOT-Mixture") is bench.SUITES["eot-mixture"]
    assert bench.check_solver("UOT-gaussian", "UOTM") == "uotm" and bench.check_solver("eot", "None") is None
    cfg = config.validate({"model": {"name": "egnot", "dim": 2},
                           "data": {"source": {"name": "Standard-Gaussian", "dim": 2}, "target": {"name": "MOONS"}},
                           "train": {"n_iters": 1, "batch_size": 2}})
    assert cfg["model"]["name"] == "EgNOT"
    assert cfg["data"] == {"source": {"name": "standard_gaussian", "dim": 2}, "target": {"name": "moons"}}
    pair = config.validate({"model": {"name": "EgNOT"}, "data": {"pair": {"name": "Gaussian-EOT", "dim": 2, "eps": 1.0}},
                            "train": {"n_iters": 1, "batch_size": 2}})["data"]["pair"]
    assert pair == {"name": "gaussian_eot", "dim": 2, "eps": 1.0}


MISSPELT = [  # (what is looked up, the message it must give)
    ("solver", lambda: models.get_solver("EgNTO"), r"unknown model 'EgNTO' \(did you mean 'EgNOT'\?\)"),
    ("conjugate", lambda: conjugates.make_conjugate("softplu", argument="phi1"),
     r"phi1 must be one of \['chi', 'kl', 'linear', 'softplus'\], got 'softplu' \(did you mean 'softplus'\?\)"),
    ("cost", lambda: costs.make_cost("sqeuclidian"), r"cost must be one of .*got 'sqeuclidian' \(did you mean 'sqeuclidean'"),
    ("cost-spec", lambda: costs.make_cost({"name": "sqeucldean"}), r"a cost mapping must be .*did you mean 'sqeuclidean'"),
    ("network", lambda: networks.check_spec("generator", {"name": "unte"}, "model.generator"),
     r"model.generator: generator network must be one of \['conv', 'mlp', 'unet'\], got 'unte' \(did you mean 'unet'"),
    ("activation", lambda: mlp.activation("silo"), r"activation must be one of .*got 'silo' \(did you mean 'silu'\?\)"),
    ("distribution", lambda: distributions.make("swissroll"), r"unknown distribution 'swissroll' \(did you mean 'swiss_roll'"),
    ("pair", lambda: config.validate({"model": {"name": "EgNOT"}, "data": {"pair": {"name": "mixture_eto"}},
                                      "train": {"n_iters": 1, "batch_size": 2}}),
     r"data.pair.name must be one of \['gaussian_eot', 'mixture_eot'\], got 'mixture_eto' \(did you mean 'mixture_eot'"),
    ("data", lambda: config.validate({"model": {"name": "EgNOT", "dim": 2},
                                      "data": {"source": {"name": "normal", "dim": 2}, "target": {"name": "moosn"}},
                                      "train": {"n_iters": 1, "batch_size": 2}}),
     r"data.target.name must be one of .*got 'moosn' \(did you mean 'moons'"),
    ("model.name", lambda: config.validate({"model": {"name": "UOMT"}, "data": {}, "train": {}}),
     r"model.name must be one of \['EgNOT', 'SJKO', 'UOTM', 'WAE'\], got 'UOMT' \(did you mean 'UOTM'\?\)"),
    ("suite", lambda: bench.get_suite("uot-gausian"), r"suite must be one of .*did you mean 'uot-gaussian'"),
    ("eot-solver", lambda: bench.run_cell(bench.Cell("gaussian", 2, 1.0), "egnto"),
     r"solver must be one of \['egnot', 'egnot_mixture'\] or None, got 'egnto' \(did you mean 'egnot'"),
    ("uot-solver", lambda: bench.check_solver("uot-gaussian", "uotn"),
     r"--solver must be one of \['uotm', 'none'\] for suite 'uot-gaussian', got 'uotn' \(did you mean 'uotm'"),
    ("jko-solver", lambda: bench.check_solver("jko-gaussian", "skjo"),
     r"--solver must be one of \['sjko', 'none'\] for suite 'jko-gaussian', got 'skjo' \(did you mean 'sjko'"),
]


@pytest.mark.parametrize("lookup, message", [m[1:] for m in MISSPELT], ids=[m[0] for m in MISSPELT])
def test_a_misspelt_name_is_refused_with_a_did_you_mean(lookup, message):
    with pytest.raises(ValueError, match=message):
        lookup()
