"""Schedules against fastai's formulas, computed by hand; the OneCycle and
CosineRestarts callbacks really change the rate and momentum used by the
optimizer, without retracing per step."""

import math
import warnings

import keras
import numpy as np
import pytest

from kerasdl.training import schedules
from kerasdl.training.param_scheduler import CosineRestarts
from kerasdl.training.param_scheduler import OneCycle
from kerasdl.training.param_scheduler import spread_lr
from kerasdl.training.schedules import CosineRestartsSchedule
from kerasdl.training.schedules import OneCycleSchedule
from kerasdl.training.fit import fit_one_cycle


def test_one_cycle_start_peak_end_by_hand():
    lr, div, final, pct = 0.1, 25.0, 1e5, 0.25
    f = schedules.one_cycle
    assert f(0.0, lr) == pytest.approx(lr / div, rel=1e-12)
    assert f(pct, lr) == pytest.approx(lr, rel=1e-12)
    assert f(1.0, lr) == pytest.approx(lr / final, rel=1e-9)
    # Half-way up the cosine warm-up: the mean of start and peak.
    assert f(pct / 2, lr) == pytest.approx((lr / div + lr) / 2, rel=1e-12)
    # Half-way down: mean of peak and end.
    assert f(pct + (1 - pct) / 2, lr) == pytest.approx(
        (lr + lr / final) / 2, rel=1e-12)
    # A quarter of the way down: end + (peak-end)(1+cos(pi/4))/2.
    expected = lr / final + (lr - lr / final) * (1 + math.cos(math.pi / 4)) / 2
    assert f(pct + (1 - pct) / 4, lr) == pytest.approx(expected, rel=1e-12)
    assert f(0.0, 1.0, div=5, pct_start=0.3) == pytest.approx(0.2)


def test_one_cycle_momentum_by_hand():
    m = schedules.one_cycle_momentum
    assert m(0.0) == pytest.approx(0.95)
    assert m(0.25) == pytest.approx(0.85)
    assert m(1.0) == pytest.approx(0.95)
    assert m(0.125) == pytest.approx(0.90)


def test_cosine_restarts_by_hand():
    c = schedules.cosine_restarts
    # Cycles [0,1), [1,3), [3,7) epochs.
    assert [c(e, 1.0) for e in (0, 1, 3, 7)] == [1.0, 1.0, 1.0, 1.0]
    assert c(0.5, 1.0) == pytest.approx(0.5)
    assert c(2.0, 1.0) == pytest.approx(0.5)
    assert c(5.0, 1.0) == pytest.approx(0.5)
    assert c(6.0, 1.0) == pytest.approx((1 + math.cos(0.75 * math.pi)) / 2)
    assert c(1.5, 1.0, cycle_mult=1) == pytest.approx(0.5)
    assert c(0.5, 1.0, lr_min=0.2) == pytest.approx(0.6)
    assert schedules.sgdr_epochs(3, 2, 1) == 6


@pytest.mark.parametrize("kwargs,match", [
    ({"pct_start": 1.0}, "pct_start"), ({"pct_start": 0}, "pct_start")])
def test_one_cycle_rejects_bad_pct_start(kwargs, match):
    with pytest.raises(ValueError, match=match):
        schedules.one_cycle(0.1, 1.0, **kwargs)
    with pytest.raises(ValueError, match=match):
        OneCycle(1e-3, **kwargs)


def test_spread_lr_like_fastai():
    assert spread_lr(slice(1e-4, 1e-2), 3) == pytest.approx(
        [1e-4, 1e-3, 1e-2])
    assert spread_lr(slice(1e-2), 3) == pytest.approx([1e-3, 1e-3, 1e-2])
    assert spread_lr(0.1, 2) == [0.1, 0.1]
    with pytest.raises(ValueError, match="expected 3 learning rates"):
        spread_lr([0.1, 0.2], 3)


def test_schedule_classes_match_functions_and_serialise():
    one = OneCycleSchedule(0.1, total_steps=40, div=10, pct_start=0.3)
    for step in (0, 5, 12, 30, 39, 40, 60):
        expected = schedules.one_cycle(min(step / 40, 1.0), 0.1, div=10,
                                       pct_start=0.3)
        assert float(one(step)) == pytest.approx(expected, rel=1e-5,
                                                 abs=1e-8)
    sgdr = CosineRestartsSchedule(1.0, cycle_steps=10, cycle_mult=2)
    for step in range(0, 150, 7):
        expected = schedules.cosine_restarts(step / 10, 1.0)
        assert float(sgdr(step)) == pytest.approx(expected, abs=1e-5), step
    for step in (10, 30, 70):  # exact restarts
        assert float(sgdr(step)) == pytest.approx(1.0, abs=1e-6)
    for sched in (one, sgdr):
        config = keras.saving.serialize_keras_object(sched)
        assert config["registered_name"].startswith("kerasdl>")
        again = keras.saving.deserialize_keras_object(config)
        assert float(again(17)) == pytest.approx(float(sched(17)))


def test_schedule_inside_a_saved_model(tmp_path):
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(keras.optimizers.SGD(OneCycleSchedule(0.1, 100)), "mse")
    model.fit(np.ones((4, 2)), np.ones(4), verbose=0)
    path = tmp_path / "m.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    assert isinstance(loaded.optimizer._learning_rate, OneCycleSchedule)


class _Count(keras.layers.Layer):
    """Identity that counts how often its call is traced (or run)."""

    calls = 0

    def call(self, x):
        type(self).calls += 1
        return x


def _constant_grad_model(optimizer):
    # pred = x @ w with x = 1 and loss = mean(pred): dL/dw = 1 every step.
    model = keras.Sequential([
        keras.Input((1,)), _Count(),
        keras.layers.Dense(1, use_bias=False, kernel_initializer="zeros",
                           name="w")])
    model.compile(optimizer, loss=lambda y, p: keras.ops.mean(p))
    return model


class _Weights(keras.callbacks.Callback):
    def on_train_batch_end(self, batch, logs=None):
        w = self.model.get_layer("w").kernel.numpy()
        self.seen = getattr(self, "seen", []) + [float(w[0, 0])]


def test_one_cycle_rates_really_used_and_no_retrace(backend):
    x, y = np.ones((32, 1), "float32"), np.zeros(32, "float32")
    counts = []
    for epochs in (1, 4):
        model = _constant_grad_model(keras.optimizers.SGD(1.0))
        _Count.calls = 0
        spy = _Weights()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # SGD without momentum
            fit_one_cycle(model, (x, y), epochs, 0.1, batch_size=8,
                          verbose=0, callbacks=[spy])
        counts.append(_Count.calls)
        steps = 4 * epochs
        w = np.array([0.0] + spy.seen)
        used = -np.diff(w)  # SGD: w -= lr * 1
        expected = [schedules.one_cycle(i / steps, 0.1) for i in range(steps)]
        np.testing.assert_allclose(used, expected, rtol=1e-4, atol=1e-8)
        assert used.argmax() == steps // 4  # the peak, at pct_start
    if backend != "torch":  # torch runs eagerly: one call per step
        assert counts[0] == counts[1], counts


def _momentum_path(lrs, moms):
    # SGD with momentum, gradient 1: v = m v - lr; w = w + v.
    w, v, out = 0.0, 0.0, []
    for lr, m in zip(lrs, moms):
        v = m * v - lr
        w = w + v
        out.append(w)
    return np.array(out)


@pytest.mark.parametrize("trained_before", [False, True])
def test_one_cycle_cycles_sgd_momentum(trained_before):
    x, y = np.ones((16, 1), "float32"), np.zeros(16, "float32")
    model = _constant_grad_model(keras.optimizers.SGD(0.0, momentum=0.5))
    if trained_before:  # a step traced with momentum as a constant
        model.fit(x, y, batch_size=8, epochs=1, verbose=0)
    spy = _Weights()
    cb = OneCycle(0.1, moms=(0.9, 0.5, 0.8), pct_start=0.5)
    model.fit(x, y, batch_size=2, epochs=1, verbose=0, callbacks=[cb, spy])
    pcts = np.arange(8) / 8
    lrs = [schedules.one_cycle(p, 0.1, pct_start=0.5) for p in pcts]
    moms = [schedules.one_cycle_momentum(p, (0.9, 0.5, 0.8), pct_start=0.5)
            for p in pcts]
    np.testing.assert_allclose(cb.moms, moms)
    # Before this fit, the momentum buffer is 0 (SGD lr 0 while trained).
    np.testing.assert_allclose(np.array(spy.seen) - spy.seen[0] + (
        _momentum_path(lrs, moms)[0]), _momentum_path(lrs, moms),
        rtol=1e-5, atol=1e-7)
    # The float is back as it was: the optimizer saves as before.
    assert model.optimizer.momentum == 0.5
    assert len(model.optimizer.variables) == 3  # iterations, lr, buffer
    keras.saving.serialize_keras_object(model.optimizer)


class _FirstMoment(keras.callbacks.Callback):
    """Reads Adam's first-moment slot after each step."""

    def on_train_batch_end(self, batch, logs=None):
        opt = self.model.optimizer
        m = float(np.asarray(opt._momentums[0].numpy()).ravel()[0])
        self.seen = getattr(self, "seen", []) + [m]


def test_adam_beta_1_cycled_beta_2_untouched():
    # Gradient 1 every step: Adam's m_t = m + (1 - m) * (1 - beta_1(t)).
    model = _constant_grad_model(keras.optimizers.Adam(beta_2=0.99))
    spy = _FirstMoment()
    fit_one_cycle(model, (np.ones((8, 1)), np.zeros(8)), 1, 1e-3,
                  batch_size=2, verbose=0, callbacks=[spy])
    betas = [schedules.one_cycle_momentum(i / 4) for i in range(4)]
    m, expected = 0.0, []
    for b in betas:
        m = m + (1 - m) * (1 - b)
        expected.append(m)
    np.testing.assert_allclose(spy.seen, expected, rtol=1e-6)
    assert model.optimizer.beta_2 == 0.99
    assert model.optimizer.beta_1 == 0.9
    assert isinstance(model.optimizer.beta_1, float)


def test_repeated_one_cycle_compiles_once_and_plain_fit_is_untouched(
        backend):
    x, y = np.ones((16, 1), "float32"), np.zeros(16, "float32")
    model = _constant_grad_model(keras.optimizers.SGD(0.5, momentum=0.9))
    model.fit(x, y, batch_size=4, verbose=0)
    plain = model.train_function
    _Count.calls = 0
    for lr in (0.1, 0.2, 0.05):
        fit_one_cycle(model, (x, y), 2, lr, batch_size=4, verbose=0)
        assert model.train_function is plain
    if backend != "torch":  # torch runs eagerly: one call per step
        assert _Count.calls == 1, _Count.calls  # one trace for three fits
    # The compiled rate is back, and a plain fit afterwards uses the
    # optimizer's rate, not the schedule.
    assert float(model.optimizer.learning_rate.numpy()) == 0.5
    model.optimizer.learning_rate.assign(0.25)
    before = float(model.get_layer("w").kernel.numpy()[0, 0])
    velocity = float(model.optimizer.momentums[0].numpy()[0, 0])
    model.fit(x[:4], y[:4], batch_size=4, verbose=0)
    after = float(model.get_layer("w").kernel.numpy()[0, 0])
    assert after - before == pytest.approx(0.9 * velocity - 0.25, rel=1e-5)
    assert len(model.optimizer.variables) == 3  # iterations, lr, velocity


def test_sweep_then_one_cycle_then_sgdr_each_use_their_own_rates(backend):
    from kerasdl.training.lr_finder import lr_find
    from kerasdl.training.fit import fit_sgdr

    x, y = np.ones((16, 1), "float32"), np.zeros(16, "float32")
    model = _constant_grad_model(keras.optimizers.SGD(1.0))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # SGD without momentum
        lr_find(model, (x, y), num_it=40, batch_size=2, stop_div=False)
        for fit, expected in (
                (lambda cb: fit_one_cycle(model, (x, y), 1, 0.1,
                                          batch_size=2, verbose=0,
                                          callbacks=[cb]),
                 [schedules.one_cycle(i / 8, 0.1) for i in range(8)]),
                (lambda cb: fit_sgdr(model, (x, y), 2, 1, 0.1, batch_size=4,
                                     verbose=0, callbacks=[cb]),
                 [schedules.cosine_restarts(i / 4, 0.1) for i in range(12)])):
            w0 = float(model.get_layer("w").kernel.numpy()[0, 0])
            spy = _Weights()
            fit(spy)
            used = -np.diff([w0] + spy.seen)
            np.testing.assert_allclose(used, expected, rtol=1e-4, atol=1e-7)


def test_recompiling_with_the_same_optimizer_retraces(backend):
    x, y = np.ones((8, 1), "float32"), np.zeros(8, "float32")
    opt = keras.optimizers.SGD(0.1)
    model = _constant_grad_model(opt)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # SGD without momentum
        fit_one_cycle(model, (x, y), 1, 0.1, batch_size=4, verbose=0)
        # Same optimizer object, another loss: twice the gradient.
        model.compile(opt, loss=lambda t, p: 2 * keras.ops.mean(p))
        w0 = float(model.get_layer("w").kernel.numpy()[0, 0])
        fit_one_cycle(model, (x, y), 1, 0.1, batch_size=4, verbose=0)
    w1 = float(model.get_layer("w").kernel.numpy()[0, 0])
    used = schedules.one_cycle(0.0, 0.1) + schedules.one_cycle(0.5, 0.1)
    assert w0 - w1 == pytest.approx(2 * used, rel=1e-5)


def test_optimizer_saves_and_loads_as_before(tmp_path):
    x, y = np.ones((16, 2), "float32"), np.zeros(16, "float32")
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(keras.optimizers.Adam(), "mse")
    fit_one_cycle(model, (x, y), 1, 1e-2, batch_size=4, verbose=0)
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras")
    assert len(loaded.optimizer.variables) == len(model.optimizer.variables)
    for a, b in zip(model.optimizer.variables, loaded.optimizer.variables):
        np.testing.assert_array_equal(np.asarray(a.numpy()),
                                      np.asarray(b.numpy()))
    assert isinstance(loaded.optimizer.beta_1, float)


def test_interrupted_fit_can_be_uninstalled():
    x, y = np.ones((16, 1), "float32"), np.zeros(16, "float32")
    model = _constant_grad_model(keras.optimizers.SGD(0.5, momentum=0.9))

    class Boom(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            raise RuntimeError("interrupted")

    cb = OneCycle(0.1)
    with pytest.raises(RuntimeError, match="interrupted"):
        model.fit(x, y, batch_size=4, verbose=0, callbacks=[cb, Boom()])
    cb.uninstall()
    assert len(model.optimizer.variables) == 3
    assert isinstance(model.optimizer.momentum, float)
    model.fit(x, y, batch_size=4, verbose=0)


def test_single_warning_without_momentum():
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(keras.optimizers.RMSprop(), "mse")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fit_one_cycle(model, (np.ones((8, 2)), np.ones(8)), 2, 1e-3,
                      batch_size=2, verbose=0)
    ours = [w for w in caught if "momentum is not cycled" in str(w.message)]
    assert len(ours) == 1


def test_steps_per_execution_is_exact(backend):
    if backend == "torch":
        pytest.skip("Keras refuses steps_per_execution > 1 under torch")
    x, y = np.ones((32, 1), "float32"), np.zeros(32, "float32")
    model = _constant_grad_model(keras.optimizers.SGD(1.0))
    model.compile(keras.optimizers.SGD(1.0),
                  loss=lambda t, p: keras.ops.mean(p), steps_per_execution=4)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # SGD without momentum
        cb = OneCycle(0.1)
        model.fit(x, y, batch_size=2, epochs=1, verbose=0, callbacks=[cb])
    expected = [schedules.one_cycle(i / 16, 0.1) for i in range(16)]
    w = float(model.get_layer("w").kernel.numpy()[0, 0])
    assert -w == pytest.approx(sum(expected), rel=1e-5)
    np.testing.assert_allclose(cb.lrs, expected)


def test_cosine_restarts_callback_rates():
    model = _constant_grad_model(keras.optimizers.SGD(1.0))
    spy = _Weights()
    cb = CosineRestarts(0.1, cycle_len=1, cycle_mult=2)
    x, y = np.ones((8, 1), "float32"), np.zeros(8, "float32")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        h = model.fit(x, y, batch_size=2, epochs=3, verbose=0,
                      callbacks=[cb, spy])
    used = -np.diff([0.0] + spy.seen)
    expected = [schedules.cosine_restarts(i / 4, 0.1) for i in range(12)]
    np.testing.assert_allclose(used, expected, rtol=1e-4, atol=1e-8)
    assert len(h.history["learning_rate"]) == 3


def test_schedule_state_carried_per_step_is_the_control_and_the_optimizer():
    # During the fit the model's optimizer is the schedule's wrapper; the
    # state carried through each step is its control table, the
    # momentum-scheduled copy's variables, nothing else.
    x, y = np.ones((16, 1), "float32"), np.zeros(16, "float32")
    model = _constant_grad_model(keras.optimizers.SGD(0.5, momentum=0.9))
    seen = []

    class Look(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            opt = self.model.optimizer
            seen.append(([v.name for v in opt.variables],
                         [v.name for v in opt.inner_optimizer.variables]))

    model.fit(x, y, batch_size=4, verbose=0, callbacks=[OneCycle(0.1),
                                                        Look()])
    names, inner = seen[-1]
    assert names == ["step_control", *inner]
    assert "momentum_value" in inner
    assert len(model.optimizer.variables) == 3
