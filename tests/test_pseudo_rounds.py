"""pseudo_label_rounds: per-source augmentation, flip-averaged labels and
per-round thresholds / shares."""

import keras
import numpy as np
import pytest

from kerasdl import pseudo


def _images(n, seed):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    x = rng.normal(0, 0.3, (n, 4, 4, 1)).astype("float32")
    x[y == 1, :, :2] += 2.0  # class 1 is bright on the left
    return x, y


def _model():
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((4, 4, 1)),
                              keras.layers.Flatten(),
                              keras.layers.Dense(2, activation="softmax")])
    model.compile(keras.optimizers.Adam(0.05), "categorical_crossentropy",
                  metrics=["accuracy"])
    return model


def test_flip_averages_the_mirror_prediction():
    model = _model()
    x, _ = _images(20, 1)
    _, plain = pseudo.pseudo_label(model, x)
    _, mirror = pseudo.pseudo_label(model, x[:, :, ::-1])
    _, both = pseudo.pseudo_label(model, x, flip=True)
    np.testing.assert_allclose(both, (plain + mirror) / 2, atol=1e-5)
    with pytest.raises(ValueError, match="needs images"):
        pseudo.pseudo_label(model, np.zeros((3, 4)), flip=True)


def test_augment_reaches_only_the_pseudo_rows(monkeypatch):
    model = _model()
    x, y = _images(32, 2)
    xu, _ = _images(64, 3)
    model.fit(x, keras.utils.to_categorical(y, 2), epochs=5, verbose=0)
    calls = []

    def strong(rows, rng):
        calls.append(len(rows))
        return rows + rng.normal(0, 0.1, rows.shape).astype("float32")

    seen = []
    fit = model.fit

    def spy(data, **kwargs):
        seen.append(data)
        return fit(data, **kwargs)

    monkeypatch.setattr(model, "fit", spy)
    hist = pseudo.pseudo_label_rounds(
        model, (x, y), xu, (x, y), rounds=2, batch_size=16,
        fraction=[0.25, 0.5], threshold=[0.5, 0.6], augment=strong,
        flip=True)
    assert len(hist) == 3 and hist[1]["n_pseudo"] == 64
    assert [m.batch_sizes for m in seen] == [[12, 4], [8, 8]]
    assert [m.augment[0] for m in seen] == [None, None]
    # every call got the pseudo rows only (Keras may read a batch twice)
    assert set(calls) == {4, 8} and calls == sorted(calls)
    assert calls.count(4) >= 2 and calls.count(8) >= 2


def test_per_round_values_must_match_rounds():
    model = _model()
    x, y = _images(16, 4)
    with pytest.raises(ValueError, match="one per round"):
        pseudo.pseudo_label_rounds(model, (x, y), x, (x, y), rounds=2,
                                   batch_size=8, threshold=[0.5])
