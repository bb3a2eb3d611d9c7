"""Plots: each function writes a non-empty PNG and names the argument whose shape is wrong."""

import pytest
import torch

from otgen.viz import plot_1d_transport, plot_phases, plot_transport_2d

PNG = b"\x89PNG\r\n\x1a\n"


def _is_png(path) -> bool:
    data = path.read_bytes()
    return len(data) > 5_000 and data.startswith(PNG)


def test_plot_1d_transport_writes_a_png(tmp_path):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(500, 1, generator=g)
    y = 2 + 0.5 * torch.randn(400, generator=g)  # (m,) vectors are accepted for 1-D data
    path = plot_1d_transport(x, y, 2 + 0.5 * x, tmp_path / "sub" / "t.png", title="1-D")
    assert path == tmp_path / "sub" / "t.png" and _is_png(path)
    assert [p.name for p in path.parent.iterdir()] == ["t.png"]  # no temporary file left behind


def test_plot_transport_2d_writes_a_png(tmp_path):
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(300, 2, generator=g), 3 + torch.randn(200, 2, generator=g)
    assert _is_png(plot_transport_2d(x, y, x + 3, tmp_path / "t2.png"))


@pytest.mark.parametrize("n_phases, with_source", [(1, False), (3, True), (10, True)])
def test_plot_phases_writes_a_png(tmp_path, n_phases, with_source):
    g = torch.Generator().manual_seed(0)
    y = torch.randn(200, 2, generator=g) * 4
    phases = [torch.randn(150, 2, generator=g) * (k + 1) for k in range(n_phases)]
    x = torch.randn(150, 2, generator=g) if with_source else None
    assert _is_png(plot_phases(y, phases, tmp_path / "p.png", title="phases", x=x))


@pytest.mark.parametrize("call, name", [
    (lambda p: plot_1d_transport(torch.zeros(5, 2), torch.zeros(5, 1), torch.zeros(5, 1), p), "x must"),
    (lambda p: plot_1d_transport(torch.zeros(5, 1), torch.zeros(5, 1, 1), torch.zeros(5, 1), p), "y must"),
    (lambda p: plot_1d_transport(torch.zeros(5, 1), torch.zeros(5, 1), torch.zeros(4, 1), p), "y_hat must"),
    (lambda p: plot_1d_transport(torch.zeros(0, 1), torch.zeros(5, 1), torch.zeros(0, 1), p), "x must"),
    (lambda p: plot_transport_2d(torch.zeros(5, 2), torch.zeros(5, 3), torch.zeros(5, 2), p), "y must"),
    (lambda p: plot_transport_2d(torch.zeros(5, 2), torch.zeros(5, 2), torch.zeros(5), p), "y_hat must"),
    (lambda p: plot_phases(torch.zeros(5, 1), [torch.zeros(5, 2)], p), "y must"),
    (lambda p: plot_phases(torch.zeros(5, 2), [], p), "phase_samples must"),
    (lambda p: plot_phases(torch.zeros(5, 2), torch.zeros(3, 5, 2), p), "phase_samples must"),
    (lambda p: plot_phases(torch.zeros(5, 2), [torch.zeros(5, 2), torch.zeros(5, 3)], p), "phase_samples[1] must"),
    (lambda p: plot_phases(torch.zeros(5, 2), [torch.zeros(5, 2)], p, x=torch.zeros(5)), "x must"),
])
def test_bad_shapes_are_named(tmp_path, call, name):
    with pytest.raises(ValueError) as e:
        call(tmp_path / "bad.png")
    assert str(e.value).startswith(name)
    assert not (tmp_path / "bad.png").exists()
