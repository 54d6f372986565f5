"""Turning ``data`` / ``x=, y=`` arguments into ``model.fit`` arguments."""

from kerasdl.training import _checks

KEYS = ("x", "y", "sample_weight")


def fit_inputs(data, x, y, who):
    """Returns ``{"x": ..., "y": ..., ...}`` for ``model.fit``.

    ``data`` may be an ``(x, y)`` or ``(x, y, sample_weight)`` tuple, or
    anything ``model.fit`` takes as ``x`` (arrays, ``PyDataset``,
    ``tf.data.Dataset``, a generator); or pass ``x=`` and ``y=`` as to
    ``model.fit``.

    Arrays are checked before any training: ``x``, ``y`` and
    ``sample_weight`` (every array of a dict or list among them) must
    have the same number of rows, and float arrays finite values.

    Raises:
        ValueError: data given twice or not at all, a tuple of the wrong
            size, arrays of different lengths, NaN or infinite values.
    """
    out = _inputs(data, x, y, who)
    _checks.same_rows([(k, out.get(k)) for k in KEYS])
    for key in KEYS:
        for label, leaf in _checks.leaves(out.get(key), key):
            _checks.finite(leaf, label, hint=f"{who} would train on them "
                           f"and its weights would turn to NaN.")
    return out


def _inputs(data, x, y, who):
    if data is not None and (x is not None or y is not None):
        raise ValueError(
            f"{who}: pass the data either as `data` or as `x=`/`y=`, not "
            f"both. Received data of type {type(data).__name__} and x/y.")
    if data is None:
        if x is None:
            raise ValueError(f"{who}: no training data. Pass `data` (an "
                             f"(x, y) tuple, PyDataset, dataset or "
                             f"generator) or `x=` and `y=`.")
        return {"x": x, "y": y}
    if isinstance(data, tuple):
        if len(data) not in (2, 3):
            raise ValueError(
                f"{who}: a tuple `data` must be (x, y) or (x, y, "
                f"sample_weight); received a tuple of {len(data)} items.")
        out = {"x": data[0], "y": data[1]}
        if len(data) == 3:
            out["sample_weight"] = data[2]
        return out
    return {"x": data}
