"""Reading precomputed features: a memory-mapped ``FeatureSet`` and
``FeatureBatches``, shuffled batches read block by block so that a dense
head trains on feature sets larger than memory."""

import os
import threading

import keras
import numpy as np

from kerasdl import _validate
from kerasdl.data import arrays

__all__ = ["FeatureBatches", "FeatureSet", "load_features"]


class FeatureSet:
    """Features saved by ``kerasdl.features.precompute``, memory-mapped.

    Attributes: ``features`` (read-only ``numpy.memmap``), ``labels`` (or
    ``None``), ``manifest`` (how they were made) and ``path``.

    Opening checks that the files are whole: every file's size against its
    manifest (free), labels present when the manifest says the set has
    them, as many labels as feature rows, and with ``verify`` the checksum
    of every data file (features: an XXH3 block digest; labels: CRC-32),
    which finds flipped or overwritten bytes at the cost of one
    sequential read of the files (the disk's speed; from the page cache
    several GB/s for the features).

    Example:

    >>> import tempfile, numpy as np
    >>> from kerasdl.data.arrays import save_array
    >>> d = tempfile.mkdtemp()
    >>> save_array(f"{d}/labels", np.arange(6) % 2)
    >>> save_array(f"{d}/features", np.ones((6, 2, 2, 4), "float16"))
    >>> fs = FeatureSet(d)
    >>> len(fs), fs.batches(4, shuffle=False)[1][0].shape
    (6, (2, 2, 2, 4))

    Args:
        path: str. The folder given to ``precompute``.
        verify: bool. Check the checksums. Defaults to ``True``.

    Raises:
        ValueError: no complete feature set in ``path``, or a damaged one;
            the message names the file.
    """

    REMEDY = ("Run precompute again with overwrite=True to rebuild the "
              "feature cache.")

    def __init__(self, path, *, verify=True):
        self.path = os.fspath(path)
        base = os.path.join(self.path, "features")
        self.features = arrays.load_array(base, verify=verify,
                                          remedy=self.REMEDY)
        self.manifest = arrays.read_manifest(base)["metadata"]
        self.labels = self._labels(verify)

    def _labels(self, verify):
        labels = os.path.join(self.path, "labels")
        wanted = self.manifest.get("labels")
        if wanted is None:  # a set saved by hand: labels if saved
            wanted = any(os.path.exists(labels + e) for e in (".npy",
                                                               ".json"))
        if not wanted:
            return None
        try:
            y = arrays.load_array(labels, verify=verify)
        except arrays.ArrayFileError as e:
            raise arrays.ArrayFileError(
                f"The feature set in {self.path!r} has labels, but: "
                f"{e.problem}", self.REMEDY) from None
        if y.ndim == 0 or len(y) != len(self.features):
            raise arrays.ArrayFileError(
                f"{labels + '.npy'!r} holds {y.shape} labels for "
                f"{len(self.features)} feature rows: the files do not "
                f"belong together.", self.REMEDY)
        return y

    def __len__(self):
        return len(self.features)

    def batches(self, batch_size=64, **kwargs):
        """A ``FeatureBatches`` over this set; kwargs go to it."""
        return FeatureBatches(self.features, self.labels,
                              batch_size=batch_size, **kwargs)


def load_features(path, *, verify=True):
    """Opens the ``FeatureSet`` saved in ``path`` (see ``FeatureSet``).

    Args:
        path: str. The folder given to ``precompute``.
        verify: bool. Check the files' checksums (one read of them).
            Defaults to ``True``.

    Returns:
        A ``FeatureSet``.

    Raises:
        ValueError: no complete feature set in ``path``, or a damaged one.
    """
    return FeatureSet(path, verify=verify)


class FeatureBatches(keras.utils.PyDataset):
    """Shuffled batches from a (memory-mapped) feature array, read in blocks.

    Each epoch the rows are cut into blocks of ``block_rows`` consecutive
    rows; the blocks are put in a random order and taken ``window_blocks``
    at a time. A window is read into memory with sequential reads, its rows
    are shuffled, and batches are cut from it. At most two windows
    (``2 * window_blocks * block_rows`` rows) are in memory at once, so the
    feature file can be far larger than RAM. The order of epoch ``e``
    depends only on ``(seed, e)``.

    Example:

    >>> import numpy as np
    >>> x, y = np.arange(10.0)[:, None], np.arange(10)
    >>> b = FeatureBatches(x, y, batch_size=5, block_rows=2, seed=0)
    >>> sorted(np.concatenate([b[0][1], b[1][1]]).tolist()) == list(range(10))
    True

    Args:
        features: array (or ``numpy.memmap``) of shape ``(n, ...)``.
        labels: array of ``n`` labels, or ``None``.
        batch_size: int. Defaults to 64.
        shuffle: bool. Defaults to ``True``.
        seed: int. Defaults to 0.
        block_rows: int. Rows per block. Defaults to 256.
        window_blocks: int. Blocks shuffled together. Defaults to 8.
        **kwargs: passed to ``keras.utils.PyDataset``.

    Raises:
        TypeError: a count or seed that is not an integer.
        ValueError: a count below 1, a negative seed, or labels and
            features of different lengths.
    """

    def __init__(self, features, labels=None, *, batch_size=64, shuffle=True,
                 seed=0, block_rows=256, window_blocks=8, **kwargs):
        super().__init__(**kwargs)
        batch_size = _validate.integer(batch_size, "batch_size", low=1)
        block_rows = _validate.integer(block_rows, "block_rows", low=1)
        window_blocks = _validate.integer(window_blocks, "window_blocks",
                                          low=1)
        seed = _validate.integer(seed, "seed", low=0)
        self.x = features
        self.y = None if labels is None else np.asarray(labels)
        if self.y is not None:
            _validate.same_length("features", self.x, "labels", self.y)
        self.batch_size, self.shuffle, self.seed = batch_size, shuffle, seed
        self.block_rows, self.window_blocks = block_rows, window_blocks
        self.epoch = 0
        self._lock = threading.Lock()
        self._plan()

    def __len__(self):
        return -(-len(self.x) // self.batch_size)

    def on_epoch_end(self):
        self.epoch += 1
        self._plan()

    def _plan(self):
        n = len(self.x)
        blocks = np.arange(-(-n // self.block_rows))
        self._cache = {}
        if not self.shuffle:
            self._order = None
            return
        rng = np.random.default_rng([self.seed, self.epoch])
        blocks = blocks[rng.permutation(len(blocks))]
        order, window_of, windows = [], [], []
        for w, start in enumerate(range(0, len(blocks), self.window_blocks)):
            chosen = np.sort(blocks[start:start + self.window_blocks])
            spans = [(b * self.block_rows, min(n, (b + 1) * self.block_rows))
                     for b in chosen]
            rows = np.concatenate([np.arange(a, b) for a, b in spans])
            order.append(rows[rng.permutation(len(rows))])
            window_of.append(np.full(len(rows), w))
            windows.append(spans)
        self._order = np.concatenate(order)
        self._window_of = np.concatenate(window_of)
        self._windows = windows

    def _window(self, w):
        with self._lock:
            if w not in self._cache:
                spans = self._windows[w]
                data = np.concatenate([np.asarray(self.x[a:b])
                                       for a, b in spans])
                rows = np.concatenate([np.arange(a, b) for a, b in spans])
                for old in [k for k in self._cache if k < w - 1]:
                    del self._cache[old]  # keep two windows at most
                self._cache[w] = (rows, data)
            return self._cache[w]

    def __getitem__(self, index):
        if not 0 <= index < len(self):
            raise IndexError(f"Batch {index} out of range (0..{len(self)-1})")
        sl = slice(index * self.batch_size, (index + 1) * self.batch_size)
        if self._order is None:  # in file order: one sequential read
            x = np.asarray(self.x[sl])
            return x if self.y is None else (x, self.y[sl])
        rows, wins = self._order[sl], self._window_of[sl]
        parts = []
        for w in np.unique(wins):
            wrows, data = self._window(int(w))
            pick = rows[wins == w]
            parts.append((np.nonzero(wins == w)[0],
                          data[np.searchsorted(wrows, pick)]))
        x = np.empty((len(rows),) + self.x.shape[1:], self.x.dtype)
        for pos, values in parts:
            x[pos] = values
        if self.y is None:
            return x
        return x, self.y[rows]
