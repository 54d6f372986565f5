"""Datasets: the bundled Fashion-MNIST sample and readers for the full set.

Nothing here downloads at import time. Files are read with
``allow_pickle=False``.
"""

import gzip
import os
import sys

import numpy as np

FASHION_CLASSES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)
_SAMPLE = "fashion-mnist-sample.npz"


def _sample_path():
    here = os.path.dirname(os.path.abspath(__file__))
    candidates = [
        os.environ.get("KERASDL_DATA", ""),
        os.path.join(here, os.pardir, os.pardir, "data"),  # a checkout
        os.path.join(sys.prefix, "share", "kerasdl"),  # an installed wheel
    ]
    for folder in candidates:
        path = os.path.join(folder, _SAMPLE)
        if folder and os.path.isfile(path):
            return os.path.normpath(path)
    raise FileNotFoundError(
        f"The bundled sample {_SAMPLE} was not found in "
        f"{[c for c in candidates if c]}. Reinstall kerasdl or set "
        f"KERASDL_DATA to the folder that holds it."
    )


def load_fashion_sample(channels_last=True):
    """The Fashion-MNIST sample shipped with kerasdl (MIT licence).

    5,000 training images (500 per class) and 1,000 validation images
    (100 per class, from the Fashion-MNIST test set), 28x28 uint8.

    Example:

    >>> (x, y), (xv, yv), names = load_fashion_sample()
    >>> x.shape, xv.shape, names[9]
    ((5000, 28, 28, 1), (1000, 28, 28, 1), 'Ankle boot')

    Args:
        channels_last: bool. Add a trailing channel axis.
            Defaults to ``True``.

    Returns:
        ``((x_train, y_train), (x_valid, y_valid), class_names)``.
    """
    with np.load(_sample_path(), allow_pickle=False) as f:
        arrays = {k: f[k] for k in ("x_train", "y_train", "x_valid",
                                    "y_valid")}
    if channels_last:
        for k in ("x_train", "x_valid"):
            arrays[k] = arrays[k][..., None]
    return ((arrays["x_train"], arrays["y_train"]),
            (arrays["x_valid"], arrays["y_valid"]), FASHION_CLASSES)


def load_fashion_mnist(path=None, channels_last=True):
    """The full Fashion-MNIST from its four IDX ``.gz`` files.

    Args:
        path: str or None. Folder with ``train-images-idx3-ubyte.gz`` and
            the three other files. Defaults to the Debian package's folder
            ``/usr/share/datasets/fashion-mnist``
            (``apt-get install dataset-fashion-mnist``).
        channels_last: bool. Add a trailing channel axis.

    Returns:
        ``((x_train, y_train), (x_test, y_test), class_names)``.
    """
    path = path or "/usr/share/datasets/fashion-mnist"
    names = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
             "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")
    missing = [n for n in names if not os.path.isfile(os.path.join(path, n))]
    if missing:
        raise FileNotFoundError(
            f"Fashion-MNIST files missing in {path!r}: {', '.join(missing)}. "
            f"Install them with `apt-get install dataset-fashion-mnist` or "
            f"pass the folder that holds them."
        )
    xt, yt, xv, yv = (read_idx(os.path.join(path, n)) for n in names)
    if channels_last:
        xt, xv = xt[..., None], xv[..., None]
    return (xt, yt), (xv, yv), FASHION_CLASSES


def read_idx(path):
    """Reads one IDX file (optionally gzipped) into a numpy array."""
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] != 8:
        raise ValueError(
            f"{path!r} is not an IDX file of unsigned bytes (magic "
            f"0x000008..). Found {data[:4].hex() or 'an empty file'}."
        )
    ndim = data[3]
    dims = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big")
            for i in range(ndim)]
    expected = 4 + 4 * ndim + int(np.prod(dims))
    if len(data) != expected:
        raise ValueError(
            f"{path!r} is truncated or padded: header says {dims} "
            f"({expected} bytes), file has {len(data)} bytes."
        )
    return np.frombuffer(data, np.uint8, offset=4 + 4 * ndim).reshape(dims)
