"""kerasdl.data.splits: group_split keeps each group on one side;
make_sample builds complete sample folders."""

import os

import numpy as np
import pandas as pd
import pytest

from kerasdl.data import splits
from kerasdl.data.splits import group_split
from kerasdl.data.splits import make_sample
from kerasdl.data.splits import table_files


def _table(n_groups=6, per=5):
    rows = [(f"p{g:03d}", f"c{i % 3}", f"img_{g}_{i}.jpg")
            for g in range(n_groups) for i in range(per + g)]
    return pd.DataFrame(rows, columns=["subject", "classname", "img"])


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_no_group_on_both_sides(seed):
    t = _table()
    train, valid = group_split(t, "subject", n_groups=2, seed=seed)
    assert not set(train.subject) & set(valid.subject)
    assert valid.subject.nunique() == 2 and train.subject.nunique() == 4
    assert sorted(valid.attrs["groups"]) == sorted(set(valid.subject))
    # every row lands on exactly one side, order kept
    assert sorted(train.index.tolist() + valid.index.tolist()) == list(
        range(len(t)))
    assert train.index.is_monotonic_increasing


def test_seeded_and_fraction():
    t = _table(10)
    a = group_split(t, n_groups=3, seed=5)[1].attrs["groups"]
    b = group_split(t, n_groups=3, seed=5)[1].attrs["groups"]
    assert a == b
    picks = {tuple(group_split(t, n_groups=3, seed=s)[1].attrs["groups"])
             for s in range(8)}
    assert len(picks) > 1
    _, valid = group_split(t, fraction=0.2, seed=0)
    assert valid.subject.nunique() == 2  # 20% of the 10 groups


def test_bad_arguments():
    t = _table()
    with pytest.raises(ValueError, match="no column 'driver'"):
        group_split(t, "driver", n_groups=1)
    with pytest.raises(ValueError, match="exactly one"):
        group_split(t, n_groups=1, fraction=0.2)
    with pytest.raises(ValueError, match="exactly one"):
        group_split(t)
    with pytest.raises(ValueError, match="between 1 and 5"):
        group_split(t, n_groups=6)
    with pytest.raises(ValueError, match="fraction"):
        group_split(t, fraction=1.5)
    with pytest.raises(TypeError, match="DataFrame"):
        group_split([1, 2], n_groups=1)


def test_state_farm_drivers(shared_data):
    csv = shared_data("statefarm-80x60") / "driver_imgs_list.csv"
    train, valid = group_split(csv, "subject", n_groups=3, seed=0)
    assert len(train) + len(valid) == 22424
    assert not set(train.subject) & set(valid.subject)
    assert train.subject.nunique() == 23
    paths, classes = table_files(valid, csv.parent / "train")
    assert all(os.path.isfile(p) for p in paths[:50])
    assert classes[0] == valid.classname.iloc[0]


def _src(tmp_path, name="src", per=(6, 4, 5)):
    for c, n in enumerate(per):
        folder = tmp_path / name / f"c{c}"
        folder.mkdir(parents=True)
        for i in range(n):
            (folder / f"{name}_{c}_{i}.jpg").write_bytes(bytes([c, i]))
    return tmp_path / name


@pytest.mark.parametrize("mode", ["symlink", "hardlink", "copy"])
def test_make_sample_modes(tmp_path, mode):
    src = _src(tmp_path)
    out = make_sample(src, tmp_path / "sample", 7, 5, seed=1, mode=mode)
    assert out["train"] == 7 and out["valid"] == 5
    train = sorted((tmp_path / "sample" / "train").rglob("*.jpg"))
    valid = sorted((tmp_path / "sample" / "valid").rglob("*.jpg"))
    assert len(train) == 7 and len(valid) == 5
    assert not {p.name for p in train} & {p.name for p in valid}
    assert sorted(os.listdir(tmp_path / "sample" / "valid")) == [
        "c0", "c1", "c2"]
    for p in train + valid:  # right class folder, same bytes
        assert p.read_bytes() == (src / p.parent.name / p.name).read_bytes()
        assert p.is_symlink() == (mode == "symlink")
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_make_sample_seeded_and_valid_src(tmp_path):
    src = _src(tmp_path)
    vsrc = _src(tmp_path, "vsrc", per=(3, 3, 3))
    make_sample(src, tmp_path / "s1", 5, 4, seed=3, valid_src=vsrc)
    make_sample(src, tmp_path / "s2", 5, 4, seed=3, valid_src=vsrc)
    names = [sorted(p.name for p in (tmp_path / s).rglob("*.jpg"))
             for s in ("s1", "s2")]
    assert names[0] == names[1]
    valid = [p.name for p in (tmp_path / "s1" / "valid").rglob("*.jpg")]
    assert len(valid) == 4 and all(n.startswith("vsrc") for n in valid)


def test_make_sample_refuses_and_leaves_nothing(tmp_path, monkeypatch):
    src = _src(tmp_path)
    with pytest.raises(ValueError, match="15 images"):
        make_sample(src, tmp_path / "s", 10, 10)
    with pytest.raises(ValueError, match="mode"):
        make_sample(src, tmp_path / "s", 1, 1, mode="move")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["src"]
    make_sample(src, tmp_path / "s", 1, 1)
    with pytest.raises(ValueError, match="already exists"):
        make_sample(src, tmp_path / "s", 1, 1)
    # a failure midway (e.g. a full disk) leaves no partial sample folder
    calls = []

    def failing_place(src_path, dst_path, mode):
        calls.append(dst_path)
        if len(calls) == 5:
            raise OSError(28, "No space left on device")
        splits_place(src_path, dst_path, mode)

    splits_place = splits._place
    monkeypatch.setattr(splits, "_place", failing_place)
    with pytest.raises(OSError, match="No space"):
        make_sample(src, tmp_path / "t", 8, 2, mode="copy")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s", "src"]
    assert np.all([not p.name.startswith(".") for p in tmp_path.iterdir()])
