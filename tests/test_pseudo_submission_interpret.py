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
