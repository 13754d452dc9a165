"""Grid layouts of 28x28 images shared by the figures."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

GREY = np.full((28, 28, 3), 0.8)


def sample_positions(n: int, k: int) -> list[int]:
    """A fixed, evenly spaced sample of k positions out of n (deterministic)."""
    if n == 0:
        return []
    return sorted({int(round(p)) for p in np.linspace(0, n - 1, min(k, n))})


def _marker(ax, cell) -> None:
    """Draw a cell without an image: None = not run (hatched), text = failed (grey, with reason)."""
    if cell is None:
        ax.imshow(np.ones((28, 28, 3)))
        ax.add_patch(plt.Rectangle((-0.5, -0.5), 28, 28, fill=False, hatch="////", ec="0.75", lw=0))
        ax.text(13.5, 13.5, "not run", ha="center", va="center", fontsize=6, color="0.35")
    else:
        ax.imshow(GREY)
        ax.text(13.5, 13.5, cell, ha="center", va="center", fontsize=5, color="darkred", wrap=True)


def column_scale(col) -> float:
    """Symmetric colour limit of one column of signed images: its largest |value| (1e-6 when empty)."""
    return max([float(np.abs(d).max()) for d in col if isinstance(d, np.ndarray)] + [1e-6])


def image_grid(image_cols, diff_cols, row_labels, title: str):
    """Columns of grey images, then columns of signed differences (RdBu), each on its own scale.

    A cell is an array, None (not run) or a string (failed: the text shown).
    """
    n_rows, n_cols = len(row_labels), len(image_cols) + len(diff_cols)
    fig, axes = plt.subplots(n_rows, n_cols, figsize=(1.25 * n_cols + 1, 1.3 * n_rows + 0.8), squeeze=False)
    for c, (name, col) in enumerate(list(image_cols) + list(diff_cols)):
        is_diff = c >= len(image_cols)
        lim = column_scale(col) if is_diff else 1.0
        for r, img in enumerate(col):
            ax = axes[r, c]
            if not isinstance(img, np.ndarray):
                _marker(ax, img)
            elif is_diff:
                ax.imshow(img, cmap="RdBu_r", vmin=-lim, vmax=lim)
            else:
                ax.imshow(img, cmap="gray", vmin=0, vmax=1)
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                has_image = any(isinstance(d, np.ndarray) for d in col)
                scale = f"scale ±{lim:.2g}" if has_image else "no valid change"
                ax.set_title(f"{name}\n{scale}" if is_diff else name, fontsize=7)
            if c == 0:
                ax.set_ylabel(row_labels[r], fontsize=7)
    fig.suptitle(title + "\n(each Δ column on its own colour scale, printed under its name; red = added, "
                 "blue = removed; hatched = not run on this error, grey = failed)", fontsize=8)
    fig.tight_layout()
    return fig


def heatmap_grid(digits, cols, row_labels, title: str):
    """Rows: errors; columns: methods; each cell a signed heatmap over the faint digit."""
    n_rows, n_cols = len(row_labels), len(cols) + 1
    fig, axes = plt.subplots(n_rows, n_cols, figsize=(1.2 * n_cols + 1, 1.3 * n_rows + 0.6), squeeze=False)
    for r, d in enumerate(digits):
        axes[r, 0].imshow(d, cmap="gray", vmin=0, vmax=1)
        axes[r, 0].set_ylabel(row_labels[r], fontsize=6)
        for c, (name, maps, explained) in enumerate(cols, start=1):
            ax = axes[r, c]
            a = maps[r]
            if a is None:
                _marker(ax, None)
            else:
                lim = max(np.abs(a).max(), 1e-12)
                ax.imshow(d, cmap="gray", vmin=0, vmax=1)
                ax.imshow(a, cmap="RdBu_r", vmin=-lim, vmax=lim, alpha=0.65)
                ax.text(1, 4, str(explained[r]), color="k", fontsize=6,
                        bbox=dict(facecolor="white", alpha=0.7, pad=0.5, lw=0))
            if r == 0:
                ax.set_title(name, fontsize=6)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    axes[0, 0].set_title("digit", fontsize=6)
    fig.suptitle(title + " — red: evidence for, blue: against; each cell scaled to its own max |attr|", fontsize=8)
    fig.tight_layout()
    return fig
