"""Argument checks shared by the whole package.

Every public entry point checks its arguments here, so that every message
has the same shape: the argument, the rule, the value received, and what
to do. A wrong type raises ``TypeError``; a value of the right type that
breaks the rule raises ``ValueError``.

Example:

>>> from kerasdl import _validate
>>> _validate.number(3e-3, "lr_max", low=0, low_open=True)
0.003
>>> _validate.number(float("nan"), "lr_max", low=0, low_open=True)
Traceback (most recent call last):
...
ValueError: `lr_max` must be a finite number > 0. Received: lr_max=nan.
>>> _validate.integer(2.5, "epochs", low=1)
Traceback (most recent call last):
...
TypeError: `epochs` must be an integer >= 1. Received: epochs=2.5.
"""

import math
import numbers
import os

import numpy as np


def _rule(low, high, low_open, high_open):
    parts = []
    if low is not None:
        parts.append(f"{'>' if low_open else '>='} {low:g}")
    if high is not None:
        parts.append(f"{'<' if high_open else '<='} {high:g}")
    return " and ".join(parts)


def _fail(cls, name, what, value, hint):
    message = f"`{name}` must be {what}. Received: {name}={value!r}."
    if hint:
        message += f" {hint}"
    raise cls(message)


def number(value, name, *, low=None, high=None, low_open=False,
           high_open=False, hint=None):
    """A finite real number within optional bounds, returned as float.

    Args:
        value: the argument.
        name: str. The argument's name, as the user wrote it.
        low, high: float or None. Bounds.
        low_open, high_open: bool. Exclude the bound itself.
        hint: str or None. What to do, appended to the message.

    Raises:
        TypeError: not a real number (bools are refused).
        ValueError: NaN, infinite, or out of bounds.
    """
    rule = _rule(low, high, low_open, high_open)
    what = "a finite number" + (f" {rule}" if rule else "")
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        _fail(TypeError, name, what, value, hint)
    v = float(value)
    if not math.isfinite(v):
        _fail(ValueError, name, what, value, hint)
    if low is not None and (v < low or (low_open and v == low)):
        _fail(ValueError, name, what, value, hint)
    if high is not None and (v > high or (high_open and v == high)):
        _fail(ValueError, name, what, value, hint)
    return v


def positive(value, name, *, hint=None):
    """A finite number > 0 (learning rates, divisors, multipliers)."""
    return number(value, name, low=0, low_open=True, hint=hint)


def integer(value, name, *, low=None, high=None, hint=None):
    """An integer within optional bounds (floats such as 2.0 refused).

    Raises:
        TypeError: not an integer (bools and floats are refused).
        ValueError: out of bounds.
    """
    rule = _rule(low, high, False, False)
    what = "an integer" + (f" {rule}" if rule else "")
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        _fail(TypeError, name, what, value, hint)
    v = int(value)
    if (low is not None and v < low) or (high is not None and v > high):
        _fail(ValueError, name, what, value, hint)
    return v


def fraction(value, name, *, closed=False, hint=None):
    """A number in (0, 1), or [0, 1] with ``closed=True``."""
    return number(value, name, low=0, high=1, low_open=not closed,
                  high_open=not closed, hint=hint)


def choice(value, name, options, *, hint=None):
    """One of ``options`` (compared with ``==``; types not coerced)."""
    if isinstance(value, str) or not isinstance(value, (list, dict, set)):
        for option in options:
            if type(option) is type(value) and option == value:
                return value
    listed = ", ".join(repr(o) for o in options)
    _fail(ValueError, name, f"one of {listed}", value, hint)


def strings(value, name, *, hint=None):
    """A list of str; a single str (read letter by letter) is refused.

    Returns:
        The strings as a list.
    """
    if isinstance(value, (str, bytes)) or not _iterable(value):
        _fail(TypeError, name, "a list of strings, such as ['a', 'b']",
              value, hint)
    out = list(value)
    bad = [v for v in out if not isinstance(v, str)]
    if bad:
        _fail(TypeError, name, f"a list of strings (found {bad[0]!r})",
              value, hint)
    return out


def finite_array(array, name, *, hint=None):
    """Refuses NaN or infinite entries in a numeric array; returns it.

    The message gives the count and the first bad position.
    """
    a = np.asarray(array)
    if a.dtype.kind not in "fc":
        return array
    bad = ~np.isfinite(a)
    if bad.any():
        first = tuple(int(i) for i in np.argwhere(bad)[0])
        where = first[0] if len(first) == 1 else first
        message = (f"`{name}` must hold finite numbers only. Found "
                   f"{int(bad.sum())} NaN or infinite value(s), the first "
                   f"at index {where}.")
        if hint:
            message += f" {hint}"
        raise ValueError(message)
    return array


def same_length(name_a, a, name_b, b):
    """Refuses two sequences (or arrays' first axes) of different length."""
    na, nb = len(a), len(b)
    if na != nb:
        raise ValueError(
            f"`{name_a}` and `{name_b}` must have the same length (one "
            f"entry of each per example). Received: {na} and {nb}.")
    return na


def output_file(path, name="path"):
    """A path that can be written: not a folder, its folder existing.

    Check before long work so that it does not end in a failed write.

    Returns:
        The path as str.
    """
    path = os.fspath(path)
    if not path or os.path.isdir(path):
        _fail(ValueError, name, "a file name, not a folder", path,
              "Add a file name such as 'out.png'.")
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        _fail(ValueError, name, "in a folder that exists", path,
              f"Create {folder!r} first.")
    if not os.access(folder, os.W_OK):
        _fail(ValueError, name, "in a folder you can write to", path,
              f"{folder!r} is not writable.")
    return path


def _iterable(value):
    try:
        iter(value)
    except TypeError:
        return False
    return True
