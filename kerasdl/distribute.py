"""Data-parallel training and feature computation on Keras' own engines.

``data_parallel()`` sets up data parallelism over all local devices for
the active backend: ``keras.distribution.DataParallel`` over a one-axis
``DeviceMesh`` under JAX, ``tf.distribute.MirroredStrategy`` under
TensorFlow (``MultiWorkerMirroredStrategy`` with ``multi_worker=True``).
Build, compile and fit the model inside it::

    import kerasdl

    with kerasdl.data_parallel() as dp:
        model = kerasdl.conv_bn((60, 80, 3), 10)
        model.compile("adam", "sparse_categorical_crossentropy")
        kerasdl.fit_one_cycle(model, (x, y), 3, 1e-3,
                              batch_size=64 * dp.num_replicas)
        feats = kerasdl.precompute(base, images, "feats/")

What holds inside it:

- ``batch_size`` is the global batch: each of the ``num_replicas``
  devices computes ``batch_size / num_replicas`` rows of it, and the
  gradients are summed over the devices before every update, so one epoch
  gives the weights one device gives over the same batches (within float
  rounding). Use batch sizes that are multiples of ``num_replicas``.
- ``lr_find``, ``fit_one_cycle``, ``fit_sgdr``, ``ParamScheduler`` and
  ``GradientRatioAnnealer`` work unchanged: the learning rate and
  momentum are variables laid out like the model's, so every replica
  steps with the same rate; the LR finder restores every replica's
  weights; ``GradientSum`` sums the squared gradients after they are
  summed over the replicas (the statistic one device would see); stop
  decisions are taken on the host, once for all.
- ``features.precompute`` splits every chunk of images over the devices
  and writes one feature file, row for row the one a single device writes.
- ``MixedBatches(..., replicas=dp.num_replicas)`` gives every replica's
  share of a batch the same composition (with TensorFlow each replica
  normalises its own rows, so this keeps pseudo-labels a quarter of every
  replica's batch, not of only the last replica's);
  ``pseudo_label_rounds`` does so by itself.
- Under TensorFlow, ``BatchNormalization`` normalises each replica's rows
  on their own unless built with ``synchronized=True``; under JAX the
  statistics are over the whole batch, as on one device.

Several processes (hosts), JAX: call ``initialize()`` first in every
process (it wraps ``keras.distribution.initialize``: the coordinator's
address, the process count and this process's id, or the environment
variables Keras reads), then ``data_parallel()`` spans the devices of all
processes; each process feeds its own part of every global batch. Under
TensorFlow, set ``TF_CONFIG`` in every worker and pass
``multi_worker=True``. The PyTorch backend has no such engine in Keras:
``data_parallel`` refuses it with a clear error.
"""

import keras

from kerasdl import _backend


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
    return DataParallel(_backend.data_parallel_engine(chosen), chosen,
                        backend)


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


def initialize(job_addresses=None, num_processes=None, process_id=None):
    """Joins this process to a multi-process (multi-host) JAX job.

    Call it first in every process, before building anything; afterwards
    ``data_parallel()`` spans the devices of all processes. Arguments are
    those of ``keras.distribution.initialize`` (which also reads
    ``KERAS_DISTRIBUTION_JOB_ADDRESSES``, ``..._NUM_PROCESSES`` and
    ``..._PROCESS_ID``). Under TensorFlow use ``TF_CONFIG`` and
    ``data_parallel(multi_worker=True)`` instead.
    """
    if _backend.name() != "jax":
        raise ValueError(
            f"kerasdl.distribute.initialize() starts a multi-process JAX "
            f"job; the active backend is {_backend.name()!r}. Under "
            f"TensorFlow set TF_CONFIG and call "
            f"data_parallel(multi_worker=True).")
    keras.distribution.initialize(job_addresses, num_processes, process_id)


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
