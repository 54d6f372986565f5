"""MixedBatches: every batch drawn from several sources in fixed numbers.

Pseudo-labelling works best when about a quarter to a third of every batch
is pseudo-labelled. ``MixedBatches`` builds such batches: each one holds
exactly ``batch_sizes[i]`` rows of source ``i``.
"""

import math

import keras
import numpy as np

from kerasdl import _validate
from kerasdl.training import _checks

# Rows of class probabilities may sum to 1 within this.
PROB_TOL = 1e-3


class MixedBatches(keras.utils.PyDataset):
    """A ``PyDataset`` whose batches mix several sources in fixed numbers.

    Each source is shuffled on its own (a new order on every pass over it)
    and cycled when it runs out, so a small source is repeated while the
    first one is read once.

    Epoch length: one pass over the first source, that is
    ``ceil(len(source0) / batch_sizes[0])`` batches. When ``len(source0)``
    is a multiple of ``batch_sizes[0]`` every example of the first source
    appears exactly once per epoch; otherwise the last batch is topped up
    with the first examples of its next shuffled pass, so every example
    still appears at least once and every batch keeps its composition.
    Pass ``steps_per_epoch`` to choose another length.

    Batches depend only on ``seed``, the epoch and the batch index for
    array sources (any worker may build any batch). A source that is itself
    a ``PyDataset`` is read batch after batch (its batches taken in a seeded
    order) and re-cut to the rows asked; then batches must be requested in
    order, with ``workers=1``. ``model.fit`` reorders a PyDataset's batches
    when ``shuffle=True`` (its default), drawing on the global random
    state; pass ``shuffle=False`` for batches that depend on ``seed`` only
    (every source is shuffled already).

    Example:

    >>> import numpy as np
    >>> x1, y1 = np.zeros((96, 3)), np.eye(2)[np.zeros(96, int)]
    >>> x2, y2 = np.ones((20, 3)), np.full((20, 2), 0.5)
    >>> mix = MixedBatches([(x1, y1), (x2, y2)], batch_sizes=[48, 16])
    >>> len(mix), mix[0][0].shape, float(mix[0][0][:, 0].sum())
    (2, (64, 3), 16.0)

    Args:
        sources: list of sources. A source is ``(x, y)`` or
            ``(x, y, sample_weight)`` with numpy-like arrays (memory maps
            work and are read only for the rows needed), or a
            ``keras.utils.PyDataset`` yielding such tuples.
        batch_sizes: list of int. Rows of each source in every batch.
        fractions: list of float summing to 1, with ``batch_size``:
            the share of each source in every batch (used when
            ``batch_sizes`` is not given); each share times the batch size
            must be a whole number.
        batch_size: int. Total batch size, with ``fractions``.
        weights: list of float or None. A sample weight for every row of
            each source (for example 1.0 for labels, 0.5 for pseudo-labels).
            Sources' own sample weights are multiplied by it.
        steps_per_epoch: int or None. Batches per epoch; by default one
            pass over the first source.
        augment: list of callables or None, one per source (``None`` for
            a source left as it is). ``augment[i](x_rows, rng)`` returns
            source ``i``'s rows of the batch augmented (same shape), with
            ``rng`` a numpy Generator seeded from ``seed``, the source and
            the step, so batches stay reproducible; other sources' rows
            and all targets are untouched (for example weak augmentation
            for labels, ``kerasdl.data.augment.ArrayAugment`` cutout for
            pseudo-labels). Defaults to ``None``.
        seed: int. Seed of every shuffle. Defaults to 0.
        shuffle: bool. Shuffle each source. Defaults to ``True``.
        replicas: int. Devices that split every batch in equal contiguous
            parts (``kerasdl.data_parallel``'s ``num_replicas``). The rows
            are laid out so that each part holds ``batch_sizes[i] /
            replicas`` rows of source ``i``: every replica's share has the
            batch's composition (with TensorFlow each replica normalises
            its own rows). Every batch size must divide by it. Defaults
            to 1 (sources one after the other).
        check_probabilities: bool. Read targets of shape ``(n, k)``, ``k
            >= 2``, of a float type as class probabilities (one-hot or
            soft labels) and refuse rows with a negative value or not
            summing to 1 (within ``PROB_TOL``). Pass ``False`` for other
            targets, such as regression values. Defaults to ``True``.
        **kwargs: ``workers``, ``use_multiprocessing``, ``max_queue_size``,
            passed to ``keras.utils.PyDataset``.

    Every array source is checked when the batches are built (a
    ``PyDataset`` source, whose rows are not known before, batch by
    batch as it is read): all its arrays (every array of a dict or list
    too) must have the same number of rows, float inputs and targets
    finite values, sample weights values >= 0, and class probabilities
    as above. A memory map is read once for it, in chunks.

    Raises:
        TypeError: arguments of the wrong type.
        ValueError: empty sources, arrays of different lengths in a
            source, NaN or infinite inputs, targets or weights, targets
            that are not class probabilities, negative, NaN or all-zero
            ``weights``, fractions that do not sum to 1 or do not fit the
            batch size, other bad values.
    """

    def __init__(self, sources, batch_sizes=None, *, fractions=None,
                 batch_size=None, weights=None, steps_per_epoch=None,
                 augment=None, seed=0, shuffle=True, replicas=1,
                 check_probabilities=True, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(sources, (list, tuple)) or not sources:
            raise ValueError(
                "`sources` must be a non-empty list of (x, y) tuples or "
                f"PyDatasets. Received: {type(sources).__name__}."
            )
        self.batch_sizes = _resolve_sizes(len(sources), batch_sizes,
                                          fractions, batch_size)
        self.check_probabilities = _checks.flag(check_probabilities,
                                                "check_probabilities")
        self.sources = [_Source(i, s, self.check_probabilities)
                        for i, s in enumerate(sources)]
        _check_shapes(self.sources)
        self.weights = _check_weights(weights, len(sources))
        self.augment = _check_augment(augment, len(sources))
        self.seed = _validate.integer(seed, "seed", low=0)
        self.shuffle = _checks.flag(shuffle, "shuffle")
        self.replicas = _check_replicas(replicas, self.batch_sizes)
        self._layout = _replica_layout(self.batch_sizes, self.replicas)
        first = self.sources[0]
        if steps_per_epoch is None:
            if first.length is None:
                raise ValueError(
                    "The first source is a PyDataset of unknown row count: "
                    "pass `steps_per_epoch`."
                )
            steps_per_epoch = math.ceil(first.length / self.batch_sizes[0])
        self.steps_per_epoch = _validate.integer(
            steps_per_epoch, "steps_per_epoch", low=1)
        self.epoch = 0

    @property
    def batch_size(self):
        """Total rows in every batch."""
        return sum(self.batch_sizes)

    @property
    def num_batches(self):
        return self.steps_per_epoch

    def __len__(self):
        return self.steps_per_epoch

    def __getitem__(self, index):
        if not 0 <= index < self.steps_per_epoch:
            raise IndexError(
                f"Batch index {index} is out of range for an epoch of "
                f"{self.steps_per_epoch} batches."
            )
        step = self.epoch * self.steps_per_epoch + index
        parts = [
            source.rows(step * size, size, self._order, step)
            for source, size in zip(self.sources, self.batch_sizes)
        ]
        if self.augment is not None:
            parts = [self._augmented(i, part, step)
                     for i, part in enumerate(parts)]
        x = self._arrange(_concat([p[0] for p in parts]))
        y = self._arrange(_concat([p[1] for p in parts]))
        has_weights = self.weights is not None or any(
            p[2] is not None for p in parts)
        if not has_weights:
            return x, y
        sw = []
        for i, (part, size) in enumerate(zip(parts, self.batch_sizes)):
            w = np.ones(size, "float32") if part[2] is None else np.asarray(
                part[2], "float32")
            if self.weights is not None:
                w = w * self.weights[i]
            sw.append(w)
        return x, y, self._arrange(np.concatenate(sw))

    def _arrange(self, rows):
        if self._layout is None:
            return rows
        return _take_rows(rows, self._layout)

    def on_epoch_end(self):
        self.epoch += 1

    def composition(self):
        """``{source index: rows per batch}``, for reports."""
        return dict(enumerate(self.batch_sizes))

    def _augmented(self, i, part, step):
        fn = self.augment[i]
        if fn is None:
            return part
        rng = np.random.default_rng((self.seed, i, step, 0xA0))
        x = fn(part[0], rng)
        if np.shape(x) != np.shape(part[0]):
            raise ValueError(
                f"augment[{i}] changed the shape of source {i}'s rows from "
                f"{np.shape(part[0])} to {np.shape(x)}; it must keep it.")
        return (x, *part[1:])

    def _order(self, source_index, n, pass_index):
        if not self.shuffle:
            return np.arange(n)
        rng = np.random.default_rng((self.seed, source_index, pass_index))
        return rng.permutation(n)


class _Source:
    """One source: arrays read by global row position, or a PyDataset."""

    def __init__(self, index, source, check_probabilities=True):
        self.index = index
        self.check_probabilities = check_probabilities
        self.dataset = None
        if isinstance(source, keras.utils.PyDataset):
            self.dataset = source
            self.length = None
            self._buffer = None
            self._next_step = 0
            self._batch_pos = 0
            return
        if not isinstance(source, (tuple, list)) or len(source) not in (2, 3):
            raise ValueError(
                f"Source {index} must be (x, y), (x, y, sample_weight) or a "
                f"keras.utils.PyDataset. Received: {type(source).__name__}."
            )
        self.arrays = tuple(source) if len(source) == 3 else (*source, None)
        if self.arrays[0] is None or self.arrays[1] is None:
            raise ValueError(f"Source {index} must be (x, y) with arrays; "
                             f"found None for x or y.")
        lengths = [(label, _length(leaf)) for label, leaf in self._leaves()]
        if len({n for _, n in lengths}) != 1:
            found = ", ".join(f"{label}: {n}" for label, n in lengths)
            raise ValueError(
                f"Source {index}: x, y (and sample_weight), and every array "
                f"in a dict or list of them, must have the same number of "
                f"rows. Found {found}."
            )
        if lengths[0][1] == 0:
            raise ValueError(f"Source {index} is empty (0 rows).")
        self.length = lengths[0][1]
        self.check_values(self.arrays, "")

    def _leaves(self, arrays=None):
        arrays = self.arrays if arrays is None else arrays
        return [pair for name, a in zip(("x", "y", "sample_weight"), arrays)
                if a is not None for pair in _checks.leaves(a, name)]

    def check_values(self, arrays, where):
        """Finite inputs and targets, weights >= 0, class probabilities.

        ``where``: words placing ``arrays`` (a PyDataset's batch).
        """
        name = f"source {self.index}{where}"
        for label, leaf in self._leaves(arrays):
            _checks.finite(leaf, f"{label}` of `{name}", hint=_NAN_HINT)
            if label.startswith("sample_weight"):
                _check_nonnegative(leaf, f"{label}` of `{name}")
            elif label.startswith("y") and self.check_probabilities:
                _check_probabilities(leaf, f"{label}` of `{name}")

    def rows(self, start, count, order, step):
        if self.dataset is not None:
            return self._dataset_rows(count, order, step)
        positions = np.arange(start, start + count)
        passes, offsets = np.divmod(positions, self.length)
        idx = np.empty(count, dtype=np.int64)
        for p in np.unique(passes):
            mask = passes == p
            idx[mask] = order(self.index, self.length, int(p))[offsets[mask]]
        return tuple(None if a is None else _take(a, idx)
                     for a in self.arrays)

    def _dataset_rows(self, count, order, step):
        if step != self._next_step:
            raise ValueError(
                f"Source {self.index} is a PyDataset, read batch after batch: "
                f"batch {step} was asked but {self._next_step} comes next. "
                f"Use workers=1 and read the batches in order."
            )
        self._next_step += 1
        chunks = [] if self._buffer is None else [self._buffer]
        have = 0 if self._buffer is None else _length(self._buffer[0])
        n = len(self.dataset)
        while have < count:
            p, b = divmod(self._batch_pos, n)
            batch = self.dataset[int(order(self.index, n, p)[b])]
            self._batch_pos += 1
            batch = tuple(batch) if len(batch) == 3 else (*batch, None)
            if _length(batch[0]) == 0:
                raise ValueError(f"Source {self.index} gave an empty batch.")
            self.check_values(batch, f", batch {b}")
            chunks.append(batch)
            have += _length(batch[0])
        merged = tuple(
            None if chunks[0][k] is None else _concat([c[k] for c in chunks])
            for k in range(3))
        self._buffer = tuple(
            None if m is None else _take(m, slice(count, None))
            for m in merged)
        return tuple(None if m is None else _take(m, slice(0, count))
                     for m in merged)


_NAN_HINT = "Training on them would turn the weights to NaN."


def _check_nonnegative(a, name):
    a = np.asarray(a)
    if a.dtype.kind in "biuf" and a.size and (a < 0).any():
        first = int(np.argmax((a < 0).reshape(len(a), -1).any(axis=1)))
        raise ValueError(
            f"`{name}` must hold sample weights >= 0. Found "
            f"{int((a < 0).sum())} negative value(s), the first at row "
            f"{first}.")


def _check_probabilities(y, name):
    """Targets ``(n, k >= 2)`` of a float type are class probabilities:
    no negative value, every row summing to 1 within ``PROB_TOL``."""
    shape = getattr(y, "shape", None)
    dtype = getattr(y, "dtype", None)
    if shape is None or len(shape) != 2 or shape[1] < 2 or \
            np.dtype(dtype).kind != "f":
        return
    step = max((64 << 20) // (shape[1] * np.dtype(dtype).itemsize), 1)
    bad, sums = [], []
    for start in range(0, shape[0], step):
        rows = np.asarray(y[start:start + step], dtype=np.float64)
        total = rows.sum(axis=1)
        wrong = (rows < 0).any(axis=1) | (np.abs(total - 1) > PROB_TOL)
        bad.extend((start + np.flatnonzero(wrong)).tolist())
        sums.extend(total[wrong].tolist())
    if bad:
        shown = ", ".join(f"{r} (sum {s:.4g})"
                          for r, s in zip(bad[:5], sums[:5]))
        more = f" and {len(bad) - 5} more" if len(bad) > 5 else ""
        raise ValueError(
            f"`{name}` must hold class probabilities (one-hot or soft "
            f"labels): values >= 0 and each row summing to 1 (within "
            f"{PROB_TOL:g}). Found {len(bad)} row(s) that do not: "
            f"{shown}{more}. Normalise them (y / y.sum(axis=1, "
            f"keepdims=True) after clipping at 0), or pass "
            f"check_probabilities=False if y is not class probabilities.")


def _check_weights(weights, n_sources):
    """One finite weight >= 0 per source, not all zero; floats or None."""
    if weights is None:
        return None
    if isinstance(weights, (str, bytes)) or not isinstance(
            weights, (list, tuple, np.ndarray)):
        raise TypeError(
            f"`weights` must be a list of one weight per source "
            f"({n_sources}) or None. Received: weights={weights!r}.")
    if len(weights) != n_sources:
        raise ValueError(
            f"`weights` must give one weight per source ({n_sources}). "
            f"Received: weights={list(weights)!r}.")
    values = [_validate.number(w, f"weights[{i}]", low=0,
                               hint="A weight multiplies the loss of the "
                                    "source's rows; try 1.0.")
              for i, w in enumerate(weights)]
    if not any(values):
        raise ValueError(
            f"`weights` must not all be 0 (nothing would be learned). "
            f"Received: weights={values!r}.")
    return values


def _check_replicas(replicas, batch_sizes):
    replicas = _validate.integer(replicas, "replicas", low=1)
    odd = [f"source {i}: {n}" for i, n in enumerate(batch_sizes)
           if n % replicas]
    if odd:
        raise ValueError(
            f"With replicas={replicas} every source's rows per batch must "
            f"divide by {replicas}, so that each replica gets the same "
            f"share; found {', '.join(odd)}. Choose batch sizes that are "
            f"multiples of {replicas}.")
    return int(replicas)


def _replica_layout(batch_sizes, replicas):
    """Row order putting ``size / replicas`` rows of each source into each
    of the batch's ``replicas`` contiguous parts; None for one part."""
    if replicas == 1:
        return None
    starts = np.cumsum([0] + list(batch_sizes[:-1]))
    return np.concatenate([
        start + r * (size // replicas) + np.arange(size // replicas)
        for r in range(replicas)
        for start, size in zip(starts, batch_sizes)])


def _check_augment(augment, n_sources):
    if augment is None:
        return None
    if callable(augment) or not isinstance(augment, (list, tuple)):
        raise TypeError(
            f"`augment` must be a list with a callable (or None) for each "
            f"of the {n_sources} sources. Received: augment={augment!r}.")
    augment = list(augment)
    if len(augment) != n_sources or not all(
            a is None or callable(a) for a in augment):
        raise ValueError(
            f"`augment` must give a callable (or None) for each of the "
            f"{n_sources} sources. Received: augment={augment!r}.")
    return augment


def _check_shapes(sources):
    arrays = [s for s in sources if s.dataset is None]
    for k, what in ((0, "x"), (1, "y")):
        shapes = {s.index: _row_shape(s.arrays[k]) for s in arrays}
        if len(set(shapes.values())) > 1:
            hint = (" Give hard labels one-hot (keras.utils.to_categorical) "
                    "to mix them with soft pseudo-labels." if what == "y"
                    else "")
            raise ValueError(
                f"Every source's {what} must have the same row shape to be "
                f"mixed. Found {shapes} (source: shape of one row).{hint}"
            )


def _row_shape(a):
    if isinstance(a, dict):
        return tuple(sorted((k, _row_shape(v)) for k, v in a.items()))
    if isinstance(a, (tuple, list)):
        return tuple(_row_shape(v) for v in a)
    return tuple(np.shape(a)[1:]) if hasattr(a, "shape") else ()


def _resolve_sizes(n_sources, batch_sizes, fractions, batch_size):
    if batch_sizes is not None:
        if fractions is not None:
            raise ValueError("Pass either `batch_sizes` or `fractions` with "
                             "`batch_size`, not both.")
        sizes = _sequence(batch_sizes, "batch_sizes", n_sources)
        if len(sizes) != n_sources:
            raise ValueError(
                f"`batch_sizes` must give a positive integer for each of the "
                f"{n_sources} sources. Received: batch_sizes={sizes}."
            )
        return [_validate.integer(s, f"batch_sizes[{i}]", low=1)
                for i, s in enumerate(sizes)]
    if fractions is None or batch_size is None:
        raise ValueError(
            "Pass `batch_sizes` (rows of each source per batch) or "
            "`fractions` together with `batch_size`."
        )
    fractions = _sequence(fractions, "fractions", n_sources)
    if len(fractions) != n_sources:
        raise ValueError(
            f"`fractions` must give a positive share for each of the "
            f"{n_sources} sources. Received: fractions={fractions}."
        )
    fractions = [_validate.number(f, f"fractions[{i}]", low=0, high=1,
                                  low_open=True)
                 for i, f in enumerate(fractions)]
    batch_size = _validate.integer(batch_size, "batch_size", low=1)
    if not math.isclose(sum(fractions), 1.0, abs_tol=1e-6):
        raise ValueError(
            f"`fractions` must sum to 1. Received: fractions={fractions} "
            f"(sum {sum(fractions):.6g})."
        )
    sizes = [f * batch_size for f in fractions]
    rounded = [round(s) for s in sizes]
    if any(abs(s - r) > 1e-6 for s, r in zip(sizes, rounded)) or min(
            rounded) < 1:
        raise ValueError(
            f"`fractions` {fractions} do not split batch_size={batch_size} "
            f"into whole rows (got {[round(s, 3) for s in sizes]}). Choose a "
            f"batch size such as {_fitting_batch(fractions)} or pass "
            f"`batch_sizes`."
        )
    return rounded


def _sequence(value, name, n_sources):
    if isinstance(value, (str, bytes)) or not isinstance(
            value, (list, tuple, np.ndarray)):
        raise TypeError(
            f"`{name}` must be a list with one value for each of the "
            f"{n_sources} sources. Received: {name}={value!r}.")
    return list(value)


def _fitting_batch(fractions):
    for b in range(2, 4097):
        if all(abs(f * b - round(f * b)) < 1e-6 for f in fractions):
            return b
    return "a multiple of every fraction's denominator"


def _length(a):
    if isinstance(a, dict):
        return _length(next(iter(a.values())))
    if isinstance(a, (tuple, list)):
        return _length(a[0])
    return len(a)


def _take(a, idx):
    if isinstance(a, dict):
        return {k: _take(v, idx) for k, v in a.items()}
    if isinstance(a, (tuple, list)):
        return tuple(_take(v, idx) for v in a)
    if isinstance(idx, slice):
        return a[idx]
    if isinstance(a, np.ndarray):
        # Sorted reads are much faster on a memory map; restore the order.
        order = np.argsort(idx, kind="stable")
        out = np.asarray(a[idx[order]])
        result = np.empty_like(out)
        result[order] = out
        return result
    return np.asarray(a)[idx]


def _take_rows(rows, index):
    if isinstance(rows, dict):
        return {k: _take_rows(v, index) for k, v in rows.items()}
    if isinstance(rows, tuple):
        return tuple(_take_rows(v, index) for v in rows)
    return rows[index]


def _concat(parts):
    first = parts[0]
    if isinstance(first, dict):
        return {k: _concat([p[k] for p in parts]) for k in first}
    if isinstance(first, (tuple, list)):
        return tuple(_concat([p[i] for p in parts])
                     for i in range(len(first)))
    return np.concatenate([np.asarray(p) for p in parts])
