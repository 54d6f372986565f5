"""The three photo layouts (folder pair or random split, CSV, file names)
on generated folders and on the real dogscats photos."""

import glob
import os

import numpy as np
import pandas as pd
import pytest
from PIL import Image

import kerasdl


def _img(path, value=0, size=(40, 36)):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    Image.new("RGB", size, (value, value, value)).save(path)


@pytest.fixture
def pair(tmp_path):
    """train/ and valid/ with classes a, b: 6 + 2 images each."""
    for part, n in (("train", 6), ("valid", 2)):
        for c, v in (("a", 10), ("b", 200)):
            for i in range(n):
                _img(tmp_path / part / c / f"{c}.{part}{i}.png", v)
    return tmp_path


def test_folder_pair(pair):
    train, valid = kerasdl.images_from_folder(pair, image_size=(32, 32),
                                              batch_size=4)
    assert train.class_names == valid.class_names == ["a", "b"]
    assert (train.n_images, valid.n_images) == (12, 4)
    assert train.shuffle and not valid.shuffle
    x, y = valid[0]
    assert x.shape == (4, 32, 32, 3) and y.tolist() == [0, 0, 1, 1]
    # pixels follow the labels: class a is dark, b light
    assert x[0].mean() < 50 and x[3].mean() > 150
    # the train order changes every epoch and depends only on the seed
    first = train._order.copy()
    train.on_epoch_end()
    assert not np.array_equal(first, train._order)
    again, _ = kerasdl.images_from_folder(pair, image_size=(32, 32))
    np.testing.assert_array_equal(again._order, first)


def test_random_split_of_class_folders(pair):
    train, valid = kerasdl.images_from_folder(pair, valid_pct=0.25, seed=3,
                                              image_size=(32, 32))
    # with valid_pct the class folders of root/train are split
    assert (train.n_images, valid.n_images) == (9, 3)
    assert not set(train.paths) & set(valid.paths)
    same, _ = kerasdl.images_from_folder(pair, valid_pct=0.25, seed=3,
                                         image_size=(32, 32))
    assert same.paths == train.paths
    other, _ = kerasdl.images_from_folder(pair, valid_pct=0.25, seed=4,
                                          image_size=(32, 32))
    assert other.paths != train.paths


def test_folder_layout_errors(pair, tmp_path):
    with pytest.raises(ValueError, match="valid_pct=0.2"):
        kerasdl.images_from_folder(pair / "train")
    with pytest.raises(ValueError, match="valid_pct"):
        kerasdl.images_from_folder(pair, valid_pct=1.0)
    with pytest.raises(ValueError, match="valid_pct"):
        kerasdl.images_from_folder(pair, valid_pct=0)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ValueError, match="no subfolders"):
        kerasdl.images_from_folder(empty)
    with pytest.raises(ValueError, match="Folder not found"):
        kerasdl.images_from_folder(tmp_path / "nope")
    _img(pair / "valid" / "c" / "x.png")
    with pytest.raises(ValueError, match="classes the training folder "
                                         "lacks: 'c'"):
        kerasdl.images_from_folder(pair)


def test_random_split_leaving_a_class_without_validation(tmp_path):
    for i in range(8):
        _img(tmp_path / "many" / f"{i}.png")
    _img(tmp_path / "rare" / "0.png")
    with pytest.raises(ValueError, match="validation set has no image of "
                                         "class.*'rare'"):
        kerasdl.images_from_folder(tmp_path, valid_pct=0.2, seed=0)


def test_csv_layout(pair, tmp_path):
    files = sorted(glob.glob(str(pair / "*" / "*" / "*.png")))
    table = pd.DataFrame({
        "name": [os.path.relpath(f, pair) for f in files],
        "label": [os.path.basename(os.path.dirname(f)) for f in files],
        "valid": ["/valid/" in f for f in files]})
    csv = tmp_path / "labels.csv"
    table.to_csv(csv, index=False)
    train, valid = kerasdl.images_from_csv(csv, pair, valid_col="valid",
                                           image_size=(32, 32))
    ref_t, ref_v = kerasdl.images_from_folder(pair, image_size=(32, 32))
    assert train.class_names == ref_t.class_names
    assert sorted(train.paths) == sorted(ref_t.paths)
    assert sorted(valid.paths) == sorted(ref_v.paths)
    # by column name, and a random split when there is no valid column
    t2, v2 = kerasdl.images_from_csv(table[["label", "name"]], pair,
                                     fn_col="name", label_col="label",
                                     valid_pct=0.25)
    assert (t2.n_images, v2.n_images) == (12, 4)


def test_csv_multi_label(pair):
    files = sorted(glob.glob(str(pair / "train" / "*" / "*.png")))
    tags = ["dog indoor", "cat", "cat indoor", "dog"] * 3
    table = pd.DataFrame({"f": [os.path.relpath(f, pair) for f in files],
                          "tags": tags, "v": [0, 1] * 6})
    train, valid = kerasdl.images_from_csv(table, pair, label_delim=" ",
                                           valid_col="v", image_size=(32, 32))
    assert train.class_names == ["cat", "dog", "indoor"]
    assert train.task == "multi_label" and train.num_classes == 3
    _, y = valid[0]
    # rows 1, 3, 5...: "cat", "dog", "cat", "dog"...
    np.testing.assert_array_equal(y[:2], [[1, 0, 0], [0, 1, 0]])


def test_csv_errors(pair):
    table = pd.DataFrame({"f": ["train/a/a.train0.png", "nope/1.png",
                                "nope/2.png"], "label": ["a", "b", "b"]})
    with pytest.raises(ValueError, match=r"2 of the 3 files.*'.*nope/1.png'"):
        kerasdl.images_from_csv(table, pair)
    with pytest.raises(ValueError, match=r"`label_col`='lbl' is not a "
                                         r"column.*\['f', 'label'\]"):
        kerasdl.images_from_csv(table, pair, label_col="lbl")
    with pytest.raises(ValueError, match="out of range"):
        kerasdl.images_from_csv(table, pair, fn_col=5)
    blank = pd.DataFrame({"f": ["train/a/a.train0.png"] * 2,
                          "label": ["a", ""]})
    with pytest.raises(ValueError, match="no label.*row"):
        kerasdl.images_from_csv(blank, pair)
    one = pd.DataFrame({"f": ["train/a/a.train0.png"] * 2,
                        "label": ["a", "a"]})
    with pytest.raises(ValueError, match="at least 2"):
        kerasdl.images_from_csv(one, pair)
    with pytest.raises(ValueError, match="CSV file not found"):
        kerasdl.images_from_csv(pair / "missing.csv", pair)


def test_names_layout(pair):
    train, valid = kerasdl.images_from_names(
        pair, pattern=r"^([ab])\.", valid_pct=0.25, image_size=(32, 32))
    assert train.class_names == ["a", "b"]
    assert train.n_images + valid.n_images == 16
    by_func, _ = kerasdl.images_from_names(
        sorted(glob.glob(str(pair / "*" / "*" / "*.png"))),
        label_func=lambda p: os.path.basename(p)[0], valid_pct=0.25)
    assert by_func.class_names == ["a", "b"]
    assert sorted(by_func.paths) == sorted(train.paths)


def test_names_errors(pair):
    with pytest.raises(ValueError, match="exactly one"):
        kerasdl.images_from_names(pair)
    with pytest.raises(ValueError, match="no label for any"):
        kerasdl.images_from_names(pair, pattern=r"^(zzz)")
    with pytest.raises(ValueError, match="needs at least 2"):
        kerasdl.images_from_names(pair, pattern=r"(png)$")
    _img(pair / "train" / "a" / "odd-name.png")
    with pytest.raises(ValueError, match="no label for 1 of the 17.*odd"):
        kerasdl.images_from_names(pair, pattern=r"^([ab])\.")
    train, _ = kerasdl.images_from_names(pair, pattern=r"^([ab])\.",
                                         on_error="skip")
    assert any("odd-name" in p for p, _ in train.report.ignored)
    with pytest.raises(ValueError, match="group"):
        kerasdl.images_from_names(pair, pattern=r"^[ab]\.")
    with pytest.raises(ValueError, match="valid_pct"):
        kerasdl.images_from_names(pair, pattern=r"^([ab])", valid_pct=-1)


def test_dogscats_three_layouts_agree(shared_data):
    root = shared_data("dogscats")
    train, valid = kerasdl.images_from_folder(root, image_size=(32, 32))
    assert train.class_names == ["cats", "dogs"]
    assert (train.n_images, valid.n_images) == (800, 200)
    assert np.bincount(valid.labels).tolist() == [100, 100]
    files = sorted(train.paths + valid.paths)
    table = pd.DataFrame({
        "file": [os.path.relpath(f, root) for f in files],
        "label": [os.path.basename(os.path.dirname(f)) for f in files],
        "is_valid": [os.sep + "valid" + os.sep in f for f in files]})
    t_csv, v_csv = kerasdl.images_from_csv(table, root, valid_col="is_valid",
                                           image_size=(32, 32))
    assert t_csv.class_names == train.class_names
    assert sorted(t_csv.paths) == sorted(train.paths)
    assert sorted(v_csv.paths) == sorted(valid.paths)
    t_names, v_names = kerasdl.images_from_names(
        files, label_func=lambda p: os.path.basename(p).split(".")[0] + "s",
        valid_pct=0.2, image_size=(32, 32))
    assert t_names.class_names == train.class_names
    assert sorted(t_names.paths + v_names.paths) == files
    assert v_names.n_images == 200
    by_pattern, _ = kerasdl.images_from_names(files, pattern=r"^(cat|dog)\.")
    assert by_pattern.class_names == ["cat", "dog"]
    x, y = train[0]
    assert x.shape == (32, 32, 32, 3) and x.dtype == np.uint8


@pytest.mark.one_backend
def test_own_photos_recipe_end_to_end(pair, tmp_path, capsys):
    import importlib.util
    import json

    import keras

    path = os.path.join(os.path.dirname(os.path.dirname(
        os.path.abspath(__file__))), "recipes", "own_photos.py")
    spec = importlib.util.spec_from_file_location("own_photos", path)
    recipe = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(recipe)
    saved = tmp_path / "m.keras"
    assert recipe.main([str(pair), "--size", "32", "--epochs", "1",
                        "--batch-size", "4", "--num-it", "30",
                        "--save", str(saved), "--json"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["classes"] == ["a", "b"]
    assert (result["train"], result["valid"]) == (12, 4)
    assert len(result["val_accuracy"]) == 1 and result["lr"] > 0
    model = keras.saving.load_model(saved, safe_mode=True)
    assert kerasdl.class_names(model) == ["a", "b"]
    with pytest.raises(SystemExit) as stop:
        recipe.main([str(pair / "train")])
    assert stop.value.code == 2
    assert "valid_pct" in capsys.readouterr().err


def test_csv_multi_label_empty_cells_and_validation_only_labels(pair):
    files = sorted(glob.glob(str(pair / "train" / "*" / "*.png")))[:6]
    names = [os.path.relpath(f, pair) for f in files]
    # an empty cell is an image with no label: an all-zero row
    table = pd.DataFrame({"f": names,
                          "tags": ["cat", "", "dog cat", None, "dog", "cat"],
                          "v": [0, 0, 0, 1, 1, 1]})
    train, valid = kerasdl.images_from_csv(table, pair, label_delim=" ",
                                           valid_col="v", image_size=(32, 32))
    assert train.class_names == ["cat", "dog"]
    np.testing.assert_array_equal(train.labels, [[1, 0], [0, 0], [1, 1]])
    np.testing.assert_array_equal(valid.labels, [[0, 0], [0, 1], [1, 0]])
    # a label seen only in validation rows cannot be learnt: refused
    table["tags"] = ["cat", "dog", "cat", "cat bird", "bird", "dog"]
    with pytest.raises(ValueError, match=r"'bird' appear only in validation "
                                         r"rows \('bird' in 2 of 3\).*"
                                         r"valid_pct, seed"):
        kerasdl.images_from_csv(table, pair, label_delim=" ", valid_col="v")
    # one seen only in training rows is allowed (just not measured)
    table["v"] = [1, 1, 1, 0, 0, 0]
    train, valid = kerasdl.images_from_csv(table, pair, label_delim=" ",
                                           valid_col="v")
    assert train.class_names == ["bird", "cat", "dog"]
    assert valid.labels[:, 0].sum() == 0


def test_augment_goes_to_the_training_batches_only(pair):
    layer = kerasdl.RandomAffine(horizontal_flip=True, rotation=10)
    train, valid = kerasdl.images_from_folder(pair, image_size=(32, 32),
                                              augment=layer)
    assert train.augment is layer and valid.augment is None
    assert train.task == valid.task == "single_label"
    x, y = train[0]
    assert x.dtype == np.uint8 and x.shape[1:] == (32, 32, 3)
    assert y.dtype == np.int32
