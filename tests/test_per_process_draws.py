"""Per-process work that does not grow with the number of processes: keyed draws (``otgen.shard``).

Inside a training step every random draw is keyed by global element: a process computes only its
own rows' numbers, and K processes together draw exactly what one process draws for the whole
batch. Counted here with torch's fake process group, in which this one process is rank 0 of 32.
"""

import pytest
import scipy.stats
import torch
import torch.distributed as dist
from torch.overrides import TorchFunctionMode

import otgen
from otgen import shard
from otgen.train.distributed import ProcessGroup, SingleProcess

LOCAL = 8  # rows per process


# -- the keyed draws ------------------------------------------------------------------------------
def _draw(kind, shape, seed, s=shard.Shard(), dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    with shard.using(s):
        if kind == "randn":
            return shard.randn(shape, generator=g, dtype=dtype)
        if kind == "rand":
            return shard.rand(shape, generator=g, dtype=dtype)
        return shard.randint(5, shape[0], generator=g)


@pytest.mark.parametrize("kind", ["randn", "rand", "randint"])
@pytest.mark.parametrize("world", [2, 3, 8])
def test_the_processes_rows_join_to_the_one_process_draw_bit_for_bit(kind, world):
    shape = (4, 3) if kind != "randint" else (4,)
    whole = _draw(kind, (4 * world, *shape[1:]), seed=7)
    parts = [_draw(kind, shape, seed=7, s=shard.Shard(rank, world)) for rank in range(world)]
    assert torch.equal(torch.cat(parts), whole)


def test_pick_gives_distinct_rows_whose_parts_join_to_the_one_process_pick():
    g = lambda: torch.Generator().manual_seed(3)  # noqa: E731
    with shard.using(shard.Shard()):
        mine, every = shard.pick(50, 12, generator=g())
    assert torch.equal(mine, every) and len(set(every.tolist())) == 12 and every.max() < 50
    for rank in range(3):
        with shard.using(shard.Shard(rank, 3)):
            part, every3 = shard.pick(50, 4, generator=g())
        assert torch.equal(every3, every) and torch.equal(part, every[4 * rank:4 * (rank + 1)])


def test_keyed_draws_have_the_distributions_they_name():
    """Kolmogorov–Smirnov against N(0, 1) and U[0, 1) (float32 and float64), the tail of the normal,
    and the randint counts (chi-square); independent calls and neighbouring elements uncorrelated."""
    n = 200_000
    for dtype in (torch.float32, torch.float64):
        z = _draw("randn", (n,), seed=1, dtype=dtype)
        assert z.dtype == dtype
        assert scipy.stats.kstest(z.double().numpy(), "norm").pvalue > 1e-3
        assert abs(float((z.abs() > 3).double().mean()) - 2 * scipy.stats.norm.sf(3)) < 4e-4
        u = _draw("rand", (n,), seed=2, dtype=dtype)
        assert float(u.min()) >= 0 and float(u.max()) < 1
        assert scipy.stats.kstest(u.double().numpy(), "uniform").pvalue > 1e-3
    counts = torch.bincount(_draw("randint", (n,), seed=3), minlength=5).numpy()
    assert scipy.stats.chisquare(counts).pvalue > 1e-3
    g = torch.Generator().manual_seed(4)
    with shard.using(shard.Shard()):
        a, b = shard.randn((n,), generator=g), shard.randn((n,), generator=g)
    assert abs(float(torch.corrcoef(torch.stack([a, b]))[0, 1])) < 0.01  # successive calls
    assert abs(float(torch.corrcoef(torch.stack([a[1:], a[:-1]]))[0, 1])) < 0.01  # neighbours


def test_outside_a_training_step_the_draws_are_torchs_own():
    g1, g2 = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    assert torch.equal(shard.randn((6, 2), generator=g1), torch.randn((6, 2), generator=g2))


# -- counting the numbers a process draws per training step -----------------------------------------
RANDOM = {"randn", "rand", "randint", "randperm", "normal", "bernoulli", "multinomial", "poisson",
          "rand_like", "randn_like", "randint_like", "normal_", "uniform_", "random_", "exponential_",
          "bernoulli_", "cauchy_", "geometric_", "log_normal_"}


class CountDraws(TorchFunctionMode):
    """Counts the random numbers torch's samplers make (elements of their outputs), plus the keyed
    draws of ``otgen.shard`` (which torch sees as integer arithmetic)."""

    def __init__(self):
        super().__init__()
        self.torch_numbers = 0
        self._keyed_start = shard.numbers_drawn()

    def __torch_function__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        name = getattr(func, "__name__", "")
        if name in RANDOM and isinstance(out, torch.Tensor):
            self.torch_numbers += out.numel()
        return out

    @property
    def total(self) -> int:
        return self.torch_numbers + shard.numbers_drawn() - self._keyed_start


def _points(seed, n=256, d=2, shift=0.0):
    return torch.randn(n, d, generator=torch.Generator().manual_seed(seed)) + shift


def make(name):
    x, y = _points(1), _points(2, shift=1.0)
    small = dict(hidden=(16, 16), seed=0)
    if name == "egnot_replay":
        return otgen.EgNOT(dim=2, eps=0.5, potential={"hidden": [16, 16]}, seed=0,
                           sampler={"name": "langevin", "steps": 3, "chains": {"name": "replay", "size": 64}}), (x, y)
    if name == "egnot_persistent":
        return otgen.EgNOT(dim=2, eps=0.5, potential={"hidden": [16, 16]}, seed=0,
                           sampler={"name": "langevin", "steps": 3, "chains": "persistent"}), (x, y)
    if name == "egnot_fresh_smc":
        return otgen.EgNOT(dim=2, eps=0.5, potential={"hidden": [16, 16]}, seed=0,
                           sampler={"name": "smc", "steps": 4, "chains": "fresh"}), (x, y)
    if name == "egnot_persistent_smc":
        return otgen.EgNOT(dim=2, eps=0.5, potential={"hidden": [16, 16]}, seed=0,
                           sampler={"name": "smc", "steps": 3,
                                    "chains": {"name": "persistent", "refresh_every": 2, "refresh_steps": 4}}), (x, y)
    if name == "uotm":
        mlp = {"name": "mlp", "hidden": [16, 16]}
        return otgen.UOTM(dim=2, tau=0.5, generator=mlp, potential=mlp, critic={"r1": 0.1}, optim_g={"ema": 0.9},
                          seed=0), (x, y)
    if name == "sjko":
        mlp = {"name": "mlp", "hidden": [16, 16]}
        return otgen.SJKO(dim=2, h=0.5, n_phases=2, phases={"instance_noise": 0.1}, generator={**mlp, "noise_dim": 2},
                          potential=mlp, seed=0), (x, y)
    if name in ("wae_mmd", "wae_gan"):
        mlp = {"name": "mlp", "hidden": [16]}
        return otgen.WAE(data_shape=(6,), latent_dim=2, encoder=mlp, decoder=mlp,
                         encoder_type="gaussian", input_noise=0.1, penalty=name[4:], seed=0), (_points(3, d=6),)
    raise KeyError(name)


SOLVERS = ["egnot_replay", "egnot_persistent", "egnot_fresh_smc", "egnot_persistent_smc", "uotm", "sjko",
           "wae_mmd", "wae_gan"]


def numbers_per_step(name, world):
    """Random numbers this process draws per training step with LOCAL rows, as rank 0 of ``world``."""
    def run(steps):
        model, data = make(name)
        context = ProcessGroup(torch.device("cpu")) if world > 1 else SingleProcess()
        with CountDraws() as count:
            otgen.train.train(model, data, n_iters=steps, batch_size=LOCAL * world, progress=False, dist=context)
        return count.total
    return (run(6) - run(4)) / 2  # (S-JKO: steps a multiple of its 2 phases)


@pytest.fixture
def rank_0_of_32():
    from torch.testing._internal.distributed.fake_pg import FakeStore

    dist.init_process_group("fake", store=FakeStore(), rank=0, world_size=32)
    try:
        yield
    finally:
        dist.destroy_process_group()


@pytest.mark.parametrize("name", SOLVERS)
def test_rank_0_of_32_draws_what_one_process_draws_for_the_same_local_batch(name, rank_0_of_32):
    one = numbers_per_step(name, world=1)
    many = numbers_per_step(name, world=32)
    assert one > 0
    assert many <= 1.25 * one, (name, one, many)


def test_numbers_per_step_are_counted():
    """The counter sees torch's samplers and the keyed draws alike."""
    g = torch.Generator().manual_seed(0)
    with CountDraws() as count:
        torch.randn(3, 4, generator=g)
        with shard.using(shard.Shard(0, 4)):
            shard.randn((5, 2), generator=g)
    assert count.torch_numbers == 12 + 1  # randn's, and the keyed draw's key (one random_)
    assert count.total == 12 + 1 + 10  # and rank 0's 5 of the 20 rows of the keyed draw
