"""Callbacks that set the learning rate (and momentum) before every step.

They assign the optimizer's variables (see ``_hyper``), so the train step
is never recompiled or retraced per step. The rates used are logged as
``learning_rate`` (and ``momentum``) in the epoch logs, so ``History`` keeps them.
"""

import keras
import numpy as np

from kerasdl.callbacks import _hyper
from kerasdl.callbacks import schedules


def spread_lr(lr, n_groups):
    """fastai's reading of a learning rate for ``n_groups`` groups.

    A float gives every group the same rate; ``slice(lo, hi)`` spreads the
    rates geometrically from ``lo`` (first group) to ``hi`` (last);
    ``slice(hi)`` gives ``hi / 10`` to all but the last group; a sequence
    is taken as is.

    Example:

    >>> [round(r, 6) for r in spread_lr(slice(1e-4, 1e-2), 3)]
    [0.0001, 0.001, 0.01]

    Args:
        lr: float, slice or sequence of floats.
        n_groups: int. Number of parameter groups.

    Returns:
        A list of ``n_groups`` floats.

    Raises:
        ValueError: a sequence of the wrong length, or a slice with a step.
    """
    if isinstance(lr, slice):
        if lr.step is not None or lr.stop is None:
            raise ValueError(f"Expected slice(lo, hi) or slice(hi); "
                             f"received {lr}.")
        if n_groups == 1:
            return [float(lr.stop)]
        if lr.start is None:
            return [lr.stop / 10] * (n_groups - 1) + [float(lr.stop)]
        step = (lr.stop / lr.start) ** (1 / (n_groups - 1))
        return [float(lr.start * step ** i) for i in range(n_groups)]
    if np.ndim(lr) == 0:
        return [float(lr)] * n_groups
    values = [float(v) for v in lr]
    if len(values) != n_groups:
        raise ValueError(f"Expected {n_groups} learning rates (one per "
                         f"group); received {len(values)}: {values}.")
    return values


class ParamScheduler(keras.callbacks.Callback):
    """Sets learning rate (and momentum) from functions of progress.

    Before step ``i`` of ``total`` (over the whole fit), assigns
    ``lr_fn(i / total, lr_max)`` to each optimizer group, where ``lr_max``
    is that group's peak rate, and ``mom_fn(i / total)`` to the momentum.

    Example:

    >>> import numpy as np
    >>> model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    >>> model.compile(keras.optimizers.SGD(0.1), "mse")
    >>> cb = ParamScheduler(lambda pct, top: top * (1 - pct), lr_max=0.1)
    >>> _ = model.fit(np.ones((8, 2)), np.ones(8), batch_size=4,
    ...               epochs=2, verbose=0, callbacks=[cb])
    >>> [round(v, 4) for v in cb.lrs]
    [0.1, 0.075, 0.05, 0.025]

    Args:
        lr_fn: callable ``(pct, lr_max) -> float``.
        lr_max: float, slice or sequence. Peak rate per group (see
            ``spread_lr``); ``None`` reads the optimizer's current rates.
        mom_fn: callable ``pct -> float`` or ``None`` (momentum untouched).
        total_steps: int or None. Needed when the data has no known
            length; otherwise epochs times steps per epoch.

    Raises:
        ValueError: ``steps_per_execution > 1``, or unknown total steps.
    """

    def __init__(self, lr_fn, lr_max=None, mom_fn=None, total_steps=None):
        super().__init__()
        self.lr_fn, self.lr_max, self.mom_fn = lr_fn, lr_max, mom_fn
        self.total_steps = total_steps
        self.lrs, self.moms = [], []

    def on_train_begin(self, logs=None):
        model = self.model
        name = type(self).__name__
        _hyper.check_steps_per_execution(model, name)
        total = self.total_steps
        if total is None:
            steps = self.params.get("steps")
            if not steps:
                raise ValueError(
                    f"{name} needs the number of steps, but the data has "
                    f"no known length. Pass steps_per_epoch to fit or "
                    f"total_steps to {name}.")
            total = steps * self.params["epochs"]
        self._total = int(total)
        n = len(_hyper.base_optimizers(model.optimizer))
        tops = _hyper.get_lrs(model.optimizer) if self.lr_max is None \
            else self.lr_max
        self._tops = spread_lr(tops, n)
        self._step = 0
        self._last = None
        self._momentum = None
        if self.mom_fn is not None:
            self._momentum = _hyper.MomentumHandle(model, name)
            self._momentum.install()

    def on_train_batch_begin(self, batch, logs=None):
        pct = min(self._step / self._total, 1.0)
        lrs = [self.lr_fn(pct, top) for top in self._tops]
        mom = None
        if self._momentum is not None and self._momentum.entries:
            mom = self.mom_fn(pct)
        if (lrs, mom) != self._last:
            model = self.model  # on JAX this syncs the state first
            _hyper.set_lrs(model.optimizer, lrs)
            if mom is not None:
                self._momentum.assign(mom)
            self._last = (lrs, mom)
        self.lrs.append(lrs[-1])
        if mom is not None:
            self.moms.append(mom)
        self._step += 1

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None and self._last is not None:
            logs["learning_rate"] = self._last[0][-1]
            if self._last[1] is not None:
                logs["momentum"] = self._last[1]

    def on_train_end(self, logs=None):
        if self._momentum is not None:
            self._momentum.uninstall()


class OneCycle(ParamScheduler):
    """fastai's one-cycle policy: learning rate and momentum.

    Rate: cosine from ``lr_max / div`` up to ``lr_max`` over ``pct_start``
    of the steps, then down to ``lr_max / div_final``. Momentum (SGD
    ``momentum`` or Adam-family ``beta_1``, never ``beta_2``) goes the
    opposite way through ``moms``; an optimizer with neither gets one
    warning.

    Example:

    >>> import numpy as np
    >>> model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    >>> model.compile(keras.optimizers.Adam(), "mse")
    >>> cb = OneCycle(1e-2, pct_start=0.5)
    >>> _ = model.fit(np.ones((8, 2)), np.ones(8), batch_size=2,
    ...               epochs=1, verbose=0, callbacks=[cb])
    >>> round(cb.lrs[2], 6), round(cb.moms[2], 6)
    (0.01, 0.85)

    Args:
        lr_max: float, slice or sequence (one per optimizer group), or
            ``None`` for the optimizer's current rates.
        div: float. Defaults to 25.
        div_final: float. Defaults to 1e5.
        pct_start: float. Defaults to 0.25.
        moms: tuple of 3 floats or ``None`` (momentum untouched).
            Defaults to ``(0.95, 0.85, 0.95)``.
        total_steps: int or None. See ``ParamScheduler``.
    """

    def __init__(self, lr_max=None, div=25.0, div_final=1e5, pct_start=0.25,
                 moms=(0.95, 0.85, 0.95), total_steps=None):
        schedules.one_cycle(0.0, 1.0, pct_start=pct_start)  # validates
        if moms is not None and len(moms) != 3:
            raise ValueError(f"`moms` must be 3 floats (start, middle, end)"
                             f" or None. Received: moms={moms}.")

        def lr_fn(pct, top):
            return schedules.one_cycle(pct, top, div=div, div_final=div_final,
                                       pct_start=pct_start)

        mom_fn = None if moms is None else (
            lambda pct: schedules.one_cycle_momentum(
                pct, tuple(moms), pct_start=pct_start))
        super().__init__(lr_fn, lr_max, mom_fn, total_steps)


class CosineRestarts(ParamScheduler):
    """SGDR: cosine annealing restarted every cycle (fastai ``fit_sgdr``).

    Example:

    >>> import numpy as np
    >>> model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    >>> model.compile(keras.optimizers.SGD(0.1), "mse")
    >>> cb = CosineRestarts(0.1, cycle_len=1, cycle_mult=2)
    >>> _ = model.fit(np.ones((8, 2)), np.ones(8), batch_size=4,
    ...               epochs=3, verbose=0, callbacks=[cb])
    >>> [round(v, 4) for v in cb.lrs]
    [0.1, 0.05, 0.1, 0.0854, 0.05, 0.0146]

    Args:
        lr_max: float, slice or sequence, or ``None`` (current rates).
        cycle_len: float. Epochs in the first cycle. Defaults to 1.
        cycle_mult: float. Growth of the cycle length. Defaults to 2.
        lr_min: float. Defaults to 0.
        steps_per_epoch: int or None. Taken from the fit when known.
    """

    def __init__(self, lr_max=None, cycle_len=1, cycle_mult=2, lr_min=0.0,
                 steps_per_epoch=None):
        schedules.cosine_restarts(0.0, 1.0, cycle_len=cycle_len,
                                  cycle_mult=cycle_mult)  # validates
        self.steps_per_epoch = steps_per_epoch

        def lr_fn(pct, top):
            epoch = pct * self._total / self._epoch_steps
            return schedules.cosine_restarts(
                epoch, top, cycle_len=cycle_len, cycle_mult=cycle_mult,
                lr_min=lr_min)

        super().__init__(lr_fn, lr_max)

    def on_train_begin(self, logs=None):
        steps = self.steps_per_epoch or self.params.get("steps")
        if not steps:
            raise ValueError("CosineRestarts needs steps per epoch: the data"
                             " has no known length. Pass steps_per_epoch.")
        self._epoch_steps = int(steps)
        if self.total_steps is None and not self.params.get("steps"):
            self.total_steps = steps * self.params["epochs"]
        super().on_train_begin(logs)
