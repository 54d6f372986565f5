"""kerasdl._files: atomic_path gives the usual file mode (or keeps the
replaced file's), leaves nothing on failure and removes temporaries of
dead writers; FolderLock admits one holder at a time."""

import os
import time

import pytest

from kerasdl import _files


def _write(path, text):
    with _files.atomic_path(path) as tmp:
        with open(tmp, "w") as f:
            f.write(text)


def test_new_files_get_the_mode_of_the_umask(tmp_path):
    old = os.umask(0o027)
    try:
        _write(tmp_path / "a.csv", "x")
    finally:
        os.umask(old)
    assert os.stat(tmp_path / "a.csv").st_mode & 0o777 == 0o640


def test_replaced_files_keep_their_mode(tmp_path):
    target = tmp_path / "a.csv"
    target.write_text("old")
    os.chmod(target, 0o604)
    _write(target, "new")
    assert target.read_text() == "new"
    assert os.stat(target).st_mode & 0o777 == 0o604


def test_failure_leaves_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "a.csv"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with _files.atomic_path(target) as tmp:
            with open(tmp, "w") as f:
                f.write("half")
            raise RuntimeError("stopped")
    assert target.read_text() == "old"
    assert os.listdir(tmp_path) == ["a.csv"]


def test_old_unowned_temporaries_are_removed(tmp_path):
    # forms written by earlier versions: removed once an hour old
    old = [tmp_path / ".tmp-abcd1234a.csv", tmp_path / ".a.csv.abcd1234.tmp"]
    young = tmp_path / ".tmp-wxyz9876a.csv"
    for path in old + [young]:
        path.write_text("x")
    for path in old:
        os.utime(path, (time.time() - 7200,) * 2)
    _write(tmp_path / "a.csv", "new")
    assert sorted(os.listdir(tmp_path)) == [".tmp-wxyz9876a.csv", "a.csv"]


def test_folder_lock_one_holder_at_a_time(tmp_path):
    first = _files.FolderLock(tmp_path, "precompute").acquire()
    assert f"pid {os.getpid()}" in (tmp_path / ".lock").read_text()
    with pytest.raises(_files.FolderBusyError, match=(
            f"in use: another precompute \\(process {os.getpid()} on host")):
        _files.FolderLock(tmp_path, "precompute").acquire()
    first.release()
    assert os.listdir(tmp_path) == []
    with _files.FolderLock(tmp_path, "precompute"):
        assert os.listdir(tmp_path) == [".lock"]
    assert os.listdir(tmp_path) == []
