"""Interpretation: confusion matrix, most confused pairs, top losses, plots.

The module itself is callable: ``kerasdl.interpret(model, batches)``
predicts ``batches`` with ``model`` and returns an ``Interpretation``
(confusion matrix or per-label 2x2 matrices, most confused classes, top
losses, most uncertain and most confidently wrong examples, label-wise
metrics, plots); see ``kerasdl.interpretation.interpret`` for its
arguments. The functions below work on arrays of targets and
probabilities.

Plots are matplotlib figures made without a screen; pass ``path=`` or use
``save_figure`` to write a PNG that appears complete or not at all.

Example:

>>> import keras, numpy as np, kerasdl
>>> x = np.zeros((4, 2), "float32")
>>> model = keras.Sequential([keras.Input((2,)),
...                           keras.layers.Dense(2, activation="softmax")])
>>> interp = kerasdl.interpret(model, (x, np.array([0, 1, 1, 1])),
...                            class_names=["cat", "dog"], verbose=0)
>>> int(interp.confusion_matrix().sum()), len(interp.top_losses(2)[0])
(4, 2)
"""

import sys
import types

import numpy as np

from kerasdl import _plot


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

    A label is predicted present when its probability is above
    ``threshold``. On arrays it returns a float. Given backend tensors (as
    when passed to ``model.compile(metrics=[accuracy_multi])``) it returns
    each example's share of labels right as a tensor, which Keras
    averages; ``kerasdl.AccuracyMulti(threshold)`` is the metric object
    for ``compile`` (it saves with the model).

    Example:

    >>> accuracy_multi([[1, 0], [1, 1]], [[0.8, 0.6], [0.7, 0.9]])
    0.75

    Args:
        y_true: array ``(n, n_labels)`` of 0/1 targets.
        probs: array ``(n, n_labels)`` of probabilities.
        threshold: float in (0, 1). Defaults to 0.5.

    Returns:
        A float (a tensor of shape ``(n,)`` for tensor inputs).

    Raises:
        ValueError: shapes differ or ``threshold`` is outside (0, 1).
    """
    if _is_backend_tensor(y_true) or _is_backend_tensor(probs):
        from kerasdl import metrics

        if not 0 < threshold < 1:
            raise ValueError(f"`threshold` must be in (0, 1). Received: "
                             f"threshold={threshold}.")
        return metrics.per_example_accuracy(y_true, probs, threshold)
    t, p = _multi(y_true, probs, threshold)
    return float((t == p).mean())


def multilabel_confusion(y_true, probs, threshold=0.5):
    """One 2x2 matrix per label: ``[[tn, fp], [fn, tp]]``.

    Rows are actual (absent, present), columns predicted (absent,
    present); a label is predicted present when its probability is above
    ``threshold``.

    Example:

    >>> multilabel_confusion([[1, 0], [1, 1]], [[0.8, 0.6], [0.7, 0.9]]
    ...                      ).tolist()
    [[[0, 0], [0, 2]], [[0, 1], [0, 1]]]

    Returns:
        An int64 array ``(n_labels, 2, 2)``.
    """
    t, p = _multi(y_true, probs, threshold)
    out = np.zeros((t.shape[1], 2, 2), dtype=np.int64)
    for a in (0, 1):
        for b in (0, 1):
            out[:, a, b] = ((t == a) & (p == b)).sum(axis=0)
    return out


def plot_confusion_matrix(cm, class_names=None, title="Confusion matrix",
                          path=None):
    """A heat map of ``cm`` with its counts; returns the Figure.

    The figure grows with the number of classes and the counts' font
    with the cells (8 points at least), so that a 10x10 matrix reads at a
    glance. Above 40 classes the counts are left out (they would not fit).

    Args:
        cm: array ``(k, k)``, rows actual, columns predicted.
        class_names: sequence of k names or None (use indices).
        title: str.
        path: str or None. Also write the figure there as a PNG.

    Returns:
        A matplotlib Figure.
    """
    cm = np.asarray(cm)
    k = len(cm)
    names = [str(n) for n in (class_names if class_names is not None
                              else range(k))]
    if len(names) != k:
        raise ValueError(f"Expected {k} class names, found {len(names)}.")
    side = float(min(20, max(5, 0.5 * k + 3)))
    fig, axes = _plot.figure(figsize=(side + 1, side))
    font = _plot.cell_font(side, k)
    tick = max(_plot.MIN_FONT, min(12, font))
    _plot.heatmap(axes[0, 0], cm, labels=names, xlabel="predicted",
                  ylabel="actual", title=title, font=font, tick_font=tick)
    if k > 40:
        for text in list(axes[0, 0].texts):
            text.remove()
    fig.tight_layout()
    if path is not None:
        save_figure(fig, path)
    return fig


def plot_multilabel_confusion(matrices, class_names=None, path=None,
                              ncols=4):
    """One small 2x2 heat map per label (from ``multilabel_confusion``).

    Example:

    >>> m = multilabel_confusion([[1, 0], [0, 1]], [[0.9, 0.6], [0.2, 0.1]])
    >>> len(plot_multilabel_confusion(m, ["cat", "dog"]).axes)
    2

    Args:
        matrices: array ``(n_labels, 2, 2)``.
        class_names: sequence of label names or None.
        path: str or None. Also write the figure there as a PNG.
        ncols: int. Maps per row. Defaults to 4.

    Returns:
        A matplotlib Figure with one axes per label.
    """
    m = np.asarray(matrices)
    if m.ndim != 3 or m.shape[1:] != (2, 2):
        raise ValueError(f"Expected per-label matrices (n_labels, 2, 2); "
                         f"found shape {m.shape}.")
    names = [str(n) for n in (class_names if class_names is not None
                              else range(len(m)))]
    if len(names) != len(m):
        raise ValueError(f"Expected {len(m)} label names, found "
                         f"{len(names)}.")
    cols = max(1, min(ncols, len(m)))
    rows = -(-len(m) // cols)
    fig, axes = _plot.figure(rows, cols, figsize=(2.8 * cols, 2.8 * rows))
    for i, ax in enumerate(axes.ravel()):
        if i >= len(m):
            fig.delaxes(ax)
            continue
        _plot.heatmap(ax, m[i], labels=["no", "yes"], xlabel="predicted",
                      ylabel="actual", title=names[i], font=14,
                      tick_font=10)
    fig.tight_layout()
    if path is not None:
        save_figure(fig, path)
    return fig


def plot_top_losses(images, y_true, probs, class_names=None, k=9):
    """A grid of the ``k`` worst examples titled predicted/actual/loss."""
    idx, losses = top_losses(y_true, probs, k)
    t = _labels(y_true, "y_true")
    pred = np.asarray(probs).argmax(axis=1)
    names = class_names if class_names is not None else range(
        np.asarray(probs).shape[1])
    titles = [f"{names[pred[i]]}/{names[t[i]]}\n{loss:.2f}"
              for i, loss in zip(idx, losses)]
    colors = [_plot.RIGHT if pred[i] == t[i] else _plot.WRONG for i in idx]
    return _plot.image_grid([np.asarray(images[i]) for i in idx], titles,
                            colors=colors)


def save_figure(fig, path, dpi=100):
    """Saves ``fig`` as a PNG (complete or absent); returns the path.

    A figure made through pyplot is closed afterwards.
    """
    return _plot.save(fig, path, dpi=dpi)


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
    return (t > 0.5).astype(np.int64), (p > threshold).astype(np.int64)


def _is_backend_tensor(x):
    if isinstance(x, (np.ndarray, np.generic, list, tuple, int, float)):
        return False
    keras = sys.modules.get("keras")
    return keras is not None and keras.ops.is_tensor(x)


class _CallableModule(types.ModuleType):
    """This module, callable: ``kerasdl.interpret(model, batches, ...)``.

    ``kerasdl.interpret`` names both this module (``from kerasdl import
    interpret; interpret.confusion_matrix(...)``) and the function that
    interprets a model, so the module forwards calls to
    ``kerasdl.interpretation.interpret``.
    """

    def __call__(self, model, batches, **kwargs):
        from kerasdl.interpretation import interpret as run

        return run(model, batches, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
# The package's lazy table reads `interpret` from this module: it must be
# the module itself, or `kerasdl.interpret` would stop being the module.
interpret = sys.modules[__name__]
