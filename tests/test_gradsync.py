"""otgen.gradsync: when the post-accumulate-grad hooks fire, how parameters are cut into buckets, and
(2 gloo processes) that the bucketed all-reduce overlapping the backward pass gives exactly the mean
of the processes' gradients, the numbers of the one flat all-reduce after it (bit for bit with 2
processes), through ``Solver.update`` as well."""

from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn

import otgen
from otgen import gradsync, shard
from otgen.shard import Shard


def _counting_hooks(module):
    counts = {name: 0 for name, _ in module.named_parameters()}
    for name, p in module.named_parameters():
        p.register_post_accumulate_grad_hook(lambda _, name=name: counts.__setitem__(name, counts[name] + 1))
    return counts


def test_a_hook_fires_once_per_backward_however_often_the_parameter_is_used():
    torch.manual_seed(0)
    net, frozen_net = nn.Sequential(nn.Linear(2, 4), nn.Tanh(), nn.Linear(4, 2)), nn.Linear(2, 2)
    counts, frozen_counts = _counting_hooks(net), _counting_hooks(frozen_net)
    frozen_net.requires_grad_(False)
    y = torch.randn(5, 2, requires_grad=True)
    out = net(y)
    (grad_y,) = torch.autograd.grad(out.sum(), y, create_graph=True)  # R1: writes no .grad
    assert set(counts.values()) == {0} and net[0].weight.grad is None
    # the network three times (twice on the data, once on its own output), the double backward, a frozen net
    loss = out.pow(2).sum() + net(net(y)).sum() + grad_y.pow(2).sum() + frozen_net(out).sum()
    loss.backward()
    assert counts == {name: 1 for name in counts}
    assert set(frozen_counts.values()) == {0}
    loss2 = net(y).sum()
    loss2.backward()  # a second backward accumulates again: one more firing each
    assert counts == {name: 2 for name in counts}


def test_buckets_are_consecutive_in_reverse_order_capped_and_of_one_dtype():
    sizes = [100, 300, 200, 50]  # float32: 400, 1200, 800, 200 bytes
    params = [torch.zeros(n) for n in sizes]
    assert gradsync.bucket_indices(params, bucket_bytes=1000, first_bucket_bytes=1000) == [[3, 2], [1], [0]]
    # the first bucket closes at 100 bytes, the others at 2000
    assert gradsync.bucket_indices(params, bucket_bytes=2000, first_bucket_bytes=100) == [[3], [2, 1], [0]]
    # defaults: 1 MiB first, 25 MiB after
    big = [torch.zeros(2**18), torch.zeros(2**18), torch.zeros(2**20), torch.zeros(2**18)]
    assert gradsync.bucket_indices(big) == [[3], [2, 1, 0]]
    mixed = [torch.zeros(4), torch.zeros(4, dtype=torch.float64), torch.zeros(4), torch.zeros(4)]
    assert gradsync.bucket_indices(mixed) == [[3, 2], [1], [0]]
    assert gradsync.bucket_indices([]) == []
    for bad in (0, -5, 1.5, True, "1"):
        with pytest.raises(ValueError, match="bucket_bytes must be an int >= 1"):
            gradsync.bucket_indices(params, bucket_bytes=bad)
        with pytest.raises(ValueError, match="first_bucket_bytes must be an int >= 1"):
            gradsync.Reducer(params, first_bucket_bytes=bad)


def test_one_process_registers_no_hook_and_a_reducer_only_backpropagates():
    mlp = {"name": "mlp", "hidden": [8]}
    model = otgen.UOTM(dim=2, tau=0.5, generator=mlp, potential=mlp, critic={"r1": 0.1}, seed=0)
    for _ in range(2):
        model.train_step(torch.randn(8, 2), torch.randn(8, 2))
    assert [o.reducer for o in model._optimizers.values()] == [None, None]
    net = nn.Linear(3, 1)
    reducer = gradsync.Reducer(net.parameters())
    reducer.backward(net(torch.ones(2, 3)).sum(), Shard())
    assert torch.equal(net.weight.grad, torch.full((1, 3), 2.0)) and torch.equal(net.bias.grad, torch.tensor([2.0]))


# -- 2 gloo processes -------------------------------------------------------------------------------
class _Twice(torch.autograd.Function):
    """w -> w.sum(); its backward first back-propagates into w itself (a backward re-entered inside the
    backward), so w's gradient is accumulated twice in one backward pass."""

    @staticmethod
    def forward(ctx, w):
        ctx.save_for_backward(w)
        return w.sum()

    @staticmethod
    def backward(ctx, grad):
        (w,) = ctx.saved_tensors
        with torch.enable_grad():
            (2 * w).sum().backward()
        return grad * torch.ones_like(w)


def _nets():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(3, 8), nn.Tanh(), nn.Linear(8, 8), nn.Tanh(), nn.Linear(8, 1))
    # the network, an unused one, another optimiser's, a parameter frozen when the reducers are made
    return net, nn.Linear(3, 1), nn.Linear(3, 3), nn.Parameter(torch.randn(3))


def _loss(net, other, late, rank):
    """A loss like the solvers': the network called twice, an R1 double backward, another optimiser's
    parameters in the graph; different data in each process."""
    y = torch.randn(6, 3, generator=torch.Generator().manual_seed(10 + rank)).requires_grad_(True)
    v = net(other(y))
    (grad_y,) = torch.autograd.grad(v.sum(), y, create_graph=True)
    return v.pow(2).mean() + net(y * 2).mean() + 0.5 * grad_y.pow(2).sum() + (y @ late).pow(2).mean()


def _grads(params):
    return [None if p.grad is None else p.grad.clone() for p in params]


def _worker(rank, world, init_file, out):
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    s = Shard(rank, world)
    try:
        net, unused, other, late = _nets()
        # an order unlike the backward's, so that buckets fill out of order
        params = list(net.parameters()) + list(unused.parameters())
        params = [params[i] for i in (3, 0, 6, 5, 1, 7, 2, 4)] + [late]
        found = {}

        def run(sync):
            for p in [*params, *other.parameters()]:
                p.grad = None
            sync(_loss(net, other, late, rank))
            return _grads(params), _grads(other.parameters())

        found["local"] = run(lambda loss: loss.backward())

        def flat(loss):
            loss.backward()
            with shard.using(s):
                shard.average_gradients(params)

        found["flat"] = run(flat)
        late.requires_grad_(False)  # no hook on it: it goes in the last bucket, sent after the backward
        small = gradsync.Reducer(params, bucket_bytes=64, first_bucket_bytes=1)
        whole = gradsync.Reducer(params)
        late.requires_grad_(True)
        found["buckets"] = small.buckets, whole.buckets
        found["small"] = run(lambda loss: small.backward(loss, s))
        found["small_again"] = run(lambda loss: small.backward(loss, s))  # hooks reset between backwards
        found["whole"] = run(lambda loss: whole.backward(loss, s))  # both reducers hook params; one acts
        small.remove()
        whole.remove()

        w, u = torch.ones(3, requires_grad=True), torch.ones(2, requires_grad=True)
        twice = gradsync.Reducer([w, u])  # one bucket: nothing goes out before the error
        try:
            twice.backward(_Twice.apply(w) + u.sum() * 0, s)
        except RuntimeError as e:
            found["twice"] = str(e)

        # through Solver.update: the overlapped buckets (small ones) vs the one flat all-reduce; UOTM (R1, a
        # frozen critic in the generator's loss, clipping, EMA), WAE-MMD (a blocking all-reduce inside the
        # backward, between the buckets')
        g = torch.Generator().manual_seed(1)
        x, y, data = (torch.randn(32, d, generator=g) for d in (2, 2, 6))
        for overlap in (True, False):
            gradsync.OVERLAP, gradsync.BUCKET_BYTES, gradsync.FIRST_BUCKET_BYTES = overlap, 256, 1
            net = {"name": "mlp", "hidden": [16, 16]}
            uotm = otgen.UOTM(dim=2, tau=0.5, generator=net, potential=net, critic={"r1": 0.1},
                              optim_g={"ema": 0.9, "grad_clip": 1.0}, optim_v={"grad_clip": 1.0}, seed=0)
            mlp = {"name": "mlp", "hidden": [16]}
            wae = otgen.WAE(data_shape=(6,), latent_dim=2, encoder=mlp, decoder=mlp, seed=0)
            for name, model, sides in (("uotm", uotm, (x, y + 1)), ("wae", wae, (data,))):
                model.fit(*sides, n_iters=3, batch_size=16, progress=False)
                found[f"{name}_{overlap}"] = model.state_dict()
                found[f"{name}_buckets_{overlap}"] = [None if o.reducer is None else len(o.reducer.buckets)
                                                      for o in model._optimizers.values()]
        torch.save(found, Path(out) / f"{rank}.pt")
    finally:
        dist.destroy_process_group()


def _tensors(state, prefix=""):
    if isinstance(state, torch.Tensor):
        return {prefix: state}
    if isinstance(state, dict):
        return {k: v for key, val in state.items() for k, v in _tensors(val, f"{prefix}/{key}").items()}
    return {}


@pytest.fixture(scope="module")
def two_processes(tmp_path_factory):
    out = tmp_path_factory.mktemp("gradsync")
    mp.spawn(_worker, args=(2, str(out / "init"), str(out)), nprocs=2, join=True)
    return [torch.load(out / f"{r}.pt", weights_only=True) for r in range(2)]


def test_bucketed_overlap_gives_the_mean_of_the_processes_gradients_bit_for_bit(two_processes):
    r0, r1 = two_processes
    small, whole = r0["buckets"]
    assert len(small) >= 5 and small[-1] == [8] and whole == [[7, 6, 5, 4, 3, 2, 1, 0], [8]]
    (local0, other0), (local1, other1) = r0["local"], r1["local"]
    assert local0[2] is None and local0[5] is None  # the unused network's weight and bias (positions 2, 5)
    mean = [None if a is None else (a + b) / 2 for a, b in zip(local0, local1)]
    assert not torch.equal(local0[0], local1[0])  # the processes' own gradients differ
    for key in ("flat", "small", "small_again", "whole"):
        for r in (r0, r1):
            grads, other = r[key]
            for g, m in zip(grads, mean):
                assert (g is None and m is None) or torch.equal(g, m), key
            # another optimiser's parameters keep their own process's gradient
            for g, own in zip(other, other0 if r is r0 else other1):
                assert torch.equal(g, own), key


def test_a_gradient_accumulated_twice_in_one_backward_is_an_error(two_processes):
    for r in two_processes:
        assert "accumulated twice in one backward pass" in r["twice"]


@pytest.mark.parametrize("name", ["uotm", "wae"])
def test_solver_update_overlapped_equals_the_flat_all_reduce_bit_for_bit(two_processes, name):
    for r in two_processes:
        assert all(n >= 2 for n in r[f"{name}_buckets_True"])  # several buckets for every optimiser
        assert set(r[f"{name}_buckets_False"]) == {None}
        a, b = _tensors(r[f"{name}_True"]), _tensors(r[f"{name}_False"])
        assert a.keys() == b.keys() and len(a) >= 8
        for key in a:
            assert torch.equal(a[key], b[key]), key
    a0, a1 = _tensors(two_processes[0][f"{name}_True"]), _tensors(two_processes[1][f"{name}_True"])
    for key in a0:
        assert torch.equal(a0[key], a1[key]), key
