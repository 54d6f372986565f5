"""show_batch and show_results on generated image folders (single-label,
multi-label, regression points and values) and on the real dogscats."""

import os

import keras
import numpy as np
import pandas as pd
import pytest
from PIL import Image

import kerasdl
from kerasdl import _targets


def _img(path, color, size=(40, 36)):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    Image.new("RGB", size, tuple(color)).save(path)


@pytest.fixture
def gray_folder(tmp_path):
    """Class "a" dark, "b" light; one light image filed under "a"."""
    for name, value in (("a/0.png", 20), ("a/1.png", 60), ("a/2.png", 220),
                        ("b/0.png", 200), ("b/1.png", 240)):
        _img(tmp_path / "data" / name, (value,) * 3)
    return kerasdl.image_folder(tmp_path / "data", image_size=(32, 32),
                                batch_size=2)


def _brightness_model():
    """Class 1 when the mean pixel is above 127.5, class 0 below."""
    inp = keras.Input((32, 32, 3))
    x = keras.layers.Rescaling(1 / 255)(inp)
    x = keras.layers.GlobalAveragePooling2D()(x)
    dense = keras.layers.Dense(2, activation="softmax")
    out = dense(x)
    dense.set_weights([np.array([[-4.0, 4.0]] * 3, "float32"),
                       np.array([6.0, -6.0], "float32")])
    return keras.Model(inp, out)


def _png_axes(path):
    with Image.open(path) as im:
        im.load()
        return im.format, im.size


def test_show_batch_image_batches(gray_folder, tmp_path):
    path = tmp_path / "batch.png"
    fig = kerasdl.show_batch(gray_folder, n=4, path=path)
    # the first 4 images over two batches of 2, in file order
    assert [ax.get_title() for ax in fig.axes] == ["a", "a", "a", "b"]
    assert len(fig.axes) == 4
    fmt, size = _png_axes(path)
    assert fmt == "PNG" and size[0] > 300
    assert sorted(os.listdir(tmp_path)) == ["batch.png", "data"]
    # images are drawn as they are (uint8 RGB)
    shown = fig.axes[2].get_images()[0].get_array()
    assert shown.shape == (32, 32, 3) and shown[0, 0, 0] == 220
    everything = kerasdl.show_batch(gray_folder, n=50, ncols=5)
    assert len(everything.axes) == 5  # fewer images than asked
    assert everything.axes[4].get_subplotspec().colspan.start == 4


def test_show_batch_arrays_and_no_labels():
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 1, (6, 8, 8, 1)).astype("float32")
    fig = kerasdl.show_batch((x, np.array([2, 0, 1, 2, 0, 1])), n=3,
                             class_names=["x", "y", "z"])
    assert [ax.get_title() for ax in fig.axes] == ["z", "x", "y"]
    image = fig.axes[0].get_images()[0]
    assert image.get_cmap().name == "gray" and image.get_clim() == (0, 1)
    one_hot = kerasdl.show_batch((x[:2], np.eye(3)[[1, 1]]), class_names=list(
        "xyz"))
    assert [ax.get_title() for ax in one_hot.axes] == ["y", "y"]
    bare = kerasdl.show_batch(x, n=2)
    assert [ax.get_title() for ax in bare.axes] == ["", ""]


def test_show_batch_multi_label_from_csv(tmp_path):
    colors = {"r": (230, 20, 20), "g": (20, 230, 20), "rg": (230, 230, 20),
              "n": (20, 20, 20)}
    rows = []
    for i, (key, tags) in enumerate([("rg", "red green"), ("r", "red"),
                                     ("g", "green"), ("n", ""),
                                     ("r", "red"), ("g", "green")]):
        _img(tmp_path / f"{i}.png", colors[key])
        rows.append((f"{i}.png", tags or "none", i >= 4))
    table = pd.DataFrame(rows, columns=["f", "tags", "v"])
    train, _ = kerasdl.images_from_csv(table, tmp_path, label_delim=" ",
                                       valid_col="v", image_size=(32, 32),
                                       shuffle=False)
    assert train.task == "multi_label"
    fig = kerasdl.show_batch(train, n=4)
    assert [ax.get_title() for ax in fig.axes] == [
        "green;red", "red", "green", "none"]


def test_show_results_marks_wrong_ones(gray_folder, tmp_path):
    model = _brightness_model()
    fig = kerasdl.show_results(model, gray_folder, path=tmp_path / "r.png")
    titles = [ax.get_title() for ax in fig.axes]
    assert titles == ["a / a", "a / a", "b / a", "b / b", "b / b"]
    colors = [ax.title.get_color() for ax in fig.axes]
    assert colors == ["black", "black", "red", "black", "black"]
    frames = [ax.spines["top"].get_visible() for ax in fig.axes]
    assert frames == [False, False, True, False, False]
    assert _png_axes(tmp_path / "r.png")[0] == "PNG"


def test_show_results_names_from_the_model_and_logits():
    model = kerasdl.with_class_names(_brightness_model(), ["dark", "light"])
    x = np.stack([np.full((32, 32, 3), 10, "uint8"),
                  np.full((32, 32, 3), 250, "uint8")])
    fig = kerasdl.show_results(model, (x, np.array([0, 0])))
    assert [ax.get_title() for ax in fig.axes] == ["dark / dark",
                                                   "light / dark"]
    inp = keras.Input((32, 32, 3))
    logits = keras.Model(inp, keras.layers.Dense(2)(
        keras.layers.GlobalAveragePooling2D()(inp)))
    with pytest.raises(ValueError, match="from_logits=True"):
        kerasdl.show_results(logits, (x, np.array([0, 0])))
    fig = kerasdl.show_results(logits, (x, np.array([0, 0])),
                               from_logits=True)
    assert len(fig.axes) == 2


def test_show_results_multi_label_threshold():
    x = np.zeros((2, 8, 8, 3), "float32")
    y = np.array([[1, 0, 1], [0, 1, 0]], "float32")

    class Fixed(keras.layers.Layer):
        def call(self, inputs):
            rows = keras.ops.convert_to_tensor([[0.9, 0.4, 0.6],
                                                [0.2, 0.7, 0.55]])
            return rows + 0 * keras.ops.mean(inputs)

    inp = keras.Input((8, 8, 3))
    model = keras.Model(inp, Fixed()(inp))
    names = ["cat", "dog", "indoor"]
    fig = kerasdl.show_results(model, (x, y), class_names=names,
                               task="multi_label")
    assert [ax.get_title() for ax in fig.axes] == [
        "cat;indoor / cat;indoor", "dog;indoor / dog"]
    assert [ax.title.get_color() for ax in fig.axes] == ["black", "red"]
    fig = kerasdl.show_results(model, (x, y), class_names=names,
                               task="multi_label", threshold=0.58)
    assert [ax.title.get_color() for ax in fig.axes] == ["black", "black"]


def _points_model(values):
    class Fixed(keras.layers.Layer):
        def call(self, inputs):
            rows = keras.ops.convert_to_tensor(values, dtype="float32")
            return rows + 0 * keras.ops.mean(inputs)

    inp = keras.Input((20, 10, 3))
    return keras.Model(inp, Fixed()(inp))


def test_points_drawn_where_they_belong():
    x = np.zeros((1, 20, 10, 3), "uint8")
    # two points (x, y): the top-left corner and the image's centre
    y = np.array([[-1.0, -1.0, 0.0, 0.0]])
    fig = kerasdl.show_batch((x, y), task="regression")
    (dots,) = fig.axes[0].collections
    np.testing.assert_allclose(dots.get_offsets(), [[-0.5, -0.5],
                                                    [4.5, 9.5]])
    model = _points_model([[1.0, 1.0, 0.5, -0.5]])
    fig = kerasdl.show_results(model, (x, y), task="regression")
    true, pred = fig.axes[0].collections
    np.testing.assert_allclose(pred.get_offsets(), [[9.5, 19.5],
                                                    [7.0, 4.5]])
    assert fig.axes[0].get_title() == "pred + / actual o"
    # as numbers when asked
    fig = kerasdl.show_batch((x, y), task="regression", points=False)
    assert fig.axes[0].get_title() == "-1, -1, 0, 0"


def test_batches_say_whether_values_are_points():
    x = np.zeros((1, 20, 10, 3), "uint8")
    y = np.array([[0.5, -0.5]], "float32")

    class Regression(keras.utils.PyDataset):
        task = "regression"

        def __init__(self, points):
            super().__init__()
            self.points = points

        def __len__(self):
            return 1

        def __getitem__(self, i):
            return x, y

    fig = kerasdl.show_batch(Regression(points=False))
    assert fig.axes[0].get_title() == "0.5, -0.5"
    assert not fig.axes[0].collections
    fig = kerasdl.show_batch(Regression(points=True))
    np.testing.assert_allclose(fig.axes[0].collections[0].get_offsets(),
                               [[7.0, 4.5]])
    # an explicit argument wins over the batches' attribute
    fig = kerasdl.show_batch(Regression(points=False), points=True)
    assert len(fig.axes[0].collections) == 1


def test_single_value_regression_shows_numbers():
    x = np.zeros((2, 20, 10, 3), "uint8")
    y = np.array([0.25, 1.5])
    assert _targets.infer_task(y) == "regression"
    model = _points_model([[0.5], [1.5]])
    fig = kerasdl.show_results(model, (x, y))
    assert [ax.get_title() for ax in fig.axes] == ["0.5 / 0.25",
                                                   "1.5 / 1.5"]
    assert [ax.title.get_color() for ax in fig.axes] == ["black", "black"]


@pytest.mark.parametrize("y,task", [
    ([0, 2, 1], "single_label"),
    ([[0, 1], [1, 0]], "single_label"),
    ([[1, 1], [0, 0]], "multi_label"),
    ([[0.2, -0.4]], "regression"),
    ([1.5, 2.0], "regression"),
    (None, None),
])
def test_task_inferred_from_targets(y, task):
    assert _targets.infer_task(None if y is None else np.array(y)) == task


def test_bad_input(gray_folder, tmp_path):
    with pytest.raises(ValueError, match="`n` must be an integer >= 1"):
        kerasdl.show_batch(gray_folder, n=0)
    with pytest.raises(ValueError, match="a file name, not a folder"):
        kerasdl.show_batch(gray_folder, path=tmp_path)
    with pytest.raises(ValueError, match="in a folder that exists"):
        kerasdl.show_batch(gray_folder, path=tmp_path / "no" / "x.png")
    with pytest.raises(ValueError, match="Target class 1 has no name"):
        kerasdl.show_batch(gray_folder, class_names=["a"])
    with pytest.raises(ValueError, match="'single_label', 'multi_label'"):
        kerasdl.show_batch(gray_folder, task="points")
    with pytest.raises(ValueError, match="images only"):
        kerasdl.show_results(_brightness_model(),
                             np.zeros((2, 32, 32, 3), "uint8"))
    with pytest.raises(ValueError, match="shape \\(8, 8, 5\\)"):
        kerasdl.show_batch((np.zeros((1, 8, 8, 5)), np.array([0])))
    with pytest.raises(TypeError, match="tuple \\(images, targets\\)"):
        kerasdl.show_batch(12)
    with pytest.raises(TypeError, match="`points` must be None, True"):
        kerasdl.show_batch((np.zeros((1, 8, 8, 3)), np.array([[0.5, 0.5]])),
                           points="yes")
    with pytest.raises(ValueError, match="2 class probabilities but 3"):
        kerasdl.show_results(_brightness_model(), gray_folder,
                             class_names=["a", "b", "c"])
    model = _points_model([[0.1, 0.2, 0.3]])
    with pytest.raises(ValueError, match="gives 3 value"):
        kerasdl.show_results(model, (np.zeros((1, 20, 10, 3)),
                                     np.array([[0.5, 0.5]])),
                             task="regression")


def test_dogscats_valid_batch_png(shared_data, tmp_path):
    valid = kerasdl.image_folder(shared_data("dogscats") / "valid",
                                 image_size=(64, 64), batch_size=8)
    path = tmp_path / "dogscats.png"
    fig = kerasdl.show_batch(valid, n=12, path=path)
    assert len(fig.axes) == 12
    assert {ax.get_title() for ax in fig.axes} <= {"cats", "dogs"}
    with Image.open(path) as im:
        im.load()
        # a 4x3 grid of 2.6-inch cells at 100 dpi
        assert im.format == "PNG" and im.size[0] == 1040


def test_save_figure_writes_a_whole_png_and_refuses_bad_input(tmp_path):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(2, 1))
    fig.add_subplot().plot([0, 1], [1, 0])
    path = tmp_path / "line.png"
    assert kerasdl.save_figure(fig, path, dpi=50) == str(path)
    with Image.open(path) as im:
        assert im.format == "PNG" and im.size == (100, 50)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["line.png"]
    with pytest.raises(TypeError, match="matplotlib Figure"):
        kerasdl.save_figure("not a figure", tmp_path / "x.png")
    with pytest.raises(ValueError, match="exists"):
        kerasdl.save_figure(fig, tmp_path / "missing" / "x.png")
    with pytest.raises(ValueError, match="not a folder"):
        kerasdl.save_figure(fig, tmp_path)
    with pytest.raises(ValueError, match="dpi"):
        kerasdl.save_figure(fig, tmp_path / "y.png", dpi=0)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["line.png"]


class _Broken:
    def savefig(self, fname, **kwargs):
        with open(fname, "wb") as f:
            f.write(b"\x89PNG half")
        raise RuntimeError("renderer failed")


def test_save_figure_leaves_nothing_when_the_write_fails(tmp_path):
    with pytest.raises(RuntimeError, match="renderer failed"):
        kerasdl.save_figure(_Broken(), tmp_path / "z.png")
    assert list(tmp_path.iterdir()) == []
