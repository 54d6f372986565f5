"""Bad invocations of every subcommand: one line on stderr, exit code 2,
no traceback, nothing written, and no training started (each row answers
in well under a second of work)."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from kerasdl import cli
from tests.test_statefarm import _tiny_statefarm

BIG = "1000000000000"


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """Small inputs: a 6-driver State Farm folder of 60 tiny images, one
    whose list names a missing image, MovieLens folders (3 ratings; a bad
    row), an empty file and a plain file."""
    root = tmp_path_factory.mktemp("world")
    _tiny_statefarm(root / "sf", drivers=6, per_class=1)
    _tiny_statefarm(root / "sf_missing", drivers=3, per_class=1)
    os.remove(root / "sf_missing" / "train" / "c3" / "i3.jpg")
    _tiny_statefarm(root / "sf_few", drivers=3, per_class=1)
    (root / "ml").mkdir()
    (root / "ml" / "u.data").write_text("1\t1\t5\t0\n1\t2\t3\t0\n2\t1\t4\t0\n")
    (root / "ml_bad").mkdir()
    (root / "ml_bad" / "u.data").write_text(
        "1\t1\t5\t0\n1\t2\tfive\t0\n2\t1\t4\t0\n")
    (root / "ml_dir").mkdir()
    (root / "ml_dir" / "u.data").mkdir()
    (root / "empty.h5").write_bytes(b"")
    (root / "garbage.h5").write_bytes(bytes(range(256)) * 8)
    (root / "file").write_text("not a folder")
    return root


SF = ["statefarm", "--data", "{w}/sf", "--out", "{out}/sf"]
ML = ["movielens", "--data", "{w}/ml"]

# (argv, a phrase the one line must hold, phrases it must not hold)
TABLE = [
    # summary: sizes refused before anything is allocated
    (["summary", "conv_bn", "--classes", BIG], "201,000,007,393,588 param",
     ()),
    (["summary", "conv_bn", "--input-shape", "100000,100000,3"],
     "more than half of this machine's", ()),
    (["summary", "vgg16", "--head", BIG], "--head", ()),
    (["summary", "linear_bn", "--input-shape", "9" * 30 + ",9,3"],
     "memory", ()),
    (["summary", "dot", "--input-shape", "1000000000,1000000000,50"],
     "USERS,ITEMS,FACTORS", ()),
    (["summary", "dot", "--head", "5"], "--head does not apply to dot", ()),
    (["summary", "dot_bias", "--classes", "3"], "--classes does not apply",
     ()),
    (["summary", "conv_bn", "--input-shape", "16,16,3"],
     "17x17", ("\x1b", "KerasTensor", "input_shape")),
    (["summary", "conv_bn", "--classes", "1"], "--classes must be", ()),
    (["summary", "linear_bn", "--head", "1"], "--head must be", ()),
    (["summary", "resnet9"], "unknown model 'resnet9'", ()),
    (["summary", "vgg16", "--input-shape", "224,224"],
     "three positive integers", ()),
    (["summary", "conv_bn", "--classes", "two"], "invalid int value", ()),
    (["summary"], "required: NAME", ()),
    (["nonsense"], "invalid choice", ()),
    # movielens: flags, files and the split, all before training
    (["movielens", "--data", "{w}/nope"], "does not exist", ()),
    (ML + ["--plot", "{out}"], "--plot must be a file name", ()),
    (ML + ["--plot", "{out}/missing/f.png"], "in a folder that exists", ()),
    (ML + ["--plot", ""], "--plot must be a file name", ()),
    (ML + ["--split", "random:0"], "random:0", ("NaN",)),
    (ML + ["--split", "u9"], "unknown split 'u9'", ()),
    (ML + ["--epochs", "0"], "--epochs must be an integer >= 1", ()),
    (ML + ["--seed", "-1"], "--seed must be an integer >= 0", ()),
    (ML + ["--fit", "gibbs", "--model", "dot"], "use --model dot_bias", ()),
    (["movielens", "--data", "{w}/ml_bad", "--skip-bad", "--split", "u1"],
     "u.data", ()),
    (["movielens", "--data", "{w}/ml_bad"], "--skip-bad",
     ("on_bad", "_bad=")),
    (["movielens", "--data", "{w}/ml_dir"], "u.data", ()),
    # statefarm: --out, --weights, --size, drivers and images, before
    # loading or training
    (["statefarm", "--data", "{w}/sf", "--out", "{w}/file"],
     "--out must be a folder, not an existing file", ()),
    (["statefarm", "--data", "{w}/sf", "--out", "{w}/file/sub"],
     "--out must be a path under a folder", ()),
    (SF + ["--base", "vgg16", "--weights", "{w}/nope.h5"],
     "--weights must be a file that exists", ()),
    (SF + ["--base", "vgg16", "--weights", "{w}/empty.h5"],
     "--weights must be a file that is not empty", ()),
    (SF + ["--base", "vgg16", "--weights", ""],
     "--weights must be the path of a file", ()),
    (SF + ["--base", "vgg16", "--weights", "{w}"],
     "--weights must be a regular file", ()),
    (SF + ["--base", "vgg16", "--weights", "{w}/garbage.h5"],
     "could not be loaded into VGG16", ("could not write",)),
    (SF + ["--weights", "{w}/empty.h5"], "--weights goes with --base vgg16",
     ()),
    (SF + ["--val-drivers", "6", "--quick"],
     "--val-drivers must be an integer >= 1 and <= 5",
     ("n_groups", "val_drivers")),
    (SF + ["--val-drivers", "0"], "--val-drivers must be", ()),
    (SF + ["--size", "10x10"], "--size 10x10 is too small", ()),
    (SF + ["--size", "16x16"], "pass at least 17x17", ()),
    (SF + ["--size", "100000x100000"], "memory", ()),
    (SF + ["--size", "60by80"], "--size must be HxW", ()),
    (SF + ["--seed", "-1"], "--seed must be", ()),
    (["statefarm", "--data", "{w}/nope", "--out", "{out}/sf"],
     "driver_imgs_list.csv", ()),
    (["statefarm", "--data", "{w}/sf_missing", "--out", "{out}/sf",
      "--quick", "--val-drivers", "1"], "--skip-bad",
     ("on_error", "Traceback")),
    (["statefarm", "--data", "{w}/sf_few", "--out", "{out}/sf",
      "--quick", "--val-drivers", "1"], "usable image(s)",
     ("val_drivers",)),
    # demo and lr-find
    (["demo", "--seed", "-1"], "--seed must be an integer >= 0", ()),
    (["demo", "--seed", str(2 ** 40)], "at most 2**32 - 1", ()),
    (["lr-find", "resnet9"], "unknown model", ()),
    (["lr-find", "linear_bn", "--batch-size", "0"], "--batch-size", ()),
]


def _files(*roots):
    return {os.path.join(d, f) for root in roots
            for d, _, files in os.walk(root) for f in files}


def _fill(argv, world, out):
    return [a.format(w=world, out=out) for a in argv]


@pytest.mark.one_backend
@pytest.mark.parametrize("argv,needle,absent", TABLE,
                         ids=[" ".join(r[0])[:60] for r in TABLE])
def test_bad_invocation_is_one_line_exit_2(argv, needle, absent, world,
                                           tmp_path, monkeypatch, capsys):
    out = tmp_path / "out"
    out.mkdir()
    monkeypatch.chdir(tmp_path)
    before = _files(world, tmp_path)
    assert _main(_fill(argv, world, out)) == 2
    captured = capsys.readouterr()
    lines = captured.err.splitlines()
    assert len(lines) == 1, captured.err
    assert lines[0].startswith("kerasdl")
    assert needle in lines[0], lines[0]
    assert "Traceback" not in captured.err
    for word in absent:
        assert word not in lines[0], lines[0]
    assert captured.out == ""
    assert _files(world, tmp_path) == before
    assert not (tmp_path / "out" / "sf").exists()


def _main(argv):
    """The exit code of ``kerasdl argv`` (argparse exits by itself)."""
    try:
        return cli.main(argv)
    except SystemExit as e:
        return e.code


def test_table_covers_every_subcommand():
    commands = {row[0][0] for row in TABLE}
    assert {"summary", "movielens", "statefarm", "demo", "lr-find"} <= \
        commands
    assert len(TABLE) >= 25


def _native_log(line):
    """Lines the TensorFlow runtime writes to stderr when it loads."""
    return line.startswith("WARNING: All log messages before absl") or (
        len(line) > 5 and line[0] in "IWE" and line[1:5].isdigit())


def _kerasdl(args, **kwargs):
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    path = os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH"))
                           if p)
    return subprocess.run([sys.executable, "-m", "kerasdl", *args],
                          env=dict(os.environ, PYTHONPATH=path),
                          timeout=300, **kwargs)


@pytest.mark.one_backend
@pytest.mark.skipif(not os.path.exists("/dev/full"),
                    reason="needs /dev/full")
@pytest.mark.parametrize("json_flag", [["--json"], []])
def test_full_standard_output_is_one_line(json_flag):
    with open("/dev/full", "w") as full:
        result = _kerasdl(["summary", "linear_bn", "--input-shape", "8,8,3",
                           *json_flag], stdout=full, stderr=subprocess.PIPE,
                          text=True)
    lines = [x for x in result.stderr.splitlines() if not _native_log(x)]
    assert result.returncode == 2, result.stderr
    assert len(lines) == 1, result.stderr
    assert "could not write" in lines[0]
    assert "No space left on device" in lines[0]


def test_messages_speak_of_flags():
    flags = {"val_drivers": "--val-drivers", "skip_bad": "--skip-bad"}
    line = cli.user_terms(
        "`val_drivers` must be an integer >= 1. Received: val_drivers=0. "
        "Or pass on_error='skip' to leave them out.", flags)
    assert line == ("--val-drivers must be an integer >= 1. Received: "
                    "--val-drivers 0. Or pass --skip-bad to leave them out.")
    # a command without --skip-bad keeps the library's advice
    assert "on_bad='skip'" in cli.user_terms("use on_bad='skip'", {})


def test_json_printer_writes_valid_json_only(capsys):
    from kerasdl.commands import print_json

    bad = print_json({"rmse": float("nan"), "mae": np.float32(0.5),
                      "parts": [{"rmse": float("inf")}]})
    line = capsys.readouterr().out
    record = json.loads(line, parse_constant=_refuse_constant)
    assert record == {"rmse": None, "mae": 0.5, "parts": [{"rmse": None}],
                      "not_finite": ["rmse", "parts[0].rmse"]}
    assert bad == ["rmse", "parts[0].rmse"]


def _refuse_constant(name):
    raise AssertionError(f"invalid JSON constant {name}")


def test_check_flags_names_the_flag(tmp_path):
    from kerasdl.commands import check_flags

    check_flags(outputs={"--plot": str(tmp_path / "a.png")},
                integers={"--num-it": (5, 1)}, positives={"--end-lr": 10.0})
    with pytest.raises(ValueError, match="--plot. must be a file name"):
        check_flags(outputs={"--plot": str(tmp_path)})
    with pytest.raises(ValueError, match="--num-it. must be an integer >= 1"):
        check_flags(integers={"--num-it": (0, 1)})
    with pytest.raises(ValueError, match="--start-lr. must be a finite "
                                         "number > 0. Received: "
                                         "--start-lr=nan"):
        check_flags(positives={"--start-lr": float("nan")})
    assert not list(tmp_path.iterdir())
