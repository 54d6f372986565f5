"""MovieLens readers and an id encoder.

``read_movielens(folder)`` recognises the three layouts GroupLens ships:

* ``ml-latest-small`` (and ``ml-latest``): ``ratings.csv`` with a header
  ``userId,movieId,rating,timestamp``, titles in ``movies.csv``; ratings
  0.5 to 5.0;
* ``ml-100k``: ``u.data`` (tab separated, no header), titles in ``u.item``
  (``|`` separated, latin-1), the canonical folds ``u1.base/u1.test`` ...
  ``u5.base/u5.test`` when present; ratings 1 to 5;
* ``ml-1m``: ``ratings.dat`` and ``movies.dat`` (``::`` separated,
  latin-1); ratings 1 to 5.

Bad rows (a non-numeric or missing id or rating, a rating outside the scale)
raise a ``ValueError`` that names the file and the line numbers. With
``on_bad="skip"`` they are left out instead and counted in ``skipped``;
nothing is ever dropped without being counted.
"""

import dataclasses
import io
import os

import numpy as np
import pandas as pd

COLUMNS = ("user", "item", "rating", "timestamp")

# format -> (ratings file, titles file, rating range)
FORMATS = {
    "ml-latest-small": ("ratings.csv", "movies.csv", (0.5, 5.0)),
    "ml-100k": ("u.data", "u.item", (1.0, 5.0)),
    "ml-1m": ("ratings.dat", "movies.dat", (1.0, 5.0)),
}
_ON_BAD = ("raise", "skip")
_SHOW = 5  # bad rows named in an error message


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
        skipped: int. Rows left out by ``on_bad="skip"`` (0 otherwise).
    """

    ratings: pd.DataFrame
    titles: dict
    format: str
    path: str
    rating_range: tuple
    folds: tuple = ()
    skipped: int = 0


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


def read_movielens(path, *, on_bad="raise"):
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
            bad row; skipped rows are counted in the result's ``skipped``.

    Returns:
        A ``MovieLens`` record.

    Raises:
        FileNotFoundError: see ``detect_format``.
        ValueError: an empty file, missing columns or bad rows (named by
            line number) with ``on_bad="raise"``.
    """
    fmt = detect_format(path)
    path = os.fspath(path)
    ratings_file, titles_file, scale = FORMATS[fmt]
    ratings, skipped = read_ratings_file(
        os.path.join(path, ratings_file), fmt=fmt, on_bad=on_bad)
    folds = ()
    if fmt == "ml-100k":
        folds = tuple(k for k in range(1, 6) if all(
            os.path.isfile(os.path.join(path, f"u{k}.{part}"))
            for part in ("base", "test")))
    return MovieLens(ratings, _read_titles(path, fmt, titles_file), fmt,
                     path, scale, folds, skipped)


def read_fold(path, k, *, on_bad="raise"):
    """Reads the ml-100k fold ``uK.base`` / ``uK.test``.

    Args:
        path: str. The ml-100k folder.
        k: int. The fold, 1 to 5.
        on_bad: ``"raise"`` or ``"skip"``, as in ``read_movielens``.

    Returns:
        ``(train, test, skipped)``: two DataFrames like
        ``MovieLens.ratings`` and the number of rows skipped.

    Raises:
        FileNotFoundError: a fold file is missing.
        ValueError: ``k`` is not 1..5, or bad rows.
    """
    if k not in (1, 2, 3, 4, 5):
        raise ValueError(f"ml-100k folds are 1 to 5. Received: k={k!r}.")
    frames, skipped = [], 0
    for part in ("base", "test"):
        file = os.path.join(os.fspath(path), f"u{k}.{part}")
        if not os.path.isfile(file):
            raise FileNotFoundError(
                f"{file!r} not found. ml-100k.zip ships u1..u5; "
                f"kerasdl.collab.splits.make_folds regenerates them from "
                f"u.data.")
        frame, n = read_ratings_file(file, fmt="ml-100k", on_bad=on_bad)
        frames.append(frame)
        skipped += n
    return frames[0], frames[1], skipped


def read_ratings_file(file, *, fmt, on_bad="raise"):
    """Reads and checks one ratings file of the given layout.

    Args:
        file: str. The file.
        fmt: str. One of ``FORMATS``; sets separator, header and scale.
        on_bad: ``"raise"`` or ``"skip"``.

    Returns:
        ``(ratings, skipped)``: a DataFrame with ``COLUMNS`` and the number
        of rows skipped.

    Raises:
        ValueError: an empty file, missing columns, or bad rows with
            ``on_bad="raise"``.
    """
    if fmt not in FORMATS:
        raise ValueError(f"`fmt` must be one of {sorted(FORMATS)}. "
                         f"Received: fmt={fmt!r}.")
    if on_bad not in _ON_BAD:
        raise ValueError(f"`on_bad` must be one of {_ON_BAD}. Received: "
                         f"on_bad={on_bad!r}.")
    file = os.fspath(file)
    if os.path.getsize(file) == 0:
        raise ValueError(f"{file!r} is empty; expected one rating per "
                         f"line. Download the data set again.")
    header = fmt == "ml-latest-small"
    if header:
        raw = pd.read_csv(file, dtype=str, keep_default_na=False)
        needed = {"userId": "user", "movieId": "item", "rating": "rating"}
        missing = [c for c in needed if c not in raw.columns]
        if missing:
            raise ValueError(
                f"{file!r} lacks the column(s) {missing}; expected a header "
                f"userId,movieId,rating[,timestamp], found "
                f"{list(raw.columns)}.")
        raw = raw.rename(columns={**needed, "timestamp": "timestamp"})
    else:
        with open(file, encoding="latin-1") as f:
            text = f.read()
        if fmt == "ml-1m":
            text = text.replace("::", "\t")
        raw = pd.read_csv(io.StringIO(text), sep="\t", header=None,
                          names=list(COLUMNS), dtype=str,
                          keep_default_na=False, index_col=False)
    if len(raw) == 0:
        raise ValueError(f"{file!r} holds no ratings (only a header or "
                         f"blank lines). Download the data set again.")
    first_line = 2 if header else 1
    return _check(raw, file, FORMATS[fmt][2], on_bad, first_line)


def _check(raw, file, scale, on_bad, first_line):
    values = {c: pd.to_numeric(raw[c], errors="coerce")
              if c in raw.columns else None for c in COLUMNS}
    low, high = scale
    problems = []
    bad = np.zeros(len(raw), bool)
    for col in ("user", "item"):
        v = values[col].to_numpy(np.float64)
        wrong = ~np.isfinite(v) | (v != np.round(v))
        problems.append((wrong, f"{col} id is not an integer"))
        bad |= wrong
    r = values["rating"].to_numpy(np.float64)
    nan = ~np.isfinite(r)
    out = ~nan & ((r < low) | (r > high))
    problems += [(nan, "rating is not a number"),
                 (out, f"rating outside {low:g}..{high:g}")]
    bad |= nan | out
    if bad.any() and on_bad == "raise":
        lines = []
        for mask, what in problems:
            for i in np.flatnonzero(mask)[:_SHOW]:
                shown = ", ".join(str(v) for v in raw.iloc[i].iloc[:3])
                lines.append(f"line {i + first_line}: {what} ({shown})")
        raise ValueError(
            f"{file!r}: {int(bad.sum())} bad row(s), e.g. "
            f"{'; '.join(lines[:_SHOW])}. Fix the file or pass "
            f"on_bad='skip' to leave such rows out (they are counted).")
    keep = ~bad
    ts = values["timestamp"]
    ts = (np.full(len(raw), -1, np.int64) if ts is None else
          np.nan_to_num(ts.to_numpy(np.float64), nan=-1).astype(np.int64))
    frame = pd.DataFrame({
        "user": values["user"].to_numpy(np.float64)[keep].astype(np.int64),
        "item": values["item"].to_numpy(np.float64)[keep].astype(np.int64),
        "rating": r[keep].astype(np.float32),
        "timestamp": ts[keep],
    })
    return frame, int(bad.sum())


def _read_titles(path, fmt, titles_file):
    file = os.path.join(path, titles_file)
    if not os.path.isfile(file):
        return {}
    if fmt == "ml-latest-small":
        movies = pd.read_csv(file, dtype={"movieId": np.int64})
        return dict(zip(movies["movieId"], movies["title"]))
    with open(file, encoding="latin-1") as f:
        lines = f.read().splitlines()
    sep = "|" if fmt == "ml-100k" else "::"
    titles = {}
    for line in lines:
        parts = line.split(sep)
        if len(parts) >= 2 and parts[0].strip().isdigit():
            titles[int(parts[0])] = parts[1]
    return titles


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
        if unknown not in ("raise", "mark"):
            raise ValueError(f"`unknown` must be 'raise' or 'mark'. "
                             f"Received: unknown={unknown!r}.")
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
