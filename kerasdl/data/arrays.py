"""Arrays on disk: ``.npy`` files (memory-mapped on load) with a JSON
manifest; no pickle anywhere. Replaces the course's bcolz ``save_array`` /
``load_array``.

``save_array("x", a)`` writes ``x.npy`` and ``x.json`` under temporary
names, then renames the data and then the manifest. The manifest records
the data file's size and CRC-32 (precomputed features carry the block
digest of ``kerasdl.data._digest`` instead, which their writer threads take
at ten times the speed), so an array without its manifest, or a
pair from different saves, is known to be incomplete and is refused; an
overwrite killed at any point leaves the old pair (or, in the instant
between the two renames, a pair that is refused, never a wrong array).
"""

import errno
import json
import os
import zlib

import numpy as np

from kerasdl import _files
from kerasdl.data import _digest

__all__ = ["ArrayFileError", "load_array", "read_manifest", "save_array"]

FORMAT = "kerasdl.array/1"
_BLOCK = 1 << 24


class ArrayFileError(ValueError):
    """A saved array that cannot be used: missing, incomplete or damaged.

    ``problem`` says what is wrong (naming the file); the message adds
    what to do.
    """

    def __init__(self, problem, remedy="Save the array again."):
        super().__init__(f"{problem} {remedy}")
        self.problem = problem


def paths(path):
    """``(npy_path, manifest_path)`` for ``path`` (with or without .npy)."""
    path = os.fspath(path)
    base = path[:-4] if path.endswith(".npy") else path
    return base + ".npy", base + ".json"


def save_array(path, array, *, metadata=None):
    """Saves an array as ``.npy`` plus a JSON manifest, atomically.

    The data and the manifest are written to temporary files beside the
    target, synced, and renamed data first; the manifest carries the data
    file's size and CRC-32. Temporary files left by a killed save are
    removed by the next save of the same name.

    Example:

    >>> import os, tempfile
    >>> import numpy as np
    >>> path = os.path.join(tempfile.mkdtemp(), "features")
    >>> save_array(path, np.arange(6, dtype="float16").reshape(2, 3),
    ...            metadata={"layer": "block5_conv3"})
    >>> x = load_array(path)
    >>> x.shape, x.dtype.name, read_manifest(path)["metadata"]["layer"]
    ((2, 3), 'float16', 'block5_conv3')

    Args:
        path: str. File name, with or without ``.npy``; the manifest is
            the same name ending in ``.json``.
        array: array-like with a numeric or bool dtype (no objects); any
            shape, 0-d included.
        metadata: dict or None. JSON-serialisable facts stored in the
            manifest under ``"metadata"``.

    Raises:
        TypeError: an object array or metadata that is not JSON.
        OSError: the disk is full or not writable; nothing that looks
            complete is left behind and an older array of that name is
            kept.
    """
    array = np.asarray(array)
    if array.dtype.hasobject or array.dtype.kind not in "biufc":
        raise TypeError(
            f"save_array stores numeric arrays only (no pickle). Received "
            f"dtype {array.dtype}. Convert it, e.g. array.astype('float32').")
    npy, manifest = paths(path)
    meta = manifest_for(array.shape, array.dtype, metadata)
    tmp_npy = tmp_json = None
    try:
        tmp_npy = _files.temp_beside(npy)
        with open(tmp_npy, "wb") as f:
            meta.update(_write_npy(f, array))
        tmp_json = _files.temp_beside(manifest)
        _dump_json(tmp_json, meta)
        os.replace(tmp_npy, npy)
        os.replace(tmp_json, manifest)
        _files.sync_folder(npy)
    except BaseException as e:
        for tmp in (tmp_npy, tmp_json):
            if tmp is not None:
                remove_file(tmp)
        raise disk_error(e, npy) from None


def load_array(path, *, mmap=True, verify=True, remedy=None):
    """Loads an array saved by ``save_array``, memory-mapped by default.

    The data file's size is always checked against its manifest (free: a
    truncated or extended file is refused). With ``verify`` its checksum
    (CRC-32, or the block digest of precomputed features) is checked too,
    which finds flipped or overwritten bytes and a data file from another
    save; it costs one sequential read of the file (about
    1 s per GB from the page cache on one core, the disk's speed
    otherwise), after which a memory-mapped array is usually in the page
    cache.

    Args:
        path: str. As given to ``save_array``.
        mmap: bool. Map the file read-only instead of reading it, so that
            arrays larger than memory can be used. Defaults to ``True``.
        verify: bool. Check the checksum. Defaults to ``True``.
        remedy: str or None. What the error message tells the user to do;
            defaults to saving the array again.

    Returns:
        A numpy array: a read-only ``numpy.memmap`` when ``mmap``, except
        for a 0-d or empty array, returned as a read-only ``ndarray``.

    Raises:
        ArrayFileError: (a ``ValueError``) the manifest is missing (an
            incomplete save), unreadable, or does not match the file.
    """
    npy, manifest = paths(path)
    remedy = remedy or "Save the array again."
    meta = read_manifest(path, remedy=remedy)
    try:
        _check_size_and_sum(npy, manifest, meta, verify, remedy)
        small = not meta["shape"] or 0 in meta["shape"]
        array = np.load(npy, mmap_mode="r" if mmap and not small else None,
                        allow_pickle=False)
    except FileNotFoundError:
        raise ArrayFileError(
            f"{npy!r} disappeared while it was read: another process is "
            f"replacing or removing it.", remedy) from None
    except (OSError, ValueError) as e:
        if isinstance(e, ArrayFileError):
            raise
        raise ArrayFileError(f"Cannot read {npy!r}: {e}.", remedy) from None
    if list(array.shape) != meta["shape"] or str(array.dtype) != meta[
            "dtype"]:
        raise ArrayFileError(
            f"{npy!r} holds {array.dtype}{list(array.shape)} but its "
            f"manifest says {meta['dtype']}{meta['shape']}: the files do "
            f"not belong together.", remedy)
    if small:
        array.flags.writeable = False
    return array


def _check_size_and_sum(npy, manifest, meta, verify, remedy):
    size = os.path.getsize(npy)
    want = meta.get("bytes", npy_size(meta["shape"], meta["dtype"]))
    if size != want:
        raise ArrayFileError(
            f"{npy!r} is {size} bytes but its manifest {manifest!r} says "
            f"{want} ({meta['dtype']}{meta['shape']}): the file is "
            f"truncated, or the files do not belong together.", remedy)
    if verify and not _sum_matches(npy, meta):
        raise ArrayFileError(
            f"{npy!r} does not match the checksum in its manifest "
            f"{manifest!r}: bytes changed on disk after it was saved, or "
            f"the files do not belong together (an interrupted save).",
            remedy)


def _sum_matches(npy, meta):
    """Whether the file matches the checksum its manifest holds (a
    CRC-32, or the block digest of ``kerasdl.data._digest``; True when
    the manifest holds none)."""
    if "crc32" in meta and file_crc32(npy) != meta["crc32"]:
        return False
    if _digest.KEY in meta and _digest.file_digest(npy) != meta[_digest.KEY]:
        return False
    return True


def read_manifest(path, *, remedy=None):
    """The manifest dict of an array saved by ``save_array``.

    Args:
        path: str. As given to ``save_array``.
        remedy: str or None. What the error message tells the user to do.

    Raises:
        ArrayFileError: (a ``ValueError``) no manifest (the save did not
            finish), a manifest that is not valid, or no data file.
    """
    npy, manifest = paths(path)
    remedy = remedy or "Save the array again with kerasdl's save_array."
    if not os.path.isfile(manifest):
        state = ("exists without it, so its save did not finish"
                 if os.path.exists(npy) else "does not exist either")
        raise ArrayFileError(f"No manifest {manifest!r}; {npy!r} {state}.",
                             remedy)
    try:
        with open(manifest, encoding="utf-8") as f:
            meta = json.load(f)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ArrayFileError(f"Cannot read manifest {manifest!r}: {e}.",
                             remedy) from None
    problem = _manifest_problem(meta)
    if problem:
        raise ArrayFileError(f"{manifest!r} is not a valid kerasdl array "
                             f"manifest ({problem}).", remedy)
    if not os.path.isfile(npy):
        raise ArrayFileError(f"{npy!r} is missing; its manifest "
                             f"{manifest!r} exists.", remedy)
    return meta


def _manifest_problem(meta):
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        return f"format {FORMAT!r} expected"
    shape = meta.get("shape")
    if not isinstance(shape, list) or not all(
            type(s) is int and s >= 0 for s in shape):
        return f"bad shape {shape!r}"
    dtype = meta.get("dtype")
    try:
        if not isinstance(dtype, str) or np.dtype(dtype).hasobject:
            return f"bad dtype {dtype!r}"
    except (TypeError, ValueError):
        return f"bad dtype {dtype!r}"
    if not isinstance(meta.get("metadata", {}), dict):
        return "metadata is not a dict"
    for key in ("bytes", "crc32"):
        if key in meta and (type(meta[key]) is not int or meta[key] < 0):
            return f"bad {key} {meta[key]!r}"
    digest = meta.get(_digest.KEY)
    if digest is not None and not (
            isinstance(digest, str) and len(digest) == 16
            and all(c in "0123456789abcdef" for c in digest)):
        return f"bad {_digest.KEY} {digest!r}"
    return None


def manifest_for(shape, dtype, metadata=None, *, checksum=None):
    """The manifest of an array; ``checksum`` is a dict of ``bytes`` and
    ``crc32`` or ``xxh3_blocks``."""
    if metadata is not None and not isinstance(metadata, dict):
        raise TypeError(f"`metadata` must be a dict or None. Received: "
                        f"metadata={metadata!r}.")
    meta = {"format": FORMAT, "shape": [int(s) for s in shape],
            "dtype": str(np.dtype(dtype)), "metadata": metadata or {}}
    if checksum is not None:
        meta.update(checksum)
    try:
        json.dumps(meta)
    except TypeError as e:
        raise TypeError(
            f"`metadata` must be JSON-serialisable: {e}.") from None
    return meta


def file_crc32(path):
    """The CRC-32 of a file's bytes, read in blocks."""
    crc = 0
    buf = bytearray(_BLOCK)
    view = memoryview(buf)
    with open(path, "rb", buffering=0) as f:
        while True:
            n = f.readinto(buf)
            if not n:
                return crc
            crc = zlib.crc32(view[:n], crc)


def write_json(path, obj):
    """Writes ``obj`` as JSON under a temporary name, then renames it."""
    tmp = None
    try:
        tmp = _files.temp_beside(path)
        _dump_json(tmp, obj)
        os.replace(tmp, path)
        _files.sync_folder(path)
    except BaseException as e:
        if tmp is not None:
            remove_file(tmp)
        raise disk_error(e, path) from None


def _dump_json(path, obj):
    with open(path, "w", encoding="utf-8") as f:
        json.dump(obj, f, indent=1, sort_keys=True)
        f.flush()
        os.fsync(f.fileno())


def npy_header(shape, dtype):
    """The bytes of a version 1.0 ``.npy`` header for a C-order array."""
    import io

    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {
        "descr": np.lib.format.dtype_to_descr(np.dtype(dtype)),
        "fortran_order": False, "shape": tuple(int(s) for s in shape)})
    return buf.getvalue()


def npy_size(shape, dtype):
    """The size in bytes of a ``.npy`` file written by ``save_array``."""
    count = int(np.prod(shape, dtype=np.int64)) if shape else 1
    return len(npy_header(shape, dtype)) + count * np.dtype(dtype).itemsize


def _write_npy(f, array):
    # Plain file writes (not ndarray.tofile) so that a full disk raises an
    # OSError that carries its errno.
    array = np.asarray(array, order="C")  # keeps a 0-d array 0-d
    header = npy_header(array.shape, array.dtype)
    f.write(header)
    crc = zlib.crc32(header)
    data = array.reshape(-1).view(np.uint8)
    for start in range(0, data.size, _BLOCK):
        block = memoryview(data[start:start + _BLOCK])
        f.write(block)
        crc = zlib.crc32(block, crc)
    f.flush()
    os.fsync(f.fileno())
    return {"bytes": len(header) + data.size, "crc32": crc}


def remove_file(path):
    """Removes ``path``; nothing happens when it does not exist."""
    try:
        os.remove(path)
    except FileNotFoundError:
        pass


def disk_error(e, path):
    """The OSError to raise for ``e`` while writing ``path``: a full disk
    (or size limit) says so and what to do; other errors unchanged."""
    if isinstance(e, OSError) and e.errno in (errno.ENOSPC, errno.EFBIG,
                                              errno.EDQUOT):
        return OSError(
            e.errno, f"Could not write {path!r}: {os.strerror(e.errno)}. "
            f"The disk (or a size limit) is full; nothing was left under "
            f"that name. Free space and run again")
    return e
