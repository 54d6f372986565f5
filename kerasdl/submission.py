"""Kaggle submissions: clipped probabilities in a (gzipped) CSV."""

import numbers

import numpy as np

from kerasdl import _csv
from kerasdl import _validate


def clip_probabilities(probs, max_prob=0.93):
    """Clips class probabilities to ``[(1 - m) / (k - 1), m]``.

    Log loss punishes a confident mistake without bound; the course clipped
    State Farm predictions at ``m = 0.93`` (10 classes: the floor is
    0.00778). Rows are not renormalised, as in the course.

    Example:

    >>> clip_probabilities([[1.0, 0.0], [0.5, 0.5]], 0.9).round(3).tolist()
    [[0.9, 0.1], [0.5, 0.5]]

    Args:
        probs: array of shape ``(n, k)``; rows of probabilities summing
            to 1.
        max_prob: float in (1/k, 1]. The ceiling ``m``. Defaults to 0.93.

    Returns:
        A float64 array of the same shape.

    Raises:
        TypeError: ``max_prob`` is not a number.
        ValueError: bad probabilities (see ``check_probabilities``), or
            ``max_prob`` outside (1/k, 1].
    """
    p = check_probabilities(probs)
    k = p.shape[1]
    _validate.number(
        max_prob, "max_prob", low=1.0 / k, high=1.0, low_open=True,
        hint=f"With {k} classes the ceiling must exceed 1/{k}; the course "
             f"used 0.93.")
    return np.clip(p, (1 - max_prob) / (k - 1), max_prob)


def check_probabilities(probs, atol=1e-3, name="probs"):
    """Returns ``probs`` as a 2-D float64 array after checking its rows.

    Args:
        probs: array-like of shape ``(n, k)``.
        atol: float. How far a row's sum may be from 1.
        name: str. The argument's name in messages.

    Returns:
        A float64 numpy array.

    Raises:
        TypeError: ``probs`` is not numeric.
        ValueError: not 2-D, fewer than 2 columns, NaN or infinite values,
            values outside [0, 1], or a row whose sum is not 1 (the first
            bad row is named).
    """
    try:
        p = np.asarray(probs, dtype="float64")
    except (TypeError, ValueError):
        raise TypeError(
            f"`{name}` must be a numeric array of probabilities. Received: "
            f"{type(probs).__name__} that is not numeric.") from None
    if p.ndim != 2 or p.shape[1] < 2 or p.shape[0] == 0:
        raise ValueError(
            f"`{name}` must have shape (n_rows, n_classes >= 2). Received "
            f"shape {p.shape}.")
    _validate.finite_array(p, name, hint="Pass softmax outputs.")
    bad = (p < 0).any(axis=1) | (p > 1).any(axis=1) | (
        np.abs(p.sum(axis=1) - 1) > atol)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(
            f"`{name}` row {i} is not a probability distribution (values in "
            f"[0, 1] summing to 1): {np.round(p[i], 4).tolist()} sums to "
            f"{p[i].sum():.4g}; {int(bad.sum())} such rows in all. Pass "
            f"softmax outputs.")
    return p


def write_submission(path, ids, probs, class_names, *, id_column="img",
                     max_prob=0.93, compress=None):
    """Writes a Kaggle CSV: the id, then one column per class, sorted.

    Columns are ``id_column`` followed by the class names in sorted order
    (``probs`` columns are reordered to match). Ids and names holding
    commas, quotes or line breaks are quoted, so any CSV reader gets the
    same rows back. The file appears complete or not at all, with the
    mode of any new file (``0o666`` less the umask).

    Example:

    >>> import os, tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "sub.csv")
    >>> _ = write_submission(path, ["a.jpg"], [[0.2, 0.8]], ["c1", "c0"],
    ...                      max_prob=0.9)
    >>> open(path).read().splitlines()
    ['img,c0,c1', 'a.jpg,0.8,0.2']

    Args:
        path: str. Destination, in a folder that exists; gzip-compressed
            when it ends with ``.gz`` (or when ``compress=True``).
        ids: sequence of str (or int). One unique, non-empty id per row
            (the image file name).
        probs: array ``(n, k)`` of probabilities, columns in the order of
            ``class_names``.
        class_names: list of k distinct, non-empty str.
        id_column: str. Header of the id column. Defaults to ``"img"``.
        max_prob: float or None. Clip as ``clip_probabilities``; ``None``
            writes the probabilities unchanged. Defaults to 0.93.
        compress: bool or None. Defaults to ``path.endswith(".gz")``.

    Returns:
        The path written.

    Raises:
        TypeError: an argument of the wrong type (an id that is neither
            str nor int, a single str as ``class_names``).
        ValueError: bad probabilities, lengths that differ, an empty or
            repeated id or class name, or a path that cannot be written.
    """
    path = _validate.output_file(path, "path")
    p = check_probabilities(probs)
    ids = _ids(ids)
    _validate.same_length("ids", ids, "probs", p)
    names = _class_names(class_names, p.shape[1], id_column)
    if compress is not None and not isinstance(compress, bool):
        raise TypeError(f"`compress` must be True, False or None. "
                        f"Received: compress={compress!r}.")
    if max_prob is not None:
        p = clip_probabilities(p, max_prob)
    order = np.argsort(names, kind="stable")
    rows = ([i] + [f"{v:.6g}" for v in row]
            for i, row in zip(ids, p[:, order]))
    compress = path.endswith(".gz") if compress is None else compress
    return _csv.write_csv(path, [id_column] + [names[j] for j in order],
                          rows, compress=compress)


def _ids(ids):
    """The ids as str; refuses other types, empty ids and repeats (one
    pass over the ids, so 80,000 of them take milliseconds)."""
    if isinstance(ids, (str, bytes)):
        raise TypeError(f"`ids` must be a sequence of ids, such as "
                        f"['img_1.jpg', 'img_2.jpg']. Received: ids={ids!r}.")
    out, first = [], {}
    for n, i in enumerate(ids):
        if isinstance(i, bool) or not isinstance(i, (str, numbers.Integral)):
            raise TypeError(f"`ids` must hold str (or int) only. Received "
                            f"{i!r} ({type(i).__name__}) at index {n}.")
        i = str(i)
        if not i:
            raise ValueError(f"`ids` must not hold empty strings (a CSV "
                             f"reader reads them as missing). Found one at "
                             f"index {n}.")
        if i in first:
            raise ValueError(
                f"`ids` must be unique; {i!r} appears at index {first[i]} "
                f"and {n}. Pass one row per id.")
        first[i] = n
        out.append(i)
    return out


def _class_names(class_names, k, id_column):
    names = _validate.strings(class_names, "class_names")
    if not isinstance(id_column, str) or not id_column:
        raise TypeError(f"`id_column` must be a non-empty str. Received: "
                        f"id_column={id_column!r}.")
    if len(names) != k:
        raise ValueError(
            f"`class_names` must hold one name per column of `probs` ({k}). "
            f"Received {len(names)}: {names}.")
    seen = set()
    for c in names:
        if not c or c in seen or c == id_column:
            what = ("empty" if not c else "repeated" if c in seen else
                    f"the id column's name {id_column!r}")
            raise ValueError(
                f"`class_names` must be distinct, non-empty and differ from "
                f"`id_column`; {c!r} is {what}. Received: {names}.")
        seen.add(c)
    return names
