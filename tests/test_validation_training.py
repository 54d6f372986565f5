"""Bad numbers given to the training tools: one clear message each, raised
at the entry before any step trains (fit_one_cycle, fit_sgdr, fine_tune,
lr_find, the schedule callbacks and functions, spread_lr, the annealer)."""

import math

import keras
import numpy as np
import pytest

from kerasdl.training import _checks
from kerasdl.training import schedules
from kerasdl.training.annealing import GradientRatioAnnealer
from kerasdl.training.lr_finder import LRFinder
from kerasdl.training.lr_finder import lr_find
from kerasdl.training.param_scheduler import CosineRestarts
from kerasdl.training.param_scheduler import OneCycle
from kerasdl.training.param_scheduler import ParamScheduler
from kerasdl.training.param_scheduler import spread_lr
from kerasdl.training.groups import discriminative_optimizer
from kerasdl.training.fit import fine_tune
from kerasdl.training.fit import fit_one_cycle
from kerasdl.training.fit import fit_sgdr
from kerasdl.training.groups import freeze
from kerasdl.training.groups import layer_groups

NAN, INF = float("nan"), float("inf")
RNG = np.random.RandomState(0)
X = RNG.randn(32, 4).astype("float32")
Y = X.sum(axis=1, keepdims=True)


class _Begins(keras.callbacks.Callback):
    """Counts the fits that started and the batches that trained."""

    def __init__(self):
        super().__init__()
        self.fits = self.batches = 0

    def on_train_begin(self, logs=None):
        self.fits += 1

    def on_train_batch_end(self, batch, logs=None):
        self.batches += 1


@pytest.fixture(scope="module")
def model():
    keras.utils.set_random_seed(0)
    m = keras.Sequential([keras.Input((4,))] + [
        keras.layers.Dense(4, name=f"d{i}") for i in range(2)] + [
        keras.layers.Dense(1, name="head")])
    m.compile(keras.optimizers.Adam(1e-3), "mse")
    return m


def _weights(model):
    return [np.array(w) for w in model.get_weights()]


def _refused(call, model, error, needle):
    """``call`` raises ``error`` matching ``needle``; nothing trained."""
    before = _weights(model)
    with pytest.raises(error, match=needle):
        call()
    after = _weights(model)
    assert all(np.array_equal(a, b) for a, b in zip(before, after))


FIT_ONE_CYCLE_CASES = [
    ({"lr_max": NAN}, ValueError, r"`lr_max` must be a finite number > 0\. "
                                  r"Received: lr_max=nan"),
    ({"lr_max": -1}, ValueError, "lr_max=-1"),
    ({"lr_max": 0}, ValueError, "lr_max=0"),
    ({"lr_max": INF}, ValueError, "lr_max=inf"),
    ({"lr_max": "0.1"}, TypeError, "lr_max='0.1'"),
    ({"lr_max": [1e-3, NAN]}, ValueError, r"`lr_max\[1\]`"),
    ({"lr_max": slice(1e-2, 1e-4)}, ValueError, "lo <= hi"),
    ({"lr_max": slice(0, 1e-2)}, ValueError, r"`lr_max.start`"),
    ({"epochs": 0}, ValueError, r"`epochs` must be an integer >= 1\. "
                                r"Received: epochs=0"),
    ({"epochs": -1}, ValueError, "epochs=-1"),
    ({"epochs": 2.5}, TypeError, "epochs=2.5"),
    ({"div": 0}, ValueError, "div=0"),
    ({"div_final": 0}, ValueError, "div_final=0"),
    ({"div": NAN}, ValueError, "div=nan"),
    ({"pct_start": 0}, ValueError, r"`pct_start` must be .*< 1"),
    ({"pct_start": 1.5}, ValueError, "pct_start=1.5"),
    ({"moms": (0.95, 1.2, 0.95)}, ValueError, r"`moms\[1\]`.*< 1"),
    ({"moms": (0.95, 0.85)}, ValueError, "3 numbers"),
    ({"moms": 0.9}, TypeError, "3 numbers"),
    ({"callbacks": keras.callbacks.History()}, TypeError, "Wrap it in a list"),
]


def test_fit_one_cycle_refuses_bad_numbers(model):
    for kwargs, error, needle in FIT_ONE_CYCLE_CASES:
        spy = _Begins()
        args = {"lr_max": 1e-2, "epochs": 1, **kwargs}
        if "callbacks" not in kwargs:
            args["callbacks"] = [spy]
        _refused(lambda: fit_one_cycle(model, (X, Y), batch_size=8,
                                       verbose=0, **args),
                 model, error, needle)
        assert spy.fits == 0


def test_fit_one_cycle_checks_the_data(model):
    _refused(lambda: fit_one_cycle(model, x=X, y=Y[:30], lr_max=1e-2,
                                   verbose=0),
             model, ValueError, r"`x` and `y` must have the same length.*"
                                r"32 and 30")
    bad = X.copy()
    bad[5, 2] = NAN
    _refused(lambda: fit_one_cycle(model, (bad, Y), lr_max=1e-2, verbose=0),
             model, ValueError, r"`x` must hold finite numbers only.*row 5")
    _refused(lambda: fit_one_cycle(model, ({"a": X, "b": X[:31]}, Y),
                                   lr_max=1e-2, verbose=0),
             model, ValueError, r"`x\['a'\]` and `x\['b'\]`.*32 and 31")


def test_lr_max_none_needs_a_usable_optimizer_rate():
    m = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
    m.compile(keras.optimizers.SGD(0.0), "mse")
    _refused(lambda: fit_one_cycle(m, (X, Y), verbose=0), m, ValueError,
             r"`lr_max=None`.*\[0\.0\]")


def test_fit_one_cycle_still_trains(model):
    history = fit_one_cycle(model, (X, Y), epochs=2, lr_max=np.float32(1e-2),
                            batch_size=8, verbose=0,
                            moms=np.array([0.95, 0.85, 0.95]))
    assert len(history.history["loss"]) == 2
    assert np.isfinite(history.history["loss"]).all()


FIT_SGDR_CASES = [
    ({"n_cycles": 0}, ValueError, "n_cycles=0"),
    ({"n_cycles": 2.5}, TypeError, "n_cycles=2.5"),
    ({"cycle_len": 0}, ValueError, "cycle_len=0"),
    ({"cycle_len": NAN}, ValueError, "cycle_len=nan"),
    ({"cycle_mult": 0.5}, ValueError, r"`cycle_mult` must be .*>= 1"),
    ({"lr_max": -1}, ValueError, "lr_max=-1"),
    ({"n_cycles": 10 ** 9}, ValueError, "at most 1e\\+06 epochs"),
    ({"callbacks": _Begins()}, TypeError, "Wrap it in a list"),
]


def test_fit_sgdr_refuses_bad_numbers(model):
    for kwargs, error, needle in FIT_SGDR_CASES:
        args = {"n_cycles": 2, "lr_max": 1e-2, **kwargs}
        _refused(lambda: fit_sgdr(model, (X, Y), batch_size=8, verbose=0,
                                  **args), model, error, needle)


FINE_TUNE_CASES = [
    ({"base_lr": -1}, ValueError, r"`base_lr` must be a finite number > 0"),
    ({"base_lr": NAN}, ValueError, "base_lr=nan"),
    ({"lr_mult": 0}, ValueError, r"`lr_mult` must be a finite number >= 1"),
    ({"lr_mult": 0.5}, ValueError, "lr_mult=0.5"),
    ({"div": 0}, ValueError, "div=0"),
    ({"epochs": 0}, ValueError, "epochs=0"),
    ({"epochs": 2.5}, TypeError, "epochs=2.5"),
    ({"freeze_epochs": -1}, ValueError, "freeze_epochs=-1"),
    ({"pct_start": 1.0}, ValueError, "pct_start=1.0"),
    # Today's errors came after the frozen phase had trained:
    ({"groups": 10}, ValueError, r"`groups` must be an integer >= 1 and "
                                 r"<= 3"),
    ({"groups": "d1"}, TypeError, "a list of strings"),
    ({"groups": ["d1", "d1"]}, ValueError, "each layer once"),
    ({"upto": 2.5}, TypeError, "upto=2.5"),
    ({"upto": 9}, ValueError, r"`upto` must be an integer >= 0 and <= 3"),
    ({"train_bn": "no"}, TypeError, "`train_bn` must be True or False"),
]


def test_fine_tune_refuses_bad_numbers(model):
    optimizer = model.optimizer
    for kwargs, error, needle in FINE_TUNE_CASES:
        _refused(lambda: fine_tune(model, (X, Y), batch_size=8, verbose=0,
                                   **kwargs), model, error, needle)
        assert model.optimizer is optimizer  # not recompiled either
        assert all(layer.trainable for layer in model.layers)


def test_spread_lr_and_groups():
    for lr, needle in ((NAN, "lr=nan"), (0, "lr=0"), (-1e-3, "lr=-0.001"),
                       (slice(1e-3, 1e-2, 2), "without a step"),
                       (slice(None), "without a step"),
                       ([1e-3, -1], r"`lr\[1\]`"), ([], "empty")):
        with pytest.raises(ValueError, match=needle):
            spread_lr(lr, 2)
    with pytest.raises(ValueError, match="n_groups=0"):
        spread_lr(1e-3, 0)
    with pytest.raises(TypeError, match="lr=None"):
        spread_lr(None, 2)
    assert spread_lr(np.array(1e-3), 2) == [1e-3, 1e-3]
    m = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    with pytest.raises(ValueError, match="lr=0"):
        discriminative_optimizer(m, 0, keras.optimizers.SGD())
    with pytest.raises(TypeError, match="groups=True"):
        layer_groups(m, True)
    with pytest.raises(TypeError, match="train_bn"):
        freeze(m, train_bn=None)


def test_schedule_callbacks_refuse_bad_numbers():
    cases = [
        (lambda: OneCycle(NAN), ValueError, "lr_max=nan"),
        (lambda: OneCycle(1e-3, div=0), ValueError, "div=0"),
        (lambda: OneCycle(1e-3, div_final=-5), ValueError, "div_final=-5"),
        (lambda: OneCycle(1e-3, moms=(1.0, 0.85, 0.95)), ValueError,
         r"moms\[0\]"),
        (lambda: OneCycle(1e-3, total_steps=0), ValueError, "total_steps=0"),
        (lambda: OneCycle(1e-3, total_steps=2.5), TypeError, "total_steps"),
        (lambda: ParamScheduler(None), TypeError, "`lr_fn` must be a "
                                                  "callable"),
        (lambda: ParamScheduler(lambda p, t: t, mom_fn=0.9), TypeError,
         "mom_fn"),
        (lambda: CosineRestarts(1e-3, cycle_len=0), ValueError,
         "cycle_len=0"),
        (lambda: CosineRestarts(1e-3, lr_min=-1), ValueError, "lr_min=-1"),
        (lambda: CosineRestarts(1e-3, lr_min=1e-2), ValueError,
         "lr_min.*at most"),
        (lambda: CosineRestarts(1e-3, steps_per_epoch=0), ValueError,
         "steps_per_epoch=0"),
        (lambda: schedules.OneCycleSchedule(NAN, 10), ValueError,
         "lr_max=nan"),
        (lambda: schedules.OneCycleSchedule(1e-3, 10, div=0), ValueError,
         "div=0"),
        (lambda: schedules.OneCycleSchedule(1e-3, 2.5), TypeError,
         "total_steps=2.5"),
        (lambda: schedules.CosineRestartsSchedule(1e-3, 0), ValueError,
         "cycle_steps=0"),
        (lambda: schedules.CosineRestartsSchedule(1e-3, 10, lr_min=1.0),
         ValueError, "lr_min"),
        (lambda: GradientRatioAnnealer(threshold=NAN), ValueError,
         r"`threshold` must be a finite number > 1\. Received: "
         r"threshold=nan"),
        (lambda: GradientRatioAnnealer(factor=INF), ValueError, "factor=inf"),
        (lambda: GradientRatioAnnealer(min_lr=-1), ValueError, "min_lr=-1"),
        (lambda: GradientRatioAnnealer(min_lr=NAN), ValueError,
         "min_lr=nan"),
    ]
    for call, error, needle in cases:
        with pytest.raises(error, match=needle):
            call()


def test_schedule_functions_refuse_bad_numbers():
    cases = [
        (lambda: schedules.one_cycle(0.5, 1.0, div=0), "div=0"),
        (lambda: schedules.one_cycle(0.5, 1.0, div_final=0), "div_final=0"),
        (lambda: schedules.one_cycle(0.5, -1.0), "lr_max=-1"),
        (lambda: schedules.one_cycle(1.5, 1.0), "pct=1.5"),
        (lambda: schedules.one_cycle(NAN, 1.0), "pct=nan"),
        (lambda: schedules.one_cycle_momentum(0.5, (0.9, -0.1, 0.9)),
         r"moms\[1\]"),
        (lambda: schedules.sgdr_epochs(0), "n_cycles=0"),
        (lambda: schedules.sgdr_epochs(3, cycle_mult=NAN), "cycle_mult=nan"),
        (lambda: schedules.sgdr_epochs(2000, cycle_mult=10.0), "at most"),
        (lambda: schedules.cosine_restarts(-1, 1.0), "epoch=-1"),
        (lambda: schedules.cosine_restarts(1, 1.0, lr_min=2.0), "lr_min"),
        (lambda: schedules.sched_cos(NAN, 0.0, 0.5), "start=nan"),
    ]
    for call, needle in cases:
        with pytest.raises(ValueError, match=needle):
            call()


def _restarts_by_loop(epoch, lr_max, cycle_len, cycle_mult):
    start, length = 0.0, float(cycle_len)
    while epoch >= start + length:
        start, length = start + length, length * cycle_mult
    pct = (epoch - start) / length
    return lr_max * (1 + math.cos(math.pi * pct)) / 2


def test_cosine_restarts_closed_form_equals_the_loop():
    for cycle_mult in (1, 1.5, 2, 3):
        for epoch in [0, 0.5, 1, 2, 2.999, 3, 6.5, 7, 14.2, 40, 121.75]:
            expected = _restarts_by_loop(epoch, 0.1, 2, cycle_mult)
            assert schedules.cosine_restarts(
                epoch, 0.1, cycle_len=2, cycle_mult=cycle_mult) == \
                pytest.approx(expected, abs=1e-12)


def test_lr_finder_refuses_bad_numbers():
    cases = [
        (lambda: LRFinder(0, 10), ValueError, "start_lr=0"),
        (lambda: LRFinder(-1, 10), ValueError, "start_lr=-1"),
        (lambda: LRFinder(NAN, 10), ValueError, "start_lr=nan"),
        (lambda: LRFinder(1e-7, INF), ValueError, "end_lr=inf"),
        (lambda: LRFinder(1.0, 1.0), ValueError, "start_lr < end_lr"),
        (lambda: LRFinder(num_it=0), ValueError, "num_it=0"),
        (lambda: LRFinder(num_it=2.5), TypeError, "num_it=2.5"),
        (lambda: LRFinder(beta=NAN), ValueError, "beta=nan"),
        (lambda: LRFinder(beta=-0.1), ValueError, "beta=-0.1"),
        (lambda: LRFinder(stop_div="yes"), TypeError, "stop_div"),
        (lambda: LRFinder(restore=1), TypeError, "restore"),
    ]
    for call, error, needle in cases:
        with pytest.raises(error, match=needle):
            call()


LR_FIND_CASES = [
    ({"num_it": 10}, ValueError, r"`num_it` must be an integer >= 23\. "
                                 r"Received: num_it=10"),
    ({"batch_size": 0}, ValueError, "batch_size=0"),
    ({"seed": -1}, ValueError, "seed=-1"),
    ({"verbose": 5}, ValueError, "verbose=5"),
    ({"end_lr": INF}, ValueError, "end_lr=inf"),
    ({"callbacks": _Begins()}, TypeError, "Wrap it in a list"),
]


def test_lr_find_refuses_bad_arguments_before_the_sweep(model):
    for kwargs, error, needle in LR_FIND_CASES:
        spy = _Begins()
        args = {"callbacks": [spy], **kwargs}
        _refused(lambda: lr_find(model, (X, Y), **args), model, error,
                 needle)
        assert spy.fits == 0


def test_lr_find_x_and_y_of_different_lengths(model):
    # Was an IndexError from inside the sweep.
    _refused(lambda: lr_find(model, x=X, y=Y[:20]), model, ValueError,
             r"`x` and `y` must have the same length.*32 and 20")


def test_lr_find_says_the_data_ran_out(model):
    def ten_batches():
        for i in range(10):
            yield X[i % 4 * 8:i % 4 * 8 + 8], Y[i % 4 * 8:i % 4 * 8 + 8]

    before = _weights(model)
    with pytest.raises(ValueError) as info:
        lr_find(model, ten_batches(), num_it=30)
    message = str(info.value)
    assert "ran out after 10 batch(es)" in message
    assert "num_it=30" in message and "smaller" in message
    assert "Raise num_it" not in message
    assert all(np.array_equal(a, b) for a, b in zip(before, _weights(model)))


def test_finite_scans_in_chunks(monkeypatch):
    monkeypatch.setattr(_checks, "_CHUNK_BYTES", 5 * 16)  # 5 rows of 4
    a = np.ones((23, 4), "float32")
    _checks.finite(a, "x")
    a[7, 1] = a[19, 3] = INF
    with pytest.raises(ValueError, match=r"in 2 row\(s\), the first at row "
                                         r"7\."):
        _checks.finite(a, "x")
    _checks.finite(np.arange(5), "labels")  # integers pass over
