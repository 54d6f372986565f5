"""The engine behind kerasdl.features: batches in, model outputs out, with
the transfers overlapped with the computation.

Host batches are prepared on a thread (decoding, slicing, augmentation
parameters), sent to the device as uint8, pushed through one compiled
function and fetched asynchronously, ``depth`` batches behind the batch
being computed. Private: used by kerasdl.features and the benchmarks.
"""

import collections
import concurrent.futures
import errno
import os
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
    """Runs ``step`` over chunks ``0..n_chunks-1`` in order.

    Loader threads prepare the next chunks and start their copies to the
    device; the main thread only dispatches ``step``; a writer thread waits
    for each result, copies it to the host and calls ``sink`` in chunk
    order, so transfers in both directions overlap the computation.

    Args:
        step: compiled function (device input, *extras) -> device output.
        n_chunks: int. Chunks to process; ``load(k)`` must be pure.
        load: ``load(k) -> (x, extras, n_valid)`` host arrays.
        sink: ``sink(k, y_host_first_n_valid)``, called in chunk order.
        depth: int. Results in flight before dispatch waits; 0 runs each
            chunk to the end before the next (no writer thread).
        threads: int. Host threads preparing the next chunks.
        progress: callable or None, called with the chunk count done.
    """
    if n_chunks == 0:
        return
    done, failure = [0], []

    def load_to_device(k):
        x, extras, n = load(k)
        return (_backend.to_device(x),
                [_backend.to_device(e) for e in extras], n)

    def finish(j, y, m):
        sink(j, _backend.to_host(y)[:m])
        done[0] += 1
        if progress is not None:
            progress(done[0])

    results, writer = None, None
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

        writer = threading.Thread(target=drain, name="kerasdl-fetch",
                                  daemon=True)
        writer.start()
    pool = concurrent.futures.ThreadPoolExecutor(threads)
    try:
        ahead = collections.deque(pool.submit(load_to_device, k)
                                  for k in range(min(n_chunks, threads + 1)))
        next_load = len(ahead)
        for k in range(n_chunks):
            xd, extras, n = ahead.popleft().result()
            if next_load < n_chunks:
                ahead.append(pool.submit(load_to_device, next_load))
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
            writer.join()
        pool.shutdown(wait=True, cancel_futures=True)
    if failure:
        raise failure[0]


class RowFile:
    """A ``.npy`` file of fixed shape written row block by row block with
    ``pwrite`` (a full disk raises OSError with its errno, unlike writes
    through a memory map, which crash)."""

    def __init__(self, path, shape, dtype, *, create):
        from kerasdl.data.arrays import npy_header

        self.path, self.shape = path, tuple(shape)
        self.dtype = np.dtype(dtype)
        header = npy_header(self.shape, self.dtype)
        self.offset = len(header)
        self.row_bytes = int(np.prod(self.shape[1:], dtype=np.int64)) \
            * self.dtype.itemsize
        total = self.offset + self.row_bytes * self.shape[0]
        if create:
            self.fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC,
                              0o644)
            try:
                os.pwrite(self.fd, header, 0)
                reserve(self.fd, total)
            except BaseException:
                os.close(self.fd)
                raise
        else:
            self.fd = os.open(path, os.O_RDWR)
            if os.fstat(self.fd).st_size != total:
                os.close(self.fd)
                raise ValueError(f"{path!r} has the wrong size for "
                                 f"{self.dtype}{list(self.shape)}.")

    def write_rows(self, start, rows):
        rows = np.ascontiguousarray(rows, dtype=self.dtype)
        data = memoryview(rows.reshape(-1).view(np.uint8))
        pos = self.offset + start * self.row_bytes
        while len(data):
            written = os.pwrite(self.fd, data, pos)
            data, pos = data[written:], pos + written

    def sync_and_close(self):
        os.fsync(self.fd)
        self.close()

    def close(self):
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


def reserve(fd, size):
    """Reserves ``size`` bytes on disk now, so that a full disk is found
    before any work is done (sparse extension where the file system cannot
    reserve)."""
    try:
        os.posix_fallocate(fd, 0, size)
    except OSError as e:
        if e.errno not in (errno.EOPNOTSUPP, errno.EINVAL, errno.ENOSYS):
            raise
        os.ftruncate(fd, size)


def as_uint8_batch(x, batch_rows):
    """Pads a host batch to ``batch_rows`` rows (one compiled shape)."""
    n = x.shape[0]
    if n == batch_rows:
        return x, n
    pad = np.zeros((batch_rows - n,) + x.shape[1:], x.dtype)
    return np.concatenate([x, pad]), n
