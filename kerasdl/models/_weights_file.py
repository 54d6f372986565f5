"""Weights files: checked against a model's shapes, then loaded.

``model.load_weights`` reports a file that does not fit in terms of its
own walk (``Layer 'x' expected 1 variables, but received 2``, or a
count of layers), without the shapes. ``misfit`` reads the file first
and names the first layer whose weights differ, with both shapes, so
that the user sees which model the file was made for.

Three formats, those ``model.load_weights`` takes:

- ``.weights.h5`` (Keras 3 ``save_weights``): each layer's variables under
  ``layers/<class name in snake case>[_<k>]/vars/<i>``, matched in the
  order of ``model.layers`` (nested models under ``.../layers``);
- ``.keras``: the same file, stored as ``model.weights.h5`` in the zip;
- legacy ``.h5`` / ``.hdf5`` (the files keras.applications publishes):
  the layers that have weights, matched in order, each with its
  trainable weights first.
"""

import contextlib
import io
import os
import re
import zipfile

import keras

#: File name endings ``load`` accepts.
SUFFIXES = (".weights.h5", ".keras", ".h5", ".hdf5")


def path_or_none(weights):
    """Checks a ``weights`` argument: ``None`` or ``"imagenet"`` give
    None, a weights file its path.

    Raises:
        TypeError: neither None nor a str or path.
        ValueError: no such file, or a name Keras cannot load.
    """
    if weights is None or weights == "imagenet":
        return None
    if not isinstance(weights, (str, os.PathLike)):
        raise TypeError(f"`weights` must be None, 'imagenet' or the path of "
                        f"a weights file. Received: {weights!r}.")
    path = os.fspath(weights)
    if not os.path.isfile(path):
        raise ValueError(
            f"`weights` must be None, 'imagenet' or the path of a weights "
            f"file. Received: weights={path!r}, which is no file.")
    if not path.endswith(SUFFIXES):
        raise ValueError(
            f"`weights` must be a file ending in {', '.join(SUFFIXES)}. "
            f"Received: weights={path!r}.")
    try:  # before the model is built
        with _open(path):
            pass
    except OSError as e:
        raise _unreadable(path, e) from None
    return path


def load(model, path, what=None):
    """Loads a weights file, refusing one that does not fit in one line.

    Args:
        model: keras.Model.
        path: str or PathLike. ``.weights.h5``, ``.keras``, ``.h5`` or
            ``.hdf5``.
        what: str or None. The model's name in messages.

    Raises:
        ValueError: the file is not a weights file, or its shapes differ
            from the model's (the first layer that differs is named with
            both shapes).
    """
    path = os.fspath(path)
    what = what or repr(model.name)
    try:
        problem = misfit(model, path)
    except OSError as e:
        raise _unreadable(path, e) from None
    if problem:
        raise ValueError(
            f"Weights file {path!r} does not fit {what} (input "
            f"{model.input_shape[1:]}, output {model.output_shape[1:]}): "
            f"{problem}. Build the backbone with the name, input_shape, "
            f"include_top and n_classes the file was saved with.")
    try:
        model.load_weights(path)
    except (ValueError, KeyError, OSError) as e:
        first = " ".join(str(e).split())[:300]
        raise ValueError(f"Weights file {path!r} does not fit {what}: "
                         f"{first}") from None


def misfit(model, path):
    """The first layer whose weights in ``path`` differ from ``model``'s.

    Args:
        model: keras.Model.
        path: str. A file with one of ``SUFFIXES``.

    Returns:
        None when every shape fits, else one sentence naming the layer
        and giving the shapes in the model and in the file.

    Raises:
        OSError: the file is not HDF5 (or ``.keras`` not a zip with
            weights).
    """
    with _open(path) as f:
        if path.endswith((".weights.h5", ".keras")):
            return _by_class_names(model, f, "layers")
        return _by_order(model, f)


def fetch_failed(error):
    """True for the error of a download that could not be made."""
    import urllib.error

    # keras.utils.get_file raises a plain Exception when a fetch fails
    return (type(error) is Exception and "URL fetch failure" in str(error)
            or isinstance(error, (urllib.error.URLError, ConnectionError,
                                  TimeoutError)))


def offline_error(error, what):
    """The one-line ValueError for ImageNet weights not downloaded."""
    reason = " ".join(str(error).split())[:300]
    return ValueError(
        f"Could not download the ImageNet weights of {what}: {reason}. "
        f"Offline? Put the file in ~/.keras/models/, pass weights=PATH to "
        f"a local weights file, or weights=None for random weights.")


def _unreadable(path, error):
    return ValueError(
        f"Weights file {path!r} could not be read as a Keras weights file "
        f"({' '.join(str(error).split())[:200]}). Pass a file saved by "
        f"model.save_weights or published by keras.applications.")


@contextlib.contextmanager
def _open(path):
    import h5py

    if path.endswith(".keras"):
        try:
            with zipfile.ZipFile(path) as z:
                data = z.read("model.weights.h5")
        except (zipfile.BadZipFile, KeyError) as e:
            raise OSError(f"not a .keras archive with weights ({e})") from None
        with h5py.File(io.BytesIO(data), "r") as f:
            yield f
    else:
        with h5py.File(path, "r") as f:
            yield f


def _by_class_names(model, f, prefix):
    used = {}
    for layer in model.layers:
        key = _unique(_snake(type(layer).__name__), used)
        where = f"{prefix}/{key}"
        if isinstance(layer, keras.Model):  # a nested Sequential/Functional
            found = _by_class_names(layer, f, f"{where}/layers")
            if found:
                return found
            continue
        mine = _shapes(layer.weights)
        group = f.get(where)
        if group is None:
            if mine:
                return _sentence(layer.name, mine, None)
            continue
        if set(group.keys()) - {"vars"}:
            continue  # sublayers of its own: model.load_weights checks them
        stored = group.get("vars")
        theirs = [tuple(stored[str(i)].shape) for i in range(len(stored))] \
            if stored is not None else []
        if mine != theirs:
            return _sentence(layer.name, mine, theirs)
    return None


def _by_order(model, f):
    if "layer_names" not in f.attrs and "model_weights" in f:
        f = f["model_weights"]
    saved = []
    for name in _attribute(f, "layer_names"):
        weights = _attribute(f[name], "weight_names")
        if weights:
            saved.append((name, [tuple(f[name][w].shape) for w in weights]))
    layers = [layer for layer in model.layers if layer.weights]
    for layer, (name, theirs) in zip(layers, saved):
        mine = _shapes(layer.trainable_weights + layer.non_trainable_weights)
        if mine != theirs:
            return _sentence(layer.name, mine, theirs, f"its layer {name!r}")
    if len(layers) > len(saved):
        layer = layers[len(saved)]
        return _sentence(layer.name, _shapes(layer.weights), None,
                         f"{len(saved)} layers with weights; the model has "
                         f"{len(layers)}")
    if len(saved) > len(layers):
        name, theirs = saved[len(layers)]
        return (f"the file has {len(saved)} layers with weights and the "
                f"model {len(layers)}; the file's layer {name!r} (shapes "
                f"{_list(theirs)}) has no counterpart in the model")
    return None


def _attribute(group, name):
    """An HDF5 list attribute, also when stored in chunks (name0, name1)."""
    if name in group.attrs:
        values = list(group.attrs[name])
    else:
        values, k = [], 0
        while f"{name}{k}" in group.attrs:
            values.extend(group.attrs[f"{name}{k}"])
            k += 1
    return [v.decode("utf8") if hasattr(v, "decode") else str(v)
            for v in values]


def _shapes(variables):
    return [tuple(int(d) for d in v.shape) for v in variables]


def _list(shapes):
    return ", ".join(str(s) for s in shapes) or "none"


def _sentence(layer, mine, theirs, where=None):
    """``layer 'x' has weights of shape A in the model and B in the file``."""
    in_file = "none" if theirs is None else _list(theirs)
    where = f" ({where})" if where else ""
    return (f"layer {layer!r} has weights of shape {_list(mine)} in the "
            f"model and {in_file} in the file{where}")


def _snake(name):
    # the rule Keras uses to name a layer's entry in a weights file
    name = re.sub(r"\W+", "", name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()


def _unique(name, used):
    if name in used:
        used[name] += 1
        return f"{name}_{used[name]}"
    used[name] = 0
    return name
