"""Looking at data and results: a grid of images with their targets
(``show_batch``) and with a model's predictions (``show_results``), and
``save_figure`` for any matplotlib figure of your own.

Both take an ``ImageBatches`` (or any ``keras.utils.PyDataset`` giving
``(images, targets)``) or a tuple ``(images, targets)`` of arrays, return a
matplotlib Figure and write it as a PNG when ``path`` is given.

Targets by task:

- ``"single_label"``: a class index (or a one-hot row) per image, shown as
  the class name;
- ``"multi_label"``: a multi-hot row, shown as the names joined by ";";
- ``"regression"``: float values. An even number of values per image is
  read as points ``(x0, y0, x1, y1, ...)`` in [-1, 1] (-1 the left or top
  edge, 1 the right or bottom edge, as ``kerasdl.data.points``) and drawn
  on the image; other counts (or ``points=False``, or batches whose
  ``points`` attribute is ``False``) are shown as numbers.

The task is the batches' ``task`` attribute when they have one, else it
is inferred from the targets (integers: single-label; 0/1 rows summing to
1: one-hot single-label; other 0/1 rows: multi-label; other floats:
regression); pass ``task=`` to say it.
"""

import numpy as np

from kerasdl import _plot
from kerasdl import _targets
from kerasdl import _validate

__all__ = ["show_batch", "show_results", "save_figure"]


def show_batch(batches, n=16, path=None, ncols=None, *, class_names=None,
               task=None, points=None):
    """A grid of the first ``n`` images with their targets.

    Example:

    >>> import numpy as np
    >>> x = np.zeros((4, 8, 8, 3), "uint8")
    >>> fig = show_batch((x, np.array([0, 1, 1, 0])), n=3,
    ...                  class_names=["cat", "dog"])
    >>> [ax.get_title() for ax in fig.axes]
    ['cat', 'dog', 'dog']

    Args:
        batches: ``ImageBatches``, a PyDataset giving ``(images,
            targets)`` (or images alone), or a tuple ``(images, targets)``
            of arrays.
        n: int. Images to show (fewer if the batches hold fewer).
            Defaults to 16.
        path: str or None. Also write the figure there as a PNG.
        ncols: int or None. Columns of the grid; None gives a square-ish
            grid.
        class_names: list of str or None. Defaults to the batches'
            ``class_names`` (else class indices are shown).
        task: ``"single_label"``, ``"multi_label"``, ``"regression"`` or
            None (the batches' ``task``, else inferred).
        points: bool or None. For regression: draw the values as points
            (None: the batches' ``points`` attribute when they have one,
            else when the count of values is even).

    Returns:
        A matplotlib Figure with one axes per image.

    Raises:
        ValueError: bad arguments, class names that do not match the
            targets, or arrays that are not images.
    """
    n, path, ncols = _check_common(n, path, ncols)
    x, y = _targets.take(batches, n)
    points = _targets.points_of(points, batches)
    names = _targets.class_names_of(class_names, batches)
    task = _targets.resolve_task(task, batches, y)
    titles, marks = [], []
    for i in range(len(x)):
        if y is None:
            titles.append("")
            marks.append([])
            continue
        actual = _targets.target(y[i], task)
        _targets.check_names(names, actual, task)
        if _targets.as_points(task, actual, points):
            titles.append("")
            marks.append([(actual, _plot.TRUE_POINTS)])
        else:
            titles.append(_targets.text(actual, task, names))
            marks.append([])
    fig = _plot.image_grid(x, titles, ncols=ncols, marks=marks)
    if path is not None:
        _plot.save(fig, path)
    return fig


def show_results(model, batches, n=16, path=None, ncols=None, *,
                 class_names=None, task=None, threshold=0.5,
                 from_logits=False, points=None):
    """The first ``n`` images titled "predicted / actual"; wrong ones red.

    A wrong prediction (another class; not exactly the right set of
    labels) has a red title and a red frame. For regression the title
    gives predicted / actual values, or, for points, the predicted points
    (red +) are drawn beside the true ones (green circles).

    Example:

    >>> import keras, numpy as np
    >>> model = keras.Sequential([keras.Input((8, 8, 3)),
    ...                           keras.layers.GlobalAveragePooling2D(),
    ...                           keras.layers.Dense(2, activation="softmax")])
    >>> x = np.zeros((2, 8, 8, 3), "float32")
    >>> fig = show_results(model, (x, np.array([0, 1])),
    ...                    class_names=["cat", "dog"])
    >>> [t.get_title().count(" / ") for t in fig.axes]
    [1, 1]

    Args:
        model: keras.Model. Its output: one probability per class
            (softmax; one sigmoid unit for two classes), one per label
            (sigmoid) or the regression values.
        batches: as in ``show_batch``; targets are needed.
        n: int. Images to show. Defaults to 16.
        path: str or None. Also write the figure there as a PNG.
        ncols: int or None. Columns of the grid.
        class_names: list of str or None. Defaults to the batches'
            ``class_names``, else the names saved in the model
            (``kerasdl.class_names``).
        task: as in ``show_batch``.
        threshold: float in (0, 1). Multi-label: a label is predicted
            when its probability is above it. Defaults to 0.5.
        from_logits: bool. The model outputs logits: softmax (sigmoid for
            multi-label) is applied first. Defaults to ``False``.
        points: bool or None. As in ``show_batch``.

    Returns:
        A matplotlib Figure with one axes per image.

    Raises:
        ValueError: bad arguments, batches without targets, or
            predictions whose shape does not match the targets.
    """
    n, path, ncols = _check_common(n, path, ncols)
    threshold = _validate.fraction(threshold, "threshold")
    x, y = _targets.take(batches, n)
    points = _targets.points_of(points, batches)
    if y is None:
        raise ValueError("show_results compares predictions with targets, "
                         "but the batches give images only. Pass batches "
                         "with labels, or use show_batch.")
    task = _targets.resolve_task(task, batches, y)
    names = _targets.class_names_of(class_names, batches, model)
    probs = _targets.predict(model, x, task, from_logits)
    if names and task == "single_label" and probs.shape[1] != len(names):
        raise ValueError(
            f"The model gives {probs.shape[1]} class probabilities but "
            f"{len(names)} class names are known ({names[:5]}). Pass the "
            f"model trained on these classes, or class_names=.")
    titles, colors, marks = [], [], []
    for i in range(len(x)):
        actual = _targets.target(y[i], task)
        guess = _targets.decide(probs[i], task, threshold)
        _targets.check_names(names, actual, task)
        _targets.check_pair(guess, actual, task)
        wrong = _targets.is_wrong(guess, actual, task)
        colors.append(_plot.WRONG if wrong else _plot.RIGHT)
        if _targets.as_points(task, actual, points):
            titles.append("pred + / actual o")
            marks.append([(actual, _plot.TRUE_POINTS),
                          (guess, _plot.PRED_POINTS)])
        else:
            titles.append(f"{_targets.text(guess, task, names)} / "
                          f"{_targets.text(actual, task, names)}")
            marks.append([])
    fig = _plot.image_grid(x, titles, colors=colors, ncols=ncols,
                           marks=marks)
    if path is not None:
        _plot.save(fig, path)
    return fig


def _check_common(n, path, ncols):
    n = _validate.integer(n, "n", low=1)
    if path is not None:
        path = _validate.output_file(path)
    if ncols is not None:
        ncols = _validate.integer(ncols, "ncols", low=1)
    return n, path, ncols


def save_figure(fig, path, dpi=100):
    """Writes a matplotlib figure as a PNG that is complete or absent.

    The image goes to a temporary file beside ``path``, synced, then
    renamed over it: an interrupted run never leaves half a PNG. A figure
    made through pyplot is closed afterwards.

    Example:

    >>> import os, tempfile
    >>> from matplotlib.figure import Figure
    >>> fig = Figure()
    >>> _ = fig.add_subplot().plot([0, 1], [1, 0])
    >>> path = os.path.join(tempfile.mkdtemp(), "line.png")
    >>> save_figure(fig, path) == path
    True

    Args:
        fig: a matplotlib ``Figure``.
        path: str or path-like. The PNG to write; its folder must exist.
        dpi: int. Dots per inch. Defaults to 100.

    Returns:
        The path written, as str.

    Raises:
        TypeError: ``fig`` is not a figure (it has no ``savefig``).
        ValueError: ``path`` is a folder or in a folder that does not
            exist; ``dpi`` below 1.
    """
    if not callable(getattr(fig, "savefig", None)):
        raise TypeError(f"`fig` must be a matplotlib Figure. Received: "
                        f"{type(fig).__name__}. Pass the figure, such as "
                        f"the one plt.subplots() returns.")
    path = _validate.output_file(path)
    dpi = _validate.integer(dpi, "dpi", low=1)
    return _plot.save(fig, path, dpi=dpi)
