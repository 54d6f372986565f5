"""The one place where kerasdl talks to TensorFlow, JAX or PyTorch directly.

Everything else in the package uses ``keras.ops``. Each helper here has a
test on every backend (tests/test_backend.py).
"""

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

        trainable = [v.value for v in model.trainable_variables]
        non_trainable = [v.value for v in model.non_trainable_variables]

        def pure(tv, ntv, x, *extra):
            if prepare is not None:
                x = prepare(x, *extra)
            y, _ = model.stateless_call(tv, ntv, x, training=False)
            return y if finish is None else finish(y)

        jitted = jax.jit(pure)
        return lambda x, *extra: jitted(trainable, non_trainable, x, *extra)

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

