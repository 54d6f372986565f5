"""The JAX calls of a job of several processes: joining it, who is who,
waiting for each other and gathering host arrays. The rest of
``kerasdl.distribute`` stays free of backend imports; this module is its
one window onto JAX (imported only under the JAX backend)."""

import numpy as np


def join(coordinator, num_processes, process_id, timeout):
    """``jax.distributed.initialize`` with a connection deadline a little
    past ``timeout`` (the caller's watchdog reports first)."""
    import jax

    jax.distributed.initialize(
        coordinator_address=coordinator, num_processes=num_processes,
        process_id=process_id,
        initialization_timeout=int(timeout) + 60)


def same_random_seed():
    """What ``keras.distribution.initialize`` does after joining: one seed
    for every process (unless one was set), so replicated variables start
    equal everywhere. A collective over every process's CPU device."""
    from keras.src.backend.jax import distribution_lib

    distribution_lib.initialize_rng()


def is_initialized():
    """Whether this process has joined a JAX job of several processes
    (never starts the backend)."""
    import jax

    return bool(jax.distributed.is_initialized())


def process_index():
    import jax

    return int(jax.process_index())


def process_count():
    import jax

    return int(jax.process_count())


def local_device_count():
    import jax

    return int(jax.local_device_count())


def _client():
    from jax._src import distributed

    client = distributed.global_state.client
    if client is None:
        raise RuntimeError("this process has not joined a JAX job")
    return client


def device_counts(timeout):
    """Every process's local device count, in process order (exchanged
    through the coordinator's key-value store, no device collective)."""
    client = _client()
    me, n = process_index(), process_count()
    client.key_value_set(f"kerasdl/local_devices/{me}",
                         str(local_device_count()))
    return [int(client.blocking_key_value_get(
        f"kerasdl/local_devices/{i}", int(timeout * 1000)))
        for i in range(n)]


def barrier(name, timeout):
    """Waits until every process reaches the barrier called ``name`` (the
    coordination service counts repeated uses of a name); raises
    ``TimeoutError`` after ``timeout`` seconds with how many arrived."""
    import re

    try:
        _client().wait_at_barrier(f"kerasdl/{name}", int(timeout * 1000))
    except Exception as e:  # the runtime's own error type is not public
        text = str(e)
        if "DEADLINE_EXCEEDED" not in text and "timed out" not in text:
            raise
        arrived = re.search(r"reached the barrier: (\d+)/(\d+)", text)
        raise TimeoutError(
            f"{arrived.group(1)} of {arrived.group(2)} processes reached it"
            if arrived else text.splitlines()[0]) from None


def gather_rows(x):
    """Every process's rows of ``x`` in process order, on every process
    (the rows may differ in number; the other dimensions may not)."""
    from jax.experimental import multihost_utils

    x = np.asarray(x)
    rows = multihost_utils.process_allgather(
        np.asarray([x.shape[0]], "int64"))
    rows = [int(r) for r in np.asarray(rows).reshape(-1)]
    most = max(rows)
    padded = np.zeros((most,) + x.shape[1:], x.dtype)
    padded[:x.shape[0]] = x
    every = np.asarray(multihost_utils.process_allgather(padded))
    every = every.reshape((len(rows), most) + x.shape[1:])
    return np.concatenate([every[i, :r] for i, r in enumerate(rows)])
