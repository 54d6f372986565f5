"""kerasdl.data.arrays: .npy + JSON manifest, memory-mapped loads, no
pickle, nothing complete-looking after a failed save."""

import doctest
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from kerasdl.data import arrays
from kerasdl.data.arrays import load_array
from kerasdl.data.arrays import read_manifest
from kerasdl.data.arrays import save_array


def test_doctests():
    assert doctest.testmod(arrays).failed == 0


@pytest.mark.parametrize("dtype", ["float16", "float32", "uint8", "int64",
                                   "bool"])
def test_round_trip_memory_mapped(tmp_path, dtype):
    a = (np.arange(24).reshape(2, 3, 4) % 3).astype(dtype)
    save_array(tmp_path / "a.npy", a, metadata={"k": [1, 2]})
    x = load_array(tmp_path / "a")
    assert isinstance(x, np.memmap) and not x.flags.writeable
    np.testing.assert_array_equal(x, a)
    assert x.dtype == a.dtype
    assert read_manifest(tmp_path / "a")["metadata"] == {"k": [1, 2]}
    y = load_array(tmp_path / "a", mmap=False)
    assert not isinstance(y, np.memmap)
    assert sorted(os.listdir(tmp_path)) == ["a.json", "a.npy"]


def test_refuses_objects_and_bad_metadata(tmp_path):
    with pytest.raises(TypeError, match="no pickle"):
        save_array(tmp_path / "o", np.array([{"a": 1}], dtype=object))
    with pytest.raises(TypeError, match="JSON"):
        save_array(tmp_path / "m", np.zeros(2), metadata={"f": object()})
    assert os.listdir(tmp_path) == []


def test_missing_or_mismatched_manifest(tmp_path):
    np.save(tmp_path / "raw.npy", np.zeros(3))
    with pytest.raises(ValueError, match="did not finish"):
        load_array(tmp_path / "raw")
    with pytest.raises(ValueError, match="does not exist"):
        load_array(tmp_path / "nothing")
    save_array(tmp_path / "a", np.zeros((2, 2)))
    np.save(tmp_path / "a.npy", np.zeros((3, 2)))  # swapped behind its back
    with pytest.raises(ValueError, match="do not belong together"):
        load_array(tmp_path / "a")


def test_overwrite_replaces_both(tmp_path):
    save_array(tmp_path / "a", np.zeros(2), metadata={"v": 1})
    save_array(tmp_path / "a", np.ones(5), metadata={"v": 2})
    assert load_array(tmp_path / "a").tolist() == [1.0] * 5
    assert read_manifest(tmp_path / "a")["metadata"]["v"] == 2


def test_full_disk_leaves_nothing_complete(tmp_path):
    # A real kernel limit: RLIMIT_FSIZE makes writes past 64 KiB fail
    # with EFBIG, as a full disk fails with ENOSPC.
    code = textwrap.dedent(f"""
        import resource, signal, sys
        import numpy as np
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (65536, 65536))
        from kerasdl.data.arrays import save_array
        try:
            save_array({str(tmp_path / "big")!r}, np.ones(100000))
        except OSError as e:
            print("OSError", e.errno, e)
            sys.exit(3)
    """)
    env = dict(os.environ, PYTHONPATH=os.getcwd())
    out = subprocess.run([sys.executable, "-c", code], capture_output=True,
                         text=True, env=env)
    assert out.returncode == 3, out.stderr[-2000:]
    assert "File too large" in out.stdout and "Free space" in out.stdout
    assert os.listdir(tmp_path) == []
