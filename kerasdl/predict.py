"""Predicting image files with a trained model, as a table.

``predict_files(model, paths)`` reads each file as the loaders do
(``kerasdl.data._decode``: the EXIF orientation applied, converted to
RGB, resized to the model's input size), predicts them in batches
(optionally with test-time augmentation, ``kerasdl.tta``) and returns a
``pandas.DataFrame`` with one row per file, named by the class names
saved in the model (``kerasdl.with_class_names``).

The task is read from the model's output layer: a softmax is one class
per image, a sigmoid one yes/no per label (multi-label), anything else
regression values.
"""

import concurrent.futures
import os

import numpy as np

from kerasdl import _validate
from kerasdl._model_output import model_task
from kerasdl._model_output import output_units

__all__ = ["predict_files"]

TASKS = ("single_label", "multi_label", "regression")
_FIXED = ("path", "label", "probability")


def predict_files(model, paths, *, batch_size=64, tta=False, threshold=0.5,
                  task=None, image_size=None, on_error="raise", verbose=0):
    """Predicts image files; one row per file.

    Columns by task:

    - ``"single_label"``: ``path``, ``label`` (the most probable class),
      ``probability`` (its probability), then one column per class.
    - ``"multi_label"``: ``path``, ``label`` (the labels whose probability
      is above ``threshold``, joined by ``";"``; empty when none), then
      one column per label.
    - ``"regression"``: ``path``, then one column per output (named by the
      model's class names when it has them, else ``value`` or
      ``value_0``, ``value_1`` ...).

    A class column whose name is already taken by a fixed column (a class
    called ``"label"``) is named with ``"_prob"`` appended.
    ``frame.attrs["skipped"]`` lists ``(path, reason)`` of files left out
    with ``on_error="skip"``; ``frame.attrs["task"]`` gives the task.

    Example:

    >>> import os, tempfile, keras
    >>> import kerasdl
    >>> from PIL import Image
    >>> root = tempfile.mkdtemp()
    >>> for name, colour in (("red.png", (255, 0, 0)),
    ...                      ("blue.png", (0, 0, 255))):
    ...     Image.new("RGB", (40, 40), colour).save(os.path.join(root, name))
    >>> model = keras.Sequential([
    ...     keras.Input((32, 32, 3)), keras.layers.GlobalAveragePooling2D(),
    ...     keras.layers.Dense(2, activation="softmax")])
    >>> model.set_weights([np.array([[1.0, 0], [0, 0], [0, 1]]), np.zeros(2)])
    >>> model = kerasdl.with_class_names(model, ["red", "blue"])
    >>> frame = predict_files(model, root)
    >>> [os.path.basename(p) for p in frame["path"]], list(frame["label"])
    (['blue.png', 'red.png'], ['blue', 'red'])
    >>> list(frame.columns)
    ['path', 'label', 'probability', 'red', 'blue']

    Args:
        model: keras.Model. One image input and one output; classifiers
            need their class names (``kerasdl.with_class_names``).
        paths: str or list of str. Image files, or folders (their images,
            sub-folders included, in sorted order; hidden files left out).
        batch_size: int. Images per prediction batch. Defaults to 64.
        tta: bool or dict. Test-time augmentation (``kerasdl.tta`` with
            its defaults), or a dict of ``tta``'s settings (``n``,
            ``flip``, ``augment``, ``beta``, ``seed``). Defaults to
            ``False``.
        threshold: float in (0, 1). Multi-label: a label is given when its
            probability is above it. Defaults to 0.5.
        task: ``"single_label"``, ``"multi_label"``, ``"regression"`` or
            None (read from the model's output activation).
        image_size: ``(height, width)`` or None (the model's input size;
            needed when the model takes any size).
        on_error: ``"raise"`` or ``"skip"``: what to do with a file that
            is not a readable image. Defaults to ``"raise"``.
        verbose: int. 1 shows a progress bar. Defaults to 0.

    Returns:
        A ``pandas.DataFrame``, one row per file read, in the order given.

    Raises:
        TypeError: arguments of the wrong type.
        ValueError: a classifier without class names (the message says how
            to add them), a missing path, a folder without images, a file
            that is not a readable image (``on_error="raise"``; named in
            the message), class names that do not match the outputs, a
            model that does not take RGB images.
    """
    import keras
    import pandas as pd

    from kerasdl.models.labels import class_names

    if not isinstance(model, keras.Model):
        raise TypeError(f"`model` must be a keras.Model. Received: "
                        f"{type(model).__name__}.")
    batch_size = _validate.integer(batch_size, "batch_size", low=1)
    threshold = _validate.fraction(threshold, "threshold")
    on_error = _validate.choice(on_error, "on_error", ("raise", "skip"))
    verbose = _validate.integer(verbose, "verbose", low=0, high=2)
    options = _tta_options(tta)
    task = _validate.choice(task, "task", TASKS) if task is not None else \
        model_task(model)
    names = class_names(model)
    units = output_units(model, "predict_files")
    if names is None and task != "regression":
        raise ValueError(
            f"The model {model.name!r} has no class names, so its "
            f"{units} outputs cannot be named. Add them, in the order of "
            f"the training labels, and save the model again: model = "
            f"kerasdl.with_class_names(model, train.class_names) (or a "
            f"list such as ['cat', 'dog']).")
    if names is not None and len(names) != units:
        raise ValueError(f"The model has {units} outputs but {len(names)} "
                         f"class names ({names[:5]}). Set them again with "
                         f"kerasdl.with_class_names.")
    size = _image_size(model, image_size)
    files = list_files(paths)
    rows, probs, skipped = [], [], []
    bar = keras.utils.Progbar(len(files)) if verbose else None
    with concurrent.futures.ThreadPoolExecutor(
            min(8, os.cpu_count() or 1)) as pool:
        for index, start in enumerate(range(0, len(files), batch_size)):
            chunk = files[start:start + batch_size]
            images = list(pool.map(lambda p: _read(p, size, on_error),
                                   chunk))
            for path, image in zip(chunk, images):
                if isinstance(image, str):
                    skipped.append((path, image))
            kept = [(p, im) for p, im in zip(chunk, images)
                    if not isinstance(im, str)]
            if kept:
                x = np.stack([im for _, im in kept])
                probs.append(_predict(model, x, options, index))
                rows += [p for p, _ in kept]
            if bar is not None:
                bar.update(min(start + batch_size, len(files)))
    if not rows:
        raise ValueError(
            f"None of the {len(files)} file(s) could be read as an image; "
            f"the first: {skipped[0][0]!r} ({skipped[0][1]}).")
    p = np.concatenate(probs).reshape(len(rows), -1)
    frame = _frame(pd, rows, p, task, names, threshold)
    frame.attrs["skipped"] = skipped
    frame.attrs["task"] = task
    return frame


def list_files(paths):
    """The files of ``paths`` (files and folders), in the order given.

    Raises:
        TypeError: not a path or a list of them.
        ValueError: a path that does not exist, a folder without files.
    """
    from kerasdl.data.images import list_images

    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    if not hasattr(paths, "__iter__"):
        raise TypeError(f"`paths` must be a path or a list of paths. "
                        f"Received: {type(paths).__name__}.")
    files = []
    for path in paths:
        if not isinstance(path, (str, os.PathLike)):
            raise TypeError(f"`paths` must hold file or folder paths. "
                            f"Received an item {path!r}.")
        path = os.fspath(path)
        if os.path.isdir(path):
            found = list_images(path)
            if not found:
                raise ValueError(f"The folder {path!r} holds no files to "
                                 f"predict. Pass image files or a folder "
                                 f"of images.")
            files += found
        elif os.path.lexists(path):
            files.append(path)
        else:
            raise ValueError(f"No such file or folder: {path!r}. Check the "
                             f"path.")
    if not files:
        raise ValueError("`paths` is empty. Pass image files or folders.")
    return files


def _read(path, size, on_error):
    """The decoded image, or (``on_error="skip"``) the reason it cannot
    be read, as a str."""
    from kerasdl.data import _decode

    try:
        return _decode.decode(path, size)
    except _decode.ImageError as e:
        if on_error == "skip":
            return e.reason
        raise ValueError(
            f"Cannot predict {path!r}: {e.reason}. Pass image files (JPEG, "
            f"PNG, ...), or on_error='skip' to leave such files out.") \
            from None


def _predict(model, x, options, index):
    if options is not None:
        from kerasdl.tta import predict_batch

        return predict_batch(model, x, options, index)
    out = model.predict_on_batch(x)
    if isinstance(out, (list, tuple, dict)):
        raise ValueError(f"predict_files needs a model with one output; "
                         f"{model.name!r} has {len(out)}.")
    return np.asarray(out, np.float32)


def _tta_options(tta):
    from kerasdl.tta import Options

    if tta is False:
        return None
    if tta is True:
        return Options()
    if isinstance(tta, dict):
        unknown = sorted(set(tta) - {"n", "flip", "augment", "beta", "seed"})
        if unknown:
            raise ValueError(f"Unknown tta settings {unknown}; known: n, "
                             f"flip, augment, beta, seed.")
        return Options(**tta)
    raise TypeError(f"`tta` must be True, False or a dict of kerasdl.tta's "
                    f"settings. Received: tta={tta!r}.")


def _image_size(model, image_size):
    shape = tuple(model.inputs[0].shape)[1:] if getattr(
        model, "inputs", None) else ()
    if len(shape) != 3 or (shape[-1] not in (None, 3)):
        raise ValueError(
            f"predict_files reads RGB images, so the model must take inputs "
            f"of shape (height, width, 3); {model.name!r} takes {shape}.")
    if image_size is not None:
        try:
            h, w = (int(v) for v in image_size)
        except (TypeError, ValueError):
            raise TypeError(f"`image_size` must be (height, width). "
                            f"Received: image_size={image_size!r}.") from None
        for given, own in ((h, shape[0]), (w, shape[1])):
            if given < 1 or (own is not None and own != given):
                raise ValueError(
                    f"`image_size` must fit the model's input "
                    f"{shape[:2]}. Received: image_size={image_size!r}.")
        return (h, w)
    if shape[0] is None or shape[1] is None:
        raise ValueError(
            f"The model {model.name!r} takes images of any size; pass "
            f"image_size=(height, width), the size it was trained at.")
    return (int(shape[0]), int(shape[1]))


def _frame(pd, rows, p, task, names, threshold):
    columns = {"path": rows}
    if task == "regression":
        if names is None:
            names = ["value"] if p.shape[1] == 1 else \
                [f"value_{j}" for j in range(p.shape[1])]
        for j, name in enumerate(names):
            columns[_column(name, columns)] = p[:, j]
        return pd.DataFrame(columns)
    if task == "single_label":
        best = p.argmax(axis=1)
        columns["label"] = [names[j] for j in best]
        columns["probability"] = p[np.arange(len(p)), best]
    else:
        columns["label"] = [";".join(names[j] for j in np.flatnonzero(
            row > threshold)) for row in p]
    for j, name in enumerate(names):
        columns[_column(name, columns)] = p[:, j]
    return pd.DataFrame(columns)


def _column(name, columns):
    name = str(name)
    while name in columns or name in _FIXED:
        name += "_prob"
    return name
