"""Argument checks of the training tools that ``kerasdl._validate`` has
no helper for (flags, callback lists, optional integers, rates given as a
number, a slice or one per group), in its message shape."""

import numbers

import keras
import numpy as np

from kerasdl import _validate

VERBOSE = (0, 1, 2, "auto")


def _fail(cls, name, what, value, hint=None):
    message = f"`{name}` must be {what}. Received: {name}={value!r}."
    if hint:
        message += f" {hint}"
    raise cls(message)


def flag(value, name):
    """``True`` or ``False`` (numpy bools too); returned as bool.

    Raises:
        TypeError: anything else, such as ``"no"`` or ``0``.
    """
    if not isinstance(value, (bool, np.bool_)):
        _fail(TypeError, name, "True or False", value)
    return bool(value)


def optional_integer(value, name, *, low=None, hint=None):
    """``None`` or an integer ``>= low`` (see ``_validate.integer``)."""
    if value is None:
        return None
    return _validate.integer(value, name, low=low, hint=hint)


def optional_callable(value, name):
    """``None`` or a callable."""
    if value is not None and not callable(value):
        _fail(TypeError, name, "a callable or None", value)
    return value


def verbose(value, name="verbose"):
    """``0``, ``1``, ``2`` or ``"auto"``, as ``model.fit`` takes it."""
    return _validate.choice(value, name, VERBOSE)


def callback_list(value, name="callbacks"):
    """``None`` or a list of ``keras.callbacks.Callback``; returns a list.

    A single callback (not in a list) is refused with the fix.
    """
    if value is None:
        return []
    if isinstance(value, keras.callbacks.Callback):
        _fail(TypeError, name, "a list of keras callbacks", value,
              f"Wrap it in a list: {name}=[...].")
    if not isinstance(value, (list, tuple)):
        _fail(TypeError, name, "a list of keras callbacks", value)
    for i, cb in enumerate(value):
        if not isinstance(cb, keras.callbacks.Callback):
            _fail(TypeError, name, f"a list of keras callbacks (item {i} is "
                  f"a {type(cb).__name__})", value)
    return list(value)


def _scalar(value):
    if isinstance(value, np.ndarray) and value.ndim == 0:
        return value.item()
    return value


def rates(lr, name="lr_max"):
    """A learning rate as ``spread_lr`` reads it: a number > 0, a
    ``slice(lo, hi)`` or ``slice(hi)`` of numbers ``0 < lo <= hi``, or a
    sequence of numbers > 0 (one per group).

    Returns:
        ``lr`` unchanged (a 0-d array as a number).

    Raises:
        TypeError: not a number, slice or sequence of numbers.
        ValueError: NaN, infinite, zero or negative rates, a slice with a
            step or without ``hi``, ``lo > hi``, an empty sequence.
    """
    lr = _scalar(lr)
    if isinstance(lr, slice):
        return _rate_slice(lr, name)
    if isinstance(lr, numbers.Number) or isinstance(lr, (str, bytes)):
        _validate.positive(lr, name, hint="Try 1e-3.")
        return lr
    if not isinstance(lr, (list, tuple, np.ndarray)):
        _fail(TypeError, name, "a number > 0, slice(lo, hi) or one rate per "
              "group", lr)
    values = list(lr)
    if not values:
        _fail(ValueError, name, "a number > 0, slice(lo, hi) or one rate "
              "per group (an empty list has none)", lr)
    for i, v in enumerate(values):
        _validate.positive(_scalar(v), f"{name}[{i}]", hint="Try 1e-3.")
    return lr


def _rate_slice(lr, name):
    if lr.step is not None or lr.stop is None:
        _fail(ValueError, name, "slice(lo, hi) or slice(hi), without a step",
              lr, "Try slice(1e-5, 1e-3).")
    hi = _validate.positive(_scalar(lr.stop), f"{name}.stop")
    if lr.start is not None:
        lo = _validate.positive(_scalar(lr.start), f"{name}.start")
        if lo > hi:
            _fail(ValueError, name, "slice(lo, hi) with lo <= hi (rates "
                  "grow from the first group to the last)", lr,
                  f"Try slice({hi:g}, {lo:g}).")
    return lr


def momenta(moms, name="moms"):
    """``None`` or 3 numbers in ``[0, 1)`` (start, middle, end): SGD
    momentum or Adam's ``beta_1`` (1 would divide by zero in Adam).

    Returns:
        A tuple of 3 floats, or ``None``.
    """
    if moms is None:
        return None
    if isinstance(moms, (str, bytes)) or not isinstance(
            moms, (list, tuple, np.ndarray)):
        _fail(TypeError, name, "3 numbers (start, middle, end) or None",
              moms, "Try (0.95, 0.85, 0.95).")
    if len(moms) != 3:
        _fail(ValueError, name, "3 numbers (start, middle, end) or None",
              moms, "Try (0.95, 0.85, 0.95).")
    return tuple(_validate.number(_scalar(m), f"{name}[{i}]", low=0, high=1,
                                  high_open=True)
                 for i, m in enumerate(moms))


# Rows scanned at once by ``finite``: about 64 MB of float32.
_CHUNK_BYTES = 64 << 20


def finite(array, name, *, hint=None):
    """Refuses NaN or infinite entries of a float array, scanned in chunks
    of rows (a memory map is read once, never copied whole).

    Integer, boolean and non-array values are passed over.

    Raises:
        ValueError: naming the count, the first bad row and the fix.
    """
    dtype = getattr(array, "dtype", None)
    shape = getattr(array, "shape", None)
    if dtype is None or shape is None or np.dtype(dtype).kind not in "fc":
        return array
    if len(shape) == 0:
        _validate.finite_array(array, name, hint=hint)
        return array
    row_bytes = max(int(np.prod(shape[1:], dtype=np.int64)), 1) * \
        np.dtype(dtype).itemsize
    step = max(_CHUNK_BYTES // row_bytes, 1)
    count, first = 0, None
    for start in range(0, shape[0], step):
        bad = ~np.isfinite(np.asarray(array[start:start + step]))
        if bad.ndim > 1:
            bad = bad.reshape(len(bad), -1).any(axis=1)
        n = int(bad.sum())
        if n and first is None:
            first = start + int(np.argmax(bad))
        count += n
    if count:
        message = (f"`{name}` must hold finite numbers only. Found NaN or "
                   f"infinite values in {count} row(s), the first at row "
                   f"{first}.")
        raise ValueError(message + (f" {hint}" if hint else ""))
    return array


def leaves(value, name):
    """``[(label, leaf)]`` of a nested dict / list / tuple of arrays, the
    labels written as a user would index it: ``x['image']``, ``x[0]``."""
    if isinstance(value, dict):
        return [pair for key, v in value.items()
                for pair in leaves(v, f"{name}[{key!r}]")]
    if isinstance(value, (list, tuple)) and any(
            hasattr(v, "shape") or isinstance(v, (dict, list, tuple))
            for v in value):
        return [pair for i, v in enumerate(value)
                for pair in leaves(v, f"{name}[{i}]")]
    return [(name, value)]


def rows(value):
    """Length of the first axis of an array-like, or None if unknown."""
    shape = getattr(value, "shape", None)
    if shape is None or len(shape) == 0 or shape[0] is None:
        return None
    return int(shape[0])


def same_rows(named):
    """All arrays of ``[(label, value)]`` (nested ones flattened) have
    the same number of rows; returns it (None when none is known).

    Raises:
        ValueError: two of them differ, naming both and their lengths.
    """
    known = [(label, rows(leaf)) for name, value in named
             if value is not None
             for label, leaf in leaves(value, name)]
    known = [(label, n) for label, n in known if n is not None]
    for label, n in known[1:]:
        _validate.same_length(known[0][0], range(known[0][1]), label,
                              range(n))
    return known[0][1] if known else None
