"""Training settings of EgNOT's Gaussian-mixture potential, one mixture cell at a time (docs/egnot.md).

    python benchmarks/mixture_settings.py VARIANT D:EPS [D:EPS ...]

VARIANT is "lightsb" (bench_peers.lightsb_settings: LightSB as published, 10 000 steps of batch 128)
or a JSON object changing it: ``potential`` / ``optim`` entries, ``lr_mult`` (times LightSB's lr for
eps), ``iters``, ``batch``, and ``"init": "kmeans"`` (the means on the k-means centres of 4096
target samples, placed before ``fit``: scipy's kmeans2, k-means++ seeded 0, the samples drawn with
seed 5). Examples of the exploration in docs/egnot.md:

    python benchmarks/mixture_settings.py lightsb 64:0.1 128:0.1
    python benchmarks/mixture_settings.py '{"optim": {"schedule": "cosine"}, "lr_mult": 1}' 64:0.1
    python benchmarks/mixture_settings.py '{"optim": {"schedule": "cosine"}, "lr_mult": 1, "iters": 8000, "init": "kmeans"}' 128:0.1

Prints one JSON line per cell: training seconds and the suite's scores (100 conditions × 500 draws,
10 000 marginal draws; ``otgen.evaluate.pairs.score_sampler``), on one torch thread.
"""

from __future__ import annotations

import json
import sys
import time

import numpy as np
import torch

from otgen import bench, bench_peers
from otgen.evaluate.pairs import score_sampler
from otgen.models import get_solver


def main(argv: list[str]) -> None:
    torch.set_num_threads(1)
    variant, cells = argv[0], [tuple(float(v) for v in c.split(":")) for c in argv[1:]]
    spec = {} if variant == "lightsb" else json.loads(variant)
    for d, eps in cells:
        d = int(d)
        pair = bench.Cell("mixture", d, eps).pair(0)
        torch.manual_seed(0)
        kw = bench_peers.lightsb_settings(d, eps)
        kw["potential"].update(spec.get("potential", {}))
        kw["optim"].update(spec.get("optim", {}))
        kw["optim"]["lr"] *= spec.get("lr_mult", 1)
        iters, batch = spec.get("iters", 10_000), spec.get("batch", 128)
        model = get_solver("egnot")(**kw, seed=0)
        t0 = time.perf_counter()
        if spec.get("init") == "kmeans":
            from scipy.cluster.vq import kmeans2

            y = pair.target(4096, generator=torch.Generator().manual_seed(5)).double().numpy()
            centres, _ = kmeans2(y, kw["potential"]["components"], minit="++", seed=np.random.default_rng(0))
            model.potential.init_means(torch.tensor(centres, dtype=torch.float32))
        model.fit(pair.source, pair.target, n_iters=iters, batch_size=batch, progress=False)
        train_s = time.perf_counter() - t0
        scores = score_sampler(model.sample, pair, 100, 500, 10_000, 0)
        print(json.dumps({"variant": variant, "D": d, "eps": eps, "train_s": round(train_s, 1),
                          **{k: round(v, 4) for k, v in scores.items() if isinstance(v, float)}}), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
