"""The engine behind ``precompute``: batches in, model outputs out, with
the transfers overlapped with the computation.

Host batches are prepared on threads (decoding, slicing, augmentation
parameters), sent to the device as uint8, pushed through one compiled
function and fetched asynchronously, ``depth`` batches behind the batch
being computed. With several devices each one runs this pipeline on its
own chunks. Private: used by kerasdl.features and the benchmarks.
"""

import collections
import concurrent.futures
import contextlib
import queue
import threading
import weakref

import keras
import numpy as np

from kerasdl import _backend


def low_precision_copy(model, policy):
    """A copy of ``model`` whose layers compute under ``policy`` (such as
    "mixed_bfloat16"), with the same weights."""

    def clone(layer):
        config = layer.get_config()
        config["dtype"] = policy
        return layer.__class__.from_config(config)

    try:
        with _backend.variable_scope(model):
            copy = keras.models.clone_model(model, clone_function=clone)
    except Exception as e:  # clone_model raises several kinds
        raise ValueError(
            f"Could not rebuild model {model.name!r} to compute in {policy} "
            f"({type(e).__name__}: {e}). Build it under "
            f"kerasdl.mixed_precision() or pass compute_dtype='float32'."
        ) from None
    copy.set_weights(model.get_weights())
    return copy


_STEPS = weakref.WeakKeyDictionary()


def make_step(model, augment=None, out_dtype="float16", input_dtype="uint8"):
    """The compiled step: uint8 images (+ augmentation uniforms) in,
    ``out_dtype`` model outputs out. Reused for the same model, augment
    layer and dtypes, so a second call compiles nothing."""
    key = (id(augment), out_dtype, input_dtype)
    cached = _STEPS.setdefault(model, {})
    if key not in cached or cached[key][0] is not augment:
        cached[key] = (augment, _make_step(model, augment, out_dtype,
                                           input_dtype))
    return cached[key][1]


def _make_step(model, augment, out_dtype, input_dtype):
    parts = []
    if augment is not None:
        parts = augment.layers if isinstance(augment, keras.Sequential) \
            else [augment]

    def prepare(x, *uniforms):
        if parts:
            x = keras.ops.cast(x, "float32")
            for part, u in zip(parts, uniforms):
                x = part.transform(x, u)
            x = keras.ops.clip(keras.ops.round(x), 0, 255)
        return keras.ops.cast(x, input_dtype)

    step = _backend.compiled_inference(
        model, prepare, lambda y: keras.ops.cast(y, out_dtype))
    return step, [p.n_uniforms for p in parts]


def run(step, n_chunks, load, sink, *, depth=2, threads=2, progress=None):
    """Runs a compiled step over chunks ``0..n_chunks-1``.

    Loader threads prepare the next chunks and start their copies to the
    device; one thread only dispatches ``step``; a fetch thread waits for
    each result, copies it to the host and calls ``sink``, so transfers in
    both directions overlap the computation.

    With several devices (``step`` a list of ``(device, step)`` pairs,
    see ``device_steps``) every device is its own stream: chunk ``k``
    goes to device ``k % len(step)``, which has its own loader threads,
    dispatching thread and fetch thread, so no stage is shared. ``sink``
    is then called from several threads, in chunk order per device.

    Args:
        step: compiled function (device input, *extras) -> device
            output, or a list of ``(device name, step)``.
        n_chunks: int. Chunks to process; ``load(k)`` must be pure.
        load: ``load(k) -> (x, extras, n_valid)`` host arrays.
        sink: ``sink(k, y_host_first_n_valid)``.
        depth: int. Results in flight per device before dispatch waits;
            0 runs each chunk to the end before the next (no fetch
            thread).
        threads: int. Host threads preparing the next chunks, per
            device.
        progress: callable or None, called with the chunk count done.
    """
    if n_chunks == 0:
        return
    streams = step if isinstance(step, list) else [(None, step)]
    done, lock = [0], threading.Lock()

    def count():
        with lock:
            done[0] += 1
            n = done[0]
        if progress is not None:
            progress(n)

    if len(streams) == 1:
        device, fn = streams[0]
        with _scope(device):
            _stream(fn, list(range(n_chunks)), load, sink, depth, threads,
                    device, count)
        return
    failures = []

    def go(d, device, fn):
        try:
            with _scope(device):
                _stream(fn, list(range(d, n_chunks, len(streams))), load,
                        sink, depth, threads, device, count)
        except BaseException as e:  # re-raised below
            failures.append(e)

    workers = [threading.Thread(target=go, args=(d, device, fn),
                                name=f"kerasdl-device-{d}", daemon=True)
               for d, (device, fn) in enumerate(streams)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    if failures:
        raise failures[0]


def _scope(device):
    return contextlib.nullcontext() if device is None else \
        keras.device(device)


def _stream(step, chunks, load, sink, depth, threads, device, count):
    """One device's pipeline over ``chunks`` (run on the calling
    thread, inside that device's scope)."""
    failure = []

    def load_to_device(k):
        x, extras, n = load(k)
        with _scope(device):
            return (_backend.to_device(x),
                    [_backend.to_device(e) for e in extras], n)

    def finish(k, y, m):
        sink(k, _backend.to_host(y)[:m])
        count()

    results, fetcher = None, None
    if depth > 0:
        results = queue.Queue(maxsize=depth)

        def drain():
            while True:
                item = results.get()
                if item is None:
                    return
                if not failure:
                    try:
                        finish(*item)
                    except BaseException as e:  # re-raised by the caller
                        failure.append(e)

        fetcher = threading.Thread(target=drain, name="kerasdl-fetch",
                                   daemon=True)
        fetcher.start()
    pool = concurrent.futures.ThreadPoolExecutor(
        threads, thread_name_prefix="kerasdl-load")
    try:
        ahead = collections.deque(
            pool.submit(load_to_device, k) for k in chunks[:threads + 1])
        next_load = len(ahead)
        for k in chunks:
            xd, extras, n = ahead.popleft().result()
            if next_load < len(chunks):
                ahead.append(pool.submit(load_to_device, chunks[next_load]))
                next_load += 1
            y = _backend.start_fetch(step(xd, *extras))
            if results is None:
                finish(k, y, n)
            elif failure:
                break
            else:
                results.put((k, y, n))
    finally:
        if results is not None:
            results.put(None)
            fetcher.join()
        pool.shutdown(wait=True, cancel_futures=True)
    if failure:
        raise failure[0]


_COPIES = weakref.WeakKeyDictionary()


def device_steps(model, devices, make, version):
    """One ``(device, make(copy))`` per device for ``run``, where ``copy``
    is a copy of ``model`` whose weights live on that device. Used under
    JAX with a distribution active, so that each device computes whole
    chunks from its own stream instead of every chunk being split over
    the devices. The copies are kept for the next call while ``version``
    (the weights' hash) is the same, so nothing compiles twice."""
    copies = _COPIES.setdefault(model, {})
    out, weights = [], None
    with _no_distribution():
        for device in devices:
            key = (device, version)
            if key not in copies:
                if weights is None:
                    weights = model.get_weights()
                with keras.device(device):
                    copy = keras.models.clone_model(model)
                    copy.set_weights(weights)
                for old in [k for k in copies if k[0] == device]:
                    del copies[old]
                copies[key] = copy
            with keras.device(device):
                out.append((device, make(copies[key])))
    return out


@contextlib.contextmanager
def _no_distribution():
    previous = keras.distribution.distribution()
    keras.distribution.set_distribution(None)
    try:
        yield
    finally:
        keras.distribution.set_distribution(previous)


def stream_devices():
    """The devices that should each get their own stream: those of the
    active JAX distribution in a one-process job (empty otherwise: one
    stream, with the rows split over the devices by the backend)."""
    if _backend.name() != "jax":
        return []
    dist = keras.distribution.distribution()
    if dist is None:
        return []
    devices = [str(d) for d in np.asarray(dist.device_mesh.devices).flat]
    if len(devices) < 2 or len(_backend.local_devices()) < len(devices):
        return []
    return devices


def as_uint8_batch(x, batch_rows):
    """Pads a host batch to ``batch_rows`` rows (one compiled shape)."""
    n = x.shape[0]
    if n == batch_rows:
        return x, n
    pad = np.zeros((batch_rows - n,) + x.shape[1:], x.dtype)
    return np.concatenate([x, pad]), n
