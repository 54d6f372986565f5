"""Multi-label metrics: ``AccuracyMulti`` for ``compile`` and a threshold
sweep on validation predictions (``best_threshold``).

A multi-label model ends in one sigmoid per label; a label is predicted
present when its probability is above a threshold (0.5 by default). The
share of (example, label) cells predicted right is the multi-label
accuracy. The threshold that suits a model best is found on validation
predictions with ``best_threshold`` and passed back to ``AccuracyMulti``,
``kerasdl.interpret`` and ``kerasdl.show_results``.
"""

import keras
import numpy as np
from keras import ops

from kerasdl import _validate

__all__ = ["AccuracyMulti", "ThresholdSweep", "best_threshold"]

_METRICS = ("accuracy", "f1", "f2")


def default_thresholds():
    """The thresholds swept by default: 0.05, 0.10, ..., 0.95."""
    return np.round(np.arange(1, 20) * 0.05, 2)


def per_example_accuracy(y_true, y_pred, threshold=0.5, from_logits=False):
    """Share of labels right in each example, with ``keras.ops``.

    Works on symbolic tensors (inside ``compile``) on every backend. A
    label is predicted present when ``y_pred > threshold`` (after a
    sigmoid with ``from_logits=True``) and is truly present when
    ``y_true > 0.5``.

    Returns:
        A float tensor of shape ``(batch,)`` (one value per example: the
        mean over every axis but the first).
    """
    y_pred = ops.convert_to_tensor(y_pred)
    y_true = ops.convert_to_tensor(y_true)
    if "float" not in keras.backend.standardize_dtype(y_pred.dtype):
        y_pred = ops.cast(y_pred, "float32")
    if from_logits:
        y_pred = ops.sigmoid(y_pred)
    t_rank, p_rank = len(y_true.shape), len(y_pred.shape)
    if t_rank == p_rank + 1 and y_true.shape[-1] == 1:
        y_true = ops.squeeze(y_true, -1)
    elif p_rank == t_rank + 1 and y_pred.shape[-1] == 1:
        y_pred = ops.squeeze(y_pred, -1)
    if (len(y_true.shape) != len(y_pred.shape) or
            None not in (y_true.shape[-1], y_pred.shape[-1]) and
            y_true.shape[-1] != y_pred.shape[-1]):
        raise ValueError(
            f"Multi-label targets and predictions must have the same shape "
            f"(batch, n_labels); found {tuple(y_true.shape)} and "
            f"{tuple(y_pred.shape)}. Give the model one sigmoid output per "
            f"label and multi-hot targets.")
    right = ops.equal(ops.greater(y_pred, threshold),
                      ops.greater(ops.cast(y_true, y_pred.dtype), 0.5))
    right = ops.cast(right, y_pred.dtype)
    if len(right.shape) < 2:
        return right
    return ops.mean(right, axis=tuple(range(1, len(right.shape))))


@keras.saving.register_keras_serializable(package="kerasdl")
class AccuracyMulti(keras.metrics.Metric):
    """Multi-label accuracy for ``model.compile``, on every backend.

    The mean over all (example, label) cells of
    ``(y_pred > threshold) == (y_true > 0.5)``, accumulated over the
    batches of an epoch. It gives the same number as the numpy
    ``kerasdl.accuracy_multi`` on the same predictions.

    Example:

    >>> m = AccuracyMulti(threshold=0.5)
    >>> m.update_state([[1, 0], [1, 1]], [[0.8, 0.6], [0.7, 0.9]])
    >>> round(float(m.result()), 4)
    0.75

    Args:
        threshold: float in (0, 1). A label is predicted present when its
            probability is above it. Defaults to 0.5.
        from_logits: bool. The model outputs logits (no sigmoid): a
            sigmoid is applied first. Defaults to ``False``.
        name: str. Defaults to ``"accuracy_multi"``.
        dtype: dtype of the metric's variables. Defaults to float32.

    Raises:
        ValueError: ``threshold`` outside (0, 1).
        TypeError: ``from_logits`` not a bool.
    """

    def __init__(self, threshold=0.5, from_logits=False,
                 name="accuracy_multi", dtype=None):
        super().__init__(name=name, dtype=dtype)
        self.threshold = _validate.fraction(threshold, "threshold")
        if not isinstance(from_logits, bool):
            raise TypeError(f"`from_logits` must be True or False. "
                            f"Received: from_logits={from_logits!r}.")
        self.from_logits = from_logits
        self.total = self.add_variable(shape=(), initializer="zeros",
                                       dtype=self.dtype, name="total")
        self.count = self.add_variable(shape=(), initializer="zeros",
                                       dtype=self.dtype, name="count")

    def update_state(self, y_true, y_pred, sample_weight=None):
        """Adds one batch (``sample_weight`` weighs whole examples)."""
        per = ops.cast(per_example_accuracy(
            y_true, y_pred, self.threshold, self.from_logits), self.dtype)
        if sample_weight is None:
            weight = ops.ones_like(per)
        else:
            weight = ops.cast(sample_weight, self.dtype)
            if len(weight.shape) > len(per.shape):
                weight = ops.reshape(weight, ops.shape(per))
            weight = ops.broadcast_to(weight, ops.shape(per))
        self.total.assign_add(ops.sum(per * weight))
        self.count.assign_add(ops.sum(weight))

    def result(self):
        return ops.divide_no_nan(self.total, self.count)

    def get_config(self):
        return {**super().get_config(), "threshold": self.threshold,
                "from_logits": self.from_logits}


class ThresholdSweep:
    """The result of ``best_threshold``: the best threshold and the sweep.

    Unpacks as ``threshold, score = best_threshold(y, probs)``.

    Attributes:
        threshold: float. The threshold with the best score (the lowest
            one when several tie).
        score: float. Its score.
        thresholds: float array. Every threshold tried, ascending.
        scores: float array. The score of each.
        metric: str or callable. What was scored.
    """

    def __init__(self, thresholds, scores, metric):
        self.thresholds = np.asarray(thresholds, dtype="float64")
        self.scores = np.asarray(scores, dtype="float64")
        self.metric = metric
        best = int(np.argmax(self.scores))
        self.threshold = float(self.thresholds[best])
        self.score = float(self.scores[best])

    def __iter__(self):
        return iter((self.threshold, self.score))

    def __repr__(self):
        name = self.metric if isinstance(self.metric, str) else getattr(
            self.metric, "__name__", "metric")
        return (f"ThresholdSweep(threshold={self.threshold:g}, "
                f"{name}={self.score:.4f}, {len(self.thresholds)} "
                f"thresholds)")


def best_threshold(y, probs, thresholds=None, metric="accuracy"):
    """Sweeps thresholds over multi-label validation predictions.

    Each threshold turns ``probs`` into 0/1 predictions (``probs >
    threshold``) that are scored against ``y``. Metrics: ``"accuracy"``
    (share of (example, label) cells right, as ``accuracy_multi``),
    ``"f1"`` and ``"f2"`` (F-beta over all cells: ``(1 + b^2) tp /
    ((1 + b^2) tp + b^2 fn + fp)``; 1.0 when there is no positive at all),
    or a function ``f(y, predictions) -> float`` (higher is better).

    Example:

    >>> y = [[1, 0], [0, 1], [1, 1]]
    >>> probs = [[0.4, 0.1], [0.28, 0.35], [0.6, 0.5]]
    >>> t, score = best_threshold(y, probs)
    >>> float(t), score
    (0.3, 1.0)

    Args:
        y: array ``(n, n_labels)`` of 0/1 targets (a 1-D array is one
            label).
        probs: array of the same shape: predicted probabilities.
        thresholds: sequence of floats in (0, 1), or None for 0.05, 0.10,
            ..., 0.95.
        metric: ``"accuracy"``, ``"f1"``, ``"f2"`` or a callable.
            Defaults to ``"accuracy"``.

    Returns:
        A ``ThresholdSweep``: ``threshold`` and ``score`` of the best one
        (unpacks as ``(threshold, score)``), plus ``thresholds`` and
        ``scores`` of the whole sweep.

    Raises:
        ValueError: shapes differ, targets not 0/1, probabilities outside
            [0, 1] or not finite, thresholds outside (0, 1), or an unknown
            metric.
    """
    y, probs = _check_targets(y, probs)
    if thresholds is None:
        thresholds = default_thresholds()
    thresholds = np.asarray(thresholds, dtype="float64").ravel()
    if not len(thresholds) or not np.all(np.isfinite(thresholds)) or \
            thresholds.min() <= 0 or thresholds.max() >= 1:
        raise ValueError(
            f"`thresholds` must be a non-empty list of numbers in (0, 1). "
            f"Received: {thresholds.tolist()[:8]}. Pass None for 0.05, "
            f"0.10, ..., 0.95.")
    thresholds = np.unique(thresholds)
    if callable(metric):
        score = metric
    else:
        _validate.choice(metric, "metric", _METRICS,
                         hint="Or pass a function f(y, predictions).")
        score = _SCORES[metric]
    scores = [float(score(y, (probs > t).astype(y.dtype)))
              for t in thresholds]
    return ThresholdSweep(thresholds, scores, metric)


def _accuracy(y, pred):
    return (y == pred).mean()


def _fbeta(beta):
    def score(y, pred):
        tp = float((pred * y).sum())
        fp = float((pred * (1 - y)).sum())
        fn = float(((1 - pred) * y).sum())
        b2 = beta * beta
        denom = (1 + b2) * tp + b2 * fn + fp
        return 1.0 if denom == 0 else (1 + b2) * tp / denom
    score.__name__ = f"f{beta}"
    return score


_SCORES = {"accuracy": _accuracy, "f1": _fbeta(1), "f2": _fbeta(2)}


def _check_targets(y, probs):
    y = np.asarray(y)
    probs = np.asarray(probs)
    if y.ndim == 1:
        y = y[:, None]
    if probs.ndim == 1:
        probs = probs[:, None]
    if y.shape != probs.shape or y.ndim != 2:
        raise ValueError(
            f"`y` and `probs` must have the same shape (n, n_labels); found "
            f"{np.shape(y)} and {np.shape(probs)}. Pass the multi-hot "
            f"targets and the model's sigmoid outputs on the same examples.")
    if not len(y):
        raise ValueError("`y` and `probs` are empty; pass at least one "
                         "example.")
    if not np.isin(y, (0, 1)).all():
        raise ValueError("`y` must hold only 0 and 1 (multi-hot targets).")
    _validate.finite_array(probs.astype("float64"), "probs")
    if probs.min() < 0 or probs.max() > 1:
        raise ValueError(
            f"`probs` must be probabilities in [0, 1]; found values from "
            f"{probs.min():.3g} to {probs.max():.3g}. Apply a sigmoid to "
            f"logits first.")
    return y.astype("float64"), probs.astype("float64")
