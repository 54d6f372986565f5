"""kerasdl.features: a damaged cache (truncated, garbage manifest, missing
labels, flipped bytes, impossible progress) is refused naming the file and
rebuilt by overwrite=True; the folder lock refuses a second writer and
never blocks after its holder died."""

import json
import os
import socket
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from kerasdl import _files
from kerasdl.features import load_features
from kerasdl.features import precompute
from tests.test_features import _data
from tests.test_features import _model

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _run(path, **kwargs):
    x, y = _data()
    return precompute(_model(), (x, y), path, layer="pool", verbose=0,
                      **kwargs)


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    fs = _run(tmp_path_factory.mktemp("ref"))
    return np.array(fs.features), np.array(fs.labels)


def _flip(path, offset):
    with open(path, "r+b") as f:
        f.seek(offset)
        byte = f.read(1)[0]
        f.seek(offset)
        f.write(bytes([byte ^ 0x40]))


def _edit_manifest(path, **changes):
    meta = json.loads(path.read_text())
    meta.update(changes)
    path.write_text(json.dumps(meta))


def _truncate(path):
    with open(path, "r+b") as f:
        f.truncate(os.path.getsize(path) - 100)


DAMAGE = {
    "truncated features": (lambda d: _truncate(d / "features.npy"),
                           r"features\.npy.*truncated"),
    "flipped byte": (lambda d: _flip(d / "features.npy", 300),
                     r"features\.npy.*checksum"),
    "empty manifest": (lambda d: (d / "features.json").write_text(""),
                       r"features\.json"),
    "garbage manifest": (lambda d: (d / "features.json").write_text(
        "\x00garbage{"), r"features\.json"),
    "manifest of a list": (lambda d: (d / "features.json").write_text(
        "[1, 2]"), r"features\.json.*not a valid"),
    "deleted labels.json": (lambda d: os.remove(d / "labels.json"),
                            r"has labels.*labels\.json"),
    "deleted labels": (lambda d: [os.remove(d / n) for n in (
        "labels.json", "labels.npy")], r"has labels.*labels\.json"),
    "digest not hex": (lambda d: _edit_manifest(
        d / "features.json", xxh3_blocks="0123456789abcdeg"),
        r"features\.json.*not a valid.*xxh3_blocks"),
    "flipped label": (lambda d: _flip(d / "labels.npy", 130),
                      r"labels\.npy.*checksum"),
}


@pytest.mark.parametrize("kind", sorted(DAMAGE))
def test_damaged_cache_is_refused_then_rebuilt(tmp_path, reference, kind):
    damage, names_the_file = DAMAGE[kind]
    _run(tmp_path)
    damage(tmp_path)
    with pytest.raises(ValueError, match=names_the_file) as e:
        load_features(tmp_path)
    assert "overwrite=True" in str(e.value)
    with pytest.raises(ValueError, match=names_the_file) as e:
        _run(tmp_path)  # never reused
    assert "overwrite=True" in str(e.value)
    fs = _run(tmp_path, overwrite=True)
    np.testing.assert_array_equal(fs.features, reference[0])
    np.testing.assert_array_equal(fs.labels, reference[1])
    assert sorted(os.listdir(tmp_path)) == [
        "features.json", "features.npy", "labels.json", "labels.npy"]


def test_a_cache_checksummed_with_crc32_still_loads_and_is_verified(
        tmp_path, reference):
    # caches written before the block digest carry a CRC-32 instead
    from kerasdl.data import _digest
    from kerasdl.data import arrays

    _run(tmp_path)
    manifest = tmp_path / "features.json"
    meta = json.loads(manifest.read_text())
    assert meta[_digest.KEY] == _digest.file_digest(
        tmp_path / "features.npy")
    del meta[_digest.KEY]
    meta["crc32"] = arrays.file_crc32(tmp_path / "features.npy")
    manifest.write_text(json.dumps(meta))
    np.testing.assert_array_equal(load_features(tmp_path).features,
                                  reference[0])
    np.testing.assert_array_equal(_run(tmp_path).features, reference[0])
    _flip(tmp_path / "features.npy", 300)
    with pytest.raises(ValueError, match=r"features\.npy.*checksum"):
        load_features(tmp_path)


def test_verify_false_skips_only_the_checksum(tmp_path):
    _run(tmp_path)
    _flip(tmp_path / "features.npy", 300)
    assert len(load_features(tmp_path, verify=False)) == 21
    _truncate(tmp_path / "features.npy")
    with pytest.raises(ValueError, match="truncated"):
        load_features(tmp_path, verify=False)


def test_damaged_progress_starts_again(tmp_path, reference):
    # an unfinished run whose progress file claims more than was done
    x, y = _data()
    partial = tmp_path / ".partial"
    _run(tmp_path)
    os.makedirs(partial)
    for name in ("features.json", "features.npy"):
        os.replace(tmp_path / name, partial / name)
    for name in ("labels.json", "labels.npy"):
        os.replace(tmp_path / name, partial / name)
    meta = json.loads((partial / "features.json").read_text())["metadata"]
    (partial / "manifest.json").write_text(json.dumps(meta))
    (partial / "progress.json").write_text('{"done": 99}')
    with open(partial / "features.npy", "r+b") as f:
        f.truncate(200)  # zero rows where the count says work was done
    fs = _run(tmp_path)
    np.testing.assert_array_equal(fs.features, reference[0])
    assert not partial.exists()


_HOLDER = textwrap.dedent("""
    import sys
    from kerasdl import _files
    with _files.FolderLock(sys.argv[1], "precompute"):
        print("locked", flush=True)
        sys.stdin.readline()
""")


def test_second_writer_is_refused_naming_the_holder(tmp_path, reference):
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, str(tmp_path)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        env=dict(os.environ, PYTHONPATH=ROOT))
    try:
        assert holder.stdout.readline() == "locked\n"
        with pytest.raises(_files.FolderBusyError) as e:
            _run(tmp_path)
        message = str(e.value)
        assert f"process {holder.pid} on host {socket.gethostname()}" \
            in message
        assert "is in use" in message and "Wait until it finishes" in message
        assert str(tmp_path / ".lock") in message
        assert isinstance(e.value, ValueError)
    finally:
        holder.communicate("done\n")
    assert not (tmp_path / ".lock").exists()
    np.testing.assert_array_equal(_run(tmp_path).features, reference[0])


def test_lock_of_a_killed_process_does_not_block(tmp_path, reference):
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, str(tmp_path)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        env=dict(os.environ, PYTHONPATH=ROOT))
    assert holder.stdout.readline() == "locked\n"
    holder.kill()  # SIGKILL: the lock file stays, the kernel's lock goes
    holder.wait()
    holder.stdin.close()
    holder.stdout.close()
    assert f"pid {holder.pid}" in (tmp_path / ".lock").read_text()
    fs = _run(tmp_path)
    np.testing.assert_array_equal(fs.features, reference[0])
    assert not (tmp_path / ".lock").exists()


def test_path_must_be_a_folder(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(ValueError, match="`path` must be a folder"):
        _run(tmp_path / "file")
    with pytest.raises(TypeError, match="`path`"):
        _run(3)


def test_arguments_go_through_the_shared_checks(tmp_path):
    with pytest.raises(TypeError, match="`augment_passes` must be an "
                                        "integer >= 0. Received: "
                                        "augment_passes=1.5"):
        _run(tmp_path, augment_passes=1.5)
    with pytest.raises(ValueError, match="`compute_dtype` must be one of"):
        _run(tmp_path, compute_dtype="float64")
    with pytest.raises(ValueError, match="`seed`"):
        _run(tmp_path, seed=-1)
    assert os.listdir(tmp_path) == []
