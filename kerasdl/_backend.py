"""The one place where kerasdl talks to TensorFlow, JAX or PyTorch directly.

Everything else in the package uses ``keras.ops``. Each helper here has a
test on every backend (tests/test_precision_and_backend.py, tests/test_collab_models.py,
tests/test_features.py).
"""

import weakref

import keras


def name():
    """Returns the active Keras backend: "tensorflow", "jax" or "torch"."""
    return keras.backend.backend()


def accelerator():
    """Describes the first accelerator the active backend sees.

    Returns:
        A dict with ``kind`` ("gpu" or "cpu"), ``name`` and
        ``compute_capability`` (a ``(major, minor)`` tuple for CUDA GPUs,
        otherwise ``None``).
    """
    backend = name()
    if backend == "jax":
        import jax

        for device in jax.devices():
            if device.platform == "gpu":
                cc = getattr(device, "compute_capability", None)
                return {
                    "kind": "gpu",
                    "name": device.device_kind,
                    "compute_capability": _parse_cc(cc),
                }
    elif backend == "tensorflow":
        import tensorflow as tf

        gpus = tf.config.list_physical_devices("GPU")
        if gpus:
            details = tf.config.experimental.get_device_details(gpus[0])
            return {
                "kind": "gpu",
                "name": details.get("device_name", "GPU"),
                "compute_capability": details.get("compute_capability"),
            }
    elif backend == "torch":
        import torch

        if torch.cuda.is_available():
            return {
                "kind": "gpu",
                "name": torch.cuda.get_device_name(0),
                "compute_capability": tuple(
                    torch.cuda.get_device_capability(0)
                ),
            }
    return {"kind": "cpu", "name": "cpu", "compute_capability": None}


def _parse_cc(cc):
    if cc is None:
        return None
    if isinstance(cc, (tuple, list)):
        return tuple(int(c) for c in cc)
    major, _, minor = str(cc).partition(".")
    return (int(major), int(minor or 0))


def global_rng_state():
    """The global random generators that ``fit`` may draw from
    (shuffling, data adapters): Python's, numpy's and, under torch,
    torch's. Pass the result to ``set_global_rng_state``."""
    import random

    import numpy as np

    state = {"python": random.getstate(), "numpy": np.random.get_state()}
    if name() == "torch":
        import torch

        state["torch"] = torch.get_rng_state()
    return state


def set_global_rng_state(state):
    """Puts back what ``global_rng_state`` returned."""
    import random

    import numpy as np

    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    if "torch" in state:
        import torch

        torch.set_rng_state(state["torch"])


def synchronize(x):
    """Blocks until ``x`` (a tensor or nested structure) is computed."""
    backend = name()
    if backend == "jax":
        import jax

        jax.block_until_ready(x)
    elif backend == "torch":
        import torch

        if torch.cuda.is_available():
            torch.cuda.synchronize()
    else:
        keras.tree.map_structure(
            lambda t: keras.ops.convert_to_numpy(t) if hasattr(t, "shape")
            else t,
            x,
        )
    return x


def compiled_inference(model, prepare=None, finish=None):
    """Returns ``f(x, *extra)``: ``finish(model(prepare(x, *extra)))`` in
    inference mode, compiled once and reused (``jax.jit`` over ``stateless_call`` under
    JAX, ``tf.function`` under TensorFlow; eager under torch). The result
    stays on the device; fetch it with ``to_host``.
    """
    backend = name()
    if backend == "jax":
        import jax

        def pure(tv, ntv, x, *extra):
            if prepare is not None:
                x = prepare(x, *extra)
            y, _ = model.stateless_call(tv, ntv, x, training=False)
            return y if finish is None else finish(y)

        jitted = jax.jit(pure)
        def call(x, *extra):  # current weights, read at every call
            return jitted([v.value for v in model.trainable_variables],
                          [v.value for v in model.non_trainable_variables],
                          x, *extra)

        return call

    def forward(x, *extra):
        if prepare is not None:
            x = prepare(x, *extra)
        y = model(x, training=False)
        return y if finish is None else finish(y)

    if backend == "tensorflow":
        import tensorflow as tf

        return tf.function(forward, reduce_retracing=True)
    if backend == "torch":
        import torch

        def no_grad(x, *extra):
            with torch.no_grad():
                return forward(x, *extra)

        return no_grad
    return forward


def to_device(x):
    """Starts copying a host array to the accelerator (asynchronously where
    the backend allows) and returns the device array."""
    if name() == "jax":
        import jax

        return jax.device_put(x)
    return keras.ops.convert_to_tensor(x)


def start_fetch(y):
    """Starts copying a device result to the host without waiting."""
    if name() == "jax" and hasattr(y, "copy_to_host_async"):
        y.copy_to_host_async()
    return y


def to_host(y):
    """A device result as a numpy array (waits for it)."""
    return keras.ops.convert_to_numpy(y)


_EPOCH_FUNCTIONS = weakref.WeakKeyDictionary()


def _epoch_function(model, n, batch_size):
    import jax
    import jax.numpy as jnp

    steps, rem = divmod(n, batch_size)

    def take(x, y, index):
        return (keras.tree.map_structure(lambda a: a[index], x), y[index],
                None)

    def epoch(state, key, x, y):
        perm = jax.random.permutation(key, n)
        full = perm[:steps * batch_size].reshape(steps, batch_size)

        def body(state, index):
            logs, state = model.train_step(state, take(x, y, index))
            return state, logs["loss"]

        state, losses = jax.lax.scan(body, state, full)
        total = jnp.sum(losses) * batch_size
        if rem:
            logs, state = model.train_step(
                state, take(x, y, perm[steps * batch_size:]))
            total = total + logs["loss"] * rem
        return state, total / n

    return jax.jit(epoch)


def fit_on_device(model, x, y, *, batch_size, epochs, seed=0):
    """Trains a compiled model with every epoch run as one device program.

    On JAX the whole epoch (shuffle, then one ``train_step`` per batch
    under ``jax.lax.scan``) is one compiled call, so tiny steps (an
    embedding model at batch 64) cost no Python or dispatch time each; the
    last partial batch is trained too. Other backends call ``model.fit``
    (shuffled, silent).

    Args:
        model: a compiled ``keras.Model``.
        x: dict or array of inputs (numpy), all of the same length.
        y: numpy array of targets.
        batch_size: int.
        epochs: int.
        seed: int. Seed of the shuffling (JAX).

    Returns:
        A list of the mean training loss of each epoch.
    """
    if name() != "jax":
        history = model.fit(x, y, batch_size=batch_size, epochs=epochs,
                            shuffle=True, verbose=0)
        return [float(v) for v in history.history["loss"]]
    import jax
    import jax.numpy as jnp

    n = len(y)
    x = keras.tree.map_structure(jnp.asarray, x)
    y = jnp.asarray(y)
    first = keras.tree.map_structure(lambda a: a[:batch_size], x)
    model._symbolic_build(data_batch=(first, y[:batch_size], None))
    groups = (model.trainable_variables, model.non_trainable_variables,
              model.optimizer.variables, model.metrics_variables)
    state = tuple([v.value for v in g] for g in groups)

    signature = (n, batch_size, tuple(keras.tree.flatten(
        keras.tree.map_structure(lambda a: (a.shape, str(a.dtype)), x))))
    cache = _EPOCH_FUNCTIONS.setdefault(model, {})
    if signature not in cache:  # compiled once per model and data shape
        cache[signature] = _epoch_function(model, n, batch_size)
    epoch = cache[signature]
    losses = []
    for e in range(epochs):
        key = jax.random.fold_in(jax.random.PRNGKey(seed), e)
        state, loss = epoch(state, key, x, y)
        losses.append(loss)
    for group, values in zip(groups, state):
        for variable, value in zip(group, values):
            variable.assign(value)
    return [float(v) for v in losses]
