"""Interpretation: confusion matrix, most confused pairs, top losses, plots.

Plots are matplotlib figures (the Agg backend, no screen needed); use
``save_figure`` to write a PNG that appears complete or not at all.
"""

import numpy as np

from kerasdl._files import atomic_path


def confusion_matrix(y_true, y_pred, n_classes=None):
    """Counts of (actual, predicted) pairs: rows actual, columns predicted.

    Example:

    >>> confusion_matrix([0, 1, 1], [0, 0, 1]).tolist()
    [[1, 0], [1, 1]]

    Args:
        y_true: int labels ``(n,)`` or one-hot / probabilities ``(n, k)``.
        y_pred: int labels ``(n,)`` or probabilities ``(n, k)``.
        n_classes: int or None. Defaults to the largest label + 1 (or k).

    Returns:
        An int64 array ``(k, k)``.
    """
    t, p = _labels(y_true, "y_true"), _labels(y_pred, "y_pred")
    if len(t) != len(p):
        raise ValueError(f"y_true has {len(t)} rows but y_pred has "
                         f"{len(p)}; pass one prediction per example.")
    k = n_classes or int(max(t.max(initial=0), p.max(initial=0)) + 1)
    k = max(k, _width(y_true), _width(y_pred))
    cm = np.zeros((k, k), dtype=np.int64)
    np.add.at(cm, (t, p), 1)
    return cm


def most_confused(cm, class_names=None, min_val=1):
    """Off-diagonal cells with at least ``min_val`` examples, largest first.

    Example:

    >>> most_confused([[5, 2], [3, 4]], ["cat", "dog"])
    [('dog', 'cat', 3), ('cat', 'dog', 2)]

    Args:
        cm: array ``(k, k)`` from ``confusion_matrix``.
        class_names: sequence of k names or None (use indices).
        min_val: int. Smallest count to report. Defaults to 1.

    Returns:
        A list of ``(actual, predicted, count)`` sorted by count, then by
        actual and predicted index.
    """
    cm = np.asarray(cm)
    names = list(class_names) if class_names is not None else list(
        range(len(cm)))
    if len(names) != len(cm):
        raise ValueError(f"Expected {len(cm)} class names, found "
                         f"{len(names)}.")
    cells = [(int(cm[a, b]), a, b) for a in range(len(cm))
             for b in range(len(cm)) if a != b and cm[a, b] >= min_val]
    cells.sort(key=lambda c: (-c[0], c[1], c[2]))
    return [(names[a], names[b], n) for n, a, b in cells]


def top_losses(y_true, probs, k=9):
    """The ``k`` examples with the largest cross-entropy loss.

    Example:

    >>> idx, losses = top_losses([0, 1], [[0.9, 0.1], [0.8, 0.2]], k=1)
    >>> idx.tolist(), round(float(losses[0]), 3)
    ([1], 1.609)

    Returns:
        ``(indices, losses)``, both of length ``min(k, n)``, loss first.
    """
    p = np.asarray(probs, dtype="float64")
    t = _labels(y_true, "y_true")
    if p.ndim != 2 or len(p) != len(t):
        raise ValueError(f"Expected probabilities (n, k) with n = "
                         f"{len(t)}; found shape {p.shape}.")
    losses = -np.log(np.clip(p[np.arange(len(t)), t], 1e-12, 1.0))
    order = np.argsort(-losses, kind="stable")[:k]
    return order, losses[order]


def accuracy_multi(y_true, probs, threshold=0.5):
    """Multi-label accuracy: share of (example, label) cells right.

    Example:

    >>> accuracy_multi([[1, 0], [1, 1]], [[0.8, 0.6], [0.7, 0.9]])
    0.75
    """
    t, p = _multi(y_true, probs, threshold)
    return float((t == p).mean())


def multilabel_confusion(y_true, probs, threshold=0.5):
    """One 2x2 matrix per label: ``[[tn, fp], [fn, tp]]``.

    Returns:
        An int64 array ``(n_labels, 2, 2)``.
    """
    t, p = _multi(y_true, probs, threshold)
    out = np.zeros((t.shape[1], 2, 2), dtype=np.int64)
    for a in (0, 1):
        for b in (0, 1):
            out[:, a, b] = ((t == a) & (p == b)).sum(axis=0)
    return out


def plot_confusion_matrix(cm, class_names=None, title="Confusion matrix"):
    """A heat map of ``cm`` with counts; returns the Figure."""
    fig, ax = _figure(figsize=(6, 5))
    cm = np.asarray(cm)
    names = class_names if class_names is not None else range(len(cm))
    im = ax.imshow(cm, cmap="Blues")
    fig.colorbar(im, ax=ax)
    ax.set(xticks=range(len(cm)), yticks=range(len(cm)),
           xticklabels=names, yticklabels=names, xlabel="predicted",
           ylabel="actual", title=title)
    for (a, b), v in np.ndenumerate(cm):
        ax.text(b, a, str(v), ha="center", va="center", fontsize=7,
                color="white" if v > cm.max() / 2 else "black")
    fig.tight_layout()
    return fig


def plot_top_losses(images, y_true, probs, class_names=None, k=9):
    """A grid of the ``k`` worst examples titled predicted/actual/loss."""
    idx, losses = top_losses(y_true, probs, k)
    t = _labels(y_true, "y_true")
    pred = np.asarray(probs).argmax(axis=1)
    names = class_names if class_names is not None else range(
        np.asarray(probs).shape[1])
    cols = int(np.ceil(np.sqrt(len(idx)))) or 1
    rows = int(np.ceil(len(idx) / cols)) or 1
    fig, axes = _figure(rows, cols, figsize=(2.5 * cols, 2.5 * rows))
    for ax in np.ravel(axes):
        ax.axis("off")
    for ax, i, loss in zip(np.ravel(axes), idx, losses):
        img = np.asarray(images[i])
        ax.imshow(img.squeeze(), cmap="gray" if img.ndim == 2 or
                  img.shape[-1] == 1 else None)
        ax.set_title(f"{names[pred[i]]}/{names[t[i]]}\n{loss:.2f}",
                     fontsize=8)
    fig.tight_layout()
    return fig


def save_figure(fig, path, dpi=100):
    """Saves ``fig`` as a PNG (complete or absent) and closes it."""
    import matplotlib.pyplot as plt

    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=dpi, format="png")
    plt.close(fig)
    return str(path)


def _figure(rows=1, cols=1, figsize=(6, 4)):
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt.subplots(rows, cols, figsize=figsize)


def _width(y):
    a = np.asarray(y)
    return a.shape[1] if a.ndim == 2 else 0


def _labels(y, arg):
    a = np.asarray(y)
    if a.ndim == 2:
        return a.argmax(axis=1)
    if a.ndim != 1:
        raise ValueError(f"{arg} must be labels (n,) or scores (n, k); "
                         f"found shape {a.shape}.")
    if a.size and (a.min() < 0 or not np.all(np.equal(np.mod(a, 1), 0))):
        raise ValueError(f"{arg} must hold non-negative integer labels.")
    return a.astype(np.int64)


def _multi(y_true, probs, threshold):
    t = np.asarray(y_true)
    p = np.asarray(probs)
    if t.shape != p.shape or t.ndim != 2:
        raise ValueError(
            f"Multi-label targets and scores must both be (n, n_labels); "
            f"found {t.shape} and {p.shape}."
        )
    if not 0 < threshold < 1:
        raise ValueError(f"`threshold` must be in (0, 1). Received: "
                         f"threshold={threshold}.")
    return (t > 0.5).astype(np.int64), (p >= threshold).astype(np.int64)
