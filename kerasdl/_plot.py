"""Matplotlib helpers shared by ``interpret`` and ``show``.

Figures are ``matplotlib.figure.Figure`` objects made without pyplot: no
screen and no global figure list (nothing to close, no double display in
notebooks); a PNG is rendered by the Agg canvas. ``save`` writes it so
that it appears complete or not at all.
"""

import math
import sys
import textwrap

import numpy as np

from kerasdl._files import atomic_path

RIGHT, WRONG = "black", "red"
# True points: green circles; predicted points: red crosses.
TRUE_POINTS = {"marker": "o", "s": 40, "facecolors": "none",
               "edgecolors": "lime", "linewidths": 2}
PRED_POINTS = {"marker": "+", "s": 70, "c": "red", "linewidths": 2}
MIN_FONT = 8


def figure(rows=1, cols=1, figsize=(6, 4)):
    """A new Figure and its axes as a 2-D array ``(rows, cols)``."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize)
    return fig, fig.subplots(rows, cols, squeeze=False)


def save(fig, path, dpi=100):
    """Writes ``fig`` as a PNG at ``path`` (complete or absent).

    A figure made through pyplot is closed afterwards.
    """
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=dpi, format="png")
    pyplot = sys.modules.get("matplotlib.pyplot")
    if pyplot is not None and getattr(fig.canvas, "manager", None):
        pyplot.close(fig)
    return str(path)


def displayable(image):
    """An image array ready for ``imshow``: ``(array, cmap, vmax)``.

    uint8 images are shown as they are. Float images in [0, 1] are shown
    as they are, those in [0, 255] divided by 255, others (normalised
    inputs) stretched from their minimum to their maximum.

    Raises:
        ValueError: not an image of shape (h, w), (h, w, 1), (h, w, 3) or
            (h, w, 4).
    """
    a = np.asarray(image)
    if a.ndim == 3 and a.shape[-1] == 1:
        a = a[..., 0]
    if a.ndim not in (2, 3) or (a.ndim == 3 and a.shape[-1] not in (3, 4)):
        raise ValueError(
            f"Expected images of shape (height, width), (height, width, 1) "
            f"or (height, width, 3); found one of shape {np.shape(image)}. "
            f"Pass the batches of images the model reads.")
    cmap = "gray" if a.ndim == 2 else None
    if a.dtype == np.uint8:
        return a, cmap, 255
    a = np.nan_to_num(a.astype("float32"))
    low, high = float(a.min(initial=0)), float(a.max(initial=0))
    if low >= 0 and high <= 1:
        return a, cmap, 1
    if low >= 0 and high <= 255:
        return a / 255.0, cmap, 1
    return (a - low) / max(high - low, 1e-12), cmap, 1


def image_grid(images, titles, *, colors=None, ncols=None, marks=None,
               cell=2.6):
    """A grid of images with one title each; unused cells are removed.

    Args:
        images: sequence of image arrays.
        titles: sequence of str, one per image.
        colors: sequence of colours of the titles (and of a frame drawn
            around an image whose colour is ``WRONG``), or None.
        ncols: int or None. Columns; None gives a square-ish grid.
        marks: sequence (one per image) of lists of ``(points, style)``:
            ``points`` an array ``(k, 2)`` of (x, y) in [-1, 1] (-1 is the
            left or top edge), ``style`` a dict for ``Axes.scatter``.
        cell: float. Inches per image.

    Returns:
        The Figure.
    """
    n = len(images)
    ncols = min(ncols or math.ceil(math.sqrt(n)), n)
    nrows = math.ceil(n / ncols)
    size = max(MIN_FONT, min(12, cell * 4))
    width = max(10, int(cell * 9))
    wrapped = ["\n".join(textwrap.fill(line, width) for line in
                          str(t).split("\n")) for t in titles]
    lines = max([t.count("\n") + 1 for t in wrapped] + [1])
    fig, axes = figure(nrows, ncols, figsize=(
        cell * ncols, (cell + lines * size / 72 * 1.3) * nrows))
    colors = colors or [RIGHT] * n
    marks = marks or [[] for _ in range(n)]
    for i, ax in enumerate(axes.ravel()):
        if i >= n:
            fig.delaxes(ax)
            continue
        img, cmap, vmax = displayable(images[i])
        ax.imshow(img, cmap=cmap, vmin=0, vmax=vmax)
        ax.set_xticks([])
        ax.set_yticks([])
        for spine in ax.spines.values():
            spine.set_visible(colors[i] == WRONG)
            spine.set_color(WRONG)
            spine.set_linewidth(3)
        h, w = img.shape[:2]
        for points, style in marks[i]:
            p = np.asarray(points, dtype="float64").reshape(-1, 2)
            ax.scatter((p[:, 0] + 1) / 2 * w - 0.5,
                       (p[:, 1] + 1) / 2 * h - 0.5, **style)
        ax.set_xlim(-0.5, w - 0.5)
        ax.set_ylim(h - 0.5, -0.5)
        ax.set_title(wrapped[i], color=colors[i], fontsize=size)
    fig.tight_layout()
    return fig


def cell_font(figure_inches, cells):
    """Font size (points) of numbers in ``cells`` equal cells across
    ``figure_inches``: large enough to read, small enough to fit."""
    cell_points = figure_inches * 72 * 0.7 / max(cells, 1)
    return float(np.clip(cell_points * 0.3, MIN_FONT, 16))


def heatmap(ax, matrix, *, labels, xlabel, ylabel, title, font, tick_font):
    """Draws ``matrix`` with its counts on ``ax`` (white on dark cells)."""
    m = np.asarray(matrix)
    ax.imshow(m, cmap="Blues", vmin=0, vmax=max(int(m.max(initial=0)), 1))
    k = len(m)
    ax.set_xticks(range(m.shape[1]))
    ax.set_yticks(range(k))
    ax.set_xticklabels(labels[1] if isinstance(labels, tuple) else labels,
                       fontsize=tick_font, rotation=90 if k > 4 else 0)
    ax.set_yticklabels(labels[0] if isinstance(labels, tuple) else labels,
                       fontsize=tick_font)
    ax.set_xlabel(xlabel, fontsize=tick_font)
    ax.set_ylabel(ylabel, fontsize=tick_font)
    ax.set_title(title, fontsize=tick_font + 1)
    top = m.max(initial=0)
    for (a, b), v in np.ndenumerate(m):
        ax.text(b, a, str(v), ha="center", va="center", fontsize=font,
                color="white" if v > top / 2 else "black")
