"""MixedBatches: exact composition, each labelled example once, errors."""

import keras
import numpy as np
import pytest

from kerasdl.data.mixed import MixedBatches


def _labelled(n, offset=0, k=3):
    x = (np.arange(n) + offset).astype("float32")[:, None]
    y = np.eye(k, dtype="float32")[np.arange(n) % k]
    return x, y


def test_every_batch_has_the_asked_composition_and_epoch_covers_source0():
    lab = _labelled(96)                 # ids 0..95
    pseudo = _labelled(20, offset=1000)  # ids 1000..1019, cycled
    mix = MixedBatches([lab, pseudo], batch_sizes=[48, 16], seed=3)
    assert len(mix) == 2
    for epoch in range(3):
        seen = []
        for i in range(len(mix)):
            x, y = mix[i]
            ids = x[:, 0]
            assert x.shape == (64, 1) and y.shape == (64, 3)
            assert (ids[:48] < 1000).all() and (ids[48:] >= 1000).all()
            seen.extend(ids[:48].astype(int).tolist())
            # labels travel with their rows
            np.testing.assert_array_equal(y.argmax(1),
                                          (ids.astype(int) % 1000) % 3)
        assert sorted(seen) == list(range(96)), f"epoch {epoch}"
        mix.on_epoch_end()


def test_pseudo_source_cycles_through_every_row():
    lab, pseudo = _labelled(100), _labelled(30, offset=1000)
    mix = MixedBatches([lab, pseudo], batch_sizes=[10, 3], seed=0)
    rows = np.concatenate([mix[i][0][10:, 0] for i in range(len(mix))])
    assert len(rows) == 30 and sorted(rows.astype(int)) == list(
        range(1000, 1030))


def test_uneven_last_batch_is_topped_up_not_shrunk():
    mix = MixedBatches([_labelled(50), _labelled(7, 1000)],
                       batch_sizes=[16, 4])
    assert len(mix) == 4
    ids = np.concatenate([mix[i][0][:16, 0] for i in range(4)]).astype(int)
    assert set(ids) == set(range(50))          # every example seen
    assert len(ids) == 64 and len(ids) - len(set(ids)) == 14


def test_fractions_and_reproducibility():
    sources = [_labelled(64), _labelled(64, 1000)]
    a = MixedBatches(sources, fractions=[0.75, 0.25], batch_size=32, seed=5)
    b = MixedBatches(sources, fractions=[0.75, 0.25], batch_size=32, seed=5)
    assert a.batch_sizes == [24, 8]
    np.testing.assert_array_equal(a[1][0], b[1][0])
    c = MixedBatches(sources, fractions=[0.75, 0.25], batch_size=32, seed=6)
    assert not np.array_equal(a[1][0], c[1][0])


def test_sample_weights_per_source():
    mix = MixedBatches([_labelled(8), _labelled(8, 1000)],
                       batch_sizes=[4, 2], weights=[1.0, 0.5])
    x, y, w = mix[0]
    np.testing.assert_array_equal(w, [1, 1, 1, 1, 0.5, 0.5])


def test_memmap_source(tmp_path):
    x, y = _labelled(40)
    np.save(tmp_path / "x.npy", x)
    xm = np.load(tmp_path / "x.npy", mmap_mode="r")
    mix = MixedBatches([(xm, y), _labelled(10, 1000)], batch_sizes=[8, 2])
    got = np.concatenate([mix[i][0][:8, 0] for i in range(len(mix))])
    assert sorted(got.astype(int)) == list(range(40))


class _Batches(keras.utils.PyDataset):
    def __init__(self, x, y, batch_size):
        super().__init__()
        self.x, self.y, self.bs = x, y, batch_size

    def __len__(self):
        return -(-len(self.x) // self.bs)

    def __getitem__(self, i):
        s = slice(i * self.bs, (i + 1) * self.bs)
        return self.x[s], self.y[s]


def test_pydataset_source_is_recut_to_the_asked_rows():
    pseudo = _Batches(*_labelled(25, 1000), batch_size=7)
    mix = MixedBatches([_labelled(60), pseudo], batch_sizes=[12, 5])
    rows = np.concatenate([mix[i][0][12:, 0] for i in range(len(mix))])
    assert len(rows) == 25 and sorted(rows.astype(int)) == list(
        range(1000, 1025))
    with pytest.raises(ValueError, match="read batch after batch"):
        mix[2]


def test_trains_a_model():
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(3)])
    model.compile("sgd", keras.losses.CategoricalCrossentropy(
        from_logits=True))
    mix = MixedBatches([_labelled(64), _labelled(16, 1000)],
                       batch_sizes=[12, 4])
    history = model.fit(mix, epochs=2, verbose=0)
    assert len(history.history["loss"]) == 2


@pytest.mark.parametrize("kwargs,needle", [
    ({"batch_sizes": [4]}, "positive integer for each of the 2 sources"),
    ({"fractions": [0.7, 0.4], "batch_size": 10}, "must sum to 1"),
    ({"fractions": [0.7, 0.3], "batch_size": 16}, "whole rows"),
    ({"fractions": [0.5, 0.5]}, "Pass `batch_sizes`"),
])
def test_bad_compositions(kwargs, needle):
    with pytest.raises(ValueError, match=needle):
        MixedBatches([_labelled(8), _labelled(8)], **kwargs)


def test_bad_sources():
    x, y = _labelled(10)
    with pytest.raises(ValueError, match=r"Source 1.*same number of rows.*"
                                         r"Found x: 10, y: 9"):
        MixedBatches([(x, y), (x, y[:9])], batch_sizes=[2, 2])
    with pytest.raises(ValueError, match="Source 1 is empty"):
        MixedBatches([(x, y), (x[:0], y[:0])], batch_sizes=[2, 2])
    with pytest.raises(ValueError, match="one-hot"):
        MixedBatches([(x, y), (x, y.argmax(1))], batch_sizes=[2, 2])
    with pytest.raises(ValueError, match="non-empty list"):
        MixedBatches([], batch_sizes=[])


def _tag(x, rng):
    """Adds a seeded random offset of at least 10000 to every row."""
    return x + 10000 + rng.integers(0, 100, (len(x), 1))


def test_augment_touches_only_its_source_and_keeps_composition():
    lab, pseudo = _labelled(96), _labelled(20, offset=1000)
    plain = MixedBatches([lab, pseudo], batch_sizes=[48, 16], seed=3)
    mix = MixedBatches([lab, pseudo], batch_sizes=[48, 16], seed=3,
                       augment=[None, _tag])
    for i in range(len(mix)):
        (x, y), (x0, y0) = mix[i], plain[i]
        assert x.shape == (64, 1) and len(mix) == len(plain)
        np.testing.assert_array_equal(x[:48], x0[:48])  # labels untouched
        np.testing.assert_array_equal(y, y0)            # targets untouched
        extra = x[48:] - x0[48:]
        assert (extra >= 10000).all() and (extra < 10100).all()


def test_augment_is_seeded_per_step_and_source():
    lab, pseudo = _labelled(32), _labelled(32, offset=1000)

    def make(seed):
        return MixedBatches([lab, pseudo], batch_sizes=[8, 8], seed=seed,
                            augment=[_tag, _tag])

    a, b, c = make(1), make(1), make(2)
    np.testing.assert_array_equal(a[2][0], b[2][0])
    assert not np.array_equal(a[2][0], c[2][0])
    # sources and steps draw from different streams
    x = a[0][0] - MixedBatches([lab, pseudo], batch_sizes=[8, 8],
                               seed=1)[0][0]
    assert not np.array_equal(x[:8], x[8:])
    assert not np.array_equal(a[0][0] - a[1][0], x)


def test_bad_augment():
    lab = _labelled(10)
    with pytest.raises(ValueError, match="one for each|callable"):
        MixedBatches([lab, lab], batch_sizes=[2, 2], augment=[None])
    with pytest.raises(ValueError, match="callable"):
        MixedBatches([lab], batch_sizes=[2], augment=["cutout"])
    mix = MixedBatches([lab], batch_sizes=[2],
                       augment=[lambda x, rng: x[:1]])
    with pytest.raises(ValueError, match="keep it"):
        mix[0]


def test_replicas_each_get_the_batch_composition():
    x1, y1 = np.zeros((96, 2)), np.zeros((96, 1))
    x2, y2 = np.ones((40, 2)), np.ones((40, 1))
    x1[:, 1], x2[:, 1] = np.arange(96), 1000 + np.arange(40)
    plain = MixedBatches([(x1, y1), (x2, y2)], batch_sizes=[48, 16],
                         weights=[1.0, 0.5], seed=3)
    split = MixedBatches([(x1, y1), (x2, y2)], batch_sizes=[48, 16],
                         weights=[1.0, 0.5], seed=3, replicas=4)
    for i in range(len(split)):
        x, y, w = split[i]
        for part in np.split(np.arange(64), 4):  # what each replica gets
            assert x[part, 0].sum() == 4  # 12 labelled + 4 pseudo rows
            np.testing.assert_array_equal(y[part, 0], x[part, 0])
            np.testing.assert_array_equal(w[part], np.where(
                x[part, 0] == 1, 0.5, 1.0))
        # the same rows as without replicas, only in another order
        xp, yp, wp = plain[i]
        np.testing.assert_array_equal(np.sort(x[:, 1]), np.sort(xp[:, 1]))
    with pytest.raises(ValueError, match="divide by 3"):
        MixedBatches([(x1, y1), (x2, y2)], batch_sizes=[48, 16], replicas=3)
    with pytest.raises(ValueError, match="replicas"):
        MixedBatches([(x1, y1), (x2, y2)], batch_sizes=[48, 16], replicas=0)
