"""Bad numbers in MixedBatches sources and arguments, and in
pseudo-labelling: clear errors when the batches are built (or at the
entry of the loop), naming the source, the array and the rows."""

import keras
import numpy as np
import pytest

from kerasdl import pseudo
from kerasdl.data.mixed import MixedBatches

NAN, INF = float("nan"), float("inf")


def _source(n, k=3, offset=0):
    x = (np.arange(n) + offset).astype("float32")[:, None]
    y = np.eye(k, dtype="float32")[np.arange(n) % k]
    return x, y


def _mix(second, **kwargs):
    return MixedBatches([_source(12), second],
                        **{"batch_sizes": [3, 1], **kwargs})


def test_nan_or_infinite_inputs_and_labels_refused():
    x, y = _source(10)
    bad_x = x.copy()
    bad_x[4] = NAN
    with pytest.raises(ValueError, match=r"`x` of `source 1` must hold "
                                         r"finite numbers only.*row 4"):
        _mix((bad_x, y))
    soft = y.copy()
    soft[6] = [NAN, 0.5, 0.5]
    with pytest.raises(ValueError, match=r"`y` of `source 1`.*row 6"):
        _mix((x, soft))
    soft[6] = [INF, 0.0, 0.0]
    with pytest.raises(ValueError, match=r"`y` of `source 1`.*row 6"):
        _mix((x, soft))


def test_soft_labels_must_be_probabilities():
    x, y = _source(10)
    negative = y.copy()
    negative[2] = [-0.5, 1.5, 0.0]
    with pytest.raises(ValueError, match=r"class probabilities.*Found 1 "
                                         r"row\(s\) that do not: 2 \(sum 1\)"):
        _mix((x, negative))
    loose = y.copy()
    loose[[3, 8]] *= 0.8
    with pytest.raises(ValueError, match=r"Found 2 row\(s\).*3 \(sum 0\.8\), "
                                         r"8 \(sum 0\.8\)"):
        _mix((x, loose))
    # within the tolerance, and any targets when asked not to check
    _mix((x, y * (1 + 1e-4)))
    targets = np.random.default_rng(0).normal(size=(10, 3)).astype("f4")
    mix = MixedBatches([(x, targets), (x, targets)], batch_sizes=[2, 2],
                       check_probabilities=False)
    assert mix[0][1].shape == (4, 3)


def test_weights_refused():
    x, y = _source(10)
    for weights, error, needle in (
            ([1, NAN], ValueError, r"`weights\[1\]` must be a finite number "
                                   r">= 0\. Received: weights\[1\]=nan"),
            ([1, INF], ValueError, r"weights\[1\]=inf"),
            ([1, -0.5], ValueError, r"weights\[1\]=-0.5"),
            ([0, 0.0], ValueError, "must not all be 0"),
            ([1], ValueError, "one weight per source"),
            (0.5, TypeError, "a list of one weight per source"),
            ([1, "a"], TypeError, r"weights\[1\]='a'")):
        with pytest.raises(error, match=needle):
            _mix((x, y), weights=weights)
    _, _, sw = _mix((x, y), weights=[1, 0])[0]
    np.testing.assert_array_equal(sw, [1, 1, 1, 0])


def test_sample_weights_of_a_source_checked():
    x, y = _source(10)
    sw = np.ones(10, "float32")
    sw[7] = -1
    with pytest.raises(ValueError, match=r"`sample_weight` of `source 1` "
                                         r"must hold sample weights >= 0.*"
                                         r"row 7"):
        _mix((x, y, sw))
    sw[7] = NAN
    with pytest.raises(ValueError, match=r"`sample_weight` of `source 1`.*"
                                         r"finite.*row 7"):
        _mix((x, y, sw))


def test_dict_inputs_of_different_lengths_refused_at_construction():
    x, y = _source(10)
    inputs = {"image": np.zeros((10, 2), "float32"),
              "meta": np.zeros((9, 1), "float32")}
    with pytest.raises(ValueError, match=r"Source 1: .*same number of rows\. "
                                         r"Found x\['image'\]: 10, "
                                         r"x\['meta'\]: 9, y: 10"):
        MixedBatches([({"image": np.zeros((12, 2), "float32"),
                        "meta": np.zeros((12, 1), "float32")},
                       _source(12)[1]), (inputs, y)], batch_sizes=[3, 1])
    with pytest.raises(ValueError, match=r"Found x: 10, y: 11"):
        _mix((x, np.eye(3, dtype="float32")[np.arange(11) % 3]))


def test_other_arguments_refused():
    x, y = _source(10)
    for kwargs, error, needle in (
            ({"batch_sizes": [True, 1]}, TypeError, r"batch_sizes\[0\]"),
            ({"batch_sizes": [2.5, 1]}, TypeError, r"batch_sizes\[0\]=2.5"),
            ({"batch_sizes": 4}, TypeError, "a list with one value"),
            ({"batch_sizes": None, "fractions": [NAN, 0.5],
              "batch_size": 4}, ValueError, r"fractions\[0\]=nan"),
            ({"batch_sizes": None, "fractions": [0.5, 0.5],
              "batch_size": 4.0}, TypeError, "batch_size=4.0"),
            ({"steps_per_epoch": True}, TypeError, "steps_per_epoch=True"),
            ({"steps_per_epoch": 0}, ValueError, "steps_per_epoch=0"),
            ({"seed": -1}, ValueError, "seed=-1"),
            ({"shuffle": "no"}, TypeError, "`shuffle` must be True or "
                                           "False"),
            ({"replicas": 1.0}, TypeError, "replicas=1.0"),
            ({"augment": lambda x, rng: x}, TypeError, "a list with a "
                                                       "callable"),
            ({"check_probabilities": None}, TypeError,
             "check_probabilities")):
        with pytest.raises(error, match=needle):
            _mix((x, y), **kwargs)


class _Batches(keras.utils.PyDataset):
    def __init__(self, bad_batch=None):
        super().__init__()
        self.bad_batch = bad_batch

    def __len__(self):
        return 3

    def __getitem__(self, i):
        x, y = _source(4, offset=10 * i)
        if i == self.bad_batch:
            y = y * NAN
        return x, y


def test_a_pydataset_source_is_checked_batch_by_batch():
    mix = MixedBatches([_source(12), _Batches()], batch_sizes=[3, 4],
                       shuffle=False)
    assert [mix[i][0].shape for i in range(len(mix))] == [(7, 1)] * 4
    mix = MixedBatches([_source(12), _Batches(bad_batch=1)],
                       batch_sizes=[3, 4], shuffle=False)
    mix[0]
    with pytest.raises(ValueError, match=r"`y` of `source 1, batch 1` must "
                                         r"hold finite numbers"):
        mix[1]


def _images(n, seed):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    x = rng.normal(0, 0.3, (n, 4)).astype("float32")
    x[y == 1, :2] += 2.0
    return x, y


@pytest.fixture(scope="module")
def model():
    keras.utils.set_random_seed(0)
    m = keras.Sequential([keras.Input((4,)),
                          keras.layers.Dense(2, activation="softmax")])
    m.compile(keras.optimizers.Adam(0.05), "categorical_crossentropy")
    return m


def test_pseudo_label_arguments(model):
    x, _ = _images(8, 0)
    for kwargs, error, needle in (
            ({"threshold": 0}, ValueError, "threshold=0"),
            ({"threshold": 1.5}, ValueError, "threshold=1.5"),
            ({"threshold": NAN}, ValueError, "threshold=nan"),
            ({"batch_size": 0}, ValueError, "batch_size=0"),
            ({"soft": "yes"}, TypeError, "`soft` must be True or False")):
        with pytest.raises(error, match=needle):
            pseudo.pseudo_label(model, x, **kwargs)
    x[2, 1] = NAN  # was "not probabilities ... end with a softmax"
    with pytest.raises(ValueError, match=r"predicted NaN or infinite values "
                                         r"for 1 of 8 row\(s\) of `x`, the "
                                         r"first at row 2"):
        pseudo.pseudo_label(model, x)


def test_pseudo_label_rounds_checks_everything_before_training(model):
    (x, y), (xv, yv) = _images(16, 1), _images(8, 2)
    xu, _ = _images(12, 3)
    nan_u = xu.copy()
    nan_u[5] = INF
    soft = np.eye(2, dtype="float32")[y] * 0.9
    cases = (
        ({"weight": NAN}, ValueError, "weight=nan"),
        ({"weight": 0}, ValueError, "weight=0"),
        ({"epochs": 0}, ValueError, "epochs=0"),
        ({"rounds": 2.5}, TypeError, "rounds=2.5"),
        ({"rounds": True}, TypeError, "rounds=True"),
        ({"fraction": 0}, ValueError, r"`fraction` must .*> 0"),
        ({"fraction": [0.25, 1.2]}, ValueError, r"`fraction\[1\]`"),
        ({"fraction": 0.3}, ValueError, "whole rows"),
        ({"threshold": [0.5, 1.5]}, ValueError, r"`threshold\[1\]`"),
        ({"batch_size": 0}, ValueError, "batch_size=0"),
        ({"seed": -1}, ValueError, "seed=-1"),
        ({"steps_per_epoch": 0}, ValueError, "steps_per_epoch=0"),
        ({"augment": "cutout"}, TypeError, "`augment` must be a callable"),
        ({"replicas": 0}, ValueError, "replicas=0"),
        ({"labelled": (x, y[:15])}, ValueError,
         r"`labelled\[0\]` and `labelled\[1\]`.*16 and 15"),
        ({"labelled": (x, soft)}, ValueError,
         r"`labelled\[1\]` must hold class probabilities"),
        ({"unlabelled": nan_u}, ValueError,
         r"`unlabelled` must hold finite.*row 5"),
    )
    before = [w.copy() for w in model.get_weights()]
    for kwargs, error, needle in cases:
        args = {"labelled": (x, y), "unlabelled": xu,
                "validation_data": (xv, yv), "batch_size": 8, **kwargs}
        with pytest.raises(error, match=needle):
            pseudo.pseudo_label_rounds(model, **args)
        for a, b in zip(before, model.get_weights()):
            np.testing.assert_array_equal(a, b)
