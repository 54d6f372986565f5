"""Image files to uint8 batches: Pillow decoding in worker processes (or on
a thread pool) inside a ``keras.utils.PyDataset`` (no TensorFlow needed).

Two sources: a folder with one subfolder per class (``image_folder``) and a
list of files with their labels (``image_files``). Both return an
``ImageBatches``.
"""

import concurrent.futures
import hashlib
import os
import threading

import keras
import numpy as np

from kerasdl import _validate
from kerasdl.data import _decode
from kerasdl.data import points as _points
from kerasdl.data._decode import ImageError
from kerasdl.data._decode import LoadReport
from kerasdl.data.augment import transform_with

__all__ = ["ImageBatches", "ImageError", "LoadReport", "image_files",
           "image_folder", "list_images"]

_ON_ERROR = ("raise", "skip")
TASKS = ("single_label", "multi_label", "regression")
# One batch of uint8 images above this many bytes is refused up front.
_MAX_BATCH_BYTES = 4 << 30


class ImageBatches(keras.utils.PyDataset):
    """Batches of images decoded from files, as uint8 arrays.

    ``batches[i]`` is ``(images, labels)`` (or ``images`` alone when there
    are no labels): ``images`` of shape ``(n, height, width, 3)`` and dtype
    uint8, ``labels`` int32 class indices (or one-hot float32 with
    ``label_mode="categorical"``), multi-hot float32 rows, or float32
    regression targets. Files are decoded and resized by Pillow in worker
    processes (``processes``; threads for small jobs), JPEG files at a
    reduced scale straight from their DCT coefficients when the target
    is at most half their size (``PIL.Image.draft``). Grayscale, palette,
    CMYK, 16-bit and transparent images become RGB (transparency
    composited over white), and the EXIF orientation of phone photos is
    applied.

    The targets' ``task`` is given or read from the labels: integer class
    indices are ``"single_label"``, 2-D rows of 0 and 1 ``"multi_label"``,
    and other float labels (``(n,)`` or ``(n, k)``) ``"regression"``
    (pass ``task="regression"`` for float rows that hold only 0 and 1).
    With ``points=True`` the regression targets are points ``x0, y0, x1,
    y1, ...`` scaled to [-1, 1] over the image's edges (see
    ``kerasdl.data.points``).

    ``augment`` (a ``RandomAffine``, ``ChannelShift`` or a Sequential of
    them) is applied here, to every batch, instead of inside the model:
    so that with ``points=True`` the points move with the image (the same
    matrix; an image whose points would leave it gets its warp drawn again,
    see ``kerasdl.data.augment.transform_with``). Its random numbers depend
    only on ``(seed, epoch, batch index)``. Augmented images are rounded
    back to uint8. ``to_arrays`` and ``scan`` are not augmented.

    Bad files follow ``on_error``: ``"raise"`` (an ``ImageError`` naming
    the file) or ``"skip"``. Missing, unreadable and non-image files are
    found when the loader is built (only headers are read); a truncated or
    corrupt file is found when its batch is decoded, and with ``"skip"``
    that batch is then one image short and the file is left out of later
    epochs. Call ``scan()`` first to decode every file once and find them
    all. ``report`` lists what was skipped.

    Example:

    >>> import os, tempfile
    >>> from PIL import Image
    >>> root = tempfile.mkdtemp()
    >>> for c in ("cats", "dogs"):
    ...     os.makedirs(os.path.join(root, c))
    ...     for i in range(3):
    ...         Image.new("RGB", (48, 36)).save(os.path.join(root, c, f"{i}.png"))
    >>> batches = image_folder(root, image_size=(4, 4), batch_size=4)
    >>> x, y = batches[0]
    >>> batches.class_names, x.shape, x.dtype.name, y.tolist()
    (['cats', 'dogs'], (4, 4, 4, 3), 'uint8', [0, 0, 0, 1])

    Args:
        paths: list of str. The image files.
        labels: list of int, 2-D array or None. Class index of each file,
            or one multi-hot row per file (multi-label: ``task`` is then
            ``"multi_label"`` and ``label_mode`` does not apply), or float
            targets (``(n,)`` or ``(n, k)``: regression).
        class_names: list of str or None. Names of the classes (None for
            regression).
        task: ``"single_label"``, ``"multi_label"``, ``"regression"`` or
            None (read from ``labels`` as above). Defaults to None.
        points: bool. The regression targets are ``x, y`` pairs in
            [-1, 1] that an ``augment`` moves with the image. Defaults to
            ``False``.
        augment: a kerasdl ``RandomAffine``, ``ChannelShift``, a
            ``keras.Sequential`` of them (``augmentation(...)``) or None.
            Applied to every batch. Defaults to None.
        image_size: tuple ``(height, width)``. Every image is resized to it.
        batch_size: int. Defaults to 32.
        shuffle: bool. A new order every epoch. Defaults to ``False``.
        seed: int or None. Seed of the shuffling; the order of epoch ``e``
            depends only on ``(seed, e)``.
        label_mode: ``"int"`` or ``"categorical"``. Defaults to ``"int"``.
        on_error: ``"raise"`` or ``"skip"``. Defaults to ``"raise"``.
        min_size: int. Images narrower or lower than this many pixels are
            bad files (they follow ``on_error``): a 10x10 thumbnail would
            otherwise be stretched to ``image_size`` without a word.
            Defaults to 32.
        interpolation: str. ``"bilinear"``, ``"nearest"``, ``"bicubic"`` or
            ``"lanczos"``. Defaults to ``"bilinear"``.
        threads: int or None. Decoding threads when no processes decode
            (and threads reading the headers); ``None`` uses
            ``min(16, os.cpu_count())``.
        processes: int or ``"auto"``. Decoding processes: several
            decode in parallel around the GIL (Python's per-image work
            holds it, so threads stop scaling at a few cores); 0 decodes
            on threads in this process. ``"auto"`` starts ``min(16,
            os.cpu_count())`` of them for 512 files or more on a machine
            of 4 cores or more, else 0. The batches are the same either
            way. Defaults to ``"auto"``.
        report: LoadReport or None. Where to record skipped files.
        **kwargs: passed to ``keras.utils.PyDataset`` (``workers``,
            ``use_multiprocessing``, ``max_queue_size``).

    Raises:
        ValueError: bad arguments, labels that do not fit ``task``, points
            outside [-1, 1] (the file and the point named), no files, or a
            bad file with ``on_error="raise"``.
        TypeError: an ``augment`` that is not a kerasdl augmentation.
    """

    def __init__(self, paths, labels=None, *, class_names=None, task=None,
                 points=False, augment=None,
                 image_size=(224, 224), batch_size=32, shuffle=False,
                 seed=None, label_mode="int", on_error="raise",
                 min_size=32, interpolation="bilinear", threads=None,
                 processes="auto", report=None, **kwargs):
        super().__init__(**kwargs)
        self.image_size = _check_size(image_size)
        self.batch_size = _validate.integer(batch_size, "batch_size", low=1)
        self.min_size = _validate.integer(min_size, "min_size", low=1)
        if threads is not None:
            threads = _validate.integer(threads, "threads", low=1,
                                        hint="Pass None for one per core.")
        batch_bytes = self.batch_size * self.image_size[0] * \
            self.image_size[1] * 3
        if batch_bytes > _MAX_BATCH_BYTES:
            raise ValueError(
                f"One batch of {self.batch_size} images of "
                f"{self.image_size[0]}x{self.image_size[1]} pixels needs "
                f"{batch_bytes / 2**30:.1f} GiB, above the "
                f"{_MAX_BATCH_BYTES >> 30} GiB limit. Pass a smaller "
                f"image_size or batch_size.")
        if on_error not in _ON_ERROR:
            raise ValueError(f"`on_error` must be 'raise' or 'skip'. "
                             f"Received: on_error={on_error!r}.")
        if label_mode not in ("int", "categorical"):
            raise ValueError(f"`label_mode` must be 'int' or 'categorical'. "
                             f"Received: label_mode={label_mode!r}.")
        if interpolation not in _decode._RESAMPLE:
            raise ValueError(
                f"`interpolation` must be one of {sorted(_decode._RESAMPLE)}."
                f" Received: interpolation={interpolation!r}.")
        self.paths = [os.fspath(p) for p in paths]
        if not self.paths:
            raise ValueError("No image files were given. Pass at least one "
                             "path.")
        if class_names is not None:
            class_names = _validate.strings(class_names, "class_names")
        if task is not None:
            task = _validate.choice(task, "task", TASKS)
        if not isinstance(points, bool):
            raise TypeError(f"`points` must be True or False. Received: "
                            f"points={points!r}.")
        if points and task is None:
            task = "regression"
        self.labels, self._task = _check_labels(
            labels, len(self.paths), class_names, task)
        self.points = points
        if points:
            _check_point_labels(self.labels, self._task, self.paths)
        if self._task == "regression":
            if class_names:
                raise ValueError(
                    "`class_names` does not apply to regression targets. "
                    "Pass class_names=None, or integer labels for classes.")
            if label_mode != "int":
                raise ValueError(
                    f"label_mode={label_mode!r} does not apply to regression "
                    f"targets (they are given as they are). Leave "
                    f"label_mode='int'.")
        self.augment = _check_augment(augment)
        self.class_names = list(class_names) if class_names else None
        self.shuffle = bool(shuffle)
        self.seed = seed if seed is not None else int(
            np.random.SeedSequence().generate_state(1)[0])
        self.label_mode = label_mode
        self.on_error = on_error
        self.interpolation = interpolation
        self.threads = threads or min(16, os.cpu_count() or 1)
        self.processes = _processes(processes, len(self.paths))
        self._procs = None
        self._procs_lock = threading.Lock()
        self.report = report if report is not None else LoadReport()
        self.epoch = 0
        self._bad = set()
        self._pool = None
        self._check_headers()
        self._order = self._make_order()

    @property
    def task(self):
        """``"single_label"`` (one class index per image),
        ``"multi_label"`` (one multi-hot row per image) or ``"regression"``
        (float targets)."""
        return self._task

    @property
    def num_classes(self):
        """Number of classes (``None`` for regression, or without class
        names or labels)."""
        if self._task == "regression":
            return None
        if self.class_names:
            return len(self.class_names)
        if self.labels is not None:
            if self.labels.ndim == 2:
                return self.labels.shape[1]
            return int(self.labels.max()) + 1
        return None

    @property
    def n_outputs(self):
        """Outputs a model needs for these targets: the classes, or the
        values per image for regression (``None`` without labels)."""
        if self.labels is None:
            return None
        if self._task == "regression":
            return 1 if self.labels.ndim == 1 else self.labels.shape[1]
        return self.num_classes

    @property
    def n_images(self):
        """Images in one epoch (files skipped as bad are not counted)."""
        return len(self._order)

    def labels_in_order(self):
        """The labels of this epoch's images, as the batches give them."""
        if self.labels is None:
            return None
        y = self.labels[self._order]
        if self.label_mode == "categorical" and y.ndim == 1:
            y = np.eye(self.num_classes, dtype=np.float32)[y]
        return y

    def __len__(self):
        return -(-len(self._order) // self.batch_size)

    def __getitem__(self, index):
        if not 0 <= index < len(self):
            raise IndexError(f"Batch {index} out of range (0..{len(self)-1})")
        rows = self._order[index * self.batch_size:
                           (index + 1) * self.batch_size]
        images = self._decode_rows(rows)
        keep = [r for r, img in zip(rows, images) if img is not None]
        x = np.stack([img for img in images if img is not None]) if keep \
            else np.zeros((0, *self.image_size, 3), np.uint8)
        y = None if self.labels is None else \
            self.labels[np.asarray(keep, dtype=np.int64)]
        if self.augment is not None and len(x):
            x, y = self._augment(x, y, index)
        if y is None:
            return x
        if self.label_mode == "categorical" and y.ndim == 1:
            y = np.eye(self.num_classes, dtype=np.float32)[y]
        return x, y

    def _augment(self, x, y, index):
        """Warps one batch (and moves its points) with random numbers
        that depend only on ``(seed, epoch, index)``."""
        rng = np.random.default_rng([self.seed, self.epoch, index])
        moving = self.points and y is not None
        out = transform_with(self.augment, x.astype(np.float32), rng,
                             points=y if moving else None)
        if moving:
            out, y = out
        out = keras.ops.convert_to_numpy(out)
        x = np.clip(np.rint(out), 0, 255).astype(np.uint8)
        return x, y

    def on_epoch_end(self):
        self.epoch += 1
        self._order = self._make_order()

    def scan(self):
        """Decodes every file once and applies ``on_error`` to each.

        After a scan with ``on_error="skip"`` every batch is full.

        Returns:
            The ``LoadReport``.
        """
        self._decode_rows(self._order)
        self._order = self._make_order()
        return self.report

    def to_arrays(self):
        """All images (in file order, bad ones per ``on_error``) as arrays.

        Returns:
            ``(images, labels)`` (``labels`` is ``None`` without labels).
        """
        rows = [i for i in range(len(self.paths)) if i not in self._bad]
        images = self._decode_rows(rows)
        keep = [r for r, img in zip(rows, images) if img is not None]
        x = np.stack([img for img in images if img is not None])
        y = None if self.labels is None else self.labels[keep]
        return x, y

    def fingerprint(self):
        """A hash of the file list, sizes, times, labels and settings."""
        h = hashlib.blake2b(digest_size=16)
        h.update(repr((self.image_size, self.interpolation,
                       self.label_mode)).encode())
        if self._task == "regression" or self.augment is not None:
            aug = None if self.augment is None else \
                self.augment.get_config()
            h.update(repr((self._task, self.points, aug)).encode())
        for i, path in enumerate(self.paths):
            try:
                st = os.stat(path)
                h.update(f"{path}|{st.st_size}|{st.st_mtime_ns}".encode())
            except OSError:
                h.update(f"{path}|missing".encode())
            if self.labels is not None:
                h.update(np.ascontiguousarray(self.labels[i]).tobytes())
        return h.hexdigest()

    def _make_order(self):
        rows = np.array([i for i in range(len(self.paths))
                         if i not in self._bad], dtype=np.int64)
        if not len(rows):
            reasons = "; ".join(f"{p}: {r}" for p, r in
                                self.report.skipped[:3])
            raise ValueError(
                f"Every one of the {len(self.paths)} image files is bad, so "
                f"there is nothing to load. The first: {reasons}. Check "
                f"the folder (`report` lists them all).")
        if self.shuffle:
            rng = np.random.default_rng([self.seed, self.epoch])
            rows = rows[rng.permutation(len(rows))]
        return rows

    def _map(self, fn, items):
        if self.threads == 1 or len(items) < 2:
            return [fn(item) for item in items]
        if self._pool is None:
            self._pool = concurrent.futures.ThreadPoolExecutor(
                self.threads, thread_name_prefix="kerasdl-decode")
        return list(self._pool.map(fn, items))

    def _guard(self, fn, row):
        try:
            return fn(self.paths[row])
        except ImageError as e:
            if self.on_error == "raise":
                raise
            self.report.add(e)
            self._bad.add(row)
            return None

    def _check_headers(self):
        self._map(lambda r: self._guard(
            lambda p: _decode.check_header(p, self.min_size), r),
            list(range(len(self.paths))))

    def _decode_rows(self, rows):
        size, interp = self.image_size, self.interpolation
        if self.processes and len(rows) > 1:
            pool = self._decode_pool()
            out = pool.decode([self.paths[r] for r in rows])
            return [self._guard(lambda p, img=img: _raise_or(img), r)
                    for r, img in zip(rows, out)]
        return self._map(
            lambda r: self._guard(
                lambda p: _decode.decode(p, size, interp), r), list(rows))

    def _decode_pool(self):
        with self._procs_lock:
            if self._procs is None or self._procs.broken:
                from kerasdl.data._decode_pool import DecodePool

                self._procs = DecodePool(self.processes, self.image_size,
                                         self.interpolation,
                                         max(self.batch_size, 64))
            return self._procs

    def close(self):
        """Stops the decoding processes and threads (they are started
        again when needed; they also stop when the loader is deleted)."""
        pool, procs = getattr(self, "_pool", None), getattr(self, "_procs",
                                                            None)
        self._pool = self._procs = None
        if pool is not None:
            pool.shutdown(wait=False)
        if procs is not None:
            procs.close()

    def __getstate__(self):
        state = self.__dict__.copy()
        state["_pool"] = state["_procs"] = None
        state["_procs_lock"] = None
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._procs_lock = threading.Lock()

    def __del__(self):
        try:
            self.close()
        except Exception:  # noqa: BLE001 (interpreter shutting down)
            pass


def image_folder(directory, *, image_size=(224, 224), batch_size=32,
                 shuffle=False, seed=None, class_names=None,
                 extensions=None, on_error="raise", **kwargs):
    """Batches from a folder holding one subfolder of images per class.

    Class names are the subfolder names in sorted order (the course's
    ``get_batches``); label ``i`` is ``class_names[i]``. Every file in a
    class folder (and in folders below it) is an image candidate: a file
    that is not an image follows ``on_error``, unless ``extensions``
    limits the listing. Hidden and system files (.DS_Store, Thumbs.db) are
    left out and listed in ``report.ignored``.

    Example:

    >>> import os, tempfile
    >>> from PIL import Image
    >>> root = tempfile.mkdtemp()
    >>> for c in ("c0", "c1"):
    ...     os.makedirs(os.path.join(root, c))
    ...     Image.new("L", (40, 40)).save(os.path.join(root, c, "a.jpg"))
    >>> b = image_folder(root, image_size=(5, 5), batch_size=2)
    >>> b[0][0].shape, b.num_classes
    ((2, 5, 5, 3), 2)

    Args:
        directory: str. The folder with one subfolder per class.
        image_size: tuple ``(height, width)``. Defaults to ``(224, 224)``.
        batch_size: int. Defaults to 32.
        shuffle: bool. Defaults to ``False``.
        seed: int or None. Seed of the shuffling.
        class_names: list of str or None. The classes to read, in label
            order; ``None`` takes every subfolder.
        extensions: str, tuple of str or None. Only files ending so (case
            insensitive, e.g. ``(".jpg", ".png")``) are listed; ``None``
            lists every file. Others are recorded in ``report.ignored``.
        on_error: ``"raise"`` or ``"skip"``. A bad file or an empty class
            folder raises, or is skipped and recorded in ``report``.
        **kwargs: passed to ``ImageBatches``.

    Returns:
        An ``ImageBatches``.

    Raises:
        ValueError: a missing folder, no class folders, an empty class
            folder or a bad file (with ``on_error="raise"``).
    """
    directory = os.fspath(directory)
    if not os.path.isdir(directory):
        raise ValueError(f"Image folder not found: {directory!r}. Pass a "
                         f"folder that holds one subfolder per class.")
    report = kwargs.pop("report", None) or LoadReport()
    if class_names is None:
        class_names = class_folders(directory, report)
    else:
        class_names = _validate.strings(class_names, "class_names")
    if not class_names:
        raise ValueError(f"{directory!r} holds no class subfolders. Put the "
                         f"images of each class in a subfolder of it.")
    paths, labels = files_by_class(directory, class_names,
                                   extensions=extensions, report=report,
                                   on_empty=on_error)
    return ImageBatches(paths, labels, class_names=class_names,
                        image_size=image_size, batch_size=batch_size,
                        shuffle=shuffle, seed=seed, on_error=on_error,
                        report=report, **kwargs)


def files_by_class(directory, class_names, *, extensions=None, report=None,
                   on_empty="raise", missing_ok=False):
    """The image files of ``directory/<class>/**`` and their labels.

    Args:
        directory: str.
        class_names: list of str. Label ``i`` is ``class_names[i]``.
        extensions: str, tuple of str or None. See ``list_images``.
        report: LoadReport or None.
        on_empty: ``"raise"``, or ``"skip"`` to record an empty class
            folder in ``report.empty_classes``.
        missing_ok: bool. Class folders that are absent or empty are
            passed over without a word (a validation folder may lack a
            class).

    Returns:
        ``(paths, labels)``: two lists.
    """
    report = report if report is not None else LoadReport()
    paths, labels = [], []
    for label, name in enumerate(class_names):
        folder = os.path.join(directory, name)
        if not os.path.isdir(folder):
            if missing_ok:
                continue
            raise ValueError(f"Class folder {folder!r} not found.")
        files = list_images(folder, extensions=extensions, report=report)
        if not files and not missing_ok:
            if on_empty == "raise":
                raise ValueError(
                    f"Class folder {folder!r} holds no image files. Add "
                    f"images, remove the folder, or pass on_error='skip' "
                    f"to keep the class with no examples.")
            report.empty_classes.append(folder)
        paths += files
        labels += [label] * len(files)
    return paths, labels


def class_folders(directory, report=None):
    """The sorted class subfolders of ``directory`` (hidden ones left out).

    Files lying directly in ``directory`` belong to no class: they are
    recorded in ``report.ignored``.
    """
    try:
        entries = sorted(os.scandir(directory), key=lambda e: e.name)
    except OSError as e:
        raise ValueError(f"Cannot read the folder {directory!r} "
                         f"({e.strerror or e}).") from None
    names = []
    for entry in entries:
        full = os.path.join(directory, entry.name)
        if _decode.is_hidden(entry.name):
            if report is not None:
                report.ignore(full, "hidden or system file")
        elif _is_dir(entry):
            names.append(entry.name)
        elif report is not None:
            report.ignore(full, "not in a class folder")
    return names


def image_files(paths, labels=None, *, class_names=None, **kwargs):
    """Batches from a list of image files and their labels.

    Labels may be class indices or class names (strings); names are mapped
    to indices through ``class_names`` (sorted unique names by default).

    Example:

    >>> import os, tempfile
    >>> from PIL import Image
    >>> root = tempfile.mkdtemp()
    >>> files = [os.path.join(root, f"{i}.png") for i in range(3)]
    >>> for f in files:
    ...     Image.new("RGB", (32, 32)).save(f)
    >>> b = image_files(files, ["c1", "c0", "c1"], image_size=(4, 4))
    >>> b.class_names, b[0][1].tolist()
    (['c0', 'c1'], [1, 0, 1])

    Args:
        paths: list of str. The image files.
        labels: list of int or str, or None. One per file.
        class_names: list of str or None.
        **kwargs: passed to ``ImageBatches``.

    Returns:
        An ``ImageBatches``.

    Raises:
        ValueError: lengths differ, an unknown class name, or a bad file.
    """
    paths = list(paths)
    if labels is not None:
        labels = list(labels)
        if labels and all(isinstance(v, str) for v in labels):
            names = list(class_names) if class_names else sorted(set(labels))
            index = {n: i for i, n in enumerate(names)}
            unknown = sorted(set(labels) - set(index))
            if unknown:
                raise ValueError(
                    f"Labels {unknown[:5]} are not in class_names={names}. "
                    f"Add them to class_names.")
            labels, class_names = [index[v] for v in labels], names
    return ImageBatches(paths, labels, class_names=class_names, **kwargs)


def _processes(processes, n_files):
    if processes == "auto":
        cores = os.cpu_count() or 1
        worth = cores >= 4 and n_files >= 512 and os.name == "posix"
        return min(16, cores) if worth else 0
    return _validate.integer(processes, "processes", low=0,
                             hint="Pass 0 to decode on threads, or 'auto'.")


def _raise_or(img):
    if isinstance(img, ImageError):
        raise img
    return img


def _check_size(size):
    try:
        h, w = (int(v) for v in size)
    except (TypeError, ValueError):
        raise ValueError(f"`image_size` must be (height, width). Received: "
                         f"image_size={size!r}.") from None
    if not 1 <= h <= 65500 or not 1 <= w <= 65500:
        raise ValueError(f"`image_size` must be (height, width) between 1 "
                         f"and 65500 pixels. Received: image_size={size!r}.")
    return (h, w)


def _check_labels(labels, n, class_names, task):
    """The labels as stored and their task (given or read from them)."""
    if labels is None:
        return None, task or "single_label"
    labels = np.asarray(labels)
    numeric = labels.dtype.kind in "iuf" and labels.size
    if task is None:
        if labels.ndim == 2 and numeric and np.isin(labels, (0, 1)).all():
            task = "multi_label"
        elif labels.dtype.kind == "f" and labels.ndim in (1, 2):
            task = "regression"
        elif labels.ndim == 2:
            task = "multi_label"  # refused below with its own message
        else:
            task = "single_label"
    if labels.shape[:1] != (n,):
        raise ValueError(
            f"`labels` must hold {n} entries, one per file. Received "
            f"labels of shape {labels.shape}.")
    if task == "multi_label":
        if labels.ndim != 2:
            raise ValueError(
                f"Multi-label `labels` must be a ({n}, n_classes) multi-hot "
                f"array. Received shape {labels.shape}.")
        return _check_multi_hot(labels, class_names), task
    if task == "regression":
        if labels.ndim not in (1, 2) or not numeric:
            raise ValueError(
                f"Regression `labels` must be numbers of shape ({n},) or "
                f"({n}, k). Received shape {labels.shape} of dtype "
                f"{labels.dtype}.")
        labels = labels.astype(np.float32)
        _validate.finite_array(labels, "labels",
                               hint="Fix or leave out those rows.")
        return labels, task
    if labels.shape != (n,) or labels.dtype.kind not in "iu":
        hint = (" For float targets pass task='regression'."
                if labels.dtype.kind == "f" else "")
        raise ValueError(
            f"`labels` must be {n} integer class indices, one per file (or "
            f"a ({n}, n_classes) multi-hot array). Received shape "
            f"{labels.shape} of dtype {labels.dtype}.{hint}")
    top = len(class_names) if class_names else None
    if labels.min() < 0 or (top is not None and labels.max() >= top):
        raise ValueError(
            f"Labels must lie in [0, {top or 'n_classes'}). Received values "
            f"from {labels.min()} to {labels.max()}.")
    return labels.astype(np.int32), task


def _check_point_labels(labels, task, paths):
    if labels is None or task != "regression" or labels.ndim != 2 or \
            labels.shape[1] % 2:
        found = "no labels" if labels is None else \
            f"{task} labels of shape {labels.shape}"
        raise ValueError(
            f"points=True needs regression targets of shape (n, 2k): x, y "
            f"pairs scaled to [-1, 1]. Found {found}.")
    _points.check_points(labels, paths)


def _check_augment(augment):
    if augment is None:
        return None
    parts = augment.layers if isinstance(augment, keras.Sequential) else \
        [augment]
    for part in parts:
        if not (hasattr(part, "transform") and hasattr(part, "n_uniforms")):
            raise TypeError(
                f"`augment` must be a kerasdl RandomAffine, ChannelShift or "
                f"a keras.Sequential of them (such as "
                f"kerasdl.augmentation('light')). Received: "
                f"{type(part).__name__}.")
    return augment


def _check_multi_hot(labels, class_names):
    if class_names is not None and labels.shape[1] != len(class_names):
        raise ValueError(
            f"Multi-hot `labels` must have one column per class name: "
            f"{len(class_names)} names, {labels.shape[1]} columns.")
    if not np.isin(labels, (0, 1)).all():
        raise ValueError("Multi-hot `labels` must hold only 0 and 1. For "
                         "float targets pass task='regression'.")
    return labels.astype(np.float32)


def list_images(folder, *, extensions=None, report=None, recursive=True):
    """The candidate image files under ``folder``, sorted.

    Hidden and system files (names starting with ".", Thumbs.db,
    desktop.ini) and, with ``extensions``, files of other extensions are
    left out and recorded in ``report.ignored``. Sub-folders are read too
    (``recursive``), following symbolic links once each: a link loop is
    recorded, not followed forever. Broken links and special files (FIFOs,
    sockets) are listed: the loader then finds them bad by name.

    Args:
        folder: str.
        extensions: str, tuple of str or None. Keep only these endings
            (case insensitive), e.g. ``(".jpg", ".png")``.
        report: LoadReport or None.
        recursive: bool. Defaults to ``True``.

    Returns:
        A list of paths.

    Raises:
        ValueError: ``folder`` (or a folder below it) cannot be read.
    """
    folder = os.fspath(folder)
    report = report if report is not None else LoadReport()
    extensions = _extensions(extensions)
    out, seen = [], set()

    def walk(path):
        real = os.path.realpath(path)
        if real in seen:
            report.ignore(path, "symbolic link loop (folder already read)")
            return
        seen.add(real)
        try:
            entries = sorted(os.scandir(path), key=lambda e: e.name)
        except OSError as e:
            raise ValueError(
                f"Cannot read the folder {path!r} ({type(e).__name__}: "
                f"{e.strerror or e}). Check that it exists and that you "
                f"may read it.") from None
        for entry in entries:
            full = os.path.join(path, entry.name)
            if _decode.is_hidden(entry.name):
                report.ignore(full, "hidden or system file")
            elif _is_dir(entry):
                if recursive:
                    walk(full)
                else:
                    report.ignore(full, "a folder")
            elif extensions and not entry.name.lower().endswith(extensions):
                report.ignore(full, f"extension not in {extensions}")
            else:
                out.append(full)

    walk(folder)
    return out


def _is_dir(entry):
    try:
        return entry.is_dir()
    except OSError:
        return False


def _extensions(extensions):
    if extensions is None:
        return None
    if isinstance(extensions, str):
        extensions = (extensions,)
    extensions = _validate.strings(extensions, "extensions")
    return tuple(e.lower() if e.startswith(".") else "." + e.lower()
                 for e in extensions)
