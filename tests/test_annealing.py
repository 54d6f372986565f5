"""GradientSum accumulates sum(g ** 2) on the device; the annealer divides
the rate when it grows past the threshold and logs each decision."""

import math

import keras
import numpy as np
import pytest

from kerasdl.training.annealing import GradientRatioAnnealer
from kerasdl.training.annealing import GradientSum


def _model(optimizer):
    # pred = x @ W (2 -> 2), loss = mean(pred): dL/dW[i, j] = mean(x_i) / 2.
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(
        2, use_bias=False, kernel_initializer="zeros", name="w")])
    model.compile(optimizer, loss=lambda y, p: keras.ops.mean(p))
    return model


def _stream(scales, batch=4):
    for s in scales:
        yield np.tile([[1.0, 2.0]], (batch, 1)).astype("float32") * s, \
            np.zeros((batch, 2), "float32")


def test_gradient_sum_is_exact_and_update_unchanged():
    model = _model(GradientSum(keras.optimizers.SGD(0.1)))
    model.fit(_stream([1, 1, 1]), steps_per_epoch=3, epochs=1, verbose=0)
    # Per step: 2 * (0.5 ** 2) + 2 * (1 ** 2) = 2.5.
    assert float(model.optimizer.grad_sq_sum.numpy()) == pytest.approx(7.5)
    w = model.get_layer("w").kernel.numpy()
    np.testing.assert_allclose(w, -0.3 * np.array([[0.5, 0.5], [1, 1]]),
                               rtol=1e-6)
    assert int(model.optimizer.iterations.numpy()) == 3


def test_annealer_divides_on_growth_and_logs_decisions():
    model = _model(GradientSum(keras.optimizers.SGD(0.1)))
    # Epoch sums: 2.5 * 2, then 9 times that (x tripled), then equal.
    h = model.fit(_stream([1, 1, 3, 3, 3, 3]), steps_per_epoch=2, epochs=3,
                  verbose=0, callbacks=[GradientRatioAnnealer(2, 4)])
    logs = h.history
    assert logs["lr_annealed"] == [0.0, 1.0, 0.0]
    np.testing.assert_allclose(logs["grad_sq_sum"], [5.0, 45.0, 45.0],
                               rtol=1e-6)
    assert math.isnan(logs["grad_ratio"][0])
    assert logs["grad_ratio"][1:] == pytest.approx([9.0, 1.0])
    assert logs["learning_rate"] == pytest.approx([0.1, 0.025, 0.025])
    # The divided rate is really used in epoch 3: W moved by 0.1 * (2 steps
    # at x) + 0.1 * (2 steps at 3x) + 0.025 * (2 steps at 3x).
    g = np.array([[0.5, 0.5], [1, 1]])
    np.testing.assert_allclose(model.get_layer("w").kernel.numpy(),
                               -(0.2 + 0.6 + 0.15) * g, rtol=1e-5)


def test_annealer_needs_the_wrapper():
    model = _model(keras.optimizers.SGD(0.1))
    with pytest.raises(TypeError, match="GradientSum"):
        model.fit(_stream([1]), steps_per_epoch=1, epochs=1, verbose=0,
                  callbacks=[GradientRatioAnnealer()])
    with pytest.raises(ValueError, match="> 1"):
        GradientRatioAnnealer(threshold=1.0)


def test_gradient_sum_saves_and_loads(tmp_path):
    model = _model(GradientSum(keras.optimizers.Adam(1e-3)))
    model.fit(_stream([1]), steps_per_epoch=1, epochs=1, verbose=0)
    model.compile(model.optimizer, "mse")  # a named loss, for saving
    path = tmp_path / "m.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    assert isinstance(loaded.optimizer, GradientSum)
    assert isinstance(loaded.optimizer.inner_optimizer,
                      keras.optimizers.Adam)


def test_wrapper_state_is_its_own_variable_and_the_wrapped_ones(tmp_path):
    # The state a JAX step carries is `optimizer.variables`: the wrapper's
    # statistic and the wrapped optimizer's state, nothing unused (the
    # step counter and rate every Keras optimizer makes for itself).
    inner = keras.optimizers.Adam(1e-3)
    model = _model(GradientSum(inner))
    model.fit(_stream([1, 2]), steps_per_epoch=2, epochs=1, verbose=0)
    opt = model.optimizer
    assert [id(v) for v in opt.variables] == \
        [id(opt.grad_sq_sum)] + [id(v) for v in inner.variables]
    assert int(opt.iterations.numpy()) == 2
    model.compile(opt, "mse")
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras", safe_mode=True)
    for saved, back in zip(opt.variables, loaded.optimizer.variables,
                           strict=True):
        np.testing.assert_array_equal(saved.numpy(), back.numpy())


def test_wrapper_loads_state_saved_with_the_unused_counter_and_rate():
    # Files written before the wrapper left its own step counter and rate
    # out of `variables` hold them first; the rest still loads.
    inner = keras.optimizers.Adam(1e-3)
    model = _model(GradientSum(inner))
    model.fit(_stream([1, 2]), steps_per_epoch=2, epochs=1, verbose=0)
    opt = model.optimizer
    values = [np.asarray(v.numpy()) for v in opt.variables]
    older = [np.asarray(0, "int64"), np.asarray(0.0, "float32"), *values]
    for v in opt.variables:
        v.assign(np.zeros(v.shape, v.dtype))
    opt.load_own_variables({str(i): a for i, a in enumerate(older)})
    for v, want in zip(opt.variables, values, strict=True):
        np.testing.assert_array_equal(v.numpy(), want)
