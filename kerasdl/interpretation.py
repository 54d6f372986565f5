"""``interpret(model, batches)``: what a model gets wrong, from the model
and its validation batches directly.

One pass predicts every example and keeps the targets, probabilities and
losses; the images are read again only for the few examples a plot shows
(from their files for ``ImageBatches``), so a large validation set is not
held in memory.
"""

import numpy as np

from kerasdl import _plot
from kerasdl import _targets
from kerasdl import _validate
from kerasdl import interpret as _fn

__all__ = ["Interpretation", "interpret"]


def interpret(model, batches, *, class_names=None, task=None, threshold=0.5,
              from_logits=False, verbose=1):
    """Predicts ``batches`` with ``model``; returns an ``Interpretation``.

    Also reachable as ``kerasdl.interpret(model, batches)``.

    Example:

    >>> import keras, numpy as np
    >>> model = keras.Sequential([keras.Input((2,)),
    ...                           keras.layers.Dense(2, activation="softmax")])
    >>> interp = interpret(model, (np.zeros((3, 2)), np.array([0, 1, 1])),
    ...                    verbose=0)
    >>> interp.task, interp.probs.shape
    ('single_label', (3, 2))

    Args:
        model: keras.Model with one output (see ``show_results``).
        batches: ``ImageBatches`` (the validation batches; their order is
            taken once, so shuffled batches work too), a PyDataset giving
            ``(images, targets)`` that gives the same batches when asked
            again, or a tuple ``(images, targets)`` of arrays.
        class_names: list of str or None. Defaults to the batches'
            ``class_names``, else ``kerasdl.class_names(model)``.
        task: ``"single_label"``, ``"multi_label"``, ``"regression"`` or
            None (the batches' ``task``, else inferred from the targets).
        threshold: float in (0, 1). Multi-label decision threshold.
        from_logits: bool. The model ends without softmax / sigmoid.
        verbose: int. 1 shows a progress bar, 0 nothing. Defaults to 1.

    Returns:
        An ``Interpretation``.

    Raises:
        ValueError: batches without targets, or predictions that do not
            match the targets.
    """
    import keras

    threshold = _validate.fraction(threshold, "threshold")
    verbose = _validate.integer(verbose, "verbose", low=0, high=2)
    source = _targets.BatchSource(batches)
    ys, outs = [], []
    bar = keras.utils.Progbar(len(source)) if verbose else None
    for i, (x, y) in enumerate(source):
        if y is None:
            raise ValueError("interpret needs targets, but the batches give "
                             "images only. Pass the labelled validation "
                             "batches.")
        outs.append(np.asarray(model.predict_on_batch(x)))
        ys.append(np.asarray(y))
        if bar is not None:
            bar.update(i + 1)
    y = np.concatenate(ys)
    task = _targets.resolve_task(task, batches, y)
    probs = _targets.outputs_to_probs(np.concatenate(outs), task,
                                      from_logits)
    names = _targets.class_names_of(class_names, batches, model)
    return Interpretation(y, probs, class_names=names, task=task,
                          threshold=threshold, images=source.fetch,
                          paths=source.paths,
                          points=_targets.points_of(None, batches))


class Interpretation:
    """Targets, probabilities and losses of a model on labelled examples.

    Built by ``kerasdl.interpret(model, batches)``, or directly from
    arrays. Losses: cross-entropy (single-label), mean binary
    cross-entropy over the labels (multi-label), mean squared error
    (regression).

    Example:

    >>> interp = Interpretation([0, 1, 1], [[0.9, 0.1], [0.8, 0.2],
    ...                                     [0.3, 0.7]], class_names=["a", "b"])
    >>> interp.most_confused(), interp.top_losses(1)[0].tolist()
    ([('b', 'a', 1)], [1])

    Args:
        y_true: targets: class indices (or one-hot rows), multi-hot rows,
            or regression values.
        probs: array ``(n, k)``: probabilities (values for regression).
        class_names: list of str or None.
        task: as in ``interpret``; None infers it from ``y_true``.
        threshold: float in (0, 1). Multi-label decision threshold.
        images: array of the examples' images, a function ``f(indices)``
            giving them, or None (plots of examples are then refused).
        paths: list of str or None. The file of each example.
        points: bool or None. Regression: plot the values as points
            ``(x0, y0, ...)`` in [-1, 1] (None: when their count is even).

    Attributes:
        y_true, probs, preds, losses, class_names, task, threshold, paths,
        points.
    """

    def __init__(self, y_true, probs, *, class_names=None, task=None,
                 threshold=0.5, images=None, paths=None, points=None):
        self.threshold = _validate.fraction(threshold, "threshold")
        y = np.asarray(y_true)
        self.task = task = _targets.resolve_task(task, None, y)
        p = np.asarray(probs, dtype="float64").reshape(len(probs), -1)
        _validate.same_length("y_true", y, "probs", p)
        self.class_names = None if class_names is None else \
            _validate.strings(class_names, "class_names")
        if task == "single_label":
            self.y_true = _fn._labels(y, "y_true")
            if self.y_true.max(initial=0) >= p.shape[1]:
                raise ValueError(
                    f"Target class {int(self.y_true.max())} is beyond the "
                    f"{p.shape[1]} probabilities per example.")
            self.preds = p.argmax(axis=1)
            picked = p[np.arange(len(p)), self.y_true]
            self.losses = -np.log(np.clip(picked, 1e-12, 1.0))
        elif task == "multi_label":
            self.y_true = (y.reshape(len(y), -1) > 0.5).astype(np.int64)
            _fn._multi(self.y_true, p, self.threshold)
            self.preds = (p > self.threshold).astype(np.int64)
            q = np.clip(p, 1e-12, 1 - 1e-12)
            self.losses = -np.mean(self.y_true * np.log(q) +
                                   (1 - self.y_true) * np.log(1 - q), axis=1)
        else:
            self.y_true = y.astype("float64").reshape(len(y), -1)
            if self.y_true.shape != p.shape:
                raise ValueError(f"Regression targets {self.y_true.shape} "
                                 f"and predictions {p.shape} differ.")
            self.preds = p
            self.losses = np.mean((p - self.y_true) ** 2, axis=1)
        width = p.shape[1]
        if self.class_names is not None and task != "regression" and \
                len(self.class_names) != width:
            raise ValueError(
                f"Expected {width} class names (one per model output); "
                f"found {len(self.class_names)}: {self.class_names[:5]}.")
        self.probs = p
        self.paths = paths
        self._images = images
        self.points = _targets.points_of(points, None)

    def __len__(self):
        return len(self.probs)

    def __repr__(self):
        score = "" if self.task == "regression" else \
            f", accuracy {self.accuracy:.4f}"
        return (f"Interpretation({self.task}, {len(self)} examples, "
                f"{self.probs.shape[1]} outputs{score})")

    @property
    def accuracy(self):
        """Share of examples (cells for multi-label) predicted right."""
        self._classification("accuracy")
        return float((self.preds == self.y_true).mean())

    def confusion_matrix(self):
        """Counts ``(k, k)``, rows actual; multi-label: ``(n_labels, 2,
        2)`` matrices ``[[tn, fp], [fn, tp]]`` (``multilabel_confusion``)."""
        self._classification("confusion_matrix")
        if self.task == "multi_label":
            return _fn.multilabel_confusion(self.y_true, self.probs,
                                            self.threshold)
        return _fn.confusion_matrix(self.y_true, self.preds,
                                    n_classes=self.probs.shape[1])

    def most_confused(self, min_val=1):
        """``(actual, predicted, count)`` of the most frequent mistakes.

        Multi-label: per label, ``("cat", "not cat", fn)`` (missed) and
        ``("not cat", "cat", fp)`` (predicted but absent), largest first.
        """
        min_val = _validate.integer(min_val, "min_val", low=1)
        cm = self.confusion_matrix()
        names = self._names()
        if self.task == "single_label":
            return _fn.most_confused(cm, names, min_val)
        cells = [(int(m[1, 0]), n, f"not {n}") for n, m in zip(names, cm)]
        cells += [(int(m[0, 1]), f"not {n}", n) for n, m in zip(names, cm)]
        cells = [c for c in cells if c[0] >= min_val]
        cells.sort(key=lambda c: -c[0])
        return [(a, b, c) for c, a, b in cells]

    def label_metrics(self):
        """Per class (label): precision, recall, f1, support and, for
        multi-label, the label's accuracy; a ``pandas.DataFrame``.

        An undefined ratio (no example predicted or present) is NaN.
        """
        import pandas as pd

        cm = self.confusion_matrix()
        if self.task == "multi_label":
            tp, fp, fn = cm[:, 1, 1], cm[:, 0, 1], cm[:, 1, 0]
            extra = {"accuracy": (cm[:, 0, 0] + tp) / len(self)}
        else:
            tp = np.diag(cm)
            fp, fn, extra = cm.sum(axis=0) - tp, cm.sum(axis=1) - tp, {}
        with np.errstate(divide="ignore", invalid="ignore"):
            precision = tp / (tp + fp)
            recall = tp / (tp + fn)
            f1 = 2 * tp / (2 * tp + fp + fn)
        return pd.DataFrame({"precision": precision, "recall": recall,
                             "f1": f1, "support": tp + fn, **extra},
                            index=self._names())

    def top_losses(self, k=9):
        """``(indices, losses)`` of the ``k`` largest losses, largest
        first."""
        k = _validate.integer(k, "k", low=1)
        order = np.argsort(-self.losses, kind="stable")[:k]
        return order, self.losses[order]

    def most_uncertain(self, k=9):
        """``(indices, margins)`` of the ``k`` least decided examples.

        Single-label: the smallest gap between the two largest
        probabilities. Multi-label: the label probability closest to the
        threshold (its distance).
        """
        k = _validate.integer(k, "k", low=1)
        self._classification("most_uncertain")
        if self.task == "multi_label":
            margin = np.abs(self.probs - self.threshold).min(axis=1)
        elif self.probs.shape[1] < 2:
            margin = np.abs(self.probs[:, 0] - 0.5)
        else:
            top2 = np.sort(self.probs, axis=1)[:, -2:]
            margin = top2[:, 1] - top2[:, 0]
        order = np.argsort(margin, kind="stable")[:k]
        return order, margin[order]

    def most_confident(self, k=9):
        """``(indices, confidences)`` of the most confident WRONG ones.

        Only wrong predictions are listed (a confident right one teaches
        nothing): single-label, the probability given to the wrong class;
        multi-label, the strongest wrong decision of the example (``p``
        for a label predicted but absent, ``1 - p`` for one missed).
        """
        k = _validate.integer(k, "k", low=1)
        self._classification("most_confident")
        if self.task == "multi_label":
            wrong = self.preds != self.y_true
            sure = np.where(self.preds == 1, self.probs, 1 - self.probs)
            score = np.where(wrong, sure, -1.0).max(axis=1)
        else:
            score = np.where(self.preds != self.y_true,
                             self.probs.max(axis=1), -1.0)
        order = np.argsort(-score, kind="stable")
        order = order[score[order] >= 0][:k]
        return order, score[order]

    def images(self, indices):
        """The images of the examples at ``indices`` (an array)."""
        idx = np.asarray(indices, dtype=np.int64).reshape(-1)
        if self._images is None:
            raise ValueError("This Interpretation holds no images; build it "
                             "with images=... or with kerasdl.interpret.")
        if not len(idx):
            raise ValueError("No examples asked for (indices is empty).")
        if idx.min() < 0 or idx.max() >= len(self):
            raise IndexError(f"Indices must lie in [0, {len(self)}).")
        if callable(self._images):
            return self._images(idx)
        return np.asarray(self._images)[idx]

    def plot_examples(self, indices, path=None, ncols=None):
        """The examples at ``indices`` titled "predicted / actual", the
        loss and (single-label) the predicted class's probability; wrong
        ones in red. Returns the Figure (also a PNG at ``path``)."""
        idx = np.asarray(indices, dtype=np.int64).reshape(-1)
        if not len(idx):
            raise ValueError("No examples to plot (indices is empty).")
        if path is not None:
            path = _validate.output_file(path)
        names = self.class_names
        titles, colors, marks = [], [], []
        for i in idx:
            guess, actual = self._pred(i), self._actual(i)
            loss = f"loss {self.losses[i]:.2f}"
            if self.task == "single_label":
                loss += f", p {self.probs[i, guess]:.2f}"
            if _targets.as_points(self.task, actual, self.points):
                titles.append(f"pred + / actual o\n{loss}")
                marks.append([(actual, _plot.TRUE_POINTS),
                              (guess, _plot.PRED_POINTS)])
            else:
                titles.append(
                    f"{_targets.text(guess, self.task, names)} / "
                    f"{_targets.text(actual, self.task, names)}\n{loss}")
                marks.append([])
            colors.append(_plot.WRONG if _targets.is_wrong(
                guess, actual, self.task) else _plot.RIGHT)
        fig = _plot.image_grid(list(self.images(idx)), titles,
                               colors=colors, ncols=ncols, marks=marks)
        if path is not None:
            _plot.save(fig, path)
        return fig

    def plot_top_losses(self, k=9, path=None, ncols=None):
        """``plot_examples`` of the ``k`` largest losses."""
        return self.plot_examples(self.top_losses(k)[0], path, ncols)

    def plot_confusion_matrix(self, path=None):
        """The confusion matrix (multi-label: one 2x2 map per label)."""
        if path is not None:
            path = _validate.output_file(path)
        cm = self.confusion_matrix()
        if self.task == "multi_label":
            return _fn.plot_multilabel_confusion(cm, self._names(), path)
        return _fn.plot_confusion_matrix(cm, self._names(), path=path)

    def _names(self):
        if self.class_names is not None:
            return list(self.class_names)
        return [str(i) for i in range(self.probs.shape[1])]

    def _pred(self, i):
        return int(self.preds[i]) if self.task == "single_label" else \
            self.preds[i]

    def _actual(self, i):
        return int(self.y_true[i]) if self.task == "single_label" else \
            self.y_true[i]

    def _classification(self, what):
        if self.task == "regression":
            raise ValueError(f"{what} needs classes; this Interpretation is "
                             f"of a regression. Use top_losses.")
