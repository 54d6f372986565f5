"""freeze/unfreeze, discriminative rates, fit_one_cycle inputs, fit_sgdr
and fine_tune, checked numerically with SGD and known gradients."""

import warnings

import keras
import numpy as np
import pytest

from kerasdl.training import groups as train
from kerasdl.training import schedules
from kerasdl.training.groups import discriminative_optimizer
from kerasdl.training.fit import fine_tune
from kerasdl.training.fit import fit_one_cycle
from kerasdl.training.fit import fit_sgdr
from kerasdl.training.groups import freeze
from kerasdl.training.groups import unfreeze


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


# A backbone nested as one layer of the model: the most common Keras
# pattern, Sequential([backbone, GlobalAveragePooling2D(), Dense(n)]).

XN = np.random.RandomState(2).rand(16, 6, 6, 2).astype("float32") + 3.0
YN = np.arange(16) % 3


def _backbone(name="bb"):
    return keras.Sequential([
        keras.Input((6, 6, 2)),
        keras.layers.Conv2D(3, 3, name="conv1"),
        keras.layers.BatchNormalization(name="bn1"),
        keras.layers.Conv2D(4, 3, name="conv2"),
        keras.layers.BatchNormalization(name="bn2")], name=name)


def _nested(kind):
    keras.utils.set_random_seed(3)
    backbone = _backbone()
    if kind == "sequential":
        model = keras.Sequential([
            backbone, keras.layers.GlobalAveragePooling2D(name="pool"),
            keras.layers.Dense(3, activation="softmax", name="out")])
    else:
        inputs = keras.Input((6, 6, 2))
        x = keras.layers.GlobalAveragePooling2D(name="pool")(backbone(inputs))
        model = keras.Model(inputs, keras.layers.Dense(
            3, activation="softmax", name="out")(x))
    return model, backbone


def _np(x):
    return np.array(keras.ops.convert_to_numpy(x))  # a copy


class _AtFirstEnd(keras.callbacks.Callback):
    """Copies some weights when the first fit ends."""

    def __init__(self, **variables):
        super().__init__()
        self.variables, self.seen = variables, None

    def on_train_end(self, logs=None):
        if self.seen is None:
            self.seen = {k: _np(v) for k, v in self.variables.items()}


@pytest.mark.parametrize("kind", ["sequential", "functional"])
def test_fine_tune_nested_backbone_with_three_groups(kind):
    # The reported bug: the frozen phase trained, then groups=3 failed.
    model, backbone = _nested(kind)
    assert [[layer.name for layer in g]
            for g in train.layer_groups(model, 3)] == [
        ["conv1", "bn1"], ["conv2", "bn2"], ["out"]]
    model.compile(keras.optimizers.Adam(), "sparse_categorical_crossentropy")
    conv = backbone.get_layer("conv1").kernel
    out = model.get_layer("out").kernel
    before = {"conv": _np(conv), "out": _np(out)}
    probe = _AtFirstEnd(conv=conv, out=out)
    first, second = fine_tune(model, (XN, YN), epochs=1, base_lr=2e-2,
                              groups=3, batch_size=8, verbose=0,
                              callbacks=[probe])
    np.testing.assert_array_equal(probe.seen["conv"], before["conv"])
    assert not np.allclose(probe.seen["out"], before["out"])
    assert not np.allclose(_np(conv), before["conv"])
    rates = [float(_np(o.learning_rate)) for o in model.optimizer.optimizers]
    np.testing.assert_allclose(rates, [1e-4, 1e-3, 1e-2], rtol=1e-5)
    assert len(first.history["loss"]) == len(second.history["loss"]) == 1
    # The body's BN stay frozen (train_bn=False); everything else trains.
    assert {layer.name: layer.trainable for layer in backbone.layers} == {
        "conv1": True, "bn1": False, "conv2": True, "bn2": False}


@pytest.mark.parametrize("train_bn", [False, True])
def test_fine_tune_keeps_the_body_batch_norm_frozen_unless_asked(train_bn):
    model, backbone = _nested("functional")
    model.compile(keras.optimizers.Adam(), "sparse_categorical_crossentropy")
    bn = backbone.get_layer("bn1")
    stats = [_np(bn.moving_mean), _np(bn.moving_variance), _np(bn.gamma)]
    kernel = _np(backbone.get_layer("conv1").kernel)
    fine_tune(model, (XN, YN), epochs=1, base_lr=2e-2, batch_size=8,
              verbose=0, train_bn=train_bn)
    assert not np.allclose(_np(backbone.get_layer("conv1").kernel), kernel)
    moved = [not np.allclose(_np(v), s) for v, s in zip(
        (bn.moving_mean, bn.moving_variance, bn.gamma), stats)]
    assert moved == [train_bn] * 3


def test_frozen_batch_norm_runs_in_inference_mode():
    model, backbone = _nested("functional")
    bn = backbone.get_layer("bn1")
    assert freeze(model, train_bn=False) == ["bb", "pool"]
    assert [w.path for w in model.trainable_weights] == [
        "out/kernel", "out/bias"]
    model.compile(keras.optimizers.SGD(0.1), "sparse_categorical_crossentropy")
    stats = [_np(bn.moving_mean), _np(bn.moving_variance)]
    kernel, out = _np(backbone.get_layer("conv1").kernel), _np(
        model.get_layer("out").kernel)
    model.fit(XN, YN, batch_size=8, epochs=1, verbose=0)
    np.testing.assert_array_equal(_np(bn.moving_mean), stats[0])
    np.testing.assert_array_equal(_np(bn.moving_variance), stats[1])
    np.testing.assert_array_equal(_np(backbone.get_layer("conv1").kernel),
                                  kernel)
    assert not np.allclose(_np(model.get_layer("out").kernel), out)
    # Called in training mode, the frozen backbone normalises with its
    # moving statistics, exactly as in inference.
    np.testing.assert_allclose(_np(backbone(XN, training=True)),
                               _np(backbone(XN, training=False)), rtol=1e-6)
    np.testing.assert_allclose(_np(model(XN, training=True)),
                               _np(model(XN, training=False)), rtol=1e-6)
    # fastai's train_bn: the body's BN keep learning and use batch stats.
    freeze(model)
    model.compile(keras.optimizers.SGD(0.1), "sparse_categorical_crossentropy")
    gamma = _np(bn.gamma)
    model.fit(XN, YN, batch_size=8, epochs=1, verbose=0)
    assert not np.allclose(_np(bn.moving_mean), stats[0])
    assert not np.allclose(_np(bn.gamma), gamma)
    np.testing.assert_array_equal(_np(backbone.get_layer("conv1").kernel),
                                  kernel)
    assert not np.allclose(_np(backbone(XN, training=True)),
                           _np(backbone(XN, training=False)), atol=1e-3)


def test_freeze_upto_a_layer_inside_the_backbone():
    model, backbone = _nested("sequential")
    assert freeze(model, "conv2") == ["bb/conv1", "bb/bn1"]
    trainable = {w.path for w in model.trainable_weights}
    assert "bb/conv1/kernel" not in trainable
    assert {"bb/bn1/gamma", "bb/conv2/kernel"} <= trainable  # train_bn
    assert any(path.endswith("/out/kernel") for path in trainable)
    assert freeze(model, "bb/conv2", train_bn=False) == ["bb/conv1", "bb/bn1"]
    assert not backbone.get_layer("bn1").trainable
    assert freeze(model, 1) == ["bb"]  # an index into model.layers
    assert freeze(model, 0) == []
    # Two nested models with a layer of the same name: qualify it.
    inputs = keras.Input((6, 6, 2))
    twins = keras.Model(inputs, keras.layers.Add()(
        [_backbone("left")(inputs), _backbone("right")(inputs)]))
    with pytest.raises(ValueError, match=r"Several layers .* named 'conv2':"
                                         r" \['left/conv2', 'right/conv2'\]"):
        freeze(twins, "conv2")
    assert freeze(twins, "right/conv2") == ["left", "right/conv1",
                                            "right/bn1"]


def test_nested_groups_move_with_their_own_rates():
    # As _branches, with g0 and g1 inside a nested model.
    inner_in = keras.Input((1,))
    inner = keras.Model(inner_in, keras.layers.Add(name="inner_sum")([
        keras.layers.Dense(1, use_bias=False, kernel_initializer="zeros",
                           name=f"g{i}")(inner_in) for i in range(2)]),
        name="bb")
    inputs = keras.Input((1,))
    g2 = keras.layers.Dense(1, use_bias=False, kernel_initializer="zeros",
                            name="g2")
    model = keras.Model(inputs, keras.layers.Add(name="sum")(
        [inner(inputs), g2(inputs)]))
    assert [[layer.name for layer in g]
            for g in train.layer_groups(model, 3)] == [["g0"], ["g1"], ["g2"]]
    assert [[layer.name for layer in g] for g in train.layer_groups(
        model, ["bb/g1"])] == [["g0"], ["g1", "g2"]]
    model.compile(discriminative_optimizer(model, slice(1e-3, 1e-1),
                                           keras.optimizers.SGD(), groups=3),
                  _loss)
    model.fit(*DATA, batch_size=2, epochs=1, verbose=0)  # 4 steps
    kernels = [float(_np(inner.get_layer("g0").kernel)[0, 0]),
               float(_np(inner.get_layer("g1").kernel)[0, 0]),
               float(_np(g2.kernel)[0, 0])]
    np.testing.assert_allclose(kernels, [-4e-3, -4e-2, -4e-1], rtol=1e-5)


def test_weights_sharing_a_path_in_two_groups_are_refused():
    inner_x = keras.layers.Dense(1, name="x")
    inner_x.build((None, 1))  # built alone: its path is "x/kernel"
    backbone = keras.Sequential([keras.Input((1,)),
                                 keras.layers.Dense(1, name="a"), inner_x],
                                name="bb")
    inputs = keras.Input((1,))
    model = keras.Model(inputs, keras.layers.Dense(1, name="x")(
        backbone(inputs)))
    model.compile(keras.optimizers.SGD(), "mse")
    with pytest.raises(ValueError, match="have the path 'x/kernel'"):
        discriminative_optimizer(model, 1e-3, groups=3)
    weights = [_np(w) for w in model.weights]
    with pytest.raises(ValueError, match="have the path 'x/kernel'"):
        fine_tune(model, (np.ones((4, 1)), np.ones(4)), verbose=0)
    assert all(np.array_equal(a, _np(b))
               for a, b in zip(weights, model.weights))
    # One group holds both "x" layers: one optimizer, nothing to tell apart.
    assert len(discriminative_optimizer(model, 1e-3, groups=1).optimizers) \
        == 1


class _Counts(keras.callbacks.Callback):
    fits = 0

    def on_train_begin(self, logs=None):
        _Counts.fits += 1


@pytest.mark.parametrize("kwargs, error, needle", [
    ({"groups": 6}, ValueError, r"`groups` must be an integer >= 1 and "
                                r"<= 5.*4 in the body and 1 in the head"),
    ({"groups": ["bb/nope"]}, ValueError, "Unknown group start"),
    ({"upto": "nope"}, ValueError, "no layer named 'nope'"),
    ({"upto": 3, "train_bn": False}, ValueError, "no weights to train"),
    ({"data": (XN[:, :5], YN)}, ValueError,
     r"takes inputs of shape \(None, 6, 6, 2\); `data` has shape "
     r"\(16, 5, 6, 2\)"),
    ({"validation_data": (XN[:, :, :, :1], YN)}, ValueError,
     r"`validation_data\[0\]` has shape"),
    ({"lr_max": 1e-3}, TypeError, "remove lr_max"),
    ({"moms": (0.95, 0.85)}, ValueError, "moms"),
    ({"div_final": 0}, ValueError, "div_final=0"),
    ({"callbacks": _Counts()}, TypeError, "Wrap it in a list"),
])
def test_fine_tune_checks_everything_before_training(kwargs, error, needle):
    model, backbone = _nested("sequential")
    model.compile(keras.optimizers.Adam(), "sparse_categorical_crossentropy")
    optimizer, weights = model.optimizer, [_np(w) for w in model.weights]
    kwargs = {"data": (XN, YN), **kwargs}
    fits = _Counts.fits
    with pytest.raises(error, match=needle):
        fine_tune(model, batch_size=8, verbose=0, **kwargs)
    assert _Counts.fits == fits
    assert model.optimizer is optimizer
    assert all(np.array_equal(a, _np(b))
               for a, b in zip(weights, model.weights))
    assert all(layer.trainable for layer in [*model.layers,
                                             *backbone.layers])


def test_fine_tune_refuses_a_rate_schedule_before_training():
    model, _ = _nested("sequential")
    schedule = keras.optimizers.schedules.ExponentialDecay(1e-3, 10, 0.9)
    model.compile(keras.optimizers.Adam(schedule),
                  "sparse_categorical_crossentropy")
    with pytest.raises(TypeError, match="learning-rate schedule"):
        fine_tune(model, (XN, YN), batch_size=8, verbose=0)
    assert all(layer.trainable for layer in model.layers)


def test_discriminative_rates_on_an_older_keras_raise_one_clear_error():
    from kerasdl import _versions
    from kerasdl.training import _rates

    with pytest.raises(_rates.KerasVersionError,
                       match=r"arrived in Keras 3\.15\.0; this is Keras "
                             r"3\.7\.0\. Upgrade"):
        _rates.keras_feature("MultiOptimizer", version="3.7.0")
    assert issubclass(_rates.KerasVersionError, RuntimeError)
    installed = _versions.version_tuple(keras.__version__)
    if installed >= (3, 15, 0):
        assert _rates.keras_feature("MultiOptimizer") is \
            keras.optimizers.MultiOptimizer
    else:
        with pytest.raises(_rates.KerasVersionError, match="3.15.0"):
            discriminative_optimizer(
                keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)]),
                1e-3, keras.optimizers.SGD())
