"""Plot helpers shared by every experiment (matplotlib, Agg backend: no display needed)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (the backend must be chosen first)
import numpy as np  # noqa: E402


def _save(fig, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def curves(path: Path, series: dict[str, tuple[list, list]], title: str, xlabel: str = "step",
           ylabel: str = "loss", logy: bool = False, hlines: dict[str, float] | None = None, logx: bool = False,
           marker: str | None = None) -> Path:
    """Several named (x, y) curves on one axis; `hlines` marks reference levels (e.g. a baseline)."""
    fig, ax = plt.subplots(figsize=(6, 4))
    for name, (x, y) in series.items():
        ax.plot(x, y, label=name, marker=marker)
    if logy:
        ax.set_yscale("log")
    if logx:
        ax.set_xscale("log")
    for name, level in (hlines or {}).items():  # after the scales: the label sits at the axis' left end
        ax.axhline(level, linestyle="--", color="gray", linewidth=1)
        ax.annotate(name, (ax.get_xlim()[0], level), fontsize=8, color="gray", va="bottom")
    ax.set(title=title, xlabel=xlabel, ylabel=ylabel)
    ax.grid(alpha=0.3)
    ax.legend()
    return _save(fig, path)


def image_grid(path: Path, images, titles: list[str] | None = None, ncols: int = 8, title: str = "",
               cmap: str = "gray") -> Path:
    """Images as (N, H, W) or (N, C, H, W) with values in [0, 1], laid out in a grid."""
    images = np.asarray(images, dtype=np.float32)
    if images.ndim == 4:
        images = images.transpose(0, 2, 3, 1) if images.shape[1] in (3, 4) else images[:, 0]
    n = len(images)
    ncols = min(ncols, n)
    nrows = -(-n // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(1.4 * ncols, 1.5 * nrows), squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i < n:
            ax.imshow(np.clip(images[i], 0, 1), cmap=cmap, vmin=0, vmax=1)
            if titles:
                ax.set_title(titles[i], fontsize=7)
    if title:
        fig.suptitle(title)
    return _save(fig, path)


def heatmap(path: Path, matrix, title: str, xlabels: list[str] | None = None, ylabels: list[str] | None = None,
            annotate: bool = True, cmap: str = "viridis") -> Path:
    matrix = np.asarray(matrix, dtype=np.float64)
    fig, ax = plt.subplots(figsize=(0.6 * matrix.shape[1] + 2, 0.45 * matrix.shape[0] + 1.5))
    im = ax.imshow(matrix, cmap=cmap, aspect="auto")
    fig.colorbar(im, ax=ax)
    if xlabels is not None:
        ax.set_xticks(range(len(xlabels)), xlabels, fontsize=8)
    if ylabels is not None:
        ax.set_yticks(range(len(ylabels)), ylabels, fontsize=8)
    if annotate:
        for (r, c), v in np.ndenumerate(matrix):
            ax.text(c, r, f"{v:.2f}", ha="center", va="center", fontsize=7, color="white")
    ax.set_title(title)
    return _save(fig, path)


def bars(path: Path, values: dict[str, float], title: str, ylabel: str = "",
         reference: tuple[str, float] | None = None) -> Path:
    fig, ax = plt.subplots(figsize=(max(4, 0.9 * len(values) + 2), 4))
    ax.bar(list(values), list(values.values()), color="tab:blue")
    if reference:
        ax.axhline(reference[1], linestyle="--", color="gray", label=reference[0])
        ax.legend()
    ax.set(title=title, ylabel=ylabel)
    ax.grid(axis="y", alpha=0.3)
    return _save(fig, path)
