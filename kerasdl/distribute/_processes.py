"""A job of several processes (one per GPU or per host): joining it,
who is who, waiting for each other and collecting rows on every process
(``_batches``: each process's part of every batch)."""

import os
import sys
import threading

import numpy as np

from kerasdl import _backend
from kerasdl import _validate

DEFAULT_TIMEOUT = 300.0
# exit status of a process that could not join the job in time (the
# launcher reports it; 124 is the usual "timed out" status)
JOIN_TIMEOUT_STATUS = 124


def _env_int(name):
    value = os.environ.get(name)
    if value in (None, ""):
        return None
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"The environment variable {name} must be an "
                         f"integer. Received: {name}={value!r}.") from None


def initialize(job_addresses=None, num_processes=None, process_id=None, *,
               timeout=None, devices_per_process=None):
    """Joins this process to a JAX job of several processes (hosts or GPUs).

    Call it first in every process, before building anything; afterwards
    ``data_parallel()`` spans the devices of every process and each
    process feeds its own part of every batch (``process_batches``).
    ``kerasdl.distribute.launch`` and ``python -m kerasdl.distribute``
    start such a job on one machine and set everything through the
    environment, so there a bare ``initialize()`` is enough.

    Args:
        job_addresses: str or None. ``"host:port"`` of process 0 (the
            coordinator), or every process's address separated by commas
            (the first is used). Defaults to
            ``KERAS_DISTRIBUTION_JOB_ADDRESSES``.
        num_processes: int or None. Processes in the job. Defaults to
            ``KERAS_DISTRIBUTION_NUM_PROCESSES``.
        process_id: int or None. This process, ``0 <= process_id <
            num_processes``. Defaults to ``KERAS_DISTRIBUTION_PROCESS_ID``.
            With none of the three given nor set, Keras' own
            ``keras.distribution.initialize()`` detects the cluster
            (Slurm, Cloud TPU ...).
        timeout: float or None. Seconds to wait for every process to join;
            a process still waiting then prints one line naming the
            coordinator and exits with status 124. Defaults to
            ``KERASDL_JOIN_TIMEOUT`` or 300.
        devices_per_process: int or None. The devices every process must
            see (``KERASDL_DEVICES_PER_PROCESS``). Whether given or not,
            processes that see different numbers of devices are refused.

    Raises:
        ValueError: not the JAX backend, a bad argument, or processes that
            disagree on their device count (raised in every process).
    """
    if _backend.name() != "jax":
        raise ValueError(
            f"kerasdl.distribute.initialize() starts a multi-process JAX "
            f"job; the active backend is {_backend.name()!r}. Set "
            f"KERAS_BACKEND=jax, or under TensorFlow set TF_CONFIG and call "
            f"data_parallel(multi_worker=True).")
    from kerasdl.distribute import _jax_job

    if _jax_job.is_initialized():
        return
    address = job_addresses or os.environ.get(
        "KERAS_DISTRIBUTION_JOB_ADDRESSES")
    if num_processes is None:
        num_processes = _env_int("KERAS_DISTRIBUTION_NUM_PROCESSES")
    if process_id is None:
        process_id = _env_int("KERAS_DISTRIBUTION_PROCESS_ID")
    if devices_per_process is None:
        devices_per_process = _env_int("KERASDL_DEVICES_PER_PROCESS")
    if timeout is None:
        timeout = float(os.environ.get("KERASDL_JOIN_TIMEOUT",
                                       DEFAULT_TIMEOUT))
    if address is None and num_processes is None and process_id is None:
        import keras

        keras.distribution.initialize()
        return
    if not address or num_processes is None or process_id is None:
        raise ValueError(
            f"initialize() needs the coordinator's address, the number of "
            f"processes and this process's id, as arguments or as "
            f"KERAS_DISTRIBUTION_JOB_ADDRESSES, _NUM_PROCESSES and "
            f"_PROCESS_ID. Received: job_addresses={address!r}, "
            f"num_processes={num_processes!r}, process_id={process_id!r}.")
    num_processes = _validate.integer(num_processes, "num_processes", low=1)
    process_id = _validate.integer(
        process_id, "process_id", low=0, high=num_processes - 1,
        hint="Number the processes 0 .. num_processes - 1.")
    timeout = _validate.positive(timeout, "timeout")
    coordinator = address.split(",")[0].strip()
    watchdog = _watchdog(coordinator, num_processes, process_id, timeout)
    try:
        _jax_job.join(coordinator, num_processes, process_id, timeout)
        counts = _jax_job.device_counts(timeout)
    finally:
        watchdog.cancel()
    _check_devices(counts, devices_per_process, process_id)
    _jax_job.same_random_seed()


def _watchdog(coordinator, n, me, timeout):
    def give_up():
        sys.stderr.write(
            f"kerasdl.distribute: process {me} of {n} could not join the "
            f"job through the coordinator {coordinator} within {timeout:g} "
            f"s: not every process reached it. Check that all {n} processes "
            f"were started with the same address and process count, that "
            f"process 0 runs on that host and the port is open between "
            f"them; or raise timeout= (KERASDL_JOIN_TIMEOUT).\n")
        sys.stderr.flush()
        os._exit(JOIN_TIMEOUT_STATUS)

    timer = threading.Timer(timeout, give_up)
    timer.daemon = True
    timer.start()
    return timer


def _check_devices(counts, expected, me):
    described = ", ".join(f"process {i}: {c}" for i, c in enumerate(counts))
    if len(set(counts)) > 1:
        raise ValueError(
            f"The processes of this job disagree on their device count "
            f"({described}); data parallelism needs the same number in "
            f"every process. Give each process the same devices (one GPU "
            f"each: CUDA_VISIBLE_DEVICES, as kerasdl.distribute.launch "
            f"sets it).")
    if expected is not None and counts[me] != expected:
        raise ValueError(
            f"Every process was to see {expected} device(s) "
            f"(devices_per_process / KERASDL_DEVICES_PER_PROCESS); they see "
            f"{counts[me]} ({described}). Check CUDA_VISIBLE_DEVICES, or "
            f"launch with the device count the machine has.")


def _multi_process_jax():
    if _backend.name() != "jax":
        return False
    from kerasdl.distribute import _jax_job

    return _jax_job.is_initialized()


def _tf_config_tasks():
    """(this task's index, task count) from TF_CONFIG, or None."""
    import json

    raw = os.environ.get("TF_CONFIG")
    if not raw:
        return None
    config = json.loads(raw)
    cluster = config.get("cluster", {})
    order = [(kind, i) for kind in ("chief", "worker")
             for i in range(len(cluster.get(kind, [])))]
    task = config.get("task", {})
    me = (task.get("type"), int(task.get("index", 0)))
    if me not in order:
        return None
    return order.index(me), len(order)


def process_index():
    """This process's number in the job: 0 .. ``process_count() - 1``; 0
    when it runs alone. Under TensorFlow the task's place in ``TF_CONFIG``
    (the chief first, then the workers)."""
    if _multi_process_jax():
        from kerasdl.distribute import _jax_job

        return _jax_job.process_index()
    if _backend.name() == "tensorflow":
        tasks = _tf_config_tasks()
        return 0 if tasks is None else tasks[0]
    return 0


def process_count():
    """How many processes the job has; 1 when this process runs alone."""
    if _multi_process_jax():
        from kerasdl.distribute import _jax_job

        return _jax_job.process_count()
    if _backend.name() == "tensorflow":
        tasks = _tf_config_tasks()
        return 1 if tasks is None else tasks[1]
    return 1


def is_writer():
    """Whether this process writes the job's files (process 0 does):
    checkpoints, reports, features. The others compute the same results
    and wait for them with ``barrier``.

    Example:

    >>> from kerasdl import distribute
    >>> distribute.is_writer()  # a process on its own writes
    True
    """
    return process_index() == 0


def barrier(name, *, timeout=None):
    """Waits until every process of the job reaches ``barrier(name)``.

    Every process must call the same barriers in the same order. Typical
    use: process 0 writes a file, then all call ``barrier("saved")``, then
    any may read it. A process on its own returns at once.

    Args:
        name: str. Names the meeting point in error messages.
        timeout: float or None. Seconds to wait. Defaults to
            ``KERASDL_JOIN_TIMEOUT`` or 300.

    Raises:
        TimeoutError: the others did not all arrive in time.
        ValueError: several TensorFlow workers (no barrier is provided
            there; use the JAX backend).
    """
    name = str(name)
    if timeout is None:
        timeout = float(os.environ.get("KERASDL_JOIN_TIMEOUT",
                                       DEFAULT_TIMEOUT))
    timeout = _validate.positive(timeout, "timeout")
    if process_count() == 1:
        return
    if not _multi_process_jax():
        raise ValueError(
            f"barrier({name!r}) between TensorFlow workers is not provided; "
            f"a job of several processes needs KERAS_BACKEND=jax for it.")
    from kerasdl.distribute import _jax_job

    try:
        _jax_job.barrier(name, timeout)
    except TimeoutError as e:
        raise TimeoutError(
            f"barrier({name!r}): process {process_index()} of "
            f"{process_count()} waited {timeout:g} s; {e}. One may have "
            f"failed or taken another path: every process must call the "
            f"same barriers, in the same order.") from None


def gather(rows):
    """Every process's ``rows`` stacked in process order, returned on every
    process (for example the features each computed over its own images,
    before process 0 writes them). The row counts may differ; the other
    dimensions and the dtype must match. Alone, returns ``rows`` as numpy.

    Raises:
        ValueError: several TensorFlow workers (JAX only).
    """
    if process_count() == 1:
        return np.asarray(rows)
    if not _multi_process_jax():
        raise ValueError("gather() between TensorFlow workers is not "
                         "provided; use KERAS_BACKEND=jax.")
    from kerasdl.distribute import _jax_job

    return _jax_job.gather_rows(rows)
