"""lr_find: exact restoration, every kind of data, no retrace per step,
steps_per_execution, NaN handling, suggestions and the plot."""

import math

import keras
import numpy as np
import pytest

from kerasdl.training import _suggest
from kerasdl.training import lr_finder
from kerasdl.training.lr_finder import LRFinder
from kerasdl.training.lr_finder import LRFindResult
from kerasdl.training.lr_finder import lr_find

RNG = np.random.RandomState(0)
X = RNG.randn(96, 6).astype("float32")
Y = (X[:, 0] > 0).astype("int32") + (X[:, 1] > 0)


class _Count(keras.layers.Layer):
    calls = 0

    def call(self, x):
        type(self).calls += 1
        return x


def _model(optimizer=None, seed=0, **compile_kwargs):
    keras.utils.set_random_seed(seed)
    model = keras.Sequential([
        keras.Input((6,)), _Count(), keras.layers.BatchNormalization(),
        keras.layers.Dense(16, activation="relu"), keras.layers.Dropout(0.2),
        keras.layers.Dense(3, activation="softmax")])
    model.compile(optimizer or keras.optimizers.Adam(1e-3),
                  "sparse_categorical_crossentropy", metrics=["accuracy"],
                  **compile_kwargs)
    return model


def _state(model):
    return [np.array(v.numpy()) for v in
            [*model.variables, *model.optimizer.variables]]


def test_fit_after_lr_find_equals_fit_without_bit_for_bit():
    runs = []
    for find in (True, False):
        model = _model()
        # A model's first fit or evaluate builds its metrics; Keras' first
        # fit then draws an extra shuffle. Build them the same way in both
        # runs so that only lr_find differs.
        model.evaluate(X[:8], Y[:8], verbose=0)
        before = _state(model)
        if find:
            result = lr_find(model, (X, Y), num_it=30, batch_size=8)
            assert result.stop_reason in ("num_it", "diverged")
            after = _state(model)
            assert all(np.array_equal(a, b) for a, b in zip(before, after))
        model.fit(X, Y, batch_size=16, epochs=2, verbose=0)
        runs.append(_state(model))
    for a, b in zip(*runs):
        np.testing.assert_array_equal(a, b)


def test_optimizer_iterations_and_rate_restored():
    model = _model(keras.optimizers.SGD(0.05, momentum=0.9))
    model.fit(X, Y, batch_size=32, epochs=1, verbose=0)  # 3 steps
    lr_find(model, (X, Y), num_it=30, batch_size=8)
    assert int(model.optimizer.iterations.numpy()) == 3
    assert float(model.optimizer.learning_rate.numpy()) == pytest.approx(0.05)


def test_sweep_rates_and_no_retrace_per_step(backend):
    counts = []
    for num_it in (20, 40):
        model = _model()
        _Count.calls = 0
        finder = LRFinder(1e-5, 1.0, num_it=num_it, stop_div=False)
        model.fit(X, Y, batch_size=4, epochs=2, verbose=0, callbacks=[finder])
        counts.append(_Count.calls)
        expected = [1e-5 * (1e5) ** (i / num_it) for i in range(num_it)]
        np.testing.assert_allclose(finder.lrs, expected, rtol=1e-9)
        assert finder.stop_reason == "num_it"
    if backend != "torch":  # torch runs eagerly: one call per step
        assert counts[0] == counts[1], counts


def test_repeated_sweeps_compile_once_and_leave_fit_alone(backend):
    model = _model()
    model.fit(X, Y, batch_size=16, epochs=1, verbose=0)
    plain = model.train_function
    n_vars = len(model.optimizer.variables)
    counts = []
    for _ in range(3):
        _Count.calls = 0
        lr_find(model, (X, Y), num_it=40, batch_size=8)
        counts.append(_Count.calls)
        assert model.train_function is plain
    if backend != "torch":  # torch runs eagerly: one call per step
        assert counts[1] == counts[2] == 0, counts
    assert len(model.optimizer.variables) == n_vars  # saves as before
    model.fit(X, Y, batch_size=16, epochs=1, verbose=0)
    assert len(model.optimizer.variables) == n_vars


class _RatesSeen(keras.callbacks.Callback):
    """Reads the optimizer's rate during fit (after the finder set it)."""

    def on_train_batch_end(self, batch, logs=None):
        rate = float(self.model.optimizer.learning_rate.numpy())
        self.seen = getattr(self, "seen", []) + [rate]


def test_batches_are_the_batch_losses_and_rates_are_used():
    model = _model(keras.optimizers.SGD())
    spy = _RatesSeen()
    finder = LRFinder(1e-4, 1e-1, num_it=12, stop_div=False, restore=False)
    model.fit(X, Y, batch_size=8, epochs=1, verbose=0, shuffle=False,
              callbacks=[finder, spy])
    np.testing.assert_allclose(spy.seen, finder.lrs, rtol=1e-6)
    # The recorded loss is the last batch's own loss, not the epoch mean.
    model2 = _model(keras.optimizers.SGD())
    model2.set_weights(model.get_weights())
    assert finder.losses[-1] != pytest.approx(np.mean(finder.losses))


class _Batches(keras.utils.PyDataset):
    def __init__(self, n=10, bad_from=None):
        super().__init__()
        self.n, self.bad_from = n, bad_from

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        j = 8 * i % 96
        return X[j:j + 8], Y[j:j + 8]


class _Regression(keras.utils.PyDataset):
    """Targets become inf from batch ``bad_from`` on: an inf MSE loss."""

    def __init__(self, bad_from):
        super().__init__()
        self.bad_from = bad_from

    def __len__(self):
        return 40

    def __getitem__(self, i):
        y = X[:8, :1] * (np.inf if i >= self.bad_from else 1.0)
        return X[:8], y


def test_pydataset_and_generator_of_unknown_length():
    model = _model()
    before = _state(model)
    result = lr_find(model, _Batches(5), num_it=30)  # 6 passes over 5
    assert len(result.lrs) == 30 or result.stop_reason == "diverged"

    def forever():
        i = 0
        while True:
            yield X[i % 96:i % 96 + 8], Y[i % 96:i % 96 + 8]
            i += 8

    result = lr_find(model, forever(), num_it=30)
    assert len(result.lrs) + (result.stop_reason == "diverged") >= 20
    assert all(np.array_equal(a, b) for a, b in zip(before, _state(model)))


def test_tf_data(backend):
    if backend != "tensorflow":
        pytest.skip("tf.data is a TensorFlow-backend input")
    import tensorflow as tf

    ds = tf.data.Dataset.from_tensor_slices((X, Y)).batch(8).repeat()
    model = _model()
    before = _state(model)
    result = lr_find(model, ds, num_it=30, stop_div=False)
    assert len(result.lrs) == 30
    assert all(np.array_equal(a, b) for a, b in zip(before, _state(model)))


def test_non_finite_loss_stops_and_restores():
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(1)])
    model.compile(keras.optimizers.SGD(), "mse")
    before = _state(model)
    result = lr_find(model, _Regression(bad_from=25), num_it=40,
                     stop_div=False)
    assert result.stop_reason == "non-finite loss"
    assert len(result.lrs) == 25 and np.isfinite(result.losses).all()
    assert 1e-7 <= result.valley <= result.lrs[-1]
    assert all(np.array_equal(a, b) for a, b in zip(before, _state(model)))


def test_too_few_points_is_a_clear_error():
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(1)])
    model.compile(keras.optimizers.SGD(), "mse")
    before = _state(model)
    with pytest.raises(ValueError, match="usable points"):
        lr_find(model, _Regression(bad_from=5), num_it=40, stop_div=False)
    assert all(np.array_equal(a, b) for a, b in zip(before, _state(model)))


def test_steps_per_execution_refused():
    model = _model(steps_per_execution=2)
    with pytest.raises(ValueError, match="steps_per_execution=2"):
        lr_find(model, (X, Y), num_it=30, batch_size=8)


def test_bad_arguments():
    with pytest.raises(ValueError, match="start_lr < end_lr"):
        LRFinder(1.0, 1e-3)
    with pytest.raises(ValueError, match="beta"):
        LRFinder(beta=1.0)
    with pytest.raises(ValueError, match="not compiled"):
        lr_find(keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)]),
                (X, Y))


def test_suggestions_by_hand():
    lrs = np.logspace(-5, 0, 40)
    # Loss falls from index 5 to 25, then rises.
    loss = np.concatenate([np.full(5, 3.0), np.linspace(3.0, 1.0, 21)[1:],
                           np.linspace(1.1, 5.0, 15)])
    found = _suggest.suggest(lrs, loss, num_it=40)
    window = slice(4, 35)
    t_lrs, t_loss = lrs[window], loss[window]
    assert found["minimum"][0] == pytest.approx(lrs[24] / 10)
    grads = np.diff(t_loss) / np.diff(np.log(t_lrs))
    assert found["steep"][0] == pytest.approx(t_lrs[np.argmin(grads)])
    # Longest decreasing run: t indices 0..20 (3.0, then falling), length
    # 21 ending at 20; fastai's start is 20 - 21 = -1, so the index is
    # -1 + int(21 / 3) + int(7 / 2) = 9.
    assert found["valley"][0] == pytest.approx(t_lrs[9])
    assert t_lrs[0] <= found["slide"][0] <= t_lrs[-1]


def test_result_plot_and_save(tmp_path):
    lrs = np.logspace(-6, 0, 50)
    loss = 2 + np.sin(np.linspace(0, 3, 50))
    result = LRFindResult(lrs, loss, loss, 50, "num_it")
    fig = result.plot()
    assert type(fig).__name__ == "Figure"
    assert fig.axes[0].get_xscale() == "log"
    path = result.save_plot(tmp_path / "sub" / "lr.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert sorted(result.to_dict()["suggestions"]) == [
        "minimum", "slide", "steep", "valley"]
    assert not [p for p in (tmp_path / "sub").iterdir() if p.suffix != ".png"]
    assert math.isfinite(result.valley)


def test_cli_on_bundled_sample_and_image_folder(tmp_path, capsys):
    import json

    from PIL import Image

    from kerasdl import cli

    plot = tmp_path / "lr.png"
    assert cli.main(["lr-find", "linear_bn", "--num-it", "30", "--json",
                     "--batch-size", "32", "--plot", str(plot)]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert sorted(out["suggestions"]) == ["minimum", "slide", "steep",
                                          "valley"]
    assert plot.read_bytes()[:4] == b"\x89PNG"
    rng = np.random.RandomState(0)
    for c in ("a", "b"):
        (tmp_path / "imgs" / c).mkdir(parents=True)
        for i in range(8):
            # at least 32 px a side (the loaders' min_size), resized to 6x8
            Image.fromarray(rng.randint(0, 255, (32, 40, 3), "uint8")).save(
                tmp_path / "imgs" / c / f"{i}.png")
    assert cli.main(["lr-find", "linear_bn", "--data",
                     str(tmp_path / "imgs"), "--image-size", "6,8",
                     "--batch-size", "4", "--num-it", "30", "--plot",
                     str(plot)]) == 0
    assert "valley" in capsys.readouterr().out
    assert cli.main(["lr-find", "linear_bn", "--data", "nowhere"]) == 2
    assert "neither" in capsys.readouterr().err


def test_groups_keep_their_ratio_during_the_sweep():
    from kerasdl.training.groups import discriminative_optimizer

    model = _model()
    model.compile(discriminative_optimizer(model, slice(1e-4, 1e-2),
                                           keras.optimizers.SGD(), groups=3),
                  "sparse_categorical_crossentropy")

    class Rates(keras.callbacks.Callback):
        seen = []

        def on_train_batch_end(self, batch, logs=None):
            opts = self.model.optimizer.optimizers
            self.seen.append([float(o.learning_rate.numpy()) for o in opts])

    finder = LRFinder(1e-6, 1e-3, num_it=5, stop_div=False)
    model.fit(X, Y, batch_size=8, verbose=0, callbacks=[finder, Rates()])
    np.testing.assert_allclose(Rates.seen, [[lr / 100, lr / 10, lr]
                                            for lr in finder.lrs], rtol=1e-5)
    rates = [float(o.learning_rate.numpy())
             for o in model.optimizer.optimizers]
    np.testing.assert_allclose(rates, [1e-4, 1e-3, 1e-2], rtol=1e-6)


def test_arrays_copied_or_gathered_per_batch_give_the_same_sweep(
        monkeypatch):
    results = []
    for limit in (256 * 2**20, 0):  # copied up front, per batch
        monkeypatch.setattr(lr_finder, "GATHER_LIMIT", limit)
        model = _model(keras.optimizers.SGD())
        results.append(lr_find(model, (X, Y), num_it=30, batch_size=8,
                               stop_div=False, start_lr=1e-4, end_lr=1.0))
    np.testing.assert_allclose(results[0].losses, results[1].losses,
                               rtol=1e-6)
    assert len(results[0].losses) == 30


def test_save_plot_refuses_a_folder_and_writes_whole_files(tmp_path):
    lrs = np.logspace(-5, 0, 40)
    loss = (np.log10(lrs) + 3) ** 2
    result = LRFindResult(lrs, loss, loss, 40, "num_it")
    with pytest.raises(ValueError, match="`path` must be a file name, not "
                                         "a folder"):
        result.save_plot(tmp_path)
    with pytest.raises(ValueError, match="skip_end=-1"):
        result.plot(skip_end=-1)
    target = tmp_path / "lr.png"
    target.write_bytes(b"old")
    target.chmod(0o640)
    assert result.save_plot(target) == target
    assert target.read_bytes()[:4] == b"\x89PNG"
    assert target.stat().st_mode & 0o777 == 0o640
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lr.png"]
