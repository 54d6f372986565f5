"""Callbacks that set the learning rate (and momentum) at every step.

The values are computed on the device inside the train step (see
``_stepping``), so a schedule costs no host round trip per step, stays
exact with any ``steps_per_execution``, and repeated fits compile once.
The rates used are logged as ``learning_rate`` (and ``momentum``) in the
epoch logs, so ``History`` keeps them, and every step's values are kept
on the callback (``lrs``, ``moms``).
"""

import keras
import numpy as np
from keras import ops

from kerasdl import _validate
from kerasdl.training import _checks
from kerasdl.training import _rates as _hyper
from kerasdl.training import _stepping
from kerasdl.training import schedules


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
        TypeError: not a number, slice or sequence of numbers.
        ValueError: a sequence of the wrong length, a slice with a step
            or with ``lo > hi``, a rate that is not a finite number > 0,
            ``n_groups < 1``.
    """
    return _spread(lr, n_groups, "lr")


def _spread(lr, n_groups, name):
    lr = _checks.rates(lr, name)
    n_groups = _validate.integer(n_groups, "n_groups", low=1)
    if isinstance(lr, slice):
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
        raise ValueError(
            f"`{name}` must give one rate per optimizer group: expected "
            f"{n_groups} learning rates; received {len(values)}: {values}. "
            f"Pass one number, a slice or {n_groups} rates.")
    return values


def group_rates(lr, optimizer, name="lr_max"):
    """One rate per base optimizer of ``optimizer``; ``None`` reads the
    optimizer's current rates, which must then be usable too."""
    n = len(_hyper.base_optimizers(optimizer))
    if lr is not None:
        return _spread(lr, n, name)
    current = _hyper.get_lrs(optimizer)
    bad = [r for r in current if not np.isfinite(r) or r <= 0]
    if bad:
        raise ValueError(
            f"`{name}=None` trains at the optimizer's own learning rate, "
            f"which must be a finite number > 0; it is {current}. Pass "
            f"{name}, such as {name}=1e-3.")
    return current


class _FunctionRule(_stepping.Rule):
    """Python functions of progress, traced with tensors."""

    def __init__(self, lr_fn, mom_fn):
        self.lr_fn, self.mom_fn = lr_fn, mom_fn
        self.key = ("functions", lr_fn, mom_fn)
        self.cycles_momentum = mom_fn is not None

    def lr(self, step, total, top, p, xp):
        return self.lr_fn(xp.minimum(step / total, 1.0), top)

    def momentum(self, step, total, p, xp):
        return self.mom_fn(xp.minimum(step / total, 1.0))

    def host_lr(self, step, total, top):
        return float(ops.convert_to_numpy(
            self.lr_fn(min(step / total, 1.0), top)))

    def host_momentum(self, step, total):
        return float(ops.convert_to_numpy(
            self.mom_fn(min(step / total, 1.0))))

    def host_lrs(self, steps, total, top):
        # The user's functions are only known to take scalar tensors.
        return [self.host_lr(i, total, top) for i in steps]

    def host_momenta(self, steps, total):
        return [self.host_momentum(i, total) for i in steps]

    def check(self, who):
        pct, top = ops.convert_to_tensor(0.5), ops.convert_to_tensor(0.1)
        for name, call in (("lr_fn", lambda: self.lr_fn(pct, top)),
                           ("mom_fn", lambda: self.mom_fn(pct))):
            if name == "mom_fn" and self.mom_fn is None:
                continue
            try:
                call()
            except Exception as err:
                raise ValueError(
                    f"{who}: {name} is computed inside the train step, so it "
                    f"is called with tensors, and it failed with one: "
                    f"{type(err).__name__}: {err}. Write it with arithmetic "
                    f"and keras.ops (ops.where, ops.cos), not if/math."
                ) from err


class ParamScheduler(keras.callbacks.Callback):
    """Sets learning rate (and momentum) from functions of progress.

    At step ``i`` of ``total`` (over the whole fit) each optimizer group
    trains with ``lr_fn(i / total, lr_max)``, ``lr_max`` being that group's
    peak rate, and momentum ``mom_fn(i / total)``. Both are computed on the
    device inside the train step, so they are called with scalar tensors:
    write them with arithmetic and ``keras.ops``. After the fit, ``lrs``
    and ``moms`` hold the values of every step (last group), and the
    optimizer has its own rates and momentum back for later fits.

    If a fit using this callback is interrupted by an exception, call
    ``uninstall()`` before fitting the model again.

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
        lr_fn: callable ``(pct, lr_max) -> rate``.
        lr_max: float, slice or sequence. Peak rate per group (see
            ``spread_lr``); ``None`` reads the optimizer's current rates.
        mom_fn: callable ``pct -> momentum`` or ``None`` (untouched).
        total_steps: int or None. Needed when the data has no known
            length; otherwise epochs times steps per epoch.

    Raises:
        TypeError: ``lr_fn`` or ``mom_fn`` not callable, or arguments of
            the wrong type.
        ValueError: bad rates or ``total_steps``, unknown total steps, or
            a function that fails on tensors.
    """

    def __init__(self, lr_fn, lr_max=None, mom_fn=None, total_steps=None):
        super().__init__()
        if lr_fn is not None or type(self) is ParamScheduler:
            if not callable(lr_fn):
                raise TypeError(f"`lr_fn` must be a callable (pct, lr_max) "
                                f"-> rate. Received: lr_fn={lr_fn!r}.")
        _checks.optional_callable(mom_fn, "mom_fn")
        if lr_max is not None:
            _checks.rates(lr_max, "lr_max")
        total_steps = _checks.optional_integer(total_steps, "total_steps",
                                               low=1)
        self.lr_fn, self.lr_max, self.mom_fn = lr_fn, lr_max, mom_fn
        self.total_steps = total_steps
        self.lrs, self.moms = [], []
        self._control = None

    def _check_tops(self, tops):
        """Checks the peak rates of each group at the start of the fit."""

    def _rule(self):
        rule = _FunctionRule(self.lr_fn, self.mom_fn)
        rule.check(type(self).__name__)
        return rule

    def on_train_begin(self, logs=None):
        model = self.model
        name = type(self).__name__
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
        self._tops = group_rates(self.lr_max, model.optimizer)
        self._check_tops(self._tops)
        rule = self._rule()
        moms = _stepping.momentum_attributes(model.optimizer, name) \
            if rule.cycles_momentum else None
        self.uninstall()
        self._control = _stepping.StepControl(model, rule, moms)
        self._control.install(self._tops, self._total)
        self.lrs, self.moms = [], []

    def on_epoch_end(self, epoch, logs=None):
        control = self._control
        if logs is None or control is None or not control.installed:
            return
        self.model  # noqa: B018 (on JAX: sync the state first)
        opt = control.opts[-1]
        logs["learning_rate"] = float(np.asarray(
            control.live_optimizers()[-1].learning_rate.numpy()))
        if control.momentum.get(id(opt)):
            last = max(control.steps_done() - 1, 0)
            logs["momentum"] = control.rule.host_momentum(last, self._total)

    def on_train_end(self, logs=None):
        self.model  # noqa: B018 (on JAX: sync the state first)
        self.uninstall()

    def uninstall(self):
        """Takes the schedule out of the optimizer (done at the end of
        the fit; call it yourself after an interrupted fit)."""
        control = self._control
        if control is None or not control.installed:
            return
        rule, top = control.rule, self._tops[-1]
        steps = range(control.steps_done())
        self.lrs = rule.host_lrs(steps, self._total, top)
        if control.momentum:
            self.moms = rule.host_momenta(steps, self._total)
        control.uninstall()


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

    Raises:
        TypeError: arguments of the wrong type.
        ValueError: a rate, ``div`` or ``div_final`` that is not a finite
            number > 0, ``pct_start`` not in ``(0, 1)``, a momentum not
            in ``[0, 1)``.
    """

    def __init__(self, lr_max=None, div=25.0, div_final=1e5, pct_start=0.25,
                 moms=(0.95, 0.85, 0.95), total_steps=None):
        _, div, div_final, pct_start = schedules._check_one_cycle(
            1.0, div, div_final, pct_start)
        moms = _checks.momenta(moms)
        super().__init__(None, lr_max, None, total_steps)
        self.div, self.div_final, self.pct_start = div, div_final, pct_start
        self.cycle_moms = moms

    def _rule(self):
        return _OneCycleRule(self.div, self.div_final, self.pct_start,
                             self.cycle_moms)


class _OneCycleRule(_stepping.Rule):
    def __init__(self, div, div_final, pct_start, moms):
        self.cycles_momentum = moms is not None
        self.key = ("one_cycle", self.cycles_momentum)
        self.params = (div, div_final, pct_start, *(moms or (0, 0, 0)))

    def lr(self, step, total, top, p, xp):
        return schedules.one_cycle_curve(xp.minimum(step / total, 1.0), top,
                                         p[0], p[1], p[2], xp)

    def momentum(self, step, total, p, xp):
        return schedules.one_cycle_momentum_curve(
            xp.minimum(step / total, 1.0), (p[3], p[4], p[5]), p[2], xp)


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

    Raises:
        TypeError: arguments of the wrong type.
        ValueError: a rate that is not a finite number > 0,
            ``cycle_len <= 0``, ``cycle_mult < 1``, ``lr_min < 0``,
            ``steps_per_epoch < 1``; at the start of the fit, ``lr_min``
            above a group's rate.
    """

    def __init__(self, lr_max=None, cycle_len=1, cycle_mult=2, lr_min=0.0,
                 steps_per_epoch=None):
        cycle_len, cycle_mult = schedules._check_cycles(cycle_len,
                                                        cycle_mult)
        lr_min = _validate.number(lr_min, "lr_min", low=0, hint="Try 0.")
        super().__init__(None, lr_max)
        if lr_max is not None and not isinstance(lr_max, slice) \
                and np.ndim(lr_max) == 0:
            schedules._check_lr_min(lr_min, float(lr_max))
        self.steps_per_epoch = _checks.optional_integer(
            steps_per_epoch, "steps_per_epoch", low=1)
        self.cycle_len, self.cycle_mult = cycle_len, cycle_mult
        self.lr_min = lr_min

    def _check_tops(self, tops):
        schedules._check_lr_min(self.lr_min, list(tops))

    def _rule(self):
        return _CosineRule(self._epoch_steps, self.cycle_len,
                           self.cycle_mult, self.lr_min)

    def on_train_begin(self, logs=None):
        steps = self.steps_per_epoch or self.params.get("steps")
        if not steps:
            raise ValueError("CosineRestarts needs steps per epoch: the data"
                             " has no known length. Pass steps_per_epoch.")
        self._epoch_steps = int(steps)
        if self.total_steps is None and not self.params.get("steps"):
            self.total_steps = steps * self.params["epochs"]
        super().on_train_begin(logs)


class _CosineRule(_stepping.Rule):
    def __init__(self, epoch_steps, cycle_len, cycle_mult, lr_min):
        self.key = ("cosine_restarts", float(cycle_mult))
        self.cycle_mult = cycle_mult
        self.params = (cycle_len * epoch_steps, lr_min)

    def lr(self, step, total, top, p, xp):
        return schedules.cosine_restarts_curve(step, p[0], self.cycle_mult,
                                               top, p[1], xp)
