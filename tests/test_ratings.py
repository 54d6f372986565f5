"""MovieLens readers, id encoder, folds and fetch: formats, errors with row
numbers, counts, and the real files when ../shared/data has them."""

import hashlib
import os
import zipfile

import numpy as np
import pandas as pd
import pytest

from kerasdl.collab import folds as splits
from kerasdl.data import datasets
from kerasdl.data.ratings import IdEncoder
from kerasdl.data.ratings import detect_format
from kerasdl.data.ratings import read_fold
from kerasdl.data.ratings import read_movielens


def _write(path, text, encoding="utf-8"):
    path.write_bytes(text.encode(encoding))
    return path


@pytest.fixture
def ml100k(tmp_path):
    _write(tmp_path / "u.data", "1\t10\t5\t881250949\n2\t10\t3\t0\n"
                                "2\t20\t1\t0\n")
    _write(tmp_path / "u.item", "10|Caf\u00e9 Society (1995)|01-Jan-1995||"
                                "http://x|0|1\n20|Heat (1995)|x||y|0|0\n",
           encoding="latin-1")
    _write(tmp_path / "u1.base", "1\t10\t5\t0\n2\t20\t1\t0\n")
    _write(tmp_path / "u1.test", "2\t10\t3\t0\n")
    _write(tmp_path / "u2.base", "1\t10\t5\t0\n")  # u2.test missing
    return tmp_path


def test_ml100k_ratings_titles_latin1_and_folds(ml100k):
    data = read_movielens(ml100k)
    assert data.format == "ml-100k" and data.rating_range == (1.0, 5.0)
    assert data.ratings["user"].tolist() == [1, 2, 2]
    assert data.ratings["rating"].tolist() == [5.0, 3.0, 1.0]
    assert data.ratings["timestamp"].tolist() == [881250949, 0, 0]
    assert data.titles == {10: "Caf\u00e9 Society (1995)", 20: "Heat (1995)"}
    assert data.folds == (1,) and data.skipped == 0
    train, test, skipped = read_fold(ml100k, 1)
    assert (len(train), len(test), skipped) == (2, 1, 0)
    with pytest.raises(FileNotFoundError, match="u2.test"):
        read_fold(ml100k, 2)


def test_ml_latest_small_csv(tmp_path):
    _write(tmp_path / "ratings.csv", "userId,movieId,rating,timestamp\n"
                                     "1,31,2.5,1260759144\n7,31,0.5,1\n")
    _write(tmp_path / "movies.csv", 'movieId,title,genres\n'
                                    '31,"Dangerous Minds, The (1995)",Drama\n')
    data = read_movielens(tmp_path)
    assert data.format == "ml-latest-small"
    assert data.ratings["rating"].tolist() == [2.5, 0.5]
    assert data.titles == {31: "Dangerous Minds, The (1995)"}


def test_ml_1m_double_colon(tmp_path):
    _write(tmp_path / "ratings.dat", "1::1193::5::978300760\n2::661::3::0\n")
    _write(tmp_path / "movies.dat", "1193::One Flew Over (1975)::Drama\n",
           encoding="latin-1")
    data = read_movielens(tmp_path)
    assert data.format == "ml-1m"
    assert data.ratings["item"].tolist() == [1193, 661]
    assert data.titles == {1193: "One Flew Over (1975)"}


@pytest.mark.parametrize("text,needle", [
    ("1\t10\tfive\t0\n", "line 1: rating is not a number"),
    ("1\t10\t5\t0\n1\t11\tnan\t0\n", "line 2: rating is not a number"),
    ("1\t10\t5\t0\n1\t11\t\t0\n", "line 2: rating is not a number"),
    ("1\t10\t5\t0\n1\t11\t6\t0\n", "line 2: rating outside 1..5"),
    ("1\t10\t5\t0\nx\t11\t4\t0\n", "line 2: user id is not an integer"),
    ("1\t10.5\t5\t0\n", "line 1: item id is not an integer"),
])
def test_bad_rows_named_by_line(tmp_path, text, needle):
    _write(tmp_path / "u.data", text)
    with pytest.raises(ValueError, match=needle):
        read_movielens(tmp_path)


def test_skip_counts_bad_rows(tmp_path):
    _write(tmp_path / "u.data", "1\t10\t5\t0\n1\t11\t9\t0\n2\t10\tx\t0\n"
                                "2\t11\t4\t0\n")
    data = read_movielens(tmp_path, on_bad="skip")
    assert data.skipped == 2 and len(data.ratings) == 2
    with pytest.raises(ValueError, match="on_bad"):
        read_movielens(tmp_path, on_bad="ignore")


def test_csv_errors_missing_column_empty_and_header_only(tmp_path):
    f = _write(tmp_path / "ratings.csv", "userId,movieId,score\n1,2,3\n")
    with pytest.raises(ValueError, match=r"column\(s\) \['rating'\]"):
        read_movielens(tmp_path)
    _write(f, "userId,movieId,rating\n1,2,7.5\n")
    with pytest.raises(ValueError, match="line 2: rating outside 0.5..5"):
        read_movielens(tmp_path)
    _write(f, "userId,movieId,rating\n")
    with pytest.raises(ValueError, match="holds no ratings"):
        read_movielens(tmp_path)
    _write(f, "")
    with pytest.raises(ValueError, match="is empty"):
        read_movielens(tmp_path)


def test_detect_format_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        detect_format(tmp_path / "nope")
    _write(tmp_path / "notes.txt", "x")
    with pytest.raises(FileNotFoundError, match="expected ratings.csv"):
        detect_format(tmp_path)


def test_id_encoder_round_trip_and_unknown():
    enc = IdEncoder(np.array([31, 1029, 31, 7]), "item")
    assert enc.encode([31, 1029, 7]).tolist() == [0, 1, 2]
    assert enc.decode(enc.encode([7, 31])).tolist() == [7, 31]
    assert enc.encode([5, 7], unknown="mark").tolist() == [-1, 2]
    with pytest.raises(ValueError, match=r"unknown item id\(s\) \[5, 99\]"):
        enc.encode([5, 7, 99])
    with pytest.raises(ValueError, match="indices must be in 0..2"):
        enc.decode([3])
    with pytest.raises(ValueError, match="at least one"):
        IdEncoder([])


def test_make_folds_matches_mku_layout():
    r = pd.DataFrame({"user": np.arange(100_000)[::-1] % 7,
                      "item": np.arange(100_000), "rating": 3.0,
                      "timestamp": 0})
    folds = splits.make_folds(r)
    base, test = folds[2]
    assert sorted(test["item"]) == list(range(20_000, 40_000))
    assert len(base) == 80_000 and not set(base["item"]) & set(test["item"])
    assert (np.diff(test["user"]) >= 0).all()
    with pytest.raises(ValueError, match="100,000 ratings"):
        splits.make_folds(r[:10])


def _zip_folder(tmp_path, name):
    src = tmp_path / "src" / name
    src.mkdir(parents=True)
    _write(src / "u.data", "1\t10\t5\t0\n")
    archive = tmp_path / f"{name}.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.write(src / "u.data", f"{name}/u.data")
    return archive, hashlib.md5(archive.read_bytes()).hexdigest()


def test_fetch_checks_md5_and_extracts(tmp_path, monkeypatch):
    archive, md5 = _zip_folder(tmp_path, "ml-100k")
    monkeypatch.setitem(datasets.MOVIELENS, "ml-100k",
                        (archive.as_uri(), md5))
    path = datasets.fetch("ml-100k", cache_dir=str(tmp_path / "cache"))
    assert read_movielens(path).ratings["item"].tolist() == [10]
    monkeypatch.setitem(datasets.MOVIELENS, "ml-100k",
                        (archive.as_uri(), "0" * 32))
    with pytest.raises(ValueError, match="hash does not match"):
        datasets.fetch("ml-100k", cache_dir=str(tmp_path / "cache2"))


def test_fetch_reads_published_md5_and_fails_offline(tmp_path, monkeypatch):
    archive, md5 = _zip_folder(tmp_path, "ml-latest-small")
    _write(tmp_path / "ml-latest-small.zip.md5",
           f"MD5 (ml-latest-small.zip) = {md5}\n")
    monkeypatch.setitem(datasets.MOVIELENS, "ml-latest-small",
                        (archive.as_uri(), None))
    path = datasets.fetch("ml-latest-small", cache_dir=str(tmp_path / "c"))
    assert os.path.isfile(os.path.join(path, "u.data"))
    missing = (tmp_path / "absent.zip").as_uri()
    monkeypatch.setitem(datasets.MOVIELENS, "ml-1m", (missing, "0" * 32))
    with pytest.raises(ConnectionError, match="offline, pass --data DIR"):
        datasets.fetch("ml-1m", cache_dir=str(tmp_path / "c"))
    with pytest.raises(ValueError, match="name='ml-20m'"):
        datasets.fetch("ml-20m")


def test_real_ml_latest_small(shared_data):
    data = read_movielens(shared_data("ml-latest-small"))
    r = data.ratings
    assert (len(r), r["user"].nunique(), r["item"].nunique()) == (
        100_004, 671, 9_066)
    assert data.titles[1] == "Toy Story (1995)" and data.skipped == 0


def test_real_ml100k_make_folds_reproduces_u1_bytes(shared_data):
    path = shared_data("ml-100k")
    data = read_movielens(path)
    assert (len(data.ratings), data.ratings["item"].nunique()) == (
        100_000, 1_682)
    assert data.titles[1] == "Toy Story (1995)"
    base, test = splits.make_folds(data.ratings)[1]
    for frame, name in ((base, "u1.base"), (test, "u1.test")):
        text = "".join(
            f"{u}\t{i}\t{int(r)}\t{t}\n" for u, i, r, t in
            frame[["user", "item", "rating", "timestamp"]].itertuples(
                index=False))
        assert text.encode() == (path / name).read_bytes(), name
