"""A user's own photos in the common layouts, as ``(train, valid)`` batches.

Three layouts, one result: two ``ImageBatches`` with the same
``class_names`` and ``task``; the training batches are shuffled every
epoch (seeded), the validation batches are not. An ``augment=`` argument
goes to the training batches only.

- ``images_from_folder``: ``root/train/<class>/*`` and
  ``root/valid/<class>/*``, or one folder of class folders split at random
  by ``valid_pct``.
- ``images_from_csv``: a table of file names and labels (one label, or
  several joined by ``label_delim`` for multi-label, or float columns for
  regression, or x, y pixel columns for points), with a validation
  column or a random split.
- ``images_from_names``: the label is in the file name
  (``cat.123.jpg``), taken by a regular expression or a function.

Every loader applies the EXIF orientation, leaves out hidden and system
files (listed in ``report.ignored``) and treats images smaller than
``min_size`` (32 px a side by default) as bad files, which follow
``on_error`` (``"raise"``, or ``"skip"`` and listed in ``report.skipped``).
Both batches share one ``report``.
"""

import os
import re

import numpy as np

from kerasdl import _validate
from kerasdl.data import points as _points
from kerasdl.data.images import TASKS
from kerasdl.data.images import ImageBatches
from kerasdl.data.images import ImageError
from kerasdl.data.images import LoadReport
from kerasdl.data.images import class_folders
from kerasdl.data.images import files_by_class
from kerasdl.data.images import list_images

__all__ = ["images_from_csv", "images_from_folder", "images_from_names"]


def images_from_folder(root, *, train="train", valid="valid",
                       valid_pct=None, seed=0, **kwargs):
    """Training and validation batches from a folder of class folders.

    With ``valid_pct=None`` (the default) ``root`` holds ``train`` and
    ``valid`` folders, each with one subfolder per class (the course's
    layout, and Keras' and fastai's). With ``valid_pct`` the class folders
    are split at random: those of ``root/train`` when it exists, else those
    of ``root`` itself.

    Example:

    >>> import os, tempfile
    >>> from PIL import Image
    >>> root = tempfile.mkdtemp()
    >>> for part, n in (("train", 3), ("valid", 1)):
    ...     for c in ("cats", "dogs"):
    ...         os.makedirs(os.path.join(root, part, c))
    ...         for i in range(n):
    ...             Image.new("RGB", (40, 32)).save(
    ...                 os.path.join(root, part, c, f"{i}.jpg"))
    >>> train, valid = images_from_folder(root, image_size=(32, 32))
    >>> train.class_names, train.n_images, valid.n_images
    (['cats', 'dogs'], 6, 2)

    Args:
        root: str. The folder.
        train: str. Name of the training folder. Defaults to ``"train"``.
        valid: str. Name of the validation folder. Defaults to ``"valid"``.
        valid_pct: float or None. Share of the images held out at random,
            in (0, 1). Defaults to ``None`` (use the ``valid`` folder).
        seed: int. Seed of the split and of the training shuffle.
        **kwargs: passed to ``ImageBatches`` (``image_size``,
            ``batch_size``, ``on_error``, ``min_size``, ``extensions``,
            ``shuffle`` for the training batches...).

    Returns:
        ``(train, valid)``: two ``ImageBatches``.

    Raises:
        ValueError: the layout is not one of the above, a class has no
            validation image, or a bad file (``on_error="raise"``).
    """
    root = _folder(root, "root")
    seed = _validate.integer(seed, "seed", low=0)
    extensions = kwargs.pop("extensions", None)
    report = kwargs.pop("report", None) or LoadReport()
    train_dir, valid_dir = (os.path.join(root, train),
                            os.path.join(root, valid))
    if valid_pct is not None:
        valid_pct = _validate.fraction(valid_pct, "valid_pct")
        source = train_dir if os.path.isdir(train_dir) else root
        paths, labels, names = _read_classes(
            source, None, extensions, report,
            on_empty=kwargs.get("on_error", "raise"))
        is_valid = _random_valid(len(paths), valid_pct, seed)
        return _pair(paths, labels, is_valid, names, seed, report, kwargs)
    if not (os.path.isdir(train_dir) and os.path.isdir(valid_dir)):
        found = class_folders(root)
        raise ValueError(
            f"images_from_folder expected {train_dir!r} and {valid_dir!r}, "
            f"each with one subfolder per class; found "
            f"{_listing(found) or 'no subfolders'} in {root!r}. Pass "
            f"valid_pct=0.2 to split one folder of class folders at "
            f"random, or train=/valid= to name your folders.")
    tp, tl, names = _read_classes(train_dir, None, extensions, report,
                                  on_empty=kwargs.get("on_error", "raise"))
    extra = sorted(set(class_folders(valid_dir)) - set(names))
    if extra:
        raise ValueError(
            f"The validation folder {valid_dir!r} has classes the training "
            f"folder lacks: {_listing(extra)}. Give both folders the same "
            f"class subfolders.")
    vp, vl, _ = _read_classes(valid_dir, names, extensions, report,
                              missing_ok=True)
    is_valid = np.r_[np.zeros(len(tp), bool), np.ones(len(vp), bool)]
    return _pair(tp + vp, np.r_[tl, vl], is_valid, names, seed, report,
                 kwargs)


def images_from_csv(table, folder, *, fn_col=0, label_col=1,
                    label_delim=None, task=None, points=False,
                    valid_col=None, valid_pct=None, seed=0, **kwargs):
    """Training and validation batches from a table of files and labels.

    The targets follow ``task``, given or read from the other arguments:

    - ``"single_label"`` (the default): one class name per cell. A column
      whose every cell is a number and some not whole (``0.53``) is
      refused with a hint, rather than made into one class per number:
      pass ``task="regression"`` for float targets, or
      ``task="single_label"`` to keep such names as classes.
    - ``"multi_label"`` (with ``label_delim``): a cell holds several
      labels; an empty cell is an image with none (an all-zero row). A
      label found only in validation rows is refused (the model could not
      learn it).
    - ``"regression"`` (with ``task="regression"``, a list of several
      ``label_col`` or ``points=True``): every label column is parsed as
      a float; targets are float32 ``(n, number of columns)``,
      ``class_names`` is None.
    - ``points=True``: the label columns are pixel coordinates ``x0, y0,
      x1, y1, ...`` in each original image (``(0, 0)`` its top-left
      corner, ``(width, height)`` its bottom-right corner, the centre of
      pixel column ``j`` at ``x = j + 0.5``; the image as the loader shows
      it, after the EXIF orientation). They are scaled to [-1, 1] with
      that image's size, so they fit any ``image_size``
      (``kerasdl.data.points``). A point outside its image follows
      ``on_error``: an error naming the file and the point, or the row is
      left out and listed in ``report.skipped``.

    ``augment=`` (a ``RandomAffine``...) is given to the training batches
    only; with points it moves them with the image.

    Example:

    >>> import os, tempfile
    >>> import pandas as pd
    >>> from PIL import Image
    >>> root = tempfile.mkdtemp()
    >>> for i in range(4):
    ...     Image.new("RGB", (32, 32)).save(os.path.join(root, f"{i}.png"))
    >>> table = pd.DataFrame({"file": [f"{i}.png" for i in range(4)],
    ...                       "label": ["cat", "dog", "cat", "dog"],
    ...                       "is_valid": [0, 0, 1, 1]})
    >>> train, valid = images_from_csv(table, root, valid_col="is_valid",
    ...                                image_size=(32, 32))
    >>> train.class_names, train.n_images, valid.n_images
    (['cat', 'dog'], 2, 2)
    >>> table["x"], table["y"] = [0, 8, 16, 32], [16, 16, 0, 32]
    >>> train, valid = images_from_csv(
    ...     table, root, label_col=["x", "y"], points=True,
    ...     valid_col="is_valid", image_size=(16, 16))
    >>> train.task, train.class_names, valid[0][1].tolist()
    ('regression', None, [[0.0, -1.0], [1.0, 1.0]])

    Args:
        table: str or pandas.DataFrame. A CSV file (with a header row) or
            a frame.
        folder: str. File names in the table are relative to it.
        fn_col: int or str. Column of file names (position or name).
            Defaults to 0.
        label_col: int, str or list of them. Column of labels, or the
            columns of regression targets (or of points). Defaults to 1.
        label_delim: str or None. Splits a label cell into several labels
            (multi-label: multi-hot targets, ``task == "multi_label"``).
        task: ``"single_label"``, ``"multi_label"``, ``"regression"`` or
            None (read from the other arguments, as above).
        points: bool. The label columns are x, y pixel coordinates.
            Defaults to ``False``.
        valid_col: int, str or None. Column saying which rows are
            validation rows (True/False, 1/0, "true"/"false").
        valid_pct: float or None. Without ``valid_col``, the share of rows
            held out at random. Defaults to 0.2 when ``valid_col`` is
            ``None``.
        seed: int. Seed of the split and of the training shuffle.
        **kwargs: passed to ``ImageBatches`` (``augment`` to the training
            batches only).

    Returns:
        ``(train, valid)``: two ``ImageBatches``; class names sorted.

    Raises:
        ValueError: a missing column, empty labels (single-label), a
            regression cell that is not a number (row and column named),
            a point outside its image, a multi-label label found only in
            validation rows, files that do not exist (the first ones and
            the count), arguments that contradict each other, or a bad
            split.
    """
    import pandas as pd

    seed = _validate.integer(seed, "seed", low=0)
    folder = _folder(folder, "folder")
    if isinstance(table, pd.DataFrame):
        frame, where = table.reset_index(drop=True), "the table"
    else:
        path = os.fspath(table)
        if not os.path.isfile(path):
            raise ValueError(f"CSV file not found: {path!r}.")
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
        where = repr(path)
    if len(frame) == 0:
        raise ValueError(f"{where} has no rows.")
    files = _column(frame, fn_col, "fn_col", where).astype(str).tolist()
    cols = list(label_col) if isinstance(label_col, (list, tuple)) \
        else [label_col]
    if not cols:
        raise ValueError("`label_col` must name at least one column. "
                         "Received: label_col=[].")
    task, guessed = _csv_task(task, len(cols), label_delim, points)
    raws = [_column(frame, c, "label_col", where) for c in cols]
    paths = [os.path.join(folder, f) for f in files]
    on_error = kwargs.get("on_error", "raise")
    if on_error == "raise":
        missing = [p for p in paths if not os.path.lexists(p)]
        if missing:
            raise ValueError(
                f"{len(missing)} of the {len(paths)} files named in {where} "
                f"do not exist under {folder!r}; the first: "
                f"{_listing(missing[:5])}. Check `folder` and the "
                f"`fn_col` column, or pass on_error='skip'.")
    report = kwargs.pop("report", None) or LoadReport()
    names = None
    if task == "regression":
        labels = _floats(raws, where)
        if points:
            if len(cols) % 2:
                raise ValueError(
                    f"points=True reads the label columns as x0, y0, x1, "
                    f"y1, ...: an even number of columns. Received "
                    f"{len(cols)}: label_col={label_col!r}.")
            keep, labels = _scaled_points(paths, labels, on_error, report)
    else:
        cells = ["" if _blank(v) else str(v).strip() for v in raws[0]]
        if task == "multi_label":
            sets = [[t for t in (s.strip() for s in c.split(label_delim))
                     if t] for c in cells]
            names = sorted({t for s in sets for t in s})
            index = {n: i for i, n in enumerate(names)}
            labels = np.zeros((len(sets), len(names)), np.float32)
            for row, tags in enumerate(sets):
                labels[row, [index[t] for t in tags]] = 1
        else:
            empty = [i for i, v in enumerate(cells) if not v]
            if empty:
                raise ValueError(
                    f"{len(empty)} row(s) of {where} have no label, the "
                    f"first at row(s) {empty[:5]} (counting data rows from "
                    f"0). Fill them in or drop those rows.")
            if guessed:
                _not_numbers(cells, raws[0].name, where)
            names = sorted(set(cells))
            index = {n: i for i, n in enumerate(names)}
            labels = np.array([index[c] for c in cells], np.int32)
        _enough_classes(names, where)
    if not (task == "regression" and points):
        keep = np.arange(len(paths))
    if valid_col is not None:
        if valid_pct is not None:
            raise ValueError("Pass `valid_col` or `valid_pct`, not both.")
        is_valid = _flags(_column(frame, valid_col, "valid_col", where),
                          where)[keep]
    else:
        valid_pct = _validate.fraction(
            0.2 if valid_pct is None else valid_pct, "valid_pct")
        is_valid = _random_valid(len(keep), valid_pct, seed)
    paths = [paths[i] for i in keep]
    return _pair(paths, labels, is_valid, names, seed, report, kwargs,
                 task=task, points=bool(points))


def images_from_names(paths_or_folder, *, pattern=None, label_func=None,
                      valid_pct=0.2, seed=0, **kwargs):
    """Training and validation batches labelled from the file names.

    Give ``pattern``, a regular expression whose first group is the label,
    searched in each file's name (not its folder): ``r"^([a-z]+)\\.\\d+"``
    reads ``cat`` from ``cat.123.jpg``. Or give ``label_func(path) -> str``.
    The images are split at random by ``valid_pct``.

    Example:

    >>> import os, tempfile
    >>> from PIL import Image
    >>> root = tempfile.mkdtemp()
    >>> for name in ("cat", "dog"):
    ...     for i in range(5):
    ...         Image.new("RGB", (32, 32)).save(
    ...             os.path.join(root, f"{name}.{i}.jpg"))
    >>> train, valid = images_from_names(root, pattern=r"^(\\w+)\\.\\d+",
    ...                                  image_size=(32, 32))
    >>> train.class_names, train.n_images, valid.n_images
    (['cat', 'dog'], 8, 2)

    Args:
        paths_or_folder: str or list of str. A folder (read with its
            sub-folders) or the image files.
        pattern: str or None. Regular expression; group 1 is the label.
        label_func: callable or None. ``label_func(path)`` returns the
            label.
        valid_pct: float. Share held out at random, in (0, 1).
            Defaults to 0.2.
        seed: int. Seed of the split and of the training shuffle.
        **kwargs: passed to ``ImageBatches``.

    Returns:
        ``(train, valid)``: two ``ImageBatches``; class names sorted.

    Raises:
        ValueError: not exactly one of ``pattern`` and ``label_func``, a
            pattern that matches no file or some files not (with
            ``on_error="raise"``), only one class, or a bad split.
    """
    seed = _validate.integer(seed, "seed", low=0)
    valid_pct = _validate.fraction(valid_pct, "valid_pct")
    if (pattern is None) == (label_func is None):
        raise ValueError("Pass exactly one of `pattern` (a regular "
                         "expression whose first group is the label) and "
                         "`label_func` (a function of the path).")
    extensions = kwargs.pop("extensions", None)
    report = kwargs.pop("report", None) or LoadReport()
    if isinstance(paths_or_folder, (str, os.PathLike)):
        where = _folder(paths_or_folder, "paths_or_folder")
        paths = list_images(where, extensions=extensions, report=report)
        where = repr(where)
    else:
        paths = [os.fspath(p) for p in paths_or_folder]
        where = "the given paths"
    if not paths:
        raise ValueError(f"No image files in {where}.")
    if pattern is not None:
        try:
            regex = re.compile(pattern)
        except (re.error, TypeError) as e:
            raise ValueError(f"`pattern` is not a valid regular expression "
                             f"({e}). Received: pattern={pattern!r}.") from None
        if regex.groups < 1:
            raise ValueError(f"`pattern` must have a group, in parentheses, "
                             f"around the label. Received: "
                             f"pattern={pattern!r}.")
        labels = []
        for p in paths:
            m = regex.search(os.path.basename(p))
            labels.append(m.group(1) if m and m.group(1) else None)
        rule = f"pattern {pattern!r}"
    else:
        labels = []
        for p in paths:
            try:
                value = label_func(p)
            except Exception as e:
                raise ValueError(f"label_func failed on {p!r}: "
                                 f"{type(e).__name__}: {e}") from e
            labels.append(None if value is None else str(value))
        rule = "label_func"
    unlabelled = [p for p, v in zip(paths, labels) if v is None]
    if len(unlabelled) == len(paths):
        raise ValueError(
            f"The {rule} gives no label for any of the {len(paths)} files "
            f"in {where} (the first: {_listing(paths[:3])}). The pattern is "
            f"searched in the file name; its first group is the label.")
    if unlabelled:
        if kwargs.get("on_error", "raise") == "raise":
            raise ValueError(
                f"The {rule} gives no label for {len(unlabelled)} of the "
                f"{len(paths)} files; the first: "
                f"{_listing(unlabelled[:5])}. Fix the pattern, remove the "
                f"files, or pass on_error='skip' to leave them out (they "
                f"are listed in the report).")
        for p in unlabelled:
            report.ignore(p, f"no label from the {rule}")
    kept = [(p, v) for p, v in zip(paths, labels) if v is not None]
    names = sorted({v for _, v in kept})
    _enough_classes(names, f"the labels from the {rule}")
    index = {n: i for i, n in enumerate(names)}
    paths = [p for p, _ in kept]
    codes = np.array([index[v] for _, v in kept], np.int32)
    is_valid = _random_valid(len(paths), valid_pct, seed)
    return _pair(paths, codes, is_valid, names, seed, report, kwargs)


def _pair(paths, labels, is_valid, names, seed, report, kwargs, *,
          task="single_label", points=False):
    """Builds the two ImageBatches after checking the split (``augment``
    goes to the training batches only)."""
    labels = np.asarray(labels)
    is_valid = np.asarray(is_valid, bool)
    if task == "single_label":
        for side, mask in (("validation", is_valid),
                           ("training", ~is_valid)):
            counts = np.bincount(labels[mask], minlength=len(names))
            empty = [n for n, c in zip(names, counts) if c == 0]
            if empty:
                raise ValueError(
                    f"The {side} set has no image of class(es) "
                    f"{_listing(empty)} ({int(mask.sum())} {side} images of "
                    f"{len(labels)}). Raise or lower valid_pct, change the "
                    f"seed, or add images of those classes.")
    if not is_valid.any() or is_valid.all():
        raise ValueError(f"The split leaves the "
                         f"{'validation' if not is_valid.any() else 'training'}"
                         f" set empty ({len(labels)} images).")
    if task == "multi_label":
        seen = labels[~is_valid].sum(axis=0)
        only = [(n, int(c)) for n, t, c in zip(
            names, seen, labels[is_valid].sum(axis=0)) if t == 0 and c]
        if only:
            counts = ", ".join(f"{n!r} in {c}" for n, c in only[:5])
            raise ValueError(
                f"Label(s) {_listing(n for n, _ in only)} appear only in "
                f"validation rows ({counts} of {int(is_valid.sum())}), "
                f"never in training rows, so the model cannot learn them. "
                f"Move some of those rows to training, change the split "
                f"(valid_pct, seed), or remove the label.")
    kwargs = dict(kwargs)
    shuffle = kwargs.pop("shuffle", True)
    augment = kwargs.pop("augment", None)
    kwargs.pop("class_names", None)
    kwargs.pop("task", None)
    kwargs.pop("points", None)
    idx_t, idx_v = np.flatnonzero(~is_valid), np.flatnonzero(is_valid)
    common = dict(class_names=names, task=task, points=points, seed=seed,
                  report=report, **kwargs)
    train = ImageBatches([paths[i] for i in idx_t], labels[idx_t],
                         shuffle=shuffle, augment=augment, **common)
    valid = ImageBatches([paths[i] for i in idx_v], labels[idx_v],
                         shuffle=False, **common)
    return train, valid


def _csv_task(task, n_cols, label_delim, points):
    """The task of a table's labels, and whether it was guessed."""
    if task is not None:
        task = _validate.choice(task, "task", TASKS)
    if not isinstance(points, bool):
        raise TypeError(f"`points` must be True or False. Received: "
                        f"points={points!r}.")
    given = task
    if points:
        if task not in (None, "regression"):
            raise ValueError(
                f"points=True reads x, y pixel coordinates: regression "
                f"targets. Received: task={task!r}. Leave task out.")
        task = "regression"
    if label_delim is not None:
        if not isinstance(label_delim, str) or not label_delim:
            raise ValueError(f"`label_delim` must be a non-empty string. "
                             f"Received: label_delim={label_delim!r}.")
        if task not in (None, "multi_label"):
            raise ValueError(
                f"`label_delim` splits a cell into several labels "
                f"(multi-label); it does not apply to task={task!r}. Drop "
                f"label_delim or task.")
        task = "multi_label"
    if n_cols > 1:
        if task not in (None, "regression"):
            raise ValueError(
                f"Several label columns give regression targets (one float "
                f"per column); task={task!r} needs one label column.")
        task = "regression"
    if task == "multi_label" and label_delim is None:
        raise ValueError("task='multi_label' needs `label_delim`, the "
                         "string between the labels of a cell, such as "
                         "label_delim=' '.")
    return task or "single_label", given is None and task is None


def _floats(raws, where):
    """The label columns as a float32 array (rows, columns)."""
    out = np.zeros((len(raws[0]), len(raws)), np.float32)
    for j, raw in enumerate(raws):
        for i, v in enumerate(raw):
            try:
                value = float(v) if not isinstance(v, str) else \
                    float(v.strip())
            except (TypeError, ValueError):
                value = None
            if value is None or not np.isfinite(value):
                raise ValueError(
                    f"Regression targets must be finite numbers; row {i} "
                    f"(counting data rows from 0) of {where} holds {v!r} in "
                    f"column {raw.name!r}. Fill it in or drop that row.")
            out[i, j] = value
    return out


def _not_numbers(cells, column, where):
    """Refuses class names that are all numbers, some not whole."""
    try:
        values = [float(c) for c in cells]
    except ValueError:
        return
    fractional = [c for c, v in zip(cells, values)
                  if np.isfinite(v) and v != round(v)]
    if fractional:
        raise ValueError(
            f"The label column {column!r} of {where} holds numbers such as "
            f"{fractional[0]!r}, which would make "
            f"{len(set(cells))} classes. Pass task='regression' for float "
            f"targets, or task='single_label' to keep them as class names.")


def _scaled_points(paths, pixels, on_error, report):
    """Pixel points scaled by each image's size; rows whose image cannot
    be read or whose point lies outside it follow ``on_error``.

    Returns:
        ``(kept row indices, scaled points of those rows)``.
    """
    keep, sizes = [], []
    for i, path in enumerate(paths):
        try:
            sizes.append(_points.image_size(path))
            keep.append(i)
        except ImageError as e:
            if on_error == "raise":
                raise
            report.add(e)
    keep = np.array(keep, np.int64)
    widths = np.array([w for w, _ in sizes], np.float64)
    heights = np.array([h for _, h in sizes], np.float64)
    scaled = _points.scale_points(pixels[keep], widths, heights)
    bad = ~(np.abs(scaled) <= 1).all(axis=1)
    for row in np.flatnonzero(bad):
        k, found = _points.describe(scaled, row, sizes[row])
        path = paths[keep[row]]
        if on_error == "raise":
            raise ValueError(
                f"Point {k} of {path!r} is {found}. Points must lie inside "
                f"the image: 0 <= x <= width and 0 <= y <= height, in "
                f"pixels of the image as it is shown (after its EXIF "
                f"orientation), (0, 0) its top-left corner. Fix the row, "
                f"or pass on_error='skip' to leave such rows out.")
        report.add(ImageError(path, f"point {k} is {found}"))
    if not (~bad).any():
        raise ValueError(f"No row is left: every one of the {len(paths)} "
                         f"rows has an unreadable image or a point outside "
                         f"it (see `report`).")
    return keep[~bad], scaled[~bad]


def _read_classes(directory, names, extensions, report, missing_ok=False,
                  on_empty="raise"):
    """Paths and labels of ``directory/<class>/**``."""
    if names is None:
        names = class_folders(directory, report)
        if not names:
            raise ValueError(
                f"{directory!r} holds no class subfolders. Put the images "
                f"of each class in a subfolder of it.")
        _enough_classes(names, repr(directory))
    paths, labels = files_by_class(directory, names, extensions=extensions,
                                   report=report, missing_ok=missing_ok,
                                   on_empty=on_empty)
    return paths, np.array(labels, np.int32), names


def _random_valid(n, valid_pct, seed):
    """A seeded random choice of ``round(n * valid_pct)`` validation rows
    (at least one, and at least one training row)."""
    if n < 2:
        raise ValueError(f"A random split needs at least 2 images; found "
                         f"{n}.")
    n_valid = min(max(1, round(n * valid_pct)), n - 1)
    order = np.random.default_rng(seed).permutation(n)
    is_valid = np.zeros(n, bool)
    is_valid[order[:n_valid]] = True
    return is_valid


def _folder(path, arg):
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"`{arg}` must be a folder path. Received: "
                        f"{arg}={path!r}.")
    path = os.fspath(path)
    if not os.path.isdir(path):
        raise ValueError(f"Folder not found: {path!r} (`{arg}`).")
    return path


def _column(frame, col, arg, where):
    columns = list(frame.columns)
    if isinstance(col, (int, np.integer)) and not isinstance(col, bool):
        if not -len(columns) <= col < len(columns):
            raise ValueError(
                f"`{arg}`={col} is out of range: {where} has "
                f"{len(columns)} column(s): {columns}.")
        return frame.iloc[:, int(col)]
    if col not in frame.columns:
        raise ValueError(f"`{arg}`={col!r} is not a column of {where}; its "
                         f"columns are {columns}.")
    return frame[col]


def _flags(values, where):
    true, false = {"true", "1", "yes", "valid"}, {"false", "0", "no",
                                                  "train", ""}
    out = []
    for i, v in enumerate(values):
        text = str(v).strip().lower()
        if isinstance(v, (bool, np.bool_)):
            out.append(bool(v))
        elif text in true or text == "1.0":
            out.append(True)
        elif text in false or text == "0.0":
            out.append(False)
        else:
            raise ValueError(
                f"The validation column of {where} must hold True/False or "
                f"1/0; row {i} holds {v!r}.")
    return np.array(out, bool)


def _blank(value):
    return value is None or (isinstance(value, float) and np.isnan(value))


def _enough_classes(names, where):
    if len(names) < 2:
        raise ValueError(
            f"{where} gives {len(names)} class(es) ({_listing(names)}); a "
            f"classifier needs at least 2. Check the labels.")


def _listing(items, limit=5):
    items = list(items)
    shown = ", ".join(repr(i) for i in items[:limit])
    return shown + (f" and {len(items) - limit} more"
                    if len(items) > limit else "")
