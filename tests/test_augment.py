"""kerasdl.data.augment: the warp matches scipy's affine_transform, the
layers keep a model compilable (XLA), presets, the level scan."""

import math

import keras
import numpy as np
import pytest
from scipy import ndimage

from kerasdl.data import augment
from kerasdl.data.augment import ChannelShift
from kerasdl.data.augment import RandomAffine
from kerasdl.data.augment import augmentation


def _images(shape=(3, 7, 9, 2), seed=0):
    return np.random.default_rng(seed).uniform(0, 255, shape).astype(
        "float32")


def _reference(img, u, layer, mode):
    """scipy's affine_transform with the matrix built in numpy."""
    h, w = img.shape[:2]
    s = 2 * u - 1
    a, sh = math.radians(s[0] * layer.rotation), s[3] * layer.shear
    rot = np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])
    shear = np.array([[1, -math.sin(sh)], [0, math.cos(sh)]])
    zoom = np.diag([1 + s[4] * layer.zoom, 1 + s[5] * layer.zoom])
    flip = np.diag([-1 if layer.horizontal_flip and u[6] < 0.5 else 1,
                    -1 if layer.vertical_flip and u[7] < 0.5 else 1])
    m = rot @ shear @ zoom @ flip  # acts on (x, y)
    t = np.array([s[1] * layer.width_shift * w, s[2] * layer.height_shift * h])
    c = np.array([(w - 1) / 2, (h - 1) / 2])
    # scipy works in (row, col) = (y, x)
    m_rc = m[::-1, ::-1]
    offset = (c + t - m @ c)[::-1]
    return np.stack([ndimage.affine_transform(
        img[..., k].astype("float64"), m_rc, offset=offset, order=1,
        mode=mode, cval=layer.fill_value) for k in range(img.shape[-1])],
        axis=-1)


@pytest.mark.parametrize("fill_mode,scipy_mode", [
    ("nearest", "nearest"), ("constant", "grid-constant")])
def test_warp_matches_scipy(fill_mode, scipy_mode):
    layer = RandomAffine(rotation=25, width_shift=0.2, height_shift=0.1,
                         shear=0.3, zoom=0.3, horizontal_flip=True,
                         vertical_flip=True, fill_mode=fill_mode,
                         fill_value=7.0)
    x = _images()
    u = np.random.default_rng(1).random((3, 8)).astype("float32")
    out = np.asarray(layer.transform(x, u))
    for i in range(3):
        np.testing.assert_allclose(out[i], _reference(x[i], u[i], layer,
                                                      scipy_mode),
                                   atol=2e-3)


def test_exact_cases():
    x = _images((2, 6, 6, 3))
    half = np.full((2, 8), 0.5, "float32")
    # no transformation at all
    np.testing.assert_allclose(
        np.asarray(RandomAffine(rotation=30).transform(x, half)), x,
        atol=1e-3)
    # +90 degrees is a quarter turn of the pixel grid
    u = half.copy()
    u[:, 0] = 1.0
    np.testing.assert_allclose(
        np.asarray(RandomAffine(rotation=90).transform(x, u)),
        np.rot90(x, 1, axes=(1, 2)), atol=1e-3)
    # a flip
    u = half.copy()
    u[:, 6] = 0.0
    np.testing.assert_allclose(
        np.asarray(RandomAffine(horizontal_flip=True).transform(x, u)),
        x[:, :, ::-1], atol=1e-3)
    # a shift of +3 columns: output column j shows input column j + 3,
    # the last columns repeat the edge ("nearest")
    u = half.copy()
    u[:, 1] = 1.0
    out = np.asarray(RandomAffine(width_shift=0.5).transform(x, u))
    np.testing.assert_allclose(out[:, :, :3], x[:, :, 3:], atol=1e-3)
    np.testing.assert_allclose(out[:, :, 3:], np.repeat(x[:, :, 5:], 3, 2),
                               atol=1e-3)


def test_random_per_image_and_seeded():
    x = np.repeat(_images((1, 8, 8, 3)), 4, axis=0)
    out = np.asarray(RandomAffine(rotation=40, seed=3)(x))
    again = np.asarray(RandomAffine(rotation=40, seed=3)(x))
    np.testing.assert_allclose(out, again)
    assert len({float(np.abs(o - x[0]).sum()) for o in out}) == 4
    np.testing.assert_allclose(
        np.asarray(RandomAffine(rotation=40)(x, training=False)), x)


def test_channel_shift():
    x = _images((4, 5, 5, 3))
    x[:, 0, 0, :] = 0.0
    x[:, 0, 1, :] = 255.0
    u = np.array([[0.0], [1.0], [0.5], [0.75]], "float32")
    out = np.asarray(ChannelShift(20).transform(x, u))
    np.testing.assert_allclose(out[0], np.clip(x[0] - 20, 0, 255), atol=1e-4)
    np.testing.assert_allclose(out[1], np.clip(x[1] + 20, 0, 255), atol=1e-4)
    np.testing.assert_allclose(out[2], x[2], atol=1e-4)
    np.testing.assert_allclose(out[3], np.clip(x[3] + 10, 0, 255), atol=1e-4)


def test_keeps_the_model_compiled_and_trains():
    model = keras.Sequential([keras.Input((12, 12, 3)),
                              augmentation("statefarm", seed=0),
                              keras.layers.Rescaling(1 / 255),
                              keras.layers.Flatten(),
                              keras.layers.Dense(2, activation="softmax")])
    from keras.src.trainers.trainer import model_supports_jit

    assert model_supports_jit(model)
    keras_layer = keras.Sequential([keras.Input((12, 12, 3)),
                                    keras.layers.RandomRotation(0.1)])
    assert not model_supports_jit(keras_layer)  # why Keras' layers are slow
    model.compile("adam", "sparse_categorical_crossentropy")
    x = _images((8, 12, 12, 3)).astype("uint8")
    hist = model.fit(x, np.arange(8) % 2, batch_size=4, epochs=2, verbose=0)
    assert np.isfinite(hist.history["loss"]).all()
    assert model.predict(x, verbose=0).shape == (8, 2)


def test_serialisation_round_trip(tmp_path):
    model = keras.Sequential([keras.Input((6, 6, 3)),
                              augmentation("dogscats", channel_shift=5,
                                           seed=2),
                              keras.layers.Flatten(), keras.layers.Dense(1)])
    path = tmp_path / "m.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    aug = loaded.layers[0]
    assert [type(layer).__name__ for layer in aug.layers] == [
        "RandomAffine", "ChannelShift"]
    assert aug.layers[0].shear == 0.15 and aug.layers[0].horizontal_flip
    assert aug.layers[1].intensity == 5
    x = _images((2, 6, 6, 3))
    np.testing.assert_allclose(loaded.predict(x, verbose=0),
                               model.predict(x, verbose=0), atol=1e-5)


def test_transform_with_numpy_generator():
    aug = augmentation("statefarm")
    x = _images((2, 6, 6, 3))
    a = augment.transform_with(aug, x, np.random.default_rng(5))
    b = augment.transform_with(aug, x, np.random.default_rng(5))
    np.testing.assert_allclose(np.asarray(a), np.asarray(b))
    assert np.abs(np.asarray(a) - x).max() > 1
    with pytest.raises(TypeError, match="no transform"):
        augment.transform_with(keras.layers.RandomFlip(), x,
                               np.random.default_rng(0))


def test_bad_arguments():
    with pytest.raises(ValueError, match="rotation"):
        RandomAffine(rotation=-1)
    with pytest.raises(ValueError, match="zoom"):
        RandomAffine(zoom=1.5)
    with pytest.raises(ValueError, match="fill_mode"):
        RandomAffine(fill_mode="wrap")
    with pytest.raises(ValueError, match="preset"):
        augmentation("heavy")
    with pytest.raises(ValueError, match="Unknown augmentation arguments"):
        augmentation(brightness=0.2)
    with pytest.raises(ValueError, match="kind"):
        augment.kind_layer("blur", 1)


def test_scan_picks_the_best_level():
    rng = np.random.default_rng(0)
    # class = which half of the image is bright; a flip swaps the halves,
    # so flipping every other image makes the labels unlearnable
    x = rng.uniform(0, 50, (64, 4, 4, 1)).astype("float32")
    y = np.arange(64) % 2
    x[y == 1, :, 2:] += 200
    x[y == 0, :, :2] += 200

    def make(aug):
        model = keras.Sequential([keras.Input((4, 4, 1)), aug,
                                  keras.layers.Rescaling(1 / 255),
                                  keras.layers.Flatten(),
                                  keras.layers.Dense(2, activation="softmax")])
        model.compile(keras.optimizers.Adam(0.05),
                      "sparse_categorical_crossentropy",
                      metrics=["accuracy"])
        return model

    result = augment.scan_augmentation(make, "horizontal_flip",
                                       [False, True], (x, y), (x, y),
                                       epochs=6, batch_size=16, seed=0,
                                       monitor="val_loss")
    assert result["best"] is False  # the lowest loss wins
    assert result["scores"][False] < 0.1
    assert result["scores"][True] > 0.3  # labels are noise after flips
    with pytest.raises(ValueError, match="monitor"):
        augment.scan_augmentation(make, "zoom", [0.1], (x, y), (x, y),
                                  epochs=1, monitor="val_auc")


def test_array_augment_shift_flip_cutout():
    x = _images((6, 10, 10, 1), seed=3) + 1  # no zeros
    rng = np.random.default_rng(0)
    out = augment.ArrayAugment(cutout=4)(x, rng)
    assert out.shape == x.shape and out.dtype == np.float32
    erased = out == 0
    assert erased.any(axis=(1, 2, 3)).all()
    assert (erased.sum(axis=(1, 2, 3)) <= 16).all()
    np.testing.assert_array_equal(out[~erased], x[~erased])
    # whole-pixel shifts: every image is a shifted copy with zero borders
    shifted = augment.ArrayAugment(shift=2)(x, np.random.default_rng(1))
    for img, src in zip(shifted, x):
        found = False
        for dy in range(-2, 3):
            for dx in range(-2, 3):
                ref = np.zeros_like(src)
                ys, yd = slice(max(-dy, 0), 10 - max(dy, 0)), slice(
                    max(dy, 0), 10 - max(-dy, 0))
                xs, xd = slice(max(-dx, 0), 10 - max(dx, 0)), slice(
                    max(dx, 0), 10 - max(-dx, 0))
                ref[yd, xd] = src[ys, xs]
                found |= np.array_equal(img, ref)
        assert found
    flipped = augment.ArrayAugment(horizontal_flip=True)(
        x, np.random.default_rng(2))
    for img, src in zip(flipped, x):
        assert np.array_equal(img, src) or np.array_equal(img, src[:, ::-1])
    again = augment.ArrayAugment(shift=2, horizontal_flip=True, cutout=4)
    np.testing.assert_array_equal(again(x, np.random.default_rng(5)),
                                  again(x, np.random.default_rng(5)))
    np.testing.assert_array_equal(x, _images((6, 10, 10, 1), seed=3) + 1)


def test_array_augment_errors():
    with pytest.raises(ValueError, match="cutout"):
        augment.ArrayAugment(cutout=-1)
    with pytest.raises(ValueError, match="shift"):
        augment.ArrayAugment(shift=1.5)
    with pytest.raises(ValueError, match="batch, height"):
        augment.ArrayAugment(cutout=2)(np.zeros((3, 4)),
                                       np.random.default_rng(0))


def _disc(h, w, px, py, r=5.0):
    """A bright disc of radius r pixels centred at (px, py) in [-1, 1]."""
    jj, ii = np.meshgrid(np.arange(w) + 0.5, np.arange(h) + 0.5)
    cx, cy = (px + 1) * w / 2, (py + 1) * h / 2
    return np.where((jj - cx) ** 2 + (ii - cy) ** 2 <= r * r, 255.0,
                    0.0).astype("float32")


def _centroid(img):
    """Centre of the brightness, scaled to [-1, 1] over the edges."""
    h, w = img.shape
    jj, ii = np.meshgrid(np.arange(w) + 0.5, np.arange(h) + 0.5)
    total = img.sum()
    return np.array([2 * (img * jj).sum() / total / w - 1,
                     2 * (img * ii).sum() / total / h - 1])


# uniforms: rotation, x shift, y shift, shear, x zoom, y zoom, h flip, v flip
_CASES = {
    "identity": [0.5] * 8,
    "flip": [0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.0, 0.9],
    "rotation": [1.0, 0.5, 0.5, 0.5, 0.5, 0.5, 0.9, 0.9],
    "shift": [0.5, 0.9, 0.1, 0.5, 0.5, 0.5, 0.9, 0.9],
    "zoom": [0.5, 0.5, 0.5, 0.5, 0.0, 1.0, 0.9, 0.9],
    "shear": [0.5, 0.5, 0.5, 1.0, 0.5, 0.5, 0.9, 0.9],
    "all": [0.1, 0.8, 0.3, 0.7, 0.2, 0.9, 0.2, 0.3],
}


@pytest.mark.parametrize("case", sorted(_CASES))
def test_points_land_on_the_centre_of_the_warped_disc(case):
    # 48 x 64: not square, so a mix-up of width and height shows
    h, w = 48, 64
    layer = RandomAffine(rotation=30, width_shift=0.2, height_shift=0.2,
                         shear=0.3, zoom=0.2, horizontal_flip=True,
                         vertical_flip=True, fill_mode="constant")
    p = np.array([[0.3, -0.25], [-0.35, 0.3]], "float32")
    x = np.stack([_disc(h, w, *q) for q in p])[..., None]
    u = np.array([_CASES[case]] * 2, "float32")
    out = np.asarray(layer.transform(x, u))[..., 0]
    moved = np.asarray(layer.transform_points(p, u, (h, w)))
    for img, q in zip(out, moved):
        err = (_centroid(img) - q) * [w / 2, h / 2]  # in pixels
        assert np.abs(err).max() < 0.3, (case, err)
    if case == "identity":
        np.testing.assert_allclose(moved, p, atol=1e-6)
    if case == "flip":  # horizontal flip only: x negated, y kept
        np.testing.assert_allclose(moved, p * [-1, 1], atol=1e-6)
    if case == "rotation":  # +30 degrees about the centre, in pixels
        a = math.radians(30)
        d = p * [w / 2, h / 2]
        back = np.stack([d[:, 0] * math.cos(a) + d[:, 1] * math.sin(a),
                         -d[:, 0] * math.sin(a) + d[:, 1] * math.cos(a)], 1)
        np.testing.assert_allclose(moved, back / [w / 2, h / 2], atol=1e-5)


def test_transform_points_shapes():
    layer = RandomAffine(rotation=20, zoom=0.1)
    u = np.random.default_rng(0).random((3, 8)).astype("float32")
    flat = np.random.default_rng(1).uniform(-0.5, 0.5, (3, 6)).astype(
        "float32")
    a = np.asarray(layer.transform_points(flat, u, (10, 12)))
    b = np.asarray(layer.transform_points(flat.reshape(3, 3, 2), u,
                                          (10, 12)))
    assert a.shape == (3, 6) and b.shape == (3, 3, 2)
    np.testing.assert_allclose(a, b.reshape(3, 6), atol=1e-6)


def test_transform_with_keeps_points_inside():
    x = np.stack([_disc(32, 32, 0.75, -0.75, 2)] * 12)[..., None]
    near = np.tile([[0.75, -0.75]], (12, 1)).astype("float32")
    layer = RandomAffine(width_shift=0.3, height_shift=0.3, rotation=20,
                         fill_mode="constant")
    rng = np.random.default_rng(0)
    first = np.asarray(layer.transform_points(
        near, np.random.default_rng(0).random((12, 8), np.float32),
        (32, 32)))
    assert (np.abs(first) > 1).any()  # some first draws leave the image
    out, moved = augment.transform_with(layer, x, rng, points=near)
    assert np.abs(moved).max() <= 1
    assert np.abs(moved - near).max() > 0.05  # still augmented
    whole = np.abs(moved).max(axis=1) < 1 - 3 / 16  # disc in the image
    assert whole.sum() >= 3
    for img, q in zip(np.asarray(out)[whole, ..., 0], moved[whole]):
        assert np.abs((_centroid(img) - q) * 16).max() < 0.3
    # a corner point leaves the image under any rotation: after the
    # redraws the warp is left out, image and point unchanged
    exact = np.tile([[1.0, 1.0]], (2, 1)).astype("float32")
    img = _images((2, 16, 16, 1))
    out, moved = augment.transform_with(
        RandomAffine(rotation=40), img, np.random.default_rng(0),
        points=exact, tries=3)
    np.testing.assert_allclose(np.asarray(out), img, atol=1e-3)
    np.testing.assert_array_equal(moved, exact)
    # without points the stream of draws is the one it always was
    plain = augment.transform_with(layer, x, np.random.default_rng(5))
    again = layer.transform(x, np.random.default_rng(5).random(
        (12, 8), np.float32))
    np.testing.assert_allclose(np.asarray(plain), np.asarray(again))
