"""Pretrained backbones by name, each taking RGB pixels in [0, 255].

``backbone("resnet50")`` is one functional ``keras.Model``: an ``image``
Input (uint8 by default), the backbone's own ImageNet preprocessing as a
registered layer, then the layers of ``keras.applications`` under the
names Keras gives them, so that Keras' published weights load and
``keras.saving.load_model(path, safe_mode=True)`` reads a saved model.

==================  ======================  ==============================
name                preprocessing           default feature layer
==================  ======================  ==============================
vgg16, vgg16_bn     VGGPreprocess (caffe)   block5_conv3
resnet50            VGGPreprocess (caffe)   conv5_block3_out
resnet50v2          Rescaling: x/127.5 - 1  post_relu
efficientnetv2b0    Keras' own (inside)     top_activation
convnext_tiny       Keras' own (inside)     the last LayerNormalization
mobilenetv3small    Keras' own (inside)     the activation after conv_1_bn
efficientnet_lite0  its builder's own       its ``FEATURE_LAYER``
==================  ======================  ==============================

The default feature layer is what ``conv_base`` and ``precompute`` cut at
when no layer is named (``feature_layer``); it is the backbone's last
spatial map. Layers Keras names automatically (``activation``,
``layer_normalization``) get the names a fresh Keras session gives them,
whatever was built before, so that the same backbone always has the
same layer names and weight paths (a feature cache stays valid).
"""

import collections
import importlib

import keras

from kerasdl import registry
from kerasdl.models import _checks
from kerasdl.models import _weights_file
from kerasdl.models._naming import fresh_names

_Spec = collections.namedtuple(
    "_Spec", "title model_name build feature")


def backbone_names():
    """The names ``backbone`` accepts, in a fixed order.

    Example:

    >>> backbone_names()[:3]
    ('vgg16', 'vgg16_bn', 'resnet50')

    Returns:
        tuple of str.
    """
    return tuple(registry.BACKBONES)


def backbone(name, *, input_shape=(224, 224, 3), weights="imagenet",
             input_dtype="uint8", include_top=False, n_classes=1000):
    """A pretrained backbone by name, preprocessing inside.

    Feed it RGB pixels in [0, 255] (uint8 or float); the model applies the
    preprocessing its ImageNet weights were trained with.

    Example:

    >>> import keras
    >>> with keras.StatelessScope(initialize_variables=False):  # shapes only
    ...     model = backbone("resnet50", input_shape=(64, 64, 3),
    ...                      weights=None)
    >>> model.output_shape, model.layers[1].name, feature_layer(model)
    ((None, 2, 2, 2048), 'preprocess', 'conv5_block3_out')
    >>> backbone("resnet5")
    Traceback (most recent call last):
    ...
    ValueError: Unknown backbone 'resnet5'. Known backbones: vgg16, \
vgg16_bn, resnet50, resnet50v2, efficientnetv2b0, convnext_tiny, \
mobilenetv3small, efficientnet_lite0.

    Args:
        name: str. One of ``backbone_names()``.
        input_shape: tuple. ``(height, width, 3)``, at least 32x32.
            Defaults to ``(224, 224, 3)``.
        weights: ``None`` (random), ``"imagenet"`` (downloaded once by
            ``keras.utils.get_file`` and checked against Keras' published
            hash, then cached in ``~/.keras/models``) or the path of a
            weights file (``.weights.h5``, ``.keras``, or a legacy ``.h5``
            such as those keras.applications publishes).
            Defaults to ``"imagenet"``.
        input_dtype: str. dtype of the Input. Defaults to ``"uint8"``.
        include_top: bool. Keep the ImageNet classifier. Defaults to
            ``False``.
        n_classes: int. Classes of the classifier with ``include_top``
            (1000 with ImageNet weights). Defaults to 1000.

    Returns:
        A functional ``keras.Model`` named as keras.applications names it
        (``"resnet50"``, ``"efficientnetv2-b0"``, ``"MobileNetV3Small"``
        ...).

    Raises:
        TypeError: ``name`` not a str, or a bad argument type.
        ValueError: an unknown name (the known ones are listed), a shape
            too small or not RGB, a weights file that is missing or does
            not fit (the first layer that differs and both shapes are
            named), or ImageNet weights that cannot be downloaded.
    """
    spec = _spec(name)
    shape = _checks.input_shape(input_shape)
    n = _checks.n_classes(n_classes)
    if not isinstance(include_top, bool):
        raise TypeError(f"`include_top` must be True or False. Received: "
                        f"include_top={include_top!r}.")
    try:
        input_dtype = keras.backend.standardize_dtype(input_dtype)
    except ValueError:
        raise ValueError(f"`input_dtype` must be a dtype name such as "
                         f"'uint8' or 'float32'. Received: "
                         f"input_dtype={input_dtype!r}.") from None
    if shape[-1] != 3:
        raise ValueError(f"{spec.title} takes RGB images (3 channels). "
                         f"Received: input_shape={shape}. Convert grayscale "
                         f"images to RGB first.")
    if min(shape[:2]) < 32:
        raise ValueError(f"{spec.title} needs images of at least 32x32 "
                         f"pixels. Received: input_shape={shape}. Resize "
                         f"the images up.")
    path = _weights_file.path_or_none(weights)
    if weights == "imagenet" and include_top:
        if shape != (224, 224, 3):
            raise ValueError(
                f"ImageNet weights with the classifier need input_shape="
                f"(224, 224, 3). Received: input_shape={shape}. Pass "
                f"include_top=False for other sizes.")
        if n != 1000:
            raise ValueError(
                f"ImageNet weights with the classifier have 1000 classes. "
                f"Received: n_classes={n}. Pass include_top=False and add "
                f"a head (or use kerasdl.replace_head).")
    with fresh_names():
        model = spec.build(shape, n, include_top=include_top,
                           weights=None if path else weights,
                           input_dtype=input_dtype, title=spec.title)
    if path:
        _weights_file.load(model, path, spec.title)
    return model


def feature_layer(model):
    """The layer ``conv_base`` and ``precompute`` cut a backbone at.

    Example:

    >>> import keras
    >>> with keras.StatelessScope(initialize_variables=False):
    ...     model = backbone("mobilenetv3small", input_shape=(96, 96, 3),
    ...                      weights=None)
    >>> name = feature_layer(model)
    >>> name, model.get_layer(name).output.shape
    ('activation_17', (None, 3, 3, 576))

    Args:
        model: keras.Model. A backbone (found by its name, as
            keras.applications names it) or any model with a
            ``block5_conv3`` layer (VGG16, as before backbones existed).

    Returns:
        str. The layer's name.

    Raises:
        TypeError: ``model`` is not a keras.Model.
        ValueError: ``model`` is no known backbone.
    """
    if not isinstance(model, keras.Model):
        hint = (f" Build one with kerasdl.backbone({model!r})."
                if isinstance(model, str) else "")
        raise TypeError(f"`model` must be a keras.Model. Received: "
                        f"{type(model).__name__}.{hint}")
    for spec in _specs().values():
        if spec.model_name == model.name:
            found = spec.feature(model)
            if found is not None:
                return found
    names = [layer.name for layer in model.layers]
    if "block5_conv3" in names:
        return "block5_conv3"
    shown = ", ".join(names[-8:])
    raise ValueError(
        f"Model {model.name!r} is not one of the backbones "
        f"({', '.join(backbone_names())}), so it has no default feature "
        f"layer. Name the layer to cut at (its last layers: {shown}).")


def title(name):
    """The display name of a backbone, such as ``"ResNet50"``."""
    return _spec(name).title


# -- the backbones -------------------------------------------------------

def _spec(name):
    if not isinstance(name, str):
        raise TypeError(f"`name` must be a backbone name (str) such as "
                        f"'resnet50'. Received: {type(name).__name__}.")
    specs = _specs()
    if name not in specs:
        raise ValueError(
            f"Unknown backbone {name!r}. Known backbones: "
            f"{', '.join(backbone_names())}.")
    return specs[name]


def _specs():
    lite = _lite_feature
    return {
        "vgg16": _Spec("VGG16", "vgg16", _vgg("vgg16"),
                       _named("block5_conv3")),
        "vgg16_bn": _Spec("VGG16-BN", "vgg16_bn", _vgg("vgg16_bn"),
                          _named("block5_conv3")),
        "resnet50": _Spec("ResNet50", "resnet50",
                          _application("ResNet50", _caffe),
                          _named("conv5_block3_out")),
        "resnet50v2": _Spec("ResNet50V2", "resnet50v2",
                            _application("ResNet50V2", _tf_mode),
                            _named("post_relu")),
        "efficientnetv2b0": _Spec("EfficientNetV2B0", "efficientnetv2-b0",
                                  _application("EfficientNetV2B0", None),
                                  _named("top_activation")),
        "convnext_tiny": _Spec("ConvNeXtTiny", "convnext_tiny",
                               _application("ConvNeXtTiny", None),
                               _convnext_feature),
        "mobilenetv3small": _Spec("MobileNetV3Small", "MobileNetV3Small",
                                  _application("MobileNetV3Small", None),
                                  _after("conv_1_bn")),
        "efficientnet_lite0": _Spec("EfficientNet-Lite0",
                                    "efficientnet_lite0", _lite, lite),
    }


def _caffe():
    from kerasdl.models.vgg import VGGPreprocess

    return VGGPreprocess(name="preprocess")


def _tf_mode():
    return keras.layers.Rescaling(1 / 127.5, offset=-1.0, name="preprocess")


def _application(func, preprocess):
    def build(shape, n, *, include_top, weights, input_dtype, title):
        inputs = keras.Input(shape, dtype=input_dtype, name="image")
        x = preprocess()(inputs) if preprocess else inputs
        make = getattr(keras.applications, func)
        try:
            return make(include_top=include_top, weights=weights,
                        input_tensor=x, classes=n)
        except Exception as e:
            if weights != "imagenet" or not _weights_file.fetch_failed(e):
                raise
            raise _weights_file.offline_error(e, title) from None

    return build


def _vgg(func):
    def build(shape, n, *, include_top, weights, input_dtype, title):
        from kerasdl.models import vgg

        return getattr(vgg, func)(shape, n, weights=weights,
                                  include_top=include_top,
                                  input_dtype=input_dtype)

    return build


def _lite_module():
    return importlib.import_module("kerasdl.models.efficientnet_lite")


def _lite(shape, n, *, include_top, weights, input_dtype, title):
    return _lite_module().efficientnet_lite0(
        shape, n, weights=weights, include_top=include_top,
        input_dtype=input_dtype)


def _lite_feature(model):
    return _named(_lite_module().FEATURE_LAYER)(model)


def _named(*names):
    def find(model):
        have = {layer.name for layer in model.layers}
        return next((n for n in names if n in have), None)

    return find


def _after(source):
    """The layer fed by the layer ``source`` (the unnamed activation that
    follows a named BatchNormalization)."""

    def find(model):
        try:
            out = model.get_layer(source).output
        except ValueError:
            return None
        for layer in model.layers:
            try:
                fed = layer.input
            except (ValueError, AttributeError):  # shared, or no input
                continue
            if fed is out:
                return layer.name
        return None

    return find


def _convnext_feature(model):
    found = _named("convnext_tiny_head_layernorm")(model)
    if found is None and model.layers and type(
            model.layers[-1]).__name__ == "LayerNormalization":
        found = model.layers[-1].name
    return found
