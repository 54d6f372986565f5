"""The State Farm pipeline end to end on the real images (quick mode)."""

import gzip
import json

import pandas as pd
import pytest

from kerasdl import cli


def test_statefarm_quick_writes_a_complete_report(shared_data, tmp_path,
                                                  capsys):
    data = shared_data("statefarm-80x60")
    out = tmp_path / "sf"
    assert cli.main(["statefarm", "--data", str(data), "--out", str(out),
                     "--quick", "--json"]) == 0
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
