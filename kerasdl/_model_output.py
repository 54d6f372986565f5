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

    layer, scope = model, None
    for _ in range(100):
        if isinstance(layer, ClassNames):
            source = None if scope is None else _before(scope, layer)
        elif isinstance(layer, keras.Model):
            outputs = getattr(layer, "outputs", None)
            source = None
            if outputs and not isinstance(layer, keras.Sequential):
                source = _producer(layer, outputs[0])
            if source is None and layer.layers:
                source = layer.layers[-1]
            scope = layer
        else:
            return layer
        if source is None or source is layer:
            return layer
        layer = source
    return layer


def _before(model, layer):
    """The layer whose output ``layer`` (called once) takes: the one
    before it in a ``Sequential``, found through the graph otherwise."""
    import keras

    if isinstance(model, keras.Sequential):
        index = next((i for i, l in enumerate(model.layers) if l is layer),
                     0)
        return model.layers[index - 1] if index > 0 else None
    return _producer(model, layer.input)


def _producer(model, tensor):
    """The layer of functional ``model`` whose output is ``tensor``,
    through each layer's public ``output`` (that of its first call: a
    ``Sequential`` calls its layers again whenever it is rebuilt, so its
    order is used instead); None if no layer's is."""
    for layer in reversed(model.layers):
        try:
            out = layer.output
        except (AttributeError, ValueError, RuntimeError):
            continue
        outs = out if isinstance(out, (list, tuple)) else [out]
        if any(o is tensor for o in outs):
            return layer
    return None


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
