"""Training a recommender with every epoch run as one device program.

Tiny steps (an embedding model at batch 64) cost more in Python and
dispatch than in arithmetic; under JAX ``fit_on_device`` runs a whole
epoch (shuffle, then one ``train_step`` per batch) as one compiled call.
It needs JAX and says so on any other backend, where ``model.fit`` with
``steps_per_execution`` is the way to fewer calls.
"""

import weakref

import keras

from kerasdl import _backend

_EPOCH_FUNCTIONS = weakref.WeakKeyDictionary()


def fit_on_device(model, x, y, *, batch_size, epochs, seed=0):
    """Trains a compiled model with every epoch run as one device program.

    The last partial batch of every epoch is trained too.

    Args:
        model: a compiled ``keras.Model``.
        x: dict or array of inputs (numpy), all of the same length.
        y: numpy array of targets.
        batch_size: int.
        epochs: int.
        seed: int. Seed of the shuffling.

    Returns:
        A list of the mean training loss of each epoch.

    Raises:
        ValueError: the backend is not JAX.
    """
    backend = _backend.name()
    if backend != "jax":
        raise ValueError(
            f"fit_on_device runs an epoch as one JAX program and needs "
            f"KERAS_BACKEND=jax; the active backend is {backend!r}. Use "
            f"model.fit (with steps_per_execution for fewer calls), or "
            f"fit_recipe(..., on_device=False).")
    n = len(y)
    x = keras.tree.map_structure(keras.ops.convert_to_tensor, x)
    y = keras.ops.convert_to_tensor(y)
    cache = _EPOCH_FUNCTIONS.setdefault(model, {})
    if not cache:  # build the compiled metrics and the optimizer
        first = keras.tree.map_structure(lambda a: a[:batch_size], x)
        model.evaluate(first, y[:batch_size], batch_size=batch_size,
                       verbose=0)
        model.reset_metrics()
    if not model.optimizer.built:
        model.optimizer.build(model.trainable_variables)
    groups = (model.trainable_variables, model.non_trainable_variables,
              model.optimizer.variables, model.metrics_variables)
    state = tuple([v.value for v in g] for g in groups)

    signature = (n, batch_size, tuple(keras.tree.flatten(
        keras.tree.map_structure(lambda a: (a.shape, str(a.dtype)), x))))
    if signature not in cache:  # compiled once per model and data shape
        cache[signature] = _backend.epoch_program(model, n, batch_size)
    run = cache[signature]
    losses = []
    for e in range(epochs):
        state, loss = run(state, seed, e, x, y)
        losses.append(loss)
    for group, values in zip(groups, state):
        for variable, value in zip(group, values):
            variable.assign(value)
    return [float(v) for v in losses]
