"""``kerasdl movielens``: RMSE with the split's name, JSON lines, analysis,
and one-line errors with exit code 2."""

import json
import os
import subprocess
import sys

import pytest

from kerasdl import cli

# Command-line and whole-pipeline tests: their parts are tested on every
# backend elsewhere (tests/conftest.py, ONE_BACKEND).
pytestmark = pytest.mark.one_backend


@pytest.fixture(scope="module")
def folder(generated_movielens):
    return generated_movielens


def test_json_line_names_the_split(folder, capsys, tmp_path):
    png = tmp_path / "factors.png"
    code = cli.main(["movielens", "--data", str(folder), "--split",
                     "random:3", "--epochs", "1", "--json", "--analysis",
                     "--plot", str(png)])
    assert code == 0
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    row = lines[0]
    assert row["split"] == "random:3" and row["data"] == "ml-100k"
    assert row["recipe"] == "dot_bias" and 0.3 < row["rmse"] < 2.0
    total = len((folder / "u.data").read_text().splitlines())
    assert row["n"] + row["train"] == total and row["n"] > 0.1 * total
    analysis = lines[1]["analysis"]
    assert len(analysis["pca_ends"]) == 3
    assert analysis["bias_highest"][0][0].startswith("generated item")
    assert png.read_bytes()[:4] == b"\x89PNG"


def test_text_output_prints_rmse_and_split(folder, capsys):
    assert cli.main(["movielens", "--data", str(folder), "--split",
                     "random:0", "--model", "dot", "--epochs", "1"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("ml-100k split random:0: RMSE ")
    assert "recipe dot" in out


def _run(*args):
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    path = os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH"))
                           if p)
    return subprocess.run([sys.executable, "-m", "kerasdl", *args],
                          capture_output=True, text=True, timeout=300,
                          env=dict(os.environ, PYTHONPATH=path))


@pytest.mark.parametrize("args,needle", [
    (["--split", "u9"], "unknown split 'u9'"),
    (["--epochs", "0"], "--epochs must be an integer >= 1"),
    (["--model", "svd"], "invalid choice: 'svd'"),
])
def test_user_mistakes_one_line_exit_2(folder, args, needle):
    result = _run("movielens", "--data", str(folder), *args)
    assert result.returncode == 2, result.stderr
    lines = [x for x in result.stderr.splitlines() if x.startswith("kerasdl")]
    assert len(lines) == 1 and needle in lines[0], result.stderr
    assert "Traceback" not in result.stderr


def test_missing_folder_and_bad_rows(tmp_path, capsys):
    assert cli.main(["movielens", "--data", str(tmp_path / "nope")]) == 2
    assert "does not exist" in capsys.readouterr().err
    (tmp_path / "u.data").write_text("1\t2\t5\t0\n1\t3\t7\t0\n")
    assert cli.main(["movielens", "--data", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "line 2: rating outside 1..5" in err and err.count("\n") == 1


def test_ml100k_folds_needed_for_u_splits(tmp_path, capsys):
    (tmp_path / "ratings.csv").write_text(
        "userId,movieId,rating\n1,2,3.5\n2,2,4\n")
    assert cli.main(["movielens", "--data", str(tmp_path), "--split",
                     "5fold"]) == 2
    assert "use random:SEED or lesson" in capsys.readouterr().err


@pytest.mark.parametrize("name,total", [("dot", 486_850),
                                        ("dot_bias", 496_587)])
def test_summary_knows_the_lesson_models(name, total, capsys):
    assert cli.main(["summary", name, "--json"]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["total"] == total and out["input_shape"] == [671, 9066, 50]
    assert cli.main(["summary", name, "--input-shape", "943,1682,10"]) == 0
    assert f"total: {(943 + 1682) * (11 if name == 'dot_bias' else 10):,}" \
        in capsys.readouterr().out


# Runs kerasdl in a child whose files may not grow past 3,000 bytes: a
# write past that fails with EFBIG, as on a full disk (SIGXFSZ ignored).
_LIMITED = ("import resource, runpy, signal, sys; "
            "signal.signal(signal.SIGXFSZ, signal.SIG_IGN); "
            "resource.setrlimit(resource.RLIMIT_FSIZE, (3000, 3000)); "
            "sys.argv[0] = 'kerasdl'; "
            "runpy.run_module('kerasdl', run_name='__main__')")


@pytest.mark.skipif(sys.platform != "linux", reason="RLIMIT_FSIZE")
def test_failed_plot_write_is_one_line_naming_the_path(folder, tmp_path):
    png = tmp_path / "factors.png"
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    path = os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH"))
                           if p)
    result = subprocess.run(
        [sys.executable, "-c", _LIMITED, "movielens", "--data",
         str(folder), "--split", "random:1", "--epochs", "1", "--json",
         "--plot", str(png)], capture_output=True, text=True, timeout=300,
        env=dict(os.environ, PYTHONPATH=path))
    assert result.returncode == 2, result.stderr
    lines = [x for x in result.stderr.splitlines() if x.startswith("kerasdl")]
    assert lines == [f"kerasdl movielens: error: could not write --plot "
                     f"{png}: File too large"], result.stderr
    assert "Traceback" not in result.stderr
    assert list(tmp_path.iterdir()) == []  # no partial file left


def test_skip_bad_leaves_bad_rows_out(folder, tmp_path, capsys):
    bad = tmp_path / "ml"
    bad.mkdir()
    rows = (folder / "u.data").read_text().splitlines()
    rows.insert(5, "1\t2\tfive\t0")
    (bad / "u.data").write_text("\n".join(rows) + "\n")
    assert cli.main(["movielens", "--data", str(bad), "--split",
                     "random:0", "--epochs", "1", "--json"]) == 2
    err = capsys.readouterr().err
    assert "--skip-bad" in err and "on_bad" not in err
    assert cli.main(["movielens", "--data", str(bad), "--split",
                     "random:0", "--epochs", "1", "--json",
                     "--skip-bad"]) == 0
    row = json.loads(capsys.readouterr().out.splitlines()[0])
    assert row["skipped_rows"] == 1
    assert row["n"] + row["train"] == len(rows) - 1


def test_plot_path_checked_before_training(folder, tmp_path, capsys):
    for plot in (tmp_path, tmp_path / "missing" / "f.png"):
        assert cli.main(["movielens", "--data", str(folder), "--plot",
                         str(plot), "--epochs", "1"]) == 2
        captured = capsys.readouterr()
        assert captured.out == ""  # no RMSE line: nothing was trained
        assert captured.err.count("\n") == 1 and "--plot" in captured.err
