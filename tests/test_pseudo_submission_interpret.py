"""Pseudo-labelling, Kaggle submissions and interpretation."""

import gzip

import keras
import numpy as np
import pytest

from kerasdl import interpret
from kerasdl import pseudo
from kerasdl import submission


def _blobs(n, seed):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    centers = np.array([[0, 0], [3, 0], [0, 3]], "float32")
    return (centers[y] + rng.normal(0, 0.9, (n, 2))).astype("float32"), y


def _model():
    model = keras.Sequential([keras.Input((2,)),
                              keras.layers.Dense(16, activation="relu"),
                              keras.layers.Dense(3, activation="softmax")])
    model.compile(keras.optimizers.Adam(0.01), "categorical_crossentropy",
                  metrics=["accuracy"])
    return model


def test_pseudo_label_soft_hard_threshold():
    keras.utils.set_random_seed(0)
    model = _model()
    x, _ = _blobs(50, 1)
    idx, soft = pseudo.pseudo_label(model, x)
    assert len(idx) == 50 and np.allclose(soft.sum(1), 1, atol=1e-5)
    _, hard = pseudo.pseudo_label(model, x, soft=False)
    assert set(np.unique(hard)) <= {0.0, 1.0}
    np.testing.assert_array_equal(hard.argmax(1), soft.argmax(1))
    cut = float(np.median(soft.max(1)))
    idx_t, soft_t = pseudo.pseudo_label(model, x, threshold=cut)
    assert (soft_t.max(1) >= cut - 1e-6).all()
    assert 0 < len(idx_t) < 50
    np.testing.assert_allclose(soft_t, soft[idx_t], atol=1e-6)


def test_pseudo_rounds_record_metrics_and_mix():
    keras.utils.set_random_seed(0)
    model = _model()
    x, y = _blobs(60, 2)
    xu, _ = _blobs(400, 3)
    xv, yv = _blobs(300, 4)
    model.fit(x, keras.utils.to_categorical(y, 3), epochs=20, verbose=0)
    hist = pseudo.pseudo_label_rounds(model, (x, y), xu, (xv, yv), rounds=2,
                                      batch_size=16, fraction=0.25)
    assert [h["round"] for h in hist] == [0, 1, 2]
    assert hist[0]["n_pseudo"] == 0 and hist[1]["n_pseudo"] == 400
    assert all(0 <= h["val_accuracy"] <= 1 for h in hist)
    assert hist[-1]["val_accuracy"] > 0.7


def test_pseudo_rejects_sparse_loss():
    model = _model()
    model.compile("adam", "sparse_categorical_crossentropy")
    x, y = _blobs(8, 0)
    with pytest.raises(ValueError, match="categorical_crossentropy"):
        pseudo.pseudo_label_rounds(model, (x, y), x, (x, y))


def test_clip_matches_course_bounds():
    p = np.full((2, 10), 0.0)
    p[0, 3] = 1.0
    p[1] = 0.1
    clipped = submission.clip_probabilities(p, 0.93)
    assert clipped[0, 3] == pytest.approx(0.93)
    assert clipped[0, 0] == pytest.approx(0.07 / 9)
    np.testing.assert_allclose(clipped[1], 0.1)


@pytest.mark.parametrize("probs,needle", [
    ([[0.5, 0.6]], "row 0 is not a probability"),
    ([[0.5, 0.5], [np.nan, 1.0]], r"finite numbers only.*index \(1, 0\)"),
    ([0.5, 0.5], "shape"),
])
def test_bad_probabilities(probs, needle):
    with pytest.raises(ValueError, match=needle):
        submission.clip_probabilities(probs)


def test_write_submission_gzip_sorted_columns(tmp_path):
    path = tmp_path / "sub.csv.gz"
    probs = np.array([[0.1, 0.9, 0.0], [0.3, 0.3, 0.4]])
    submission.write_submission(path, ["img_1.jpg", "img_2.jpg"], probs,
                                ["c2", "c0", "c1"])
    lines = gzip.open(path, "rt").read().splitlines()
    assert lines[0] == "img,c0,c1,c2"
    first = [float(v) for v in lines[1].split(",")[1:]]
    assert first == pytest.approx([0.9, 0.035, 0.1])
    assert lines[2].startswith("img_2.jpg,0.3,0.4,0.3")
    assert list(tmp_path.iterdir()) == [path]


def test_write_submission_errors_leave_no_file(tmp_path):
    path = tmp_path / "sub.csv"
    with pytest.raises(ValueError, match="same length"):
        submission.write_submission(path, ["a"], [[0.5, 0.5]] * 2, ["x", "y"])
    with pytest.raises(ValueError, match="unique"):
        submission.write_submission(path, ["a", "a"], [[0.5, 0.5]] * 2,
                                    ["x", "y"])
    assert not path.exists() and not list(tmp_path.iterdir())


def test_confusion_and_most_confused():
    y = [0, 0, 1, 1, 1, 2, 2]
    p = [0, 1, 1, 2, 2, 2, 0]
    cm = interpret.confusion_matrix(y, p)
    assert cm.tolist() == [[1, 1, 0], [0, 1, 2], [1, 0, 1]]
    assert interpret.most_confused(cm, ["a", "b", "c"]) == [
        ("b", "c", 2), ("a", "b", 1), ("c", "a", 1)]
    assert interpret.most_confused(cm, min_val=2) == [(1, 2, 2)]
    onehot_probs = np.eye(4)[p]
    assert interpret.confusion_matrix(y, onehot_probs).shape == (4, 4)


def test_top_losses_and_plots(tmp_path):
    y = np.array([0, 1, 2, 1])
    probs = np.array([[0.9, 0.05, 0.05], [0.7, 0.2, 0.1],
                      [0.2, 0.2, 0.6], [0.1, 0.85, 0.05]])
    idx, losses = interpret.top_losses(y, probs, k=2)
    assert idx.tolist() == [1, 2]
    assert losses[0] == pytest.approx(-np.log(0.2))
    cm = interpret.confusion_matrix(y, probs)
    png = interpret.save_figure(interpret.plot_confusion_matrix(cm),
                                tmp_path / "cm.png")
    images = np.random.default_rng(0).integers(0, 255, (4, 8, 8, 3))
    png2 = interpret.save_figure(
        interpret.plot_top_losses(images.astype("uint8"), y, probs, k=3),
        tmp_path / "top.png")
    for path in (png, png2):
        assert open(path, "rb").read(8) == b"\x89PNG\r\n\x1a\n"


def test_multilabel():
    t = np.array([[1, 0, 1], [0, 1, 1]])
    s = np.array([[0.9, 0.6, 0.4], [0.2, 0.7, 0.8]])
    assert interpret.accuracy_multi(t, s) == pytest.approx(4 / 6)
    assert interpret.accuracy_multi(t, s, threshold=0.65) == pytest.approx(
        5 / 6)
    m = interpret.multilabel_confusion(t, s)
    assert m[0].tolist() == [[1, 0], [0, 1]]
    assert m[1].tolist() == [[0, 1], [0, 1]]
    assert m[2].tolist() == [[0, 0], [1, 1]]


# interpret(model, batches): from a model and its batches directly


def _gray(path, value):
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (40, 36), (value,) * 3).save(path)


# (class folder, brightness): the model calls an image "b" when its mean
# pixel is above 127.5, so a/140 and b/120 are wrong (a/140 more surely:
# p(b) 0.77 against p(a) 0.67).
_GRAYS = [("a", 10), ("a", 60), ("a", 140), ("b", 120), ("b", 200),
          ("b", 250), ("b", 180)]


@pytest.fixture
def gray_batches(tmp_path):
    from kerasdl.data.images import image_folder

    for i, (c, v) in enumerate(_GRAYS):
        _gray(tmp_path / "data" / c / f"{i}_{v}.png", v)
    return image_folder(tmp_path / "data", image_size=(32, 32), batch_size=3)


def _brightness_model():
    inp = keras.Input((32, 32, 3))
    x = keras.layers.GlobalAveragePooling2D()(
        keras.layers.Rescaling(1 / 255)(inp))
    dense = keras.layers.Dense(2, activation="softmax")
    out = dense(x)
    dense.set_weights([np.array([[-4.0, 4.0]] * 3, "float32"),
                       np.array([6.0, -6.0], "float32")])
    return keras.Model(inp, out)


def _value_of(path):
    return int(path.rsplit("_", 1)[1].split(".")[0])


def test_interpret_model_and_image_batches(gray_batches, tmp_path):
    import kerasdl

    interp = kerasdl.interpret(_brightness_model(), gray_batches)
    assert interp.task == "single_label" and len(interp) == 7
    assert interp.class_names == ["a", "b"]
    assert interp.confusion_matrix().tolist() == [[2, 1], [1, 3]]
    assert interp.most_confused() == [("a", "b", 1), ("b", "a", 1)]
    assert interp.accuracy == pytest.approx(5 / 7)
    # the same losses as the array functions on the same probabilities
    idx, losses = interp.top_losses(3)
    ref_idx, ref_losses = interpret.top_losses(interp.y_true, interp.probs, 3)
    assert idx.tolist() == ref_idx.tolist()
    np.testing.assert_allclose(losses, ref_losses)
    # the worst are the two wrong ones, a/140 first
    assert [_value_of(interp.paths[i]) for i in idx[:2]] == [140, 120]
    # most confident wrong ones: only the two wrong ones, surest first
    wrong, conf = interp.most_confident(5)
    assert [_value_of(interp.paths[i]) for i in wrong] == [140, 120]
    assert conf[0] >= conf[1] > 0.5
    unsure, margins = interp.most_uncertain(2)
    assert [_value_of(interp.paths[i]) for i in unsure] == [120, 140]
    assert np.all(np.diff(margins) >= 0)
    metrics = interp.label_metrics()
    assert metrics.loc["b", "precision"] == pytest.approx(3 / 4)
    assert metrics.loc["a", "recall"] == pytest.approx(2 / 3)
    assert metrics["support"].tolist() == [3, 4]
    # the images of a plot are the right files, read again
    images = interp.images(idx)
    assert [int(im.mean().round()) for im in images] == [
        _value_of(interp.paths[i]) for i in idx]
    fig = interp.plot_top_losses(3, path=tmp_path / "top.png")
    assert len(fig.axes) == 3
    assert [ax.title.get_color() for ax in fig.axes] == ["red", "red",
                                                         "black"]
    assert fig.axes[0].get_title().startswith("b / a\nloss ")
    assert open(tmp_path / "top.png", "rb").read(4) == b"\x89PNG"


def test_interpret_shuffled_batches_keep_positions(tmp_path):
    import kerasdl
    from kerasdl.data.images import image_folder

    for i, (c, v) in enumerate(_GRAYS):
        _gray(tmp_path / c / f"{i}_{v}.png", v)
    shuffled = image_folder(tmp_path, image_size=(32, 32), batch_size=2,
                            shuffle=True, seed=5)
    interp = kerasdl.interpret(_brightness_model(), shuffled)
    assert sorted(interp.paths) == sorted(shuffled.paths)
    assert interp.paths != sorted(interp.paths)  # not in file order
    shuffled.on_epoch_end()  # a new order must not change the positions
    every = np.arange(7)
    assert [int(im.mean().round()) for im in interp.images(every)] == [
        _value_of(p) for p in interp.paths]
    labels = [0 if "/a/" in p else 1 for p in interp.paths]
    assert interp.y_true.tolist() == labels


def test_interpret_is_the_module_too():
    import kerasdl

    model = keras.Sequential([keras.Input((2,)),
                              keras.layers.Dense(3, activation="softmax")])
    interp = kerasdl.interpret(model, _blobs(10, 0))
    assert interp.probs.shape == (10, 3) and interp.class_names is None
    from kerasdl import interpret as again

    assert again.confusion_matrix([0, 1], [1, 1]).tolist() == [[0, 1],
                                                                [0, 1]]
    assert callable(again) and again is kerasdl.interpret


def test_interpret_generic_sequence_fetches_by_position():
    import kerasdl

    rng = np.random.default_rng(0)
    x = rng.uniform(0, 1, (10, 4, 4, 1)).astype("float32")
    y = rng.integers(0, 2, 10)

    class Uneven(keras.utils.PyDataset):
        cuts = [0, 3, 4, 10]

        def __len__(self):
            return 3

        def __getitem__(self, i):
            s = slice(self.cuts[i], self.cuts[i + 1])
            return x[s], y[s]

    model = keras.Sequential([keras.Input((4, 4, 1)), keras.layers.Flatten(),
                              keras.layers.Dense(2, activation="softmax")])
    interp = kerasdl.interpret(model, Uneven(), class_names=["n", "y"])
    np.testing.assert_allclose(interp.probs, model.predict(x, verbose=0),
                               rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(interp.images([9, 3, 0]), x[[9, 3, 0]])


def test_confusion_plot_10_classes_readable(tmp_path):
    y = np.repeat(np.arange(10), 12)
    p = (y + (np.arange(120) % 5 == 0)) % 10
    names = [f"class {i}" for i in range(10)]
    cm = interpret.confusion_matrix(y, p)
    fig = interpret.plot_confusion_matrix(cm, names, path=tmp_path / "c.png")
    ax = fig.axes[0]
    assert len(ax.texts) == 100
    assert min(t.get_fontsize() for t in ax.texts) >= 8
    assert min(t.get_fontsize() for t in ax.get_xticklabels()) >= 8
    values = {(int(round(t.get_position()[1])),
               int(round(t.get_position()[0]))): int(t.get_text())
              for t in ax.texts}
    assert values[(0, 0)] == cm[0, 0] and values[(0, 1)] == cm[0, 1]
    width, height = fig.get_size_inches()
    assert width >= 8 and height >= 7
    small = interpret.plot_confusion_matrix(np.eye(3, dtype=int))
    assert min(t.get_fontsize() for t in small.axes[0].texts) >= 8


def test_interpret_multi_label(tmp_path):
    import kerasdl
    from kerasdl.data.images import ImageBatches

    # labels ["green", "red"]; the model reads the channel means. Image 4
    # is red but its target says nothing (a false alarm of "red"), image 5
    # is too dim to be called green or red (both missed).
    colors = [(230, 20, 0), (20, 230, 0), (230, 230, 0), (20, 20, 0),
              (140, 20, 0), (20, 120, 120)]
    targets = np.array([[0, 1], [1, 0], [1, 1], [0, 0], [0, 0], [1, 1]])
    paths = []
    for i, c in enumerate(colors):
        from PIL import Image

        paths.append(str(tmp_path / f"{i}.png"))
        Image.new("RGB", (36, 36), c).save(paths[-1])
    batches = ImageBatches(paths, targets, class_names=["green", "red"],
                           image_size=(32, 32), batch_size=4)
    assert batches.task == "multi_label"
    inp = keras.Input((32, 32, 3))
    x = keras.layers.GlobalAveragePooling2D()(
        keras.layers.Rescaling(1 / 255)(inp))
    dense = keras.layers.Dense(2, activation="sigmoid")
    model = keras.Model(inp, dense(x))
    dense.set_weights([np.array([[0, 10], [10, 0], [0, 0]], "float32"),
                       np.array([-5.0, -5.0], "float32")])
    interp = kerasdl.interpret(model, batches)
    assert interp.task == "multi_label"
    preds = (model.predict(batches, verbose=0) > 0.5).astype(int)
    assert interp.preds.tolist() == preds.tolist()
    cms = interp.confusion_matrix()
    np.testing.assert_array_equal(
        cms, interpret.multilabel_confusion(targets, interp.probs))
    assert cms[0].tolist() == [[3, 0], [1, 2]]
    assert cms[1].tolist() == [[2, 1], [1, 2]]
    assert interp.accuracy == pytest.approx(
        interpret.accuracy_multi(targets, interp.probs))
    assert sorted(interp.most_confused()) == [
        ("green", "not green", 1), ("not red", "red", 1),
        ("red", "not red", 1)]
    metrics = interp.label_metrics()
    assert metrics.loc["green", "accuracy"] == pytest.approx(5 / 6)
    assert metrics.loc["red", "accuracy"] == pytest.approx(4 / 6)
    assert metrics.loc["red", "precision"] == pytest.approx(2 / 3)
    assert list(metrics.columns) == ["precision", "recall", "f1", "support",
                                     "accuracy"]
    wrong, _ = interp.most_confident(10)
    assert sorted(wrong.tolist()) == [4, 5]
    fig = interp.plot_confusion_matrix(path=tmp_path / "ml.png")
    assert len(fig.axes) == 2 and fig.axes[1].get_title() == "red"
    assert len(fig.axes[0].texts) == 4
    fig = interp.plot_top_losses(2)
    assert all(" / " in ax.get_title() for ax in fig.axes)


def test_interpretation_regression_and_errors():
    import kerasdl

    y = np.array([[0.1, 0.2], [0.5, -0.5], [0.0, 0.9]])
    p = np.array([[0.1, 0.25], [-0.5, 0.5], [0.0, 0.8]])
    images = np.zeros((3, 8, 8, 3), "uint8")
    interp = kerasdl.Interpretation(y, p, task="regression", images=images)
    idx, losses = interp.top_losses(2)
    assert idx.tolist() == [1, 2]
    assert losses[0] == pytest.approx(1.0)
    with pytest.raises(ValueError, match="regression"):
        interp.confusion_matrix()
    fig = interp.plot_top_losses(1)
    assert len(fig.axes[0].collections) == 2  # true and predicted points
    with pytest.raises(ValueError, match="same length"):
        kerasdl.Interpretation([0, 1], [[0.5, 0.5]])
    with pytest.raises(ValueError, match="Expected 2 class names"):
        kerasdl.Interpretation([0, 1], [[0.5, 0.5]] * 2, class_names=["a"])
    with pytest.raises(ValueError, match="holds no images"):
        kerasdl.Interpretation([0, 1], [[0.5, 0.5]] * 2).plot_top_losses(1)
    with pytest.raises(ValueError, match="images only"):
        kerasdl.interpret(_model(), (np.zeros((2, 2)), None))
