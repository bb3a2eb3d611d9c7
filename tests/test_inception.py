"""The FID InceptionV3 feature network (otgen.evaluate.inception): shapes, conventions, the weights file's
layout, loading (path, environment variable, hub cache, errors) and equality with pytorch-fid where it
can be imported. Random weights throughout: the real file is never downloaded."""

import math

import numpy as np
import pytest
import torch

from otgen.evaluate import inception
from otgen.evaluate.inception import ENV_VAR, FID_WEIGHTS_URL, WEIGHTS_FILES, FIDInceptionV3, load_inception

torch.set_num_threads(1)


def randomize(model: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Random weights that keep activations O(1) through all 94 conv-BN-ReLU layers, with random BN
    running statistics (not the defaults 0 and 1), so every parameter and buffer matters."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for mod in model.modules():
            if isinstance(mod, torch.nn.Conv2d):
                fan_in = mod.weight[0].numel()
                mod.weight.copy_(torch.randn(mod.weight.shape, generator=g) * math.sqrt(2.0 / fan_in))
            elif isinstance(mod, torch.nn.BatchNorm2d):
                c = mod.num_features
                mod.weight.copy_(0.8 + 0.4 * torch.rand(c, generator=g))
                mod.bias.copy_(0.2 * torch.randn(c, generator=g))
                mod.running_mean.copy_(0.2 * torch.randn(c, generator=g))
                mod.running_var.copy_(0.5 + torch.rand(c, generator=g))
                mod.num_batches_tracked.fill_(123)
            elif isinstance(mod, torch.nn.Linear):
                mod.weight.copy_(0.02 * torch.randn(mod.weight.shape, generator=g))
                mod.bias.copy_(torch.randn(mod.bias.shape, generator=g))
    return model


@pytest.fixture(scope="module")
def net():
    return randomize(FIDInceptionV3(), seed=0)


def images(*shape, seed=1):
    return torch.rand(*shape, generator=torch.Generator().manual_seed(seed)) * 2 - 1


@pytest.fixture
def no_weights(monkeypatch, tmp_path):
    """No env var, and an empty torch hub cache: no weights file anywhere."""
    monkeypatch.delenv(ENV_VAR, raising=False)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    monkeypatch.setattr(torch.hub, "_hub_dir", None)  # in case something called torch.hub.set_dir
    return tmp_path


def test_features_shape_dtype_and_eval_mode(net):
    fresh = FIDInceptionV3()
    assert not fresh.training and not any(p.requires_grad for p in fresh.parameters())
    for shape in [(2, 3, 32, 32), (2, 1, 28, 28), (1, 3, 20, 41)]:
        f = net(images(*shape))
        assert f.shape == (shape[0], 2048) and f.dtype == torch.float32
        assert torch.isfinite(f).all() and f.abs().mean() > 0.1  # the random weights keep features O(1)
    assert net(images(2, 3, 16, 16).double()).dtype == torch.float32
    with pytest.raises(ValueError, match="C in"):
        net(images(2, 2, 16, 16))
    with pytest.raises(ValueError, match="images"):
        net(images(3, 16, 16))


def test_grey_is_rgb_repeated(net):
    grey = images(2, 1, 28, 28)
    assert torch.equal(net(grey), net(grey.repeat(1, 3, 1, 1)))


def test_batch_independence(net):
    x = images(3, 3, 32, 32)
    together = net(x)
    alone = torch.cat([net(x[i:i + 1]) for i in range(3)])
    assert torch.allclose(together, alone, rtol=1e-5, atol=1e-5)
    assert (together[0] - together[1]).abs().max() > 1e-2  # distinct images give distinct features


def test_resize_is_pytorch_fid_bilinear(net):
    """An image already 299×299 is used as it is; a smaller one is resized bilinearly (align_corners=False)."""
    x = images(1, 3, 40, 40)
    up = torch.nn.functional.interpolate(x, size=(299, 299), mode="bilinear", align_corners=False)
    assert torch.equal(net(x), net(up))


def test_state_dict_layout_matches_the_weights_file():
    sd = FIDInceptionV3().state_dict()
    expected = {
        "Conv2d_1a_3x3.conv.weight": (32, 3, 3, 3),
        "Conv2d_1a_3x3.bn.weight": (32,),
        "Conv2d_1a_3x3.bn.running_var": (32,),
        "Conv2d_1a_3x3.bn.num_batches_tracked": (),
        "Conv2d_4a_3x3.conv.weight": (192, 80, 3, 3),
        "Mixed_5b.branch1x1.conv.weight": (64, 192, 1, 1),
        "Mixed_5b.branch5x5_2.conv.weight": (64, 48, 5, 5),
        "Mixed_5b.branch_pool.conv.weight": (32, 192, 1, 1),
        "Mixed_5d.branch_pool.bn.running_mean": (64,),
        "Mixed_6a.branch3x3.conv.weight": (384, 288, 3, 3),
        "Mixed_6b.branch7x7_2.conv.weight": (128, 128, 1, 7),
        "Mixed_6e.branch7x7dbl_5.conv.weight": (192, 192, 1, 7),
        "Mixed_7a.branch3x3_2.conv.weight": (320, 192, 3, 3),
        "Mixed_7a.branch7x7x3_3.conv.weight": (192, 192, 7, 1),
        "Mixed_7b.branch3x3_2b.conv.weight": (384, 384, 3, 1),
        "Mixed_7c.branch3x3dbl_1.conv.weight": (448, 2048, 1, 1),
        "Mixed_7c.branch_pool.conv.weight": (192, 2048, 1, 1),
        "fc.weight": (1008, 2048),
        "fc.bias": (1008,),
    }
    for key, shape in expected.items():
        assert tuple(sd[key].shape) == shape, key
    assert not any(k.startswith("AuxLogits") for k in sd)
    # 94 conv-BN units (conv.weight + 5 BN entries each) and fc.weight, fc.bias
    assert sum(k.endswith(".conv.weight") for k in sd) == 94 and len(sd) == 94 * 6 + 2
    # torchvision's Inception3 documents 27 161 264 parameters (aux head, 1000 classes); less the aux
    # head (98 560 + 2 459 136 + 769 000) plus the 8 extra classes (8 * 2049) gives 23 850 960
    assert sum(p.numel() for p in FIDInceptionV3().parameters()) == 27_161_264 - 3_326_696 + 8 * 2049 == 23_850_960


def test_load_from_path_reproduces_features(net, tmp_path):
    file = tmp_path / "w.pth"
    torch.save(net.state_dict(), file)
    loaded = load_inception(path=file)
    assert not loaded.training and not any(p.requires_grad for p in loaded.parameters())
    x = images(2, 3, 32, 32)
    assert torch.equal(loaded(x), net(x))
    # a converted file without the BN counters (and no torch metadata) loads to the same network
    bare = {k: v.clone() for k, v in net.state_dict().items() if not k.endswith("num_batches_tracked")}
    torch.save(bare, tmp_path / "bare.pth")
    assert torch.equal(load_inception(path=str(tmp_path / "bare.pth"))(x), net(x))


def test_env_var_and_hub_cache_routes(net, no_weights, monkeypatch):
    x = images(1, 3, 24, 24)
    file = no_weights / "elsewhere.pth"
    torch.save(net.state_dict(), file)
    monkeypatch.setenv(ENV_VAR, str(file))
    assert torch.equal(load_inception()(x), net(x))
    monkeypatch.delenv(ENV_VAR)
    for name in WEIGHTS_FILES:  # pytorch-fid's and torch-fidelity's cached names
        cached = no_weights / "torch_home" / "hub" / "checkpoints" / name
        cached.parent.mkdir(parents=True, exist_ok=True)
        file.rename(cached)
        assert torch.equal(load_inception()(x), net(x))
        file = cached.rename(file)


def test_missing_file_says_where_it_looked_and_how_to_get_it(no_weights, monkeypatch):
    with pytest.raises(FileNotFoundError) as err:
        load_inception()
    message = str(err.value)
    assert FID_WEIGHTS_URL in message and ENV_VAR in message and "path=" in message
    for name in WEIGHTS_FILES:
        assert str(no_weights / "torch_home" / "hub" / "checkpoints" / name) in message
    with pytest.raises(FileNotFoundError, match="nope.pth"):
        load_inception(path=no_weights / "nope.pth")
    monkeypatch.setenv(ENV_VAR, str(no_weights / "gone.pth"))
    with pytest.raises(FileNotFoundError, match=f"gone.pth.*\\${ENV_VAR}"):
        load_inception()


def test_a_file_that_is_not_this_network_is_a_value_error(net, tmp_path):
    npz = tmp_path / "stats.npz"
    np.savez(npz, mu=np.zeros(3), sigma=np.eye(3))
    with pytest.raises(ValueError, match="stats.npz"):
        load_inception(path=npz)
    wrong_keys = tmp_path / "wrong_keys.pth"
    torch.save({"weight": torch.zeros(3)}, wrong_keys)
    with pytest.raises(ValueError, match="wrong_keys.pth.*missing keys.*unexpected keys: weight"):
        load_inception(path=wrong_keys)
    not_a_dict = tmp_path / "tensor.pth"
    torch.save(torch.zeros(3), not_a_dict)
    with pytest.raises(ValueError, match="tensor.pth is not a state dict"):
        load_inception(path=not_a_dict)
    # torchvision's own Inception3 weights: 1000 classes and an aux head
    sd = dict(net.state_dict())
    sd["fc.weight"], sd["fc.bias"] = torch.zeros(1000, 2048), torch.zeros(1000)
    sd["AuxLogits.fc.weight"] = torch.zeros(1000, 768)
    torchvision_like = tmp_path / "inception_v3_google.pth"
    torch.save(sd, torchvision_like)
    with pytest.raises(ValueError, match=r"inception_v3_google.pth.*AuxLogits.*fc.weight \(1000, 2048\)"):
        load_inception(path=torchvision_like)


def test_equals_pytorch_fid(net, monkeypatch):
    """pytorch-fid's InceptionV3([3]) on (x + 1)/2 with the same random weights gives our features."""
    try:  # importing pytorch_fid imports torchvision, which may fail beside a CPU-only torch build
        import pytorch_fid.inception as pfi
    except Exception as e:  # noqa: BLE001
        pytest.skip(f"pytorch_fid cannot be imported here: {type(e).__name__}: {e}")
    state = net.state_dict()
    monkeypatch.setattr(pfi, "load_state_dict_from_url", lambda *args, **kwargs: state)  # no download
    theirs = pfi.InceptionV3([pfi.InceptionV3.BLOCK_INDEX_BY_DIM[2048]]).eval()
    for shape in [(2, 1, 28, 28), (2, 3, 32, 32), (2, 3, 64, 64)]:
        x = images(*shape, seed=shape[-1])
        x01 = ((x + 1) / 2).expand(-1, 3, -1, -1)
        with torch.no_grad():
            ref = theirs(x01)[0].flatten(1)
        ours = net(x)
        assert (ours - ref).abs().max() < 1e-4 * max(1.0, ref.abs().max().item()), shape
