"""kerasdl.data.images: folder and file-list sources, conversion to RGB,
seeded shuffling and the raise / skip policies for bad files."""

import os

import numpy as np
import pytest
from PIL import Image

from kerasdl.data.images import ImageError
from kerasdl.data.images import image_files
from kerasdl.data.images import image_folder


def _save(path, color=(10, 20, 30), mode="RGB", size=(40, 34), fmt=None):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    img = Image.new("RGB", size, color)
    if mode != "RGB":
        img = img.convert(mode)
    img.save(path, format=fmt)
    return str(path)


@pytest.fixture
def folder(tmp_path):
    # class a: 3 images, class b: 2 images; pixel value encodes the file
    for i in range(3):
        _save(tmp_path / "a" / f"{i}.png", (i, 0, 0))
    for i in range(2):
        _save(tmp_path / "b" / f"{i}.jpg", (0, 200, 0))
    return tmp_path


def test_folder_classes_labels_and_uint8(folder):
    b = image_folder(folder, image_size=(4, 6), batch_size=2)
    assert b.class_names == ["a", "b"] and b.num_classes == 2
    assert len(b) == 3
    x, y = b[0]
    assert x.shape == (2, 4, 6, 3) and x.dtype == np.uint8
    assert y.tolist() == [0, 0] and y.dtype == np.int32
    assert b[2][0].shape == (1, 4, 6, 3)  # last batch is partial
    assert b[2][1].tolist() == [1]
    # png is lossless: the red channel tells which file it was
    assert x[0, 0, 0, 0] == 0 and x[1, 0, 0, 0] == 1
    xs, ys = b.to_arrays()
    assert xs.shape == (5, 4, 6, 3) and ys.tolist() == [0, 0, 0, 1, 1]
    assert abs(int(xs[4, 2, 3, 1]) - 200) <= 3  # jpeg, near 200


def test_resize_and_categorical(folder):
    b = image_folder(folder, image_size=(8, 3), batch_size=5,
                     label_mode="categorical")
    x, y = b[0]
    assert x.shape == (5, 8, 3, 3)
    np.testing.assert_array_equal(y, np.eye(2, dtype=np.float32)[
        [0, 0, 0, 1, 1]])


@pytest.mark.parametrize("mode", ["L", "P", "CMYK", "RGBA", "LA", "1"])
def test_modes_become_rgb(tmp_path, mode):
    fmt = {"CMYK": "JPEG"}.get(mode, "PNG")
    ext = ".jpg" if fmt == "JPEG" else ".png"
    path = _save(tmp_path / f"img{ext}", (255, 255, 255), mode=mode, fmt=fmt)
    b = image_files([path], [0], image_size=(4, 6), batch_size=1)
    x, _ = b[0]
    assert x.shape == (1, 4, 6, 3)
    assert np.all(x >= 250), x.min()  # white stays white in every mode


def test_transparent_pixels_become_white(tmp_path):
    img = Image.new("RGBA", (2, 1), (255, 0, 0, 0))
    img.putpixel((1, 0), (0, 0, 255, 255))
    img.save(tmp_path / "t.png")
    x = image_files([tmp_path / "t.png"], image_size=(1, 2), min_size=1)[0]
    assert x[0, 0, 0].tolist() == [255, 255, 255]
    assert x[0, 0, 1].tolist() == [0, 0, 255]


def test_seeded_shuffle(folder):
    def epoch_labels(b):
        return [int(v) for i in range(len(b)) for v in b[i][1]]

    def red(b):
        return [int(v) for i in range(len(b)) for v in b[i][0][:, 0, 0, 0]]

    b1 = image_folder(folder, image_size=(2, 2), batch_size=2, shuffle=True,
                      seed=3)
    b2 = image_folder(folder, image_size=(2, 2), batch_size=2, shuffle=True,
                      seed=3)
    first = b1._order.tolist()
    assert first == b2._order.tolist()
    assert sorted(first) == list(range(5))
    assert epoch_labels(b1) == epoch_labels(b2)
    assert red(b1) == red(b2)
    orders = {tuple(first)}
    for _ in range(6):
        b1.on_epoch_end()
        orders.add(tuple(b1._order.tolist()))
    assert len(orders) > 1  # a new order each epoch
    b3 = image_folder(folder, image_size=(2, 2), shuffle=True, seed=4)
    b4 = image_folder(folder, image_size=(2, 2), shuffle=False)
    assert b4._order.tolist() == [0, 1, 2, 3, 4]
    assert b3.seed == 4


def test_file_list_with_string_labels(folder):
    paths = [folder / "b" / "0.jpg", folder / "a" / "1.png"]
    b = image_files(paths, ["dog", "cat"], image_size=(2, 2))
    assert b.class_names == ["cat", "dog"]
    assert b[0][1].tolist() == [1, 0]
    with pytest.raises(ValueError, match="not in class_names"):
        image_files(paths, ["dog", "cow"], class_names=["cat", "dog"],
                    image_size=(2, 2))
    with pytest.raises(ValueError, match="one per file"):
        image_files(paths, [0], image_size=(2, 2))


def _corrupt_folder(tmp_path):
    (tmp_path / "a").mkdir()
    noise = np.random.default_rng(0).integers(0, 256, (48, 64, 3), np.uint8)
    Image.fromarray(noise).save(tmp_path / "a" / "good.jpg", quality=95)
    good = (tmp_path / "a" / "good.jpg").read_bytes()
    (tmp_path / "a" / "truncated.jpg").write_bytes(good[:len(good) * 2 // 3])
    (tmp_path / "b" / "notes.txt").parent.mkdir()
    (tmp_path / "b" / "notes.txt").write_text("not an image")
    _save(tmp_path / "b" / "fine.png", (1, 2, 3))
    return tmp_path


def test_bad_files_raise_naming_the_file(tmp_path):
    root = _corrupt_folder(tmp_path)
    with pytest.raises(ImageError, match="notes.txt"):
        image_folder(root, image_size=(8, 8))
    b = image_folder(root, image_size=(8, 8), extensions=(".jpg", ".png"))
    with pytest.raises(ImageError, match="truncated.jpg"):
        b[0]


def test_bad_files_skip_and_count(tmp_path):
    root = _corrupt_folder(tmp_path)
    b = image_folder(root, image_size=(8, 8), batch_size=4, on_error="skip")
    assert [os.path.basename(p) for p, _ in b.report.skipped] == [
        "notes.txt"]
    x, y = b[0]  # the truncated file is found while decoding
    assert x.shape == (2, 8, 8, 3) and y.tolist() == [0, 1]
    assert b.report.n_skipped == 2
    assert "truncated.jpg" in repr(b.report)
    b.on_epoch_end()
    assert len(b[0][0]) == 2  # left out from now on, not found again
    assert b.report.n_skipped == 2
    # scan() finds it before any batch is built
    b2 = image_folder(root, image_size=(8, 8), on_error="skip")
    assert b2.scan().n_skipped == 2
    assert b2.to_arrays()[0].shape == (2, 8, 8, 3)


def test_unreadable_path(tmp_path):
    _save(tmp_path / "x.png")
    missing = tmp_path / "gone.png"
    with pytest.raises(ImageError, match="gone.png"):
        image_files([tmp_path / "x.png", missing], [0, 0], image_size=(2, 2))
    b = image_files([tmp_path / "x.png", missing], [0, 0], image_size=(2, 2),
                    on_error="skip")
    assert b.report.n_skipped == 1 and len(b[0][0]) == 1
    if os.geteuid() != 0:  # root reads files regardless of permissions
        locked = _save(tmp_path / "locked.png")
        os.chmod(locked, 0)
        with pytest.raises(ImageError, match="locked.png"):
            image_files([locked], image_size=(2, 2))


def test_empty_class_folder(tmp_path):
    _save(tmp_path / "a" / "0.png")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="empty.*holds no image files"):
        image_folder(tmp_path, image_size=(2, 2))
    b = image_folder(tmp_path, image_size=(2, 2), on_error="skip")
    assert b.class_names == ["a", "empty"] and len(b.paths) == 1
    assert b.report.empty_classes == [str(tmp_path / "empty")]


def test_bad_arguments(tmp_path, folder):
    with pytest.raises(ValueError, match="not found"):
        image_folder(tmp_path / "nope")
    with pytest.raises(ValueError, match="on_error"):
        image_folder(folder, on_error="ignore")
    with pytest.raises(ValueError, match="image_size"):
        image_folder(folder, image_size=(0, 4))
    with pytest.raises(TypeError, match="batch_size"):
        image_folder(folder, batch_size=2.5)
    with pytest.raises(ValueError, match="No image files"):
        image_files([])


def test_fingerprint_changes_with_files(folder):
    before = image_folder(folder, image_size=(2, 2)).fingerprint()
    assert before == image_folder(folder, image_size=(2, 2)).fingerprint()
    assert before != image_folder(folder, image_size=(3, 2)).fingerprint()
    _save(folder / "a" / "0.png", (9, 9, 9), size=(41, 41))
    os.utime(folder / "a" / "0.png", ns=(1, 1))
    assert image_folder(folder, image_size=(2, 2)).fingerprint() != before


def test_trains_a_keras_model(folder):
    import keras

    b = image_folder(folder, image_size=(4, 4), batch_size=2, shuffle=True,
                     seed=0)
    model = keras.Sequential([keras.Input((4, 4, 3)),
                              keras.layers.Rescaling(1 / 255),
                              keras.layers.Flatten(),
                              keras.layers.Dense(2, activation="softmax")])
    model.compile("sgd", "sparse_categorical_crossentropy")
    history = model.fit(b, epochs=2, verbose=0)
    assert len(history.history["loss"]) == 2
    assert np.isfinite(history.history["loss"]).all()
    assert b.epoch >= 2  # on_epoch_end ran: a new order each epoch


def test_state_farm_folder(shared_data):
    root = shared_data("statefarm-80x60") / "train"
    b = image_folder(root, image_size=(60, 80), batch_size=64, shuffle=True,
                     seed=0)
    assert b.class_names == [f"c{i}" for i in range(10)]
    assert len(b.paths) == 22424
    x, y = b[0]
    assert x.shape == (64, 60, 80, 3) and x.dtype == np.uint8
    assert len(set(y.tolist())) > 3 and x.std() > 10


# Own photos and hostile folders: EXIF, hidden files, tiny images, special
# files, links, bombs, argument types.

def test_exif_orientation_is_applied(tmp_path):
    # A landscape 60x40 sensor image whose EXIF says "turn 90 degrees":
    # the photo is portrait; turning it clockwise puts the red right edge
    # at the bottom (without the turn, red would stay a column).
    img = Image.new("RGB", (60, 40), (0, 0, 255))
    img.paste((255, 0, 0), (50, 0, 60, 40))   # right edge red
    exif = Image.Exif()
    exif[0x0112] = 6   # rotate 270 (clockwise 90) to display
    img.save(tmp_path / "phone.jpg", exif=exif.tobytes(), quality=95)
    x = image_files([tmp_path / "phone.jpg"], image_size=(60, 40))[0]
    assert x.shape == (1, 60, 40, 3)
    top, bottom = x[0, :5].mean(axis=(0, 1)), x[0, -5:].mean(axis=(0, 1))
    assert bottom[0] > 200 and bottom[2] < 60   # red at the bottom
    assert top[2] > 200 and top[0] < 60


def test_hidden_and_system_files_are_left_out_and_reported(folder):
    (folder / "a" / ".DS_Store").write_bytes(b"\0\1junk")
    (folder / "a" / "Thumbs.db").write_bytes(b"junk")
    (folder / "b" / "desktop.ini").write_text("[x]")
    (folder / ".hidden_class").mkdir()
    (folder / "stray.txt").write_text("not in a class")
    b = image_folder(folder, image_size=(4, 4))
    assert b.class_names == ["a", "b"] and b.report.n_skipped == 0
    ignored = {os.path.basename(p) for p, _ in b.report.ignored}
    assert {".DS_Store", "Thumbs.db", "desktop.ini", ".hidden_class",
            "stray.txt"} <= ignored
    assert "Thumbs.db" in repr(b.report)


def test_tiny_images_follow_on_error(tmp_path):
    _save(tmp_path / "a" / "big.png")
    _save(tmp_path / "a" / "tiny.png", size=(10, 10))
    _save(tmp_path / "b" / "big.png")
    with pytest.raises(ImageError, match=r"tiny.png.*10x10.*min_size=32"):
        image_folder(tmp_path, image_size=(8, 8))
    b = image_folder(tmp_path, image_size=(8, 8), on_error="skip")
    assert [os.path.basename(p) for p, _ in b.report.skipped] == ["tiny.png"]
    assert image_folder(tmp_path, image_size=(8, 8), min_size=8).n_images == 3


def test_nested_folders_are_read(tmp_path):
    _save(tmp_path / "a" / "sub" / "deeper" / "0.png")
    _save(tmp_path / "b" / "0.png")
    b = image_folder(tmp_path, image_size=(4, 4))
    assert b.n_images == 2 and b.labels.tolist() == [0, 1]


def test_special_files_and_links_are_named(tmp_path):
    _save(tmp_path / "a" / "ok.png")
    _save(tmp_path / "b" / "ok.png")
    os.mkfifo(tmp_path / "a" / "pipe.jpg")               # would block
    os.symlink(tmp_path / "nowhere.png", tmp_path / "a" / "dangling.png")
    os.symlink(tmp_path / "b", tmp_path / "b" / "loop")  # a link loop
    with pytest.raises(ImageError, match="broken symbolic link"):
        image_folder(tmp_path, image_size=(4, 4))
    b = image_folder(tmp_path, image_size=(4, 4), on_error="skip")
    reasons = dict((os.path.basename(p), r) for p, r in b.report.skipped)
    assert "FIFO" in reasons["pipe.jpg"]
    assert "broken symbolic link" in reasons["dangling.png"]
    assert any("loop" in r for _, r in b.report.ignored)
    assert b.n_images == 2


def test_unreadable_folder_is_one_clear_error(tmp_path):
    if os.geteuid() == 0:
        pytest.skip("root reads folders regardless of permissions")
    _save(tmp_path / "a" / "0.png")
    os.chmod(tmp_path / "a", 0)
    try:
        with pytest.raises(ValueError, match="Cannot read the folder"):
            image_folder(tmp_path, image_size=(4, 4))
    finally:
        os.chmod(tmp_path / "a", 0o755)


def test_decompression_bomb_is_a_bad_file(tmp_path, monkeypatch):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)   # 200+ px: bomb
    _save(tmp_path / "a" / "bomb.png")
    _save(tmp_path / "b" / "bomb2.png")
    with pytest.raises(ImageError, match="bomb.png.*decompression bomb"):
        image_folder(tmp_path, image_size=(4, 4))
    with pytest.raises(ValueError, match="Every one of the 2"):
        image_folder(tmp_path, image_size=(4, 4), on_error="skip")


def test_argument_types(folder):
    # a string is one extension, not a set of letters
    b = image_folder(folder, image_size=(4, 4), extensions=".PNG",
                     on_error="skip")
    assert b.n_images == 3 and len(b.report.ignored) == 2
    assert b.report.empty_classes == [str(folder / "b")]
    with pytest.raises(TypeError, match="class_names.*list of strings"):
        image_folder(folder, class_names="ab")
    with pytest.raises(ValueError, match="threads"):
        image_folder(folder, threads=-1)
    with pytest.raises(ValueError, match=r"GiB.*smaller image_size"):
        image_folder(folder, image_size=(30000, 30000))
    with pytest.raises(ValueError, match="image_size"):
        image_folder(folder, image_size=(100000, 100000))
