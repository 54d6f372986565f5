"""Points as targets (fastbook chapter 6's head-pose centre): pixel
coordinates scaled to [-1, 1] over the image's edges, moved with the
augmentation inside ImageBatches, and learnt by conv_bn(y_range=(-1, 1)).

The data set is made here: a bright disc at a random place on a dark
noisy image, its centre the point."""

import os

import keras
import numpy as np
import pandas as pd
import pytest
from PIL import Image

import kerasdl
from kerasdl.data.augment import RandomAffine
from kerasdl.data.images import ImageBatches
from kerasdl.data.points import scale_points
from kerasdl.data.points import unscale_points

RADIUS = 4


def _disc_image(width, height, cx, cy, rng, r=RADIUS):
    """uint8 RGB: noise in [0, 60), a disc of 255 centred at (cx, cy)
    pixels (edges convention: pixel column j has its centre at j + 0.5)."""
    jj, ii = np.meshgrid(np.arange(width) + 0.5, np.arange(height) + 0.5)
    img = rng.uniform(0, 60, (height, width))
    img[(jj - cx) ** 2 + (ii - cy) ** 2 <= r * r] = 255
    return np.repeat(img[..., None], 3, axis=-1).astype(np.uint8)


def _disc_table(folder, n, size=32, seed=0, valid_every=4):
    """n PNGs of size x size with a disc; a table (file, x, y, is_valid)
    with the centres in pixels."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        cx, cy = rng.uniform(RADIUS + 1, size - RADIUS - 1, 2)
        name = f"{i}.png"
        Image.fromarray(_disc_image(size, size, cx, cy, rng)).save(
            os.path.join(folder, name))
        rows.append((name, cx, cy, i % valid_every == 0))
    return pd.DataFrame(rows, columns=["file", "x", "y", "is_valid"])


def _centroid(img):
    """Centre of the bright pixels of a uint8 RGB image, in [-1, 1]."""
    a = img[..., 0].astype(np.float64)
    a = np.where(a > 127, a, 0.0)
    h, w = a.shape
    jj, ii = np.meshgrid(np.arange(w) + 0.5, np.arange(h) + 0.5)
    return np.array([2 * (a * jj).sum() / a.sum() / w - 1,
                     2 * (a * ii).sum() / a.sum() / h - 1])


def test_scaling_is_over_the_edges():
    # x = 0 the left edge, x = width the right edge; pixel j's centre is
    # at j + 0.5
    got = scale_points([[0, 0, 64, 48, 32, 24, 0.5, 47.5]], 64, 48)
    np.testing.assert_allclose(
        got, [[-1, -1, 1, 1, 0, 0, -1 + 1 / 64, 1 - 1 / 48]], atol=1e-7)
    # one size per row, and the way back
    pix = np.array([[10.0, 20.0], [3.0, 4.0]])
    scaled = scale_points(pix, [40, 8], [80, 16])
    np.testing.assert_allclose(scaled, [[-0.5, -0.5], [-0.25, -0.5]])
    np.testing.assert_allclose(unscale_points(scaled, [40, 8], [80, 16]),
                               pix, atol=1e-5)
    with pytest.raises(ValueError, match="even number"):
        scale_points([[1, 2, 3]], 10, 10)
    with pytest.raises(ValueError, match="> 0"):
        scale_points([[1, 2]], 0, 10)


def test_scaled_points_stay_right_after_resizing(tmp_path):
    # one bright pixel at column 10, row 5 of a 40x24 image: its centre
    # is (10.5, 5.5). Loaded at 3x the size (bilinear, edge to edge) the
    # bright blob is centred where the scaled point says. A convention
    # on pixel centres (x / (w - 1)) would be off by 1 output pixel here.
    img = np.zeros((24, 40, 3), np.uint8)
    img[5, 10] = 255
    Image.fromarray(img).save(tmp_path / "a.png")
    Image.fromarray(img).save(tmp_path / "b.png")
    table = pd.DataFrame({"f": ["a.png", "b.png"], "x": [10.5, 10.5],
                          "y": [5.5, 5.5], "v": [0, 1]})
    train, _ = kerasdl.images_from_csv(
        table, tmp_path, label_col=["x", "y"], points=True, valid_col="v",
        image_size=(72, 120), min_size=1)
    x, y = train[0]
    a = x[0, ..., 0].astype(np.float64)
    jj, ii = np.meshgrid(np.arange(120) + 0.5, np.arange(72) + 0.5)
    centre = [(a * jj).sum() / a.sum(), (a * ii).sum() / a.sum()]
    expected = unscale_points(y, 120, 72)[0]
    np.testing.assert_allclose(expected, [31.5, 16.5], atol=1e-4)
    np.testing.assert_allclose(centre, expected, atol=0.05)


def test_csv_points_are_scaled_by_each_image(tmp_path):
    Image.new("RGB", (64, 32)).save(tmp_path / "wide.png")
    Image.new("RGB", (32, 64)).save(tmp_path / "tall.png")
    table = pd.DataFrame({"f": ["wide.png", "tall.png"] * 2,
                          "x0": [16, 16, 0, 32], "y0": [16, 16, 32, 64],
                          "x1": [64, 8, 32, 16], "y1": [0, 48, 16, 32],
                          "v": [0, 0, 1, 1]})
    train, valid = kerasdl.images_from_csv(
        table, tmp_path, label_col=["x0", "y0", "x1", "y1"], points=True,
        valid_col="v", image_size=(32, 32))
    assert train.task == valid.task == "regression"
    assert train.points and valid.points and train.class_names is None
    assert train.n_outputs == 4 and train.num_classes is None
    np.testing.assert_allclose(train.labels, [[-0.5, 0, 1, -1],
                                              [0, -0.5, -0.5, 0.5]])
    np.testing.assert_allclose(valid.labels, [[-1, 1, 0, 0], [1, 1, 0, 0]])
    assert valid[0][1].dtype == np.float32


def test_exif_turned_photo_uses_its_shown_size(tmp_path):
    # stored 48 wide and 32 high, shown turned a quarter: 32 x 48
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.new("RGB", (48, 32)).save(tmp_path / "p.jpg", exif=exif)
    Image.new("RGB", (32, 48)).save(tmp_path / "q.jpg")
    table = pd.DataFrame({"f": ["p.jpg", "q.jpg"], "x": [16, 16],
                          "y": [40, 40], "v": [0, 1]})
    train, _ = kerasdl.images_from_csv(table, tmp_path, label_col=["x", "y"],
                                       points=True, valid_col="v",
                                       image_size=(32, 32))
    np.testing.assert_allclose(train.labels, [[0, 40 / 24 - 1]], atol=1e-6)
    table["x"] = [40, 16]  # inside the stored width, outside the shown one
    with pytest.raises(ValueError, match=r"p\.jpg.*x=40, y=40.*32x48"):
        kerasdl.images_from_csv(table, tmp_path, label_col=["x", "y"],
                                points=True, valid_col="v")


def test_points_outside_the_image(tmp_path):
    for i in range(4):
        Image.new("RGB", (40, 32)).save(tmp_path / f"{i}.png")
    table = pd.DataFrame({"f": [f"{i}.png" for i in range(4)],
                          "x": [0.0, 40.0, 41.0, 5.0],
                          "y": [0.0, 32.0, 3.0, -0.5], "v": [0, 0, 1, 1]})
    kwargs = dict(label_col=["x", "y"], points=True, valid_col="v",
                  image_size=(32, 32))
    with pytest.raises(ValueError, match=r"Point 0 of '.*2\.png' is "
                                         r"\(x=41, y=3\) in pixels, outside "
                                         r"the 40x32 image.*on_error='skip'"):
        kerasdl.images_from_csv(table, tmp_path, **kwargs)
    # the edges themselves are inside; with "skip" the rows are left out
    # and reported by file and point
    train, valid = kerasdl.images_from_csv(table.assign(v=[0, 1, 0, 1]),
                                           tmp_path, on_error="skip",
                                           **kwargs)
    assert [os.path.basename(p) for p in train.paths + valid.paths] == [
        "0.png", "1.png"]
    np.testing.assert_allclose(train.labels, [[-1, -1]])
    np.testing.assert_allclose(valid.labels, [[1, 1]])
    reasons = dict((os.path.basename(p), r) for p, r in
                   train.report.skipped)
    assert reasons == {
        "2.png": "point 0 is (x=41, y=3) in pixels, outside the 40x32 image",
        "3.png": "point 0 is (x=5, y=-0.5) in pixels, outside the 40x32 "
                 "image"}
    with pytest.raises(ValueError, match="even number of columns"):
        kerasdl.images_from_csv(table, tmp_path, label_col=["x", "y", "x"],
                                points=True)
    with pytest.raises(ValueError, match="points=True.*regression"):
        kerasdl.images_from_csv(table, tmp_path, label_col=["x", "y"],
                                points=True, task="single_label")
    # ImageBatches refuses scaled points outside [-1, 1] by file
    with pytest.raises(ValueError, match=r"Point 1 of '.*1\.png' is "
                                         r"\(x=1\.5, y=0\)"):
        ImageBatches([str(tmp_path / "0.png"), str(tmp_path / "1.png")],
                     np.array([[0, 0, 0, 0], [0, 0, 1.5, 0]]), points=True)
    with pytest.raises(ValueError, match=r"points=True needs.*\(n, 2k\)"):
        ImageBatches([str(tmp_path / "0.png")], np.array([[0.0, 0.0, 0.0]]),
                     points=True)


def test_augmented_batches_move_the_points_with_the_disc(tmp_path):
    table = _disc_table(tmp_path, 16, size=48, seed=3)
    layer = RandomAffine(rotation=20, width_shift=0.1, height_shift=0.1,
                         zoom=0.1, horizontal_flip=True,
                         fill_mode="constant")
    train, valid = kerasdl.images_from_csv(
        table, tmp_path, label_col=["x", "y"], points=True,
        valid_col="is_valid", image_size=(48, 48), batch_size=12,
        augment=layer, seed=1)
    assert train.augment is layer and valid.augment is None
    x, y = train[0]
    assert x.dtype == np.uint8 and y.dtype == np.float32
    raw = dict(zip(train.paths, train.labels))
    order = [train.paths[i] for i in train._order[:12]]
    moved = np.array([np.abs(y[i] - raw[p]).max() for i, p in
                      enumerate(order)])
    assert (moved > 0.02).sum() >= 8  # the points moved...
    for img, point in zip(x, y):  # ...onto the centre of the disc
        err = (_centroid(img) - point) * 24  # pixels
        assert np.abs(err).max() < 1.0, err
    # flips negate x: some images are flipped, and the same draws again
    # give the same batch; another epoch gives other draws
    again = train[0]
    np.testing.assert_array_equal(again[0], x)
    train.on_epoch_end()
    assert not np.array_equal(train[0][1], y)
    vx, vy = valid[0]
    for img, point in zip(vx, vy):  # validation: not augmented
        assert np.abs((_centroid(img) - point) * 24).max() < 0.5


def test_conv_bn_learns_the_disc_centre(tmp_path):
    keras.utils.set_random_seed(0)
    table = _disc_table(tmp_path, 128, size=32, seed=0)
    train, valid = kerasdl.images_from_csv(
        table, tmp_path, label_col=["x", "y"], points=True,
        valid_col="is_valid", image_size=(32, 32), batch_size=32, seed=0)
    assert (train.n_images, valid.n_images) == (96, 32)
    model = kerasdl.conv_bn((32, 32, 3), train.n_outputs, units=32,
                            y_range=(-1, 1))
    model.compile(keras.optimizers.Adam(5e-3), "mse")
    model.fit(train, epochs=10, verbose=0)
    _, y_valid = valid.to_arrays()
    constant = float(((y_valid - train.labels.mean(axis=0)) ** 2).mean())
    mse = float(model.evaluate(valid, verbose=0))
    pred = model.predict(valid, verbose=0)
    assert np.abs(pred).max() < 1
    # measured: constant 0.16, model about 0.01 (tf and jax)
    print(f"disc centre: validation MSE {mse:.4f}, constant {constant:.4f}")
    assert mse < constant / 4
