"""Named builders for the command line (``kerasdl summary NAME``)."""

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

# Embedding recommenders (lesson 4): the "input shape" is (users, items,
# factors), by default ml-latest-small's 671 x 9,066 x 50; classes unused.
COLLAB_BUILDERS = {"dot": "dot", "dot_bias": "dot_bias"}
COLLAB_SHAPE = (671, 9066, 50)


def _collab_builder(func):
    def build(shape, classes=None):
        from kerasdl.models import collab

        return getattr(collab, func)(*shape)

    return build


def names():
    """The model names ``kerasdl summary`` accepts, sorted."""
    return sorted([*IMAGE_BUILDERS, *COLLAB_BUILDERS])


def lookup(name):
    """Returns ``(builder, default_input_shape, default_classes)``.

    Raises:
        ValueError: ``name`` is not a known model.
    """
    if name in COLLAB_BUILDERS:
        return _collab_builder(COLLAB_BUILDERS[name]), COLLAB_SHAPE, None
    if name not in IMAGE_BUILDERS:
        raise ValueError(
            f"unknown model {name!r}; expected one of: {', '.join(names())}"
        )
    module, func, shape, classes = IMAGE_BUILDERS[name]
    return getattr(importlib.import_module(module), func), shape, classes
