"""write_submission and the package's CSV writer: quoting that any reader
reads back, one pass over the ids, file mode and atomic files."""

import csv
import gzip
import io
import os
import stat

import numpy as np
import pandas as pd
import pytest

from kerasdl import _csv
from kerasdl.submission import write_submission

HOSTILE_IDS = ["plain.jpg", "a,b.jpg", 'say "hi".jpg', "two\nlines.jpg",
               "cr\rreturn.jpg", "crlf\r\nend.jpg", " spaced .jpg",
               "caf\u00e9.jpg", '"', ","]
HOSTILE_NAMES = ["c,1", 'c"2', "c\n3"]


def _probs(n, k=3, seed=0):
    p = np.random.default_rng(seed).random((n, k)) + 0.1
    return p / p.sum(axis=1, keepdims=True)


def _read_bytes(path):
    data = open(path, "rb").read()
    return gzip.decompress(data) if str(path).endswith(".gz") else data


def _rows_csv(path):
    text = _read_bytes(path).decode("utf-8")
    return list(csv.reader(io.StringIO(text, newline="")))


def _rows_pandas(path):
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    return [list(frame.columns)] + frame.values.tolist()


@pytest.mark.parametrize("name", ["sub.csv", "sub.csv.gz"])
def test_ids_and_names_with_commas_quotes_newlines_read_back(tmp_path,
                                                             name):
    path = tmp_path / name
    p = _probs(len(HOSTILE_IDS))
    write_submission(path, HOSTILE_IDS, p, HOSTILE_NAMES, max_prob=None)
    expected_header = ["img"] + sorted(HOSTILE_NAMES)
    for rows in (_rows_csv(path), _rows_pandas(path)):
        assert rows[0] == expected_header
        assert [r[0] for r in rows[1:]] == HOSTILE_IDS
        order = np.argsort(HOSTILE_NAMES)
        got = np.array([[float(v) for v in r[1:]] for r in rows[1:]])
        np.testing.assert_allclose(got, p[:, order], rtol=1e-5)


def test_file_mode_follows_umask_and_no_temp_is_left(tmp_path):
    old = os.umask(0o022)
    try:
        for name in ("a.csv", "a.csv.gz"):
            write_submission(tmp_path / name, ["x"], [[0.5, 0.5]],
                             ["p", "q"])
            assert stat.S_IMODE(os.stat(tmp_path / name).st_mode) == 0o644
        os.umask(0o027)
        write_submission(tmp_path / "b.csv", ["x"], [[0.5, 0.5]],
                         ["p", "q"])
        assert stat.S_IMODE(os.stat(tmp_path / "b.csv").st_mode) == 0o640
        os.chmod(tmp_path / "a.csv", 0o664)  # a rewrite keeps the mode
        write_submission(tmp_path / "a.csv", ["y"], [[0.5, 0.5]],
                         ["p", "q"])
        assert stat.S_IMODE(os.stat(tmp_path / "a.csv").st_mode) == 0o664
    finally:
        os.umask(old)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "a.csv", "a.csv.gz", "b.csv"]


def test_gzip_names_the_target_and_is_reproducible(tmp_path):
    path = tmp_path / "sub.csv.gz"
    write_submission(path, ["x"], [[0.5, 0.5]], ["p", "q"])
    first = path.read_bytes()
    # Gzip header: 10 fixed bytes, then the NUL-terminated original name.
    assert first[10:first.index(b"\0", 10)] == b"sub.csv"
    write_submission(path, ["x"], [[0.5, 0.5]], ["p", "q"])
    assert path.read_bytes() == first


def test_duplicate_ids_named_with_both_positions(tmp_path):
    ids = [f"img_{i}.jpg" for i in range(80_000)]
    p = np.full((len(ids), 2), 0.5)
    path = tmp_path / "big.csv"
    write_submission(path, ids, p, ["a", "b"])
    assert len(pd.read_csv(path)) == 80_000
    ids[79_999] = "img_17.jpg"
    with pytest.raises(ValueError, match=r"'img_17.jpg' appears at index "
                                         r"17 and 79999"):
        write_submission(tmp_path / "dup.csv", ids, p, ["a", "b"])
    assert not (tmp_path / "dup.csv").exists()


@pytest.mark.parametrize("bad,needle", [
    (np.nan, "`probs` must hold finite numbers only"),
    (np.inf, "`probs` must hold finite numbers only"),
    (-0.5, "`probs` row 1 is not a probability distribution"),
])
def test_nan_inf_negative_probabilities_refused(tmp_path, bad, needle):
    p = np.array([[0.5, 0.5], [1.5, 0.0]])
    p[1, 0], p[1, 1] = bad, 1.5 if bad == -0.5 else 0.0
    with pytest.raises(ValueError, match=needle):
        write_submission(tmp_path / "s.csv", ["a", "b"], p, ["x", "y"],
                         max_prob=None)
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("kwargs,error,needle", [
    (dict(class_names="xy"), TypeError, "`class_names` must be a list"),
    (dict(class_names=["x", "x"]), ValueError, "'x' is repeated"),
    (dict(class_names=["img", "y"]), ValueError, "id column's name"),
    (dict(class_names=["", "y"]), ValueError, "'' is empty"),
    (dict(ids=["a", ""]), ValueError, "empty strings"),
    (dict(ids=["a", None]), TypeError, r"Received None \(NoneType\)"),
    (dict(ids="ab"), TypeError, "sequence of ids"),
    (dict(ids=["a"]), ValueError, "same length"),
    (dict(max_prob=0.4), ValueError, "`max_prob` must be a finite number "
                                     "> 0.5"),
    (dict(max_prob=float("nan")), ValueError, "max_prob=nan"),
    (dict(compress="yes"), TypeError, "`compress`"),
])
def test_bad_arguments_refused_before_writing(tmp_path, kwargs, error,
                                              needle):
    args = dict(ids=["a", "b"], probs=[[0.5, 0.5], [0.2, 0.8]],
                class_names=["x", "y"])
    args.update(kwargs)
    with pytest.raises(error, match=needle):
        write_submission(tmp_path / "s.csv", **args)
    assert not list(tmp_path.iterdir())


def test_unwritable_targets(tmp_path):
    p = [[0.5, 0.5]]
    with pytest.raises(ValueError, match="a file name, not a folder"):
        write_submission(tmp_path, ["a"], p, ["x", "y"])
    with pytest.raises(ValueError, match="in a folder that exists"):
        write_submission(tmp_path / "no" / "s.csv", ["a"], p, ["x", "y"])
    with pytest.raises(ValueError, match="cannot be written as UTF-8"):
        write_submission(tmp_path / "s.csv", ["bad\udce9.jpg"], p,
                         ["x", "y"])
    assert not list(tmp_path.iterdir())


def test_failed_write_keeps_the_old_file(tmp_path, monkeypatch):
    path = tmp_path / "s.csv"
    write_submission(path, ["a"], [[0.5, 0.5]], ["x", "y"])
    before = path.read_bytes()

    def fail(*args):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", fail)
    with pytest.raises(OSError, match="No space left"):
        write_submission(path, ["b"], [[0.2, 0.8]], ["x", "y"])
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["s.csv"]


def test_read_records_keep_line_numbers():
    lines, rows = _csv.read_records('a,b\n\n"x\ny",2\n,\n')
    assert lines.tolist() == [1, 3, 5]
    assert rows == [["a", "b"], ["x\ny", "2"], ["", ""]]
    lines, rows = _csv.read_records("1::2\r\n\n 3::\"4\n", "::",
                                    quoted=False)
    assert lines.tolist() == [1, 3] and rows == [["1", "2"], [" 3", '"4']]
    with pytest.raises(ValueError, match="line 1"):
        _csv.read_records('"a"b,c\n')
