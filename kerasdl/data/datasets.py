"""Datasets: the bundled Fashion-MNIST sample and readers for the full set.

Nothing here downloads at import time. Files are read with
``allow_pickle=False``.
"""

import gzip
import math
import os
import re
import sys

import numpy as np

from kerasdl import _validate

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
    expected = 4 + 4 * ndim + math.prod(dims)
    if len(data) != expected:
        raise ValueError(
            f"{path!r} is truncated or padded: header says {dims} "
            f"({expected} bytes), file has {len(data)} bytes."
        )
    return np.frombuffer(data, np.uint8, offset=4 + 4 * ndim).reshape(dims)


# name -> (url, md5 published by GroupLens beside the zip, or None when the
# archive changes over time and the published .md5 file is read instead)
MOVIELENS = {
    "ml-100k": ("https://files.grouplens.org/datasets/movielens/ml-100k.zip",
                "0e33842e24a9c977be4e0107933c0723"),
    "ml-1m": ("https://files.grouplens.org/datasets/movielens/ml-1m.zip",
              "c4d9eecfca2ab87c1945afe126590906"),
    "ml-latest-small": (
        "https://files.grouplens.org/datasets/movielens/ml-latest-small.zip",
        None),
}


def fetch(name, cache_dir=None):
    """Downloads and extracts a MovieLens data set, checking its checksum.

    Uses ``keras.utils.get_file`` (cached under ``~/.keras/datasets``). The
    ml-100k and ml-1m archives are checked against the md5 GroupLens
    publishes beside them (pinned here). ml-latest-small is regenerated by
    GroupLens from time to time, so its md5 is read from the published
    ``ml-latest-small.zip.md5`` at download time; note that the current
    archive is not the 2016 snapshot the 2017 course used.

    Example:

    >>> path = fetch("ml-100k")  # doctest: +SKIP
    >>> sorted(os.listdir(path))[:3]  # doctest: +SKIP
    ['README', 'allbut.pl', 'mku.sh']

    Args:
        name: str. ``"ml-100k"``, ``"ml-latest-small"`` or ``"ml-1m"``.
        cache_dir: str or None. Cache folder (default ``~/.keras``).

    Returns:
        The path of the extracted folder (holding ``u.data``,
        ``ratings.csv`` or ``ratings.dat``).

    Raises:
        ValueError: an unknown name, or a download whose checksum differs.
        ConnectionError: the download failed (offline); the message says to
            pass ``--data`` with a folder instead.
    """
    _validate.choice(name, "name", tuple(sorted(MOVIELENS)),
                     hint="These are the MovieLens data sets kerasdl "
                          "knows.")
    import keras

    url, md5 = MOVIELENS[name]
    try:
        if md5 is None:
            md5 = _published_md5(url + ".md5")
        folder = keras.utils.get_file(
            f"{name}.zip", url, file_hash=md5, hash_algorithm="md5",
            extract=True, cache_dir=cache_dir)
    except ValueError:
        raise
    except Exception as e:  # get_file raises a bare Exception when offline
        raise ConnectionError(
            f"could not download {name} from {url} ({' '.join(str(e).split())}"
            f"); offline, pass --data DIR with an extracted copy of {name}."
        ) from None
    inner = os.path.join(folder, name)
    return inner if os.path.isdir(inner) else folder


def _published_md5(url):
    """The md5 in a published ``.md5`` file (``MD5 (f) = HEX`` or
    ``HEX  f``), read straight from ``url`` (a few bytes: no cache, no
    progress bar); refuses a file holding no 32-digit hex digest."""
    from urllib.request import urlopen

    with urlopen(url, timeout=60) as response:
        text = response.read(4096).decode("utf-8", errors="replace")
    found = re.findall(r"(?<![0-9a-fA-F])[0-9a-fA-F]{32}(?![0-9a-fA-F])",
                       text)
    if len(set(d.lower() for d in found)) != 1:
        raise ValueError(
            f"the checksum file {url} holds "
            f"{'no' if not found else 'more than one'} md5 digest: "
            f"{text[:80]!r}. The download cannot be checked; try again "
            f"later or pass --data DIR with an extracted copy.")
    return found[0].lower()
