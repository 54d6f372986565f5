"""The on-disk format of precomputed features, and the only code that
writes it.

A finished folder holds ``features.npy`` + ``features.json`` and (when
the data has labels) ``labels.npy`` + ``labels.json``, in the format of
``kerasdl.data.arrays``. The features' manifest is written last: it is
the commit point, so a folder without it holds no result. Its
``metadata`` is the run's manifest (model, weights, layer, data
fingerprint, dtypes, passes ...); its ``bytes`` and ``xxh3_blocks``
(``kerasdl.data._digest``: taken by the writer threads as the rows go
out, never by reading the file back) vouch for ``features.npy``.

Work in progress lives in ``PATH/.partial``: ``manifest.json`` (the
run's manifest), ``labels.*``, ``features.npy`` (full size from the
start, rows written in place) and ``progress.json`` (``{"done": k}``:
chunks ``0..k-1`` are on disk). The count is saved only after the rows
it vouches for are synced, by a background thread, so a kill at any
moment leaves a folder that resumes exactly. Commit order: the features
file is synced, renamed into ``PATH``, the labels renamed, the manifest
written (the commit point), then ``.partial`` removed.

Multi-process runs: ``_is_writer`` says whether this process writes the
folder and ``_wait_for_writer`` waits in the others until the writer has
committed (today one process always writes; both are the hooks for
``kerasdl.distribute``'s process helpers).
"""

import concurrent.futures
import errno
import json
import os
import shutil
import threading

import numpy as np

from kerasdl.data import _digest, arrays
from kerasdl.features.reader import FeatureSet

FORMAT = "kerasdl.features/1"
_PARTIAL = ".partial"


def _is_writer():
    """Whether this process writes the feature folder (one process of a
    multi-process job does; today there is only one)."""
    return True


def _wait_for_writer(path):
    """In a process that does not write: waits until the writer has
    committed ``path`` (nothing to wait for while one process writes)."""
    return None


def cached(path, manifest, overwrite):
    """The reusable ``FeatureSet`` in ``path``, or None once the folder is
    ready for a new run (a stale result refused unless ``overwrite``)."""
    old, problem = committed_manifest(path)
    if old is not None and old != manifest:
        if not overwrite:
            raise ValueError(stale_message(path, old, manifest))
    elif old is not None:
        try:
            return FeatureSet(path)
        except ValueError as e:
            problem = getattr(e, "problem", str(e))
    if problem and not overwrite:
        raise ValueError(
            f"{problem} The feature cache in {path!r} is damaged and "
            f"cannot be reused: pass overwrite=True to compute it again "
            f"(or delete the folder).")
    # the manifest goes first: without it no reader takes the rest
    for name in ("features.json", "features.npy", "labels.json",
                 "labels.npy"):
        arrays.remove_file(os.path.join(path, name))
    if overwrite:
        shutil.rmtree(os.path.join(path, _PARTIAL), ignore_errors=True)
    return None


def committed_manifest(path):
    """(metadata, None), (None, problem) for a bad manifest, or (None,
    None) when there is no manifest (nothing, or an unfinished commit)."""
    base = os.path.join(path, "features")
    if not os.path.lexists(base + ".json"):
        return None, None
    try:
        return arrays.read_manifest(base)["metadata"], None
    except arrays.ArrayFileError as e:
        return None, e.problem


def stale_message(where, old, new):
    keys = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
    diffs = "; ".join(f"{k}: saved {str(old.get(k))[:60]} vs now "
                      f"{str(new.get(k))[:60]}" for k in keys)
    return (f"Stale feature cache at {where!r}: it was made differently "
            f"({diffs}). Delete the folder, choose another path, or pass "
            f"overwrite=True.")


class Run:
    """One run writing ``PATH/.partial``: opened (resumed when the
    partial work matches ``manifest``), written chunk by chunk through
    ``writer``, then committed.

    Attributes: ``start`` (chunks already done), ``writer`` (a
    ``ChunkWriter``).
    """

    def __init__(self, path, manifest, n_chunks, labels, *, chunk_rows,
                 writer_threads=2):
        self.path, self.manifest = path, manifest
        self.partial = os.path.join(path, _PARTIAL)
        self.rows = manifest["n_images"] * (1 + manifest["passes"])
        self.shape = (self.rows, *manifest["output_shape"])
        self.start = _resume_point(self.partial, manifest, n_chunks,
                                   self.rows)
        feat = os.path.join(self.partial, "features.npy")
        try:
            if self.start == 0:
                shutil.rmtree(self.partial, ignore_errors=True)
                os.makedirs(self.partial)
                arrays.write_json(os.path.join(self.partial,
                                               "manifest.json"), manifest)
                if labels is not None:
                    arrays.save_array(os.path.join(self.partial, "labels"),
                                      np.concatenate([labels] * (
                                          1 + manifest["passes"])))
            out = RowFile(feat, self.shape, manifest["dtype"],
                          create=self.start == 0)
        except OSError as e:
            shutil.rmtree(self.partial, ignore_errors=True)
            raise arrays.disk_error(e, path) from None
        # the checksum is taken as the rows are written when the file is
        # written from its first chunk; a resumed file is read at the end
        digest = None
        if self.start == 0:
            digest = _digest.Pieces()
            digest.add(0, out.header)
        self.writer = ChunkWriter(out, self.partial, self.start,
                                  digest=digest, threads=writer_threads,
                                  pending=max(4, 2 * writer_threads))
        self.chunk_rows = chunk_rows

    def commit(self):
        """Finishes writing, then commits; returns the ``FeatureSet``."""
        try:
            digest = self.writer.close()
        except OSError as e:
            raise arrays.disk_error(e, self.path) from None
        features = os.path.join(self.partial, "features.npy")
        if digest is None:
            digest = _digest.file_digest(features)
        checksum = {"bytes": os.path.getsize(features), _digest.KEY: digest}
        os.replace(features, os.path.join(self.path, "features.npy"))
        if self.manifest["labels"]:
            for ext in (".npy", ".json"):
                os.replace(os.path.join(self.partial, "labels" + ext),
                           os.path.join(self.path, "labels" + ext))
        # the commit point: written last, vouching for the files above
        arrays.write_json(os.path.join(self.path, "features.json"),
                          arrays.manifest_for(self.shape,
                                              self.manifest["dtype"],
                                              self.manifest,
                                              checksum=checksum))
        shutil.rmtree(self.partial, ignore_errors=True)
        return FeatureSet(self.path, verify=False)

    def abort(self, error):
        """Stops after a failure, keeping the synced progress; returns
        the error to raise (a full disk named as such)."""
        self.writer.abort()
        if isinstance(error, OSError):
            return arrays.disk_error(error, self.path)
        return error


def _resume_point(partial, manifest, n_chunks, rows):
    """The chunks already done in ``partial``, 0 when it cannot be
    trusted (missing or damaged files, an impossible count)."""
    try:
        with open(os.path.join(partial, "manifest.json")) as f:
            old = json.load(f)
        with open(os.path.join(partial, "progress.json")) as f:
            done = json.load(f)["done"]
    except (OSError, ValueError, KeyError, TypeError):
        return 0
    if old != manifest:
        raise ValueError(stale_message(partial, old, manifest))
    if type(done) is not int or not 0 <= done <= n_chunks:
        return 0
    feat = os.path.join(partial, "features.npy")
    size = os.path.getsize(feat) if os.path.isfile(feat) else -1
    if size != arrays.npy_size([rows, *manifest["output_shape"]],
                                manifest["dtype"]):
        return 0  # killed while committing, or a damaged file
    if manifest["labels"]:
        try:
            labels = arrays.load_array(os.path.join(partial, "labels"))
        except ValueError:
            return 0
        if labels.ndim == 0 or len(labels) != rows:
            return 0
    return done


def _save_progress(partial, done):
    arrays.write_json(os.path.join(partial, "progress.json"), {"done": done})


class ChunkWriter:
    """Writes chunks of rows into a ``RowFile`` off the caller's thread.

    ``write(k, row, values)`` queues chunk ``k`` (any order, from any
    thread) and returns; ``threads`` threads ``pwrite`` the rows and add
    them to ``digest`` (a ``kerasdl.data._digest.Pieces``, or None; both
    release the GIL), so the file is never read back. A thread
    saves the progress count every ``sync_every`` seconds: the longest
    run of finished chunks from the start, after ``fdatasync`` has put
    their rows on disk. At most ``pending`` chunks are held; ``write``
    waits beyond that, so a slow disk slows the producer instead of
    filling memory.
    """

    def __init__(self, out, partial, start, *, digest=None,
                 threads=2, pending=4, sync_every=0.5):
        self.out, self.partial = out, partial
        self.digest, self.start = digest, start
        self.prefix, self.saved = start, start
        self.done = set()
        self.errors = []
        self.lock = threading.Lock()
        self.room = threading.BoundedSemaphore(pending)
        self.pool = concurrent.futures.ThreadPoolExecutor(
            threads, thread_name_prefix="kerasdl-write")
        self.stop = threading.Event()
        self.syncer = threading.Thread(target=self._sync_loop,
                                       args=(sync_every,),
                                       name="kerasdl-sync", daemon=True)
        self.syncer.start()
        self.closed = False

    def write(self, k, row, values):
        self._raise()
        self.room.acquire()
        if self.errors:
            self.room.release()
            self._raise()
        self.pool.submit(self._write, k, row, values)

    def _write(self, k, row, values):
        try:
            values = np.ascontiguousarray(values, dtype=self.out.dtype)
            self.out.write_rows(row, values)
            if self.digest is not None:
                self.digest.add(self.out.position(row),
                                values.reshape(-1).view(np.uint8))
        except BaseException as e:  # re-raised by write or close
            with self.lock:
                self.errors.append(e)
            self.room.release()
            return
        with self.lock:
            self.done.add(k)
            while self.prefix in self.done:
                self.done.discard(self.prefix)
                self.prefix += 1
        self.room.release()

    def _sync_loop(self, every):
        while not self.stop.wait(every):
            self._sync()

    def _sync(self):
        with self.lock:
            prefix = self.prefix
        if prefix <= self.saved:
            return
        try:
            os.fdatasync(self.out.fd)  # rows on disk before the count
            _save_progress(self.partial, prefix)
            self.saved = prefix
        except OSError as e:
            with self.lock:
                self.errors.append(e)

    def _raise(self):
        if self.errors:
            raise self.errors[0]

    def _finish(self):
        self.pool.shutdown(wait=True)
        self.stop.set()
        self.syncer.join()

    def close(self):
        """Waits for every write, syncs the file and saves the final
        count; returns the file's digest (None without one, or when not
        every byte went through this writer: a resumed run)."""
        self._finish()
        self._raise()
        self._sync()
        self._raise()
        self.out.sync_and_close()
        self.closed = True
        return None if self.digest is None else \
            self.digest.digest(self.out.size)

    def abort(self):
        """After a failure: waits for the queued writes, saves the count
        of the chunks that reached the disk, closes the file."""
        self._finish()
        if not self.closed:
            self._sync()
            self.out.close()
            self.closed = True


class RowFile:
    """A ``.npy`` file of fixed shape written row block by row block with
    ``pwrite`` (a full disk raises OSError with its errno, unlike writes
    through a memory map, which crash)."""

    def __init__(self, path, shape, dtype, *, create):
        self.path, self.shape = path, tuple(shape)
        self.dtype = np.dtype(dtype)
        self.header = arrays.npy_header(self.shape, self.dtype)
        self.offset = len(self.header)
        self.row_bytes = int(np.prod(self.shape[1:], dtype=np.int64)) \
            * self.dtype.itemsize
        total = self.size = self.offset + self.row_bytes * self.shape[0]
        if create:
            self.fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC,
                              0o644)
            try:
                os.pwrite(self.fd, self.header, 0)
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

    def position(self, row):
        """The byte offset of row ``row`` in the file."""
        return self.offset + row * self.row_bytes

    def write_rows(self, start, rows):
        rows = np.ascontiguousarray(rows, dtype=self.dtype)
        data = memoryview(rows.reshape(-1).view(np.uint8))
        pos = self.position(start)
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

