"""vision_model: a backbone nested as one layer, pooling, fastai's head and
the output; its body/head split as freeze, layer_groups and fine_tune see
it, before and after a safe_mode reload."""

import keras
import numpy as np
import pytest

from kerasdl.models.vision import vision_model
from kerasdl.training.fit import fine_tune
from kerasdl.training.groups import body_and_head
from kerasdl.training.groups import freeze
from kerasdl.training.groups import layer_groups

X = np.random.RandomState(0).rand(8, 12, 12, 3).astype("float32")


def _backbone(name="tiny"):
    keras.utils.set_random_seed(0)
    return keras.Sequential([
        keras.Input((12, 12, 3)),
        keras.layers.Conv2D(4, 3, name="conv1"),
        keras.layers.BatchNormalization(name="bn1"),
        keras.layers.Conv2D(6, 3, activation="relu", name="conv2"),
        keras.layers.BatchNormalization(name="bn2")], name=name)


@pytest.fixture(scope="module")
def tiny():
    """One backbone for the tests that only read it."""
    return _backbone()


def _names(layers):
    return [layer.name for layer in layers]


def _np(x):
    return np.array(keras.ops.convert_to_numpy(x))  # a copy


def test_default_model_layers_split_and_groups():
    backbone = _backbone()
    model = vision_model(backbone, 5, units=16)
    assert _names(model.layers) == [
        "image", "tiny", "head_pool", "head_bn1", "head_dropout1",
        "head_fc1", "head_bn2", "head_dropout2", "head_logits",
        "head_softmax"]
    assert model.get_layer("tiny") is backbone  # nested, not copied
    body, head = body_and_head(model)
    assert _names(body) == ["tiny"] and head[0].name == "head_pool"
    assert [_names(g) for g in layer_groups(model)] == [
        ["conv1", "bn1"], ["conv2", "bn2"],
        ["head_bn1", "head_fc1", "head_bn2", "head_logits"]]
    # head: BN(6) 24 + Dense(6->16) 112 + BN(16) 64 + Dense(16->5) 85.
    head_params = sum(layer.count_params() for layer in head)
    assert head_params == 24 + 112 + 64 + 85
    probs = _np(model(X))
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)
    assert freeze(model) == ["tiny"]
    assert not backbone.get_layer("conv1").trainable
    assert backbone.get_layer("bn1").trainable  # train_bn


def test_pooling_heads_and_outputs():
    backbone = _backbone()
    features = _np(backbone(X))  # (8, 8, 8, 6)
    model = vision_model(backbone, 3, pooling="concat", head="linear",
                         multi_label=True)
    pooled = keras.Model(model.inputs,
                         model.get_layer("head_concat_pool").output)
    np.testing.assert_allclose(
        _np(pooled(X)),
        np.concatenate([features.mean(axis=(1, 2)),
                        features.max(axis=(1, 2))], axis=1), rtol=1e-5,
        atol=1e-6)
    assert _names(model.layers)[-3:] == ["head_dropout", "head_logits",
                                         "head_sigmoid"]
    assert model.get_layer("head_logits").kernel.shape == (12, 3)
    # Sigmoid per label: each in (0, 1), not summing to 1.
    probs = _np(model(X))
    logits = keras.Model(model.inputs, model.get_layer("head_logits").output)
    np.testing.assert_allclose(probs, 1 / (1 + np.exp(-_np(logits(X)))),
                               rtol=1e-5)
    maxed = vision_model(backbone, 2, pooling="max", head="linear")
    pooled = keras.Model(maxed.inputs, maxed.get_layer("head_pool").output)
    np.testing.assert_allclose(_np(pooled(X)), features.max(axis=(1, 2)),
                               rtol=1e-6)


def test_y_range_regression_output():
    model = vision_model(_backbone(), 2, y_range=(1.0, 5.0), head="linear")
    logits = keras.Model(model.inputs, model.get_layer("head_logits").output)
    z = _np(logits(X))
    out = _np(model(X))
    assert out.shape == (8, 2) and model.output.dtype == "float32"
    np.testing.assert_allclose(out, 1 + 4 / (1 + np.exp(-z)), rtol=1e-5)
    one = vision_model(_backbone(), 1, y_range=(0, 1))  # one output is fine
    assert one.output_shape == (None, 1)


def test_backbone_that_outputs_vectors_and_flat_functional():
    inputs = keras.Input((12, 12, 3))
    x = keras.layers.Conv2D(4, 3, name="c")(inputs)
    x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    flat = keras.Model(inputs, x, name="flat")
    with pytest.raises(ValueError, match="already outputs one vector.*"
                                         "pooling=None"):
        vision_model(flat, 3)
    model = vision_model(flat, 3, pooling=None, head="linear")
    assert _names(model.layers) == ["image", "flat", "head_dropout",
                                    "head_logits", "head_softmax"]
    assert _names(body_and_head(model)[0]) == ["flat"]
    with pytest.raises(ValueError, match=r"pooling=None needs .* outputs "
                                         r"shape \(None, 10, 10, 4\)"):
        vision_model(keras.Model(inputs, keras.layers.Conv2D(4, 3)(inputs)),
                     3, pooling=None)


def test_subclassed_backbone_needs_input_shape():
    class Net(keras.Model):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.conv = keras.layers.Conv2D(4, 3, name="conv")
            self.bn = keras.layers.BatchNormalization(name="bn")

        def call(self, x, training=None):
            return self.bn(self.conv(x), training=training)

    with pytest.raises(ValueError, match="no known input shape.*"
                                         "input_shape="):
        vision_model(Net(name="net"), 3)
    model = vision_model(Net(name="net"), 3, input_shape=(12, 12, 3))
    assert model.output_shape == (None, 3)
    assert [_names(g) for g in layer_groups(model, 2)][0] == ["conv", "bn"]


def test_input_shape_and_dtype_follow_the_backbone():
    inputs = keras.Input((None, None, 3), dtype="float32")
    backbone = keras.Model(inputs, keras.layers.Conv2D(2, 3)(inputs),
                           name="any_size")
    assert vision_model(backbone, 2).input_shape == (None, None, None, 3)
    fixed = vision_model(backbone, 2, input_shape=(20, 20, 3))
    assert fixed.input_shape == (None, 20, 20, 3)
    with pytest.raises(ValueError, match=r"must fit the backbone's input "
                                         r"\(None, None, None, 3\)"):
        vision_model(backbone, 2, input_shape=(20, 20, 1))


@pytest.mark.parametrize("kwargs, error, needle", [
    ({"head": "mlp"}, ValueError, "`head` must be one of 'dense_bn', "
                                  "'linear'. Received: head='mlp'"),
    ({"pooling": "mean"}, ValueError, "pooling='mean'"),
    ({"p": 1.0}, ValueError, r"`p` must be a finite number >= 0 and < 1"),
    ({"n_classes": 1}, ValueError, "multi_label=True"),
    ({"n_classes": 2.0}, TypeError, "n_classes=2.0"),
    ({"multi_label": 1}, TypeError, "multi_label=1"),
    ({"multi_label": True, "y_range": (0, 1)}, ValueError, "not both"),
    ({"y_range": (5, 1)}, ValueError, "high > low"),
    ({"y_range": 5}, TypeError, "pair"),
    ({"y_range": (0, float("inf"))}, ValueError, r"`y_range\[1\]` must be "
                                                 r"a finite number"),
    ({"units": 0}, ValueError, "units=0"),
    ({"input_shape": 12}, TypeError, "input_shape=12"),
])
def test_bad_arguments(tiny, kwargs, error, needle):
    kwargs = {"n_classes": 3, **kwargs}
    with pytest.raises(error, match=needle):
        vision_model(tiny, **kwargs)


def test_backbone_must_be_a_model():
    with pytest.raises(TypeError, match="`backbone` must be a keras.Model"):
        vision_model(keras.layers.Dense(3), 3)


def test_saved_model_reloads_safely_with_the_same_split(tmp_path):
    model = vision_model(_backbone(), 4, pooling="concat", units=8,
                         y_range=(0.0, 5.5))
    rng = np.random.RandomState(1)  # moving statistics away from 0 and 1
    for var in model.weights:
        if var.path.endswith(("moving_mean", "moving_variance")):
            var.assign(rng.rand(*var.shape).astype("float32") + 0.5)
    path = tmp_path / "vision.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    expected = _np(model(X, training=False))
    assert expected.std() > 1e-3
    np.testing.assert_array_equal(_np(loaded(X, training=False)), expected)
    assert _names(body_and_head(loaded)[0]) == ["tiny"]
    assert [_names(g) for g in layer_groups(loaded)] == \
        [_names(g) for g in layer_groups(model)]
    assert freeze(loaded) == ["tiny"]


def test_fine_tune_freezes_the_backbone_then_spreads_rates():
    backbone = _backbone()
    model = vision_model(backbone, 3, units=8)
    model.compile(keras.optimizers.Adam(), "sparse_categorical_crossentropy")
    conv = backbone.get_layer("conv1").kernel
    logits = model.get_layer("head_logits").kernel

    before = {"conv": _np(conv), "logits": _np(logits)}

    class AfterFrozen(keras.callbacks.Callback):
        seen = {}

        def on_train_end(self, logs=None):
            if not self.seen:
                self.seen.update(conv=_np(conv), logits=_np(logits))

    y = np.arange(8) % 3
    first, second = fine_tune(model, (X, y), epochs=1, base_lr=2e-2,
                              batch_size=4, verbose=0,
                              callbacks=[AfterFrozen()])
    np.testing.assert_array_equal(AfterFrozen.seen["conv"], before["conv"])
    assert not np.allclose(AfterFrozen.seen["logits"], before["logits"])
    assert not np.allclose(_np(conv), before["conv"])
    rates = [float(_np(o.learning_rate)) for o in model.optimizer.optimizers]
    np.testing.assert_allclose(rates, [1e-4, 1e-3, 1e-2], rtol=1e-5)
    assert len(first.history["loss"]) == len(second.history["loss"]) == 1
