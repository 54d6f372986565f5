"""Rebuilds data/fashion-mnist-sample.npz from the Fashion-MNIST IDX files.

    python data/make_fashion_sample.py /usr/share/datasets/fashion-mnist

Takes, with a fixed seed, 500 training images per class from the training
set and 100 per class from the test set, as uint8 arrays of 28x28.
"""

import gzip
import os
import sys

import numpy as np


def read_idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    ndim = data[3]
    dims = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big")
            for i in range(ndim)]
    return np.frombuffer(data, np.uint8, offset=4 + 4 * ndim).reshape(dims)


def stratified(y, per_class, rng):
    picks = [rng.choice(np.flatnonzero(y == c), per_class, replace=False)
             for c in range(10)]
    return rng.permutation(np.concatenate(picks))


def main(src, dst):
    rng = np.random.default_rng(2017)
    xt = read_idx(os.path.join(src, "train-images-idx3-ubyte.gz"))
    yt = read_idx(os.path.join(src, "train-labels-idx1-ubyte.gz"))
    xv = read_idx(os.path.join(src, "t10k-images-idx3-ubyte.gz"))
    yv = read_idx(os.path.join(src, "t10k-labels-idx1-ubyte.gz"))
    it, iv = stratified(yt, 500, rng), stratified(yv, 100, rng)
    np.savez_compressed(dst, x_train=xt[it], y_train=yt[it],
                        x_valid=xv[iv], y_valid=yv[iv])


if __name__ == "__main__":
    here = os.path.dirname(os.path.abspath(__file__))
    main(sys.argv[1], os.path.join(here, "fashion-mnist-sample.npz"))
