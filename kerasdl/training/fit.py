"""fastai's training helpers for any compiled ``keras.Model``.

``fit_one_cycle`` and ``fit_sgdr`` run ``model.fit`` with a schedule
callback; ``fine_tune`` trains the head of a frozen model, then every
layer with one rate per layer group (``kerasdl.training.groups``), as
fastai does.
"""

import keras

from kerasdl import _validate
from kerasdl.training import _checks
from kerasdl.training import _rates as _hyper
from kerasdl.training._data import fit_inputs
from kerasdl.training.groups import _frozen_phase_trains
from kerasdl.training.groups import _freeze_body_bn
from kerasdl.training.groups import _point
from kerasdl.training.groups import discriminative_optimizer
from kerasdl.training.groups import freeze
from kerasdl.training.groups import unfreeze
from kerasdl.training.param_scheduler import CosineRestarts
from kerasdl.training.param_scheduler import OneCycle
from kerasdl.training.param_scheduler import group_rates
from kerasdl.training.schedules import _check_one_cycle
from kerasdl.training.schedules import sgdr_epochs


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


def _recompile(model, optimizer):
    """Compiles ``model`` again as it was compiled, with ``optimizer``:
    the loss object itself (``model.loss``) and the other arguments from
    ``get_compile_config()``."""
    config = model.get_compile_config()
    args = {key: keras.saving.deserialize_keras_object(value)
            for key, value in config.items()
            if key not in ("optimizer", "loss")}
    model.compile(optimizer=optimizer, loss=model.loss, **args)


def _compatible(ref, got):
    """Keras accepts a batch one axis short of a trailing 1, or with one
    extra trailing 1; ``None`` matches any size."""
    if len(got) == len(ref) + 1 and got[-1] == 1:
        got = got[:-1]
    elif len(got) == len(ref) - 1 and ref[-1] == 1:
        ref = ref[:-1]
    return len(ref) == len(got) and all(
        r is None or r == g for r, g in zip(ref, got))


def _check_input_shape(model, x, who, label):
    """A single array input must fit the model's single input."""
    shape = getattr(x, "shape", None)
    if shape is None or isinstance(x, dict):
        return
    try:
        inputs = model.inputs
    except (AttributeError, ValueError):
        return
    if not inputs or len(inputs) != 1:
        return
    ref = tuple(inputs[0].shape)[1:]
    got = tuple(int(d) for d in tuple(shape)[1:])
    if not _compatible(ref, got):
        raise ValueError(
            f"{who}: {model.name!r} takes inputs of shape {(None, *ref)}; "
            f"`{label}` has shape {tuple(shape)}. Resize or reshape the "
            f"data (or build the model for this shape) before training.")


def _check_fit_kwargs(fit_kwargs, who):
    if "lr_max" in fit_kwargs:
        raise TypeError(f"{who} sets the rates from `base_lr`; remove "
                        f"lr_max={fit_kwargs['lr_max']!r}.")
    _checks.callback_list(fit_kwargs.get("callbacks"))
    _checks.momenta(fit_kwargs.get("moms", (0.95, 0.85, 0.95)))
    validation = fit_kwargs.get("validation_data")
    if isinstance(validation, tuple) and validation:
        return validation[0]
    return None


def fine_tune(model, data=None, epochs=1, base_lr=2e-3, freeze_epochs=1,
              lr_mult=100, pct_start=0.3, div=5.0, *, groups=3, upto=None,
              train_bn=False, x=None, y=None, **fit_kwargs):
    """fastai's ``fine_tune``: train the head, then everything.

    1. ``freeze`` the body and ``fit_one_cycle(freeze_epochs, base_lr,
       pct_start=0.99)``; 2. ``unfreeze`` and ``fit_one_cycle(epochs,
       slice(base_lr / 2 / lr_mult, base_lr / 2), pct_start, div)`` with
       one rate per layer group. The model is recompiled (same loss and
       metrics) before each phase, never during a fit. A backbone nested
       in the model (one layer of a ``Sequential`` or functional model) is
       frozen whole in phase 1 and split into groups in phase 2.

    BatchNormalization layers of the body stay frozen in both phases by
    default (``train_bn=False``): they run in inference mode with the
    statistics the backbone was pretrained with, as Keras' transfer-learning
    guide advises. ``train_bn=True`` is fastai's behaviour (they train, on
    the statistics of each batch, in both phases). On 800 dogscats photos
    with ImageNet EfficientNet-Lite0 (JAX, H200; bench/NOTES.md) frozen BN
    ended at 0.975-0.985 validation accuracy over three seeds, training BN
    at 0.96-0.97.

    Everything both phases need is checked before the first one trains:
    the numbers, ``upto`` and ``groups`` (built into phase 2's optimizer
    up front), that the frozen phase has weights to train, the data
    (lengths, finite values, the shape of array inputs) and the
    optimizer's rate (a float, not a schedule).

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
            Defaults to 3 (two groups of the body, then the head).
        upto: see ``freeze``.
        train_bn: bool. Let the body's BatchNormalization layers train in
            both phases (fastai); ``False`` keeps them frozen, in inference
            mode. Defaults to ``False``.
        x, y, **fit_kwargs: as in ``fit_one_cycle`` (``div_final`` and
            ``moms`` apply to both phases).

    Returns:
        ``(history_frozen, history_unfrozen)``; the first is ``None``
        when ``freeze_epochs`` is 0.

    Raises:
        TypeError: arguments of the wrong type (``epochs=2.5``), an
            optimizer with a learning-rate schedule, ``lr_max`` among
            ``fit_kwargs``.
        ValueError: uncompiled model, ``epochs < 1``, ``freeze_epochs <
            0``, ``base_lr``, ``div`` not a finite number > 0, ``lr_mult
            < 1``, ``pct_start`` not in ``(0, 1)``, bad ``groups`` or
            ``upto``, a frozen phase with nothing to train, ``x`` and
            ``y`` of different lengths, array inputs of the wrong shape.
            All are raised before the first phase trains.
    """
    _check_compiled(model, "fine_tune")
    epochs = _validate.integer(epochs, "epochs", low=1)
    freeze_epochs = _validate.integer(freeze_epochs, "freeze_epochs", low=0)
    base_lr = _validate.positive(base_lr, "base_lr", hint="Try 2e-3.")
    lr_mult = _validate.number(
        lr_mult, "lr_mult", low=1,
        hint="It is the last group's rate over the first's; try 100.")
    _check_one_cycle(base_lr, div, fit_kwargs.get("div_final", 1e5),
                     pct_start)
    train_bn = _checks.flag(train_bn, "train_bn")
    x_valid = _check_fit_kwargs(fit_kwargs, "fine_tune")
    point = _point(model, upto, "fine_tune")
    if freeze_epochs and not _frozen_phase_trains(model, point, train_bn):
        raise ValueError(
            f"fine_tune: freezing {model.name!r} up to upto={upto!r} leaves "
            f"no weights to train in the frozen phase. Give a later layer "
            f"as `upto`, or freeze_epochs=0.")
    _hyper.get_lrs(model.optimizer)  # a schedule cannot be assigned
    template = _hyper.base_optimizers(model.optimizer)[-1]
    config = template.get_config()
    unfrozen_lr = slice(base_lr / 2 / lr_mult, base_lr / 2)
    unfrozen_opt = discriminative_optimizer(
        model, unfrozen_lr, type(template).from_config(config), groups)
    inputs = fit_inputs(data, x, y, "fine_tune")
    _check_input_shape(model, inputs.get("x"), "fine_tune",
                       "data" if data is not None else "x")
    _check_input_shape(model, x_valid, "fine_tune", "validation_data[0]")
    first = None
    if freeze_epochs:
        freeze(model, upto, train_bn=train_bn)
        _recompile(model, type(template).from_config(config))
        first = fit_one_cycle(model, epochs=freeze_epochs, lr_max=base_lr,
                              pct_start=0.99, **inputs, **fit_kwargs)
    unfreeze(model)
    if not train_bn:
        _freeze_body_bn(model, point)
    _recompile(model, unfrozen_opt)
    second = fit_one_cycle(model, epochs=epochs, lr_max=unfrozen_lr,
                           pct_start=pct_start, div=div, **inputs,
                           **fit_kwargs)
    return first, second
