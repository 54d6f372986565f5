"""Float targets: ImageBatches accept them (task "regression"), the CSV
layout reads float columns when asked, and a y_range model trains on
them."""

import os

import keras
import numpy as np
import pandas as pd
import pytest
from PIL import Image

import kerasdl
from kerasdl.data.images import ImageBatches


@pytest.fixture
def files(tmp_path):
    """Six 32x32 grey images; image i has brightness 40 * i."""
    out = []
    for i in range(6):
        path = tmp_path / f"{i}.png"
        Image.new("RGB", (32, 32), (40 * i,) * 3).save(path)
        out.append(str(path))
    return out


def test_float_labels_are_regression_targets(files):
    b = ImageBatches(files, [0.5, 1.5, 2.0, 3.25, -1.0, 7.0],
                     image_size=(8, 8), batch_size=4)
    assert b.task == "regression"
    assert b.num_classes is None and b.class_names is None
    assert b.n_outputs == 1
    x, y = b[0]
    assert y.dtype == np.float32 and y.tolist() == [0.5, 1.5, 2.0, 3.25]
    rows = np.arange(12, dtype=np.float64).reshape(6, 2) / 10
    b2 = ImageBatches(files, rows, image_size=(8, 8))
    assert b2.task == "regression" and b2.n_outputs == 2
    np.testing.assert_allclose(b2[0][1], rows.astype(np.float32))
    # integers stay class indices, 0/1 rows multi-hot, unless told
    assert ImageBatches(files, [0, 1, 2, 0, 1, 2]).task == "single_label"
    hot = np.eye(3)[[0, 1, 2, 0, 1, 2]]
    assert ImageBatches(files, hot).task == "multi_label"
    told = ImageBatches(files, hot, task="regression")
    assert told.task == "regression" and told.num_classes is None
    ints = ImageBatches(files, [1, 5, 9, 2, 3, 4], task="regression")
    assert ints[0][1].dtype == np.float32


def test_bad_regression_labels(files):
    with pytest.raises(ValueError, match=r"`labels` must hold finite.*1 "
                                         r"NaN.*index 2"):
        ImageBatches(files, [0.5, 1.0, np.nan, 1, 1, 1])
    with pytest.raises(ValueError, match="class_names.*regression"):
        ImageBatches(files, np.linspace(0, 1, 6), class_names=["a", "b"])
    with pytest.raises(ValueError, match="label_mode='categorical'.*"
                                         "regression"):
        ImageBatches(files, np.linspace(0, 1, 6), label_mode="categorical")
    with pytest.raises(ValueError, match="integer class indices.*task="
                                         "'regression'"):
        ImageBatches(files, np.linspace(0, 1, 6), task="single_label")
    with pytest.raises(ValueError, match="`task` must be one of"):
        ImageBatches(files, np.linspace(0, 1, 6), task="points")
    with pytest.raises(ValueError, match="Regression `labels` must be "
                                         "numbers"):
        ImageBatches(files, ["a"] * 6, task="regression")
    with pytest.raises(TypeError, match="`augment` must be a kerasdl"):
        ImageBatches(files, np.linspace(0, 1, 6),
                     augment=keras.layers.RandomFlip())


def _table(files, values, **more):
    return pd.DataFrame({"f": [os.path.basename(f) for f in files],
                         "value": values, "v": [0, 0, 0, 0, 1, 1], **more})


def test_csv_float_column(files, tmp_path):
    folder = os.path.dirname(files[0])
    values = ["0.25", "1.5", " 2 ", "3e-1", "4.75", "-5"]
    csv = tmp_path / "t.csv"
    _table(files, values).to_csv(csv, index=False)
    train, valid = kerasdl.images_from_csv(csv, folder, label_col="value",
                                           task="regression", valid_col="v")
    assert train.task == valid.task == "regression"
    assert train.class_names is None
    np.testing.assert_allclose(train.labels, [[0.25], [1.5], [2], [0.3]])
    np.testing.assert_allclose(valid.labels, [[4.75], [-5]])
    # without task, numbers that are not whole are refused with the hint
    with pytest.raises(ValueError, match=r"'value'.*such as '0\.25'.*6 "
                                         r"classes.*task='regression'"):
        kerasdl.images_from_csv(csv, folder, label_col="value",
                                valid_col="v")
    # ... or kept as class names when asked
    named = _table(files, ["0.5", "1.5"] * 3)
    t, _ = kerasdl.images_from_csv(named, folder, label_col="value",
                                   valid_col="v", task="single_label")
    assert t.class_names == ["0.5", "1.5"] and t.task == "single_label"
    # whole numbers are class labels by default, as before
    t, _ = kerasdl.images_from_csv(_table(files, [1, 2] * 3), folder,
                                   label_col="value", valid_col="v")
    assert t.class_names == ["1", "2"]


def test_csv_several_columns_and_bad_cells(files):
    folder = os.path.dirname(files[0])
    table = _table(files, [0.1, 0.2, 0.3, 0.4, 0.5, 0.6],
                   other=[1, 2, 3, 4, 5, 6])
    train, valid = kerasdl.images_from_csv(
        table, folder, label_col=["value", "other"], valid_col="v")
    assert train.task == "regression" and train.n_outputs == 2
    np.testing.assert_allclose(valid.labels, [[0.5, 5], [0.6, 6]])
    bad = table.assign(other=["1", "2", "x", "4", "5", "6"])
    with pytest.raises(ValueError, match=r"row 2 .*holds 'x' in column "
                                         r"'other'"):
        kerasdl.images_from_csv(bad, folder, label_col=["value", "other"],
                                valid_col="v")
    blank = table.assign(value=[0.1, None, 0.3, 0.4, 0.5, 0.6])
    with pytest.raises(ValueError, match=r"row 1 .*column 'value'"):
        kerasdl.images_from_csv(blank, folder, label_col="value",
                                task="regression", valid_col="v")
    with pytest.raises(ValueError, match="Several label columns.*"
                                         "single_label"):
        kerasdl.images_from_csv(table, folder, label_col=["value", "other"],
                                task="single_label")
    with pytest.raises(ValueError, match="label_delim.*does not apply to "
                                         "task='regression'"):
        kerasdl.images_from_csv(table, folder, label_col="value",
                                task="regression", label_delim=" ")
    with pytest.raises(ValueError, match="multi_label.*needs `label_delim`"):
        kerasdl.images_from_csv(table, folder, label_col="value",
                                task="multi_label")
    with pytest.raises(ValueError, match="at least one column"):
        kerasdl.images_from_csv(table, folder, label_col=[])


def test_y_range_model_trains_on_float_targets(files):
    # brightness 0..200 -> target 0..1; a linear model on raw pixels
    keras.utils.set_random_seed(0)
    b = ImageBatches(files, np.linspace(0, 1, 6), image_size=(8, 8),
                     batch_size=6)
    model = kerasdl.linear_bn((8, 8, 3), 1, y_range=(-0.1, 1.1))
    model.compile(keras.optimizers.Adam(3e-3), "mse")
    history = model.fit(b, epochs=30, verbose=0).history["loss"]
    pred = model.predict(b, verbose=0)[:, 0]
    assert pred.shape == (6,)
    assert ((pred >= -0.1) & (pred <= 1.1)).all()  # the ScaledSigmoid
    # the constant predictor's MSE is 0.117; measured 0.001 (tf, jax)
    assert history[-1] < 0.01
    assert np.mean((pred - np.linspace(0, 1, 6)) ** 2) < 0.02, pred
    assert (np.diff(pred) > 0).all()  # brighter images, higher targets
