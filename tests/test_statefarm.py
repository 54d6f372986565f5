"""The State Farm pipeline end to end on the real images (quick mode)."""

import gzip
import json
import os

import numpy as np
import pandas as pd
import pytest

from kerasdl import cli


@pytest.mark.one_backend
def test_statefarm_quick_writes_a_complete_report(shared_data, tmp_path,
                                                  capsys):
    data = shared_data("statefarm-80x60")
    out = tmp_path / "sf"
    # 30x40 (half the default size) keeps the whole pipeline at a quarter of
    # the work; every step still runs
    assert cli.main(["statefarm", "--data", str(data), "--out", str(out),
                     "--quick", "--size", "30x40", "--json"]) == 0
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    steps = [r["step"] for r in report["rows"]]
    assert steps[0] == "load" and steps[-1].startswith("clipped")
    assert any("pseudo-labels" in s for s in steps)
    assert any(s == "conv_bn + augmentation" for s in steps)
    # validation drivers are whole drivers absent from training
    table = pd.read_csv(data / "driver_imgs_list.csv")
    assert len(report["drivers"]["valid"]) == 5
    assert not set(report["drivers"]["valid"]) & set(
        report["drivers"]["train"])
    assert set(report["drivers"]["valid"]) | set(
        report["drivers"]["train"]) == set(table["subject"])
    for row in report["rows"]:
        if row["val_accuracy"] is not None:
            assert 0 <= row["val_accuracy"] <= 1
            assert row["val_log_loss"] > 0
    assert "trained from scratch" in report["base"]
    for name in ("lr_find.png", "curves.png", "confusion.png"):
        assert (out / name).read_bytes()[:4] == b"\x89PNG"
    assert json.loads((out / "report.json").read_text())["rows"] == \
        report["rows"]
    assert "| step |" in (out / "report.md").read_text()
    lines = gzip.open(out / "valid_predictions.csv.gz", "rt").readlines()
    assert lines[0].strip() == "img," + ",".join(f"c{i}" for i in range(10))
    assert len(lines) == 1 + 300
    probs = [float(v) for v in lines[1].strip().split(",")[1:]]
    assert min(probs) >= 0.07 / 9 - 1e-9 and max(probs) <= 0.93 + 1e-9


@pytest.mark.parametrize("args,needle", [
    (["--size", "60by80"], "--size must be HxW"),
    (["--weights", "w.h5"], "--weights goes with --base vgg16"),
    (["--val-drivers", "0"], "--val-drivers must be an integer >= 1"),
])
def test_statefarm_bad_arguments(args, needle, tmp_path, capsys):
    assert cli.main(["statefarm", "--data", str(tmp_path), *args]) == 2
    err = capsys.readouterr().err
    assert needle in err and err.count("\n") == 1


def test_statefarm_missing_data_is_one_line(tmp_path, capsys):
    assert cli.main(["statefarm", "--data", str(tmp_path / "nope"),
                     "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "driver_imgs_list.csv" in err and err.count("\n") == 1


def _tiny_statefarm(path, drivers=3, per_class=2):
    """A State Farm folder of small random images (36x48)."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    rows, k = ["subject,classname,img"], 0
    for d in range(drivers):
        for c in range(10):
            (path / "train" / f"c{c}").mkdir(parents=True, exist_ok=True)
            for _ in range(per_class):
                Image.fromarray(rng.integers(0, 255, (36, 48, 3), "uint8")
                                ).save(path / "train" / f"c{c}" / f"i{k}.jpg")
                rows.append(f"p{d},c{c},i{k}.jpg")
                k += 1
    (path / "driver_imgs_list.csv").write_text("\n".join(rows) + "\n")
    return path


def test_skip_bad_keeps_ids_and_images_aligned(tmp_path):
    from kerasdl.statefarm import Pipeline

    data = _tiny_statefarm(tmp_path / "sf")
    table = pd.read_csv(data / "driver_imgs_list.csv")
    held = Pipeline(data, tmp_path / "o", val_drivers=1, seed=0)
    held.load()
    lost = held.valid_ids[3]
    (data / "train" / table.set_index("img").loc[lost, "classname"] /
     lost).write_bytes(b"not an image")
    with pytest.raises(ValueError, match=lost):
        Pipeline(data, tmp_path / "o2", val_drivers=1, seed=0).load()
    assert not (tmp_path / "o2").exists()
    p = Pipeline(data, tmp_path / "o3", val_drivers=1, seed=0,
                 on_error="skip")
    p.load()
    assert [os.path.basename(f) for f in p.skipped] == [lost]
    assert p.valid_ids == [i for i in held.valid_ids if i != lost]
    assert len(p.xv) == len(p.yv) == len(p.valid_ids) == 19
    assert (p.xv == np.delete(held.xv, 3, axis=0)).all()
    assert "1 bad image(s) skipped" in p.rows[0]["note"]


def test_arguments_checked_before_any_image_is_read(tmp_path):
    from kerasdl.statefarm import Pipeline

    data = _tiny_statefarm(tmp_path / "sf", per_class=1)
    with pytest.raises(ValueError, match=r"`val_drivers` must be an "
                                         r"integer >= 1 and <= 2"):
        Pipeline(data, tmp_path / "o", val_drivers=3)
    with pytest.raises(ValueError, match="17x17"):
        Pipeline(data, tmp_path / "o", val_drivers=1, size=(16, 16)).check()
    (tmp_path / "file").write_text("x")
    with pytest.raises(ValueError, match="not an existing file"):
        Pipeline(data, tmp_path / "file", val_drivers=1)
    # 10 validation images: fewer than the pipeline needs on each side
    with pytest.raises(ValueError, match="validation drivers have 10 "
                                         "usable image"):
        Pipeline(data, tmp_path / "o", val_drivers=1, quick=True).load()
    assert not (tmp_path / "o").exists()


def test_report_json_is_valid_with_non_finite_numbers(tmp_path):
    from kerasdl.report import write_report

    rows = [{"step": "a", "val_accuracy": float("nan"), "seconds": 1.0}]
    md, path = write_report(str(tmp_path), "t", rows,
                            extra={"lr_find": {"valley": float("inf")}})
    record = json.loads(open(path).read(), parse_constant=_no_constant)
    assert record["rows"][0]["val_accuracy"] is None
    assert record["not_finite"] == ["rows[0].val_accuracy", "lr_find.valley"]
    assert sorted(os.listdir(tmp_path)) == ["report.json", "report.md"]


def _no_constant(name):
    raise AssertionError(f"invalid JSON constant {name}")


def test_base_accepts_every_backbone_name():
    from kerasdl.registry import BACKBONES

    parser = cli.build_parser()
    for name in ("scratch", *BACKBONES):
        args = parser.parse_args(["statefarm", "--data", "d", "--base",
                                  name])
        assert args.base == name
    assert len(BACKBONES) == 8 and "resnet50" in BACKBONES


def test_statefarm_base_mistakes_are_one_line(tmp_path, capsys):
    from kerasdl.statefarm import Pipeline

    data = _tiny_statefarm(tmp_path / "sf", per_class=1)
    with pytest.raises(SystemExit) as info:
        cli.main(["statefarm", "--data", str(data), "--base", "resnet5"])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "invalid choice: 'resnet5'" in err and "'convnext_tiny'" in err
    # the base is built (its weights never initialised) before any image
    # is read: 20x20 is enough for the scratch steps, not for ResNet50
    out = tmp_path / "o"
    assert cli.main(["statefarm", "--data", str(data), "--out", str(out),
                     "--base", "resnet50", "--size", "20x20",
                     "--val-drivers", "1"]) == 2
    assert capsys.readouterr().err == (
        "kerasdl statefarm: error: base 'resnet50' cannot be built at "
        "--size 20x20: ResNet50 needs images of at least 32x32 pixels. "
        "Received: input_shape=(20, 20, 3). Resize the images up.\n")
    assert not out.exists()
    # ConvNeXt's total stride of 32 leaves 1x2 features of 60x80 images,
    # too few for the dense head's 2x2 pooling
    with pytest.raises(ValueError, match=r"base 'convnext_tiny' at `size` "
                                         r"60x80 gives features of 1x2 at "
                                         r"layer_normalization; .* at least "
                                         r"2x2\. Pass a larger `size`"):
        Pipeline(data, out, base="convnext_tiny", val_drivers=1).check()
    with pytest.raises(ValueError, match="must be one of 'scratch', "
                                         "'vgg16', 'vgg16_bn', 'resnet50'"):
        Pipeline(data, out, base="resnet", val_drivers=1)
    with pytest.raises(ValueError, match="`weights` goes with a pretrained "
                                         "base such as base='vgg16'"):
        Pipeline(data, out, base="scratch", weights="w.h5", val_drivers=1)


def test_weights_that_do_not_fit_the_base(tmp_path):
    import keras

    from kerasdl.statefarm import Pipeline

    data = _tiny_statefarm(tmp_path / "sf", per_class=1)
    inputs = keras.Input((8, 8, 3))
    tiny = keras.Model(inputs, keras.layers.Conv2D(
        8, 3, kernel_initializer="ones")(inputs))
    weights = str(tmp_path / "tiny.weights.h5")
    tiny.save_weights(weights)
    p = Pipeline(data, tmp_path / "o", base="resnet50v2", weights=weights,
                 val_drivers=1, size=(32, 32))
    # refused on the shapes alone: the base's weights need no values
    with keras.StatelessScope(initialize_variables=False):
        with pytest.raises(ValueError) as info:
            p.prepare_base()
    message = str(info.value)
    assert message.startswith(f"`weights` {weights!r} could not be loaded "
                              f"into ResNet50V2: Weights file")
    assert ("layer 'conv1_conv' has weights of shape (7, 7, 3, 64), (64,) "
            "in the model and (3, 3, 3, 8), (8,) in the file") in message
    assert "\n" not in message
