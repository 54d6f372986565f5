"""A backbone and a new head in one model: fastai's vision learner's model.

``vision_model(backbone, n_classes)`` builds a functional model whose
body is the backbone, nested as ONE layer (named like the backbone), and
whose head is pooling, then fastai's head, then the output activation.

The split between body and head survives saving: every head layer's name
starts with ``"head_"``. ``kerasdl.training.groups.body_and_head(model)`` returns
``([backbone], [head layers])``, and ``freeze``, ``layer_groups``,
``discriminative_optimizer`` and ``fine_tune`` split the model there, on
a model just built or one loaded with
``keras.saving.load_model(path, safe_mode=True)``.

Head layers, in order (``p`` is the dropout rate):

- pooling: ``head_pool`` (``"avg"`` or ``"max"``), or ``head_avg_pool``,
  ``head_max_pool`` and ``head_concat_pool`` (``"concat"``: both,
  concatenated, as fastai's ``AdaptiveConcatPool2d``), or none;
- ``head="dense_bn"`` (fastai's ``create_head``): ``head_bn1``,
  ``head_dropout1`` (p/2), ``head_fc1`` (``units``, relu), ``head_bn2``,
  ``head_dropout2`` (p), ``head_logits``; ``head="linear"``:
  ``head_dropout`` (p), ``head_logits``;
- the output: ``head_softmax``, ``head_sigmoid`` (``multi_label``) or
  ``head_y_range`` (a ``ScaledSigmoid``), computed in float32 so that a
  mixed-precision model gives float32 probabilities.
"""

import keras
from keras import layers

from kerasdl import _validate
from kerasdl.models import _checks
from kerasdl.models.baselines import BN_MOMENTUM
from kerasdl.models.collab import ScaledSigmoid
from kerasdl.models.collab import _y_range

HEADS = ("dense_bn", "linear")
POOLINGS = ("avg", "max", "concat", None)

_POOL = {
    1: (layers.GlobalAveragePooling1D, layers.GlobalMaxPooling1D),
    2: (layers.GlobalAveragePooling2D, layers.GlobalMaxPooling2D),
    3: (layers.GlobalAveragePooling3D, layers.GlobalMaxPooling3D),
}


def _check_backbone(backbone):
    if not isinstance(backbone, keras.Model):
        raise TypeError(
            f"`backbone` must be a keras.Model (such as "
            f"keras.applications.ResNet50(include_top=False, weights=None)"
            f"). Received: backbone of type {type(backbone).__name__}.")
    try:
        inputs = backbone.inputs
    except (AttributeError, ValueError):
        inputs = None
    if inputs is not None and len(inputs) != 1:
        raise ValueError(
            f"`backbone` must take one input; {backbone.name!r} takes "
            f"{len(inputs)}. Build the model around it yourself.")
    return inputs[0] if inputs else None


def _shape(value):
    if isinstance(value, (str, bytes)) or not hasattr(value, "__len__"):
        raise TypeError(
            f"`input_shape` must be a tuple of positive integers such as "
            f"(224, 224, 3). Received: input_shape={value!r}.")
    return _checks.input_shape(value, rank=len(value))


def _input(backbone, input_shape):
    """``keras.Input`` of the backbone's shape and dtype."""
    given = None if input_shape is None else _shape(input_shape)
    known = _check_backbone(backbone)
    name = "image" if backbone.name != "image" else "image_input"
    if known is None:
        if given is None:
            raise ValueError(
                f"The backbone {backbone.name!r} has no known input shape "
                f"(a subclassed or unbuilt model). Pass input_shape=, such "
                f"as input_shape=(224, 224, 3).")
        return keras.Input(given, name=name)
    shape = tuple(known.shape)[1:]
    if given is not None:
        if len(given) != len(shape) or any(
                s is not None and s != g for s, g in zip(shape, given)):
            raise ValueError(
                f"`input_shape` must fit the backbone's input "
                f"{(None, *shape)}. Received: input_shape={given}. Leave "
                f"it out, or give sizes only where the backbone has None.")
        shape = given
    return keras.Input(shape, dtype=known.dtype, name=name)


def _pool(x, pooling, backbone_name):
    rank = len(x.shape)
    if pooling is None:
        if rank != 2:
            raise ValueError(
                f"pooling=None needs a backbone that outputs one vector per "
                f"example; {backbone_name!r} outputs shape {x.shape}. Pass "
                f"pooling='avg', 'max' or 'concat'.")
        return x
    if rank == 2:
        raise ValueError(
            f"The backbone {backbone_name!r} already outputs one vector per "
            f"example (shape {x.shape}). Pass pooling=None.")
    if rank - 2 not in _POOL:
        raise ValueError(
            f"pooling={pooling!r} needs a backbone output of rank 3 to 5 "
            f"(batch, positions..., channels); {backbone_name!r} outputs "
            f"shape {x.shape}.")
    avg, mx = _POOL[rank - 2]
    if pooling == "avg":
        return avg(name="head_pool")(x)
    if pooling == "max":
        return mx(name="head_pool")(x)
    return layers.Concatenate(name="head_concat_pool")(
        [avg(name="head_avg_pool")(x), mx(name="head_max_pool")(x)])


def vision_model(backbone, n_classes, *, head="dense_bn", p=0.5,
                 multi_label=False, y_range=None, pooling="avg",
                 units=512, bn_momentum=BN_MOMENTUM, input_shape=None,
                 name="vision_model"):
    """A backbone with a new head: fastai's ``vision_learner`` model.

    The model is functional: ``keras.Input`` of the backbone's input
    shape and dtype, the backbone (nested: one layer, named like the
    backbone and sharing its weights, not a copy), pooling, the head and
    the output. ``fine_tune(model, ...)`` then trains the head with the
    backbone frozen, and everything with discriminative rates (two groups
    of the backbone, then the head). See the module's docstring for the
    layer names and ``kerasdl.training.groups.body_and_head`` for the split.

    Example:

    >>> backbone = keras.Sequential([
    ...     keras.Input((12, 12, 3)),
    ...     keras.layers.Conv2D(4, 3, name="conv"),
    ...     keras.layers.BatchNormalization(name="bn")], name="tiny")
    >>> model = vision_model(backbone, 5, units=16)
    >>> [layer.name for layer in model.layers][:4]
    ['image', 'tiny', 'head_pool', 'head_bn1']
    >>> model.output_shape
    (None, 5)

    Args:
        backbone: keras.Model. One input, channels-last feature maps out
            (or one vector per example with ``pooling=None``), such as
            ``keras.applications.ResNet50(include_top=False)``.
        n_classes: int. Classes (at least 2 for softmax); labels with
            ``multi_label``; outputs with ``y_range``.
        head: str. ``"dense_bn"`` (fastai's head) or ``"linear"``.
            Defaults to ``"dense_bn"``.
        p: float. Dropout before the last Dense; ``"dense_bn"`` uses p/2
            before its hidden Dense. Defaults to 0.5.
        multi_label: bool. A sigmoid per label instead of a softmax.
            Defaults to False.
        y_range: None or (low, high). A regression output squashed into
            ``(low, high)`` by ``ScaledSigmoid`` (fastai's ``y_range``).
            Defaults to None.
        pooling: ``"avg"``, ``"max"``, ``"concat"`` (average and max,
            concatenated) or None (the backbone outputs vectors).
            Defaults to ``"avg"``.
        units: int. Width of ``"dense_bn"``'s hidden Dense. Defaults to
            512 (fastai's).
        bn_momentum: float. Momentum of the head's BatchNormalization
            moving statistics. Defaults to ``BN_MOMENTUM`` (0.9).
        input_shape: tuple or None. Needed only when the backbone has no
            known input shape (a subclassed model), or to fix sizes the
            backbone leaves as None.
        name: str. The model's name. Defaults to ``"vision_model"``.

    Returns:
        A functional ``keras.Model``.

    Raises:
        TypeError: ``backbone`` not a ``keras.Model``, arguments of the
            wrong type.
        ValueError: an unknown ``head`` or ``pooling``, ``p`` outside
            [0, 1), too few classes, both ``multi_label`` and ``y_range``,
            ``high <= low``, a backbone output that does not fit
            ``pooling``, a backbone with several inputs or no known input
            shape.
    """
    head = _validate.choice(head, "head", HEADS)
    pooling = _validate.choice(pooling, "pooling", POOLINGS)
    p = _validate.number(p, "p", low=0, high=1, high_open=True,
                         hint="It is a dropout rate; fastai uses 0.5.")
    if not isinstance(multi_label, bool):
        raise TypeError(f"`multi_label` must be True or False. Received: "
                        f"multi_label={multi_label!r}.")
    y_range = _y_range(y_range)
    if multi_label and y_range is not None:
        raise ValueError(
            "Pass either multi_label=True (a sigmoid per label) or y_range "
            "(a regression output), not both.")
    if y_range is not None:
        for i, bound in enumerate(y_range):
            _validate.number(bound, f"y_range[{i}]")
        squash = ScaledSigmoid(*y_range, dtype="float32",
                               name="head_y_range")  # checks high > low
    single = not multi_label and y_range is None
    n = _validate.integer(
        n_classes, "n_classes", low=2 if single else 1,
        hint="A softmax needs two classes or more; for one yes/no label "
             "pass multi_label=True." if single else None)
    units = _validate.integer(units, "units", low=1)
    momentum = _validate.number(bn_momentum, "bn_momentum", low=0, high=1,
                                high_open=True)
    inputs = _input(backbone, input_shape)
    x = backbone(inputs)
    if isinstance(x, (list, tuple, dict)):
        raise ValueError(
            f"`backbone` must have one output; {backbone.name!r} has "
            f"{len(x)}.")
    x = _pool(x, pooling, backbone.name)
    if head == "dense_bn":
        x = layers.BatchNormalization(momentum=momentum, name="head_bn1")(x)
        x = layers.Dropout(p / 2, name="head_dropout1")(x)
        x = layers.Dense(units, activation="relu", name="head_fc1")(x)
        x = layers.BatchNormalization(momentum=momentum, name="head_bn2")(x)
        x = layers.Dropout(p, name="head_dropout2")(x)
    else:
        x = layers.Dropout(p, name="head_dropout")(x)
    x = layers.Dense(n, name="head_logits")(x)
    if y_range is not None:
        out = squash(x)
    elif multi_label:
        out = layers.Activation("sigmoid", dtype="float32",
                                name="head_sigmoid")(x)
    else:
        out = layers.Activation("softmax", dtype="float32",
                                name="head_softmax")(x)
    return keras.Model(inputs, out, name=name)
