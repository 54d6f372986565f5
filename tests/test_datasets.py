"""Bundled Fashion-MNIST sample and the IDX reader."""

import gzip

import numpy as np
import pytest

from kerasdl.data import datasets


def test_bundled_sample_is_balanced():
    (x, y), (xv, yv), names = datasets.load_fashion_sample()
    assert x.shape == (5000, 28, 28, 1) and x.dtype == np.uint8
    assert xv.shape == (1000, 28, 28, 1)
    assert np.bincount(y).tolist() == [500] * 10
    assert np.bincount(yv).tolist() == [100] * 10
    assert len(names) == 10


def test_sample_rows_are_real_fashion_mnist(shared_data):
    folder = shared_data("fashion-mnist")
    (xt, _), (xtest, _), _ = datasets.load_fashion_mnist(str(folder))
    (x, _), (xv, _), _ = datasets.load_fashion_sample()
    train = {row.tobytes() for row in xt[:, :, :, 0]}
    assert all(img[:, :, 0].tobytes() in train for img in x[:50])
    test = {row.tobytes() for row in xtest[:, :, :, 0]}
    assert all(img[:, :, 0].tobytes() in test for img in xv[:50])


def test_idx_reader_rejects_truncated(tmp_path):
    good = tmp_path / "a-idx1-ubyte.gz"
    with gzip.open(good, "wb") as f:
        f.write(bytes([0, 0, 8, 1]) + (3).to_bytes(4, "big") + b"\x01\x02\x03")
    assert datasets.read_idx(good).tolist() == [1, 2, 3]
    bad = tmp_path / "b-idx1-ubyte.gz"
    with gzip.open(bad, "wb") as f:
        f.write(bytes([0, 0, 8, 1]) + (5).to_bytes(4, "big") + b"\x01")
    with pytest.raises(ValueError, match="truncated"):
        datasets.read_idx(bad)


def test_missing_fashion_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="dataset-fashion-mnist"):
        datasets.load_fashion_mnist(str(tmp_path))
