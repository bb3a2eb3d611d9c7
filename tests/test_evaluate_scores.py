"""The evaluator's scores (otgen.evaluate.scores) and reference statistics files (otgen.evaluate.stats),
checked against independent computations: scipy's sqrtm and closed forms for the Fréchet distance,
np.mean/np.cov for the running moments, an explicit-loop unbiased MMD² for KID, a brute-force k-NN
for precision/recall; then floors on real data (the shipped digit classifier's features)."""

from __future__ import annotations

import math
import os

import numpy as np
import pytest
import torch
from scipy import linalg
from scipy.spatial.distance import cdist

from otgen import image_metrics
from otgen.distributions import digits
from otgen.evaluate import scores
from otgen.evaluate.scores import FeatureStats, fd_from_features, frechet_distance, kid, precision_recall
from otgen.evaluate.stats import load_stats, save_stats

torch.set_num_threads(1)


# ----------------------------------------------------------------------------- independent references


def fd_sqrtm(mu1, s1, mu2, s2) -> float:
    """pytorch-fid's formula: ‖μ1 − μ2‖² + Tr S1 + Tr S2 − 2 Tr sqrtm(S1 S2)."""
    covmean = linalg.sqrtm(s1 @ s2)
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2.0 * np.trace(covmean).real)


def rotation(k: int, rng) -> np.ndarray:
    q, r = np.linalg.qr(rng.standard_normal((k, k)))
    return q * np.sign(np.diag(r))


def spd(k: int, rng, eigenvalues=None) -> np.ndarray:
    w = rng.uniform(0.1, 3.0, k) if eigenvalues is None else np.asarray(eigenvalues, float)
    u = rotation(k, rng)
    s = (u * w) @ u.T
    return 0.5 * (s + s.T)


def naive_mmd2_poly(x, y, degree=3, gamma=None, coef0=1.0) -> float:
    """Unbiased MMD² with k(a, b) = (γ a·b + c0)^d, by explicit loops over pairs."""
    n, m, dim = len(x), len(y), x.shape[1]
    gamma = 1.0 / dim if gamma is None else gamma
    kern = lambda a, b: (gamma * float(np.dot(a, b)) + coef0) ** degree  # noqa: E731
    xx = sum(kern(x[i], x[j]) for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
    yy = sum(kern(y[i], y[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    xy = sum(kern(x[i], y[j]) for i in range(n) for j in range(m)) / (n * m)
    return xx + yy - 2.0 * xy


def naive_precision_recall(real, fake, k):
    """Brute force: full distance matrices, radius = k-th smallest distance to the *other* points."""
    def radii(a):
        d = cdist(a, a)
        np.fill_diagonal(d, np.inf)
        return np.sort(d, axis=1)[:, k - 1]

    r_real, r_fake = radii(real), radii(fake)
    precision = np.mean([(cdist(f[None], real)[0] <= r_real).any() for f in fake])
    recall = np.mean([(cdist(r[None], fake)[0] <= r_fake).any() for r in real])
    return precision, recall


# ----------------------------------------------------------------------------- Fréchet distance


@pytest.mark.parametrize("k", [1, 3, 16, 64])
def test_fd_equals_the_sqrtm_formula_on_random_gaussians(k):
    rng = np.random.default_rng(k)
    for _ in range(3):
        mu1, mu2 = rng.standard_normal(k), rng.standard_normal(k)
        s1, s2 = spd(k, rng), spd(k, rng)
        ref = fd_sqrtm(mu1, s1, mu2, s2)
        assert frechet_distance(mu1, s1, mu2, s2) == pytest.approx(ref, rel=1e-10)


def test_fd_on_ill_conditioned_covariances():
    """Condition numbers 1e8 (each matrix, differently rotated): still the sqrtm value to 1e-8."""
    rng = np.random.default_rng(1)
    k = 12
    s1 = spd(k, rng, np.logspace(-6, 2, k))
    s2 = spd(k, rng, np.logspace(2, -6, k))
    mu1, mu2 = rng.standard_normal(k), rng.standard_normal(k)
    ref = fd_sqrtm(mu1, s1, mu2, s2)
    assert frechet_distance(mu1, s1, mu2, s2) == pytest.approx(ref, rel=1e-8)


def test_fd_with_rank_deficient_covariances():
    """Singular covariances: against sqrtm (which handles S1 S2 with a zero block), and against the closed
    form of commuting covariances with zero eigenvalues (a shared random rotation U):
    FD = ‖Δμ‖² + Σ (√a_i − √b_i)²."""
    rng = np.random.default_rng(2)
    k, rank = 10, 6
    a = np.r_[rng.uniform(0.5, 2.0, rank), np.zeros(k - rank)]
    b = np.r_[rng.uniform(0.5, 2.0, rank - 2), np.zeros(k - rank + 2)]
    u = rotation(k, rng)
    s1, s2 = (u * a) @ u.T, (u * b) @ u.T
    s1, s2 = 0.5 * (s1 + s1.T), 0.5 * (s2 + s2.T)
    mu1, mu2 = rng.standard_normal(k), rng.standard_normal(k)
    exact = float(((mu1 - mu2) ** 2).sum() + ((np.sqrt(a) - np.sqrt(b)) ** 2).sum())
    assert frechet_distance(mu1, s1, mu2, s2) == pytest.approx(exact, rel=1e-10)
    # non-commuting, singular: a low-rank sample covariance (n < k) against a full one
    x = rng.standard_normal((5, k))
    s3 = np.cov(x.T)
    s4 = spd(k, rng)
    assert frechet_distance(mu1, s3, mu2, s4) == pytest.approx(fd_sqrtm(mu1, s3, mu2, s4), rel=1e-8)
    assert frechet_distance(mu1, s4, mu2, s3) == pytest.approx(fd_sqrtm(mu1, s3, mu2, s4), rel=1e-8)


def test_fd_closed_form_for_diagonal_covariances():
    rng = np.random.default_rng(3)
    k = 20
    a, b = rng.uniform(0.01, 5.0, k), rng.uniform(0.01, 5.0, k)
    mu1, mu2 = rng.standard_normal(k), rng.standard_normal(k)
    exact = float(((mu1 - mu2) ** 2).sum() + ((np.sqrt(a) - np.sqrt(b)) ** 2).sum())
    assert abs(frechet_distance(mu1, np.diag(a), mu2, np.diag(b)) - exact) <= 1e-8 * max(1.0, exact)


def test_fd_of_identical_statistics_is_zero_and_fd_is_symmetric():
    rng = np.random.default_rng(4)
    k = 32
    mu, s = rng.standard_normal(k), spd(k, rng)
    assert abs(frechet_distance(mu, s, mu, s)) <= 1e-10 * np.trace(s)
    singular = np.cov(rng.standard_normal((8, k)).T)  # rank 7
    assert abs(frechet_distance(mu, singular, mu, singular)) <= 1e-10 * np.trace(singular)
    s2 = spd(k, rng)
    assert frechet_distance(mu, s, -mu, s2) == pytest.approx(frechet_distance(-mu, s2, mu, s), rel=1e-10)


def test_fd_from_features_is_fd_of_np_mean_and_np_cov():
    rng = np.random.default_rng(5)
    x, y = rng.standard_normal((300, 7)), 2.0 + 0.5 * rng.standard_normal((200, 7))
    ref = frechet_distance(x.mean(0), np.cov(x.T), y.mean(0), np.cov(y.T))
    assert fd_from_features(x, y) == pytest.approx(ref, rel=1e-12)
    assert fd_from_features(torch.from_numpy(x).float(), y) == pytest.approx(ref, rel=1e-5)


def test_fd_refuses_bad_arguments_naming_them():
    k = 3
    mu, s = np.zeros(k), np.eye(k)
    with pytest.raises(ValueError, match="mu1"):
        frechet_distance(np.zeros((k, 1)), s, mu, s)
    with pytest.raises(ValueError, match="mu2"):
        frechet_distance(mu, s, np.zeros(k + 1), s)
    with pytest.raises(ValueError, match="sigma1"):
        frechet_distance(mu, np.eye(k + 1), mu, s)
    with pytest.raises(ValueError, match="sigma2.*non-finite"):
        frechet_distance(mu, s, mu, np.full((k, k), np.nan))
    with pytest.raises(ValueError, match="mu1.*non-finite"):
        frechet_distance(np.array([0.0, np.inf, 0.0]), s, mu, s)
    asym = np.eye(k)
    asym[0, 1] = 0.5
    with pytest.raises(ValueError, match="sigma2 must be symmetric"):
        frechet_distance(mu, s, mu, asym)
    with pytest.raises(ValueError, match="sigma1 must be positive semidefinite"):
        frechet_distance(mu, np.diag([1.0, -0.5, 1.0]), mu, s)
    with pytest.raises(ValueError, match="mu1 must be"):
        frechet_distance("abc", s, mu, s)
    with pytest.raises(ValueError, match="fy"):
        fd_from_features(np.zeros((5, 3)), np.zeros((1, 3)))
    with pytest.raises(ValueError, match="same feature dimension"):
        fd_from_features(np.zeros((5, 3)), np.zeros((5, 4)))


# ----------------------------------------------------------------------------- running statistics


def test_feature_stats_from_batches_equal_np_mean_and_np_cov():
    rng = np.random.default_rng(6)
    x = rng.standard_normal((1000, 9)) @ rng.standard_normal((9, 9)) + rng.standard_normal(9)
    st = FeatureStats()
    for lo, hi in [(0, 1), (1, 1), (1, 250), (250, 251), (251, 900), (900, 1000)]:  # sizes 1, 0, 249, ...
        st.update(x[lo:hi])
    assert st.n == 1000 and st.dim == 9
    np.testing.assert_allclose(st.mu, x.mean(0), rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(st.sigma, np.cov(x.T), rtol=1e-11, atol=1e-13)
    assert np.array_equal(st.sigma, st.sigma.T) and st.mu.dtype == st.sigma.dtype == np.float64
    # torch input (float32, as networks give features) matches the float64 of the same values
    t = torch.from_numpy(x).float()
    st32 = FeatureStats().update(t[:500]).update(t[500:])
    np.testing.assert_allclose(st32.sigma, np.cov(t.double().numpy().T), rtol=1e-11, atol=1e-12)


def test_feature_stats_merge_equals_the_whole():
    rng = np.random.default_rng(7)
    x = rng.standard_normal((700, 5)) * [1, 2, 3, 4, 5]
    parts = [FeatureStats.from_features(x[:100]), FeatureStats.from_features(x[100:101]),
             FeatureStats.from_features(x[101:700])]
    whole = FeatureStats()
    for p in parts:
        whole.merge(p)
    np.testing.assert_allclose(whole.mu, x.mean(0), rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(whole.sigma, np.cov(x.T), rtol=1e-11, atol=1e-13)
    assert whole.n == 700 and parts[0].n == 100  # the merged-in parts are unchanged
    with pytest.raises(ValueError, match="dimension"):
        whole.merge(FeatureStats.from_features(np.zeros((3, 4))))
    with pytest.raises(ValueError, match="other"):
        whole.merge(whole)


def test_feature_stats_stay_accurate_far_from_the_origin():
    """Mean 1e4, unit spread, fed as float32 batches: the covariance matches np.cov of the centred float64
    values to 1e-9 (E[xxᵀ] − μμᵀ would lose ~8 digits to cancellation: 1e8 − 1e8 + O(1))."""
    rng = np.random.default_rng(8)
    x32 = (1e4 + rng.standard_normal((4000, 6))).astype(np.float32)
    x = x32.astype(np.float64)
    st = FeatureStats()
    for i in range(0, 4000, 333):
        st.update(torch.from_numpy(x32[i:i + 333]))
    np.testing.assert_allclose(st.sigma, np.cov((x - 1e4).T), rtol=1e-9, atol=1e-10)
    np.testing.assert_allclose(st.mu, x.mean(0), rtol=1e-14)


def test_feature_stats_keep_features_up_to_the_cap_then_sample_uniformly():
    x = np.arange(60, dtype=float).reshape(30, 2)
    st = FeatureStats(keep_features=True, max_kept=100)
    st.update(x[:7]).update(x[7:])
    np.testing.assert_array_equal(st.features, x)  # below the cap: everything, in order
    # past the cap: a uniform sample of the rows (ids 0..N-1 in column 0)
    n, cap = 20_000, 1000
    ids = np.arange(n, dtype=float)[:, None]
    runs = []
    for seed in (0, 1):
        st = FeatureStats(keep_features=True, max_kept=cap, seed=seed)
        for i in range(0, n, 1500):
            st.update(ids[i:i + 1500])
        kept = st.features[:, 0]
        assert st.n_kept == cap and len(np.unique(kept)) == cap and np.isin(kept, ids[:, 0]).all()
        # uniform on 0..n−1: mean (n−1)/2, sd n/√12/√cap (finite-population factor < 1); 4 sd
        assert abs(kept.mean() - (n - 1) / 2) < 4 * n / math.sqrt(12 * cap)
        assert abs(np.mean(kept < n / 2) - 0.5) < 4 * 0.5 / math.sqrt(cap)
        np.testing.assert_allclose(st.mu, ids.mean(0))  # the moments use every row
        runs.append(kept.copy())
    assert not np.array_equal(np.sort(runs[0]), np.sort(runs[1]))
    again = FeatureStats(keep_features=True, max_kept=cap, seed=0)
    for i in range(0, n, 1500):
        again.update(ids[i:i + 1500])
    np.testing.assert_array_equal(again.features[:, 0], runs[0])  # same seed, same sample
    with pytest.raises(ValueError, match="keep_features=True"):
        FeatureStats().update(x).features


def test_feature_stats_merge_of_kept_features():
    a = FeatureStats(keep_features=True, max_kept=50).update(np.zeros((10, 1)))
    b = FeatureStats(keep_features=True, max_kept=50).update(np.ones((15, 1)))
    a.merge(b)
    assert a.n_kept == 25 and a.features.sum() == 15  # under the cap: all of both
    big = FeatureStats(keep_features=True, max_kept=50).update(np.full((4000, 1), 2.0))
    a.merge(big)  # 4025 seen, 50 kept: a uniform sample, so (almost surely) mostly 2.0
    assert a.n_kept == 50 and np.isin(a.features, [0.0, 1.0, 2.0]).all() and (a.features == 2.0).sum() >= 40
    with pytest.raises(ValueError, match="max_kept"):
        a.merge(FeatureStats(keep_features=True, max_kept=7).update(np.zeros((3, 1))))


def test_feature_stats_refuse_bad_input_naming_it():
    st = FeatureStats().update(np.zeros((3, 4)))
    with pytest.raises(ValueError, match=r"features must have shape \(b, 4\)"):
        st.update(np.zeros((3, 5)))
    with pytest.raises(ValueError, match="features has non-finite"):
        st.update(np.full((2, 4), np.nan))
    with pytest.raises(ValueError, match="sigma needs at least 2"):
        FeatureStats().update(np.zeros((1, 4))).sigma
    with pytest.raises(ValueError, match="max_kept"):
        FeatureStats(keep_features=True, max_kept=0)


# ----------------------------------------------------------------------------- KID


def test_kid_with_one_whole_subset_is_the_naive_unbiased_mmd2():
    rng = np.random.default_rng(9)
    x, y = rng.standard_normal((12, 3)), 0.3 + rng.standard_normal((12, 3))
    for kwargs in ({}, {"degree": 2, "gamma": 0.7, "coef0": 0.5}):
        ref = naive_mmd2_poly(x, y, **kwargs)
        res = kid(x, y, subsets=1, subset_size=1000, **kwargs)
        assert res.subset_size == 12 and res.kid_std == 0.0
        assert abs(res.kid - ref) <= 1e-10 * max(1.0, abs(ref))
    # sets of different sizes: subsets of min(n, m), drawn as torch-fidelity draws them (fx's rows first)
    z = rng.standard_normal((17, 3))
    res = kid(x, z, subsets=3, subset_size=1000, seed=5)
    draw = np.random.RandomState(5)
    refs = []
    for _ in range(3):
        ix, iz = draw.choice(12, 12, replace=False), draw.choice(17, 12, replace=False)
        refs.append(naive_mmd2_poly(x[ix], z[iz]))
    assert res.subset_size == 12
    assert abs(res.kid - np.mean(refs)) <= 1e-10 and abs(res.kid_std - np.std(refs)) <= 1e-10


def test_kid_is_zero_between_two_draws_of_one_law_and_positive_after_a_shift():
    ratios = []
    for seed in range(5):
        rng = np.random.default_rng(100 + seed)
        x, y = rng.standard_normal((1000, 8)), rng.standard_normal((1000, 8))
        res = kid(x, y, subsets=50, subset_size=100, seed=seed)
        ratios.append(abs(res.kid) / res.kid_stderr)
    assert np.median(ratios) < 3.0, ratios
    shifted = kid(x, y + 0.5, subsets=50, subset_size=100, seed=0)
    assert shifted.kid > 10 * shifted.kid_stderr and shifted.kid > 0


def test_kid_standard_error_and_determinism():
    rng = np.random.default_rng(10)
    x, y = rng.standard_normal((600, 4)), rng.standard_normal((600, 4)) + 0.2
    few, many = kid(x, y, subsets=25, subset_size=50), kid(x, y, subsets=100, subset_size=50)
    for r in (few, many):
        assert r.kid_stderr == pytest.approx(r.kid_std / math.sqrt(r.subsets), rel=1e-12)
    assert 1.4 < few.kid_stderr / many.kid_stderr < 2.9  # ~ √4 = 2
    assert kid(x, y, subsets=25, subset_size=50) == few  # same seed, same numbers
    assert kid(x, y, subsets=25, subset_size=50, seed=1).kid != few.kid
    assert few.as_dict()["kid_std"] == few.kid_std
    t = kid(torch.from_numpy(x), torch.from_numpy(y), subsets=25, subset_size=50)
    assert t.kid == pytest.approx(few.kid, rel=1e-12)


def test_kid_refuses_bad_arguments_naming_them():
    x = np.zeros((5, 3))
    with pytest.raises(ValueError, match="fx"):
        kid(np.zeros((1, 3)), x)
    with pytest.raises(ValueError, match="fy"):
        kid(x, np.zeros((1, 3)))
    with pytest.raises(ValueError, match="same feature dimension"):
        kid(x, np.zeros((5, 2)))
    for kwargs, name in (({"subsets": 0}, "subsets"), ({"subset_size": 1}, "subset_size"),
                         ({"degree": 0}, "degree"), ({"gamma": -1.0}, "gamma"), ({"coef0": float("nan")}, "coef0"),
                         ({"seed": -1}, "seed")):
        with pytest.raises(ValueError, match=name):
            kid(x, x, **kwargs)


# ----------------------------------------------------------------------------- precision / recall


def test_precision_recall_of_identical_and_of_disjoint_sets():
    rng = np.random.default_rng(11)
    x = rng.standard_normal((200, 5))
    assert precision_recall(x, x).as_dict() == {"precision": 1.0, "recall": 1.0, "k": 3}
    far = precision_recall(x, x + 100.0)
    assert (far.precision, far.recall) == (0.0, 0.0)


def test_recall_of_a_set_covering_half_of_the_support():
    """Real: the integers 0..1999 on a line; fake: 0.5, 1.5, ..., 999.5 (half the support). With k = 3
    every radius is exactly 3 (grids), so the fake balls reach real points up to 999.5 + 3: recall is
    1003/2000; every fake point is 0.5 from a real one: precision 1. Both exact in float64."""
    real = np.c_[np.arange(2000.0), np.zeros(2000)]
    fake = np.c_[np.arange(1000.0) + 0.5, np.zeros(1000)]
    res = precision_recall(real, fake, k=3, batch_size=300)
    assert res.precision == 1.0 and res.recall == 1003 / 2000


@pytest.mark.parametrize("k", [1, 3, 5])
def test_precision_recall_equal_brute_force(k):
    rng = np.random.default_rng(12 + k)
    real = rng.standard_normal((70, 4))
    fake = 0.4 + 1.3 * rng.standard_normal((55, 4))
    ref = naive_precision_recall(real, fake, k)
    for batch_size in (None, 1, 7):
        res = precision_recall(real, fake, k=k, batch_size=batch_size)
        assert (res.precision, res.recall) == pytest.approx(ref, abs=1e-15), batch_size
    assert 0.0 < ref[0] < 1.0 and 0.0 < ref[1] < 1.0  # a case that tests something


def test_precision_recall_refuse_bad_arguments_naming_them():
    x = np.zeros((10, 2))
    with pytest.raises(ValueError, match="real"):
        precision_recall(np.zeros((3, 2)), x, k=3)  # needs n > k
    with pytest.raises(ValueError, match="fake"):
        precision_recall(x, np.zeros((10, 3)))
    with pytest.raises(ValueError, match="k must be an int >= 1"):
        precision_recall(x, x, k=0)
    with pytest.raises(ValueError, match="batch_size"):
        precision_recall(x, x, batch_size=0)


# ----------------------------------------------------------------------------- statistics files


def test_stats_round_trip(tmp_path):
    rng = np.random.default_rng(13)
    mu, sigma = rng.standard_normal(6), spd(6, rng)
    path = save_stats(tmp_path / "ref.npz", mu, sigma, n=1234)
    m, s = load_stats(path)
    assert np.array_equal(m, mu) and np.array_equal(s, sigma) and m.dtype == s.dtype == np.float64
    with np.load(path) as f:  # what pytorch-fid reads
        assert set(f.files) == {"mu", "sigma", "n"} and int(f["n"]) == 1234
    assert sorted(os.listdir(tmp_path)) == ["ref.npz"]  # no temporary file left
    other = save_stats(tmp_path / "ref.stats", torch.from_numpy(mu), torch.from_numpy(sigma))  # path as given
    assert other.name == "ref.stats" and np.array_equal(load_stats(other)[1], sigma)
    # a file written by someone else, in float32
    np.savez(tmp_path / "theirs.npz", mu=mu.astype(np.float32), sigma=sigma.astype(np.float32))
    m32, s32 = load_stats(tmp_path / "theirs.npz")
    assert m32.dtype == np.float64 and np.allclose(s32, sigma, rtol=1e-6)


def _write(path, **arrays):
    with open(path, "wb") as f:
        np.savez(f, **arrays)
    return path


def test_bad_stats_files_are_named(tmp_path):
    eye = np.eye(3)
    with pytest.raises(FileNotFoundError, match="nope.npz"):
        load_stats(tmp_path / "nope.npz")
    with pytest.raises(ValueError, match=f"{tmp_path}.*directory"):
        load_stats(tmp_path)
    text = tmp_path / "text.npz"
    text.write_text("mu, sigma\n")
    with pytest.raises(ValueError, match="text.npz is not an .npz"):
        load_stats(text)
    npy = tmp_path / "array.npy"
    np.save(npy, eye)
    with pytest.raises(ValueError, match="array.npy is not an .npz.*npy"):
        load_stats(npy)
    cut = tmp_path / "cut.npz"
    cut.write_bytes(_write(tmp_path / "full.npz", mu=np.zeros(3), sigma=eye).read_bytes()[:-40])
    with pytest.raises(ValueError, match="cut.npz"):
        load_stats(cut)
    cases = {
        "keys.npz": ({"mean": np.zeros(3), "cov": eye}, r"keys.npz has no mu and no sigma \(keys found: cov, mean\)"),
        "nosigma.npz": ({"mu": np.zeros(3)}, r"nosigma.npz has no sigma \(keys found: mu\)"),
        "mu2d.npz": ({"mu": np.zeros((3, 1)), "sigma": eye}, r"mu2d.npz: mu must have shape \(k,\)"),
        "sigma.npz": ({"mu": np.zeros(3), "sigma": np.eye(4)}, r"sigma.npz: sigma must have shape \(3, 3\)"),
        "nan.npz": ({"mu": np.array([0, np.nan, 0]), "sigma": eye}, "nan.npz: mu has non-finite"),
        "inf.npz": ({"mu": np.zeros(3), "sigma": np.full((3, 3), np.inf)}, "inf.npz: sigma has non-finite"),
        "asym.npz": ({"mu": np.zeros(3), "sigma": eye + np.triu(np.ones((3, 3)), 1)},
                     "asym.npz: sigma must be symmetric"),
        "text_mu.npz": ({"mu": np.array(["a", "b"]), "sigma": eye}, "text_mu.npz: mu must hold real numbers"),
    }
    for name, (arrays, message) in cases.items():
        with pytest.raises(ValueError, match=message):
            load_stats(_write(tmp_path / name, **arrays))
    pickled = tmp_path / "pickled.npz"
    np.savez(pickled, mu=np.array([{"a": 1}], dtype=object), sigma=eye)
    with pytest.raises(ValueError, match="pickled.npz: mu cannot be read"):
        load_stats(pickled)


def test_save_stats_refuses_what_load_stats_would(tmp_path):
    with pytest.raises(ValueError, match="sigma must have shape"):
        save_stats(tmp_path / "a.npz", np.zeros(3), np.eye(2))
    with pytest.raises(ValueError, match="mu has non-finite"):
        save_stats(tmp_path / "a.npz", np.full(2, np.nan), np.eye(2))
    with pytest.raises(ValueError, match="note"):
        save_stats(tmp_path / "a.npz", np.zeros(2), np.eye(2), note={"a": 1})
    assert not os.listdir(tmp_path)


# ----------------------------------------------------------------------------- floors on real data


@pytest.fixture(scope="module")
def digit_features():
    """Digit classifier features (64-d, float64) of: train (1438), test (359), class 0 of the test split
    (27: an independent, mode-collapsed set) and uniform noise images (359)."""
    ev = image_metrics.digits_evaluator()
    noise = torch.rand(359, 1, 16, 16, generator=torch.Generator().manual_seed(0)) * 2 - 1
    return {name: ev.features(images).numpy() for name, images in (
        ("train", digits(split="train").images), ("test", digits(split="test").images),
        ("zeros", digits(classes=0, split="test").images), ("noise", noise))}


@pytest.mark.filterwarnings("ignore:Matrix is singular")  # scipy's sqrtm on singular S1 S2 (still accurate here)
def test_digits_fd_agrees_with_image_metrics_and_sqrtm(digit_features):
    """The same number as ``image_metrics.frechet_distance`` (digits-FD) up to that function's own
    round-off: 31 of the 64 features are dead ReLUs, and clipping only negative eigenvalues (as
    metrics.bw2 does) leaves ~4e-7 relative error (measured against a 40-digit computation, which
    this module matches to 1e-13); scipy's sqrtm formula agrees to 1e-9."""
    tr = digit_features["train"]
    for name in ("test", "zeros", "noise"):
        other = digit_features[name]
        ours = fd_from_features(tr, other)
        assert ours == pytest.approx(image_metrics.frechet_distance(tr, other), rel=1e-6), name
        ref = fd_sqrtm(tr.mean(0), np.cov(tr.T), other.mean(0), np.cov(other.T))
        assert ours == pytest.approx(ref, rel=1e-9), name


def test_scores_separate_held_out_digits_from_wrong_sets(digit_features):
    """Train against held-out test digits (one law) vs against class 0 only and noise. Measured (otgen
    classifier features): FD 73.6 / 5049 / 3384; KID 1484 (stderr 150) / 3.06e5 / 1.00e5; precision,
    recall 0.89, 0.89 / 0.89, 0.09 / 0.44, 0.02. Thresholds are set with wide margins from those."""
    f = digit_features
    tr = f["train"]
    fd = {name: fd_from_features(tr, f[name]) for name in ("test", "zeros", "noise")}
    assert fd["test"] < 0.1 * min(fd["zeros"], fd["noise"]), fd
    kd = {name: kid(tr, f[name]).kid for name in ("test", "zeros", "noise")}
    assert kd["test"] < 0.05 * min(kd["zeros"], kd["noise"]), kd
    pr = {name: precision_recall(tr, f[name]) for name in ("test", "zeros", "noise")}
    assert pr["test"].precision > 0.75 and pr["test"].recall > 0.75, pr
    assert pr["zeros"].precision > 0.7 and pr["zeros"].recall < 0.3, pr  # realistic but one mode
    assert pr["noise"].precision < 0.7 and pr["noise"].recall < 0.3, pr
