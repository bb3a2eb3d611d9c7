"""Plots (PNG, matplotlib's Agg backend: no display needed)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402


def plot_plan(x: torch.Tensor, y: torch.Tensor, y_hat: torch.Tensor, x_cond: torch.Tensor,
              y_cond: torch.Tensor, path: str | Path, title: str = "") -> Path:
    """Three panels for a 2-D plan: source and target samples; transported samples; the conditional
    clouds pi(·|x) (``y_cond``: (k, m, 2)) of the points ``x_cond`` (k, 2) over the target."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig, axes = plt.subplots(1, 3, figsize=(15, 5), sharex=True, sharey=True)
    kw = dict(s=2, alpha=0.4, linewidths=0)
    axes[0].scatter(*x.T, c="tab:gray", label="source x ~ P", **kw)
    axes[0].scatter(*y.T, c="tab:blue", label="target y ~ Q", **kw)
    axes[0].set_title("source and target")
    axes[1].scatter(*y.T, c="tab:blue", label="target", **kw)
    axes[1].scatter(*y_hat.T, c="tab:orange", label="transported ŷ ~ pi(·|x)", **kw)
    axes[1].set_title("transported samples")
    axes[2].scatter(*y.T, c="lightgray", label="target", **kw)
    colors = ["tab:red", "tab:green", "tab:purple", "tab:brown", "tab:pink"]
    for i, (xc, yc) in enumerate(zip(x_cond, y_cond)):
        c = colors[i % len(colors)]
        axes[2].scatter(*yc.T, c=c, s=3, alpha=0.6, linewidths=0)
        axes[2].scatter([xc[0]], [xc[1]], c=c, marker="*", s=250, edgecolors="black", zorder=3,
                        label=f"x = ({xc[0]:.2g}, {xc[1]:.2g}) and pi(·|x)")
    axes[2].set_title("conditional plans pi(·|x)")
    for ax in axes[:2]:
        ax.legend(loc="upper right", fontsize=8, markerscale=4)
    axes[2].legend(loc="upper right", fontsize=8, markerscale=0.5)
    for ax in axes:
        ax.set_aspect("equal")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
