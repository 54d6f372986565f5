"""BN-first baseline models from the course: fast to train, easy to read.

Every builder takes ``input_shape`` (channels last) and ``n_classes`` and
returns a plain ``keras.Sequential`` with every layer named.

BatchNormalization momentum: every builder uses ``BN_MOMENTUM`` = 0.9
(``bn_momentum=`` changes it), the value PyTorch and fastai use (their
0.1 counts the other way). Keras' default, 0.99, keeps 37% of the initial
moving statistics after 100 steps: on a small data set (800 photos, 13
batches an epoch) the moving mean of the input BN was still far from the
data after 8 epochs, and a model at 0.99 training accuracy predicted one
class for every validation photo. With 0.9 the same run reached about
0.72 (bench/NOTES.md, "Your own photos").

Outputs: every builder ends in a softmax over ``n_classes`` (compile with
``sparse_categorical_crossentropy``, or ``categorical_crossentropy`` for
one-hot targets). With ``multi_label=True`` it ends in one sigmoid per
label instead (multi-hot targets, ``task == "multi_label"``: compile with
``binary_crossentropy``). With ``y_range=(low, high)`` it outputs
``n_classes`` numbers squashed into ``(low, high)`` by a ``ScaledSigmoid``
(fastai's ``y_range``; regression targets: compile with ``mse``); points
scaled to [-1, 1] take ``y_range=(-1, 1)`` and two outputs per point. The
last Dense keeps its size, so the parameter counts do not change; with
``y_range`` it is named ``logits`` and the ``ScaledSigmoid`` (no weights)
is ``predictions``, the model's last layer in every case.
"""

import math

import keras
from keras import layers

from kerasdl import _validate
from kerasdl.models import _checks
from kerasdl.models.collab import ScaledSigmoid

BN_MOMENTUM = 0.9


def _bn(momentum, name):
    return layers.BatchNormalization(momentum=momentum, name=name)


def _momentum(value):
    return _validate.number(value, "bn_momentum", low=0, high=1,
                            high_open=True)


def _outputs(n_classes, multi_label, y_range):
    """Checks the output arguments; returns ``(n, multi_label, y_range)``.

    A softmax needs two classes or more; one sigmoid label or one
    regression output is fine.
    """
    if not isinstance(multi_label, bool):
        raise TypeError(f"`multi_label` must be True or False. Received: "
                        f"multi_label={multi_label!r}.")
    if y_range is not None:
        try:
            low, high = (float(v) for v in y_range)
        except (TypeError, ValueError):
            raise TypeError(
                f"`y_range` must be None or a pair of numbers (low, high) "
                f"such as (-1.0, 1.0). Received: y_range={y_range!r}."
            ) from None
        if not (math.isfinite(low) and math.isfinite(high) and high > low):
            raise ValueError(
                f"`y_range` must be (low, high), finite with high > low, "
                f"such as (-1.0, 1.0). Received: y_range={y_range!r}.")
        y_range = (low, high)
    if multi_label and y_range is not None:
        raise ValueError(
            "Pass either multi_label=True (a sigmoid per label) or y_range "
            "(regression outputs), not both.")
    if not multi_label and y_range is None:
        return _checks.n_classes(n_classes), False, None
    n = _validate.integer(n_classes, "n_classes", low=1,
                          hint="It is the number of labels or outputs.")
    return n, multi_label, y_range


def _output_layers(n, multi_label, y_range, regularizer=None):
    """The last Dense and, with ``y_range``, the ``ScaledSigmoid``."""
    if y_range is not None:
        return [layers.Dense(n, kernel_regularizer=regularizer,
                             name="logits"),
                ScaledSigmoid(*y_range, name="predictions")]
    return [layers.Dense(n, activation="sigmoid" if multi_label else
                         "softmax", kernel_regularizer=regularizer,
                         name="predictions")]


def linear_bn(input_shape=(224, 224, 3), n_classes=10, *, l2=None,
              bn_momentum=BN_MOMENTUM, multi_label=False, y_range=None,
              name="linear_bn"):
    """The course's first State Farm model: BatchNorm, Flatten, Dense.

    Normalising the inputs first lets a linear softmax train at all on raw
    pixels. Start it with a low learning rate (the course used Adam 1e-5
    for two epochs, then 1e-3).

    Example:

    >>> model = linear_bn((8, 8, 3), 4)
    >>> model.count_params()
    784

    Args:
        input_shape: tuple. ``(height, width, channels)``.
            Defaults to ``(224, 224, 3)``.
        n_classes: int. Number of classes, at least 2 (labels with
            ``multi_label``, outputs with ``y_range``: at least 1).
            Defaults to 10.
        l2: float or None. L2 penalty on the Dense kernel (the course
            tried 0.01). Defaults to ``None``.
        bn_momentum: float. Momentum of every BatchNormalization's moving
            statistics. Defaults to ``BN_MOMENTUM`` (0.9).
        multi_label: bool. One sigmoid per label instead of the softmax
            (loss ``binary_crossentropy``). Defaults to ``False``.
        y_range: None or ``(low, high)``. ``n_classes`` regression outputs
            squashed into ``(low, high)`` by a ``ScaledSigmoid`` (loss
            ``mse``). Defaults to ``None``.
        name: str. Model name.

    Returns:
        A ``keras.Sequential``: 1,505,302 parameters at 224x224x3 with 10
        classes (6 of them non-trainable).
    """
    shape = _checks.input_shape(input_shape)
    n, multi, y_range = _outputs(n_classes, multi_label, y_range)
    m = _momentum(bn_momentum)
    reg = keras.regularizers.L2(l2) if l2 else None
    return keras.Sequential(
        [
            keras.Input(shape),
            _bn(m, name="bn_input"),
            layers.Flatten(name="flatten"),
            *_output_layers(n, multi, y_range, reg),
        ],
        name=name,
    )


def conv_bn(input_shape=(224, 224, 3), n_classes=10, *, units=200,
            dropout=0.0, bn_momentum=BN_MOMENTUM, multi_label=False,
            y_range=None, name="conv_bn"):
    """The course's ``conv1``: two small conv blocks with BatchNorm.

    BN(input), Conv32, BN, MaxPool3, Conv64, BN, MaxPool3, Flatten,
    Dense(units), BN, Dense(n_classes). Without augmentation it overfits
    quickly; it is the model the course tuned augmentation on.

    Example:

    >>> model = conv_bn((32, 32, 3), 10)
    >>> [layer.name for layer in model.layers][:3]
    ['bn_input', 'conv1', 'bn1']
    >>> points = conv_bn((32, 32, 3), 2, y_range=(-1, 1))  # one (x, y)
    >>> [layer.name for layer in points.layers][-2:], points.output_shape
    (['logits', 'predictions'], (None, 2))

    Args:
        input_shape: tuple. ``(height, width, channels)``; each side must
            be at least 17 pixels. Defaults to ``(224, 224, 3)``.
        n_classes: int. Number of classes (labels with ``multi_label``,
            outputs with ``y_range``). Defaults to 10.
        units: int. Width of the hidden Dense layer. Defaults to 200.
        dropout: float. With a rate above 0, a Dropout layer before the
            hidden Dense and one before the last Dense (no weights: the
            parameter count is unchanged). 0.25 helped on 800 photos
            (bench/NOTES.md). Defaults to 0 (the course's conv1).
        bn_momentum: float. Momentum of every BatchNormalization's moving
            statistics. Defaults to ``BN_MOMENTUM`` (0.9).
        multi_label: bool. One sigmoid per label instead of the softmax
            (loss ``binary_crossentropy``). Defaults to ``False``.
        y_range: None or ``(low, high)``. ``n_classes`` regression outputs
            squashed into ``(low, high)`` by a ``ScaledSigmoid`` (loss
            ``mse``). Defaults to ``None``.
        name: str. Model name.

    Returns:
        A ``keras.Sequential`` with 7,395,000 trainable parameters at
        224x224x3 and 10 classes.
    """
    shape = _checks.input_shape(input_shape)
    n, multi, y_range = _outputs(n_classes, multi_label, y_range)
    m = _momentum(bn_momentum)
    units = _checks.positive_int(units, "units")
    if min(shape[:2]) < 17:
        raise ValueError(
            f"conv_bn needs images of at least 17x17 pixels (3x3 "
            f"convolution, 3x3 pooling, 3x3 convolution, 3x3 pooling "
            f"leave 1x1 at 17). Received: "
            f"input_shape={shape}. Use linear_bn for smaller inputs."
        )
    p = _checks.probability(dropout, "dropout")

    def drop(where):
        return [layers.Dropout(p, name=f"dropout_{where}")] if p else []

    return keras.Sequential(
        [
            keras.Input(shape),
            _bn(m, name="bn_input"),
            layers.Conv2D(32, 3, activation="relu", name="conv1"),
            _bn(m, name="bn1"),
            layers.MaxPooling2D(3, name="pool1"),
            layers.Conv2D(64, 3, activation="relu", name="conv2"),
            _bn(m, name="bn2"),
            layers.MaxPooling2D(3, name="pool2"),
            layers.Flatten(name="flatten"),
            *drop("fc"),
            layers.Dense(units, activation="relu", name="fc"),
            _bn(m, name="bn_fc"),
            *drop("predictions"),
            *_output_layers(n, multi, y_range),
        ],
        name=name,
    )


def deeper_conv_bn(input_shape=(224, 224, 3), n_classes=10, *,
                   filters=(32, 64, 128), units=256, p=0.5,
                   bn_momentum=BN_MOMENTUM, multi_label=False, y_range=None,
                   name="deeper_conv_bn"):
    """A deeper BN-first convnet: (Conv, BN, Conv, BN, MaxPool) per block.

    One block per entry of ``filters`` (3x3 'same' convolutions, so any
    input of at least ``2 ** len(filters)`` pixels works), then Flatten,
    Dense(units), BN, Dropout(p) and the softmax.

    Example:

    >>> model = deeper_conv_bn((32, 32, 3), 10, filters=(8, 16), units=32)
    >>> model.output_shape
    (None, 10)

    Args:
        input_shape: tuple. ``(height, width, channels)``.
            Defaults to ``(224, 224, 3)``.
        n_classes: int. Number of classes (labels with ``multi_label``,
            outputs with ``y_range``). Defaults to 10.
        filters: tuple of int. Filters of each block.
            Defaults to ``(32, 64, 128)``.
        units: int. Width of the hidden Dense layer. Defaults to 256.
        p: float. Dropout rate before the output. Defaults to 0.5.
        bn_momentum: float. Momentum of every BatchNormalization's moving
            statistics. Defaults to ``BN_MOMENTUM`` (0.9).
        multi_label: bool. One sigmoid per label instead of the softmax
            (loss ``binary_crossentropy``). Defaults to ``False``.
        y_range: None or ``(low, high)``. ``n_classes`` regression outputs
            squashed into ``(low, high)`` by a ``ScaledSigmoid`` (loss
            ``mse``). Defaults to ``None``.
        name: str. Model name.

    Returns:
        A ``keras.Sequential``.
    """
    shape = _checks.input_shape(input_shape)
    n, multi, y_range = _outputs(n_classes, multi_label, y_range)
    m = _momentum(bn_momentum)
    units = _checks.positive_int(units, "units")
    p = _checks.probability(p, "p")
    filters = tuple(_checks.positive_int(f, "filters") for f in filters)
    if min(shape[:2]) < 2 ** len(filters):
        raise ValueError(
            f"deeper_conv_bn with {len(filters)} blocks needs images of at "
            f"least {2 ** len(filters)} pixels a side. Received: "
            f"input_shape={shape}. Pass fewer `filters`."
        )
    stack = [keras.Input(shape), _bn(m, name="bn_input")]
    for b, f in enumerate(filters, start=1):
        stack += [
            layers.Conv2D(f, 3, padding="same", activation="relu",
                          name=f"block{b}_conv1"),
            _bn(m, name=f"block{b}_bn1"),
            layers.Conv2D(f, 3, padding="same", activation="relu",
                          name=f"block{b}_conv2"),
            _bn(m, name=f"block{b}_bn2"),
            layers.MaxPooling2D(2, name=f"block{b}_pool"),
        ]
    stack += [
        layers.Flatten(name="flatten"),
        layers.Dense(units, activation="relu", name="fc"),
        _bn(m, name="bn_fc"),
        layers.Dropout(p, name="dropout"),
        *_output_layers(n, multi, y_range),
    ]
    return keras.Sequential(stack, name=name)


def dense_bn_head(input_shape=(14, 14, 512), n_classes=10, *, p=0.8,
                  units=128, bn_momentum=BN_MOMENTUM, multi_label=False,
                  y_range=None, name="dense_bn_head"):
    """The course's ``get_bn_layers``: a dense head for conv features.

    MaxPool, Flatten, Dropout(p/2), Dense(units), BN, Dropout(p/2),
    Dense(units), BN, Dropout(p), Dense(n_classes). Train it on features
    precomputed once from a convolutional base (VGG16 up to
    ``block5_conv3`` gives 14x14x512 at 224x224).

    Example:

    >>> head = dense_bn_head((4, 4, 8), 3, p=0.5, units=16)
    >>> head.output_shape
    (None, 3)

    Args:
        input_shape: tuple. Shape of the features, channels last.
            Defaults to ``(14, 14, 512)``.
        n_classes: int. Number of classes (labels with ``multi_label``,
            outputs with ``y_range``). Defaults to 10.
        p: float. Dropout of the last layer; the two earlier ones use p/2.
            Defaults to 0.8.
        units: int. Width of both hidden Dense layers. Defaults to 128.
        bn_momentum: float. Momentum of every BatchNormalization's moving
            statistics. Defaults to ``BN_MOMENTUM`` (0.9).
        multi_label: bool. One sigmoid per label instead of the softmax
            (loss ``binary_crossentropy``). Defaults to ``False``.
        y_range: None or ``(low, high)``. ``n_classes`` regression outputs
            squashed into ``(low, high)`` by a ``ScaledSigmoid`` (loss
            ``mse``). Defaults to ``None``.
        name: str. Model name.

    Returns:
        A ``keras.Sequential``: at 14x14x512, p=0.8, 128 units and 10
        classes, 3,229,706 trainable and 512 non-trainable parameters.
    """
    shape = _checks.input_shape(input_shape)
    n, multi, y_range = _outputs(n_classes, multi_label, y_range)
    m = _momentum(bn_momentum)
    p = _checks.probability(p, "p")
    units = _checks.positive_int(units, "units")
    if min(shape[:2]) < 2:
        raise ValueError(
            f"dense_bn_head starts with a 2x2 max-pooling, so the features "
            f"must be at least 2x2. Received: input_shape={shape}."
        )
    return keras.Sequential(
        [
            keras.Input(shape),
            layers.MaxPooling2D(name="pool"),
            layers.Flatten(name="flatten"),
            layers.Dropout(p / 2, name="dropout1"),
            layers.Dense(units, activation="relu", name="fc1"),
            _bn(m, name="bn1"),
            layers.Dropout(p / 2, name="dropout2"),
            layers.Dense(units, activation="relu", name="fc2"),
            _bn(m, name="bn2"),
            layers.Dropout(p, name="dropout3"),
            *_output_layers(n, multi, y_range),
        ],
        name=name,
    )
