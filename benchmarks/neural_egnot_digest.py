"""A digest of neural EgNOT's trained weights and draws, to compare code versions bit for bit.

    python benchmarks/neural_egnot_digest.py          # in each checkout, e.g. a worktree of the base
    PYTHONPATH=OTHER/src python benchmarks/neural_egnot_digest.py

Two short runs with otgen's defaults on one thread: the tempered-SMC sampler on a D = 2 Gaussian
pair (150 steps, then 16 draws for each of 8 source points) and the Langevin sampler on a D = 16 pair
(100 steps). Equal digests mean the same float results: the code path is unchanged for these runs.
"""

from __future__ import annotations

import hashlib

import torch

import otgen
from otgen.groundtruth import GaussianEOTPair


def digest(tensors) -> str:
    h = hashlib.sha256()
    for t in tensors:
        h.update(t.detach().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


def main() -> None:
    torch.set_num_threads(1)
    print("otgen from", otgen.__file__)
    pair = GaussianEOTPair(dim=2, eps=0.1, seed=0)
    smc = otgen.EgNOT(dim=2, eps=0.1, seed=0)
    smc.fit(pair.source, pair.target, n_iters=150, batch_size=128, progress=False)
    x = pair.source(8, generator=torch.Generator().manual_seed(3))
    print("smc, D = 2: weights", digest(smc.potential.parameters()), "draws", digest([smc.sample(x, 16)]))
    pair = GaussianEOTPair(dim=16, eps=1.0, seed=2)
    langevin = otgen.EgNOT(dim=16, eps=1.0, seed=1, sampler={"name": "langevin", "steps": 20, "sample_steps": 30})
    langevin.fit(pair.source, pair.target, n_iters=100, batch_size=64, progress=False)
    print("langevin, D = 16: weights", digest(langevin.potential.parameters()))


if __name__ == "__main__":
    main()
