"""kerasdl.tta: the mix (1 - beta) * clean + beta * mean(views), exact
against model.predict, deterministic views, and refused input."""

import importlib
import os

import keras
import numpy as np
import pytest
from PIL import Image

import kerasdl
from kerasdl.data.augment import RandomAffine
from kerasdl.data.augment import transform_with

# `import kerasdl.tta as m` would give the function (the package's name)
TTA = importlib.import_module("kerasdl.tta")


def _dense_model(shape=(8, 8, 3), seed=0):
    """Sees every pixel at its place: a mirror image changes its output."""
    keras.utils.set_random_seed(seed)
    return keras.Sequential([keras.Input(shape), keras.layers.Rescaling(
        1 / 255), keras.layers.Flatten(), keras.layers.Dense(
        3, activation="softmax")])


def _pooled_model(shape=(8, 8, 3)):
    """Averages over positions first: a mirror image cannot change it."""
    keras.utils.set_random_seed(1)
    return keras.Sequential([keras.Input(shape),
                             keras.layers.GlobalAveragePooling2D(),
                             keras.layers.Dense(3, activation="softmax")])


def _images(n=10, shape=(8, 8, 3), seed=0):
    return np.random.default_rng(seed).integers(
        0, 256, (n, *shape)).astype(np.uint8)


def test_beta_zero_is_model_predict_exactly():
    model, x = _dense_model(), _images(37)
    clean = model.predict(x, batch_size=32, verbose=0)
    out = kerasdl.tta(model, x, beta=0.0, batch_size=32)
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, clean)


def test_beta_zero_on_image_batches(tmp_path):
    paths, labels = [], []
    for i, img in enumerate(_images(7, (32, 32, 3))):
        paths.append(str(tmp_path / f"{i}.png"))
        labels.append(i % 3)
        Image.fromarray(img).save(paths[-1])
    batches = kerasdl.image_files(paths, labels, image_size=(32, 32),
                                  batch_size=4, class_names=["a", "b", "c"])
    model = _dense_model((32, 32, 3))
    probs, y = kerasdl.tta(model, batches, beta=0.0, return_targets=True)
    np.testing.assert_array_equal(probs, model.predict(batches, verbose=0))
    assert y.tolist() == labels


def test_flip_invariant_model_gives_its_own_prediction():
    model, x = _pooled_model(), _images(12)
    plain = model.predict(x, verbose=0)
    for beta in (0.25, 1.0):
        np.testing.assert_allclose(kerasdl.tta(model, x, beta=beta), plain,
                                   rtol=0, atol=2e-6)
    # the same model on a mirror-sensitive input path is not invariant
    dense = _dense_model()
    assert not np.allclose(kerasdl.tta(dense, x, beta=1.0),
                           dense.predict(x, verbose=0), atol=1e-3)


def test_mix_with_mirror_images():
    model, x = _dense_model(), _images(9)
    clean = model.predict(x, verbose=0).astype(np.float64)
    mirror = model.predict(x[:, :, ::-1], verbose=0).astype(np.float64)
    for beta in (0.25, 0.5, 1.0):
        np.testing.assert_allclose(
            kerasdl.tta(model, x, beta=beta),
            (1 - beta) * clean + beta * mirror, rtol=0, atol=1e-6)
    # n does not apply without `augment`: the mirror is the one view
    np.testing.assert_array_equal(kerasdl.tta(model, x, n=1),
                                  kerasdl.tta(model, x, n=6))


def test_mix_with_augment_passes_and_flips():
    """n seeded passes of `augment`, odd passes mirrored, mean of them."""
    model, x = _dense_model(), _images(5)
    layer = RandomAffine(rotation=20, width_shift=0.2)
    clean = model.predict(x, verbose=0).astype(np.float64)
    views = []
    for i in range(3):
        rng = np.random.default_rng([7, i, 0])
        v = np.asarray(keras.ops.convert_to_numpy(
            transform_with(layer, x.astype(np.float32), rng)))
        v = np.clip(np.rint(v), 0, 255).astype(np.uint8)
        views.append(v[:, :, ::-1] if i % 2 else v)
    mean = np.mean([model.predict(v, verbose=0) for v in views], axis=0)
    out = kerasdl.tta(model, x, n=3, augment=layer, beta=0.4, seed=7)
    np.testing.assert_allclose(out, 0.6 * clean + 0.4 * mean, rtol=0,
                               atol=1e-6)
    again = kerasdl.tta(model, x, n=3, augment=layer, beta=0.4, seed=7)
    np.testing.assert_array_equal(out, again)
    other = kerasdl.tta(model, x, n=3, augment=layer, beta=0.4, seed=8)
    assert not np.allclose(out, other, atol=1e-4)


def test_preset_and_float_inputs():
    model = _dense_model()
    x = _images(4).astype(np.float32)
    out = kerasdl.tta(model, (x, np.arange(4)), augment="light", n=2,
                      return_targets=True)
    probs, y = out
    assert probs.shape == (4, 3) and y.tolist() == [0, 1, 2, 3]
    np.testing.assert_allclose(probs.sum(axis=1), 1, atol=1e-5)


def test_module_is_callable_when_imported_first():
    model, x = _dense_model(), _images(3)
    np.testing.assert_array_equal(TTA(model, x), TTA.tta(model, x))


@pytest.mark.parametrize("kwargs,error,needle", [
    ({"flip": False}, ValueError, "nothing to augment"),
    ({"beta": 1.5}, ValueError, "`beta` must be"),
    ({"beta": "0.2"}, TypeError, "`beta` must be"),
    ({"n": 0}, ValueError, "`n` must be an integer >= 1"),
    ({"augment": keras.layers.Dense(2)}, TypeError, "kerasdl RandomAffine"),
    ({"augment": "heavy"}, ValueError, "`augment` must be one of"),
    ({"flip": 1}, TypeError, "`flip` must be True or False"),
])
def test_bad_arguments(kwargs, error, needle):
    with pytest.raises(error, match=needle):
        kerasdl.tta(_dense_model(), _images(2), **kwargs)


def test_refuses_augmented_batches_and_non_images(tmp_path):
    path = os.path.join(tmp_path, "a.png")
    Image.fromarray(_images(1, (32, 32, 3))[0]).save(path)
    train = kerasdl.image_files(
        [path, path], [0, 1], class_names=["a", "b"], image_size=(32, 32),
        augment=RandomAffine(horizontal_flip=True))
    model = _dense_model((32, 32, 3))
    with pytest.raises(ValueError, match="validation batches"):
        kerasdl.tta(model, train)
    flat = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    with pytest.raises(ValueError, match="batches of images"):
        kerasdl.tta(flat, np.zeros((3, 4), np.float32))
    with pytest.raises(TypeError, match="`batches` must be"):
        kerasdl.tta(model, 5)
    with pytest.raises(TypeError, match="keras.Model"):
        kerasdl.tta("model", _images(2))
