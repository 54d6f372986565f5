"""Learning-rate and momentum schedules: one family of formulas.

``pct`` is the fraction of training done before the step, ``step /
total_steps``, as in fastai: the first step sees ``pct == 0``. Every
curve (``cos_curve``, ``exp_curve``, ``combine`` and the one-cycle and
SGDR curves built from them) is written once and takes the array
namespace as ``xp``: ``numpy`` for the host-side records and plots,
``keras.ops`` inside the compiled step (the callbacks and the
``LearningRateSchedule`` classes below). The public functions
(``one_cycle`` ...) check their arguments and return floats.
"""

import math

import keras
import numpy as np
from keras import ops

from kerasdl import _validate
from kerasdl.training import _checks


MAX_EPOCHS = 1e6  # more than any run; guards against cycle_mult blow-ups


def sched_cos(start, end, pct):
    """Cosine interpolation from ``start`` (pct 0) to ``end`` (pct 1).

    ``start + (1 + cos(pi * (1 - pct))) * (end - start) / 2``.

    Example:

    >>> sched_cos(1.0, 0.0, 0.5)
    0.5

    Args:
        start: float. Value at ``pct == 0``.
        end: float. Value at ``pct == 1``.
        pct: float. Progress in ``[0, 1]``.

    Returns:
        A float.

    Raises:
        TypeError: a non-numeric argument.
        ValueError: NaN or infinite ``start``/``end``, ``pct`` not in
            ``[0, 1]``.
    """
    start = _validate.number(start, "start")
    end = _validate.number(end, "end")
    pct = _validate.fraction(pct, "pct", closed=True)
    return float(cos_curve(start, end, pct))


def _check_pct_start(pct_start):
    return _validate.fraction(
        pct_start, "pct_start",
        hint="It is the fraction of steps spent warming up; try 0.25.")


def _check_one_cycle(lr_max, div, div_final, pct_start):
    """The one-cycle arguments, as floats."""
    return (_validate.positive(lr_max, "lr_max", hint="Try 1e-3."),
            _validate.positive(div, "div", hint="Try 25."),
            _validate.positive(div_final, "div_final", hint="Try 1e5."),
            _check_pct_start(pct_start))


def _check_cycles(cycle_len, cycle_mult):
    return (_validate.positive(cycle_len, "cycle_len", hint="Try 1."),
            _validate.number(cycle_mult, "cycle_mult", low=1,
                             hint="Try 2 (or 1 for cycles of equal "
                                  "length)."))


def one_cycle(pct, lr_max, *, div=25.0, div_final=1e5, pct_start=0.25):
    """fastai's one-cycle learning rate at progress ``pct``.

    Cosine warm-up from ``lr_max / div`` to ``lr_max`` over the first
    ``pct_start`` of training, then cosine annealing down to
    ``lr_max / div_final``.

    Example:

    >>> [round(one_cycle(pct, 1.0), 8) for pct in (0.0, 0.25, 1.0)]
    [0.04, 1.0, 1e-05]

    Args:
        pct: float. Progress in ``[0, 1]`` (``step / total_steps``).
        lr_max: float. Peak learning rate.
        div: float. ``lr_max / div`` is the starting rate. Defaults to 25.
        div_final: float. ``lr_max / div_final`` is the final rate.
            Defaults to 1e5.
        pct_start: float. Fraction of training spent warming up, in
            ``(0, 1)``. Defaults to 0.25.

    Returns:
        The learning rate, a float.

    Raises:
        TypeError: a non-numeric argument.
        ValueError: ``pct`` not in ``[0, 1]``, ``lr_max``, ``div`` or
            ``div_final`` not a finite number > 0, ``pct_start`` not in
            ``(0, 1)``.
    """
    pct = _validate.fraction(pct, "pct", closed=True)
    lr_max, div, div_final, pct_start = _check_one_cycle(
        lr_max, div, div_final, pct_start)
    return float(one_cycle_curve(pct, lr_max, div, div_final, pct_start))


def one_cycle_momentum(pct, moms=(0.95, 0.85, 0.95), *, pct_start=0.25):
    """Momentum of the one-cycle policy: opposite to the learning rate.

    Cosine from ``moms[0]`` down to ``moms[1]`` while the rate warms up,
    then back up to ``moms[2]``.

    Example:

    >>> round(one_cycle_momentum(0.25), 6), one_cycle_momentum(1.0)
    (0.85, 0.95)

    Args:
        pct: float. Progress in ``[0, 1]``.
        moms: tuple of 3 floats. Start, middle and end momentum.
            Defaults to ``(0.95, 0.85, 0.95)``.
        pct_start: float. As in ``one_cycle``. Defaults to 0.25.

    Returns:
        The momentum (SGD ``momentum`` or Adam's ``beta_1``), a float.

    Raises:
        TypeError: a non-numeric argument.
        ValueError: ``pct`` not in ``[0, 1]``, a momentum not in
            ``[0, 1)``, ``pct_start`` not in ``(0, 1)``.
    """
    pct = _validate.fraction(pct, "pct", closed=True)
    pct_start = _check_pct_start(pct_start)
    moms = _checks.momenta(moms)
    if moms is None:
        raise TypeError("`moms` must be 3 numbers (start, middle, end). "
                        "Received: moms=None.")
    return float(one_cycle_momentum_curve(pct, moms, pct_start))


def sgdr_epochs(n_cycles, cycle_len=1, cycle_mult=2):
    """Total epochs of ``n_cycles`` cosine cycles growing by ``cycle_mult``.

    Example:

    >>> sgdr_epochs(3, 1, 2)
    7

    Args:
        n_cycles: int. Number of cycles, at least 1.
        cycle_len: int. Epochs in the first cycle. Defaults to 1.
        cycle_mult: int. Each cycle is this many times longer than the
            one before. Defaults to 2.

    Returns:
        ``cycle_len * (1 + cycle_mult + ... + cycle_mult ** (n - 1))``.

    Raises:
        TypeError: ``n_cycles`` not an integer, or non-numeric lengths.
        ValueError: ``n_cycles < 1``, ``cycle_len <= 0``,
            ``cycle_mult < 1``, or a total too large to run.
    """
    n_cycles = _validate.integer(n_cycles, "n_cycles", low=1, hint="Try 3.")
    _check_cycles(cycle_len, cycle_mult)
    total, length = 0, cycle_len
    for _ in range(n_cycles):
        total += length
        if total > MAX_EPOCHS:
            break
        length *= cycle_mult
    if total > MAX_EPOCHS:
        raise ValueError(
            f"`n_cycles`, `cycle_len` and `cycle_mult` must give at most "
            f"{MAX_EPOCHS:g} epochs. Received: n_cycles={n_cycles}, "
            f"cycle_len={cycle_len}, cycle_mult={cycle_mult} "
            f"({total:g} epochs). Use fewer or shorter cycles.")
    return total


def cosine_restarts(epoch, lr_max, *, cycle_len=1, cycle_mult=2,
                    lr_min=0.0):
    """SGDR: cosine from ``lr_max`` to ``lr_min``, restarting each cycle.

    The first cycle lasts ``cycle_len`` epochs and each next one
    ``cycle_mult`` times longer (fastai's ``fit_sgdr``).

    Example:

    >>> cosine_restarts(0.0, 1.0), cosine_restarts(0.5, 1.0)
    (1.0, 0.5)
    >>> cosine_restarts(1.0, 1.0), cosine_restarts(2.0, 1.0)
    (1.0, 0.5)

    Args:
        epoch: float. Position in epochs (``step / steps_per_epoch``).
        lr_max: float. Rate at the start of each cycle.
        cycle_len: float. Length of the first cycle in epochs.
            Defaults to 1.
        cycle_mult: float. Growth of the cycle length, >= 1. Defaults to 2.
        lr_min: float. Rate approached at the end of each cycle.
            Defaults to 0.

    Returns:
        The learning rate, a float.

    Raises:
        TypeError: a non-numeric argument.
        ValueError: ``epoch < 0``, ``lr_max <= 0``, ``cycle_len <= 0``,
            ``cycle_mult < 1``, ``lr_min`` not in ``[0, lr_max]``.
    """
    epoch = _validate.number(epoch, "epoch", low=0)
    lr_max = _validate.positive(lr_max, "lr_max", hint="Try 1e-3.")
    cycle_len, cycle_mult = _check_cycles(cycle_len, cycle_mult)
    _check_lr_min(lr_min, lr_max)
    return float(cosine_restarts_curve(epoch, cycle_len, cycle_mult, lr_max,
                                       lr_min))


def _check_lr_min(lr_min, lr_max):
    """``lr_min`` in ``[0, lr_max]`` (``lr_max`` may be a list)."""
    lr_min = _validate.number(lr_min, "lr_min", low=0, hint="Try 0.")
    top = min(lr_max) if isinstance(lr_max, list) else lr_max
    if lr_min > top:
        raise ValueError(
            f"`lr_min` must be at most the rate each cycle starts from "
            f"({top:g}), or the rate would rise within a cycle. Received: "
            f"lr_min={lr_min!r}. Try 0.")
    return lr_min


def cos_curve(start, end, pct, xp=np):
    """``sched_cos`` for any array namespace: ``xp`` is ``numpy`` (host
    records, plots) or ``keras.ops`` (inside the compiled step).

    ``start + (1 - cos(pi p)) / 2 * (end - start)``.
    """
    return start + (1 - xp.cos(math.pi * pct)) / 2 * (end - start)


def exp_curve(start, end, pct, xp=np):
    """Exponential interpolation: ``start * (end / start) ** pct``."""
    return exp_growth(start, xp.log(end / start), pct, xp)


def exp_growth(start, log_ratio, pct, xp=np):
    """``exp_curve`` given ``log(end / start)`` (precomputed in float64
    for the device, where float32 would round the ratio first)."""
    return start * xp.exp(log_ratio * pct)


def combine(pct, pct_start, first, second, xp=np):
    """fastai's ``combine_scheds`` for two phases: ``first`` over
    ``[0, pct_start)`` and ``second`` over ``[pct_start, 1]``, each called
    with its own progress in ``[0, 1]``."""
    return xp.where(pct < pct_start, first(pct / pct_start),
                    second((pct - pct_start) / (1 - pct_start)))


def one_cycle_curve(pct, lr_max, div, div_final, pct_start, xp=np):
    """The one-cycle rate (no argument checks); see ``one_cycle``."""
    return combine(
        pct, pct_start,
        lambda p: cos_curve(lr_max / div, lr_max, p, xp),
        lambda p: cos_curve(lr_max, lr_max / div_final, p, xp), xp)


def one_cycle_momentum_curve(pct, moms, pct_start, xp=np):
    """The one-cycle momentum (no argument checks); ``moms``: 3 values."""
    return combine(pct, pct_start,
                   lambda p: cos_curve(moms[0], moms[1], p, xp),
                   lambda p: cos_curve(moms[1], moms[2], p, xp), xp)


def cosine_restarts_curve(step, cycle_steps, cycle_mult, lr_max, lr_min,
                          xp=np):
    """SGDR at ``step`` (no argument checks); the first cycle lasts
    ``cycle_steps`` and each next one ``cycle_mult`` (a Python number)
    times longer. The cycle is found in closed form and corrected at the
    boundaries, so restarts are exact."""
    t = xp.cast(step, "float32") / cycle_steps if xp is not np \
        else np.asarray(step, "float64") / cycle_steps
    m = float(cycle_mult)
    if m == 1:
        i = xp.floor(t)
    else:
        i = xp.floor(xp.log(1 + t * (m - 1)) / math.log(m))
    i = xp.maximum(i, 0.0)

    def begin(k):
        return k if m == 1 else (xp.power(m, k) - 1) / (m - 1)

    i = xp.where(begin(i + 1) <= t, i + 1, i)
    i = xp.where(begin(i) > t, i - 1, i)
    pct = xp.minimum((t - begin(i)) / xp.power(m, i), 1.0)
    return cos_curve(lr_max, lr_min, pct, xp)


@keras.saving.register_keras_serializable(package="kerasdl")
class OneCycleSchedule(keras.optimizers.schedules.LearningRateSchedule):
    """``one_cycle`` as a ``LearningRateSchedule`` over ``total_steps``.

    Computed on the device from the optimizer's step counter, so it is
    exact with any ``steps_per_execution``. It does not cycle momentum
    (use the ``OneCycle`` callback for that).

    Example:

    >>> sched = OneCycleSchedule(1e-2, total_steps=100)
    >>> round(float(sched(25)), 6), round(float(sched(0)), 6)
    (0.01, 0.0004)
    >>> optimizer = keras.optimizers.Adam(sched)

    Args:
        lr_max: float. Peak learning rate.
        total_steps: int. Steps of the whole run (epochs * steps per
            epoch); later steps keep the final rate.
        div: float. Defaults to 25.
        div_final: float. Defaults to 1e5.
        pct_start: float. Defaults to 0.25.

    Returns:
        Called with a step, the learning rate as a scalar tensor.
    """

    def __init__(self, lr_max, total_steps, div=25.0, div_final=1e5,
                 pct_start=0.25):
        lr_max, div, div_final, pct_start = _check_one_cycle(
            lr_max, div, div_final, pct_start)
        self.lr_max = lr_max
        self.total_steps = _validate.integer(total_steps, "total_steps",
                                             low=1)
        self.div, self.div_final, self.pct_start = div, div_final, pct_start

    def __call__(self, step):
        pct = ops.minimum(ops.cast(step, "float32") / self.total_steps, 1.0)
        return one_cycle_curve(pct, self.lr_max, self.div, self.div_final,
                               self.pct_start, ops)

    def get_config(self):
        return {"lr_max": self.lr_max, "total_steps": self.total_steps,
                "div": self.div, "div_final": self.div_final,
                "pct_start": self.pct_start}


@keras.saving.register_keras_serializable(package="kerasdl")
class CosineRestartsSchedule(keras.optimizers.schedules.LearningRateSchedule):
    """``cosine_restarts`` as a ``LearningRateSchedule`` over steps.

    Example:

    >>> sched = CosineRestartsSchedule(1.0, cycle_steps=10, cycle_mult=2)
    >>> [round(float(sched(s)), 4) for s in (0, 5, 10, 20)]
    [1.0, 0.5, 1.0, 0.5]

    Args:
        lr_max: float. Rate at the start of each cycle.
        cycle_steps: int. Steps in the first cycle.
        cycle_mult: float. Growth of the cycle length, >= 1. Defaults to 2.
        lr_min: float. Defaults to 0.

    Returns:
        Called with a step, the learning rate as a scalar tensor.
    """

    def __init__(self, lr_max, cycle_steps, cycle_mult=2, lr_min=0.0):
        self.lr_max = _validate.positive(lr_max, "lr_max", hint="Try 1e-3.")
        self.cycle_steps = _validate.integer(cycle_steps, "cycle_steps",
                                             low=1)
        _, self.cycle_mult = _check_cycles(1, cycle_mult)
        self.lr_min = _check_lr_min(lr_min, self.lr_max)

    def __call__(self, step):
        return cosine_restarts_curve(step, self.cycle_steps, self.cycle_mult,
                                     self.lr_max, self.lr_min, ops)

    def get_config(self):
        return {"lr_max": self.lr_max, "cycle_steps": self.cycle_steps,
                "cycle_mult": self.cycle_mult, "lr_min": self.lr_min}
