"""Targets and predictions of the three tasks, and reading them from
batches: shared by ``show`` and ``interpretation``.

A target is, by task: a class index (``"single_label"``), a 0/1 row
(``"multi_label"``) or float values (``"regression"``); ``decide`` turns a
row of model outputs into the same form.
"""

import numpy as np

from kerasdl import _validate

TASKS = ("single_label", "multi_label", "regression")


def take(batches, n):
    """The first ``n`` images and targets (None without targets)."""
    if isinstance(batches, tuple) and len(batches) in (2, 3):
        x = np.asarray(batches[0])
        y = None if batches[1] is None else np.asarray(batches[1])
        if y is not None and len(y) != len(x):
            raise ValueError(f"The images and targets must have the same "
                             f"length; found {len(x)} and {len(y)}.")
        return x[:n], None if y is None else y[:n]
    if isinstance(batches, np.ndarray):
        return batches[:n], None
    if not (hasattr(batches, "__getitem__") and hasattr(batches, "__len__")):
        raise TypeError(
            f"`batches` must be ImageBatches, a keras.utils.PyDataset or a "
            f"tuple (images, targets). Received: {type(batches).__name__}.")
    xs, ys, count = [], [], 0
    for i in range(len(batches)):
        item = batches[i]
        bx, by = (item[0], item[1]) if isinstance(item, tuple) else (
            item, None)
        xs.append(np.asarray(bx))
        ys.append(None if by is None else np.asarray(by))
        count += len(xs[-1])
        if count >= n:
            break
    if not xs:
        raise ValueError("The batches are empty: there is nothing to show.")
    x = np.concatenate(xs)[:n]
    y = None if any(v is None for v in ys) else np.concatenate(ys)[:n]
    return x, y


def resolve_task(task, batches, y):
    """``task`` checked, else the batches' ``task``, else inferred."""
    if task is not None:
        return _validate.choice(task, "task", TASKS)
    own = getattr(batches, "task", None)
    if own in TASKS:
        return own
    return infer_task(y)


def infer_task(y):
    """The task the targets ``y`` look like (None for no targets)."""
    if y is None:
        return None
    a = np.asarray(y)
    integral = a.size and np.all(np.isfinite(a)) and np.all(a == np.round(a))
    if a.ndim == 1:
        return "single_label" if integral and a.min() >= 0 else "regression"
    binary = a.size and np.isin(a, (0, 1)).all()
    if a.ndim == 2 and binary:
        return ("single_label" if np.all(a.sum(axis=1) == 1) else
                "multi_label")
    return "regression"


def points_of(points, batches):
    """``points`` checked; None takes the batches' ``points`` if a bool."""
    if points not in (None, True, False):
        raise TypeError(f"`points` must be None, True or False. Received: "
                        f"points={points!r}.")
    own = getattr(batches, "points", None)
    if points is None and isinstance(own, bool):
        return own
    return points


def class_names_of(class_names, batches, model=None):
    """``class_names``, else those of the batches, else of the model."""
    if class_names is not None:
        return _validate.strings(class_names, "class_names")
    names = getattr(batches, "class_names", None)
    if names:
        return list(names)
    if model is not None:
        from kerasdl.models.labels import class_names as saved

        return saved(model)
    return None


def target(row, task):
    """One example's target: a class index, a 0/1 row or float values."""
    a = np.asarray(row)
    if task == "single_label":
        return int(a.argmax()) if a.ndim else int(a)
    if task == "multi_label":
        return (a.reshape(-1) > 0.5).astype(np.int64)
    return a.astype("float64").reshape(-1)


def decide(probs, task, threshold):
    """One example's prediction, in the form ``target`` gives."""
    p = np.asarray(probs, dtype="float64").reshape(-1)
    if task == "single_label":
        return int(p.argmax())
    if task == "multi_label":
        return (p > threshold).astype(np.int64)
    return p


def is_wrong(guess, actual, task):
    """Whether a classification is wrong (regression is never marked)."""
    if task == "regression":
        return False
    return bool(np.any(np.asarray(guess) != np.asarray(actual)))


def text(value, task, names):
    """A target or prediction as words (names or indices) or numbers."""
    if task == "single_label":
        return names[value] if names else str(value)
    if task == "multi_label":
        on = np.flatnonzero(value)
        return ";".join(names[j] if names else str(j) for j in on) or \
            "(none)"
    return ", ".join(f"{v:.3g}" for v in np.asarray(value).reshape(-1))


def check_names(names, actual, task):
    """Refuses class names that do not cover the targets."""
    if not names or task == "regression":
        return
    if task == "multi_label" and len(actual) != len(names):
        raise ValueError(
            f"The targets have {len(actual)} labels but {len(names)} class "
            f"names were given ({names[:5]}). Pass one name per label.")
    if task == "single_label" and actual >= len(names):
        raise ValueError(
            f"Target class {actual} has no name: only {len(names)} class "
            f"names ({names[:5]}). Pass one name per class.")


def check_pair(guess, actual, task):
    """Refuses a prediction whose size does not match the target."""
    if task != "single_label" and np.size(guess) != np.size(actual):
        raise ValueError(
            f"The model gives {np.size(guess)} value(s) per image but the "
            f"targets have {np.size(actual)}. Use a model whose output "
            f"matches the targets.")


def predict(model, x, task, from_logits=False):
    """The model's outputs on ``x`` as float64 probabilities (values for
    regression): softmax or sigmoid applied with ``from_logits``; a single
    sigmoid unit of a two-class model becomes two columns."""
    if not isinstance(from_logits, bool):
        raise TypeError(f"`from_logits` must be True or False. Received: "
                        f"from_logits={from_logits!r}.")
    out = model.predict(x, verbose=0)
    return outputs_to_probs(out, task, from_logits)


def outputs_to_probs(out, task, from_logits):
    """See ``predict``: turns raw model outputs into probabilities."""
    if isinstance(out, (list, tuple, dict)):
        raise ValueError("The model has several outputs; show_results and "
                         "interpret need a model with one output.")
    p = np.asarray(out, dtype="float64").reshape(len(out), -1)
    _validate.finite_array(p, "predictions",
                           hint="The model gives NaN or infinite outputs.")
    if task == "regression":
        return p
    if from_logits:
        if task == "multi_label" or p.shape[1] == 1:
            p = 1 / (1 + np.exp(-p))
        else:
            e = np.exp(p - p.max(axis=1, keepdims=True))
            p = e / e.sum(axis=1, keepdims=True)
    elif p.min() < 0 or p.max() > 1:
        raise ValueError(
            f"The model's outputs are not probabilities (from {p.min():.3g} "
            f"to {p.max():.3g}). Pass from_logits=True if it ends without "
            f"softmax or sigmoid.")
    if task == "single_label" and p.shape[1] == 1:
        p = np.concatenate([1 - p, p], axis=1)
    return p


def as_points(task, actual, points):
    """Whether the regression values ``actual`` are drawn as points."""
    if task != "regression":
        return False
    if points is None:
        return len(actual) >= 2 and len(actual) % 2 == 0
    if points and len(actual) % 2:
        raise ValueError(
            f"points=True needs an even number of values per image (x0, "
            f"y0, x1, y1, ...); the targets have {len(actual)}.")
    return bool(points)


class BatchSource:
    """Iterates ``(x, y)`` batches once and gives images back by position.

    Positions are those of the pass: for ``ImageBatches`` the files in the
    order of that pass (bad files skipped) are recorded and decoded again
    on request; other sequences are asked for the batch again.
    """

    def __init__(self, batches):
        self.batches = batches
        self.paths = None
        self._arrays = None
        if isinstance(batches, tuple) and len(batches) == 2:
            self._arrays = (np.asarray(batches[0]), batches[1])
        elif not (hasattr(batches, "__getitem__") and
                  hasattr(batches, "__len__")):
            raise TypeError(
                f"`batches` must be ImageBatches, a keras.utils.PyDataset "
                f"or a tuple (images, targets). Received: "
                f"{type(batches).__name__}.")
        self._starts = []

    def __len__(self):
        if self._arrays is not None:
            return -(-len(self._arrays[0]) // 64)
        return len(self.batches)

    def __iter__(self):
        if self._arrays is not None:
            x, y = self._arrays
            if y is not None and len(y) != len(x):
                raise ValueError(f"The images and targets must have the "
                                 f"same length; found {len(x)} and "
                                 f"{len(y)}.")
            for s in range(0, len(x), 64):
                yield x[s:s + 64], None if y is None else \
                    np.asarray(y)[s:s + 64]
            return
        order = self._file_order()
        total = 0
        for i in range(len(self.batches)):
            item = self.batches[i]
            x, y = (item[0], item[1]) if isinstance(item, tuple) else (
                item, None)
            self._starts.append(total)
            total += len(x)
            yield x, y
        if order is not None:
            bad = getattr(self.batches, "_bad", set())
            self.paths = [self.batches.paths[r] for r in order
                          if r not in bad]

    def _file_order(self):
        from kerasdl.data.images import ImageBatches

        if isinstance(self.batches, ImageBatches):
            return np.array(self.batches._order, copy=True)
        return None

    def fetch(self, idx):
        if self._arrays is not None:
            return self._arrays[0][idx]
        if self.paths is not None:
            from kerasdl.data.images import ImageBatches

            b = self.batches
            files = [self.paths[i] for i in idx]
            again = ImageBatches(files, image_size=b.image_size,
                                 batch_size=len(files), min_size=1,
                                 interpolation=b.interpolation, threads=1)
            return again[0]
        out = []
        for i in idx:
            batch = int(np.searchsorted(self._starts, i, side="right")) - 1
            item = self.batches[batch]
            x = item[0] if isinstance(item, tuple) else item
            out.append(np.asarray(x)[i - self._starts[batch]])
        return np.stack(out)
