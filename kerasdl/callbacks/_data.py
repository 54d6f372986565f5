"""Turning ``data`` / ``x=, y=`` arguments into ``model.fit`` arguments."""


def fit_inputs(data, x, y, who):
    """Returns ``{"x": ..., "y": ..., ...}`` for ``model.fit``.

    ``data`` may be an ``(x, y)`` or ``(x, y, sample_weight)`` tuple, or
    anything ``model.fit`` takes as ``x`` (arrays, ``PyDataset``,
    ``tf.data.Dataset``, a generator); or pass ``x=`` and ``y=`` as to
    ``model.fit``.
    """
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
