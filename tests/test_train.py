"""freeze/unfreeze, discriminative rates, fit_one_cycle inputs, fit_sgdr
and fine_tune, checked numerically with SGD and known gradients."""

import doctest
import warnings

import keras
import numpy as np
import pytest

from kerasdl import train
from kerasdl.callbacks import schedules
from kerasdl.train import discriminative_optimizer
from kerasdl.train import fine_tune
from kerasdl.train import fit_one_cycle
from kerasdl.train import fit_sgdr
from kerasdl.train import freeze
from kerasdl.train import unfreeze


def _branches(n=3):
    # Output = sum of n independent x @ w_i with x = 1 and loss mean(pred):
    # every kernel gets gradient 1 at every step, so SGD moves w_i by -lr_i.
    inputs = keras.Input((1,))
    outs = [keras.layers.Dense(1, use_bias=False, kernel_initializer="zeros",
                               name=f"g{i}")(inputs) for i in range(n)]
    model = keras.Model(inputs, keras.layers.Add(name="sum")(outs))
    return model


def _loss(y, p):
    return keras.ops.mean(p)


def _kernels(model, n=3):
    return np.array([float(model.get_layer(f"g{i}").kernel.numpy()[0, 0])
                     for i in range(n)])


DATA = (np.ones((8, 1), "float32"), np.zeros(8, "float32"))


def test_each_group_moves_with_its_own_rate():
    model = _branches()
    opt = discriminative_optimizer(model, slice(1e-3, 1e-1),
                                   keras.optimizers.SGD(), groups=3)
    model.compile(opt, _loss)
    model.fit(*DATA, batch_size=2, epochs=1, verbose=0)  # 4 steps
    np.testing.assert_allclose(_kernels(model), [-4e-3, -4e-2, -4e-1],
                               rtol=1e-5)


def test_one_cycle_with_slice_spreads_over_groups():
    model = _branches()
    model.compile(discriminative_optimizer(model, 1.0, keras.optimizers.SGD(),
                                           groups=["g0", "g2"]), _loss)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # SGD without momentum
        fit_one_cycle(model, DATA, 2, slice(1e-3, 1e-1), batch_size=2,
                      verbose=0)
    # Groups [g0, g1] and [g2]: rates 1e-3 and 1e-1 at the peak.
    total = sum(schedules.one_cycle(i / 8, 1.0) for i in range(8))
    np.testing.assert_allclose(
        _kernels(model), [-1e-3 * total, -1e-3 * total, -1e-1 * total],
        rtol=1e-5)


def test_frozen_layers_keep_their_weights():
    keras.utils.set_random_seed(1)
    model = keras.Sequential([
        keras.Input((4,)), keras.layers.BatchNormalization(name="bn"),
        keras.layers.Dense(8, name="body"), keras.layers.Dense(2, name="head")])
    assert freeze(model) == ["bn", "body"]
    assert model.get_layer("bn").trainable  # fastai's train_bn
    model.compile(keras.optimizers.Adam(1e-2), "mse")
    body, head = (model.get_layer(n).get_weights() for n in ("body", "head"))
    x = np.random.RandomState(0).randn(32, 4).astype("float32")
    model.fit(x, x[:, :2], epochs=2, verbose=0)
    for before, after in zip(body, model.get_layer("body").get_weights()):
        np.testing.assert_array_equal(before, after)
    assert not np.allclose(head[0], model.get_layer("head").get_weights()[0])
    assert freeze(model, "body", train_bn=False) == ["bn"]
    assert not model.get_layer("bn").trainable
    unfreeze(model)
    assert len(model.trainable_weights) == 2 + 2 + 2
    with pytest.raises(ValueError, match="no layer named 'nope'"):
        freeze(model, "nope")


def test_fine_tune_phases():
    model = _branches()
    model.compile(keras.optimizers.SGD(), _loss)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        first, second = fine_tune(model, DATA, epochs=1, base_lr=0.2,
                                  freeze_epochs=1, lr_mult=100, batch_size=2,
                                  verbose=0)
    # Phase 1 (frozen, only g2 = the head): one cycle at 0.2, pct_start .99.
    p1 = sum(schedules.one_cycle(i / 4, 0.2, pct_start=0.99)
             for i in range(4))
    # Phase 2: rates 0.001, 0.01, 0.1 (slice(0.1 / 100, 0.1)), div 5.
    p2 = sum(schedules.one_cycle(i / 4, 1.0, pct_start=0.3, div=5)
             for i in range(4))
    np.testing.assert_allclose(
        _kernels(model), [-1e-3 * p2, -1e-2 * p2, -0.2 * 0 - p1 - 0.1 * p2],
        rtol=1e-5)
    assert isinstance(model.optimizer, keras.optimizers.MultiOptimizer)
    assert len(first.history["loss"]) == 1 and len(second.history["loss"]) == 1


def test_fit_one_cycle_inputs_and_errors():
    model = _branches()
    with pytest.raises(ValueError, match="not compiled"):
        fit_one_cycle(model, DATA, 1, 1e-2)
    model.compile(keras.optimizers.Adam(), _loss)
    with pytest.raises(ValueError, match="either as `data` or as `x=`"):
        fit_one_cycle(model, DATA, 1, 1e-2, x=DATA[0])
    with pytest.raises(ValueError, match="no training data"):
        fit_one_cycle(model, None, 1, 1e-2)

    class Batches(keras.utils.PyDataset):
        def __len__(self):
            return 3

        def __getitem__(self, i):
            return DATA[0][:2], DATA[1][:2]

    h = fit_one_cycle(model, Batches(), 2, 1e-2, verbose=0)
    assert len(h.history["learning_rate"]) == 2

    def gen():
        while True:
            yield DATA[0][:2], DATA[1][:2]

    with pytest.raises(ValueError, match="no known length"):
        fit_one_cycle(model, gen(), 1, 1e-2, verbose=0)
    h = fit_one_cycle(model, gen(), 1, 1e-2, steps_per_epoch=3, verbose=0)
    assert h.history["momentum"][0] == pytest.approx(
        schedules.one_cycle_momentum(2 / 3))


def test_fit_sgdr_epochs_and_rates():
    model = _branches(1)
    model.compile(keras.optimizers.SGD(), _loss)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        h = fit_sgdr(model, DATA, n_cycles=2, cycle_len=1, lr_max=0.1,
                     cycle_mult=2, batch_size=4, verbose=0)
    assert len(h.history["loss"]) == 3
    lrs = [schedules.cosine_restarts(i / 2, 0.1) for i in range(6)]
    np.testing.assert_allclose(_kernels(model, 1), [-sum(lrs)], rtol=1e-5)


def test_doctests():
    assert doctest.testmod(train).failed == 0
