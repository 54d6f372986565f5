"""kerasdl.features: precompute writes features + labels with a manifest,
resumes after a real SIGKILL with identical arrays, refuses stale caches,
fails cleanly on a full disk; the reader shuffles in blocks."""

import doctest
import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import keras
import numpy as np
import pytest

from kerasdl import _backend
from kerasdl.data.augment import augmentation
from kerasdl.features import FeatureBatches
from kerasdl.features import compute
from kerasdl.features import load_features
from kerasdl.features import reader
from kerasdl.features import store
from kerasdl.features import precompute

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _model(seed=0, size=8):
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((size, size, 3), dtype="uint8", name="image")
    x = keras.layers.Rescaling(1 / 255, name="scale")(inputs)
    x = keras.layers.Conv2D(4, 3, padding="same", name="conv")(x)
    x = keras.layers.MaxPooling2D(2, name="pool")(x)
    x = keras.layers.Flatten(name="flat")(x)
    x = keras.layers.Dense(3, name="top")(x)
    return keras.Model(inputs, x, name="tiny")


def _data(n=21, size=8, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.integers(0, 256, (n, size, size, 3), dtype=np.uint8),
            np.arange(n) % 3)


def test_doctests():
    for module in (compute, reader, store):
        assert doctest.testmod(module).failed == 0


def test_features_equal_the_model_output(tmp_path):
    model = _model()
    x, y = _data()
    fs = precompute(model, (x, y), tmp_path, layer="pool", verbose=0)
    base = keras.Model(model.inputs, model.get_layer("pool").output)
    expected = base.predict(x, verbose=0)
    assert fs.features.shape == (21, 4, 4, 4)
    assert fs.features.dtype == np.float16
    np.testing.assert_allclose(fs.features, expected, rtol=2e-3, atol=2e-3)
    np.testing.assert_array_equal(fs.labels, y)
    m = fs.manifest
    assert m["layer"] == "pool" and m["model"] == "tiny"
    assert m["input_shape"] == [8, 8, 3] and m["passes"] == 0
    assert m["preprocessing"]["layers"][0]["class"] == "Rescaling"
    assert m["preprocessing"]["input_dtype"] == "uint8"
    assert m["compute_dtype"] == "float32" and m["dtype"] == "float16"
    assert sorted(os.listdir(tmp_path)) == [
        "features.json", "features.npy", "labels.json", "labels.npy"]
    # the same call again reuses the result
    again = precompute(model, (x, y), tmp_path, layer="pool", verbose=0)
    assert again.manifest == m


def _named_like(name, after):
    """``_model``'s layers under a backbone's name: ``pool`` renamed
    ``after`` and followed by an unnamed ReLU (MobileNetV3Small's feature
    layer is the activation after its ``conv_1_bn``)."""
    inputs = keras.Input((8, 8, 3), dtype="uint8", name="image")
    x = keras.layers.Rescaling(1 / 255, name="scale")(inputs)
    x = keras.layers.Conv2D(4, 3, padding="same", name="conv")(x)
    x = keras.layers.MaxPooling2D(2, name=after)(x)
    x = keras.layers.ReLU()(x)
    x = keras.layers.Flatten(name="flat")(x)
    return keras.Model(inputs, x, name=name)


def test_default_layer_is_the_backbones_feature_layer(tmp_path):
    x, y = _data()
    model = _named_like("MobileNetV3Small", "conv_1_bn")
    fs = precompute(model, (x, y), tmp_path / "m", verbose=0)
    relu = model.layers[-2]
    assert isinstance(relu, keras.layers.ReLU)
    assert fs.manifest["layer"] == relu.name
    expected = keras.Model(model.inputs, relu.output).predict(x, verbose=0)
    assert fs.features.shape == (21, 4, 4, 4) and expected.min() >= 0
    np.testing.assert_allclose(fs.features, expected, rtol=2e-3, atol=2e-3)
    # a VGG16 of any name: block5_conv3, as before backbones existed
    vgg = _named_like("my_vgg", "block5_conv3")
    fs = precompute(vgg, (x, y), tmp_path / "v", verbose=0)
    assert fs.manifest["layer"] == "block5_conv3"
    assert fs.features.shape == (21, 4, 4, 4)
    with pytest.raises(ValueError, match="'tiny' is not one of the backbones"
                                         " .*Name the layer to cut at"):
        precompute(_model(), (x, y), tmp_path / "t", verbose=0)
    assert not (tmp_path / "t").exists()


def test_chunk_rows(tmp_path):
    model = _model()
    x, y = _data()
    whole = precompute(model, (x, y), tmp_path / "a", layer="pool",
                       dtype="float32", verbose=0)
    small = precompute(model, (x, y), tmp_path / "b", layer="pool",
                       dtype="float32", chunk_rows=5, verbose=0)
    assert small.manifest["chunk_rows"] == 5
    np.testing.assert_allclose(small.features, whole.features, atol=1e-6)
    with pytest.raises(ValueError, match="chunk_rows"):
        precompute(model, (x, y), tmp_path / "c", chunk_rows=0, verbose=0)


def test_stale_cache_is_refused(tmp_path):
    x, y = _data()
    precompute(_model(), (x, y), tmp_path, layer="pool", verbose=0)
    with pytest.raises(ValueError, match="Stale.*weights"):
        precompute(_model(seed=1), (x, y), tmp_path, layer="pool", verbose=0)
    x2 = x.copy()
    x2[0, 0, 0, 0] ^= 1
    with pytest.raises(ValueError, match="Stale.*data"):
        precompute(_model(), (x2, y), tmp_path, layer="pool", verbose=0)
    with pytest.raises(ValueError, match="Stale.*layer"):
        precompute(_model(), (x, y), tmp_path, layer="conv", verbose=0)
    fs = precompute(_model(), (x2, y), tmp_path, layer="pool",
                    overwrite=True, verbose=0)
    assert fs.manifest["data"] != precompute(
        _model(), (x, y), tmp_path / "b", layer="pool",
        verbose=0).manifest["data"]


def test_augmented_passes_are_seeded(tmp_path):
    x, y = _data(n=10)
    aug = augmentation("statefarm", seed=0)
    a = precompute(_model(), (x, y), tmp_path / "a", layer="flat",
                   augment_passes=2, augment=aug, verbose=0)
    b = precompute(_model(), (x, y), tmp_path / "b", layer="flat",
                   augment_passes=2, augment=aug, verbose=0)
    assert a.features.shape == (30, 64)
    np.testing.assert_array_equal(a.features, b.features)
    np.testing.assert_array_equal(a.labels, np.concatenate([y] * 3))
    plain = np.asarray(a.features[:10], np.float32)
    alone = precompute(_model(), (x, y), tmp_path / "c", layer="flat",
                       verbose=0)
    np.testing.assert_array_equal(plain, np.asarray(alone.features,
                                                    np.float32))
    for k in (1, 2):
        diff = np.abs(np.asarray(a.features[10 * k:10 * (k + 1)],
                                 np.float32) - plain)
        assert diff.max() > 1e-2  # augmented rows differ from originals
    assert a.manifest["augment"][0]["class"] == "RandomAffine"
    assert a.manifest["augment"][0]["config"]["rotation"] == 15


def test_image_batches_source(tmp_path):
    from PIL import Image

    from kerasdl.data.images import image_folder

    x, y = _data(n=6)
    for i, (img, label) in enumerate(zip(x, y)):
        os.makedirs(tmp_path / "img" / f"c{label}", exist_ok=True)
        Image.fromarray(img).save(tmp_path / "img" / f"c{label}" / f"{i}.png")
    batches = image_folder(tmp_path / "img", image_size=(8, 8), batch_size=4,
                           min_size=8)
    fs = precompute(_model(), batches, tmp_path / "f", layer="flat",
                    verbose=0)
    xs, ys = batches.to_arrays()
    ref = precompute(_model(), (xs, ys), tmp_path / "g", layer="flat",
                     verbose=0)
    np.testing.assert_allclose(fs.features, ref.features)
    np.testing.assert_array_equal(fs.labels, ys)
    with pytest.raises(ValueError, match="shuffle=False"):
        precompute(_model(), image_folder(tmp_path / "img", image_size=(8, 8),
                                          min_size=8, shuffle=True),
                   tmp_path / "h", verbose=0)


def test_bad_arguments(tmp_path):
    x, y = _data()
    with pytest.raises(ValueError, match="uint8"):
        precompute(_model(), x.astype("float32"), tmp_path, verbose=0)
    with pytest.raises(ValueError, match="shape"):
        precompute(_model(size=16), x, tmp_path, layer=None, verbose=0)
    with pytest.raises(ValueError, match="no layer named"):
        precompute(_model(), x, tmp_path, layer="block5_conv3", verbose=0)
    with pytest.raises(ValueError, match="dtype"):
        precompute(_model(), x, tmp_path, layer=None, dtype="int8",
                   verbose=0)
    with pytest.raises(TypeError, match="data"):
        precompute(_model(), [1, 2], tmp_path, verbose=0)
    assert os.listdir(tmp_path) == []


_CHILD = textwrap.dedent("""
    import os, sys, time
    import numpy as np
    sys.path.insert(0, {root!r})
    from tests.test_features import _model, _data
    from kerasdl.features import _engine
    from kerasdl.features import precompute
    slow = float(os.environ.get("SLOW", "0"))
    if slow:
        sink_run = _engine.run
        def run(step, n, load, sink, **kw):
            def slow_sink(k, y):
                sink(k, y)
                time.sleep(slow)
                print("chunk", k, flush=True)
            return sink_run(step, n, load, slow_sink, depth=0, threads=1,
                            progress=kw.get("progress"))
        _engine.run = run
    if os.environ.get("FSIZE"):
        import resource, signal
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        lim = int(os.environ["FSIZE"])
        resource.setrlimit(resource.RLIMIT_FSIZE, (lim, lim))
    x, y = _data(n=int(os.environ.get("N", "200")))
    try:
        precompute(_model(), (x, y), sys.argv[1], layer="flat",
                   augment_passes=1, verbose=0)
    except OSError as e:
        print("OSError:", e, flush=True)
        sys.exit(3)
    print("finished", flush=True)
""")


def _child(tmp_path, out, **env):
    script = tmp_path / "child.py"
    script.write_text(_CHILD.format(root=ROOT))
    return subprocess.Popen(
        [sys.executable, str(script), str(out)], stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True,
        env=dict(os.environ, PYTHONPATH=ROOT, **env))


@pytest.mark.one_backend
def test_sigkill_and_resume_give_the_same_arrays(tmp_path):
    # 200 images + 1 augmented pass = 4 chunks of 128 rows... use N=600:
    # 10 chunks, each slowed down so that the kill lands mid-run.
    env = {"N": "600", "SLOW": "0.4"}
    proc = _child(tmp_path, tmp_path / "killed", **env)
    seen = 0
    # progress is written at most every 0.5 s: by the 3rd chunk of 0.4 s
    # it has been written once at least
    kill_after = 3 + int(np.random.default_rng().integers(0, 4))
    for line in proc.stdout:
        if line.startswith("chunk"):
            seen += 1
            if seen == kill_after:
                time.sleep(float(np.random.default_rng().uniform(0, 0.4)))
                proc.send_signal(signal.SIGKILL)
                break
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    partial = tmp_path / "killed" / ".partial"
    assert not (tmp_path / "killed" / "features.json").exists()
    done = json.loads((partial / "progress.json").read_text())["done"]
    assert 0 < done < 10
    resumed = _child(tmp_path, tmp_path / "killed", N="600", SLOW="0.01")
    log = resumed.communicate()[0]
    assert resumed.returncode == 0, log[-3000:]
    # only the unfinished chunks were computed again
    assert log.count("chunk") == 10 - done
    x, y = _data(n=600)  # the same run, uninterrupted, in this process
    b = precompute(_model(), (x, y), tmp_path / "whole", layer="flat",
                   augment_passes=1, verbose=0)
    a = load_features(tmp_path / "killed")
    assert a.features.shape == (1200, 64)
    np.testing.assert_array_equal(a.features, b.features)
    np.testing.assert_array_equal(a.labels, b.labels)
    assert not partial.exists()


@pytest.mark.one_backend
def test_full_disk_ends_cleanly(tmp_path):
    # RLIMIT_FSIZE (a real kernel limit; writes fail with EFBIG as a full
    # disk fails with ENOSPC): 40,000 bytes cannot hold 400 x 64 float16.
    proc = _child(tmp_path, tmp_path / "full", N="200", FSIZE="40000")
    log = proc.communicate()[0]
    assert proc.returncode == 3, log[-3000:]
    assert "File too large" in log and "Free space" in log
    left = sorted(os.listdir(tmp_path / "full")) if (
        tmp_path / "full").exists() else []
    assert "features.json" not in left and "features.npy" not in left


def test_reader_shuffles_in_blocks():
    x = np.arange(50, dtype=np.float32)[:, None]
    y = np.arange(50)
    b = FeatureBatches(x, y, batch_size=8, block_rows=5, window_blocks=2,
                       seed=1)
    seen = []
    for i in range(len(b)):
        xb, yb = b[i]
        np.testing.assert_array_equal(xb[:, 0], yb)
        seen.append(yb)
    rows = np.concatenate(seen)
    assert sorted(rows.tolist()) == list(range(50))
    assert rows.tolist() != list(range(50))
    # every window of 10 consecutive output rows comes from two blocks
    for start in range(0, 50, 10):
        assert len(set(rows[start:start + 10] // 5)) <= 2
    first = rows.copy()
    b.on_epoch_end()
    second = np.concatenate([b[i][1] for i in range(len(b))])
    assert second.tolist() != first.tolist()
    again = FeatureBatches(x, y, batch_size=8, block_rows=5, window_blocks=2,
                           seed=1)
    assert np.concatenate([again[i][1] for i in range(len(again))]).tolist() \
        == first.tolist()
    plain = FeatureBatches(x, None, batch_size=8, shuffle=False)
    assert plain[1][:, 0].tolist() == list(range(8, 16))


def test_head_trains_on_a_memory_map(tmp_path):
    x, y = _data(n=40)
    fs = precompute(_model(), (x, y), tmp_path, layer="flat", verbose=0)
    head = keras.Sequential([keras.Input((64,)),
                             keras.layers.Dense(3, activation="softmax")])
    head.compile("adam", "sparse_categorical_crossentropy")
    hist = head.fit(fs.batches(16, block_rows=8), epochs=2, verbose=0)
    assert np.isfinite(hist.history["loss"]).all()


def test_backend_helpers(backend):
    model = _model()
    step = _backend.compiled_inference(
        model, lambda x: keras.ops.cast(x, "uint8"),
        lambda y: keras.ops.cast(y, "float16"))
    x, _ = _data(n=4)
    y = _backend.to_host(_backend.start_fetch(step(_backend.to_device(x))))
    assert y.dtype == np.float16 and y.shape == (4, 3)
    np.testing.assert_allclose(y, model.predict(x, verbose=0), atol=2e-3)


def test_low_precision_copy_keeps_the_weights(tmp_path):
    x, y = _data(n=8)
    model = _model()
    full = precompute(model, (x, y), tmp_path / "a", layer="flat",
                      dtype="float32", verbose=0)
    low = precompute(model, (x, y), tmp_path / "b", layer="flat",
                     dtype="float32", compute_dtype="mixed_bfloat16",
                     verbose=0)
    assert low.manifest["compute_dtype"] == "mixed_bfloat16"
    assert low.manifest["weights"] == full.manifest["weights"]
    assert not np.array_equal(low.features, full.features)  # really bf16
    np.testing.assert_allclose(low.features, full.features, rtol=0.05,
                               atol=0.05)
    assert model.layers[2].dtype_policy.name == "float32"  # untouched
