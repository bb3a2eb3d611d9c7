"""Networks named by import path in a spec or config ("module:attribute"): imported when named, built
with the spec's keywords and the solver's context, stored in the saved config and imported again by
``otgen.load`` (tensors still read with weights_only)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest
import torch
import yaml

import otgen
from otgen.cli import main
from otgen.distributions.images import digits

NETS = textwrap.dedent('''
    import torch
    from torch import nn

    BUILT = []

    class TinyEncoder(nn.Module):
        """A user's encoder: takes the solver's event_shape and out_dim, and a width of its own."""
        def __init__(self, event_shape, out_dim, width=16):
            super().__init__()
            BUILT.append(("encoder", width))
            n = 1
            for s in event_shape:
                n *= s
            self.net = nn.Sequential(nn.Flatten(), nn.Linear(n, width), nn.ReLU(), nn.Linear(width, out_dim))

        def forward(self, x):
            return self.net(x)

    def tiny_decoder(latent_dim, event_shape, **kwargs):
        """A function that returns the module, taking the whole context through **kwargs."""
        n = 1
        for s in event_shape:
            n *= s
        width = kwargs.get("width", 16)
        return nn.Sequential(nn.Linear(latent_dim, width), nn.ReLU(), nn.Linear(width, n), nn.Tanh(),
                             nn.Unflatten(1, tuple(event_shape)))

    class Quadratic(nn.Module):
        """A potential f(y) = -a·|y|^2 for EgNOT."""
        def __init__(self, event_shape, a=0.1):
            super().__init__()
            self.a = nn.Parameter(torch.tensor(float(a)))

        def forward(self, y):
            return -self.a * y.pow(2).flatten(1).sum(1)

    def not_a_module(event_shape):
        return 3
''')


@pytest.fixture
def nets(tmp_path, monkeypatch):
    folder = tmp_path / "userpkg"
    folder.mkdir()
    (folder / "user_nets.py").write_text(NETS)
    monkeypatch.syspath_prepend(str(folder))
    sys.modules.pop("user_nets", None)
    yield folder
    sys.modules.pop("user_nets", None)


ENCODER = {"name": "user_nets:TinyEncoder", "width": 8}
DECODER = {"name": "user_nets:tiny_decoder", "width": 12}


def test_a_network_by_import_path_trains_saves_and_loads(nets, tmp_path):
    model = otgen.WAE((1, 8, 8), 4, encoder=ENCODER, decoder=DECODER)
    assert sys.modules["user_nets"].BUILT == [("encoder", 8)]
    assert model.decoder[0].out_features == 12
    data = digits(size=8, split="train")
    model.fit(data, n_iters=5, batch_size=16, progress=False)
    model.save(tmp_path / "wae.pt")
    back = otgen.load(tmp_path / "wae.pt")
    assert back.config["encoder"] == ENCODER and back.config["decoder"] == DECODER
    x = digits(size=8, split="test").images[:5]
    assert torch.equal(back.reconstruct(x), model.reconstruct(x))
    # another process imports the module again from the stored name (found on PYTHONPATH)
    code = (f"import otgen, torch; m = otgen.load({str(tmp_path / 'wae.pt')!r}); "
            f"print(type(m.encoder).__module__, m.decoder[0].out_features)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={"PYTHONPATH": str(nets), "PATH": "/usr/bin:/bin"})
    assert out.stdout.split() == ["user_nets", "12"]


def test_a_config_names_a_potential_by_import_path(nets, tmp_path):
    """otgen train with an EgNOT potential named in YAML; the run's config keeps the name."""
    cfg = {"model": {"name": "EgNOT", "potential": {"name": "user_nets:Quadratic", "a": 0.05},
                     "sampler": {"name": "langevin", "steps": 2, "sample_steps": 3}},
           "data": {"pair": {"name": "gaussian_eot", "dim": 2, "eps": 0.1, "seed": 0}},
           "train": {"n_iters": 4, "batch_size": 32, "seed": 0},
           "eval": {"n_conditions": 3, "n_per_condition": 10, "n_samples": 50}}
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(cfg))
    assert main(["train", str(path), "--out", str(tmp_path / "run"), "--threads", "1"]) == 0
    saved = yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())
    assert saved["model"]["potential"] == {"name": "user_nets:Quadratic", "a": 0.05}
    model = otgen.load(tmp_path / "run" / "model.pt")
    assert type(model.potential).__name__ == "Quadratic"


@pytest.mark.parametrize("name, message", [
    ("user_nets:Nope", "module 'user_nets' has no attribute 'Nope'"),
    ("no_such_module_xyz:Net", "cannot import 'no_such_module_xyz'"),
    ("bad path:Net", "an import path must read 'package.module:Name'"),
    ("user_nets:not_a_module", "returned int, not a torch.nn.Module"),
])
def test_a_bad_import_path_is_named(nets, name, message):
    with pytest.raises(ValueError, match=message):
        otgen.WAE((1, 8, 8), 4, encoder={"name": name}, decoder=DECODER)


def test_an_unknown_keyword_of_an_imported_network_is_refused(nets):
    with pytest.raises(ValueError, match="unknown key 'widht' for the encoder network 'user_nets:TinyEncoder' "
                                         "\\(did you mean 'width'\\?\\)"):
        otgen.WAE((1, 8, 8), 4, encoder={"name": "user_nets:TinyEncoder", "widht": 3}, decoder=DECODER)
