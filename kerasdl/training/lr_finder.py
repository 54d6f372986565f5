"""The learning-rate finder (fastai's ``lr_find``) for any compiled model.

The sweep runs inside one ``model.fit``. The rate grows exponentially
from ``start_lr`` to ``end_lr`` over ``num_it`` steps; it is computed on
the device inside the train step (see ``_stepping``) and the losses are
read back in a worker thread where the backend allows it, so the sweep
costs about as much as the same number of training steps, and repeated
sweeps compile once. Weights, optimizer variables (the step counter
included) and the learning rate are restored exactly afterwards.
"""

import math
import os
import threading

import keras
import numpy as np

from kerasdl import _backend
from kerasdl import _files
from kerasdl import _validate
from kerasdl.training import _checks
from kerasdl.training import _rates as _hyper
from kerasdl.training import _stepping
from kerasdl.training import _suggest
from kerasdl.training import schedules
from kerasdl.training._data import fit_inputs


class _SweepRule(_stepping.Rule):
    """``start * (end / start) ** (step / num_it)``: ``exp_growth`` from
    the group's first rate."""

    key = "lr_sweep"

    def __init__(self, start_lr, end_lr, num_it):
        self.params = (math.log(end_lr / start_lr), num_it)

    def lr(self, step, total, top, p, xp):
        return schedules.exp_growth(top, p[0], step / p[1], xp)


def _check_range(start_lr, end_lr):
    start_lr = _validate.positive(start_lr, "start_lr", hint="Try 1e-7.")
    end_lr = _validate.positive(end_lr, "end_lr", hint="Try 10.")
    if start_lr >= end_lr:
        raise ValueError(
            f"`start_lr` must be below `end_lr` (the sweep grows the rate "
            f"from one to the other): expected 0 < start_lr < end_lr. "
            f"Received: start_lr={start_lr!r}, end_lr={end_lr!r}. Try "
            f"1e-7 and 10.")
    return start_lr, end_lr


class LRFinder(keras.callbacks.Callback):
    """Grows the learning rate exponentially and records the loss.

    At step ``i`` the rate is ``start_lr * (end_lr / start_lr) **
    (i / num_it)``; the loss of each batch alone is recorded, with a
    debiased moving average (``beta``). Keras logs the running mean of
    the epoch's losses; the batch's own loss is recovered from two
    successive means (exact when the batches of an epoch have one size; a
    shorter last batch of an epoch is weighed as a full one). The sweep stops after ``num_it``
    steps, when the smoothed loss exceeds 4x the best (``stop_div``), or
    at the first NaN/inf loss; then the model and optimizer are restored.
    With a ``MultiOptimizer`` every group keeps its ratio to the last one.
    Losses are read a little behind the device, so a stop may come a few
    steps late; those steps are not recorded, and are undone.

    Example:

    >>> import numpy as np
    >>> model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    >>> model.compile(keras.optimizers.SGD(), "mse")
    >>> finder = LRFinder(1e-4, 1e-2, num_it=4)
    >>> _ = model.fit(np.ones((8, 2)), np.ones(8), batch_size=2,
    ...               verbose=0, callbacks=[finder])
    >>> [round(lr, 6) for lr in finder.lrs], finder.stop_reason
    ([0.0001, 0.000316, 0.001, 0.003162], 'num_it')

    Args:
        start_lr: float. First rate. Defaults to 1e-7.
        end_lr: float. Rate reached after ``num_it`` steps. Defaults to 10.
        num_it: int. Steps of the sweep. Defaults to 100.
        stop_div: bool. Stop once the smoothed loss > 4x its best.
            Defaults to ``True``.
        beta: float. Smoothing of the loss, in ``[0, 1)``.
            Defaults to 0.98.
        restore: bool. Restore weights and optimizer at the end.
            Defaults to ``True``.

    Raises:
        TypeError: arguments of the wrong type (``num_it=2.5``).
        ValueError: rates that are not finite numbers > 0, ``start_lr >=
            end_lr``, ``num_it < 1``, ``beta`` not in ``[0, 1)``; at the
            start of the fit, ``steps_per_execution > 1``.
    """

    async_safe = True  # on_train_batch_end only reads the logs

    def __init__(self, start_lr=1e-7, end_lr=10.0, num_it=100, stop_div=True,
                 beta=0.98, restore=True):
        super().__init__()
        start_lr, end_lr = _check_range(start_lr, end_lr)
        self.start_lr, self.end_lr = start_lr, end_lr
        self.num_it = _validate.integer(num_it, "num_it", low=1,
                                        hint="Try 100.")
        self.stop_div = _checks.flag(stop_div, "stop_div")
        self.beta = _validate.number(beta, "beta", low=0, high=1,
                                     high_open=True, hint="Try 0.98.")
        self.restore_state = _checks.flag(restore, "restore")
        self.lrs, self.losses, self.smoothed = [], [], []
        self.stop_reason = None
        self._saved = None
        self._control = None
        self._lock = threading.Lock()

    def on_train_begin(self, logs=None):
        model = self.model
        _hyper.check_steps_per_execution(model, "LRFinder")
        opt = model.optimizer
        if opt is None:
            raise ValueError("LRFinder: compile the model first.")
        if not opt.built:
            opt.build(model.trainable_variables)
        rates = _hyper.get_lrs(opt)
        ratios = [r / rates[-1] if rates[-1] else 1.0 for r in rates]
        # A copy on the device: no round trip through the host.
        self._saved = [(v, keras.ops.copy(v.value))
                       for v in [*model.variables, *opt.variables]]
        self.lrs, self.losses, self.smoothed = [], [], []
        self._pending, self._next, self._epoch_base = {}, 0, 0
        self._avg, self._best = 0.0, math.inf
        self._last_mean = math.nan
        self.stop_reason = None
        self._rule = _SweepRule(self.start_lr, self.end_lr, self.num_it)
        self._control = _stepping.StepControl(model, self._rule)
        self._control.install([self.start_lr * r for r in ratios],
                              self.num_it)

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch_base = epoch * (self.params.get("steps") or 0)

    def on_train_batch_end(self, batch, logs=None):
        # May run in a worker thread, out of order: keep each running
        # mean under its step and consume them in order.
        mean = float((logs or {}).get("loss", math.nan))
        with self._lock:
            self._pending[self._epoch_base + batch] = (batch, mean)
            while self._next in self._pending and self.stop_reason is None:
                self._record(*self._pending.pop(self._next))

    def _record(self, batch, mean):
        # Mean of batches 0..b times b + 1, less the same for 0..b-1.
        loss = mean if batch == 0 else \
            (batch + 1) * mean - batch * self._last_mean
        self._last_mean = mean
        i = self._next
        self._next += 1
        if not math.isfinite(loss):
            return self._stop("non-finite loss")
        self._avg = self.beta * self._avg + (1 - self.beta) * loss
        smooth = self._avg / (1 - self.beta ** (len(self.losses) + 1))
        self.lrs.append(self._rule.host_lr(i, self.num_it, self.start_lr))
        self.losses.append(loss)
        self.smoothed.append(smooth)
        self._best = min(self._best, smooth)
        if self.stop_div and smooth > 4 * self._best:
            return self._stop("diverged")
        if self._next >= self.num_it:
            return self._stop("num_it")

    def _stop(self, reason):
        self.stop_reason = reason
        self._model.stop_training = True  # no state sync from a thread

    def on_train_end(self, logs=None):
        if self.stop_reason is None:
            self.stop_reason = "data exhausted"
        if self.restore_state:
            self.restore()
        elif self._control is not None:
            self.model  # noqa: B018 (on JAX: sync the state first)
            self._control.uninstall()

    def restore(self):
        """Takes the sweep out of the optimizer and puts back the weights
        and optimizer variables saved at the start (once; later calls do
        nothing)."""
        self.model  # noqa: B018 (on JAX: sync the state first)
        if self._control is not None:
            self._control.uninstall()
        if self._saved is None:
            return
        for var, value in self._saved:
            var.assign(value)
        self._saved = None


class LRFindResult:
    """What ``lr_find`` measured, and fastai's four suggestions.

    Attributes:
        lrs: numpy array. Rate of each recorded step.
        losses: numpy array. Loss of each step's batch.
        smoothed: numpy array. Debiased moving average of ``losses``.
        valley, minimum, steep, slide: floats. Suggested rates (valley is
            fastai's default), computed on the smoothed losses without the
            first ``num_it // 10`` and last 5 points or any non-finite one.
        suggestions: dict. ``{name: rate}``.
        stop_reason: str. "num_it", "diverged", "non-finite loss" or
            "data exhausted".

    Raises:
        ValueError: too few usable points for the suggestions.
    """

    def __init__(self, lrs, losses, smoothed, num_it, stop_reason):
        self.lrs = np.asarray(lrs, float)
        self.losses = np.asarray(losses, float)
        self.smoothed = np.asarray(smoothed, float)
        self.num_it, self.stop_reason = num_it, stop_reason
        found = _suggest.suggest(self.lrs, self.smoothed, num_it)
        self._index = {name: idx for name, (_, idx) in found.items()}
        self.suggestions = {name: lr for name, (lr, _) in found.items()}
        for name, lr in self.suggestions.items():
            setattr(self, name, lr)

    def __repr__(self):
        found = ", ".join(f"{k}={v:.3g}" for k, v in self.suggestions.items())
        return (f"LRFindResult({len(self.lrs)} points, {found}, "
                f"stop_reason={self.stop_reason!r})")

    def to_dict(self):
        """JSON-ready: suggestions, stop reason and the curve."""
        return {"suggestions": dict(self.suggestions),
                "stop_reason": self.stop_reason,
                "lrs": self.lrs.tolist(), "losses": self.losses.tolist(),
                "smoothed": self.smoothed.tolist()}

    def plot(self, skip_end=5):
        """Smoothed loss against the rate (log scale), with suggestions.

        Args:
            skip_end: int. Last points left out (they often shoot up).
                Defaults to 5.

        Returns:
            A ``matplotlib.figure.Figure`` (no window is opened).
        """
        from matplotlib.figure import Figure

        skip_end = _validate.integer(skip_end, "skip_end", low=0)
        fig = Figure(figsize=(6, 4))
        ax = fig.add_subplot()
        end = len(self.lrs) - skip_end if len(self.lrs) > skip_end else None
        ax.plot(self.lrs[:end], self.smoothed[:end], color="C0")
        for i, (name, lr) in enumerate(self.suggestions.items()):
            idx = min(self._index[name], len(self.smoothed) - 1)
            ax.plot(lr, self.smoothed[idx], "o", color=f"C{i + 1}",
                    label=f"{name}: {lr:.2e}")
        ax.set_xscale("log")
        ax.set_xlabel("learning rate")
        ax.set_ylabel("loss (smoothed)")
        ax.legend()
        fig.tight_layout()
        return fig

    def save_plot(self, path):
        """Writes ``plot()`` as a PNG (complete or not at all), creating
        its folder when missing.

        Returns:
            ``path``.

        Raises:
            ValueError: ``path`` is a folder, or its folder is not
                writable.
        """
        name = os.fspath(path)
        if not os.path.isdir(name):
            os.makedirs(os.path.dirname(os.path.abspath(name)),
                        exist_ok=True)
        _validate.output_file(name, "path")
        figure = self.plot()
        with _files.atomic_path(name) as tmp:
            with open(tmp, "wb") as f:
                figure.savefig(f, format="png", dpi=100)
        return path


# Bytes of sweep batches copied into one array before the fit (then Keras
# slices them). 0: each batch is gathered when the fit asks for it, which
# is faster: a fresh copy of 100 batches (92 MB of 60x80 images at batch
# 64) cost up to 0.2 s in page faults, more than the 100 steps' slack
# (bench/NOTES.md, issue 3).
GATHER_LIMIT = 0


def _sweep_rows(n, num_it, batch_size, seed):
    """Row order of the sweep: a seeded permutation (repeated when the
    data is shorter than the sweep); rows sorted within each batch."""
    order = np.random.default_rng(seed).permutation(n)
    rows = np.resize(order, num_it * batch_size).reshape(num_it, batch_size)
    return np.sort(rows, axis=1)


class _ArraySweep(keras.utils.PyDataset):
    """``num_it`` batches of seeded rows, gathered one batch at a time
    (for sweeps too large to copy up front)."""

    def __init__(self, inputs, rows):
        super().__init__()
        self.inputs, self.rows = inputs, rows

    def __len__(self):
        return len(self.rows)

    def __getitem__(self, i):
        take = lambda a: keras.tree.map_structure(
            lambda t: np.take(t, self.rows[i], axis=0), a)
        return tuple(take(self.inputs[key]) for key in
                     ("x", "y", "sample_weight")
                     if self.inputs.get(key) is not None)


def _sweep_inputs(inputs, num_it, batch_size, seed):
    """Fit arguments for exactly ``num_it`` steps where the length is
    known; otherwise ``steps_per_epoch=num_it`` (num_it is the contract).

    Arrays: each batch's seeded rows are gathered when the fit asks for
    it; sweeps of at most ``GATHER_LIMIT`` bytes are copied up front
    instead (off by default)."""
    x = inputs["x"]
    arrays = keras.tree.flatten(x)
    if arrays and all(isinstance(a, np.ndarray) for a in arrays):
        if inputs.get("y") is None:
            raise ValueError("lr_find: arrays need targets: pass (x, y) or "
                             "x= and y=.")
        batch_size = batch_size or 32
        rows = _sweep_rows(len(arrays[0]), num_it, batch_size, seed)
        used = [inputs[k] for k in ("x", "y", "sample_weight")
                if inputs.get(k) is not None]
        nbytes = rows.size * sum(a.nbytes // max(len(a), 1)
                                 for a in keras.tree.flatten(used))
        if nbytes > GATHER_LIMIT:
            return {"x": _ArraySweep(inputs, rows), "epochs": 1,
                    "shuffle": False}
        flat = rows.ravel()
        out = {k: keras.tree.map_structure(
            lambda a: np.take(a, flat, axis=0), inputs[k])
            for k in ("x", "y", "sample_weight") if inputs.get(k) is not None}
        return {**out, "batch_size": batch_size, "shuffle": False,
                "epochs": 1}
    if isinstance(x, keras.utils.PyDataset):
        return {**inputs, "epochs": -(-num_it // len(x)), "shuffle": False}
    return {**inputs, "steps_per_epoch": num_it, "epochs": 1}


def _ran_out(finder, num_it, batch_size):
    """The data ended before the sweep did: say so, and how to fix it."""
    steps = finder._next
    size = f"batch_size={batch_size}" if batch_size else "the batch size"
    raise ValueError(
        f"lr_find: the data ran out after {steps} batch(es); the sweep "
        f"needs num_it={num_it}. Pass data that yields at least "
        f"{num_it} batches (more data, a smaller {size}, or a dataset "
        f"that repeats), or a smaller num_it (at least "
        f"{_suggest.min_num_it()}). The model was restored.")


def lr_find(model, data=None, *, start_lr=1e-7, end_lr=10.0, num_it=100,
            stop_div=True, beta=0.98, x=None, y=None, batch_size=None,
            seed=0, verbose=0, callbacks=None):
    """Sweeps the learning rate, restores the model, suggests rates.

    Example:

    >>> import numpy as np
    >>> keras.utils.set_random_seed(0)
    >>> x = np.random.randn(256, 4).astype("float32")
    >>> model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
    >>> model.compile(keras.optimizers.SGD(), "mse")
    >>> result = lr_find(model, (x, x.sum(1)), num_it=40, batch_size=16)
    >>> sorted(result.suggestions)
    ['minimum', 'slide', 'steep', 'valley']
    >>> 1e-7 < result.valley < 10
    True

    Args:
        model: a compiled ``keras.Model`` with a float learning rate.
        data: ``(x, y)`` tuple, ``PyDataset``, ``tf.data.Dataset`` or
            generator; or pass ``x=``/``y=``. Arrays are sampled with
            ``seed``; data of unknown length must yield ``num_it``
            batches.
        start_lr, end_lr, num_it, stop_div, beta: see ``LRFinder``.
        x, y: as in ``model.fit``.
        batch_size: int or None. For arrays. Defaults to 32.
        seed: int. Order of the array samples. Defaults to 0.
        verbose: int. Passed to ``model.fit``. Defaults to 0.
        callbacks: list of extra callbacks.

    Returns:
        An ``LRFindResult``.

    Raises:
        TypeError: arguments of the wrong type.
        ValueError: bad arguments (``num_it`` too small for suggestions,
            ``x`` and ``y`` of different lengths ...), all raised before
            the sweep; ``steps_per_execution > 1``; data that ran out
            before ``num_it`` batches, or too few usable points (the
            model is restored first).
    """
    if not isinstance(model, keras.Model):
        raise TypeError(f"lr_find: expected a keras.Model; received "
                        f"{type(model).__name__}.")
    if getattr(model, "optimizer", None) is None or not model.compiled:
        raise ValueError("lr_find: the model is not compiled. Call "
                         "model.compile(optimizer=..., loss=...) first.")
    least = _suggest.min_num_it()
    _validate.integer(num_it, "num_it", low=least, hint=(
        f"The suggestions need {_suggest.MIN_POINTS} points after the "
        f"first num_it // 10 and the last 5 are dropped; try 100."))
    finder = LRFinder(start_lr, end_lr, num_it, stop_div, beta)
    batch_size = _checks.optional_integer(batch_size, "batch_size", low=1)
    seed = _validate.integer(seed, "seed", low=0)
    verbose = _checks.verbose(verbose)
    callbacks = _checks.callback_list(callbacks)
    fit_args = _sweep_inputs(fit_inputs(data, x, y, "lr_find"), num_it,
                             batch_size, seed)
    # fit may draw from the global numpy / Python generators (shuffling,
    # data adapters): put them back too, so a later fit is unchanged.
    rng_state = _backend.global_rng_state()
    try:
        model.fit(**fit_args, verbose=verbose,
                  callbacks=[finder, *callbacks])
    finally:
        finder.restore()
        _backend.set_global_rng_state(rng_state)
    if finder.stop_reason == "data exhausted":
        _ran_out(finder, num_it, batch_size)
    return LRFindResult(finder.lrs, finder.losses, finder.smoothed, num_it,
                        finder.stop_reason)
