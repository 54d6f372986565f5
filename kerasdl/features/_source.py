"""What ``precompute`` reads: uint8 arrays or an ``ImageBatches``, seen as
numbered batches of a fixed size, with the fingerprint that names them in
the cache's manifest."""

import concurrent.futures
import hashlib
import os

import numpy as np

from kerasdl import _validate

try:
    import xxhash
except ImportError:  # installed with kerasdl; a bare environment hashes
    xxhash = None  # with blake2b (the same bytes, slower)

# Bytes per block: blocks are hashed on several threads (the hashes release
# the GIL), then their digests are hashed in order.
_BLOCK_BYTES = 64 << 20


def hasher():
    """``(name, hash object)``: XXH3-128, or blake2b without xxhash."""
    if xxhash is not None:
        return "xxh3", xxhash.xxh3_128()
    return "blake2b", hashlib.blake2b(digest_size=16)


def _block_digests(x):
    """The digests of ``x``'s row blocks, in order (hashed on up to 16
    threads: blake2b runs at about 0.5 GB/s a core, XXH3 at memory
    speed)."""
    rows = max(1, _BLOCK_BYTES // max(1, x[:1].nbytes))
    starts = range(0, len(x), rows)

    def one(i):
        h = hasher()[1]
        h.update(np.ascontiguousarray(x[i:i + rows]).reshape(-1))
        return h.digest()

    workers = min(16, os.cpu_count() or 1, len(starts))
    if workers < 2:
        return b"".join(one(i) for i in starts)
    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        return b"".join(pool.map(one, starts))


def array_fingerprint(x, y=None, key=None):
    """The cache's name for images ``x`` (and labels ``y``).

    Without ``key`` every byte of ``x`` and ``y`` is hashed, with their
    shapes and dtypes: xxHash's XXH3 (128 bits, tens of GB/s) over blocks
    of 64 MB on several threads, then over the blocks' digests; blake2b
    the same way where the xxhash package is missing (about 0.5 GB/s a
    core); the name of the hash is part of the fingerprint. Any changed
    byte, row order, shape or dtype gives another fingerprint; only a
    deliberate 128-bit collision would not. With ``key`` nothing of
    ``x`` is read: the fingerprint is the key, the shape and dtype of
    ``x`` and the hash of the labels, so data changed under the same key
    and shape is *not* detected.
    """
    if key is not None:
        name, h = "key", hashlib.blake2b(digest_size=16)
        h.update(f"{x.shape}|{x.dtype}|key={key}".encode())
    else:
        name, h = hasher()
        h.update(f"{x.shape}|{x.dtype}".encode())
        h.update(_block_digests(x))
    if y is not None:
        y = np.ascontiguousarray(y)
        h.update(f"|labels{y.shape}|{y.dtype}".encode())
        h.update(y.reshape(-1).view(np.uint8))
    return f"arrays:{name}:{h.hexdigest()}"


class Source:
    """Arrays or an ImageBatches, seen as numbered uint8 batches."""

    def __init__(self, data, batch_rows=128, key=None):
        self.y = None
        if isinstance(data, tuple) and len(data) == 2:
            data, self.y = data
        if isinstance(data, np.ndarray):
            if data.dtype != np.uint8 or data.ndim != 4:
                raise ValueError(
                    f"Images must be a uint8 array (n, height, width, "
                    f"channels). Received {data.dtype} of shape "
                    f"{data.shape}. Convert with np.clip(x, 0, 255)"
                    f".astype('uint8').")
            if self.y is not None:
                self.y = np.asarray(self.y)
                _validate.same_length("images", data, "labels", self.y)
                _validate.finite_array(self.y, "labels")
            self.x, self.batches = data, None
            self.n_rows, self.batch_rows = len(data), batch_rows
            self.image_shape = tuple(data.shape[1:])
            self.fingerprint = array_fingerprint(data, self.y, key)
        elif all(hasattr(data, a) for a in ("fingerprint", "n_images",
                                             "labels_in_order")):
            if data.shuffle:
                raise ValueError(
                    "precompute needs the images in a fixed order: build "
                    "the ImageBatches with shuffle=False (the feature "
                    "reader shuffles when training).")
            self.batches, self.n_rows = data, data.n_images
            self.batch_rows = data.batch_size
            self.image_shape = (*data.image_size, 3)
            # paths, sizes, modification times, labels and settings
            self.fingerprint = f"images:{data.fingerprint()}:{self.n_rows}"
            if key is not None:
                self.fingerprint += f":key={key}"
        else:
            raise TypeError(
                f"`data` must be a uint8 array, a tuple (images, labels) or "
                f"an ImageBatches. Received: {type(data).__name__}.")
        self.n_batches = -(-self.n_rows // self.batch_rows)

    def batch(self, i):
        if self.batches is None:
            return self.x[i * self.batch_rows:(i + 1) * self.batch_rows]
        out = self.batches[i]
        x = out[0] if isinstance(out, tuple) else out
        want = min(self.batch_rows, self.n_rows - i * self.batch_rows)
        if len(x) != want:
            raise ValueError(
                f"Batch {i} has {len(x)} images instead of {want}: a file "
                f"was skipped as bad while decoding. Call batches.scan() "
                f"before precompute so that every batch is full.")
        return x

    def labels(self):
        if self.batches is None:
            return self.y
        return self.batches.labels_in_order()
