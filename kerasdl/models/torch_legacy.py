"""Reads PyTorch state dicts with numpy alone: no torch, no code run.

``torch.save`` has written two formats. The legacy one (PyTorch before
1.6, or ``_use_new_zipfile_serialization=False``) is a plain stream:

1. a pickled magic number (``0x1950a86a20f9469cfc6c``);
2. a pickled protocol version (1001);
3. pickled system information (byte order, C type sizes);
4. the pickled object itself, usually an ``OrderedDict`` of tensors, in
   which each tensor is ``torch._utils._rebuild_tensor_v2(storage, offset,
   size, stride, ...)`` and each storage a persistent id
   ``('storage', storage_type, key, location, numel)``;
5. a pickled list of storage keys;
6. for each key, in that order, an int64 little-endian element count and
   then the storage's raw little-endian bytes.

The zip format (PyTorch 1.6 and later) holds the same pickle as
``<name>/data.pkl`` and each storage as the file ``<name>/data/<key>``;
it is read too.

Unpickling runs whatever callable a file names, so the unpickler here
resolves only the handful of globals a state dict needs
(``collections.OrderedDict``, ``torch._utils._rebuild_tensor_v2``,
``_rebuild_tensor``, ``_rebuild_parameter`` and the storage types such as
``torch.FloatStorage``), each mapped to a local stand-in, and refuses any
other global by name before anything is called: a crafted file cannot run
code. Every tensor is checked to lie inside its storage before it is
viewed (``numpy.lib.stride_tricks.as_strided``) and copied.
"""

import collections
import os
import pickle
import zipfile

import numpy as np

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
LEGACY_PROTOCOL = 1001

# Storage class name -> numpy dtype of one element (little-endian).
# bfloat16 has no numpy dtype: it is read as uint16 and widened to float32.
STORAGE_DTYPES = {
    "DoubleStorage": "<f8",
    "FloatStorage": "<f4",
    "HalfStorage": "<f2",
    "BFloat16Storage": "<u2",
    "LongStorage": "<i8",
    "IntStorage": "<i4",
    "ShortStorage": "<i2",
    "CharStorage": "i1",
    "ByteStorage": "u1",
    "BoolStorage": "?",
    "ComplexFloatStorage": "<c8",
    "ComplexDoubleStorage": "<c16",
}


def read_state_dict(path):
    """Reads a PyTorch state dict into numpy arrays, without PyTorch.

    Reads the legacy format of ``torch.save`` and the zip format. Tensors
    come back as C-contiguous numpy arrays in native byte order, with
    their logical shape (a tensor saved channels-last or transposed is
    laid out again). bfloat16 tensors come back as float32 (exactly).
    A checkpoint that wraps the weights as ``{"state_dict": {...}, ...}``
    gives that inner dict.

    Example:

    >>> import os, pickle, tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "not_a_checkpoint.pth")
    >>> with open(path, "wb") as f:
    ...     pickle.dump([1, 2, 3], f)
    >>> read_state_dict(path)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: '...not_a_checkpoint.pth' is not a PyTorch checkpoint: ...

    On a real file: ``read_state_dict("efficientnet-lite0.pth")
    ["_conv_stem.weight"].shape`` is ``(32, 3, 3, 3)``.

    Args:
        path: str or PathLike. A file written by ``torch.save``.

    Returns:
        A dict (in the file's order) of tensor name -> ``numpy.ndarray``.

    Raises:
        ValueError: the file is missing, truncated, not a PyTorch
            checkpoint, holds something other than tensors, or names a
            global outside the few a state dict needs (the message names
            it; nothing from the file is run).
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise ValueError(
            f"PyTorch checkpoint not found: {path!r}. Pass the path of a "
            f"file saved with torch.save.")
    with open(path, "rb") as f:
        head = f.read(4)
    try:
        if zipfile.is_zipfile(path) and head == b"PK\x03\x04":
            obj = _read_zip(path)
        else:
            with open(path, "rb") as f:
                obj = _read_legacy(f, path, os.path.getsize(path))
    except RecursionError:
        raise ValueError(
            f"{path!r} nests containers too deeply for a state dict; the "
            f"file is crafted or damaged.") from None
    return _as_state_dict(obj, path)


# ---------------------------------------------------------------- stand-ins


class _Frozen(tuple):
    """Shared stand-ins are tuples that refuse attribute changes, so that a
    file cannot alter them (pickle's BUILD opcode sets attributes) for the
    files read after it."""

    __slots__ = ()

    def __setattr__(self, name, value):
        raise ValueError(
            f"The file tries to set {name!r} on {self!r}; it was refused. "
            f"A state dict never does this: the file is crafted or "
            f"damaged.")


class _StorageType(_Frozen):
    """What ``torch.FloatStorage`` and friends unpickle to (not callable,
    so a file cannot make a storage by calling it)."""

    __slots__ = ()

    def __new__(cls, name, dtype):
        return super().__new__(cls, (name, np.dtype(dtype)))

    name = property(lambda self: self[0])
    dtype = property(lambda self: self[1])

    def __repr__(self):
        return f"torch.{self.name}"


class _Callable(_Frozen):
    """A function the file may call, without a writable ``__dict__`` or
    ``__defaults__``."""

    __slots__ = ()

    def __new__(cls, name, func):
        return super().__new__(cls, (name, func))

    name = property(lambda self: self[0])
    func = property(lambda self: self[1])

    def __call__(self, *args):
        return self.func(*args)

    def __repr__(self):
        return self.name


class _Storage:
    """A storage named by a persistent id; ``array`` is filled later."""

    __slots__ = ("key", "kind", "numel", "array")

    def __init__(self, key, kind, numel):
        self.key = key
        self.kind = kind
        self.numel = numel
        self.array = None


class _Tensor:
    """A tensor waiting for its storage's bytes."""

    __slots__ = ("storage", "offset", "size", "stride")

    def __init__(self, storage, offset, size, stride):
        self.storage = storage
        self.offset = offset
        self.size = size
        self.stride = stride


class _View:
    """A storage view from very old files: ``numel`` elements from
    ``offset`` of a root storage."""

    __slots__ = ("root", "offset", "numel")

    def __init__(self, root, offset, numel):
        self.root = root
        self.offset = offset
        self.numel = numel


def _rebuild_tensor_v2(storage, storage_offset, size, stride,
                       requires_grad=False, backward_hooks=None,
                       metadata=None):
    return _Tensor(storage, storage_offset, size, stride)


def _rebuild_tensor(storage, storage_offset, size, stride):
    return _Tensor(storage, storage_offset, size, stride)


def _rebuild_parameter(data, requires_grad, backward_hooks):
    return data


_ALLOWED = {
    ("collections", "OrderedDict"): collections.OrderedDict,
}
_ALLOWED.update({("torch._utils", f.__name__): _Callable(
    f"torch._utils.{f.__name__}", f) for f in (
        _rebuild_tensor_v2, _rebuild_tensor, _rebuild_parameter)})
_ALLOWED.update({("torch", name): _StorageType(name, dtype)
                 for name, dtype in STORAGE_DTYPES.items()})


class _Unpickler(pickle.Unpickler):
    """Resolves only the globals of ``_ALLOWED``; persistent ids become
    ``_Storage`` objects (only when ``storages`` is given)."""

    def __init__(self, file, path, storages=None):
        super().__init__(file)
        self._path = path
        self._storages = storages

    def find_class(self, module, name):
        found = _ALLOWED.get((module, name))
        if found is None:
            raise ValueError(
                f"{self._path!r} names the global {module}.{name}, which a "
                f"PyTorch state dict does not need; it was refused so that "
                f"the file cannot run code. Only tensors in (ordered) dicts "
                f"are read. If you trust the file, load it with torch and "
                f"save its state_dict() again.")
        return found

    def persistent_load(self, pid):
        if self._storages is None:
            raise ValueError(
                f"{self._path!r}: a persistent id ({pid!r:.80}) where "
                f"plain data was expected; the file is not a PyTorch "
                f"checkpoint or is damaged.")
        return _storage_from_id(pid, self._storages, self._path)


def _storage_from_id(pid, storages, path):
    ok = (isinstance(pid, tuple) and len(pid) in (5, 6)
          and pid[0] == "storage" and isinstance(pid[1], _StorageType)
          and isinstance(pid[2], str) and _is_count(pid[4]))
    if not ok:
        raise ValueError(
            f"{path!r}: unexpected storage reference {pid!r:.120}; expected "
            f"('storage', <storage type>, key, location, numel). The file "
            f"is damaged or not a state dict.")
    kind, key, numel = pid[1], pid[2], pid[4]
    storage = storages.get(key)
    if storage is None:
        storage = storages[key] = _Storage(key, kind, numel)
    elif storage.kind is not kind or storage.numel != numel:
        raise ValueError(
            f"{path!r}: storage {key!r} is declared twice, as {numel} "
            f"{kind.name} elements and as {storage.numel} "
            f"{storage.kind.name} elements.")
    view = pid[5] if len(pid) == 6 else None
    if view is None:
        return storage
    ok = (isinstance(view, tuple) and len(view) == 3
          and _is_count(view[1]) and _is_count(view[2])
          and view[1] + view[2] <= numel)
    if not ok:
        raise ValueError(
            f"{path!r}: storage view {view!r:.80} does not fit in storage "
            f"{key!r} of {numel} elements.")
    return _View(storage, view[1], view[2])


def _is_count(value):
    return isinstance(value, int) and not isinstance(value, bool) \
        and value >= 0


# ------------------------------------------------------------------ formats


def _load_part(f, path, what, storages=None):
    try:
        return _Unpickler(f, path, storages).load()
    except ValueError:
        raise
    except (EOFError, pickle.UnpicklingError) as e:
        if not isinstance(e, EOFError) and "truncated" not in str(e):
            raise ValueError(
                f"{path!r}: could not read the {what} ({e}). The file is "
                f"damaged or not a PyTorch checkpoint.") from None
        raise ValueError(
            f"{path!r} is truncated: the file ends inside the {what}. "
            f"Download or copy it again.") from None
    except Exception as e:
        raise ValueError(
            f"{path!r}: could not read the {what} "
            f"({type(e).__name__}: {e}). The file is damaged or not a "
            f"PyTorch checkpoint.") from None


def _read_legacy(f, path, file_size):
    if not f.read(2):
        raise ValueError(
            f"{path!r} is empty; expected a PyTorch checkpoint. Download or "
            f"copy it again.")
    f.seek(0)
    magic = _load_part(f, path, "magic number")
    if magic != LEGACY_MAGIC or isinstance(magic, bool):
        raise ValueError(
            f"{path!r} is not a PyTorch checkpoint: its first pickle is "
            f"{magic!r:.60}, not the magic number {LEGACY_MAGIC:#x} of "
            f"torch.save's legacy format (nor is it a zip file).")
    version = _load_part(f, path, "protocol version")
    if version != LEGACY_PROTOCOL:
        raise ValueError(
            f"{path!r}: legacy protocol version {version!r:.40}; only "
            f"{LEGACY_PROTOCOL} is known.")
    info = _load_part(f, path, "system information")
    if isinstance(info, dict) and info.get("little_endian") is False:
        raise ValueError(
            f"{path!r} was saved on a big-endian machine; only "
            f"little-endian legacy files are read.")
    storages = {}
    obj = _load_part(f, path, "pickled object", storages)
    keys = _load_part(f, path, "list of storage keys")
    if not (isinstance(keys, list) and all(isinstance(k, str)
                                           for k in keys)):
        raise ValueError(
            f"{path!r}: expected a list of storage keys after the object, "
            f"found {type(keys).__name__}. The file is damaged.")
    for key in keys:
        storage = storages.get(key)
        if storage is None:
            raise ValueError(
                f"{path!r}: storage {key!r} is listed but no tensor uses it.")
        where = f.tell()
        count = f.read(8)
        if len(count) < 8:
            raise ValueError(
                f"{path!r} is truncated: expected the 8-byte element count "
                f"of storage {key!r} at byte {where}, but the file ends "
                f"there ({file_size} bytes). Download or copy it again.")
        count = int.from_bytes(count, "little", signed=True)
        if count != storage.numel:
            raise ValueError(
                f"{path!r}: storage {key!r} holds {count} elements in the "
                f"file but its tensors declare {storage.numel}. The file is "
                f"damaged.")
        nbytes = count * storage.kind.dtype.itemsize
        if nbytes > file_size - where - 8:
            raise ValueError(
                f"{path!r} is truncated: storage {key!r} needs {nbytes} "
                f"bytes from byte {where + 8}, but the file has "
                f"{file_size} bytes. Download or copy it again.")
        storage.array = np.frombuffer(f.read(nbytes),
                                      dtype=storage.kind.dtype)
    return _materialise(obj, path)


def _read_zip(path):
    with zipfile.ZipFile(path) as z:
        names = z.namelist()
        pickles = [n for n in names if n.endswith("data.pkl")
                   and n.count("/") == 1]
        if len(pickles) != 1:
            raise ValueError(
                f"{path!r} is a zip file but not one written by torch.save "
                f"(expected one '<name>/data.pkl', found {len(pickles)}).")
        prefix = pickles[0][:-len("data.pkl")]
        order = "little"
        if prefix + "byteorder" in names:
            order = z.read(prefix + "byteorder").decode("ascii").strip()
        storages = {}
        with z.open(pickles[0]) as f:
            obj = _load_part(f, path, "pickled object (data.pkl)", storages)
        for key, storage in storages.items():
            name = f"{prefix}data/{key}"
            if name not in names:
                raise ValueError(
                    f"{path!r} has no entry {name!r} for storage {key!r}; "
                    f"the file is incomplete.")
            dtype = storage.kind.dtype
            if order == "big":
                dtype = dtype.newbyteorder(">")
            nbytes = storage.numel * dtype.itemsize
            data = z.read(name)
            if len(data) < nbytes:
                raise ValueError(
                    f"{path!r}: entry {name!r} holds {len(data)} bytes; "
                    f"storage {key!r} needs {nbytes} ({storage.numel} "
                    f"{storage.kind.name} elements). The file is damaged.")
            storage.array = np.frombuffer(data[:nbytes], dtype=dtype)
    return _materialise(obj, path)


# ---------------------------------------------------------------- tensors


def _materialise(obj, path):
    """Replaces every ``_Tensor`` in ``obj`` by a numpy array."""
    if isinstance(obj, _Tensor):
        return _to_array(obj, path)
    if isinstance(obj, dict):
        out = type(obj)() if type(obj) is collections.OrderedDict else {}
        for key, value in obj.items():
            out[key] = _materialise(value, path)
        return out
    if isinstance(obj, (list, tuple)):
        return type(obj)(_materialise(v, path) for v in obj)
    return obj


def _to_array(tensor, path):
    storage, base = tensor.storage, 0
    if isinstance(storage, _View):
        storage, base, numel = storage.root, storage.offset, storage.numel
    elif isinstance(storage, _Storage):
        numel = storage.numel
    else:
        raise ValueError(
            f"{path!r}: a tensor's storage is {type(storage).__name__}, not "
            f"a storage reference. The file is damaged.")
    if storage.array is None:
        raise ValueError(
            f"{path!r}: the data of storage {storage.key!r} is missing "
            f"(the file lists no bytes for it).")
    offset, size, stride = tensor.offset, tensor.size, tensor.stride
    ok = (_is_count(offset) and isinstance(size, tuple)
          and isinstance(stride, tuple) and len(size) == len(stride)
          and all(_is_count(v) for v in size + stride))
    if not ok:
        raise ValueError(
            f"{path!r}: bad tensor layout (offset {offset!r:.40}, size "
            f"{size!r:.80}, stride {stride!r:.80}).")
    shape = tuple(size)
    if 0 in shape:
        out = np.zeros(shape, storage.array.dtype)
    else:
        last = offset + sum((n - 1) * s for n, s in zip(shape, stride))
        if last >= numel:
            raise ValueError(
                f"{path!r}: a tensor of size {shape} and stride "
                f"{tuple(stride)} from offset {offset} reaches element "
                f"{last} of storage {storage.key!r}, which holds {numel}. "
                f"The file is damaged.")
        flat = storage.array[base:base + numel]
        itemsize = flat.dtype.itemsize
        view = np.lib.stride_tricks.as_strided(
            flat[offset:], shape=shape,
            strides=tuple(s * itemsize for s in stride), writeable=False)
        out = np.array(view, dtype=flat.dtype.newbyteorder("="),
                       order="C", copy=True)
    if storage.kind.name == "BFloat16Storage":
        out = (out.astype(np.uint32) << 16).view(np.float32)
    return out


def _as_state_dict(obj, path):
    if isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict):
        raise ValueError(
            f"{path!r} holds a {type(obj).__name__}, not a state dict (a "
            f"dict of tensor name -> tensor).")
    out = {}
    for key, value in obj.items():
        if not isinstance(value, np.ndarray):
            raise ValueError(
                f"{path!r}: entry {key!r} is a {type(value).__name__}, not "
                f"a tensor; only state dicts of tensors are read.")
        out[str(key)] = value
    return out
