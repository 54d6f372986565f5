"""Data parallelism over devices: ``data_parallel`` and ``DataParallel``
(the package docstring, ``kerasdl.distribute``, says what holds inside it)."""

import keras

from kerasdl import _backend
from kerasdl.distribute import _processes


class DataParallel:
    """Data parallelism over a set of devices; use it as a context manager.

    Entering it makes the backend's engine active (a Keras distribution
    under JAX, a strategy's scope under TensorFlow); leaving it puts back
    whatever was active before. Models built inside it are replicated on
    every device.

    Example:

    >>> import kerasdl
    >>> dp = kerasdl.data_parallel()
    >>> dp.num_replicas >= 1
    True
    >>> with dp:
    ...     model = keras.Sequential([keras.Input((4,)),
    ...                               keras.layers.Dense(2)])

    Attributes:
        backend: str. The Keras backend it was made for.
        devices: list of str. The devices, in replica order.
        num_replicas: int. How many devices share every batch.
        engine: the ``keras.distribution.DataParallel`` (JAX) or the
            ``tf.distribute`` strategy (TensorFlow) underneath.
    """

    def __init__(self, engine, devices, backend):
        self.engine, self.devices, self.backend = engine, devices, backend
        self.num_replicas = len(devices)
        self._stack = []

    def __enter__(self):
        if self.backend == "jax":
            previous = keras.distribution.distribution()
            keras.distribution.set_distribution(self.engine)
            self._stack.append(previous)
        else:
            scope = self.engine.scope()
            scope.__enter__()
            self._stack.append(scope)
        return self

    def __exit__(self, *exc):
        top = self._stack.pop()
        if self.backend == "jax":
            keras.distribution.set_distribution(top)
            return False
        return top.__exit__(*exc)

    def global_batch_size(self, per_replica):
        """The global batch that gives each replica ``per_replica`` rows."""
        return int(per_replica) * self.num_replicas

    def __repr__(self):
        return (f"DataParallel(backend={self.backend!r}, "
                f"num_replicas={self.num_replicas}, devices={self.devices})")


def data_parallel(devices=None, *, multi_worker=False):
    """Data parallelism over all local devices for the active backend.

    Args:
        devices: list of device names, an int (the first N devices) or
            ``None`` for all of them: accelerators when there are any,
            otherwise the CPU devices (several only when simulated, see
            ``simulate_cpu_devices``). Under JAX after ``initialize()``,
            ``None`` means every device of every process.
        multi_worker: bool. TensorFlow only: a
            ``MultiWorkerMirroredStrategy`` over the workers named in
            ``TF_CONFIG`` instead of a ``MirroredStrategy`` over this
            machine's devices.

    Returns:
        A ``DataParallel``: enter it with ``with`` around building,
        compiling and fitting the model.

    Raises:
        ValueError: no such devices, or a device list on the torch
            backend, which Keras cannot distribute.
    """
    backend = _backend.name()
    if backend not in ("jax", "tensorflow"):
        raise ValueError(
            f"data_parallel() needs the JAX or TensorFlow backend; the "
            f"active backend is {backend!r}, for which Keras has no "
            f"data-parallel engine. Set KERAS_BACKEND=jax (or tensorflow) "
            f"before importing keras.")
    if multi_worker:
        if backend != "tensorflow" or devices is not None:
            raise ValueError(
                "data_parallel(multi_worker=True) is for TensorFlow and takes "
                "its devices from TF_CONFIG; received "
                f"backend={backend!r}, devices={devices!r}. Under JAX call "
                "initialize() first; pass devices or multi_worker, not both.")
        engine, names = _backend.multi_worker_strategy()
        return DataParallel(engine, names, backend)
    chosen = _choose(_backend.local_devices(), devices)
    engine = _backend.data_parallel_engine(chosen)
    if backend == "jax" and _processes.process_count() > 1:
        # every process passes its own part of each global batch
        # (``process_batches``); Keras would otherwise ask for a tf.data
        # pipeline to cut
        engine.auto_shard_dataset = False
    return DataParallel(engine, chosen, backend)


def _choose(found, devices):
    found = [str(d) for d in found]
    if devices is None:
        return found
    if isinstance(devices, int):
        if not 1 <= devices <= len(found):
            raise ValueError(
                f"data_parallel(devices={devices}) asks for {devices} "
                f"devices; {len(found)} are visible ({', '.join(found)}). "
                f"Pass at most {len(found)}.")
        return found[:devices]
    chosen = [str(d) for d in devices]
    missing = [d for d in chosen if d not in found]
    if missing or not chosen:
        raise ValueError(
            f"data_parallel(devices=...) names {missing or 'no devices'}, "
            f"not among the visible devices {found}. Pass names from that "
            f"list, an int, or None for all.")
    return chosen


def active_replicas():
    """How many devices share the computation of a model built now: the
    active JAX distribution's devices or TensorFlow strategy's replicas;
    1 when none is active."""
    return _backend.replica_count()


def simulate_cpu_devices(n):
    """Splits the CPU into ``n`` devices, to try data parallelism without
    accelerators (the tests do). Call it before any computation: JAX and
    TensorFlow fix their devices when first used.

    Raises:
        RuntimeError: the backend's devices are already initialised.
    """
    _backend.simulate_cpu_devices(int(n))
