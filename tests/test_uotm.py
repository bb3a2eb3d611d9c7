"""UOTM: the outlier toy, shapes, exact resume, save/load, bad input."""

import math

import numpy as np
import pytest
import torch
from scipy.stats import wasserstein_distance

import otgen
from otgen.distributions import Gaussian, make
from otgen.bench_maps import bures_map, uot_gaussian_problem
from otgen.groundtruth import uotm_gaussian_ground_truth
from otgen.train import TrainingDiverged


def _outlier_run(phi: str, seed: int = 0) -> dict[str, float]:
    """configs/uotm_outliers.yaml's model with conjugates ``phi`` on both marginals, scored on 20 000
    points: the mass below 0, W1 to the inlier mode N(1, 0.1²), and the largest source point x whose
    T(x) lands below 0 (−inf if none)."""
    model = otgen.UOTM(dim=1, tau=0.05, phi1=phi, phi2=phi, generator={"name": "mlp", "noise_dim": 0},
                       optim_g={"lr": 2e-4, "schedule": "cosine"}, optim_v={"lr": 2e-4, "schedule": "cosine"},
                       critic={"n_critic": 5}, seed=seed)
    model.fit(make("normal", dim=1), make("outliers_1d"), n_iters=8000, batch_size=256, progress=False)
    x = make("normal", dim=1)(20_000, generator=torch.Generator().manual_seed(1))
    y, x = model.transport(x)[:, 0].numpy(), x[:, 0].numpy()
    inliers = 1.0 + 0.1 * np.random.default_rng(0).standard_normal(200_000)
    low = y < 0
    return {"below": float(low.mean()), "w1": float(wasserstein_distance(y, inliers)),
            "x_max_below": float(x[low].max()) if low.any() else -math.inf}


def test_uotm_kl_ignores_the_outliers():
    """N(0, 1) -> 99 % N(1, 0.1²) + 1 % N(−1, 0.1²), KL penalties on both marginals: the generator
    puts ≤ 0.5 % of its mass below 0 and lands within W1 ≤ 0.05 of the inlier mode N(1, 0.1²).
    (Measured over seeds 0, 1, 2: 0.015 / 0.01 / 0 % below 0, W1 0.019 / 0.017 / 0.013.)
    This is the behaviour the UOTM paper shows, not the exact solution of this UOT problem, which
    keeps the outlier mode (test below): the trained generator drops it."""
    run = _outlier_run("kl")
    assert run["below"] <= 0.005
    assert run["w1"] <= 0.05


@pytest.mark.slow  # 3 trainings, about 2 minutes on 2 cores: `make bench`
def test_balanced_otm_covers_the_outlier_mode_on_most_seeds():
    """The same model with linear conjugates (balanced OTM), whose exact map sends the left 1 % of
    N(0, 1) (x < −2.33) to the outlier mode: over seeds 0, 1, 2 the median mass below 0 is ≥ 0.5 %,
    and on every seed that covers the mode that mass comes from the left tail (x < −1.5).
    Measured: 1.46 / 0 / 1.39 % below 0, from x ≤ −2.19 / – / −2.22. Seed 1 drops the mode like the
    KL model, and seed 2's map is not monotone elsewhere (Spearman −0.28): balanced OTM is not
    reliable here (BENCHMARKS.md lists the settings tried), but it visibly covers the mode where
    UOTM (previous test) does not."""
    runs = [_outlier_run("linear", seed) for seed in (0, 1, 2)]
    assert float(np.median([r["below"] for r in runs])) >= 0.005, runs
    assert all(r["x_max_below"] < -1.5 for r in runs if r["below"] >= 0.005), runs


def test_the_exact_uot_solution_of_the_outlier_toy_keeps_the_outlier_mode():
    """The same problem solved exactly on grids (POT mm_unbalanced, generalised KL with reg_m = alpha
    = 1, cost 0.05·(x − y)²): the relaxed target marginal holds 1.45 % of the transported mass below
    0, more than nu's 1 %. Dropping the 1 % outlier mass would cost 0.01 in the KL penalty, while
    carrying the source's left tail to it costs ~0.05·1.5²·0.01 ≈ 0.001. So the outlier-free
    generator of the previous test is a property of the training (a small mode far from the bulk
    is dropped, as balanced OTM also does on some seeds; BENCHMARKS.md), not of the UOT optimum."""
    import ot
    from scipy.stats import norm

    x, y = np.linspace(-5.0, 5.0, 301), np.linspace(-2.0, 2.0, 301)
    a = norm.pdf(x) / norm.pdf(x).sum()
    b = 0.99 * norm.pdf(y, 1.0, 0.1) + 0.01 * norm.pdf(y, -1.0, 0.1)
    b /= b.sum()
    plan = ot.unbalanced.mm_unbalanced(a, b, 0.05 * (x[:, None] - y[None, :]) ** 2, reg_m=1.0, div="kl",
                                       numItermax=20_000, stopThr=1e-12)
    marginal = plan.sum(0)
    assert marginal[y < 0].sum() / plan.sum() >= 0.012


def test_the_exact_uot_solution_of_the_digits_outlier_experiment_keeps_inverted_digits_drops_far_ones():
    """configs/digits_uotm_outliers.yaml's problem solved exactly between 200 draws of N(0, I) (16×16)
    and every train digit with 3 % inverted digits (POT mm_unbalanced, KL, reg_m = alpha = 1, cost
    0.001·‖x − y‖²): the generator law T#mu (each source point sent where its row of the plan goes)
    keeps the inverted digits (measured 3.3 % against the data's 2.97 %: an inverted digit has a
    digit's norm, so it costs no more to reach). Outliers far from the source (``kind="far"``: the
    same images binarised and doubled, pixels ±2) are dropped (measured 0.44 % at tau 0.003). So UOTM-KL's 0 %
    on inverted digits is its training, not the UOT optimum (BENCHMARKS.md, "UOTM's outlier
    experiment")."""
    import ot

    from otgen.distributions import digits
    from otgen.distributions.images import OUTLIER_LABEL, with_outliers

    data = with_outliers(digits(size=16, split="train", seed=0), fraction=0.03, kind="inverted", seed=0)
    y = data.images.reshape(len(data), -1).double().numpy()
    out = (data.labels == OUTLIER_LABEL).numpy()
    x = torch.randn(200, 256, generator=torch.Generator().manual_seed(0), dtype=torch.float64).numpy()
    a, b = np.full(len(x), 1.0 / len(x)), np.full(len(y), 1.0 / len(y))

    def generated_outlier_share(y, tau):
        plan = ot.unbalanced.mm_unbalanced(a, b, tau * ot.dist(x, y), reg_m=1.0, div="kl", numItermax=300)
        return float((plan[:, out].sum(1) / plan.sum(1)).mean())

    assert abs(out.mean() - 0.0297) < 1e-3
    assert generated_outlier_share(y, 0.001) >= 0.028
    far = with_outliers(digits(size=16, split="train", seed=0), fraction=0.03, kind="far", seed=0)
    assert (far.labels == data.labels).all() and far.images.abs()[out].eq(2.0).all()
    assert generated_outlier_share(far.images.reshape(len(far), -1).double().numpy(), 0.003) <= 0.01


def test_per_sample_shapes_are_enforced():
    """The original toy code broadcast v (n, 1, 1) against the cost (n, 1) into an n x n matrix;
    here a network returning the wrong shape stops the step with a message."""
    model = otgen.UOTM(dim=2, tau=1.0, seed=0)
    model.potential.forward = lambda y: torch.zeros(y.shape[0], 1, 1)  # the broken shape
    with pytest.raises(RuntimeError, match=r"v\(y\) must have shape \(8,\)"):
        model.train_step(torch.randn(8, 2), torch.randn(8, 2))


def test_cost_is_shared_and_reduces_as_documented():
    x, y = torch.randn(5, 3), torch.randn(5, 3)
    assert torch.allclose(otgen.UOTM(dim=3, tau=0.5).cost(x, y), 0.5 * ((x - y) ** 2).sum(1))
    mean = {"name": "sqeuclidean", "reduce": "mean"}
    assert torch.allclose(otgen.UOTM(dim=3, tau=0.5, cost=mean).cost(x, y), 0.5 * ((x - y) ** 2).mean(1))


def test_transport_draws_fresh_noise_and_sample_shapes():
    model = otgen.UOTM(dim=2, tau=1.0, seed=0)
    x = torch.randn(4, 2)
    assert not torch.equal(model.transport(x), model.transport(x))  # fresh z per call
    assert model.sample(x, 7).shape == (4, 7, 2)
    deterministic = otgen.UOTM(dim=2, tau=1.0, generator={"name": "mlp", "noise_dim": 0}, seed=0)
    assert torch.equal(deterministic.transport(x), deterministic.transport(x))


def test_resume_and_save_load_are_exact(tmp_path, ctrl_c_after):
    source, target = Gaussian.standard(2), Gaussian([1.0, 0.0], [[0.5, 0.0], [0.0, 0.5]])
    kw = dict(batch_size=32, progress=False, checkpoint_every=5, log_every=5)
    make_model = lambda: otgen.UOTM(dim=2, tau=0.5, critic={"n_critic": 2, "r1": 0.1},  # noqa: E731
                                    optim_g={"ema": 0.9, "schedule": "cosine"}, optim_v={"schedule": "cosine"},
                                    generator={"name": "mlp", "hidden": [16, 16]},
                                    potential={"name": "mlp", "hidden": [16, 16]}, seed=0)
    straight = make_model().fit(source, target, n_iters=10, out=tmp_path / "a", **kw)

    with pytest.raises(KeyboardInterrupt):
        make_model().fit(source, target, n_iters=10, out=tmp_path / "b", callbacks=[ctrl_c_after(5)], **kw)
    assert otgen.load(tmp_path / "b" / "checkpoints" / "last.pt").step == 5
    resumed = make_model().fit(source, target, n_iters=10, out=tmp_path / "b", resume=True, **kw)
    for a, b in zip(straight.state_dict()["generator_net"].values(), resumed.state_dict()["generator_net"].values()):
        assert torch.equal(a, b)
    straight.save(tmp_path / "m.pt")
    loaded = otgen.load(tmp_path / "m.pt")
    x = torch.randn(6, 2)
    g = lambda: torch.Generator().manual_seed(3)  # noqa: E731
    assert torch.equal(loaded.transport(x, rng=g()), straight.transport(x, rng=g()))


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"dim": 2, "tau": 0.0}, "tau"),
        ({"dim": 2, "tau": -1.0}, "tau"),
        ({"dim": 2, "tau": math.nan}, "tau"),
        ({"dim": 2, "phi1": "kullback"}, "phi1 must be one of"),
        ({"dim": 2, "phi2": "tv"}, "phi2 must be one of"),
        ({"dim": 2, "phi1": {"name": "kl", "alpha": 0.0}}, "phi1.alpha must be"),
        ({"dim": 0}, "dim"),
        ({"dim": 2, "cost": {"name": "sqeuclidean", "reduce": "max"}}, "cost.reduce must be one of"),
        ({"dim": 2, "critic": {"n_critic": 0}}, "critic.n_critic must be an int >= 1"),
        ({"dim": 2, "critic": {"r1": -1.0}}, "critic.r1 must be"),
        ({"dim": 2, "optim_g": {"ema": 1.0}}, "optim_g.ema must be"),
        ({"dim": 2, "optim_g": {"schedule": "step"}}, "optim_g.schedule must be one of"),
    ],
)
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        otgen.UOTM(**kwargs)


def test_mismatched_data_is_refused_before_training():
    with pytest.raises(ValueError, match="shape"):
        otgen.UOTM(dim=2).fit(Gaussian.standard(3), Gaussian.standard(2), n_iters=5, progress=False)
    with pytest.raises(ValueError, match="x must have shape"):
        otgen.UOTM(dim=2).transport(torch.zeros(3, 3))


# All three run in `make bench` (about a minute each on a quiet core): in the default run test_bench's
# uot-gaussian quick suite checks the same two maps at D = 2 within the same 5 % L2-UVP.
@pytest.mark.parametrize("dim", [1, 2, 8])
@pytest.mark.slow
def test_uotm_learns_the_closed_form_unbalanced_map_and_otm_thebures_map(dim):
    """Gaussian source and target, cost ‖x − y‖² (tau = 1), alpha = 1: with KL conjugates the learned
    map is the affine map between the relaxed marginals of the sigma -> 0 unbalanced closed form
    (groundtruth.uotm_gaussian_ground_truth), with linear conjugates the Bures (W2) map; L2-UVP ≤ 5 %
    each (measured 0.02–0.23 %), while the two exact maps differ by 28–234 % (so the test tells them apart)."""
    a, A, b, B = uot_gaussian_problem(dim)
    unbalanced = uotm_gaussian_ground_truth(a, A, b, B, tau=1.0, alpha=1.0)
    bures = bures_map(a, A, b, B)
    x = Gaussian(a, A)(20_000, generator=torch.Generator().manual_seed(1))
    xn = x.double().numpy()

    def l2_uvp(y, y_star, var):
        return 100.0 * float(((y - y_star) ** 2).sum(1).mean()) / var

    var_unbalanced = float(np.trace(unbalanced.marginal_y()[2]))
    assert l2_uvp(unbalanced.map(xn), bures(xn), var_unbalanced) > 20.0
    for phi, target_map, var in (("kl", unbalanced.map, var_unbalanced), ("linear", bures, float(np.trace(B)))):
        optim = {"lr": 1e-3, "schedule": "cosine"}
        model = otgen.UOTM(dim=dim, tau=1.0, phi1=phi, phi2=phi, generator={"name": "mlp", "hidden": [128, 128],
                           "noise_dim": 0}, potential={"name": "mlp", "hidden": [128, 128]}, optim_g=optim,
                           optim_v=optim, seed=0)
        model.fit(Gaussian(a, A), Gaussian(b, B), n_iters=4000, batch_size=256, progress=False)
        assert l2_uvp(model.transport(x).double().numpy(), target_map(xn), var) <= 5.0, phi


def test_divergence_stops_with_a_message_and_keeps_the_last_good_checkpoint(tmp_path):
    source, target = Gaussian.standard(2), Gaussian([1.0, 0.0], [[0.5, 0.0], [0.0, 0.5]])
    model = otgen.UOTM(dim=2, tau=0.5, generator={"name": "mlp", "hidden": [16, 16]},
                       potential={"name": "mlp", "hidden": [16, 16]}, seed=0)
    model.fit(source, target, n_iters=4, batch_size=16, out=tmp_path, progress=False, checkpoint_every=2)
    good = [p.detach().clone() for p in model.potential.parameters()]

    def poison(step, solver, metrics):  # a potential that blew up, as an unstable update would leave it
        if step == 6:
            with torch.no_grad():
                next(solver.potential.parameters()).fill_(float("inf"))

    with pytest.raises(TrainingDiverged, match="diverged at step 6.*last good checkpoint \\(step 4\\).*R1 penalty"):
        model.fit(source, target, n_iters=20, batch_size=16, out=tmp_path, resume=True, progress=False,
                  checkpoint_every=2, callbacks=[poison])
    saved = otgen.load(tmp_path / "checkpoints" / "last.pt")
    assert saved.step == 4
    assert all(torch.equal(a, b) for a, b in zip(saved.potential.parameters(), good))
    assert all(torch.isfinite(p).all() for p in model.potential.parameters())  # reloaded into the model


@pytest.mark.parametrize("cls", [otgen.UOTM, otgen.SJKO])
def test_image_shaped_samples_keep_their_shape_through_training_sampling_and_saving(cls, tmp_path):
    """event_shape=(1, 8, 8) (sklearn's digits): batches, maps and draws keep the shape; the networks
    see 64 coordinates; a model file remembers the shape."""
    shape = (1, 8, 8)
    source = lambda n, generator=None: torch.randn(n, *shape, generator=generator)  # noqa: E731
    target = lambda n, generator=None: 0.5 * torch.randn(n, *shape, generator=generator) + 1.0  # noqa: E731
    kw = dict(n_phases=2) if cls is otgen.SJKO else {}
    small = {"name": "mlp", "hidden": [16]}
    model = cls(event_shape=shape, generator=small, potential=small, seed=0, **kw).fit(source, target, n_iters=3,
                                                                                       batch_size=8, progress=False)
    assert model.dim == 64 and model.event_shape == shape
    x = source(5)
    assert model.transport(x).shape == (5, *shape)
    assert model.sample(x, 3).shape == (5, 3, *shape)
    per_unit = 1.0 / (2 * model.h) if cls is otgen.SJKO else model.tau  # cost of a unit shift of one coordinate
    assert torch.allclose(model.cost(x, x + 1.0), torch.full((5,), 64 * per_unit))  # summed over all 64
    model.save(tmp_path / "m.pt")
    loaded = otgen.load(tmp_path / "m.pt")
    g = lambda: torch.Generator().manual_seed(3)  # noqa: E731
    assert loaded.event_shape == shape
    assert torch.equal(loaded.transport(x, rng=g()), model.transport(x, rng=g()))
    with pytest.raises(ValueError, match=r"x must have shape \(n, 1, 8, 8\)"):
        model.transport(torch.randn(5, 64))
    with pytest.raises(ValueError, match="exactly one of dim"):
        cls(dim=64, event_shape=shape)
    with pytest.raises(ValueError, match="event_shape"):
        cls(event_shape=(0, 8))
