"""Learning-rate and momentum schedules as pure functions of progress.

``pct`` is the fraction of training done before the step, ``step /
total_steps``, as in fastai: the first step sees ``pct == 0``. The same
formulas also exist as serialisable ``keras`` ``LearningRateSchedule``
classes, computed on the device from the optimizer's step counter (they
stay exact with any ``steps_per_execution``).
"""

import math

import keras
from keras import ops


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
    """
    return start + (1 + math.cos(math.pi * (1 - pct))) * (end - start) / 2


def _check_pct_start(pct_start):
    if not 0 < pct_start < 1:
        raise ValueError(
            f"`pct_start` must be in (0, 1), the fraction of steps spent "
            f"warming up. Received: pct_start={pct_start}. Try 0.25.")


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
        ValueError: ``pct_start`` is not in ``(0, 1)``.
    """
    _check_pct_start(pct_start)
    if pct < pct_start:
        return sched_cos(lr_max / div, lr_max, pct / pct_start)
    return sched_cos(lr_max, lr_max / div_final,
                     (pct - pct_start) / (1 - pct_start))


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
    """
    _check_pct_start(pct_start)
    if pct < pct_start:
        return sched_cos(moms[0], moms[1], pct / pct_start)
    return sched_cos(moms[1], moms[2], (pct - pct_start) / (1 - pct_start))


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
    """
    if int(n_cycles) != n_cycles or n_cycles < 1:
        raise ValueError(f"`n_cycles` must be an integer >= 1. "
                         f"Received: n_cycles={n_cycles}.")
    if cycle_len <= 0 or cycle_mult < 1:
        raise ValueError(
            f"`cycle_len` must be > 0 and `cycle_mult` >= 1. Received: "
            f"cycle_len={cycle_len}, cycle_mult={cycle_mult}.")
    return sum(cycle_len * cycle_mult ** i for i in range(int(n_cycles)))


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
    """
    if cycle_len <= 0 or cycle_mult < 1:
        raise ValueError(
            f"`cycle_len` must be > 0 and `cycle_mult` >= 1. Received: "
            f"cycle_len={cycle_len}, cycle_mult={cycle_mult}.")
    start, length = 0.0, float(cycle_len)
    while epoch >= start + length:
        start, length = start + length, length * cycle_mult
    return sched_cos(lr_max, lr_min, (epoch - start) / length)


def _ops_cos(start, end, pct):
    # (1 + cos(pi (1 - p))) / 2 == sin(pi p / 2) ** 2, without the float32
    # cancellation of 1 + cos near p = 0.
    return start + ops.square(ops.sin(math.pi / 2 * pct)) * (end - start)


def one_cycle_ops(pct, lr_max, div, div_final, pct_start):
    """``one_cycle`` in ``keras.ops``: any argument may be a tensor."""
    warm = _ops_cos(lr_max / div, lr_max, pct / pct_start)
    down = _ops_cos(lr_max, lr_max / div_final,
                    (pct - pct_start) / (1 - pct_start))
    return ops.where(pct < pct_start, warm, down)


def one_cycle_momentum_ops(pct, moms, pct_start):
    """``one_cycle_momentum`` in ``keras.ops`` (``moms``: 3 values)."""
    down = _ops_cos(moms[0], moms[1], pct / pct_start)
    up = _ops_cos(moms[1], moms[2], (pct - pct_start) / (1 - pct_start))
    return ops.where(pct < pct_start, down, up)


def cosine_restarts_ops(step, cycle_steps, cycle_mult, lr_max, lr_min):
    """``cosine_restarts`` in ``keras.ops`` at ``step``; the first cycle
    lasts ``cycle_steps`` (a tensor or number) and ``cycle_mult`` is a
    Python number. Exact at the cycle boundaries."""
    t = ops.cast(step, "float32") / cycle_steps
    m = float(cycle_mult)
    if m == 1:
        i = ops.floor(t)
    else:
        i = ops.floor(ops.log(1 + t * (m - 1)) / math.log(m))
    # Guard against rounding at the cycle boundaries.
    i = ops.maximum(i, 0.0)
    starts = (lambda k: k) if m == 1 else (
        lambda k: (ops.power(m, k) - 1) / (m - 1))
    i = ops.where(starts(i + 1) <= t, i + 1, i)
    i = ops.where(starts(i) > t, i - 1, i)
    length = ops.power(m, i)
    return _ops_cos(lr_max, lr_min, (t - starts(i)) / length)


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
        _check_pct_start(pct_start)
        if int(total_steps) != total_steps or total_steps < 1:
            raise ValueError(f"`total_steps` must be an integer >= 1. "
                             f"Received: total_steps={total_steps}.")
        self.lr_max = float(lr_max)
        self.total_steps = int(total_steps)
        self.div = float(div)
        self.div_final = float(div_final)
        self.pct_start = float(pct_start)

    def __call__(self, step):
        pct = ops.minimum(ops.cast(step, "float32") / self.total_steps, 1.0)
        return one_cycle_ops(pct, self.lr_max, self.div, self.div_final,
                             self.pct_start)

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
        if cycle_steps < 1 or cycle_mult < 1:
            raise ValueError(
                f"`cycle_steps` must be >= 1 and `cycle_mult` >= 1. "
                f"Received: cycle_steps={cycle_steps}, "
                f"cycle_mult={cycle_mult}.")
        self.lr_max = float(lr_max)
        self.cycle_steps = int(cycle_steps)
        self.cycle_mult = float(cycle_mult)
        self.lr_min = float(lr_min)

    def __call__(self, step):
        return cosine_restarts_ops(step, self.cycle_steps, self.cycle_mult,
                                   self.lr_max, self.lr_min)

    def get_config(self):
        return {"lr_max": self.lr_max, "cycle_steps": self.cycle_steps,
                "cycle_mult": self.cycle_mult, "lr_min": self.lr_min}
