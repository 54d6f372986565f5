"""VGG16: preprocessing layer, weights files, ImageNet path, saving."""

import keras
import numpy as np
import pytest

from kerasdl.models import vgg
from kerasdl.models import vgg16
from kerasdl.models import vgg16_bn


def _images(n=2, size=32, seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, size, size, 3)).astype("uint8")


def test_preprocess_matches_numpy():
    x = _images().astype("float32")
    out = keras.ops.convert_to_numpy(vgg.VGGPreprocess()(x))
    expected = (x - np.array([123.68, 116.779, 103.939]))[..., ::-1]
    np.testing.assert_allclose(out, expected, rtol=0, atol=1e-4)


def test_preprocess_stays_float32_under_mixed_precision():
    keras.config.set_dtype_policy("mixed_bfloat16")
    layer = vgg.VGGPreprocess()
    out = layer(_images())
    assert keras.backend.standardize_dtype(out.dtype) == "float32"
    x = _images().astype("float64")
    expected = (x - np.array([123.68, 116.779, 103.939]))[..., ::-1]
    np.testing.assert_allclose(keras.ops.convert_to_numpy(out), expected,
                               atol=1e-4)


def test_weights_file_round_trip(tmp_path):
    keras.utils.set_random_seed(1)
    model = vgg16((32, 32, 3), 10)
    path = tmp_path / "vgg.weights.h5"
    model.save_weights(path)
    keras.utils.set_random_seed(2)
    loaded = vgg16((32, 32, 3), 10, weights=str(path))
    x = _images(4)
    np.testing.assert_array_equal(model.predict(x, verbose=0),
                                  loaded.predict(x, verbose=0))


def test_weights_file_that_does_not_fit(tmp_path):
    path = tmp_path / "vgg10.weights.h5"
    vgg16((32, 32, 3), 10).save_weights(path)
    with pytest.raises(ValueError, match="does not fit model") as info:
        vgg16((32, 32, 3), 5, weights=str(path))
    assert "\n" not in str(info.value)
    with pytest.raises(ValueError, match="not found"):
        vgg16((32, 32, 3), 10, weights=str(tmp_path / "missing.h5"))


def _legacy_h5(model, path):
    """Writes weights the way the published ImageNet file stores them."""
    import h5py
    from keras.src.legacy.saving import legacy_h5_format

    with h5py.File(path, "w") as f:
        legacy_h5_format.save_weights_to_hdf5_group(f, model)


def test_imagenet_path_loads_published_layout(tmp_path, monkeypatch):
    # Build the reference with keras.applications (the published layout
    # and layer order), store it as the legacy .h5 the download gives, and
    # point the download at it: our builders must load it layer by layer.
    keras.utils.set_random_seed(3)
    reference = keras.applications.VGG16(
        weights=None, include_top=False, input_shape=(32, 32, 3))
    path = tmp_path / "notop.h5"
    _legacy_h5(reference, path)
    asked = []

    def fake_get_file(fname, origin, cache_subdir, file_hash):
        asked.append((fname, origin, file_hash))
        return str(path)

    monkeypatch.setattr(keras.utils, "get_file", fake_get_file)
    x = _images(2)
    expected = reference.predict(
        keras.applications.vgg16.preprocess_input(x.astype("float32")),
        verbose=0)
    for build in (vgg16, vgg16_bn):
        model = build((32, 32, 3), 10, weights="imagenet",
                      include_top=False)
        np.testing.assert_allclose(model.predict(x, verbose=0), expected,
                                   rtol=1e-4, atol=1e-3)
    assert asked[0] == (
        "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5",
        "https://storage.googleapis.com/tensorflow/keras-applications/"
        "vgg16/vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5",
        "6d6bbae143d832006294945121d1f1fc")


def test_imagenet_offline_is_one_clear_line(monkeypatch):
    def offline(*args, **kwargs):
        raise Exception("URL fetch failure: [Errno -3] name resolution")

    monkeypatch.setattr(keras.utils, "get_file", offline)
    with pytest.raises(ValueError, match="Could not download the VGG16 "
                                         "ImageNet weights") as info:
        vgg16((32, 32, 3), 10, weights="imagenet", include_top=False)
    assert "weights=PATH" in str(info.value)
    assert "\n" not in str(info.value)


def test_imagenet_top_needs_224():
    with pytest.raises(ValueError, match=r"\(224, 224, 3\)"):
        vgg16((64, 64, 3), 10, weights="imagenet")


def test_saved_model_loads_with_safe_mode(tmp_path):
    model = vgg16((32, 32, 3), 4, input_dtype="uint8")
    path = tmp_path / "vgg.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    assert isinstance(loaded.get_layer("preprocess"), vgg.VGGPreprocess)
    x = _images(3)
    np.testing.assert_array_equal(model.predict(x, verbose=0),
                                  loaded.predict(x, verbose=0))
