"""kerasdl.data.arrays: .npy + JSON manifest, memory-mapped loads, no
pickle, nothing complete-looking after a failed save."""

import os
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

from kerasdl.data import arrays
from kerasdl.data.arrays import load_array
from kerasdl.data.arrays import read_manifest
from kerasdl.data.arrays import save_array


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


@pytest.mark.parametrize("value", [np.float32(3.5), np.array(True),
                                   np.int64(-7), np.zeros((0, 3), "int16")])
def test_zero_d_and_empty_arrays_round_trip(tmp_path, value):
    save_array(tmp_path / "z", value)
    x = load_array(tmp_path / "z")
    assert x.shape == np.shape(value) and x.dtype == np.asarray(value).dtype
    np.testing.assert_array_equal(x, value)
    assert not x.flags.writeable
    assert read_manifest(tmp_path / "z")["shape"] == list(np.shape(value))


def test_manifest_carries_size_and_checksum(tmp_path):
    save_array(tmp_path / "a", np.arange(1000, dtype="int32"))
    meta = read_manifest(tmp_path / "a")
    assert meta["bytes"] == os.path.getsize(tmp_path / "a.npy")
    assert meta["crc32"] == arrays.file_crc32(tmp_path / "a.npy")


def _flip_last_byte(path):
    with open(path, "r+b") as f:
        f.seek(-1, os.SEEK_END)
        byte = f.read(1)[0]
        f.seek(-1, os.SEEK_END)
        f.write(bytes([byte ^ 0x10]))


def test_damaged_files_are_refused_naming_the_file(tmp_path):
    a = np.arange(1000, dtype="float32")
    save_array(tmp_path / "a", a)
    _flip_last_byte(tmp_path / "a.npy")
    with pytest.raises(arrays.ArrayFileError, match=r"a\.npy.*checksum"):
        load_array(tmp_path / "a")
    # verify=False skips the read of the whole file (the size still holds)
    assert load_array(tmp_path / "a", verify=False)[-1] != a[-1]
    save_array(tmp_path / "a", a)
    with open(tmp_path / "a.npy", "r+b") as f:
        f.truncate(os.path.getsize(tmp_path / "a.npy") - 8)
    for verify in (True, False):
        with pytest.raises(ValueError, match=r"a\.npy.*truncated"):
            load_array(tmp_path / "a", verify=verify)
    for text in ("", "{garbage", "[]", '{"format": "kerasdl.array/1"}',
                 '{"format": "kerasdl.array/1", "shape": [2], '
                 '"dtype": "nonsense"}'):
        (tmp_path / "a.json").write_text(text)
        with pytest.raises(ValueError, match=r"a\.json.*Save the array"):
            load_array(tmp_path / "a")


def test_metadata_must_be_a_dict(tmp_path):
    with pytest.raises(TypeError, match="metadata"):
        save_array(tmp_path / "m", np.zeros(2), metadata=[1, 2])
    assert os.listdir(tmp_path) == []


def test_saved_files_get_the_usual_mode(tmp_path):
    old = os.umask(0o022)
    try:
        save_array(tmp_path / "a", np.zeros(3))
    finally:
        os.umask(old)
    for name in ("a.npy", "a.json"):
        assert os.stat(tmp_path / name).st_mode & 0o777 == 0o644


def _dead_pid():
    proc = subprocess.run([sys.executable, "-c", "import os; "
                           "print(os.getpid())"], capture_output=True,
                          text=True, check=True)
    return int(proc.stdout)


def test_temporaries_of_dead_writers_are_removed(tmp_path):
    import socket

    host = socket.gethostname()
    dead = tmp_path / f".a.npy.{host}-{_dead_pid()}-0badcafe.tmp"
    live = tmp_path / f".a.npy.{host}-{os.getpid()}-0badcafe.tmp"
    other = tmp_path / f".a.json.other-host-1-0badcafe.tmp"
    for path in (dead, live, other):
        path.write_bytes(b"x" * 100)
    save_array(tmp_path / "a", np.zeros(3))
    assert not dead.exists()
    assert live.exists() and other.exists()  # their writers may be alive


_WRITER = textwrap.dedent("""
    import sys
    import numpy as np
    from kerasdl.data.arrays import save_array
    print("ready", flush=True)
    k = 0
    while True:
        k += 1
        save_array(sys.argv[1], np.full(1 << 23, k, np.float32),
                   metadata={"k": k})
        print("saved", k, flush=True)
""")


def test_sigkill_during_overwrite_keeps_a_whole_array(tmp_path):
    # A real SIGKILL at a random moment of a loop of 32 MB overwrites:
    # the array on disk is always one whole save, never a mix, never lost.
    path = tmp_path / "big"
    save_array(path, np.zeros(1 << 23, np.float32), metadata={"k": 0})
    env = dict(os.environ, PYTHONPATH=os.getcwd())
    rng = np.random.default_rng()
    seen = set()
    for _ in range(4):
        proc = subprocess.Popen([sys.executable, "-c", _WRITER, str(path)],
                                stdout=subprocess.PIPE, text=True, env=env)
        assert proc.stdout.readline() == "ready\n"
        time.sleep(float(rng.uniform(0.05, 0.8)))
        proc.kill()
        proc.wait()
        proc.stdout.close()
        try:
            x = load_array(path)
        except arrays.ArrayFileError as e:
            # killed between the two renames: refused, never wrong
            assert "do not belong together" in str(e)
            seen.add("refused")
        else:
            k = read_manifest(path)["metadata"]["k"]
            assert x.shape == (1 << 23,)
            assert x.min() == x.max() == k
            seen.add("whole")
            del x
        seen.update(["temporaries"] if any(
            n.endswith(".tmp") for n in os.listdir(tmp_path)) else [])
        save_array(path, np.full(1 << 23, -1, np.float32),
                   metadata={"k": -1})
        assert sorted(os.listdir(tmp_path)) == ["big.json", "big.npy"]
    assert "whole" in seen
