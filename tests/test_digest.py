"""The block digest that writer threads take while they write."""

import threading

import numpy as np
import pytest

from kerasdl.data import _digest


def _cuts(rng, size, n):
    """``n`` pieces ``(offset, length)`` that tile ``[0, size)``."""
    bounds = np.unique(np.r_[0, rng.integers(0, size, n - 1), size])
    return list(zip(bounds[:-1], np.diff(bounds)))


@pytest.mark.parametrize("size", [1, 63, 64, 65, 640, 1000, 4099])
def test_pieces_in_any_order_give_the_file_digest(tmp_path, monkeypatch,
                                                  size):
    monkeypatch.setattr(_digest, "BLOCK", 64)
    rng = np.random.default_rng(size)
    data = rng.integers(0, 256, size, np.uint8).tobytes()
    path = tmp_path / "f.bin"
    path.write_bytes(data)
    want = _digest.file_digest(path)
    assert want == _digest.file_digest_of_bytes(data)
    for n in (1, 2, 7, 40):
        cuts = _cuts(rng, size, min(n, size))
        order = rng.permutation(len(cuts))
        pieces = _digest.Pieces()
        workers = [threading.Thread(target=lambda ks: [
            pieces.add(int(cuts[k][0]), data[cuts[k][0]:sum(cuts[k])])
            for k in ks], args=(order[i::3],)) for i in range(3)]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        assert pieces.digest(size) == want
        assert not pieces.parts  # nothing kept once the blocks are whole


def test_digest_changes_with_any_byte_order_or_length(monkeypatch):
    monkeypatch.setattr(_digest, "BLOCK", 64)
    data = bytearray(np.random.default_rng(1).integers(0, 256, 300,
                                                       np.uint8).tobytes())
    base = _digest.file_digest_of_bytes(data)
    flipped = bytearray(data)
    flipped[200] ^= 1
    swapped = data[64:128] + data[:64] + data[128:]
    assert _digest.file_digest_of_bytes(flipped) != base
    assert _digest.file_digest_of_bytes(swapped) != base
    assert _digest.file_digest_of_bytes(data[:-1]) != base
    assert _digest.file_digest_of_bytes(data + b"\0") != base
    assert len(base) == 16 and int(base, 16) >= 0


def test_a_gap_or_an_overlap_gives_no_digest(monkeypatch):
    monkeypatch.setattr(_digest, "BLOCK", 64)
    data = bytes(range(200))
    gap = _digest.Pieces()
    gap.add(0, data[:100])
    gap.add(110, data[110:])
    assert gap.digest(200) is None
    overlap = _digest.Pieces()
    overlap.add(0, data[:130])
    overlap.add(120, data[120:])
    assert overlap.digest(200) is None
    short = _digest.Pieces()
    short.add(0, data)
    assert short.digest(260) is None  # bytes missing at the end


def test_real_block_size_over_several_megabytes(tmp_path):
    rng = np.random.default_rng(2)
    data = rng.integers(0, 256, 3 * _digest.BLOCK + 12345, np.uint8)
    path = tmp_path / "f.bin"
    data.tofile(path)
    pieces = _digest.Pieces()
    for offset, length in reversed(_cuts(rng, data.size, 9)):
        pieces.add(int(offset), data[offset:offset + length])
    assert pieces.digest(data.size) == _digest.file_digest(path)
