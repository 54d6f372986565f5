"""The fast paths of precompute: the XXH3 fingerprint (and a caller's key)
still refuses a cache made from other data; rows written out of order by
the writer threads give the file and CRC-32 of an in-order write; image
files decoded in worker processes give the batches threads give; JPEG
draft decoding is exact where it must be and close elsewhere; under JAX
data parallelism each device's own stream writes the single device's
features."""

import json
import os
import subprocess
import sys
import textwrap
import threading

import numpy as np
import pytest
from PIL import Image

from kerasdl.data import _decode
from kerasdl.data import arrays
from kerasdl.data.images import image_files
from kerasdl.features import _source
from kerasdl.features import precompute
from kerasdl.features import store
from tests.test_features import _data
from tests.test_features import _model

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.parametrize("fallback", [False, True])
def test_fingerprint_sees_every_byte_labels_and_shape(monkeypatch,
                                                      fallback):
    if fallback:  # without the xxhash package: blake2b, as honest
        monkeypatch.setattr(_source, "xxhash", None)
    # blocks of 3 images, hashed on threads: every block counts
    monkeypatch.setattr(_source, "_BLOCK_BYTES", 3 * 8 * 8 * 3)
    x, y = _data(n=9)
    base = _source.array_fingerprint(x, y)
    assert base.startswith("arrays:xxh3:" if _source.xxhash is not None
                           else "arrays:blake2b:")
    assert _source.array_fingerprint(x.copy(), y.copy()) == base
    for row in (0, 4, 8):  # a byte of each block
        changed = x.copy()
        changed[row, -1, -1, -1] ^= 1
        assert _source.array_fingerprint(changed, y) != base
    assert _source.array_fingerprint(x[::-1].copy(), y) != base
    assert _source.array_fingerprint(x.reshape(9, 4, 16, 3), y) != base
    assert _source.array_fingerprint(x, (y + 1) % 3) != base
    assert _source.array_fingerprint(x, None) != base


def test_fast_fingerprint_refuses_other_data(tmp_path):
    x, y = _data()
    precompute(_model(), (x, y), tmp_path, layer="pool", verbose=0)
    other = x.copy()
    other[20, 7, 7, 2] ^= 0x80  # one byte of the last image
    with pytest.raises(ValueError, match="Stale.*data"):
        precompute(_model(), (other, y), tmp_path, layer="pool", verbose=0)
    with pytest.raises(ValueError, match="Stale.*data"):
        precompute(_model(), (x, (y + 1) % 3), tmp_path, layer="pool",
                   verbose=0)


def test_data_key_names_the_data_without_reading_it(tmp_path):
    x, y = _data()
    fs = precompute(_model(), (x, y), tmp_path, layer="pool",
                    data_key="photos-v1", verbose=0)
    assert "key" in fs.manifest["data"]
    changed = x.copy()
    changed[0] = 0
    # the caller vouches for the key: the same key is the same data
    again = precompute(_model(), (changed, y), tmp_path, layer="pool",
                       data_key="photos-v1", verbose=0)
    np.testing.assert_array_equal(again.features, fs.features)
    with pytest.raises(ValueError, match="Stale.*data"):
        precompute(_model(), (x, y), tmp_path, layer="pool",
                   data_key="photos-v2", verbose=0)
    with pytest.raises(ValueError, match="Stale.*data"):
        precompute(_model(), (x[:20], y[:20]), tmp_path, layer="pool",
                   data_key="photos-v1", verbose=0)
    with pytest.raises(TypeError, match="data_key"):
        precompute(_model(), (x, y), tmp_path, data_key=3, verbose=0)


def test_writer_out_of_order_gives_the_in_order_file(tmp_path, monkeypatch):
    from kerasdl.data import _digest

    monkeypatch.setattr(_digest, "BLOCK", 64)  # chunks span many blocks
    rng = np.random.default_rng(0)
    rows = rng.standard_normal((50, 3, 4)).astype(np.float16)
    chunk = 7
    n_chunks = -(-50 // chunk)
    partial = tmp_path / "partial"
    partial.mkdir()
    out = store.RowFile(str(partial / "features.npy"), rows.shape,
                        "float16", create=True)
    pieces = _digest.Pieces()
    pieces.add(0, out.header)
    writer = store.ChunkWriter(out, str(partial), 0,
                               digest=pieces, threads=3,
                               pending=2, sync_every=0.01)
    order = rng.permutation(n_chunks)
    threads = [threading.Thread(target=lambda ks: [
        writer.write(int(k), int(k) * chunk, rows[k * chunk:(k + 1) * chunk])
        for k in ks], args=(order[i::2],)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    digest = writer.close()
    path = str(partial / "features.npy")
    np.testing.assert_array_equal(np.load(path), rows)
    assert digest == _digest.file_digest(path)
    progress = json.loads((partial / "progress.json").read_text())
    assert progress == {"done": n_chunks}


def _photos(folder, n=10, size=(120, 90)):
    """JPEG, PNG and grayscale files of varied content, one bad file."""
    rng = np.random.default_rng(1)
    paths = []
    for i in range(n):
        pixels = rng.integers(0, 256, (size[1], size[0], 3), np.uint8)
        pixels = np.cumsum(pixels, axis=1, dtype=np.uint16).astype(np.uint8)
        img = Image.fromarray(pixels)
        ext = ".png" if i % 4 == 3 else ".jpg"
        if i % 5 == 2:
            img = img.convert("L")
        path = os.path.join(folder, f"{i:02d}{ext}")
        img.save(path, quality=90)
        paths.append(path)
    bad = os.path.join(folder, "bad.jpg")
    with open(paths[0], "rb") as f:
        head = f.read()
    head = head[:len(head) // 2]
    with open(bad, "wb") as f:
        f.write(head)  # a valid header, then nothing: found when decoded
    paths.insert(4, bad)
    return paths


def test_processes_give_the_batches_threads_give(tmp_path):
    paths = _photos(tmp_path)
    labels = np.arange(len(paths)) % 3
    common = dict(image_size=(40, 30), batch_size=4, on_error="skip",
                  min_size=8)
    threads = image_files(paths, labels, processes=0, **common)
    procs = image_files(paths, labels, processes=2, **common)
    try:
        for i in range(len(threads)):
            (xt, yt), (xp, yp) = threads[i], procs[i]
            np.testing.assert_array_equal(xp, xt)
            np.testing.assert_array_equal(yp, yt)
        assert [p for p, _ in procs.report.skipped] == [paths[4]]
        assert procs.report.skipped == threads.report.skipped
        x, _ = procs.to_arrays()
        assert x.shape == (len(paths) - 1, 40, 30, 3)
        strict = image_files(paths, labels, processes=2,
                             **dict(common, on_error="raise"))
        with pytest.raises(_decode.ImageError, match="bad.jpg"):
            strict[1]
        strict.close()
    finally:
        procs.close()
    with pytest.raises(ValueError, match="processes"):
        image_files(paths, labels, processes=-1, **common)


def test_a_script_left_with_decoding_processes_exits_cleanly(tmp_path):
    # A script that never closes its loader (the usual case) must end with
    # its own exit status: closing the pipes while the interpreter
    # finalizes aborted it ("Fatal Python error", status 134).
    paths = _photos(tmp_path)[5:]
    script = textwrap.dedent(f"""
        from kerasdl.data.images import image_files
        loader = image_files({paths!r}, image_size=(20, 20), batch_size=3,
                             processes=2, min_size=8)
        loader[0]
    """)
    env = dict(os.environ, PYTHONPATH=ROOT)
    done = subprocess.run([sys.executable, "-c", script], env=env,
                          capture_output=True, text=True, timeout=120)
    assert "Fatal Python error" not in done.stderr
    assert done.returncode == 0, done.stderr


def test_draft_is_exact_when_it_cannot_help_and_close_when_it_does(
        tmp_path):
    # a smooth picture (as photos mostly are): gradients and waves
    yy, xx = np.mgrid[0:240, 0:320] / 40.0
    pixels = np.stack([127 + 100 * np.sin(xx), 127 + 100 * np.cos(yy),
                       255 * (xx + yy) / 14], -1)
    path = str(tmp_path / "smooth.jpg")
    Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(
        path, quality=90)
    # a target above half the file: libjpeg cannot reduce, same pixels
    for size in ((200, 300), (121, 161)):
        np.testing.assert_array_equal(
            _decode.decode(path, size),
            _decode.decode(path, size, draft=False))
    # a quarter of the file: libjpeg decodes at 1/4 scale
    small = _decode.decode(path, (60, 80))
    full = _decode.decode(path, (60, 80), draft=False)
    diff = np.abs(small.astype(int) - full.astype(int))
    assert diff.mean() < 2 and diff.max() < 40
    with Image.open(path) as img:
        img.draft("RGB", (80, 60))
        assert img.size == (80, 60)  # really reduced


_STREAMS = textwrap.dedent("""
    import json, os, sys, tempfile
    sys.path.insert(0, {root!r})
    import numpy as np
    import kerasdl
    from kerasdl.features import _engine, precompute
    from tests.test_features import _data, _model
    x, y = _data(n=45)
    tmp = tempfile.mkdtemp()
    one = precompute(_model(), (x, y), os.path.join(tmp, "one"),
                     layer="flat", chunk_rows=8, augment_passes=1,
                     verbose=0)
    with kerasdl.data_parallel() as dp:
        devices = _engine.stream_devices()
        two = precompute(_model(), (x, y), os.path.join(tmp, "two"),
                         layer="flat", chunk_rows=8, augment_passes=1,
                         verbose=0)
    print(json.dumps({{"devices": devices, "replicas": dp.num_replicas,
                      "diff": float(np.max(np.abs(
                          np.asarray(one.features, np.float32)
                          - np.asarray(two.features, np.float32)))),
                      "same_labels": bool(np.array_equal(one.labels,
                                                         two.labels)),
                      "rows": len(two)}}))
""")


def test_each_device_has_its_own_stream(backend):
    if backend != "jax":
        pytest.skip("per-device streams are the JAX path (TensorFlow "
                    "splits every chunk in its MirroredStrategy)")
    env = dict(os.environ, KERAS_BACKEND="jax", PYTHONPATH=ROOT,
               XLA_FLAGS="--xla_force_host_platform_device_count=2",
               CUDA_VISIBLE_DEVICES="")
    out = subprocess.run([sys.executable, "-c",
                          _STREAMS.format(root=ROOT)], env=env,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    report = json.loads(out.stdout.strip().splitlines()[-1])
    assert report["replicas"] == 2 and len(report["devices"]) == 2
    assert report["rows"] == 90 and report["same_labels"]
    assert report["diff"] <= 1e-3
