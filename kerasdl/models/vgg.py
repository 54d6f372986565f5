"""VGG16 and VGG16-BN with preprocessing inside the model.

The layers are named as in ``keras.applications.VGG16`` (``block1_conv1``
... ``block5_pool``, ``fc1``, ``fc2``, ``predictions``) so that the ImageNet
weights Keras publishes load into them. As in the course, each 4096-unit
Dense is followed by Dropout(0.5); ``vgg16_bn`` adds a BatchNormalization
between each of them and its Dropout.
"""

import os

import keras
from keras import layers
from keras import ops

from kerasdl.models import _checks

IMAGENET_MEAN_RGB = (123.68, 116.779, 103.939)

_WEIGHTS_URL = (
    "https://storage.googleapis.com/tensorflow/keras-applications/vgg16/"
)
_WEIGHTS = {
    True: ("vgg16_weights_tf_dim_ordering_tf_kernels.h5",
           "64373286793e3c8b2b4e3219cbf3544b"),
    False: ("vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5",
            "6d6bbae143d832006294945121d1f1fc"),
}
_BLOCKS = ((64, 2), (128, 2), (256, 3), (512, 3), (512, 3))


@keras.saving.register_keras_serializable(package="kerasdl")
class VGGPreprocess(layers.Layer):
    """VGG16's input preprocessing as a layer: RGB to BGR, minus the mean.

    Takes RGB pixels in [0, 255] (any numeric dtype, uint8 included) and
    returns BGR values with the ImageNet mean subtracted, exactly what the
    original VGG16 weights expect. Computes in float32 by default, even
    under a mixed-precision policy, so that no pixel value is rounded.

    Example:

    >>> import numpy as np
    >>> layer = VGGPreprocess()
    >>> out = layer(np.array([[[[123.68, 116.779, 103.939]]]]))
    >>> [round(float(v), 3) for v in np.asarray(out).ravel()]
    [0.0, 0.0, 0.0]

    Args:
        mean: tuple of 3 floats. Per-channel mean in RGB order.
            Defaults to ``(123.68, 116.779, 103.939)``.
        to_bgr: bool. Reverse the channel order after subtracting.
            Defaults to ``True``.
        **kwargs: passed to ``keras.layers.Layer``.
    """

    def __init__(self, mean=IMAGENET_MEAN_RGB, to_bgr=True, **kwargs):
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)
        mean = tuple(float(m) for m in mean)
        if len(mean) != 3:
            raise ValueError(
                f"`mean` must have 3 values (R, G, B). Received: mean={mean}."
            )
        self.mean = mean
        self.to_bgr = bool(to_bgr)

    def call(self, inputs):
        x = ops.cast(inputs, self.compute_dtype)
        x = x - ops.convert_to_tensor(self.mean, dtype=self.compute_dtype)
        if self.to_bgr:
            x = ops.flip(x, axis=-1)
        return x

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update({"mean": list(self.mean), "to_bgr": self.to_bgr})
        return config


def vgg16(input_shape=(224, 224, 3), n_classes=1000, *, weights=None,
          include_top=True, input_dtype="float32", name="vgg16"):
    """VGG16 with preprocessing built in (feed RGB pixels in [0, 255]).

    Example:

    >>> model = vgg16((32, 32, 3), 10, include_top=False)
    >>> model.output_shape
    (None, 1, 1, 512)

    Args:
        input_shape: tuple. ``(height, width, channels)``, at least 32x32.
            Defaults to ``(224, 224, 3)``.
        n_classes: int. Classes of the top layer. With ImageNet weights and
            a number other than 1000 the top is replaced by a new Dense
            (randomly initialised, trainable). Defaults to 1000.
        weights: ``None`` (random), ``"imagenet"`` (downloaded once by
            ``keras.utils.get_file`` and checked against Keras' published
            hash) or the path of a weights file (``.weights.h5`` saved by
            ``model.save_weights`` or a legacy ``.h5``).
        include_top: bool. Keep fc1, fc2 and the classifier.
            Defaults to ``True``.
        input_dtype: str. dtype of the Input; ``"uint8"`` keeps host to
            device transfers small. Defaults to ``"float32"``.
        name: str. Model name.

    Returns:
        A functional ``keras.Model``; 138,357,544 parameters at 224x224x3
        with the 1000-class top.

    Raises:
        ValueError: bad shape or class count, a weights file that does not
            fit, or ImageNet weights that cannot be downloaded.
    """
    return _vgg(input_shape, n_classes, weights=weights, bn=False,
                include_top=include_top, input_dtype=input_dtype, name=name)


def vgg16_bn(input_shape=(224, 224, 3), n_classes=1000, *, weights=None,
             include_top=True, input_dtype="float32", name="vgg16_bn"):
    """VGG16 with BatchNormalization after each 4096-unit Dense.

    fc1, BN, Dropout, fc2, BN, Dropout, predictions: the course's
    ``Vgg16BN``. With ``weights="imagenet"`` the published VGG16 weights
    are loaded into the matching layers and the BN layers start as the
    identity (gamma 1, beta 0, moving mean 0, moving variance 1).

    Example:

    >>> model = vgg16_bn((32, 32, 3), 10)
    >>> model.get_layer("fc1_bn").name
    'fc1_bn'

    Args:
        input_shape: tuple. Defaults to ``(224, 224, 3)``.
        n_classes: int. Defaults to 1000.
        weights: ``None``, ``"imagenet"`` or a path, as in ``vgg16``.
        include_top: bool. Defaults to ``True``.
        input_dtype: str. Defaults to ``"float32"``.
        name: str. Model name.

    Returns:
        A functional ``keras.Model``; 138,390,312 parameters at 224x224x3
        (16,384 non-trainable).
    """
    return _vgg(input_shape, n_classes, weights=weights, bn=True,
                include_top=include_top, input_dtype=input_dtype, name=name)


def _vgg(input_shape, n_classes, *, weights, bn, include_top, input_dtype,
         name):
    shape = _checks.input_shape(input_shape)
    n = _checks.n_classes(n_classes)
    if shape[-1] != 3:
        raise ValueError(
            f"VGG16 takes RGB images (3 channels). Received: "
            f"input_shape={shape}. Convert grayscale images to RGB first."
        )
    if min(shape[:2]) < 32:
        raise ValueError(
            f"VGG16 needs images of at least 32x32 pixels (five 2x2 "
            f"poolings). Received: input_shape={shape}."
        )
    if not (weights is None or weights == "imagenet"
            or isinstance(weights, (str, os.PathLike))):
        raise ValueError(
            f"`weights` must be None, 'imagenet' or the path of a weights "
            f"file. Received: weights={weights!r}."
        )
    if weights == "imagenet" and include_top and shape != (224, 224, 3):
        raise ValueError(
            f"ImageNet weights with the fully connected top need "
            f"input_shape=(224, 224, 3). Received: input_shape={shape}. "
            f"Pass include_top=False for other sizes."
        )
    top_classes = 1000 if weights == "imagenet" else n
    model = _build(shape, top_classes, bn=bn, include_top=include_top,
                   input_dtype=input_dtype, name=name)
    if weights == "imagenet":
        source = model
        if bn:
            source = _build(shape, 1000, bn=False, include_top=include_top,
                            input_dtype=input_dtype, name="vgg16_source")
        load_weights(source, _download_imagenet(include_top))
        if bn:
            _copy_by_name(source, model)
        if include_top and n != 1000:
            from kerasdl.models.surgery import replace_head

            model = replace_head(model, n, freeze=False)
    elif weights is not None:
        load_weights(model, weights)
    return model


def _build(shape, n, *, bn, include_top, input_dtype, name):
    inputs = keras.Input(shape, dtype=input_dtype, name="image")
    x = VGGPreprocess(name="preprocess")(inputs)
    for b, (filters, convs) in enumerate(_BLOCKS, start=1):
        for c in range(1, convs + 1):
            x = layers.Conv2D(filters, 3, padding="same", activation="relu",
                              name=f"block{b}_conv{c}")(x)
        x = layers.MaxPooling2D(2, strides=2, name=f"block{b}_pool")(x)
    if include_top:
        x = layers.Flatten(name="flatten")(x)
        for fc in ("fc1", "fc2"):
            x = layers.Dense(4096, activation="relu", name=fc)(x)
            if bn:
                x = layers.BatchNormalization(name=f"{fc}_bn")(x)
            x = layers.Dropout(0.5, name=f"{fc}_dropout")(x)
        x = layers.Dense(n, activation="softmax", name="predictions")(x)
    return keras.Model(inputs, x, name=name)


def _download_imagenet(include_top):
    fname, file_hash = _WEIGHTS[include_top]
    try:
        return keras.utils.get_file(
            fname, _WEIGHTS_URL + fname, cache_subdir="models",
            file_hash=file_hash,
        )
    except Exception as e:  # get_file raises plain Exception offline
        raise ValueError(
            f"Could not download the VGG16 ImageNet weights from "
            f"{_WEIGHTS_URL + fname} ({type(e).__name__}). Offline? Put the "
            f"file in ~/.keras/models/ or pass weights=PATH to a local "
            f"weights file."
        ) from None


def load_weights(model, path):
    """Loads a weights file into ``model``, with a one-line error on misfit.

    Args:
        model: keras.Model. The model to fill.
        path: str or PathLike. A ``.weights.h5``, ``.keras`` or legacy
            ``.h5`` file.

    Raises:
        ValueError: the file is missing or its shapes do not fit the model.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise ValueError(
            f"Weights file not found: {path!r}. Pass the path of a file "
            f"saved with model.save_weights(...)."
        )
    try:
        model.load_weights(path)
    except (ValueError, KeyError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else ""
        raise ValueError(
            f"Weights file {path!r} does not fit model {model.name!r} "
            f"(input {model.input_shape[1:]}, output "
            f"{model.output_shape[1:]}): {first[:300]}. Build the model with "
            f"the input_shape and n_classes the file was saved with."
        ) from None


def _copy_by_name(source, target):
    for layer in source.layers:
        if layer.weights:
            target.get_layer(layer.name).set_weights(layer.get_weights())
