"""Model builders: parameter counts from REFERENCE.md, exactly."""

import keras
import numpy as np
import pytest

from kerasdl import models
from kerasdl.models import param_counts


@pytest.fixture(scope="module")
def vgg():
    return models.vgg16()


def test_vgg16_counts(vgg):
    assert param_counts(vgg) == (138_357_544, 138_357_544, 0)
    conv = models.conv_base(vgg, "block5_conv3")
    assert param_counts(conv)[0] == 14_714_688
    assert conv.output_shape == (None, 14, 14, 512)


def test_vgg16_two_class_head_frozen(vgg):
    ft = models.replace_head(vgg, 2, freeze=True)
    assert param_counts(ft) == (134_268_738, 8_194, 134_260_544)
    assert ft.output_shape == (None, 2)
    assert [w.name for w in ft.trainable_weights] == ["kernel", "bias"]


def test_vgg16_bn_counts():
    model = models.vgg16_bn()
    assert param_counts(model) == (138_390_312, 138_373_928, 16_384)
    names = [layer.name for layer in model.layers]
    # BN sits between each 4096 Dense and its Dropout.
    for fc in ("fc1", "fc2"):
        i = names.index(fc)
        assert names[i + 1:i + 3] == [f"{fc}_bn", f"{fc}_dropout"]


def test_linear_bn_counts():
    assert param_counts(models.linear_bn((224, 224, 3), 10)) == (
        1_505_302, 1_505_296, 6)


def test_conv_bn_counts():
    total, trainable, non_trainable = param_counts(
        models.conv_bn((224, 224, 3), 10))
    assert trainable == 7_395_000
    assert non_trainable == 2 * (3 + 32 + 64 + 200)
    assert total == trainable + non_trainable


def test_dense_bn_head_counts():
    head = models.dense_bn_head((14, 14, 512), 10, p=0.8, units=128)
    assert param_counts(head) == (3_229_706 + 512, 3_229_706, 512)
    rates = [layer.rate for layer in head.layers
             if isinstance(layer, keras.layers.Dropout)]
    assert rates == pytest.approx([0.4, 0.4, 0.8])


def test_deeper_conv_bn_trains_and_predicts():
    model = models.deeper_conv_bn((16, 16, 3), 3, filters=(4, 8), units=8)
    x = np.random.default_rng(0).uniform(0, 255, (8, 16, 16, 3))
    out = model.predict(x.astype("float32"), verbose=0)
    assert out.shape == (8, 3)
    np.testing.assert_allclose(out.sum(axis=1), 1, rtol=1e-5)


def test_split_at_last_conv():
    body, head = models.split_at(models.conv_bn((32, 32, 3), 10),
                                 keras.layers.Conv2D)
    assert body[-1].name == "conv2"
    assert [layer.name for layer in head][:2] == ["bn2", "pool2"]
    with pytest.raises(ValueError, match="no layer of type 'LSTM'"):
        models.split_at(models.linear_bn((8, 8, 3), 2), "LSTM")


def test_conv_base_unknown_layer():
    with pytest.raises(ValueError, match="no layer named 'block9_conv1'"):
        models.conv_base(models.linear_bn((8, 8, 3), 2), "block9_conv1")


@pytest.mark.parametrize("builder", [models.linear_bn, models.conv_bn,
                                     models.vgg16, models.dense_bn_head])
def test_bad_class_count(builder):
    with pytest.raises(ValueError, match=r"n_classes.*>= 2.*n_classes=1"):
        builder((32, 32, 3), 1)


@pytest.mark.parametrize("shape", [(224, 224), (0, 224, 3), "224",
                                   (224.0, 224, 3)])
def test_bad_input_shape(shape):
    with pytest.raises((ValueError, TypeError), match="input_shape"):
        models.linear_bn(shape, 10)


def test_vgg_rejects_non_rgb_and_tiny_inputs():
    with pytest.raises(ValueError, match="3 channels"):
        models.vgg16((64, 64, 1), 10)
    with pytest.raises(ValueError, match="at least 32x32"):
        models.vgg16((16, 16, 3), 10)


def test_param_counts_needs_built_model():
    model = keras.Sequential([keras.layers.Dense(3)])
    with pytest.raises(ValueError, match="not built"):
        param_counts(model)


def test_conv_bn_dropout_and_bn_momentum_keep_the_counts():
    plain = models.conv_bn((224, 224, 3), 10)
    dropped = models.conv_bn((224, 224, 3), 10, dropout=0.25)
    assert param_counts(dropped) == param_counts(plain)
    assert param_counts(plain)[1] == 7_395_000
    names = [layer.name for layer in dropped.layers]
    assert names.index("dropout_fc") == names.index("fc") - 1
    assert names.index("dropout_predictions") == \
        names.index("predictions") - 1
    assert not any("dropout" in layer.name for layer in plain.layers)
    bns = [layer for layer in plain.layers
           if isinstance(layer, keras.layers.BatchNormalization)]
    assert bns and all(layer.momentum == 0.9 for layer in bns)
    slow = models.conv_bn((32, 32, 3), 2, bn_momentum=0.99)
    assert slow.get_layer("bn_input").momentum == 0.99
    with pytest.raises(ValueError, match="dropout"):
        models.conv_bn((32, 32, 3), 2, dropout=1.0)
    with pytest.raises(ValueError, match="bn_momentum"):
        models.conv_bn((32, 32, 3), 2, bn_momentum=1.0)


@pytest.mark.parametrize("builder,shape,kwargs", [
    (models.linear_bn, (224, 224, 3), {}),
    (models.conv_bn, (224, 224, 3), {}),
    (models.deeper_conv_bn, (32, 32, 3), {"filters": (4, 8), "units": 8}),
    (models.dense_bn_head, (14, 14, 512), {}),
])
def test_multi_label_and_y_range_keep_the_counts(builder, shape, kwargs):
    plain = builder(shape, 10, **kwargs)
    multi = builder(shape, 10, multi_label=True, **kwargs)
    ranged = builder(shape, 10, y_range=(-1, 1), **kwargs)
    assert param_counts(multi) == param_counts(ranged) == param_counts(plain)
    assert plain.layers[-1].activation is keras.activations.softmax
    assert multi.layers[-1].activation is keras.activations.sigmoid
    assert [layer.name for layer in ranged.layers][-2:] == [
        "logits", "predictions"]
    last = ranged.layers[-1]
    assert type(last).__name__ == "ScaledSigmoid"
    assert (last.low, last.high) == (-1.0, 1.0)
    assert ranged.get_layer("logits").activation is \
        keras.activations.linear


def test_output_activations_in_numbers():
    keras.utils.set_random_seed(0)
    x = np.random.default_rng(0).uniform(0, 1, (16, 8, 8, 3)).astype(
        "float32")
    multi = models.linear_bn((8, 8, 3), 3, multi_label=True)
    p = multi.predict(x, verbose=0)
    assert ((p > 0) & (p < 1)).all()
    assert np.abs(p.sum(axis=1) - 1).max() > 0.05  # not a softmax
    one = models.linear_bn((8, 8, 3), 1, y_range=(2.0, 3.0))
    out = one.predict(x, verbose=0)
    assert out.shape == (16, 1) and (out >= 2).all() and (out <= 3).all()
    logits = keras.Model(one.inputs, one.get_layer("logits").output)
    z = logits.predict(x, verbose=0)
    np.testing.assert_allclose(out, 2 + 1 / (1 + np.exp(-z)), atol=1e-5)


def test_y_range_model_saves_and_loads_safely(tmp_path):
    model = models.conv_bn((32, 32, 3), 2, units=8, y_range=(-1, 1))
    path = tmp_path / "points.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    x = np.random.default_rng(1).uniform(0, 255, (2, 32, 32, 3)).astype(
        "float32")
    np.testing.assert_allclose(loaded.predict(x, verbose=0),
                               model.predict(x, verbose=0), atol=1e-5)
    assert loaded.layers[-1].get_config()["low"] == -1.0


def test_output_argument_errors():
    # one label or one output is fine; a softmax needs two classes
    assert models.conv_bn((32, 32, 3), 1, multi_label=True).output_shape \
        == (None, 1)
    assert models.dense_bn_head((4, 4, 8), 1, y_range=(0, 5)).output_shape \
        == (None, 1)
    with pytest.raises(ValueError, match=r"n_classes.*>= 2"):
        models.conv_bn((32, 32, 3), 1)
    with pytest.raises(ValueError, match=r"`n_classes` must be an integer "
                                         r">= 1.*n_classes=0"):
        models.linear_bn((8, 8, 3), 0, y_range=(0, 1))
    with pytest.raises(ValueError, match="either multi_label.*or y_range"):
        models.linear_bn((8, 8, 3), 2, multi_label=True, y_range=(0, 1))
    with pytest.raises(ValueError, match=r"high > low.*y_range=\(1, 1\)"):
        models.conv_bn((32, 32, 3), 2, y_range=(1, 1))
    with pytest.raises(ValueError, match="finite"):
        models.linear_bn((8, 8, 3), 2, y_range=(0, float("inf")))
    with pytest.raises(TypeError, match=r"pair of numbers.*y_range=5"):
        models.deeper_conv_bn((32, 32, 3), 2, y_range=5)
    with pytest.raises(TypeError, match="multi_label.*True or False"):
        models.dense_bn_head((4, 4, 8), 2, multi_label="yes")
