"""Kaggle submissions: clipped probabilities in a (gzipped) CSV."""

import gzip
import io

import numpy as np

from kerasdl._files import atomic_path


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
    """
    p = check_probabilities(probs)
    k = p.shape[1]
    if not 1.0 / k < max_prob <= 1.0:
        raise ValueError(
            f"`max_prob` must be in (1/k, 1] = ({1 / k:.4g}, 1] for {k} "
            f"classes. Received: max_prob={max_prob}."
        )
    return np.clip(p, (1 - max_prob) / (k - 1), max_prob)


def check_probabilities(probs, atol=1e-3):
    """Returns ``probs`` as a 2-D float64 array after checking its rows.

    Raises:
        ValueError: not 2-D, fewer than 2 columns, values outside [0, 1],
            NaN, or a row whose sum is not 1 (the first bad row is named).
    """
    p = np.asarray(probs, dtype="float64")
    if p.ndim != 2 or p.shape[1] < 2 or p.shape[0] == 0:
        raise ValueError(
            f"Expected probabilities of shape (n_rows, n_classes >= 2), "
            f"found shape {p.shape}."
        )
    bad = ~np.isfinite(p).all(axis=1) | (p < 0).any(axis=1) | (
        p > 1).any(axis=1) | (np.abs(p.sum(axis=1) - 1) > atol)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(
            f"Row {i} is not a probability distribution (values in [0, 1] "
            f"summing to 1): {np.round(p[i], 4).tolist()} sums to "
            f"{p[i].sum():.4g}; {int(bad.sum())} such rows in all. Pass "
            f"softmax outputs."
        )
    return p


def write_submission(path, ids, probs, class_names, *, id_column="img",
                     max_prob=0.93, compress=None):
    """Writes a Kaggle CSV: the id, then one column per class, sorted.

    Columns are ``id_column`` followed by the class names in sorted order
    (``probs`` columns are reordered to match). The file appears complete
    or not at all.

    Example:

    >>> import os, tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "sub.csv")
    >>> _ = write_submission(path, ["a.jpg"], [[0.2, 0.8]], ["c1", "c0"],
    ...                      max_prob=0.9)
    >>> open(path).read().splitlines()
    ['img,c0,c1', 'a.jpg,0.8,0.2']

    Args:
        path: str. Destination; gzip-compressed when it ends with ``.gz``
            (or when ``compress=True``).
        ids: sequence of str. One unique id per row (the image file name).
        probs: array ``(n, k)`` of probabilities, columns in the order of
            ``class_names``.
        class_names: sequence of k str.
        id_column: str. Header of the id column. Defaults to ``"img"``.
        max_prob: float or None. Clip as ``clip_probabilities``; ``None``
            writes the probabilities unchanged. Defaults to 0.93.
        compress: bool or None. Defaults to ``path.endswith(".gz")``.

    Returns:
        The path written.
    """
    p = check_probabilities(probs)
    ids = [str(i) for i in ids]
    names = [str(c) for c in class_names]
    if len(ids) != p.shape[0]:
        raise ValueError(
            f"Expected one id per row of probabilities: {p.shape[0]} rows, "
            f"found {len(ids)} ids."
        )
    if len(names) != p.shape[1] or len(set(names)) != len(names):
        raise ValueError(
            f"Expected {p.shape[1]} distinct class names (one per column), "
            f"found {names}."
        )
    if len(set(ids)) != len(ids):
        dup = next(i for i in ids if ids.count(i) > 1)
        raise ValueError(f"Ids must be unique; {dup!r} appears more than "
                         f"once.")
    if max_prob is not None:
        p = clip_probabilities(p, max_prob)
    order = np.argsort(names, kind="stable")
    buf = io.StringIO()
    buf.write(",".join([id_column] + [names[j] for j in order]) + "\n")
    for i, row in zip(ids, p[:, order]):
        buf.write(i + "," + ",".join(f"{v:.6g}" for v in row) + "\n")
    data = buf.getvalue().encode()
    compress = str(path).endswith(".gz") if compress is None else compress
    with atomic_path(path) as tmp:
        if compress:
            with gzip.open(tmp, "wb") as f:
                f.write(data)
        else:
            with open(tmp, "wb") as f:
                f.write(data)
    return str(path)
