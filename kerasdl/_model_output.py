"""What a model's output is: the layer that makes it (through nested
models and the ``ClassNames`` layer), its units and the task its
activation says."""

__all__ = ["model_task", "output_layer", "output_units"]


def model_task(model):
    """The task a model's output activation says: softmax
    ``"single_label"``, sigmoid ``"multi_label"``, else ``"regression"``.

    Example:

    >>> import keras
    >>> model = keras.Sequential([keras.Input((3,)),
    ...                           keras.layers.Dense(4, activation="sigmoid")])
    >>> model_task(model)
    'multi_label'
    """
    layer = output_layer(model)
    kind = type(layer).__name__
    if kind == "Softmax":
        return "single_label"
    activation = getattr(layer, "activation", None)
    name = getattr(activation, "__name__", None)
    if name == "softmax":
        return "single_label"
    if name == "sigmoid":
        return "multi_label"
    return "regression"


def output_layer(model):
    """The layer that makes the model's output, looking through nested
    models and the ``ClassNames`` layer."""
    import keras

    from kerasdl.models.labels import ClassNames

    layer = model
    for _ in range(100):
        if isinstance(layer, ClassNames):
            source = _history(layer.input)
        elif isinstance(layer, keras.Model):
            source = _history(layer.outputs[0]) if getattr(
                layer, "outputs", None) else None
            if source is None and layer.layers:
                source = layer.layers[-1]
        else:
            return layer
        if source is None or source is layer:
            return layer
        layer = source
    return layer


def _history(tensor):
    history = getattr(tensor, "_keras_history", None)
    return None if history is None else history[0]


def output_units(model, who):
    """The units of the model's one output.

    Raises:
        ValueError: the model has several outputs (``who`` names the
            caller in the message).
    """
    outputs = getattr(model, "outputs", None) or []
    if len(outputs) != 1:
        raise ValueError(f"{who} needs a model with one output; "
                         f"{model.name!r} has {len(outputs)}.")
    return int(outputs[0].shape[-1])
