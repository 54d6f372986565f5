"""MovieLens readers on hostile files: exact ids, rows with a field too
many, a wrong separator, repeated pairs, bad timestamps, title encodings.
Every problem is named by its line; nothing is wrapped, merged or dropped
silently."""

import pytest

from kerasdl.data.ratings import read_fold
from kerasdl.data.ratings import read_movielens
from kerasdl.data.ratings import read_ratings_file


def _write(path, text, encoding="utf-8"):
    path.write_bytes(text.encode(encoding))
    return path


def _u_data(folder, lines):
    return _write(folder / "u.data", "".join(f"{x}\n" for x in lines))


GOOD = [f"{u}\t{i}\t{1 + (u + i) % 5}\t{1000 + u}" for u in range(1, 21)
        for i in range(1, 21)]  # 400 good lines


def test_ids_kept_exact_beyond_2_53(tmp_path):
    big = 2 ** 53
    _u_data(tmp_path, [f"{big}\t1\t5\t0", f"{big + 1}\t1\t4\t0",
                       f"{2 ** 63 - 1}\t1\t3\t0", "7\t1e3\t3\t0",
                       "8\t12.0\t3\t0"])
    data = read_movielens(tmp_path)
    assert data.ratings["user"].tolist() == [big, big + 1, 2 ** 63 - 1,
                                             7, 8]
    assert data.ratings["item"].tolist() == [1, 1, 1, 1000, 12]


@pytest.mark.parametrize("bad", [str(2 ** 63), "1e20", str(-2 ** 63 - 1),
                                 "1" + "0" * 400, "1e999999999"])
def test_ids_outside_int64_named_by_line(tmp_path, bad):
    _u_data(tmp_path, ["1\t1\t5\t0", f"{bad}\t2\t4\t0"])
    with pytest.raises(ValueError,
                       match="line 2: user id does not fit in 64 bits"):
        read_movielens(tmp_path)
    data = read_movielens(tmp_path, on_bad="skip")
    assert data.ratings["user"].tolist() == [1] and data.skipped == 1


def test_extra_field_named_by_its_line_and_skipped_alone(tmp_path):
    _u_data(tmp_path, GOOD[:200] + ["5\t6\t3\t0\tgarbage"] + GOOD[200:])
    with pytest.raises(ValueError, match=r"1 bad line\(s\) of 401, e.g. "
                                         r"line 201: 5 fields, expected 4"):
        read_movielens(tmp_path)
    data = read_movielens(tmp_path, on_bad="skip")
    assert data.skipped == 1 and len(data.ratings) == 400
    expected = [[int(v) for v in x.split("\t")] for x in GOOD]
    assert data.ratings.values.tolist() == expected


def test_extra_field_in_csv_with_header(tmp_path):
    rows = [f"{u},{i},3.5,{u}" for u in range(1, 21) for i in range(1, 21)]
    rows.insert(200, "1,999,4.0,7,extra")
    _write(tmp_path / "ratings.csv",
           "userId,movieId,rating,timestamp\n" + "\n".join(rows) + "\n")
    with pytest.raises(ValueError, match="line 202: 5 fields, expected 4"):
        read_movielens(tmp_path)
    data = read_movielens(tmp_path, on_bad="skip")
    assert data.skipped == 1 and len(data.ratings) == 400
    assert 999 not in set(data.ratings["item"])


def test_too_few_fields_and_double_colon_extra(tmp_path):
    _write(tmp_path / "ratings.dat", "1::10::5::9\n2::10::3::9::x\n3::10\n")
    with pytest.raises(ValueError, match=r"line 2: 5 fields, expected 4 .*"
                                         r"line 3: 2 fields, expected 4"):
        read_movielens(tmp_path)


@pytest.mark.parametrize("on_bad", ["raise", "skip"])
def test_comma_separated_u_data_fails_at_once(tmp_path, on_bad):
    _u_data(tmp_path, ["1,10,5,881250949", "2,10,3,0"])
    with pytest.raises(ValueError, match="separator looks wrong.*tab-sep"
                                         ".*looks comma-separated"):
        read_movielens(tmp_path, on_bad=on_bad)


def test_tab_separated_ratings_csv_fails_on_its_header(tmp_path):
    _write(tmp_path / "ratings.csv",
           "userId\tmovieId\trating\n1\t2\t3\n")
    with pytest.raises(ValueError, match="separator looks wrong.*looks "
                                         "tab-separated"):
        read_movielens(tmp_path, on_bad="skip")


def test_zero_good_rows_is_an_error_even_when_skipping(tmp_path):
    _u_data(tmp_path, ["1\t10\t9\t0", "2\t10\t0\t0"])
    with pytest.raises(ValueError, match="No good line is left"):
        read_movielens(tmp_path, on_bad="skip")


def test_duplicate_pairs_raise_naming_lines_or_merge(tmp_path):
    _u_data(tmp_path, ["1\t10\t5\t100", "2\t10\t3\t0", "1\t10\t2\t300",
                       "1\t10\t4\t200"])
    with pytest.raises(ValueError, match=r"user 1 rated item 10 more than "
                                         r"once \(lines 1 and 3\); 2 "
                                         r"repeated"):
        read_movielens(tmp_path)
    last = read_movielens(tmp_path, duplicates="last")
    assert last.ratings.values.tolist() == [[2, 10, 3, 0],
                                            [1, 10, 4, 200]]
    assert last.merged == 2
    mean = read_movielens(tmp_path, duplicates="mean")
    r = mean.ratings
    assert r[["user", "item", "timestamp"]].values.tolist() == [
        [1, 10, 300], [2, 10, 0]]
    assert r["rating"].tolist() == pytest.approx([11 / 3, 3.0])
    assert str(r["rating"].dtype) == "float32" and mean.merged == 2
    with pytest.raises(ValueError, match="`duplicates` must be one of"):
        read_movielens(tmp_path, duplicates="first")


def test_duplicates_in_a_fold_file(tmp_path):
    _u_data(tmp_path, ["1\t10\t5\t0"])
    _write(tmp_path / "u1.base", "1\t10\t5\t0\n1\t10\t4\t0\n")
    _write(tmp_path / "u1.test", "2\t10\t3\t0\n")
    with pytest.raises(ValueError, match="u1.base.*lines 1 and 2"):
        read_fold(tmp_path, 1)
    train, _, _ = read_fold(tmp_path, 1, duplicates="last")
    assert train["rating"].tolist() == [4.0]
    with pytest.raises(TypeError, match="`k` must be an integer"):
        read_fold(tmp_path, "1")
    with pytest.raises(ValueError, match="`k` must be an integer >= 1 "
                                         "and <= 5"):
        read_fold(tmp_path, 6)


def test_unparseable_timestamps_named_missing_ones_are_minus_one(tmp_path):
    _u_data(tmp_path, ["1\t10\t5\t881250949", "2\t10\t3\tyesterday",
                       "3\t10\t3\t1.5"])
    with pytest.raises(ValueError, match=r"2 bad line\(s\) of 3, e.g. "
                                         r"line 2: timestamp is not an "
                                         r"integer .*line 3: timestamp"):
        read_movielens(tmp_path)
    _u_data(tmp_path, ["1\t10\t5", "2\t10\t3\t7", "3\t10\t3\t"])
    data = read_movielens(tmp_path)
    assert data.ratings["timestamp"].tolist() == [-1, 7, -1]


def test_read_ratings_file_checks_its_arguments(tmp_path):
    f = _u_data(tmp_path, ["1\t10\t5\t0"])
    with pytest.raises(ValueError, match="`fmt` must be one of"):
        read_ratings_file(f, fmt="ml-20m")
    frame, skipped = read_ratings_file(f, fmt="ml-100k")
    assert (len(frame), skipped) == (1, 0)


def test_quoted_fields_keep_line_numbers(tmp_path):
    _write(tmp_path / "ratings.csv",
           'userId,movieId,rating\n"1",10,4\n"2\nx",10,4\n3,10,x\n')
    with pytest.raises(ValueError, match=r"line 3: user id is not an "
                                         r"integer.*line 5: rating"):
        read_movielens(tmp_path)


@pytest.mark.parametrize("encoding", ["utf-8", "latin-1"])
def test_u_item_titles_decoded_by_what_the_bytes_are(tmp_path, encoding):
    _u_data(tmp_path, ["1\t10\t5\t0"])
    _write(tmp_path / "u.item", "10|Mis\u00e9rables, Les (1995)|x\n"
                                "11|L\u00e9on (1994)|y\n", encoding)
    titles = read_movielens(tmp_path).titles
    assert titles == {10: "Mis\u00e9rables, Les (1995)",
                      11: "L\u00e9on (1994)"}


def test_movies_csv_latin1_falls_back_and_bad_title_lines(tmp_path):
    _write(tmp_path / "ratings.csv", "userId,movieId,rating\n1,31,4\n")
    _write(tmp_path / "movies.csv", 'movieId,title,genres\n'
                                    '31,"Caf\u00e9, The (1995)",Drama\n',
           "latin-1")
    assert read_movielens(tmp_path).titles == {31: "Caf\u00e9, The (1995)"}
    _write(tmp_path / "movies.csv", "movieId,title\n31,A\nx,B\n31,C\n")
    with pytest.raises(ValueError, match=r"movies.csv.*2 bad title "
                                         r"line\(s\), e.g. line 3: item id "
                                         r"'x' .* line 4: item 31 already"):
        read_movielens(tmp_path)
    data = read_movielens(tmp_path, on_bad="skip")
    assert data.titles == {31: "A"} and data.skipped == 2


def test_real_titles_not_mojibake(shared_data):
    small = read_movielens(shared_data("ml-latest-small"))
    assert small.titles[73] == "Mis\u00e9rables, Les (1995)"
    assert len(small.titles) == 9_125 and small.merged == 0
    k100 = read_movielens(shared_data("ml-100k"))
    assert k100.titles[543] == "Mis\u00e9rables, Les (1995)"
    assert len(k100.titles) == 1_682 and k100.merged == 0
    assert k100.ratings["user"].nunique() == 943
    assert (k100.ratings["timestamp"] > 0).all()
