"""MovieLens readers and an id encoder.

``read_movielens(folder)`` recognises the three layouts GroupLens ships:

* ``ml-latest-small`` (and ``ml-latest``): ``ratings.csv`` with a header
  ``userId,movieId,rating,timestamp``, titles in ``movies.csv`` (UTF-8);
  ratings 0.5 to 5.0;
* ``ml-100k``: ``u.data`` (tab separated, no header), titles in ``u.item``
  (``|`` separated, latin-1), the canonical folds ``u1.base/u1.test`` ...
  ``u5.base/u5.test`` when present; ratings 1 to 5;
* ``ml-1m``: ``ratings.dat`` and ``movies.dat`` (``::`` separated,
  latin-1); ratings 1 to 5.

Text is read as UTF-8, or as latin-1 only when the bytes are not valid
UTF-8, so titles never turn into mojibake.

Bad rows raise a ``ValueError`` that names the file and the line numbers:
a wrong number of fields, an id that is not an integer or does not fit
exactly in 64 bits (ids are never rounded through floats), a rating that
is not a number or is outside the scale, a timestamp that is not an
integer. With ``on_bad="skip"`` they are left out instead and counted in
``skipped``; nothing is ever dropped without being counted. A file whose
lines do not hold the expected separator, or that has no good row at all,
is an error whatever ``on_bad`` says. A (user, item) pair rated twice is
an error unless ``duplicates`` says how to merge it.
"""

import dataclasses
import os

import numpy as np
import pandas as pd

from kerasdl import _validate
from kerasdl.data import _ratings_parse
from kerasdl.data._ratings_parse import COLUMNS  # noqa: F401

# format -> (ratings file, titles file, rating range)
FORMATS = {
    "ml-latest-small": ("ratings.csv", "movies.csv", (0.5, 5.0)),
    "ml-100k": ("u.data", "u.item", (1.0, 5.0)),
    "ml-1m": ("ratings.dat", "movies.dat", (1.0, 5.0)),
}
_ON_BAD = ("raise", "skip")
_DUPLICATES = ("raise", "last", "mean")
_SHOW = 5  # unknown ids named in an error message


@dataclasses.dataclass
class MovieLens:
    """What ``read_movielens`` returns.

    Attributes:
        ratings: pandas DataFrame with columns ``user``, ``item`` (raw
            integer ids), ``rating`` (float32) and ``timestamp`` (int64,
            -1 where the file has none).
        titles: dict mapping raw item id to title (empty when the folder
            has no titles file).
        format: str. One of ``FORMATS``.
        path: str. The folder read.
        rating_range: (float, float). The scale of the ratings.
        folds: tuple of int. The ml-100k folds ``K`` whose ``uK.base`` and
            ``uK.test`` are both present.
        skipped: int. Lines of the ratings and titles files left out by
            ``on_bad="skip"`` (0 otherwise).
        merged: int. Ratings of repeated (user, item) pairs merged away by
            ``duplicates="last"`` or ``"mean"`` (0 otherwise).
    """

    ratings: pd.DataFrame
    titles: dict
    format: str
    path: str
    rating_range: tuple
    folds: tuple = ()
    skipped: int = 0
    merged: int = 0


def detect_format(path):
    """Names the MovieLens layout of a folder from the files it holds.

    Example:

    >>> import tempfile, pathlib
    >>> d = tempfile.mkdtemp()
    >>> _ = (pathlib.Path(d) / "u.data").write_text("1\\t1\\t5\\t0\\n")
    >>> detect_format(d)
    'ml-100k'

    Args:
        path: str. A folder.

    Returns:
        ``"ml-latest-small"``, ``"ml-100k"`` or ``"ml-1m"``.

    Raises:
        FileNotFoundError: the folder does not exist or holds none of
            ``ratings.csv``, ``u.data``, ``ratings.dat``.
    """
    path = os.fspath(path)
    if not os.path.isdir(path):
        raise FileNotFoundError(
            f"MovieLens folder {path!r} does not exist. Pass the folder "
            f"that holds ratings.csv, u.data or ratings.dat "
            f"(kerasdl.data.datasets.fetch downloads one).")
    for fmt, (ratings_file, _, _) in FORMATS.items():
        if os.path.isfile(os.path.join(path, ratings_file)):
            return fmt
    raise FileNotFoundError(
        f"{path!r} is not a MovieLens folder: expected ratings.csv "
        f"(ml-latest-small), u.data (ml-100k) or ratings.dat (ml-1m); "
        f"found {sorted(os.listdir(path))[:10]}.")


def read_movielens(path, *, on_bad="raise", duplicates="raise"):
    """Reads a MovieLens folder, detecting its layout.

    Example:

    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (d / "u.data").write_text("1\\t10\\t5\\t0\\n2\\t10\\t3\\t0\\n")
    >>> data = read_movielens(d)
    >>> data.format, len(data.ratings), data.rating_range
    ('ml-100k', 2, (1.0, 5.0))

    Args:
        path: str. The folder.
        on_bad: ``"raise"`` (default) or ``"skip"``. What to do with a
            bad line; skipped lines are counted in the result's
            ``skipped``.
        duplicates: what to do with a (user, item) pair rated more than
            once: ``"raise"`` (default) names the lines; ``"last"`` keeps
            the pair's last line; ``"mean"`` keeps one rating, the mean,
            with the latest timestamp, where the pair first appears.
            Merged ratings are counted in the result's ``merged``.

    Returns:
        A ``MovieLens`` record.

    Raises:
        FileNotFoundError: see ``detect_format``.
        ValueError: an empty file, missing columns, a wrong separator, no
            good row, repeated pairs with ``duplicates="raise"``, or bad
            lines (named by line number) with ``on_bad="raise"``.
    """
    _check_policies(on_bad, duplicates)
    fmt = detect_format(path)
    path = os.fspath(path)
    ratings_file, titles_file, scale = FORMATS[fmt]
    ratings, skipped, merged = _ratings_parse.read_ratings(
        os.path.join(path, ratings_file), fmt, scale, on_bad, duplicates)
    titles, bad_titles = _ratings_parse.read_titles(
        os.path.join(path, titles_file), fmt, on_bad)
    folds = ()
    if fmt == "ml-100k":
        folds = tuple(k for k in range(1, 6) if all(
            os.path.isfile(os.path.join(path, f"u{k}.{part}"))
            for part in ("base", "test")))
    return MovieLens(ratings, titles, fmt, path, scale, folds,
                     skipped + bad_titles, merged)


def read_fold(path, k, *, on_bad="raise", duplicates="raise"):
    """Reads the ml-100k fold ``uK.base`` / ``uK.test``.

    Args:
        path: str. The ml-100k folder.
        k: int. The fold, 1 to 5.
        on_bad: ``"raise"`` or ``"skip"``, as in ``read_movielens``.
        duplicates: ``"raise"``, ``"last"`` or ``"mean"``, as in
            ``read_movielens`` (each file on its own).

    Returns:
        ``(train, test, skipped)``: two DataFrames like
        ``MovieLens.ratings`` and the number of lines skipped.

    Raises:
        FileNotFoundError: a fold file is missing.
        TypeError: ``k`` is not an integer.
        ValueError: ``k`` is not 1..5, or bad lines.
    """
    _validate.integer(k, "k", low=1, high=5,
                      hint="ml-100k ships the folds u1 to u5.")
    _check_policies(on_bad, duplicates)
    frames, skipped = [], 0
    for part in ("base", "test"):
        file = os.path.join(os.fspath(path), f"u{k}.{part}")
        if not os.path.isfile(file):
            raise FileNotFoundError(
                f"{file!r} not found. ml-100k.zip ships u1..u5; "
                f"kerasdl.collab.folds.make_folds regenerates them from "
                f"u.data.")
        frame, n, _ = _ratings_parse.read_ratings(
            file, "ml-100k", FORMATS["ml-100k"][2], on_bad, duplicates)
        frames.append(frame)
        skipped += n
    return frames[0], frames[1], skipped


def read_ratings_file(file, *, fmt, on_bad="raise", duplicates="raise"):
    """Reads and checks one ratings file of the given layout.

    Args:
        file: str. The file.
        fmt: str. One of ``FORMATS``; sets separator, header and scale.
        on_bad: ``"raise"`` or ``"skip"``.
        duplicates: ``"raise"``, ``"last"`` or ``"mean"``, as in
            ``read_movielens``.

    Returns:
        ``(ratings, skipped)``: a DataFrame with ``COLUMNS`` and the number
        of lines skipped.

    Raises:
        ValueError: an empty file, missing columns, a wrong separator, no
            good row, repeated pairs with ``duplicates="raise"``, or bad
            lines with ``on_bad="raise"``.
    """
    _validate.choice(fmt, "fmt", tuple(FORMATS))
    _check_policies(on_bad, duplicates)
    frame, skipped, _ = _ratings_parse.read_ratings(
        file, fmt, FORMATS[fmt][2], on_bad, duplicates)
    return frame, skipped


def _check_policies(on_bad, duplicates):
    _validate.choice(on_bad, "on_bad", _ON_BAD)
    _validate.choice(duplicates, "duplicates", _DUPLICATES)


class IdEncoder:
    """Maps raw ids to contiguous indices ``0..n-1`` and back.

    Indices follow the order of first appearance (as in the course), so an
    encoder built on the same ratings always gives the same indices.

    Example:

    >>> enc = IdEncoder([31, 1029, 31, 7])
    >>> len(enc), enc.encode([7, 31]).tolist(), enc.decode([1]).tolist()
    (3, [2, 0], [1029])

    Args:
        ids: array-like of int. The raw ids to index (duplicates are fine).
        name: str. What the ids are ("user", "item"), for error messages.

    Raises:
        ValueError: ``ids`` is empty.
    """

    def __init__(self, ids, name="id"):
        self.name = name
        self.classes_ = pd.unique(np.asarray(ids).ravel())
        if len(self.classes_) == 0:
            raise ValueError(f"IdEncoder needs at least one {name} id.")
        self._index = pd.Index(self.classes_)

    def __len__(self):
        return len(self.classes_)

    def encode(self, ids, unknown="raise"):
        """Returns the indices of raw ``ids`` (int32).

        Args:
            ids: array-like of raw ids.
            unknown: ``"raise"`` (default): a ``ValueError`` naming the
                first unknown ids; ``"mark"``: unknown ids get index -1.

        Returns:
            A numpy int32 array shaped like ``ids``.
        """
        _validate.choice(unknown, "unknown", ("raise", "mark"))
        ids = np.asarray(ids)
        idx = self._index.get_indexer(ids.ravel()).reshape(ids.shape)
        if unknown == "raise" and (idx < 0).any():
            missing = pd.unique(ids[idx < 0].ravel())
            raise ValueError(
                f"unknown {self.name} id(s) {missing[:_SHOW].tolist()} "
                f"({len(missing)} in all): they were not among the "
                f"{len(self)} {self.name} ids the model was built on. "
                f"Drop them, or ask for a fallback (unknown='mean').")
        return idx.astype(np.int32)

    def decode(self, indices):
        """Returns the raw ids of ``indices``.

        Raises:
            ValueError: an index is outside ``0..len(self)-1``.
        """
        indices = np.asarray(indices)
        if indices.size and (indices.min() < 0 or indices.max() >= len(self)):
            raise ValueError(
                f"{self.name} indices must be in 0..{len(self) - 1}. "
                f"Received values from {indices.min()} to {indices.max()}.")
        return self.classes_[indices]
