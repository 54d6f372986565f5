"""kerasdl.predict_files: files read as the loaders read them, one row per
file with the model's class names, by task; bad input refused."""

import importlib
import os

import keras
import numpy as np
import pytest
from PIL import Image

import kerasdl
from kerasdl.data import _decode

PREDICT = importlib.import_module("kerasdl.predict")

RED, BLUE = (230, 20, 20), (20, 20, 230)


def _colour_model(names=("red", "blue"), activation="softmax"):
    """Mean colour -> (red, blue) scores: red - blue and blue - red."""
    model = keras.Sequential([
        keras.Input((32, 32, 3)), keras.layers.GlobalAveragePooling2D(),
        keras.layers.Rescaling(1 / 64),
        keras.layers.Dense(2, activation=activation)])
    model.set_weights([np.array([[1.0, -1.0], [0, 0], [-1.0, 1.0]]),
                       np.zeros(2)])
    return kerasdl.with_class_names(model, list(names)) if names else model


@pytest.fixture()
def photos(tmp_path):
    """red.png, blue.png (40x48), a grayscale file, a hidden file, and a
    portrait photo stored sideways with EXIF orientation 6."""
    Image.new("RGB", (48, 40), RED).save(tmp_path / "red.png")
    Image.new("RGB", (48, 40), BLUE).save(tmp_path / "blue.png")
    Image.new("L", (36, 36), 90).save(tmp_path / "gray.png")
    (tmp_path / ".DS_Store").write_bytes(b"\0" * 10)
    # stored 64 wide x 32 high, left half red and right half blue; shown
    # turned by 90 degrees clockwise: red on top, blue below
    side = np.zeros((32, 64, 3), np.uint8)
    side[:, :32], side[:, 32:] = RED, BLUE
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(side).save(tmp_path / "turned.jpg", exif=exif,
                               quality=95)
    return tmp_path


def test_single_label_rows_match_the_model_on_decoded_files(photos):
    model = _colour_model()
    files = [str(photos / n) for n in ("red.png", "blue.png", "gray.png",
                                       "turned.jpg")]
    frame = kerasdl.predict_files(model, files, batch_size=3)
    assert list(frame.columns) == ["path", "label", "probability", "red",
                                   "blue"]
    assert frame["path"].tolist() == files
    x = np.stack([_decode.decode(f, (32, 32)) for f in files])
    expected = model.predict(x, verbose=0)
    np.testing.assert_allclose(frame[["red", "blue"]].to_numpy(), expected,
                               atol=1e-6)
    assert frame["label"].tolist()[:3] == ["red", "blue", "red"]
    np.testing.assert_allclose(frame["probability"],
                               expected.max(axis=1), atol=1e-6)
    # red minus blue of (230, 20, 20) over 64, as a softmax of two
    p = 1 / (1 + np.exp(-2 * 210 / 64))
    assert frame["probability"][0] == pytest.approx(p, abs=1e-5)
    assert frame.attrs["task"] == "single_label"
    assert frame.attrs["skipped"] == []


def test_exif_orientation_and_rgb_as_the_loaders(photos):
    """The sideways photo is read upright (red on top), resized to the
    model's 32x32, like ImageBatches reads it."""
    path = str(photos / "turned.jpg")
    image = _decode.decode(path, (32, 32))
    assert image[4, 16, 0] > 150 and image[28, 16, 2] > 150
    top_red = keras.Sequential([
        keras.Input((32, 32, 3)), keras.layers.Cropping2D(((0, 16), (0, 0))),
        keras.layers.GlobalAveragePooling2D(),
        keras.layers.Rescaling(1 / 64),
        keras.layers.Dense(2, activation="softmax")])
    top_red.set_weights([np.array([[1.0, -1.0], [0, 0], [-1.0, 1.0]]),
                         np.zeros(2)])
    top_red = kerasdl.with_class_names(top_red, ["red on top", "blue"])
    frame = kerasdl.predict_files(top_red, path)
    assert frame["label"][0] == "red on top"
    loader = kerasdl.image_files([path], image_size=(32, 32))
    np.testing.assert_array_equal(loader[0], image[None])


def test_folders_are_expanded_in_order_without_hidden_files(photos):
    frame = kerasdl.predict_files(_colour_model(),
                                  [str(photos), str(photos / "red.png")])
    names = [os.path.basename(p) for p in frame["path"]]
    assert names == ["blue.png", "gray.png", "red.png", "turned.jpg",
                     "red.png"]


def test_multi_label_and_threshold(photos):
    model = _colour_model(activation="sigmoid")
    assert PREDICT.model_task(model) == "multi_label"
    frame = kerasdl.predict_files(model, [str(photos / "red.png"),
                                          str(photos / "gray.png")])
    assert list(frame.columns) == ["path", "label", "red", "blue"]
    assert frame["label"].tolist() == ["red", ""]  # gray: both at 0.5
    low = kerasdl.predict_files(model, str(photos / "gray.png"),
                                threshold=0.4)
    assert low["label"][0] == "red;blue"


def test_regression_values_named_or_numbered(photos):
    plain = _colour_model(names=None, activation=None)
    assert PREDICT.model_task(plain) == "regression"
    frame = kerasdl.predict_files(plain, str(photos / "red.png"))
    assert list(frame.columns) == ["path", "value_0", "value_1"]
    assert frame["value_0"][0] == pytest.approx(210 / 64, abs=1e-4)
    named = kerasdl.with_class_names(plain, ["x", "label"])
    frame = kerasdl.predict_files(named, str(photos / "red.png"))
    assert list(frame.columns) == ["path", "x", "label_prob"]


def test_tta_matches_kerasdl_tta(photos):
    model = _colour_model()
    files = [str(photos / "turned.jpg"), str(photos / "red.png")]
    frame = kerasdl.predict_files(model, files, tta=True)
    x = np.stack([_decode.decode(f, (32, 32)) for f in files])
    np.testing.assert_allclose(frame[["red", "blue"]].to_numpy(),
                               kerasdl.tta(model, x), atol=1e-6)
    custom = kerasdl.predict_files(model, files,
                                   tta={"beta": 0.0})
    np.testing.assert_allclose(custom[["red", "blue"]].to_numpy(),
                               model.predict(x, verbose=0), atol=1e-6)


def test_saved_model_keeps_its_names(photos, tmp_path):
    path = str(tmp_path / "m.keras")
    _colour_model().save(path)
    model = keras.saving.load_model(path, safe_mode=True)
    frame = kerasdl.predict_files(model, str(photos / "blue.png"))
    assert frame["label"][0] == "blue"


def test_task_read_through_heads_and_nested_models():
    with keras.StatelessScope(initialize_variables=False):  # graphs only
        backbone = keras.Sequential([keras.Input((32, 32, 3)),
                                     keras.layers.Conv2D(4, 3)], name="tiny")
        model = kerasdl.with_class_names(kerasdl.vision_model(backbone, 3),
                                         ["a", "b", "c"])
        multi = kerasdl.vision_model(backbone, 2, multi_label=True)
        points = kerasdl.vision_model(backbone, 2, y_range=(-1, 1))
        nested = keras.Sequential([keras.Input((32, 32, 3)),
                                   kerasdl.conv_bn((32, 32, 3), 2)])
        softmax = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2),
                                    keras.layers.Softmax()])
        inp = keras.Input((3,))
        hidden = keras.layers.Dense(4, activation="softmax")(inp)
        branch = keras.layers.Dense(2, activation="sigmoid")(
            keras.layers.Concatenate()([hidden, inp]))
        functional = kerasdl.with_class_names(keras.Model(inp, branch),
                                              ["x", "y"])
    assert PREDICT.model_task(functional) == "multi_label"
    assert PREDICT.model_task(model) == "single_label"
    assert PREDICT.model_task(multi) == "multi_label"
    assert PREDICT.model_task(points) == "regression"
    assert PREDICT.model_task(nested) == "single_label"
    assert PREDICT.model_task(softmax) == "single_label"


def test_model_without_class_names_says_how_to_add_them(photos):
    with pytest.raises(ValueError, match=r"kerasdl\.with_class_names"):
        kerasdl.predict_files(_colour_model(names=None),
                              str(photos / "red.png"))


def test_non_image_file_named_or_skipped(photos):
    notes = photos / "notes.txt"
    notes.write_text("not an image")
    files = [str(photos / "red.png"), str(notes)]
    with pytest.raises(ValueError, match="notes.txt.*not an image"):
        kerasdl.predict_files(_colour_model(), files)
    frame = kerasdl.predict_files(_colour_model(), files, on_error="skip")
    assert frame["path"].tolist() == files[:1]
    assert frame.attrs["skipped"] == [(str(notes), "not an image file "
                                       "Pillow can read")]
    with pytest.raises(ValueError, match="None of the 1 file"):
        kerasdl.predict_files(_colour_model(), [str(notes)],
                              on_error="skip")


@pytest.mark.parametrize("kwargs,error,needle", [
    ({"paths": "/nonexistent/x.png"}, ValueError, "No such file or folder"),
    ({"paths": []}, ValueError, "`paths` is empty"),
    ({"paths": [3]}, TypeError, "file or folder paths"),
    ({"batch_size": 0}, ValueError, "`batch_size` must be"),
    ({"threshold": 1.0}, ValueError, "`threshold` must be"),
    ({"tta": "yes"}, TypeError, "`tta` must be True, False or a dict"),
    ({"tta": {"beta": 0.5, "n_views": 2}}, ValueError, "Unknown tta"),
    ({"image_size": (16, 16)}, ValueError, "must fit the model's input"),
    ({"on_error": "ignore"}, ValueError, "`on_error` must be one of"),
])
def test_bad_arguments(photos, kwargs, error, needle):
    kwargs.setdefault("paths", str(photos / "red.png"))
    with pytest.raises(error, match=needle):
        kerasdl.predict_files(_colour_model(), **kwargs)


def test_models_that_do_not_take_images(tmp_path):
    flat = kerasdl.with_class_names(
        keras.Sequential([keras.Input((4,)), keras.layers.Dense(
            2, activation="softmax")]), ["a", "b"])
    with pytest.raises(ValueError, match=r"shape \(height, width, 3\)"):
        kerasdl.predict_files(flat, str(tmp_path))
    any_size = kerasdl.with_class_names(keras.Sequential([
        keras.Input((None, None, 3)), keras.layers.GlobalAveragePooling2D(),
        keras.layers.Dense(2, activation="softmax")]), ["a", "b"])
    with pytest.raises(ValueError, match="pass image_size"):
        kerasdl.predict_files(any_size, str(tmp_path))
