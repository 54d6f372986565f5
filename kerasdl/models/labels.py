"""Class names that travel with a saved model.

A classifier saved to a ``.keras`` file forgets which output is which
class. ``with_class_names`` appends ``ClassNames``, a registered layer
without weights that passes its input through and keeps the names in its
config, so they survive ``model.save`` and
``keras.saving.load_model(path, safe_mode=True)`` (after
``import kerasdl``). ``class_names(model)`` reads them back.
"""

import keras

from kerasdl import _validate

__all__ = ["ClassNames", "class_names", "with_class_names"]


@keras.saving.register_keras_serializable(package="kerasdl")
class ClassNames(keras.layers.Layer):
    """Identity layer that records the names of a classifier's outputs.

    It has no weights: parameter counts and predictions are unchanged.

    Args:
        names: list of str. One name per output unit, in output order.
        **kwargs: passed to ``keras.layers.Layer``.
    """

    def __init__(self, names, **kwargs):
        kwargs.setdefault("name", "class_names")
        super().__init__(**kwargs)
        self.names = _validate.strings(names, "names")
        if len(set(self.names)) != len(self.names):
            raise ValueError(f"`names` must be unique. Received: "
                             f"names={self.names!r}.")
        self.supports_masking = True

    def call(self, inputs):
        return inputs

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "names": list(self.names)}


def class_names(model):
    """The class names recorded in ``model``, or ``None``.

    Example:

    >>> import kerasdl
    >>> model = kerasdl.with_class_names(
    ...     kerasdl.linear_bn((8, 8, 3), 2), ["cat", "dog"])
    >>> kerasdl.class_names(model)
    ['cat', 'dog']

    Args:
        model: keras.Model.

    Returns:
        list of str, or ``None`` when ``with_class_names`` was never
        applied.
    """
    for layer in reversed(model.layers):
        if isinstance(layer, ClassNames):
            return list(layer.names)
    return None


def with_class_names(model, names):
    """Returns ``model`` with ``names`` recorded for its output units.

    A ``keras.Sequential`` gets a ``ClassNames`` layer added in place (and
    is returned); any other model is wrapped in a functional model over
    the same layers (the weights are shared, not copied). Applying it
    again replaces the names.

    Example:

    >>> import kerasdl
    >>> model = kerasdl.linear_bn((8, 8, 3), 2)
    >>> model = kerasdl.with_class_names(model, ["cat", "dog"])
    >>> model.layers[-1].names, model.count_params()
    (['cat', 'dog'], 398)

    Args:
        model: keras.Model with one output whose last axis has one unit
            per class.
        names: list of str. The class names, in output order.

    Returns:
        The model carrying the names.

    Raises:
        ValueError: the number of names differs from the output units, or
            the model has several outputs.
    """
    if not isinstance(model, keras.Model):
        raise TypeError(f"`model` must be a keras.Model. Received: "
                        f"{type(model).__name__}.")
    names = _validate.strings(names, "names")
    if len(model.outputs) != 1:
        raise ValueError(
            f"with_class_names needs a model with one output; this one has "
            f"{len(model.outputs)}.")
    units = model.outputs[0].shape[-1]
    if units != len(names):
        raise ValueError(
            f"`names` must give one name per output unit: the model has "
            f"{units} and {len(names)} names were given ({names[:5]}...).")
    layer = ClassNames(names)
    if isinstance(model, keras.Sequential):
        if isinstance(model.layers[-1], ClassNames):
            model.pop(rebuild=True)
        model.add(layer)
        return model
    if isinstance(model.layers[-1], ClassNames):
        outputs = model.layers[-1].input
    else:
        outputs = model.outputs[0]
    # One input stays a bare tensor (not a one-element list), so that
    # predicting on an array does not warn about the inputs' structure.
    inputs = model.inputs[0] if len(model.inputs) == 1 else model.inputs
    return keras.Model(inputs, layer(outputs), name=model.name)
