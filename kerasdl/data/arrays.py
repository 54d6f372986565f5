"""Arrays on disk: ``.npy`` files (memory-mapped on load) with a JSON
manifest; no pickle anywhere. Replaces the course's bcolz ``save_array`` /
``load_array``.

``save_array("x", a)`` writes ``x.npy`` and then ``x.json``; both are
written under temporary names and renamed, and the manifest comes last, so
an array without its manifest is known to be incomplete and is refused.
"""

import errno
import json
import os
import tempfile

import numpy as np

__all__ = ["load_array", "read_manifest", "save_array"]

FORMAT = "kerasdl.array/1"


def paths(path):
    """``(npy_path, manifest_path)`` for ``path`` (with or without .npy)."""
    path = os.fspath(path)
    base = path[:-4] if path.endswith(".npy") else path
    return base + ".npy", base + ".json"


def save_array(path, array, *, metadata=None):
    """Saves an array as ``.npy`` plus a JSON manifest, atomically.

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
        array: array-like with a numeric or bool dtype (no objects).
        metadata: dict or None. JSON-serialisable facts stored in the
            manifest under ``"metadata"``.

    Raises:
        TypeError: an object array or metadata that is not JSON.
        OSError: the disk is full or not writable; nothing that looks
            complete is left behind.
    """
    array = np.asarray(array)
    if array.dtype.hasobject or array.dtype.kind not in "biufc":
        raise TypeError(
            f"save_array stores numeric arrays only (no pickle). Received "
            f"dtype {array.dtype}. Convert it, e.g. array.astype('float32').")
    npy, manifest = paths(path)
    meta = manifest_for(array.shape, array.dtype, metadata)
    _remove(manifest)  # the old manifest would vouch for a new file
    tmp = _temp_beside(npy)
    try:
        with open(tmp, "wb") as f:
            _write_npy(f, array)
        os.replace(tmp, npy)
    except BaseException as e:
        _remove(tmp)
        raise _disk_error(e, npy) from None
    write_json(manifest, meta)


def load_array(path, *, mmap=True):
    """Loads an array saved by ``save_array``, memory-mapped by default.

    Args:
        path: str. As given to ``save_array``.
        mmap: bool. Map the file read-only instead of reading it, so that
            arrays larger than memory can be used. Defaults to ``True``.

    Returns:
        A numpy array (a read-only ``numpy.memmap`` when ``mmap``).

    Raises:
        ValueError: the manifest is missing (an incomplete save) or does
            not match the file.
    """
    npy, _ = paths(path)
    meta = read_manifest(path)
    array = np.load(npy, mmap_mode="r" if mmap else None, allow_pickle=False)
    if list(array.shape) != meta["shape"] or str(array.dtype) != meta[
            "dtype"]:
        raise ValueError(
            f"{npy!r} holds {array.dtype}{list(array.shape)} but its "
            f"manifest says {meta['dtype']}{meta['shape']}: the files do "
            f"not belong together. Save the array again.")
    return array


def read_manifest(path):
    """The manifest dict of an array saved by ``save_array``.

    Raises:
        ValueError: no manifest (the save did not finish) or a bad one.
    """
    npy, manifest = paths(path)
    if not os.path.isfile(manifest):
        state = ("exists without it, so its save did not finish"
                 if os.path.exists(npy) else "does not exist either")
        raise ValueError(
            f"No manifest {manifest!r}; {npy!r} {state}. Save the array "
            f"again with kerasdl's save_array.")
    try:
        with open(manifest) as f:
            meta = json.load(f)
    except (OSError, json.JSONDecodeError) as e:
        raise ValueError(f"Cannot read manifest {manifest!r}: {e}.") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise ValueError(f"{manifest!r} is not a kerasdl array manifest "
                         f"(format {FORMAT!r}).")
    if not os.path.isfile(npy):
        raise ValueError(f"{npy!r} is missing; its manifest exists. Save "
                         f"the array again.")
    return meta


def manifest_for(shape, dtype, metadata=None):
    meta = {"format": FORMAT, "shape": [int(s) for s in shape],
            "dtype": str(np.dtype(dtype)), "metadata": metadata or {}}
    try:
        json.dumps(meta)
    except TypeError as e:
        raise TypeError(f"`metadata` must be JSON-serialisable: {e}.") from None
    return meta


def write_json(path, obj):
    """Writes ``obj`` as JSON under a temporary name, then renames it."""
    tmp = _temp_beside(path)
    try:
        with open(tmp, "w") as f:
            json.dump(obj, f, indent=1, sort_keys=True)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as e:
        _remove(tmp)
        raise _disk_error(e, path) from None


def npy_header(shape, dtype):
    """The bytes of a version 1.0 ``.npy`` header for a C-order array."""
    import io

    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {
        "descr": np.lib.format.dtype_to_descr(np.dtype(dtype)),
        "fortran_order": False, "shape": tuple(int(s) for s in shape)})
    return buf.getvalue()


def _write_npy(f, array, block=1 << 24):
    # Plain file writes (not ndarray.tofile) so that a full disk raises an
    # OSError that carries its errno.
    array = np.ascontiguousarray(array)
    f.write(npy_header(array.shape, array.dtype))
    data = array.reshape(-1).view(np.uint8)
    for start in range(0, data.size, block):
        f.write(memoryview(data[start:start + block]))
    f.flush()
    os.fsync(f.fileno())


def _temp_beside(path):
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".",
                               suffix=".tmp", dir=folder)
    os.close(fd)
    return tmp


def _remove(path):
    try:
        os.remove(path)
    except FileNotFoundError:
        pass


def _disk_error(e, path):
    if isinstance(e, OSError) and e.errno in (errno.ENOSPC, errno.EFBIG,
                                              errno.EDQUOT):
        return OSError(
            e.errno, f"Could not write {path!r}: {os.strerror(e.errno)}. "
            f"The disk (or a size limit) is full; nothing was left under "
            f"that name. Free space and run again")
    return e
