"""Named builders for the command line (``kerasdl summary NAME``).

Looking a name up imports nothing heavy: the builder imports its module
(and keras) when first called, so a bad name or flag is answered at once.
``count_params`` counts the parameters a build would make without
allocating them, so that a size the machine cannot hold is refused
before it is tried.
"""

import importlib

# name -> (module, function, default input shape, default classes)
IMAGE_BUILDERS = {
    "linear_bn": ("kerasdl.models.baselines", "linear_bn", (224, 224, 3), 10),
    "conv_bn": ("kerasdl.models.baselines", "conv_bn", (224, 224, 3), 10),
    "deeper_conv_bn": ("kerasdl.models.baselines", "deeper_conv_bn",
                       (224, 224, 3), 10),
    "dense_bn_head": ("kerasdl.models.baselines", "dense_bn_head",
                      (14, 14, 512), 10),
    "vgg16": ("kerasdl.models.vgg", "vgg16", (224, 224, 3), 1000),
    "vgg16_bn": ("kerasdl.models.vgg", "vgg16_bn", (224, 224, 3), 1000),
}

#: Pretrained backbones by name (kerasdl.models.backbones), in the order
#: they are listed; ``kerasdl summary NAME`` builds them with the ImageNet
#: classifier (random weights), like keras.applications' own models.
BACKBONES = ("vgg16", "vgg16_bn", "resnet50", "resnet50v2",
             "efficientnetv2b0", "convnext_tiny", "mobilenetv3small",
             "efficientnet_lite0")
BACKBONE_SHAPE, BACKBONE_CLASSES = (224, 224, 3), 1000

# Embedding recommenders (lesson 4): the "input shape" is (users, items,
# factors), by default ml-latest-small's 671 x 9,066 x 50; classes unused.
COLLAB_BUILDERS = {"dot": "dot", "dot_bias": "dot_bias"}
COLLAB_SHAPE = (671, 9066, 50)


def _collab_builder(func):
    def build(shape, classes=None):
        from kerasdl.models import collab

        return getattr(collab, func)(*shape)

    return build


def _image_builder(module, func):
    def build(shape, classes, **kwargs):
        return getattr(importlib.import_module(module), func)(
            shape, classes, **kwargs)

    build.__name__ = func
    return build


def _backbone_builder(name):
    def build(shape, classes):
        from kerasdl.models.backbones import backbone

        return backbone(name, input_shape=shape, weights=None,
                        input_dtype="float32", include_top=True,
                        n_classes=classes)

    build.__name__ = name
    return build


def names():
    """The model names ``kerasdl summary`` accepts, sorted."""
    return sorted({*IMAGE_BUILDERS, *BACKBONES, *COLLAB_BUILDERS})


def is_recommender(name):
    """True for the embedding recommenders (no classes, no head)."""
    return name in COLLAB_BUILDERS


def lookup(name):
    """Returns ``(builder, default_input_shape, default_classes)``.

    ``builder(shape, classes)`` returns the model; ``default_classes`` is
    ``None`` for a recommender.

    Raises:
        ValueError: ``name`` is not a known model.
    """
    if name in COLLAB_BUILDERS:
        return _collab_builder(COLLAB_BUILDERS[name]), COLLAB_SHAPE, None
    if name not in IMAGE_BUILDERS and name in BACKBONES:
        return _backbone_builder(name), BACKBONE_SHAPE, BACKBONE_CLASSES
    if name not in IMAGE_BUILDERS:
        raise ValueError(
            f"unknown model {name!r}; expected one of: {', '.join(names())}"
        )
    module, func, shape, classes = IMAGE_BUILDERS[name]
    return _image_builder(module, func), shape, classes


def count_params(build):
    """Parameters of the model ``build()`` returns, none of them allocated.

    The model is built with its variables left uninitialised (Keras'
    deferred initialisation), then the session is cleared so that they
    never are. Builder checks (such as a minimum image size) still run.

    Example:

    >>> from kerasdl.models import linear_bn
    >>> count_params(lambda: linear_bn((2 ** 20, 2 ** 20, 3), 10))
    32985348833302

    Args:
        build: callable with no arguments returning a keras Model.

    Returns:
        int. The total parameter count.

    Raises:
        ValueError: the builder refused its arguments.
    """
    import keras

    try:
        with keras.StatelessScope(initialize_variables=False):
            model = build()
            total = sum(_size(w.shape) for w in model.weights)
    except OverflowError as e:
        raise ValueError(f"the model is too large to build: {e}") from None
    finally:
        keras.backend.clear_session()
    return total


def _size(shape):
    n = 1
    for d in shape:
        n *= int(d)
    return n
