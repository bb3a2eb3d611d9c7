import pytest
import torch

from otgen.costs import CallableCost, GeneratorCost, SquaredEuclidean, ZeroCost, make_cost


def _autograd(cost, x, y):
    y = y.clone().requires_grad_(True)
    (g,) = torch.autograd.grad(cost(x, y).sum(), y)
    return g


def test_squared_euclidean_value_and_closed_form_gradient():
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(7, 3, generator=g), torch.randn(7, 3, generator=g)
    c = SquaredEuclidean()
    assert torch.allclose(c(x, y), 0.5 * ((x - y) ** 2).sum(1))
    assert torch.allclose(c.grad_y(x, y), _autograd(c, x, y))
    # image-shaped batches: summed over every event dimension
    xi, yi = torch.randn(4, 2, 3, 3, generator=g), torch.randn(4, 2, 3, 3, generator=g)
    assert torch.allclose(c(xi, yi), 0.5 * ((xi - yi) ** 2).flatten(1).sum(1))


def test_zero_and_callable_costs():
    x, y = torch.randn(5, 2), torch.randn(5, 2)
    assert torch.equal(ZeroCost()(x, y), torch.zeros(5))
    assert torch.equal(ZeroCost().grad_y(x, y), torch.zeros(5, 2))
    smooth = CallableCost(lambda a, b: torch.cosh(a - b).sum(1))
    assert torch.allclose(smooth.grad_y(x, y), torch.sinh(y - x))  # d/dy cosh(x - y)


def test_generator_cost_gradient_through_frozen_linear_generator():
    torch.manual_seed(0)
    G = torch.nn.Linear(3, 5, bias=False)
    W = G.weight.detach().clone()
    c = GeneratorCost(G)
    assert not any(p.requires_grad for p in G.parameters())
    x, z = torch.randn(6, 5), torch.randn(6, 3)
    # c(x, z) = ½‖x − Wz‖², so ∇_z c = Wᵀ(Wz − x)
    assert torch.allclose(c.grad_y(x, z), (z @ W.T - x) @ W, atol=1e-5)
    assert torch.allclose(c(x, z), 0.5 * ((x - z @ W.T) ** 2).sum(1))


def test_make_cost_errors_name_the_argument():
    assert isinstance(make_cost(None), SquaredEuclidean)
    assert isinstance(make_cost("zero"), ZeroCost)
    with pytest.raises(ValueError, match="cost must be one of"):
        make_cost("l1")
    with pytest.raises(ValueError, match="cost"):
        make_cost(3)
    with pytest.raises(ValueError, match="shape"):
        CallableCost(lambda a, b: a.sum())(torch.randn(3, 2), torch.randn(3, 2))
    with pytest.raises(ValueError, match="source and target shapes must match"):
        SquaredEuclidean().check_shapes((2,), (3,))


@pytest.mark.parametrize("act", ["silu", "leaky_relu", "relu", "tanh"])
@pytest.mark.parametrize("quadratic", ["none", "full", "diag"])
def test_scalar_mlp_hand_written_gradient_matches_autograd(act, quadratic):
    from otgen.nn import ScalarMLP

    torch.manual_seed(0)
    net = ScalarMLP((2, 3), hidden=(7, 5), act=act, quadratic=quadratic)
    with torch.no_grad():
        for p in net.parameters():
            p.add_(0.5 * torch.randn_like(p))
    y = torch.randn(6, 2, 3)
    f, g = net.value_and_grad(y)
    y_ = y.clone().requires_grad_(True)
    (expected,) = torch.autograd.grad(net(y_).sum(), y_)
    assert torch.allclose(f, net(y), atol=1e-5)
    assert torch.allclose(g, expected, atol=1e-5)
