"""fastai's training helpers for any compiled ``keras.Model``.

``fit_one_cycle`` and ``fit_sgdr`` run ``model.fit`` with a schedule
callback; ``freeze``/``unfreeze`` set ``trainable`` on the top-level
layers; ``discriminative_optimizer`` gives each group of layers its own
rate through ``keras.optimizers.MultiOptimizer``; ``fine_tune`` chains
them as fastai does.
"""

import numpy as np

import keras

from kerasdl import _validate
from kerasdl.callbacks import _checks
from kerasdl.callbacks import _hyper
from kerasdl.callbacks._data import fit_inputs
from kerasdl.callbacks.scheduler import CosineRestarts
from kerasdl.callbacks.scheduler import OneCycle
from kerasdl.callbacks.scheduler import group_rates
from kerasdl.callbacks.scheduler import spread_lr
from kerasdl.callbacks.schedules import _check_one_cycle
from kerasdl.callbacks.schedules import sgdr_epochs


def _check_compiled(model, who):
    if not isinstance(model, keras.Model):
        raise TypeError(f"{who}: expected a keras.Model; received "
                        f"{type(model).__name__}.")
    if getattr(model, "optimizer", None) is None or not model.compiled:
        raise ValueError(f"{who}: the model is not compiled. Call "
                         f"model.compile(optimizer=..., loss=...) first.")


def fit_one_cycle(model, data=None, epochs=1, lr_max=None, *, div=25.0,
                  div_final=1e5, pct_start=0.25, moms=(0.95, 0.85, 0.95),
                  x=None, y=None, callbacks=None, **fit_kwargs):
    """Trains with fastai's one-cycle policy (rate and momentum).

    Example:

    >>> import numpy as np
    >>> model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    >>> model.compile(keras.optimizers.Adam(), "mse")
    >>> history = fit_one_cycle(model, (np.ones((16, 3)), np.ones(16)),
    ...                         epochs=2, lr_max=1e-2, batch_size=8,
    ...                         verbose=0)
    >>> len(history.history["learning_rate"])
    2

    Args:
        model: a compiled ``keras.Model`` with a float learning rate.
        data: ``(x, y)`` tuple, ``PyDataset``, ``tf.data.Dataset`` or
            generator; or leave it out and pass ``x=``/``y=``.
        epochs: int. Defaults to 1.
        lr_max: float, ``slice(lo, hi)`` or one rate per optimizer group;
            ``None`` uses the optimizer's current rate.
        div, div_final, pct_start, moms: see ``kerasdl.OneCycle``.
        x, y: as in ``model.fit``.
        callbacks: list of extra callbacks.
        **fit_kwargs: passed to ``model.fit`` (``batch_size``,
            ``validation_data``, ``verbose``, ``steps_per_epoch`` ...).

    Returns:
        The ``History``; its logs carry ``learning_rate`` and ``momentum``.

    Raises:
        TypeError: arguments of the wrong type (``epochs=2.5``).
        ValueError: uncompiled model, ``epochs < 1``, a rate that is not a
            finite number > 0, other bad schedule values, ``x`` and ``y``
            of different lengths, unknown data length without
            ``steps_per_epoch``. All are raised before training starts.
    """
    _check_compiled(model, "fit_one_cycle")
    epochs = _validate.integer(epochs, "epochs", low=1)
    sched = OneCycle(lr_max, div=div, div_final=div_final,
                     pct_start=pct_start, moms=moms)
    group_rates(lr_max, model.optimizer)
    callbacks = _checks.callback_list(callbacks)
    inputs = fit_inputs(data, x, y, "fit_one_cycle")
    try:
        return model.fit(**inputs, epochs=epochs,
                         callbacks=[sched, *callbacks], **fit_kwargs)
    finally:
        sched.uninstall()


def fit_sgdr(model, data=None, n_cycles=3, cycle_len=1, lr_max=None,
             cycle_mult=2, *, x=None, y=None, callbacks=None, **fit_kwargs):
    """Trains ``n_cycles`` cosine cycles with warm restarts (SGDR).

    Runs ``cycle_len * (1 + cycle_mult + ...)`` epochs in all.

    Example:

    >>> import numpy as np
    >>> model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    >>> model.compile(keras.optimizers.SGD(), "mse")
    >>> h = fit_sgdr(model, (np.ones((8, 3)), np.ones(8)), n_cycles=2,
    ...              cycle_len=1, lr_max=0.01, batch_size=8, verbose=0)
    >>> len(h.history["loss"])
    3

    Args:
        model: a compiled ``keras.Model``.
        data: as in ``fit_one_cycle``.
        n_cycles: int. Defaults to 3.
        cycle_len: int. Epochs of the first cycle. Defaults to 1.
        lr_max: float, slice or sequence; ``None``: current rate.
        cycle_mult: int. Defaults to 2.
        x, y, callbacks, **fit_kwargs: as in ``fit_one_cycle``.

    Returns:
        The ``History``.

    Raises:
        TypeError: arguments of the wrong type.
        ValueError: uncompiled model, ``n_cycles < 1``, ``cycle_len <=
            0``, ``cycle_mult < 1``, a total that is not a whole number
            of epochs, a rate that is not a finite number > 0, ``x`` and
            ``y`` of different lengths. All are raised before training.
    """
    _check_compiled(model, "fit_sgdr")
    epochs = sgdr_epochs(n_cycles, cycle_len, cycle_mult)
    if int(epochs) != epochs:
        raise ValueError(f"fit_sgdr needs a whole number of epochs; "
                         f"cycle_len={cycle_len} and cycle_mult="
                         f"{cycle_mult} give {epochs}.")
    sched = CosineRestarts(lr_max, cycle_len=cycle_len,
                           cycle_mult=cycle_mult,
                           steps_per_epoch=fit_kwargs.get("steps_per_epoch"))
    sched._check_tops(group_rates(lr_max, model.optimizer))
    callbacks = _checks.callback_list(callbacks)
    inputs = fit_inputs(data, x, y, "fit_sgdr")
    try:
        return model.fit(**inputs, epochs=int(epochs),
                         callbacks=[sched, *callbacks], **fit_kwargs)
    finally:
        sched.uninstall()


def _sublayers(layer):
    for sub in getattr(layer, "layers", []):
        yield sub
        yield from _sublayers(sub)


def _head_index(model):
    layers = model.layers
    for i in range(len(layers) - 1, -1, -1):
        if layers[i].weights:
            return i
    raise ValueError(f"Model {model.name!r} has no layer with weights.")


def _check_model(model, who):
    if not isinstance(model, keras.Model):
        raise TypeError(f"{who}: expected a keras.Model; received "
                        f"{type(model).__name__}.")


def _upto_index(model, upto):
    """``freeze``'s ``upto`` as an index into ``model.layers``."""
    layers = model.layers
    if upto is None:
        return _head_index(model)
    if isinstance(upto, str):
        names = [layer.name for layer in layers]
        if upto not in names:
            raise ValueError(f"freeze: no layer named {upto!r} in "
                             f"{model.name!r}; layers are {names}.")
        return names.index(upto)
    return _validate.integer(
        upto, "upto", low=0, high=len(layers),
        hint=f"Give the index or name of the first trainable layer of "
             f"{model.name!r}.")


def freeze(model, upto=None, *, train_bn=True):
    """Freezes the top-level layers before ``upto`` (fastai's ``freeze``).

    Batch-norm layers stay trainable when ``train_bn`` (as in fastai).
    Like every change of ``trainable`` in Keras, it takes effect at the
    next ``model.compile``.

    Example:

    >>> model = keras.Sequential([keras.Input((3,)),
    ...                           keras.layers.Dense(4, name="body"),
    ...                           keras.layers.Dense(2, name="head")])
    >>> freeze(model)
    ['body']
    >>> [w.name for w in model.trainable_weights]
    ['kernel', 'bias']

    Args:
        model: a ``keras.Model``.
        upto: int, str or None. Index or name of the first layer left
            trainable. Defaults to the last layer with weights (the head).
        train_bn: bool. Keep ``BatchNormalization`` layers trainable.
            Defaults to ``True``.

    Returns:
        The names of the frozen top-level layers.

    Raises:
        TypeError: ``upto`` neither an int nor a str, ``train_bn`` not a
            bool.
        ValueError: ``upto`` names no layer or is out of range.
    """
    _check_model(model, "freeze")
    train_bn = _checks.flag(train_bn, "train_bn")
    layers = model.layers
    upto = _upto_index(model, upto)
    unfreeze(model)
    for layer in layers[:upto]:
        layer.trainable = False
        if train_bn:
            for sub in [layer, *_sublayers(layer)]:
                if isinstance(sub, keras.layers.BatchNormalization):
                    sub.trainable = True
    return [layer.name for layer in layers[:upto]]


def unfreeze(model):
    """Makes every layer trainable again (effective at the next compile).

    Example:

    >>> model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    >>> _ = freeze(model, upto=1)
    >>> unfreeze(model)
    >>> len(model.trainable_weights)
    2

    Args:
        model: a ``keras.Model``.
    """
    _check_model(model, "unfreeze")
    model.trainable = True
    for layer in [*model.layers, *_sublayers(model)]:
        layer.trainable = True


def layer_groups(model, groups=3):
    """Splits the top-level layers with weights into contiguous groups.

    Example:

    >>> model = keras.Sequential([keras.Input((3,))] + [
    ...     keras.layers.Dense(3, name=f"d{i}") for i in range(5)])
    >>> [[layer.name for layer in g] for g in layer_groups(model, 2)]
    [['d0', 'd1', 'd2'], ['d3', 'd4']]

    Args:
        model: a ``keras.Model``.
        groups: int (number of even groups) or a list of layer names, each
            the first layer of a new group after the first.

    Returns:
        A list of lists of layers, first (input side) to last.

    Raises:
        TypeError: ``groups`` neither an int nor a list of names (a
            single name must be in a list).
        ValueError: a count out of range, unknown or repeated names.
    """
    _check_model(model, "layer_groups")
    layers = [layer for layer in model.layers if layer.weights]
    if isinstance(groups, (int, np.integer)) and not isinstance(groups,
                                                                bool):
        groups = _validate.integer(
            groups, "groups", low=1, high=max(len(layers), 1),
            hint=f"{model.name!r} has {len(layers)} layers with weights.")
        if not layers:
            raise ValueError(f"Model {model.name!r} has no layer with "
                             f"weights to group.")
        bounds = np.array_split(np.arange(len(layers)), groups)
        return [[layers[i] for i in b] for b in bounds]
    groups = _validate.strings(
        groups, "groups",
        hint="Pass a number of groups or a list of layer names.")
    if len(set(groups)) != len(groups):
        raise ValueError(f"`groups` must name each layer once. Received: "
                         f"groups={groups!r}.")
    names = [layer.name for layer in layers]
    missing = [g for g in groups if g not in names]
    if missing:
        raise ValueError(f"Unknown group start layer(s) {missing}; layers "
                         f"with weights are {names}.")
    starts = [0] + sorted(names.index(g) for g in groups) + [len(layers)]
    return [layers[a:b] for a, b in zip(starts, starts[1:]) if b > a]


def discriminative_optimizer(model, lr, optimizer=None, groups=3):
    """One optimizer per layer group, each with its own learning rate.

    Built on ``keras.optimizers.MultiOptimizer``; ``lr=slice(lo, hi)``
    spreads the rates geometrically from the first group to the last.

    Example:

    >>> model = keras.Sequential([keras.Input((3,))] + [
    ...     keras.layers.Dense(3, name=f"d{i}") for i in range(3)])
    >>> opt = discriminative_optimizer(model, slice(1e-4, 1e-2),
    ...                                keras.optimizers.SGD())
    >>> [round(float(o.learning_rate.numpy()), 6) for o in opt.optimizers]
    [0.0001, 0.001, 0.01]

    Args:
        model: a ``keras.Model``.
        lr: float, slice or one rate per group.
        optimizer: a ``keras.optimizers.Optimizer`` to copy per group.
            Defaults to the model's (unwrapped) optimizer, else Adam.
        groups: int or list of layer names; see ``layer_groups``.

    Returns:
        A ``keras.optimizers.MultiOptimizer``; pass it to ``compile``.

    Raises:
        TypeError: arguments of the wrong type.
        ValueError: a rate that is not a finite number > 0, a slice with
            ``lo > hi``, one rate per group of the wrong count, bad
            ``groups``.
    """
    _check_model(model, "discriminative_optimizer")
    _checks.rates(lr, "lr")
    if optimizer is None:
        current = getattr(model, "optimizer", None)
        optimizer = _hyper.base_optimizers(current)[-1] if current \
            else keras.optimizers.Adam()
    if not isinstance(optimizer, keras.optimizers.Optimizer):
        raise TypeError(f"`optimizer` must be a keras Optimizer; received "
                        f"{type(optimizer).__name__}.")
    grouped = layer_groups(model, groups)
    rates = spread_lr(lr, len(grouped))
    config = optimizer.get_config()
    opts = []
    for i, rate in enumerate(rates):
        opts.append(type(optimizer).from_config(
            {**config, "learning_rate": rate, "name": f"group{i}"}))
    mapping = keras.optimizers.OptimizerMap(default_optimizer=opts[-1])
    seen = set()  # a layer shared by two groups stays in the first
    for opt, group in zip(opts, grouped):
        for layer in group:
            for var in layer.weights:
                if var.path not in seen:
                    seen.add(var.path)
                    mapping[var.path] = opt
    return keras.optimizers.MultiOptimizer(mapping)


def _recompile(model, optimizer):
    config = dict(model._compile_config.config)
    config["optimizer"] = optimizer
    model.compile(**config)


def fine_tune(model, data=None, epochs=1, base_lr=2e-3, freeze_epochs=1,
              lr_mult=100, pct_start=0.3, div=5.0, *, groups=3, upto=None,
              train_bn=True, x=None, y=None, **fit_kwargs):
    """fastai's ``fine_tune``: train the head, then everything.

    1. ``freeze`` the body and ``fit_one_cycle(freeze_epochs, base_lr,
       pct_start=0.99)``; 2. ``unfreeze`` and ``fit_one_cycle(epochs,
       slice(base_lr / 2 / lr_mult, base_lr / 2), pct_start, div)`` with
       one rate per layer group. The model is recompiled (same loss and
       metrics) before each phase, never during a fit.

    Example:

    >>> import numpy as np
    >>> model = keras.Sequential([keras.Input((3,))] + [
    ...     keras.layers.Dense(3, name=f"d{i}") for i in range(3)])
    >>> model.compile(keras.optimizers.Adam(), "mse")
    >>> h1, h2 = fine_tune(model, (np.ones((8, 3)), np.ones((8, 3))),
    ...                    epochs=1, batch_size=4, verbose=0)
    >>> type(model.optimizer).__name__
    'MultiOptimizer'

    Args:
        model: a compiled ``keras.Model``; its optimizer is the template.
        data: as in ``fit_one_cycle``.
        epochs: int. Epochs of the unfrozen phase. Defaults to 1.
        base_lr: float. Defaults to 2e-3.
        freeze_epochs: int. Epochs of the frozen phase (0 skips it).
            Defaults to 1.
        lr_mult: float. Ratio of the last group's rate to the first's.
            Defaults to 100.
        pct_start: float. Of the unfrozen phase. Defaults to 0.3.
        div: float. Of the unfrozen phase. Defaults to 5.
        groups: int or list of layer names; see ``layer_groups``.
        upto, train_bn: see ``freeze``.
        x, y, **fit_kwargs: as in ``fit_one_cycle``.

    Returns:
        ``(history_frozen, history_unfrozen)``; the first is ``None``
        when ``freeze_epochs`` is 0.

    Raises:
        TypeError: arguments of the wrong type (``epochs=2.5``).
        ValueError: uncompiled model, ``epochs < 1``, ``freeze_epochs <
            0``, ``base_lr``, ``div`` not a finite number > 0, ``lr_mult
            < 1``, ``pct_start`` not in ``(0, 1)``, bad ``groups`` or
            ``upto``, ``x`` and ``y`` of different lengths. All are
            raised before the first phase trains.
    """
    _check_compiled(model, "fine_tune")
    epochs = _validate.integer(epochs, "epochs", low=1)
    freeze_epochs = _validate.integer(freeze_epochs, "freeze_epochs", low=0)
    base_lr = _validate.positive(base_lr, "base_lr", hint="Try 2e-3.")
    lr_mult = _validate.number(
        lr_mult, "lr_mult", low=1,
        hint="It is the last group's rate over the first's; try 100.")
    _check_one_cycle(base_lr, div, 1e5, pct_start)
    train_bn = _checks.flag(train_bn, "train_bn")
    _upto_index(model, upto)
    layer_groups(model, groups)
    template = _hyper.base_optimizers(model.optimizer)[-1]
    config = template.get_config()
    inputs = fit_inputs(data, x, y, "fine_tune")
    first = None
    if freeze_epochs:
        freeze(model, upto, train_bn=train_bn)
        _recompile(model, type(template).from_config(config))
        first = fit_one_cycle(model, epochs=freeze_epochs, lr_max=base_lr,
                              pct_start=0.99, **inputs, **fit_kwargs)
    base_lr /= 2
    unfreeze(model)
    _recompile(model, discriminative_optimizer(
        model, slice(base_lr / lr_mult, base_lr),
        type(template).from_config(config), groups))
    second = fit_one_cycle(model, epochs=epochs,
                           lr_max=slice(base_lr / lr_mult, base_lr),
                           pct_start=pct_start, div=div, **inputs,
                           **fit_kwargs)
    return first, second
