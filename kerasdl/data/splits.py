"""Validation splits by group (State Farm: by driver) and the course's small
sample folders."""

import os
import shutil
import tempfile

import numpy as np

__all__ = ["group_split", "make_sample", "table_files"]

_MODES = ("symlink", "hardlink", "copy")


def group_split(table, group="subject", *, n_groups=None, fraction=None,
                seed=0):
    """Splits the rows of a table so that each group lies on one side only.

    State Farm's validation set must hold drivers the model never saw:
    ``group_split(drivers, "subject", n_groups=3)`` puts every image of
    three randomly chosen drivers in validation and all other drivers'
    images in training.

    Example:

    >>> import pandas as pd
    >>> t = pd.DataFrame({"subject": ["p1", "p1", "p2", "p3", "p3", "p4"],
    ...                   "img": list("abcdef")})
    >>> train, valid = group_split(t, n_groups=2, seed=0)
    >>> sorted(set(train.subject) & set(valid.subject)), len(train) + len(valid)
    ([], 6)

    Args:
        table: pandas DataFrame, or the path of a CSV file (such as State
            Farm's ``driver_imgs_list.csv``).
        group: str. The column that names each row's group.
            Defaults to ``"subject"``.
        n_groups: int or None. How many groups go to validation.
        fraction: float or None. The share of the groups (not rows) that go
            to validation, rounded, at least one. Pass exactly one of
            ``n_groups`` and ``fraction``.
        seed: int. Seed of the random choice of groups. Defaults to 0.

    Returns:
        ``(train_table, valid_table)``, DataFrames in the input's row
        order; ``valid_table.attrs["groups"]`` lists the validation groups.

    Raises:
        ValueError: a missing column, both or neither of ``n_groups`` and
            ``fraction``, or a count that leaves a side with no group.
    """
    import pandas as pd

    if isinstance(table, (str, os.PathLike)):
        table = pd.read_csv(table)
    if not isinstance(table, pd.DataFrame):
        raise TypeError(f"`table` must be a pandas DataFrame or a CSV path. "
                        f"Received: {type(table).__name__}.")
    if group not in table.columns:
        raise ValueError(
            f"The table has no column {group!r}; its columns are "
            f"{list(table.columns)}. Pass group=<the column of the groups>.")
    groups = sorted(table[group].unique().tolist(), key=str)
    if (n_groups is None) == (fraction is None):
        raise ValueError(
            f"Pass exactly one of n_groups and fraction. Received: "
            f"n_groups={n_groups!r}, fraction={fraction!r}.")
    if fraction is not None:
        if not 0 < float(fraction) < 1:
            raise ValueError(f"`fraction` must be in (0, 1). Received: "
                             f"fraction={fraction!r}.")
        n_groups = max(1, int(round(float(fraction) * len(groups))))
    if isinstance(n_groups, bool) or not isinstance(n_groups,
                                                    (int, np.integer)):
        raise TypeError(f"`n_groups` must be an int. Received: "
                        f"{n_groups!r}.")
    if not 1 <= n_groups < len(groups):
        raise ValueError(
            f"`n_groups` must leave at least one group on each side: "
            f"between 1 and {len(groups) - 1} for the {len(groups)} groups "
            f"of column {group!r}. Received: n_groups={n_groups}.")
    rng = np.random.default_rng(seed)
    chosen = sorted((groups[i] for i in rng.choice(len(groups), n_groups,
                                                   replace=False)), key=str)
    in_valid = table[group].isin(chosen).to_numpy()
    train, valid = table[~in_valid].copy(), table[in_valid].copy()
    valid.attrs["groups"] = chosen
    train.attrs["groups"] = [g for g in groups if g not in chosen]
    return train, valid


def table_files(table, root, *, class_column="classname",
                file_column="img"):
    """Paths and class names of the rows of a State Farm style table.

    Example:

    >>> import pandas as pd
    >>> t = pd.DataFrame({"classname": ["c1", "c0"], "img": ["a.jpg", "b.jpg"]})
    >>> table_files(t, "train")
    (['train/c1/a.jpg', 'train/c0/b.jpg'], ['c1', 'c0'])

    Args:
        table: pandas DataFrame with a class and a file-name column.
        root: str. The folder holding one subfolder per class.
        class_column: str. Defaults to ``"classname"``.
        file_column: str. Defaults to ``"img"``.

    Returns:
        ``(paths, class_names_of_rows)``, two lists; pass them to
        ``kerasdl.data.images.image_files``.
    """
    for col in (class_column, file_column):
        if col not in table.columns:
            raise ValueError(f"The table has no column {col!r}; its columns "
                             f"are {list(table.columns)}.")
    classes = table[class_column].astype(str).tolist()
    files = table[file_column].astype(str).tolist()
    root = os.fspath(root)
    return ([os.path.join(root, c, f) for c, f in zip(classes, files)],
            classes)


def make_sample(src, dst, n_train, n_valid, seed=0, *, valid_src=None,
                mode="symlink"):
    """Builds the course's small sample: ``dst/train`` and ``dst/valid``.

    Draws ``n_train`` random images from the class folders of ``src``
    (over all classes together, as the course did) into
    ``dst/train/<class>/`` and ``n_valid`` images into ``dst/valid/...``:
    from ``valid_src`` when given (e.g. the folder of the validation
    drivers), otherwise from the images of ``src`` not drawn for training.
    Every class gets a folder, even one that drew no image, so that both
    halves keep the same class names. The sample is built in a temporary
    folder beside ``dst`` and renamed: it appears complete or not at all.

    ``mode`` says how files get there: ``"symlink"`` (default; absolute
    links, no extra disk, the originals must stay), ``"hardlink"`` (same
    file system only) or ``"copy"`` (independent of the originals).

    Example:

    >>> import os, tempfile
    >>> src = tempfile.mkdtemp()
    >>> for c in ("c0", "c1"):
    ...     os.makedirs(os.path.join(src, c))
    ...     for i in range(5):
    ...         open(os.path.join(src, c, f"{i}.jpg"), "w").close()
    >>> dst = os.path.join(tempfile.mkdtemp(), "sample")
    >>> counts = make_sample(src, dst, n_train=4, n_valid=3, seed=0)
    >>> counts["train"], counts["valid"], sorted(os.listdir(dst))
    (4, 3, ['train', 'valid'])

    Args:
        src: str. Folder with one subfolder per class.
        dst: str. The sample folder to create; must not exist.
        n_train: int. Images in ``dst/train``.
        n_valid: int. Images in ``dst/valid``.
        seed: int. Seed of the draw. Defaults to 0.
        valid_src: str or None. Class folders to draw validation from.
        mode: ``"symlink"``, ``"hardlink"`` or ``"copy"``.

    Returns:
        A dict ``{"train": n, "valid": n, "classes": [...]}``.

    Raises:
        ValueError: ``dst`` exists, a folder is missing, or too few images.
    """
    if mode not in _MODES:
        raise ValueError(f"`mode` must be one of {_MODES}. Received: "
                         f"mode={mode!r}.")
    dst = os.path.abspath(os.fspath(dst))
    if os.path.exists(dst):
        raise ValueError(f"{dst!r} already exists. Remove it or pick another "
                         f"destination; make_sample never overwrites.")
    rng = np.random.default_rng(seed)
    train_pool, classes = _list_classes(src)
    order = rng.permutation(len(train_pool))
    if valid_src is None:
        need = n_train + n_valid
        if need > len(train_pool):
            raise ValueError(
                f"{os.fspath(src)!r} holds {len(train_pool)} images; a sample of "
                f"{n_train} + {n_valid} needs {need}. Ask for fewer.")
        train = [train_pool[i] for i in order[:n_train]]
        valid = [train_pool[i] for i in order[n_train:need]]
    else:
        valid_pool, valid_classes = _list_classes(valid_src)
        classes = sorted(set(classes) | set(valid_classes))
        for pool, n, where in ((train_pool, n_train, src),
                               (valid_pool, n_valid, valid_src)):
            if n > len(pool):
                raise ValueError(f"{os.fspath(where)!r} holds {len(pool)} images; "
                                 f"{n} were asked for. Ask for fewer.")
        train = [train_pool[i] for i in order[:n_train]]
        valid = [valid_pool[i] for i in
                 rng.permutation(len(valid_pool))[:n_valid]]
    parent = os.path.dirname(dst)
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=".sample-", dir=parent)
    try:
        for half, files in (("train", train), ("valid", valid)):
            for c in classes:
                os.makedirs(os.path.join(tmp, half, c))
            for cls, path in files:
                _place(path, os.path.join(tmp, half, cls,
                                          os.path.basename(path)), mode)
        os.rename(tmp, dst)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return {"train": len(train), "valid": len(valid), "classes": classes}


def _list_classes(root):
    root = os.path.abspath(os.fspath(root))
    if not os.path.isdir(root):
        raise ValueError(f"Folder not found: {root!r}. Pass a folder with "
                         f"one subfolder per class.")
    classes = sorted(e.name for e in os.scandir(root)
                     if e.is_dir() and not e.name.startswith("."))
    if not classes:
        raise ValueError(f"{root!r} holds no class subfolders.")
    files = [(c, os.path.join(root, c, f)) for c in classes
             for f in sorted(os.listdir(os.path.join(root, c)))
             if os.path.isfile(os.path.join(root, c, f))]
    return files, classes


def _place(src, dst, mode):
    if mode == "symlink":
        os.symlink(os.path.realpath(src), dst)
    elif mode == "hardlink":
        os.link(src, dst)
    else:
        shutil.copy2(src, dst)
