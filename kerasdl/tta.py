"""Test-time augmentation: predictions averaged over augmented copies.

``tta(model, batches)`` predicts every image as it is (the clean
prediction) and in augmented views, then mixes them with fastai's
weight ``beta``::

    probs = (1 - beta) * clean + beta * mean(augmented views)

The views are deterministic: the mirror image (``flip=True``) and, with
``augment``, ``n`` passes of that augmentation whose random numbers
depend only on ``(seed, pass, batch index)``. So the same call gives the
same numbers again, on every backend.

Note on ``beta``: fastai's own code mixes the other way round
(``torch.lerp(augmented, clean, beta)``, weight ``beta`` on the clean
prediction); here ``beta`` is the weight of the augmented views, so
``beta=0`` is exactly ``model.predict`` and fastai's ``beta=0.25``
corresponds to ``beta=0.75`` here.
"""

import sys
import types

import numpy as np

from kerasdl import _validate

__all__ = ["tta"]


def tta(model, batches, n=4, flip=True, augment=None, beta=0.25, *,
        seed=0, batch_size=32, return_targets=False, verbose=0):
    """Predictions with test-time augmentation.

    For each batch, the model predicts the images as they are (``clean``)
    and a set of augmented views; the result is ``(1 - beta) * clean +
    beta * mean(views)``. The views:

    - ``augment=None``: the mirror image (left-right) of every image.
      There is one such view, so ``n`` does not apply.
    - ``augment`` given: ``n`` passes of it, pass ``i`` drawing its random
      numbers from ``(seed, i, batch index)``; with ``flip`` the odd
      passes are also mirrored, so half the views face the other way.

    Example:

    >>> import keras, numpy as np
    >>> model = keras.Sequential([
    ...     keras.Input((8, 8, 3)), keras.layers.Flatten(),
    ...     keras.layers.Dense(2, activation="softmax")])
    >>> x = np.random.default_rng(0).uniform(0, 255, (5, 8, 8, 3))
    >>> clean = model.predict(x, verbose=0)
    >>> mirror = model.predict(x[:, :, ::-1], verbose=0)
    >>> probs = tta(model, x, beta=0.25)
    >>> bool(np.allclose(probs, 0.75 * clean + 0.25 * mirror, atol=1e-6))
    True
    >>> bool(np.array_equal(tta(model, x, beta=0.0), clean))
    True

    Args:
        model: keras.Model. One image input ``(height, width, channels)``
            and one output (probabilities, or regression values).
        batches: ``ImageBatches`` (the validation batches: without their
            own ``augment``), any ``keras.utils.PyDataset`` giving images
            or ``(images, targets)``, an array of images, or a tuple
            ``(images, targets)`` of arrays.
        n: int. Augmented passes when ``augment`` is given. Defaults to 4.
        flip: bool. Use mirror images. Defaults to ``True``.
        augment: None, a preset name of ``kerasdl.augmentation``
            (``"light"``, ``"dogscats"``, ``"statefarm"``), or a kerasdl
            ``RandomAffine``, ``ChannelShift`` or ``keras.Sequential`` of
            them. Defaults to None.
        beta: float in [0, 1]. Weight of the augmented views. Defaults to
            0.25.
        seed: int. Seed of the augmented passes. Defaults to 0.
        batch_size: int. For arrays. Defaults to 32.
        return_targets: bool. Also return the targets. Defaults to
            ``False``.
        verbose: int. 1 shows a progress bar. Defaults to 0.

    Returns:
        float32 array ``(examples, outputs)``; with ``return_targets``,
        ``(probs, targets)`` (``targets`` None when the batches have
        none).

    Raises:
        TypeError: arguments of the wrong type, an ``augment`` that is not
            a kerasdl augmentation.
        ValueError: ``flip=False`` without ``augment`` (nothing to
            augment), ``beta`` outside [0, 1], batches that carry their
            own augmentation, inputs that are not batches of images.
    """
    import keras

    if not isinstance(model, keras.Model):
        raise TypeError(f"`model` must be a keras.Model. Received: "
                        f"{type(model).__name__}.")
    options = Options(n=n, flip=flip, augment=augment, beta=beta,
                      seed=seed)
    batch_size = _validate.integer(batch_size, "batch_size", low=1)
    verbose = _validate.integer(verbose, "verbose", low=0, high=2)
    if not isinstance(return_targets, bool):
        raise TypeError(f"`return_targets` must be True or False. "
                        f"Received: return_targets={return_targets!r}.")
    source = _source(batches, batch_size)
    bar = keras.utils.Progbar(len(source)) if verbose else None
    outs, ys = [], []
    for index in range(len(source)):
        x, y = source[index]
        outs.append(predict_batch(model, x, options, index))
        ys.append(y)
        if bar is not None:
            bar.update(index + 1)
    probs = np.concatenate(outs) if outs else np.zeros((0, 0), np.float32)
    if not return_targets:
        return probs
    targets = None if any(y is None for y in ys) or not ys else \
        np.concatenate(ys)
    return probs, targets


class Options:
    """The checked settings of ``tta`` (shared with ``predict_files``).

    Raises:
        TypeError, ValueError: as ``tta``.
    """

    def __init__(self, n=4, flip=True, augment=None, beta=0.25, seed=0):
        self.n = _validate.integer(n, "n", low=1)
        if not isinstance(flip, bool):
            raise TypeError(f"`flip` must be True or False. Received: "
                            f"flip={flip!r}.")
        self.flip = flip
        self.augment = _augment_layer(augment, seed)
        if not flip and self.augment is None:
            raise ValueError(
                "tta has nothing to augment with flip=False and "
                "augment=None. Pass flip=True (mirror images), or augment= "
                "such as 'light' or kerasdl.augmentation(rotation=10).")
        self.beta = _validate.fraction(
            beta, "beta", closed=True,
            hint="It is the weight of the augmented predictions; fastai's "
                 "default mix is 0.25.")
        self.seed = _validate.integer(seed, "seed", low=0)

    def views(self, x, index):
        """The augmented copies of the image batch ``x`` (batch
        ``index``), in the dtype of ``x``."""
        if self.augment is None:
            return [mirror(x)]
        from kerasdl.data.augment import transform_with

        out = []
        for i in range(self.n):
            rng = np.random.default_rng([self.seed, i, index])
            view = transform_with(self.augment, x.astype(np.float32), rng)
            view = _like(np.asarray(_to_numpy(view)), x.dtype)
            out.append(mirror(view) if self.flip and i % 2 else view)
        return out


def mirror(images):
    """Images ``(batch, height, width, channels)`` mirrored left-right."""
    return np.ascontiguousarray(images[:, :, ::-1])


def predict_batch(model, x, options, index=0):
    """``(1 - beta) * clean + beta * mean(views)`` for one image batch.

    Args:
        model: keras.Model.
        x: numpy array ``(batch, height, width, channels)``.
        options: ``Options``.
        index: int. The batch's index (seeds its augmented passes).

    Returns:
        float32 numpy array ``(batch, outputs)``.
    """
    x = np.asarray(x)
    if x.ndim != 4:
        raise ValueError(
            f"tta augments batches of images (batch, height, width, "
            f"channels); received an input of shape {x.shape}.")
    clean = _predict(model, x)
    if not len(x):
        return clean.astype(np.float32)
    views = options.views(x, index)
    total = np.zeros(clean.shape, np.float64)
    for view in views:
        total += _predict(model, view)
    mixed = (1.0 - options.beta) * clean.astype(np.float64) + \
        options.beta * (total / len(views))
    return mixed.astype(np.float32)


def _predict(model, x):
    out = model.predict_on_batch(x)
    if isinstance(out, (list, tuple, dict)):
        raise ValueError(f"tta needs a model with one output; "
                         f"{model.name!r} has {len(out)}.")
    return np.asarray(out)


def _to_numpy(tensor):
    import keras

    return keras.ops.convert_to_numpy(tensor)


def _like(view, dtype):
    """An augmented float view back in the images' dtype (integer images
    are rounded and clipped, as ``ImageBatches`` does)."""
    if np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        return np.clip(np.rint(view), info.min, info.max).astype(dtype)
    return view.astype(dtype, copy=False)


def _augment_layer(augment, seed):
    if augment is None:
        return None
    if isinstance(augment, str):
        from kerasdl.data.augment import PRESETS
        from kerasdl.data.augment import augmentation

        _validate.choice(augment, "augment", tuple(PRESETS),
                         hint="Or pass a kerasdl RandomAffine.")
        return augmentation(augment, seed=seed)
    from kerasdl.data.images import _check_augment

    return _check_augment(augment)


class _Arrays:
    def __init__(self, x, y, batch_size):
        self.x, self.y, self.batch_size = x, y, batch_size

    def __len__(self):
        return -(-len(self.x) // self.batch_size)

    def __getitem__(self, i):
        part = slice(i * self.batch_size, (i + 1) * self.batch_size)
        return self.x[part], None if self.y is None else self.y[part]


class _Batches:
    def __init__(self, batches):
        self.batches = batches

    def __len__(self):
        return len(self.batches)

    def __getitem__(self, i):
        item = self.batches[i]
        if isinstance(item, tuple):
            return np.asarray(item[0]), (None if len(item) < 2 or
                                         item[1] is None
                                         else np.asarray(item[1]))
        return np.asarray(item), None


def _source(batches, batch_size):
    if isinstance(batches, np.ndarray):
        return _Arrays(batches, None, batch_size)
    if isinstance(batches, tuple):
        if len(batches) not in (1, 2):
            raise ValueError(f"`batches` as a tuple must be (images, "
                             f"targets); received {len(batches)} items.")
        x = np.asarray(batches[0])
        y = None if len(batches) < 2 or batches[1] is None else \
            np.asarray(batches[1])
        if y is not None:
            _validate.same_length("images", x, "targets", y)
        return _Arrays(x, y, batch_size)
    if not (hasattr(batches, "__getitem__") and hasattr(batches, "__len__")):
        raise TypeError(
            f"`batches` must be ImageBatches, a keras.utils.PyDataset, an "
            f"array of images or a tuple (images, targets). Received: "
            f"{type(batches).__name__}.")
    if getattr(batches, "augment", None) is not None:
        raise ValueError(
            "These batches augment their images (they carry `augment`, like "
            "training batches), so the 'clean' predictions would not be "
            "clean. Pass the validation batches, which have no augment.")
    return _Batches(batches)


class _CallableModule(types.ModuleType):
    """This module, callable as ``tta``.

    ``kerasdl.tta`` is read from the package's lazy table (the function),
    but when this module is imported first (``from kerasdl.tta import
    ...``) the import system makes ``kerasdl.tta`` the module. Calling the
    module therefore calls the function, so ``kerasdl.tta(model,
    batches)`` works either way.
    """

    def __call__(self, *args, **kwargs):
        return tta(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
