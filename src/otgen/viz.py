"""Plots (PNG, matplotlib's Agg backend: no display needed)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402

from .checks import check_number  # noqa: E402
from .io import atomic_write  # noqa: E402


def plot_plan(x: torch.Tensor, y: torch.Tensor, y_hat: torch.Tensor, x_cond: torch.Tensor,
              y_cond: torch.Tensor, path: str | Path, title: str = "") -> Path:
    """Three panels for a 2-D plan: source and target samples; transported samples; the conditional
    clouds pi(·|x) (``y_cond``: (k, m, 2)) of the points ``x_cond`` (k, 2) over the target."""
    fig, axes = plt.subplots(1, 3, figsize=(15, 5), sharex=True, sharey=True)
    _source_target_transported(axes[0], axes[1], x, y, y_hat, "source x ~ P", "target y ~ Q",
                               "transported ŷ ~ pi(·|x)")
    axes[2].scatter(*y.T, c="lightgray", label="target", **_DOTS)
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
    return _save(fig, path)


_DOTS = dict(s=2, alpha=0.4, linewidths=0)


def _source_target_transported(ax_data, ax_map, x, y, y_hat, source_label: str = "source x",
                               target_label: str = "target y", map_label: str = "transported T(x)") -> None:
    """Left: source (grey) and target (blue) samples; right: target and transported (orange) samples."""
    ax_data.scatter(*x.T, c="tab:gray", label=source_label, **_DOTS)
    ax_data.scatter(*y.T, c="tab:blue", label=target_label, **_DOTS)
    ax_data.set_title("source and target")
    ax_map.scatter(*y.T, c="tab:blue", label=target_label, **_DOTS)
    ax_map.scatter(*y_hat.T, c="tab:orange", label=map_label, **_DOTS)
    ax_map.set_title("transported samples")


def _as_batch(name: str, t, dim: int | None = None) -> torch.Tensor:
    """``t`` as a float (n, d) CPU tensor (a (n,) vector counts as (n, 1)); ValueError naming ``name``
    if it is not a non-empty batch of vectors, or (with ``dim``) has a number of coordinates other than ``dim``."""
    t = torch.as_tensor(t).detach().cpu()
    if t.ndim == 1 and dim == 1:
        t = t[:, None]
    if t.ndim != 2 or t.shape[0] == 0 or (dim is not None and t.shape[1] != dim):
        want = f"(n, {dim})" if dim is not None else "(n, d)"
        raise ValueError(f"{name} must be a non-empty batch of shape {want}, got shape {tuple(t.shape)}")
    return t.float()


def _save(fig, path: str | Path, dpi: int = 110) -> Path:
    """Save ``fig`` as PNG through a temporary file renamed over ``path`` (never a half-written plot)."""
    path = Path(path)
    atomic_write(path, lambda f: fig.savefig(f, dpi=dpi, format="png"))
    plt.close(fig)
    return path


def plot_1d_transport(x: torch.Tensor, y: torch.Tensor, y_hat: torch.Tensor, path: str | Path,
                      title: str = "") -> Path:
    """Two panels for a 1-D map: left, histograms of the source ``x``, the target ``y`` and the
    transported ``y_hat = T(x)``; right, the scatter of the pairs (x_i, T(x_i)).

    Args:
        x: (n, 1) or (n,) source samples.
        y: (m, 1) or (m,) target samples (m need not equal n).
        y_hat: (n, 1) or (n,) transported samples, ``y_hat[i] = T(x[i])``.
        path: the PNG file to write (folders are created).
    Returns the path. Raises ValueError naming the argument whose shape is wrong.
    """
    x, y, y_hat = _as_batch("x", x, 1)[:, 0], _as_batch("y", y, 1)[:, 0], _as_batch("y_hat", y_hat, 1)[:, 0]
    if y_hat.shape[0] != x.shape[0]:
        raise ValueError(f"y_hat must have one row per row of x ({x.shape[0]}), got {y_hat.shape[0]}")
    lo = float(torch.cat([x, y, y_hat]).min())
    hi = float(torch.cat([x, y, y_hat]).max())
    bins = torch.linspace(lo, hi if hi > lo else lo + 1.0, 81).numpy()
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.5))
    kw = dict(bins=bins, density=True, histtype="stepfilled", alpha=0.35)
    axes[0].hist(x.numpy(), color="tab:gray", label="source x", **kw)
    axes[0].hist(y.numpy(), color="tab:blue", label="target y", **kw)
    axes[0].hist(y_hat.numpy(), bins=bins, density=True, histtype="step", lw=2, color="tab:orange",
                 label="transported T(x)")
    axes[0].set_title("densities")
    axes[0].legend(loc="upper left", fontsize=8)
    axes[1].scatter(x.numpy(), y_hat.numpy(), s=2, alpha=0.4, linewidths=0, c="tab:orange")
    axes[1].set_xlabel("x")
    axes[1].set_ylabel("T(x)")
    axes[1].set_title("map x ↦ T(x)")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return _save(fig, path)


def plot_transport_2d(x: torch.Tensor, y: torch.Tensor, y_hat: torch.Tensor, path: str | Path,
                      title: str = "") -> Path:
    """Two panels for a 2-D map: source ``x`` and target ``y``; target and transported ``y_hat``.

    Args:
        x: (n, 2) source samples.
        y: (m, 2) target samples.
        y_hat: (k, 2) transported samples (usually k = n, T(x)).
        path: the PNG file to write (folders are created).
    Returns the path. Raises ValueError naming the argument whose shape is wrong.
    """
    x, y, y_hat = _as_batch("x", x, 2), _as_batch("y", y, 2), _as_batch("y_hat", y_hat, 2)
    fig, axes = plt.subplots(1, 2, figsize=(10, 5), sharex=True, sharey=True)
    _source_target_transported(axes[0], axes[1], x, y, y_hat)
    for ax in axes:
        ax.legend(loc="upper right", fontsize=8, markerscale=4)
        ax.set_aspect("equal")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return _save(fig, path)


def plot_phases(y: torch.Tensor, phase_samples, path: str | Path, title: str = "",
                x: torch.Tensor | None = None) -> Path:
    """A grid of 2-D scatters, one panel per S-JKO phase k: the samples T_k # mu_0 (orange) over the
    target ``y`` (light grey). With ``x`` (samples of mu_0), a first panel shows it (green).

    Args:
        y: (m, 2) target samples.
        phase_samples: a non-empty list of (n_k, 2) tensors, entry k the samples of phase k.
        path: the PNG file to write (folders are created).
        x: optional (n, 2) samples of the initial measure mu_0.
    Returns the path. Raises ValueError naming the argument whose shape is wrong.
    """
    y = _as_batch("y", y, 2)
    if not isinstance(phase_samples, (list, tuple)) or not phase_samples:
        got = "an empty list" if isinstance(phase_samples, (list, tuple)) else f"a {type(phase_samples).__name__}"
        raise ValueError(f"phase_samples must be a non-empty list of (n, 2) tensors, one per phase, got {got}")
    phases = [_as_batch(f"phase_samples[{k}]", s, 2) for k, s in enumerate(phase_samples)]
    panels = ([("mu_0 (source)", _as_batch("x", x, 2))] if x is not None else []) \
        + [(f"phase {k}: T_{k} # mu_0", s) for k, s in enumerate(phases)]
    rows = -(-len(panels) // 5)  # at most 5 panels a row, rows as evenly filled as possible
    cols = -(-len(panels) // rows)
    everything = torch.cat([y] + [p for _, p in panels])
    lo, hi = torch.quantile(everything, 0.001, dim=0), torch.quantile(everything, 0.999, dim=0)
    pad = 0.05 * (hi - lo).max().clamp(min=1e-6)
    aspect = min(max(float((hi[1] - lo[1] + 2 * pad) / (hi[0] - lo[0] + 2 * pad)), 0.3), 3.0)  # height / width
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 3.2 * aspect * rows + 0.6), sharex=True, sharey=True,
                             squeeze=False)
    for ax, (name, s) in zip(axes.flat, panels):
        ax.scatter(*y.T, c="lightgray", s=4, alpha=0.6, linewidths=0)
        ax.scatter(*s.T, c="tab:green" if name.startswith("mu_0") else "tab:orange", s=2, alpha=0.5, linewidths=0)
        ax.set_title(name, fontsize=9)
        ax.set_xlim(float(lo[0] - pad), float(hi[0] + pad))
        ax.set_ylim(float(lo[1] - pad), float(hi[1] + pad))
        ax.set_aspect("equal")
    for ax in list(axes.flat)[len(panels):]:
        ax.axis("off")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return _save(fig, path)


def plot_run(arrays: dict, folder: str | Path, name: str = "") -> Path:
    """The end-of-run plot of 1-D or 2-D vector data, chosen by what ``arrays`` holds (``x``, ``y``,
    ``y_hat`` (n, d); optionally ``phases`` (K, n, 2)): ``phases.png`` (one panel per phase) if there
    are phases in 2-D, else ``transport_1d.png`` or ``transport_2d.png``. ``name`` heads the title.
    Returns the PNG's path."""
    x, y, y_hat = arrays["x"], arrays["y"], arrays["y_hat"]
    folder = Path(folder)
    if x.shape[1] == 2 and "phases" in arrays:
        phases = list(arrays["phases"])
        return plot_phases(y, phases, folder / "phases.png", x=x,
                           title=f"{name}: T_k # mu_0 for the {len(phases)} trained phases (grey: target)")
    plot_fn, file = (plot_1d_transport, "transport_1d.png") if x.shape[1] == 1 else (plot_transport_2d,
                                                                                   "transport_2d.png")
    return plot_fn(x, y, y_hat, folder / file, title=f"{name}: source, target and T(x)")


# ----------------------------------------------------------------------------- images


def _image_batch(name: str, t) -> torch.Tensor:
    """``t`` as a float (n, C, H, W) CPU tensor with C in {1, 3}; ValueError naming ``name`` otherwise."""
    t = torch.as_tensor(t).detach().cpu().float()
    if t.ndim != 4 or t.shape[0] == 0 or t.shape[1] not in (1, 3):
        raise ValueError(f"{name} must be a non-empty batch of images (n, C, H, W) with C in (1, 3), "
                         f"got shape {tuple(t.shape)}")
    return t


def image_tiles(images, nrow: int, pad: int = 1):
    """(n, C, H, W) images in [−1, 1] -> one (rows·(H+pad)+pad, nrow·(W+pad)+pad, 3) array in [0, 1]:
    a grid of ``nrow`` images a row, on a grey background. Grey images are shown grey."""
    import numpy as np

    x = _image_batch("images", images)
    n, c, h, w = x.shape
    x = ((x.clamp(-1, 1) + 1) / 2).expand(n, 3, h, w) if c == 1 else (x.clamp(-1, 1) + 1) / 2
    rows = -(-n // nrow)
    canvas = np.full((rows * (h + pad) + pad, nrow * (w + pad) + pad, 3), 0.5, dtype=np.float32)
    for i in range(n):
        r, col = divmod(i, nrow)
        canvas[pad + r * (h + pad):pad + r * (h + pad) + h, pad + col * (w + pad):pad + col * (w + pad) + w] = \
            x[i].permute(1, 2, 0).numpy()
    return canvas


def plot_image_grid(images, path: str | Path, nrow: int = 10, title: str = "") -> Path:
    """A PNG of ``images`` (n, C, H, W) in [−1, 1], ``nrow`` a row."""
    canvas = image_tiles(images, nrow)
    fig, ax = plt.subplots(figsize=(max(3.0, canvas.shape[1] / 22), max(3.0, canvas.shape[0] / 22) + 0.4))
    ax.imshow(canvas, interpolation="nearest")
    ax.axis("off")
    if title:
        ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return _save(fig, path)


def plot_image_pairs(x, y, path: str | Path, title: str = "", columns: tuple[str, str] = ("source", "outputs"),
                     groups_per_row: int | None = None) -> Path:
    """Paired images side by side: each ``x_i`` (n, C, H, W) followed by its outputs ``y_i`` ((n, C', H, W)
    or (n, k, C', H, W), k outputs per x), ``groups_per_row`` such groups a row (default: 5 pairs a row
    for k = 1, else 1). Grey and colour may be mixed. ``columns`` label the two sides."""
    x = _image_batch("x", x)
    y = torch.as_tensor(y).detach().cpu().float()
    if y.ndim == 4:
        y = y[:, None]
    if y.ndim != 5 or y.shape[0] != x.shape[0] or tuple(y.shape[3:]) != tuple(x.shape[2:]):
        raise ValueError(f"y must be (n, C, H, W) or (n, k, C, H, W) with the n, H, W of x {tuple(x.shape)}, "
                         f"got {tuple(y.shape)}")
    n, k = y.shape[:2]
    if x.shape[1] != y.shape[2]:  # grey beside colour: show both in colour
        x = x.expand(n, 3, *x.shape[2:]) if x.shape[1] == 1 else x
        y = y.expand(n, k, 3, *y.shape[3:]) if y.shape[2] == 1 else y
    groups = groups_per_row or (5 if k == 1 else 1)
    groups = min(groups, n)
    tiles = torch.cat([x[:, None], y], dim=1).reshape(n * (k + 1), *y.shape[2:])
    canvas = image_tiles(tiles, nrow=groups * (k + 1))
    fig, ax = plt.subplots(figsize=(max(3.0, canvas.shape[1] / 22), max(3.0, canvas.shape[0] / 22) + 0.4))
    ax.imshow(canvas, interpolation="nearest")
    width = x.shape[3] + 1  # a tile and its padding
    for g in range(groups):  # a line after each source image, a thicker one between groups
        ax.axvline(g * (k + 1) * width + width + 0.5, color="white", lw=1.0)
        if g:
            ax.axvline(g * (k + 1) * width + 0.5, color="black", lw=2.0)
    ax.axis("off")
    ax.set_title(f"{title}\n{columns[0]} | {columns[1]}" if title else f"{columns[0]} | {columns[1]}", fontsize=9)
    fig.tight_layout()
    return _save(fig, path)


def plot_image_draws(x, draws, path: str | Path, title: str = "", n_rows: int = 8) -> Path:
    """Several draws of a stochastic plan per source image: row i is ``x_i`` | ``draws[i, 0]`` ...
    ``draws[i, k−1]``, for the first ``n_rows`` sources.

    Args:
        x: (n, C, H, W) source images in [−1, 1].
        draws: (n, k, C', H, W) in [−1, 1], k draws per source (grey and colour may be mixed).
        path: the PNG file to write (folders are created).
    Returns the path. Raises ValueError naming the argument whose shape is wrong.
    """
    draws = _draw_batch(draws)
    check_number("n_rows", n_rows, low=1, integer=True)
    k = draws.shape[1]
    return plot_image_pairs(x[:n_rows], draws[:n_rows], path, title=title, groups_per_row=1,
                            columns=("source", f"{k} draw{'s' if k > 1 else ''}"))


def _draw_batch(draws) -> torch.Tensor:
    """``draws`` as a float (n, k, C, H, W) CPU tensor; ValueError otherwise."""
    draws = torch.as_tensor(draws).detach().cpu().float()
    if draws.ndim != 5 or 0 in draws.shape[:2]:
        raise ValueError(f"draws must be (n, k, C, H, W), k draws per source image, got shape {tuple(draws.shape)}")
    return draws


def _phase_batch(phases) -> torch.Tensor:
    """``phases`` as a float (K, n, C, H, W) CPU tensor; ValueError otherwise."""
    phases = torch.as_tensor(phases).detach().cpu().float()
    if phases.ndim != 5 or 0 in phases.shape[:2]:
        raise ValueError(f"phases must be (K, n, C, H, W): the outputs of every phase for the same sources, "
                         f"got shape {tuple(phases.shape)}")
    return phases


def plot_image_phases(x, phases, path: str | Path, title: str = "", n_rows: int = 8) -> Path:
    """The flow of an S-JKO run on images: row i is the source ``x_i`` | its image under every phase,
    T_1(x_i) ... T_K(x_i) (columns = phases), for the first ``n_rows`` sources.

    Args:
        x: (n, C, H, W) source images (noise) in [−1, 1] (clamped for display).
        phases: (K, n, C, H, W), entry k the outputs of phase k for the same ``x``.
        path: the PNG file to write (folders are created).
    Returns the path. Raises ValueError naming the argument whose shape is wrong.
    """
    phases = _phase_batch(phases)
    check_number("n_rows", n_rows, low=1, integer=True)
    k = phases.shape[0]
    return plot_image_pairs(x[:n_rows], phases[:, :n_rows].transpose(0, 1), path, title=title, groups_per_row=1,
                            columns=("source x", f"phases 1 … {k}" if k > 1 else "phase 1"))


PHASE_GRID = 64  # images in each phase_{k}.png of an S-JKO run
PHASE_ROWS = 8  # sources in the phases.png overview and in draws.png


def plot_image_run(arrays: dict, folder: str | Path, name: str = "", n_show: int = 100) -> list[Path]:
    """The end-of-run PNGs of image data, from what ``arrays`` holds: ``samples.png`` (``y_hat``, the
    model's outputs), ``data.png`` (``y``, data samples), ``reconstructions.png`` (``y`` | ``y_rec``,
    if present) and, when the sources ``x`` are images too (translation), ``transport.png``
    (``x`` | ``y_hat``). At most ``n_show`` images each. With ``phases`` (K, n, C, H, W; S-JKO: T_k(x)
    of every trained phase): ``phase_1.png`` ... ``phase_K.png`` (a grid of each phase's outputs) and
    ``phases.png`` (sources | every phase, :func:`plot_image_phases`). With ``draws`` (n, k, C, H, W;
    k draws of a stochastic plan per source): ``draws.png`` (:func:`plot_image_draws`). Returns the paths."""
    folder = Path(folder)
    y, y_hat = arrays["y"][:n_show], arrays["y_hat"][:n_show]
    paths = [plot_image_grid(y_hat, folder / "samples.png", title=f"{name}: samples"),
             plot_image_grid(y, folder / "data.png", title=f"{name}: data")]
    if "y_rec" in arrays:
        m = min(len(y), 20)
        paths.append(plot_image_pairs(y[:m], arrays["y_rec"][:m], folder / "reconstructions.png",
                                      title=f"{name}: reconstructions", columns=("data", "reconstruction")))
    x = arrays["x"]
    if x.ndim == 4:
        m = min(len(x), 20)
        paths.append(plot_image_pairs(x[:m], y_hat[:m], folder / "transport.png", title=f"{name}: transport",
                                      columns=("source", "T(x)")))
    if "phases" in arrays:
        phases = _phase_batch(arrays["phases"])
        n_phases = phases.shape[0]
        numbers = [int(k) for k in arrays.get("phase_numbers", range(1, n_phases + 1))]
        total = max(numbers)
        for k, images in zip(numbers, phases):
            paths.append(plot_image_grid(images[:min(n_show, PHASE_GRID)], folder / f"phase_{k}.png", nrow=8,
                                         title=f"{name}: phase {k} of {total}"))
        title = (f"{name}: the same sources through phases {', '.join(map(str, numbers))} of {total}"
                 if "phase_numbers" in arrays else f"{name}: the same sources through the {n_phases} phases")
        if x.ndim == 4:
            paths.append(plot_image_phases(x, phases, folder / "phases.png", title=title, n_rows=PHASE_ROWS))
        else:  # sources that are not images: the phases' outputs only, one source a row
            paths.append(plot_image_grid(phases[:, :PHASE_ROWS].transpose(0, 1).flatten(0, 1),
                                         folder / "phases.png", nrow=n_phases, title=title))
    if "draws" in arrays:
        draws, title = _draw_batch(arrays["draws"]), f"{name}: draws per source"
        if x.ndim == 4:
            paths.append(plot_image_draws(x, draws, folder / "draws.png", title=title, n_rows=PHASE_ROWS))
        else:  # sources that are not images: the draws only, one source a row
            paths.append(plot_image_grid(draws[:PHASE_ROWS].flatten(0, 1), folder / "draws.png",
                                         nrow=draws.shape[1], title=title))
    return paths
