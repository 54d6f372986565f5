"""Cutting and re-heading models: conv_base, split_at, replace_head."""

import keras


def conv_base(model, upto="auto"):
    """The model from its input up to (and including) the layer ``upto``.

    The course computed VGG16's output at its last convolution once and
    trained dense heads on it. The returned model shares its layers (and
    weights) with ``model``. By default a backbone is cut at its feature
    layer (``kerasdl.backbone``: ``block5_conv3`` for VGG16,
    ``conv5_block3_out`` for ResNet50 ...).

    Example:

    >>> from kerasdl.models import vgg16
    >>> base = conv_base(vgg16((32, 32, 3), 10), "block5_conv3")
    >>> base.output_shape
    (None, 2, 2, 512)
    >>> conv_base(vgg16((32, 32, 3), 10)).layers[-1].name
    'block5_conv3'

    Args:
        model: keras.Model. A functional or Sequential model.
        upto: str. Name of the last layer to keep, or ``"auto"``: the
            backbone's feature layer (``kerasdl.models.backbones.
            feature_layer``; ``block5_conv3`` for any VGG16).
            Defaults to ``"auto"``.

    Returns:
        A functional ``keras.Model``.

    Raises:
        TypeError: ``model`` is not a keras.Model (a backbone's name is
            not built here: pass ``kerasdl.backbone(name)``).
        ValueError: no layer named ``upto``, or ``"auto"`` for a model
            that is no backbone.
    """
    if not isinstance(model, keras.Model):
        hint = (f" Build the backbone first: conv_base(kerasdl.backbone("
                f"{model!r}))." if isinstance(model, str) else "")
        raise TypeError(f"`model` must be a keras.Model. Received: "
                        f"{type(model).__name__}.{hint}")
    if upto == "auto":
        from kerasdl.models.backbones import feature_layer

        upto = feature_layer(model)
    names = [layer.name for layer in model.layers]
    if upto not in names:
        raise ValueError(
            f"Model {model.name!r} has no layer named {upto!r}. Its layers "
            f"are: {', '.join(names)}."
        )
    return keras.Model(model.inputs, model.get_layer(upto).output,
                       name=f"{model.name}_upto_{upto}")


def split_at(model, layer_type):
    """Splits ``model.layers`` after the last layer of ``layer_type``.

    The course's ``last_conv_idx``: ``split_at(vgg, keras.layers.Conv2D)``
    gives the convolutional layers and the dense ones.

    Example:

    >>> from kerasdl.models import conv_bn
    >>> body, head = split_at(conv_bn((32, 32, 3), 10), "Conv2D")
    >>> body[-1].name, head[0].name
    ('conv2', 'bn2')

    Args:
        model: keras.Model.
        layer_type: a layer class (``keras.layers.Conv2D``) or its name.

    Returns:
        A tuple ``(body_layers, head_layers)`` of lists.
    """
    if isinstance(layer_type, str):
        matches = [i for i, layer in enumerate(model.layers)
                   if type(layer).__name__ == layer_type]
    elif isinstance(layer_type, type):
        matches = [i for i, layer in enumerate(model.layers)
                   if isinstance(layer, layer_type)]
    else:
        raise TypeError(
            f"`layer_type` must be a layer class or its name such as "
            f"'Conv2D'. Received: {layer_type!r}."
        )
    if not matches:
        kinds = sorted({type(layer).__name__ for layer in model.layers})
        raise ValueError(
            f"Model {model.name!r} has no layer of type {layer_type!r}. "
            f"Its layer types are: {', '.join(kinds)}."
        )
    cut = matches[-1] + 1
    return list(model.layers[:cut]), list(model.layers[cut:])


def replace_head(model, n_classes, *, freeze=True, activation="softmax",
                 name="predictions"):
    """Replaces the last layer by a new Dense classifier (the course's ft).

    Example:

    >>> from kerasdl.models import linear_bn
    >>> new = replace_head(linear_bn((4, 4, 3), 10), 2)
    >>> new.output_shape, len(new.trainable_weights)
    ((None, 2), 2)

    Args:
        model: keras.Model. Its second-to-last layer's output feeds the
            new head.
        n_classes: int. Classes of the new head, at least 2.
        freeze: bool. Make every layer of ``model`` untrainable (only the
            new head trains). The layers are shared with ``model``, so this
            freezes them there too. Defaults to ``True``.
        activation: str. Activation of the new head.
            Defaults to ``"softmax"``.
        name: str. Name of the new layer. Defaults to ``"predictions"``.

    Returns:
        A functional ``keras.Model``.
    """
    from kerasdl.models import _checks

    n = _checks.n_classes(n_classes)
    if len(model.layers) < 2:
        raise ValueError(
            f"replace_head needs a model of at least two layers. Model "
            f"{model.name!r} has {len(model.layers)}."
        )
    if freeze:
        for layer in model.layers:
            layer.trainable = False
    features = model.layers[-2].output
    outputs = keras.layers.Dense(n, activation=activation, name=name)(
        features)
    return keras.Model(model.inputs, outputs, name=f"{model.name}_ft{n}")
