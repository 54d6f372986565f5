"""The backend and its devices: which backend runs, the accelerator, data
parallelism (devices, replicas, engines) and the scope new variables
belong in.
"""

import contextlib

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


def variable_scope(model):
    """The context in which new variables belong with ``model``'s own:
    its ``tf.distribute`` strategy's scope under TensorFlow (mirrored over
    the replicas when the model was built under one); nothing elsewhere
    (under JAX the active ``keras.distribution`` lays variables out)."""
    if name() == "tensorflow":
        strategy = getattr(model, "distribute_strategy", None)
        if strategy is not None:
            return strategy.scope()
    return contextlib.nullcontext()


def replica_count(model=None):
    """Devices sharing every batch under the active data parallelism (a
    ``keras.distribution`` under JAX, a ``tf.distribute`` strategy under
    TensorFlow, or the one ``model`` was built in); 1 when none is."""
    backend = name()
    if backend == "jax":
        dist = keras.distribution.distribution()
        return 1 if dist is None else int(dist.device_mesh.devices.size)
    if backend == "tensorflow":
        import tensorflow as tf

        strategy = getattr(model, "distribute_strategy", None) \
            or tf.distribute.get_strategy()
        return int(strategy.num_replicas_in_sync)
    return 1


def local_devices():
    """Names of the devices data parallelism spreads over: accelerators
    when there are any, otherwise the CPU devices (several only when
    simulated); under JAX after ``keras.distribution.initialize``, those
    of every process."""
    if name() == "tensorflow":
        import tensorflow as tf

        return ([d.name for d in tf.config.list_logical_devices("GPU")]
                or [d.name for d in tf.config.list_logical_devices("CPU")])
    return [str(d) for d in keras.distribution.list_devices()]


def data_parallel_engine(devices):
    """Keras' data-parallel engine over ``devices``: a
    ``keras.distribution.DataParallel`` (JAX) or a
    ``tf.distribute.MirroredStrategy`` (TensorFlow)."""
    if name() == "tensorflow":
        import tensorflow as tf

        return tf.distribute.MirroredStrategy(devices)
    return keras.distribution.DataParallel(devices=devices)


def multi_worker_strategy():
    """TensorFlow's ``MultiWorkerMirroredStrategy`` (workers from
    ``TF_CONFIG``) and a name for each replica."""
    import tensorflow as tf

    engine = tf.distribute.MultiWorkerMirroredStrategy()
    return engine, [f"replica:{i}"
                    for i in range(engine.num_replicas_in_sync)]


def simulate_cpu_devices(n):
    """Makes the CPU appear as ``n`` devices (before first use)."""
    backend = name()
    if backend == "jax":
        import jax

        try:
            jax.config.update("jax_num_cpu_devices", n)
        except RuntimeError as e:
            raise RuntimeError(
                f"simulate_cpu_devices({n}) must run before JAX computes "
                f"anything; JAX already has {jax.device_count('cpu')} CPU "
                f"device(s) ({e}). Call it at the start of the program, or "
                f"set XLA_FLAGS=--xla_force_host_platform_device_count={n} "
                f"before starting Python.") from None
    elif backend == "tensorflow":
        import tensorflow as tf

        cpu = tf.config.list_physical_devices("CPU")[0]
        try:
            tf.config.set_logical_device_configuration(
                cpu, [tf.config.LogicalDeviceConfiguration()] * n)
        except RuntimeError as e:
            raise RuntimeError(
                f"simulate_cpu_devices({n}) must run before TensorFlow "
                f"computes anything ({e}). Call it at the start of the "
                f"program.") from None
    else:
        raise ValueError(f"simulate_cpu_devices needs the JAX or TensorFlow "
                         f"backend; the active backend is {backend!r}.")


def sum_over_replicas(values):
    """Inside a TensorFlow replica step with several replicas: the values
    summed over the replicas, and the replica count; elsewhere the values
    unchanged and 1 (under JAX a step sees the global values already)."""
    if name() != "tensorflow":
        return values, 1
    import tensorflow as tf

    context = tf.distribute.get_replica_context()
    if context is None or context.num_replicas_in_sync == 1:
        return values, 1
    return (context.all_reduce(tf.distribute.ReduceOp.SUM, values),
            context.num_replicas_in_sync)
