"""Multi-label metrics: AccuracyMulti in compile/fit/evaluate on the
process's backend, against the numpy accuracy_multi; the threshold
sweep."""

import keras
import numpy as np
import pytest

import kerasdl


def _multi_label_data(n=37, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 6)).astype("float32")
    w = rng.normal(size=(6, 4))
    y = (x @ w + rng.normal(0, 0.5, (n, 4)) > 0).astype("float32")
    return x, y


def _model(activation="sigmoid"):
    return keras.Sequential([keras.Input((6,)),
                             keras.layers.Dense(4, activation=activation)])


@pytest.mark.parametrize("threshold", [0.5, 0.7])
def test_compile_fit_evaluate_match_numpy(threshold):
    keras.utils.set_random_seed(0)
    x, y = _multi_label_data()
    model = _model()
    model.compile(keras.optimizers.Adam(0.05), "binary_crossentropy",
                  metrics=[kerasdl.AccuracyMulti(threshold)])
    hist = model.fit(x, y, epochs=3, batch_size=8, verbose=0)
    assert len(hist.history["accuracy_multi"]) == 3
    # batches of 8 over 37 examples: the last batch is short
    score = model.evaluate(x, y, batch_size=8, verbose=0,
                           return_dict=True)["accuracy_multi"]
    probs = model.predict(x, verbose=0)
    expected = kerasdl.accuracy_multi(y, probs, threshold=threshold)
    assert score == pytest.approx(expected, abs=1e-6)
    assert 0.3 < expected < 1.0  # not a trivial all-right / all-wrong case


def test_sample_weight_weighs_examples():
    keras.utils.set_random_seed(1)
    x, y = _multi_label_data(20)
    model = _model()
    # Keras passes sample weights to `weighted_metrics` only
    model.compile("adam", "binary_crossentropy",
                  weighted_metrics=[kerasdl.AccuracyMulti()])
    w = np.linspace(0.1, 2.0, 20).astype("float32")
    score = model.evaluate(x, y, sample_weight=w, batch_size=6, verbose=0,
                           return_dict=True)["accuracy_multi"]
    per = ((model.predict(x, verbose=0) > 0.5) == (y > 0.5)).mean(axis=1)
    assert score == pytest.approx(float((per * w).sum() / w.sum()),
                                  abs=1e-6)


def test_from_logits_applies_a_sigmoid():
    keras.utils.set_random_seed(2)
    x, y = _multi_label_data(16)
    model = _model(activation=None)
    model.compile("adam", "binary_crossentropy",
                  metrics=[kerasdl.AccuracyMulti(0.6, from_logits=True)])
    score = model.evaluate(x, y, verbose=0, return_dict=True)[
        "accuracy_multi"]
    logits = model.predict(x, verbose=0)
    assert score == pytest.approx(kerasdl.accuracy_multi(
        y, 1 / (1 + np.exp(-logits)), threshold=0.6), abs=1e-6)


def test_function_accuracy_multi_in_compile():
    # it used to raise a symbolic-tensor error inside compile
    keras.utils.set_random_seed(3)
    x, y = _multi_label_data(24)
    model = _model()
    model.compile("adam", "binary_crossentropy",
                  metrics=[kerasdl.accuracy_multi])
    model.fit(x, y, epochs=1, batch_size=8, verbose=0)
    score = model.evaluate(x, y, batch_size=8, verbose=0,
                           return_dict=True)["accuracy_multi"]
    assert score == pytest.approx(kerasdl.accuracy_multi(
        y, model.predict(x, verbose=0)), abs=1e-6)


def test_saved_model_reloads_with_safe_mode(tmp_path):
    keras.utils.set_random_seed(4)
    x, y = _multi_label_data(16)
    model = _model()
    model.compile("adam", "binary_crossentropy",
                  metrics=[kerasdl.AccuracyMulti(0.7, name="acc_at_7")])
    model.fit(x, y, epochs=1, verbose=0)
    before = model.evaluate(x, y, verbose=0, return_dict=True)
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras", safe_mode=True)
    after = loaded.evaluate(x, y, verbose=0, return_dict=True)
    assert after["acc_at_7"] == pytest.approx(before["acc_at_7"])
    config = kerasdl.AccuracyMulti.from_config(
        kerasdl.AccuracyMulti(0.7, name="acc_at_7").get_config())
    assert (config.threshold, config.name) == (0.7, "acc_at_7")


def test_state_accumulates_and_resets():
    m = kerasdl.AccuracyMulti()
    m.update_state([[1, 0, 1]], [[0.9, 0.2, 0.1]])  # 2 of 3 right
    m.update_state([[0, 0, 0]], [[0.1, 0.2, 0.3]])  # 3 of 3
    assert float(m.result()) == pytest.approx(5 / 6)
    m.reset_state()
    assert float(m.result()) == 0.0
    # exactly at the threshold is "absent", as in accuracy_multi
    m.update_state([[1, 0]], [[0.5, 0.5]])
    assert float(m.result()) == pytest.approx(0.5)
    assert kerasdl.accuracy_multi([[1, 0]], [[0.5, 0.5]]) == 0.5


def test_bad_arguments():
    with pytest.raises(ValueError, match=r"`threshold` must be a finite "
                                         r"number > 0 and < 1"):
        kerasdl.AccuracyMulti(1.5)
    with pytest.raises(TypeError, match="from_logits"):
        kerasdl.AccuracyMulti(from_logits="yes")
    m = kerasdl.AccuracyMulti()
    with pytest.raises(ValueError, match="same shape"):
        m.update_state(np.zeros((2, 3)), np.zeros((2, 4)))


def _sweep_data():
    """One label: the best accuracy and F1 are at 0.35, the best F2 (which
    favours recall) at 0.1; the same data in a second column."""
    pos = [0.4] * 5 + [0.3]
    neg = [0.32] * 3 + [0.1] * 5
    p = np.array(pos + neg)
    y = np.array([1] * len(pos) + [0] * len(neg))
    return np.stack([y, y], 1), np.stack([p, p], 1)


def test_best_threshold_finds_the_known_best():
    y, p = _sweep_data()
    sweep = kerasdl.best_threshold(y, p)
    t, score = sweep
    assert t == pytest.approx(0.35)
    assert score == pytest.approx(13 / 14)
    np.testing.assert_allclose(sweep.thresholds, np.arange(1, 20) * 0.05)
    # below 0.3 the three negatives at 0.32 are wrong; from 0.4 up every
    # positive is missed
    assert sweep.scores[4] == pytest.approx(11 / 14)  # 0.25
    assert sweep.scores[7] == pytest.approx(8 / 14)  # 0.40
    assert kerasdl.best_threshold(y, p, metric="f1").threshold == \
        pytest.approx(0.35)
    f2 = kerasdl.best_threshold(y, p, metric="f2")
    assert f2.threshold == pytest.approx(0.1)
    assert f2.score == pytest.approx(30 / 33)
    assert "0.1" in repr(f2)


def test_best_threshold_custom_thresholds_and_metric():
    y, p = _sweep_data()

    def recall(y, pred):
        return (pred * y).sum() / y.sum()

    sweep = kerasdl.best_threshold(y[:, 0], p[:, 0], thresholds=[0.6, 0.2],
                                   metric=recall)
    assert sweep.thresholds.tolist() == [0.2, 0.6]
    assert sweep.scores.tolist() == [1.0, 0.0]
    assert sweep.threshold == 0.2


@pytest.mark.parametrize("y,p,kwargs,needle", [
    ([[1, 0]], [[0.5, 0.5, 0.5]], {}, "same shape"),
    ([[2, 0]], [[0.5, 0.5]], {}, "only 0 and 1"),
    ([[1, 0]], [[1.5, 0.5]], {}, r"probabilities in \[0, 1\]"),
    ([[1, 0]], [[np.nan, 0.5]], {}, "finite"),
    ([[1, 0]], [[0.5, 0.5]], {"thresholds": [0.0, 0.5]}, r"in \(0, 1\)"),
    ([[1, 0]], [[0.5, 0.5]], {"thresholds": []}, "non-empty"),
    ([[1, 0]], [[0.5, 0.5]], {"metric": "auc"}, "'accuracy', 'f1'"),
])
def test_best_threshold_bad_input(y, p, kwargs, needle):
    with pytest.raises(ValueError, match=needle):
        kerasdl.best_threshold(y, p, **kwargs)
