"""The course's image augmentation as Keras layers that stay cheap on a GPU.

``RandomAffine`` draws one rotation, shift, shear, zoom and flip per image,
composes them into one 2x3 matrix and resamples the whole batch with a
single bilinear gather, all in ``keras.ops`` so that the training step
stays compiled. (Keras' own RandomRotation, RandomTranslation, RandomZoom
and RandomShear set ``supports_jit = False``, which turns off XLA for the
whole model: under JAX every step then runs op by op.) ``ChannelShift``
adds the course's random channel shift, which Keras lacks.

Points targets (landmarks) cannot pass through a layer inside the model
during ``fit``, so for them the augmentation runs in the data pipeline:
``ImageBatches(..., points=True, augment=RandomAffine(...))`` draws the
uniforms, warps each batch with ``RandomAffine.transform`` and moves the
points with ``RandomAffine.transform_points``, the inverse of the same
matrix (``transform_with(layer, images, rng, points=...)``).
"""

import math

import keras
import numpy as np
from keras import ops

__all__ = ["ArrayAugment", "ChannelShift", "PRESETS", "RandomAffine",
           "augmentation", "kind_layer", "scan_augmentation"]

# rotation 15, height shift 0.05, shear 0.1, channel shift 20, width shift
# 0.1: the combination the course's State Farm notebook settled on.
PRESETS = {
    "statefarm": {"rotation": 15, "height_shift": 0.05, "shear": 0.1,
                  "channel_shift": 20, "width_shift": 0.1},
    "light": {"rotation": 10, "width_shift": 0.1, "height_shift": 0.1,
              "zoom": 0.1},
    "dogscats": {"rotation": 10, "width_shift": 0.1, "height_shift": 0.1,
                 "shear": 0.15, "zoom": 0.1, "horizontal_flip": True},
}
KINDS = ("rotation", "width_shift", "height_shift", "shear", "zoom",
         "channel_shift", "horizontal_flip", "vertical_flip")
_FILL = ("nearest", "constant")


@keras.saving.register_keras_serializable(package="kerasdl")
class RandomAffine(keras.layers.Layer):
    """Random rotation, shift, shear, zoom and flips in one bilinear warp.

    The ranges follow the course's ``ImageDataGenerator``: each image gets
    an angle uniform in ``[-rotation, rotation]`` degrees, shifts uniform in
    ``[-width_shift, width_shift]`` of the width (and likewise the height),
    a shear angle uniform in ``[-shear, shear]`` radians, independent zooms
    in ``[1 - zoom, 1 + zoom]`` along each axis and, if enabled, a flip with
    probability one half. Only active with ``training=True`` (the default
    when called directly); otherwise the input passes through. Output is
    float32 in the input's value range, shape unchanged.

    Example:

    >>> import numpy as np
    >>> layer = RandomAffine(rotation=15, width_shift=0.1, seed=0)
    >>> out = np.asarray(layer(np.zeros((2, 8, 8, 3), "uint8")))
    >>> out.shape, out.dtype.name
    ((2, 8, 8, 3), 'float32')

    Args:
        rotation: float. Degrees. Defaults to 0.
        width_shift: float. Fraction of the width. Defaults to 0.
        height_shift: float. Fraction of the height. Defaults to 0.
        shear: float. Radians. Defaults to 0.
        zoom: float. In ``[0, 1)``. Defaults to 0.
        horizontal_flip: bool. Defaults to ``False``.
        vertical_flip: bool. Defaults to ``False``.
        fill_mode: ``"nearest"`` (repeat the edge, the course's default) or
            ``"constant"`` (``fill_value``). Defaults to ``"nearest"``.
        fill_value: float. Defaults to 0.
        seed: int or None.
        **kwargs: passed to ``keras.layers.Layer``.
    """

    n_uniforms = 8

    def __init__(self, rotation=0.0, width_shift=0.0, height_shift=0.0,
                 shear=0.0, zoom=0.0, horizontal_flip=False,
                 vertical_flip=False, fill_mode="nearest", fill_value=0.0,
                 seed=None, **kwargs):
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)
        for name, value, top in (("rotation", rotation, 360),
                                 ("width_shift", width_shift, 1),
                                 ("height_shift", height_shift, 1),
                                 ("shear", shear, math.pi / 2),
                                 ("zoom", zoom, 1)):
            if not 0 <= float(value) < top:
                raise ValueError(f"`{name}` must be in [0, {top:g}). "
                                 f"Received: {name}={value!r}.")
        if fill_mode not in _FILL:
            raise ValueError(f"`fill_mode` must be one of {_FILL}. "
                             f"Received: fill_mode={fill_mode!r}.")
        self.rotation, self.width_shift = float(rotation), float(width_shift)
        self.height_shift, self.shear = float(height_shift), float(shear)
        self.zoom = float(zoom)
        self.horizontal_flip = bool(horizontal_flip)
        self.vertical_flip = bool(vertical_flip)
        self.fill_mode, self.fill_value = fill_mode, float(fill_value)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, inputs, training=True):
        x = ops.cast(inputs, self.compute_dtype)
        if not training:
            return x
        u = keras.random.uniform((ops.shape(x)[0], self.n_uniforms),
                                 seed=self.seed_generator)
        return self.transform(x, u)

    def transform(self, images, uniforms):
        """Warps ``images`` (B, H, W, C) with parameters drawn from
        ``uniforms`` (B, 8), numbers in [0, 1): the deterministic core."""
        x = ops.cast(images, self.compute_dtype)
        _, h, w, c = x.shape
        m00, m01, m10, m11, tx, ty = self._matrix(uniforms, h, w)
        xc = ops.reshape(ops.arange(w, dtype="float32") - (w - 1) / 2,
                         (1, 1, w))
        yc = ops.reshape(ops.arange(h, dtype="float32") - (h - 1) / 2,
                         (1, h, 1))

        def col(v):
            return ops.reshape(v, (-1, 1, 1))

        sx = col(m00) * xc + col(m01) * yc + col(tx) + (w - 1) / 2
        sy = col(m10) * xc + col(m11) * yc + col(ty) + (h - 1) / 2
        return _bilinear(x, sx, sy, self.fill_mode, self.fill_value)

    def transform_points(self, points, uniforms, image_size):
        """Moves points with the warp ``transform(images, uniforms)`` makes.

        Points are ``(x, y)`` pairs scaled to [-1, 1] over the image's
        edges (``-1`` the left or top edge of the first pixel, ``1`` the
        right or bottom edge of the last; the centre of pixel column ``j``
        of a ``w``-wide image is at ``(2 * j + 1) / w - 1``). A feature
        drawn at a point is found at the returned point in the warped
        image: the inverse of the sampling matrix is applied exactly, so
        a horizontal flip negates ``x``. Points may land outside [-1, 1]
        when the warp moves them out of the image; they are returned as
        they are (``transform_with`` redraws such augmentations).

        Example:

        >>> import numpy as np
        >>> u = np.full((1, 8), 0.5, "float32")
        >>> u[0, 6] = 0.0  # flip
        >>> layer = RandomAffine(horizontal_flip=True)
        >>> np.asarray(layer.transform_points([[0.5, -0.25]], u, (8, 8)))
        array([[-0.5 , -0.25]], dtype=float32)

        Args:
            points: array ``(B, 2k)``: ``x0, y0, x1, y1, ...`` per image
                (or ``(B, k, 2)``).
            uniforms: array ``(B, 8)``: the numbers given to ``transform``.
            image_size: tuple ``(height, width)`` of the warped images.

        Returns:
            float32 tensor of the shape of ``points``.
        """
        p = ops.cast(ops.convert_to_tensor(points), "float32")
        shape = ops.shape(p)
        h, w = (int(v) for v in image_size)
        m00, m01, m10, m11, tx, ty = self._matrix(uniforms, h, w)
        pairs = ops.reshape(p, (shape[0], -1, 2))

        def col(v):
            return ops.reshape(v, (-1, 1))

        # source - centre = M @ (output - centre) + t, in pixels
        dx = pairs[..., 0] * (w / 2) - col(tx)
        dy = pairs[..., 1] * (h / 2) - col(ty)
        det = col(m00 * m11 - m01 * m10)
        ox = (col(m11) * dx - col(m01) * dy) / det
        oy = (col(m00) * dy - col(m10) * dx) / det
        return ops.reshape(ops.stack([ox / (w / 2), oy / (h / 2)], axis=-1),
                           shape)

    def _matrix(self, uniforms, h, w):
        """The sampling matrix and shift (in pixels) of each image."""
        u = ops.cast(ops.convert_to_tensor(uniforms), "float32")
        sym = 2.0 * u - 1.0
        angle = sym[:, 0] * (self.rotation * math.pi / 180.0)
        shear = sym[:, 3] * self.shear
        zx, zy = 1.0 + sym[:, 4] * self.zoom, 1.0 + sym[:, 5] * self.zoom
        fx = ops.where(u[:, 6] < 0.5, -1.0, 1.0) if self.horizontal_flip \
            else ops.ones_like(zx)
        fy = ops.where(u[:, 7] < 0.5, -1.0, 1.0) if self.vertical_flip \
            else ops.ones_like(zy)
        cos, sin = ops.cos(angle), ops.sin(angle)
        # source = R(angle) @ Shear @ Zoom @ Flip @ (p - centre) + centre + t
        m00 = cos * zx * fx
        m01 = (-cos * ops.sin(shear) - sin * ops.cos(shear)) * zy * fy
        m10 = sin * zx * fx
        m11 = (-sin * ops.sin(shear) + cos * ops.cos(shear)) * zy * fy
        tx = sym[:, 1] * (self.width_shift * w)
        ty = sym[:, 2] * (self.height_shift * h)
        return m00, m01, m10, m11, tx, ty

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update({k: getattr(self, k) for k in (
            "rotation", "width_shift", "height_shift", "shear", "zoom",
            "horizontal_flip", "vertical_flip", "fill_mode", "fill_value",
            "seed")})
        return config


def _bilinear(x, sx, sy, fill_mode, fill_value):
    """Samples x (B, H, W, C) at float source coordinates (B, H, W) with
    one gather of the four neighbours of every output pixel."""
    b, h, w, c = ops.shape(x)[0], x.shape[1], x.shape[2], x.shape[3]
    if fill_mode == "nearest":
        sx, sy = ops.clip(sx, 0.0, w - 1.0), ops.clip(sy, 0.0, h - 1.0)
    x0, y0 = ops.floor(sx), ops.floor(sy)
    wx, wy = sx - x0, sy - y0
    xs = ops.stack([x0, x0 + 1, x0, x0 + 1], axis=1)  # (B, 4, H, W)
    ys = ops.stack([y0, y0, y0 + 1, y0 + 1], axis=1)
    weights = ops.stack([(1 - wx) * (1 - wy), wx * (1 - wy),
                         (1 - wx) * wy, wx * wy], axis=1)
    inside = (xs >= 0) & (xs <= w - 1) & (ys >= 0) & (ys <= h - 1)
    xi = ops.cast(ops.clip(xs, 0, w - 1), "int32")
    yi = ops.cast(ops.clip(ys, 0, h - 1), "int32")
    index = ops.reshape(yi * w + xi, (b, 4 * h * w, 1))
    flat = ops.reshape(x, (b, h * w, c))
    values = ops.take_along_axis(
        flat, ops.broadcast_to(index, (b, 4 * h * w, c)), axis=1)
    values = ops.reshape(values, (b, 4, h, w, c))
    if fill_mode == "constant":
        values = ops.where(inside[..., None], values,
                           ops.cast(fill_value, values.dtype))
    return ops.sum(values * weights[..., None], axis=1)


@keras.saving.register_keras_serializable(package="kerasdl")
class ChannelShift(keras.layers.Layer):
    """Adds one random intensity in ``[-intensity, intensity]`` to every
    channel of an image, clipped to the image's own range (the course's
    ``channel_shift_range``).

    Example:

    >>> import numpy as np
    >>> x = np.full((1, 2, 2, 3), 100.0, "float32")
    >>> out = ChannelShift(20, seed=1)(x)
    >>> bool(np.all(np.asarray(out) == 100.0))  # clipped to [100, 100]
    True

    Args:
        intensity: float. Largest shift, in pixel units (0-255 images).
        seed: int or None.
        **kwargs: passed to ``keras.layers.Layer``.
    """

    n_uniforms = 1

    def __init__(self, intensity, seed=None, **kwargs):
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)
        if not float(intensity) >= 0:
            raise ValueError(f"`intensity` must be >= 0. Received: "
                             f"intensity={intensity!r}.")
        self.intensity = float(intensity)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, inputs, training=True):
        x = ops.cast(inputs, self.compute_dtype)
        if not training:
            return x
        u = keras.random.uniform((ops.shape(x)[0], 1),
                                 seed=self.seed_generator)
        return self.transform(x, u)

    def transform(self, images, uniforms):
        """Shifts ``images`` by ``(2 * uniforms - 1) * intensity``."""
        x = ops.cast(images, self.compute_dtype)
        shift = ops.reshape((2.0 * ops.cast(uniforms, x.dtype) - 1.0)
                            * self.intensity, (-1, 1, 1, 1))
        lo = ops.min(x, axis=(1, 2, 3), keepdims=True)
        hi = ops.max(x, axis=(1, 2, 3), keepdims=True)
        return ops.clip(x + shift, lo, hi)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update({"intensity": self.intensity, "seed": self.seed})
        return config


def augmentation(preset=None, *, seed=None, **overrides):
    """The course's augmentation as a ``keras.Sequential`` of layers.

    Example:

    >>> aug = augmentation("statefarm", seed=0)
    >>> [type(layer).__name__ for layer in aug.layers]
    ['RandomAffine', 'ChannelShift']

    Args:
        preset: str or None. A key of ``PRESETS`` (``"statefarm"``,
            ``"light"``, ``"dogscats"``); ``None`` starts from nothing.
        seed: int or None.
        **overrides: any ``RandomAffine`` argument, or ``channel_shift``.

    Returns:
        A ``keras.Sequential`` (a ``RandomAffine``, plus a ``ChannelShift``
        when ``channel_shift`` is set).

    Raises:
        ValueError: an unknown preset or argument.
    """
    if preset is not None and preset not in PRESETS:
        raise ValueError(f"Unknown augmentation preset {preset!r}. Choose "
                         f"one of {sorted(PRESETS)}.")
    settings = dict(PRESETS.get(preset, {}), **overrides)
    shift = settings.pop("channel_shift", 0)
    unknown = sorted(set(settings) - set(KINDS) - {"fill_mode",
                                                   "fill_value"})
    if unknown:
        raise ValueError(f"Unknown augmentation arguments {unknown}. Known: "
                         f"{list(KINDS) + ['fill_mode', 'fill_value']}.")
    layers = [RandomAffine(seed=seed, **settings)]
    if shift:
        layers.append(ChannelShift(shift, seed=None if seed is None
                                   else seed + 1))
    return keras.Sequential(layers, name=f"augment_{preset or 'custom'}")


def kind_layer(kind, level, seed=None):
    """One augmentation kind at one level, e.g. ``("rotation", 15)``."""
    if kind not in KINDS:
        raise ValueError(f"Unknown augmentation kind {kind!r}. Choose one "
                         f"of {list(KINDS)}.")
    if kind == "channel_shift":
        return ChannelShift(level, seed=seed)
    return RandomAffine(seed=seed, **{kind: level})


def transform_with(layer, images, rng, *, points=None, tries=8):
    """Applies ``layer`` (a RandomAffine, ChannelShift or a Sequential of
    them) with uniforms drawn from the numpy Generator ``rng``.

    With ``points`` (targets ``(B, 2k)``: ``x, y`` pairs in [-1, 1], see
    ``RandomAffine.transform_points``) every ``RandomAffine`` moves the
    points with the matrix it warps the image with. An image whose points
    would leave the image (beyond [-1, 1]) gets its warp drawn again, up
    to ``tries`` times; if every draw moves a point out, that image is
    left unwarped by that layer. So the targets stay inside the image,
    where a ``y_range=(-1, 1)`` output can reach them.

    Example:

    >>> import numpy as np
    >>> layer = RandomAffine(horizontal_flip=True, width_shift=0.2)
    >>> x = np.zeros((2, 8, 8, 3), "float32")
    >>> out, moved = transform_with(layer, x, np.random.default_rng(0),
    ...                             points=np.zeros((2, 2), "float32"))
    >>> tuple(out.shape), moved.shape, bool(np.abs(moved).max() <= 1)
    ((2, 8, 8, 3), (2, 2), True)

    Args:
        layer: RandomAffine, ChannelShift or a ``keras.Sequential`` of
            them.
        images: array ``(B, H, W, C)``.
        rng: numpy.random.Generator.
        points: array ``(B, 2k)`` or None.
        tries: int. Draws per image before its warp is left out.
            Defaults to 8.

    Returns:
        The warped images (a backend tensor) or, with ``points``,
        ``(images, points)`` with the points a float32 numpy array.

    Raises:
        TypeError: a layer without ``transform(images, uniforms)``.
    """
    parts = layer.layers if isinstance(layer, keras.Sequential) else [layer]
    x = images
    size = tuple(images.shape[1:3])
    p = None if points is None else np.array(points, np.float32)
    for part in parts:
        if not hasattr(part, "transform"):
            raise TypeError(
                f"Layer {part.name!r} ({type(part).__name__}) has no "
                f"transform(images, uniforms); use kerasdl's RandomAffine "
                f"and ChannelShift.")
        u = rng.random((images.shape[0], part.n_uniforms), np.float32)
        if p is not None and hasattr(part, "transform_points"):
            u, p = _points_inside(part, u, p, size, rng, tries)
        x = part.transform(x, u)
    return x if points is None else (x, p)


def _points_inside(layer, u, points, size, rng, tries):
    """Uniforms whose warp keeps every point of an image inside it (drawn
    again up to ``tries`` times, else the identity), and the moved
    points."""
    u = np.array(u, np.float32)
    moved = np.array(layer.transform_points(points, u, size), np.float32)
    for _ in range(int(tries)):
        out = ~np.all(np.abs(moved) <= 1 + 1e-6, axis=1)
        if not out.any():
            return u, moved
        u[out] = rng.random((int(out.sum()), u.shape[1]), np.float32)
        # the whole batch again (one shape: no new compilation under JAX)
        again = np.asarray(layer.transform_points(points, u, size))
        moved[out] = again[out]
    out = ~np.all(np.abs(moved) <= 1 + 1e-6, axis=1)
    u[out] = 0.5  # the identity: no rotation, shift, shear, zoom or flip
    moved[out] = points[out]
    return u, moved


class ArrayAugment:
    """Whole-pixel shifts, flips and cutout on numpy image batches.

    A callable ``augment(images, rng)`` for the data pipeline (for example
    one source of ``MixedBatches``), with every random draw taken from the
    numpy Generator ``rng``, so batches are reproducible and the compiled
    model is untouched. Each image is shifted by whole pixels, uniform in
    ``[-shift, shift]`` along each axis (``fill`` enters at the edges),
    flipped left-right with probability one half if ``horizontal_flip``,
    and then has a ``cutout`` x ``cutout`` square set to ``fill``, its
    centre uniform over the image (so it may be clipped by an edge). This
    is the "strong" view of consistency training (FixMatch's cutout).

    Example:

    >>> import numpy as np
    >>> aug = ArrayAugment(shift=2, cutout=3)
    >>> x = np.ones((4, 8, 8, 1), "float32")
    >>> out = aug(x, np.random.default_rng(0))
    >>> out.shape, out.dtype.name, bool((out == 0).any()), float(x.min())
    ((4, 8, 8, 1), 'float32', True, 1.0)

    Args:
        shift: int. Largest shift in pixels. Defaults to 0.
        horizontal_flip: bool. Defaults to ``False``.
        cutout: int. Side of the erased square in pixels; 0 for none.
            Defaults to 0.
        fill: float. Value of pixels shifted in and erased. Defaults to 0.

    Raises:
        ValueError: a negative shift or cutout.
    """

    def __init__(self, shift=0, horizontal_flip=False, cutout=0, fill=0.0):
        for name, value in (("shift", shift), ("cutout", cutout)):
            if int(value) != value or value < 0:
                raise ValueError(f"`{name}` must be a whole number of pixels "
                                 f">= 0. Received: {name}={value!r}.")
        self.shift, self.cutout = int(shift), int(cutout)
        self.horizontal_flip = bool(horizontal_flip)
        self.fill = float(fill)

    def __call__(self, images, rng):
        x = np.array(images, dtype="float32", copy=True)
        if x.ndim != 4:
            raise ValueError(f"ArrayAugment expects images (batch, height, "
                             f"width, channels); found shape {x.shape}.")
        n, h, w, _ = x.shape
        if self.shift:
            s = self.shift
            padded = np.pad(x, ((0, 0), (s, s), (s, s), (0, 0)),
                            constant_values=self.fill)
            dy, dx = rng.integers(0, 2 * s + 1, (2, n))
            for i in range(n):
                x[i] = padded[i, dy[i]:dy[i] + h, dx[i]:dx[i] + w]
        if self.horizontal_flip:
            flip = rng.random(n) < 0.5
            x[flip] = x[flip, :, ::-1]
        if self.cutout:
            cy, cx = rng.integers(0, h, n), rng.integers(0, w, n)
            half = self.cutout // 2
            for i in range(n):
                y0, x0 = max(cy[i] - half, 0), max(cx[i] - half, 0)
                x[i, y0:cy[i] - half + self.cutout,
                  x0:cx[i] - half + self.cutout] = self.fill
        return x

    def __repr__(self):
        return (f"ArrayAugment(shift={self.shift}, horizontal_flip="
                f"{self.horizontal_flip}, cutout={self.cutout}, "
                f"fill={self.fill:g})")


def scan_augmentation(make_model, kind, levels, train, valid, *, epochs=2,
                      batch_size=64, seed=0, monitor="val_accuracy",
                      verbose=0):
    """Trains one model per level of one augmentation kind; reports the best.

    The course's process: on a sample, try each kind at a few levels with
    everything else fixed, keep the best level of each, then combine.

    Example:

    >>> import numpy as np, keras
    >>> def make(aug):
    ...     m = keras.Sequential([keras.Input((8, 8, 3)), aug,
    ...                           keras.layers.Flatten(),
    ...                           keras.layers.Dense(2, "softmax")])
    ...     m.compile("adam", "sparse_categorical_crossentropy",
    ...               metrics=["accuracy"])
    ...     return m
    >>> x, y = np.zeros((8, 8, 8, 3)), np.arange(8) % 2
    >>> r = scan_augmentation(make, "rotation", [10], (x, y), (x, y),
    ...                       epochs=1, batch_size=8)
    >>> r["kind"], list(r["scores"]), r["best"]
    ('rotation', [10], 10)

    Args:
        make_model: callable. ``make_model(augmentation_layer)`` returns a
            compiled model that applies the layer to its input.
        kind: str. One of ``KINDS``.
        levels: list of numbers. Levels to try.
        train: ``(x, y)`` or a dataset accepted by ``model.fit``.
        valid: ``(x, y)`` or a dataset.
        epochs: int. Defaults to 2.
        batch_size: int. Used for array data. Defaults to 64.
        seed: int. Seeds weights and augmentation alike for every level.
        monitor: str. A ``fit`` history key; higher is better unless it
            contains ``"loss"``. Defaults to ``"val_accuracy"``.
        verbose: int. Passed to ``fit``.

    Returns:
        A dict: ``kind``, ``scores`` ``{level: last-epoch value}``, ``best``
        (level) and ``monitor``.
    """
    scores = {}
    for level in levels:
        keras.utils.set_random_seed(seed)
        model = make_model(kind_layer(kind, level, seed=seed))
        fit_args = {"epochs": epochs, "verbose": verbose}
        if isinstance(train, tuple):
            fit_args.update(x=train[0], y=train[1], batch_size=batch_size)
        else:
            fit_args["x"] = train
        history = model.fit(validation_data=valid, **fit_args).history
        if monitor not in history:
            raise ValueError(f"`monitor`={monitor!r} is not in the fit "
                             f"history {sorted(history)}. Compile with that "
                             f"metric or pick another key.")
        scores[level] = float(history[monitor][-1])
    pick = min if "loss" in monitor else max
    best = pick(scores, key=scores.get)
    return {"kind": kind, "scores": scores, "best": best, "monitor": monitor}
