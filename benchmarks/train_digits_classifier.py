"""Rebuild otgen's digit classifier (the feature network of digits-FD) and record its held-out accuracy.

    python benchmarks/train_digits_classifier.py            # writes src/otgen/weights/digits_classifier.pt

Trains ``otgen.image_metrics.DigitClassifier`` on the *train* split of ``distributions.digits``
(16×16 grey, 1438 images; the evaluator resizes other sizes and reduces colour to the channel max)
with shifts of up to 2 pixels, slight blur and noise as augmentation, and reports its accuracy on the
held-out *test* split (359 images), grey and coloured. The weights are stored in float16 (the file
stays small) with the accuracy, the seed and the settings; ``load_digit_classifier`` reads them with
``torch.load(weights_only=True)``. Deterministic for a seed on one machine (about 1 minute on 2 cores).
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F

from otgen import io
from otgen.distributions import digits
from otgen.image_metrics import WEIGHTS, DigitClassifier, digits_evaluator


def augment(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Random shifts of up to 2 pixels (background −1 fills in), a random slight blur and noise."""
    n = x.shape[0]
    padded = F.pad(x, (2, 2, 2, 2), value=-1.0)
    dx, dy = torch.randint(0, 5, (2, n), generator=gen)
    out = torch.stack([padded[i, :, dy[i]:dy[i] + 16, dx[i]:dx[i] + 16] for i in range(n)])
    blur = torch.rand(n, 1, 1, 1, generator=gen) < 0.3
    smooth = F.avg_pool2d(F.pad(out, (1, 1, 1, 1), value=-1.0), 3, stride=1)
    out = torch.where(blur, 0.5 * out + 0.5 * smooth, out)
    return (out + 0.05 * torch.randn(out.shape, generator=gen)).clamp(-1, 1)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=3000)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=str(WEIGHTS))
    args = p.parse_args()

    torch.manual_seed(args.seed)
    gen = torch.Generator().manual_seed(args.seed)
    x, y = digits(size=16, split="train", return_labels=True)
    net = DigitClassifier()
    opt = torch.optim.Adam(net.parameters(), lr=args.lr)
    t0 = time.perf_counter()
    for step in range(args.steps):
        for group in opt.param_groups:  # cosine to 0
            group["lr"] = args.lr * 0.5 * (1 + torch.cos(torch.tensor(torch.pi * step / args.steps))).item()
        idx = torch.randint(0, len(x), (args.batch_size,), generator=gen)
        loss = F.cross_entropy(net(augment(x[idx], gen)), y[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if (step + 1) % 500 == 0:
            print(f"step {step + 1}: loss {loss.item():.4f}", flush=True)
    net.eval()
    weights = {k: v.detach().half() for k, v in net.state_dict().items()}
    n_params = sum(p.numel() for p in net.parameters())
    io.save_torch({"weights": weights, "seed": args.seed, "steps": args.steps}, args.out)

    ev = digits_evaluator(args.out)  # the stored (float16-rounded) weights
    scores = {}
    for name, kw in (("train", {"split": "train"}), ("test", {"split": "test"}),
                     ("test, coloured", {"split": "test", "colored": True}),
                     ("test, 32×32", {"split": "test", "size": 32})):
        xs, ys = digits(return_labels=True, **{"size": 16, **kw})
        scores[name] = ev.accuracy(xs, ys)
    print(f"trained in {time.perf_counter() - t0:.0f} s; {n_params} parameters; wrote {args.out}")
    print("accuracy: " + ", ".join(f"{k} {100 * v:.2f} %" for k, v in scores.items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
