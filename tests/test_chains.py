"""Chain starts: replay buffer bookkeeping and persistent chains."""

import torch

from otgen.sampling import PersistentChains, ReplayBuffer, noise_init


def test_replay_buffer_reinitialises_the_promised_fraction_and_replays_x_with_y():
    gen = torch.Generator().manual_seed(0)
    buf = ReplayBuffer(noise_init((2,), scale=1e-3), capacity=1000, reinit_prob=0.2)
    stored_y = torch.arange(1000.0).repeat(2, 1).T + 100.0  # y_i = (100 + i, 100 + i)
    stored_x = -stored_y
    buf.end(stored_y, stored_x, None)
    x = torch.zeros(20000, 2)
    y0, x_used, _ = buf.begin(x, gen)
    replayed = y0[:, 0] >= 100.0
    assert abs(replayed.float().mean().item() - 0.8) < 0.01
    assert torch.equal(x_used[replayed], -y0[replayed])   # a replayed chain keeps its own x
    assert torch.equal(x_used[~replayed], x[~replayed])   # a fresh chain takes the batch's x
    assert y0[~replayed].abs().max() < 0.01


def test_replay_buffer_is_fifo_and_roundtrips():
    buf = ReplayBuffer(noise_init((1,)), capacity=5)
    for start in (0, 3, 6):
        block = torch.arange(start, start + 3.0).unsqueeze(1)
        buf.end(block, block, None)
    assert buf.size == 5
    assert sorted(buf.y[:, 0].tolist()) == [4.0, 5.0, 6.0, 7.0, 8.0]  # the oldest four were overwritten
    other = ReplayBuffer(noise_init((1,)), capacity=5)
    other.load_state_dict(buf.state_dict())
    assert torch.equal(other.y, buf.y) and other.head == buf.head


def test_persistent_chains_advance_distinct_chains_and_write_back():
    gen = torch.Generator().manual_seed(0)
    source = torch.randn(50, 2, generator=gen)
    chains = PersistentChains(noise_init((2,)), source, gen)
    y0, x, idx = chains.begin(torch.zeros(40, 2), gen)
    assert len(set(idx.tolist())) == 40
    assert torch.equal(x, source[idx])
    chains.end(y0 + 1.0, x, idx)
    assert torch.equal(chains.y[idx], y0 + 1.0)
    restored = PersistentChains.restored(chains.state_dict())
    assert torch.equal(restored.y, chains.y) and torch.equal(restored.source, source)
