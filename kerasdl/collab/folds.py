"""Named train/test splits of a MovieLens data set.

A split is named by a string, and every score kerasdl prints carries it:

* ``"u1"`` .. ``"u5"``: the canonical ml-100k folds (``uK.base`` /
  ``uK.test``). When a fold's files are absent they are regenerated from
  ``u.data`` with GroupLens' own procedure (``make_folds``), and the split's
  name says so;
* ``"uK"`` or ``"5fold"``: all five folds in turn;
* ``"random:SEED"``: each rating goes to training with probability 0.8,
  drawn with ``numpy.random.default_rng(SEED)``;
* ``"lesson"``: the 2017 course's protocol on ml-latest-small, a random
  80/20 mask over the ratings (here with seed 42, which the notebook meant
  to set), ids indexed over all ratings, 50 factors.

Ids are always encoded over the whole data set, so the embedding tables
cover every user and item (the course's parameter counts rely on it).
"""

import dataclasses

import numpy as np
import pandas as pd

from kerasdl import _validate
from kerasdl.data import ratings as _ratings

FOLD_SIZE = 20_000  # ml-100k's mku.sh: five consecutive blocks of u.data


@dataclasses.dataclass
class Split:
    """One train/test split.

    Attributes:
        name: str. The split's name, printed with every score.
        train: DataFrame of training ratings (raw ids).
        test: DataFrame of test ratings (raw ids).
        note: str. How the split was made, when it is not obvious.
    """

    name: str
    train: pd.DataFrame
    test: pd.DataFrame
    note: str = ""


def make_folds(ratings):
    """Regenerates the five ml-100k folds from ``u.data``, as mku.sh does.

    Fold ``k`` tests on rows ``(k-1)*20000 .. k*20000-1`` of ``u.data`` in
    file order and trains on the rest; both parts are sorted by user, then
    item. On the u.data of ml-100k.zip this gives u1.base / u1.test row for
    row (tested).

    Example:

    >>> import pandas as pd
    >>> r = pd.DataFrame({"user": [2, 1] * 50_000, "item": range(100_000),
    ...                   "rating": 3.0, "timestamp": 0})
    >>> folds = make_folds(r)
    >>> len(folds[1][0]), len(folds[1][1])
    (80000, 20000)

    Args:
        ratings: DataFrame of u.data in file order (``MovieLens.ratings``).

    Returns:
        A dict ``k -> (base, test)`` for k in 1..5.

    Raises:
        ValueError: ``ratings`` does not have the 100,000 rows of u.data.
    """
    if len(ratings) != 5 * FOLD_SIZE:
        raise ValueError(
            f"make_folds needs ml-100k's u.data: 100,000 ratings in file "
            f"order. Received {len(ratings):,} rows.")
    folds = {}
    order = np.arange(len(ratings))
    for k in range(1, 6):
        in_test = (order >= (k - 1) * FOLD_SIZE) & (order < k * FOLD_SIZE)
        folds[k] = tuple(_sorted(ratings[mask])
                         for mask in (~in_test, in_test))
    return folds


def _sorted(frame):
    return frame.sort_values(["user", "item"], kind="stable").reset_index(
        drop=True)


def random_split(ratings, seed, train_fraction=0.8):
    """Sends each rating to training with probability ``train_fraction``.

    Example:

    >>> import pandas as pd
    >>> r = pd.DataFrame({"user": range(1000), "item": 1, "rating": 3.0})
    >>> train, test = random_split(r, seed=0)
    >>> len(train) + len(test), 750 < len(train) < 850
    (1000, True)

    Args:
        ratings: DataFrame of ratings.
        seed: int >= 0. Seed of ``numpy.random.default_rng``.
        train_fraction: float in (0, 1). Defaults to 0.8.

    Returns:
        ``(train, test)`` DataFrames, neither empty.

    Raises:
        TypeError: ``seed`` is not an integer.
        ValueError: a bad ``seed`` or ``train_fraction``, or a draw that
            leaves the training or the test part empty (too few ratings:
            a score on no ratings would be NaN).
    """
    _validate.integer(seed, "seed", low=0)
    _validate.fraction(train_fraction, "train_fraction")
    mask = np.random.default_rng(seed).random(len(ratings)) < train_fraction
    for part, n in (("training", int(mask.sum())),
                    ("test", int((~mask).sum()))):
        if n == 0:
            raise ValueError(
                f"the random split random:{seed} of {len(ratings)} "
                f"rating(s) left the {part} part empty, so there is "
                f"nothing to {'train on' if part == 'training' else 'score'}"
                f". Use more ratings (a random split sends each one to "
                f"training with probability {train_fraction:g}).")
    return (ratings[mask].reset_index(drop=True),
            ratings[~mask].reset_index(drop=True))


def parse_split(text):
    """Checks a split name and returns ``(kind, value)``.

    ``("fold", k)``, ``("folds", None)``, ``("random", seed)`` or
    ``("lesson", 42)``.

    Raises:
        ValueError: an unknown split name, with the accepted forms.
    """
    text = str(text).strip()
    if text in ("uK", "5fold"):
        return "folds", None
    if len(text) == 2 and text[0] == "u" and text[1] in "12345":
        return "fold", int(text[1])
    if text == "lesson":
        return "lesson", 42
    if text.startswith("random:") and text[7:].isdigit():
        return "random", int(text[7:])
    raise ValueError(
        f"unknown split {text!r}; expected u1..u5, uK or 5fold (all five "
        f"ml-100k folds), random:SEED (such as random:0) or lesson.")


def get_splits(data, split):
    """Returns the list of ``Split`` named by ``split`` for ``data``.

    Args:
        data: a ``kerasdl.data.ratings.MovieLens`` record.
        split: str. See the module docstring.

    Returns:
        A list of ``Split`` (five for ``"uK"`` / ``"5fold"``, else one).

    Raises:
        ValueError: an unknown split, or ml-100k folds asked of another
            data set.
    """
    kind, value = parse_split(split)
    if kind in ("random", "lesson"):
        train, test = random_split(data.ratings, value)
        name = f"random:{value}" if kind == "random" else "lesson (random:42)"
        return [Split(name, train, test, "80/20 random mask over ratings")]
    if data.format != "ml-100k":
        raise ValueError(
            f"split {split!r} uses the ml-100k folds but {data.path!r} is "
            f"{data.format}; use random:SEED or lesson instead.")
    ks = [value] if kind == "fold" else [1, 2, 3, 4, 5]
    generated = None
    out = []
    for k in ks:
        if k in data.folds:
            train, test, skipped = _ratings.read_fold(data.path, k)
            note = f"u{k}.base / u{k}.test" + (
                f" ({skipped} bad rows skipped)" if skipped else "")
            out.append(Split(f"u{k}", train, test, note))
        else:
            if generated is None:
                generated = make_folds(data.ratings)
            train, test = generated[k]
            out.append(Split(
                f"u{k}", train, test,
                f"u{k} regenerated from u.data by GroupLens' mku.sh "
                f"procedure (u{k}.base/u{k}.test absent)"))
    return out
