"""fastai's training helpers for any compiled ``keras.Model``.

``fit_one_cycle`` and ``fit_sgdr`` run ``model.fit`` with a schedule
callback; ``freeze``/``unfreeze`` set ``trainable`` on the body (before
the head, see ``body_and_head``); ``layer_groups`` splits the layers with
weights into groups, the head last; ``discriminative_optimizer`` gives
each group its own rate through ``keras.optimizers.MultiOptimizer``;
``fine_tune`` chains them as fastai does. All of them look inside nested
models: a backbone that is one layer of a ``Sequential`` or functional
model is frozen whole and its own layers are grouped.
"""

import numpy as np

import keras

from kerasdl import _layer_tree
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


def _check_model(model, who):
    if not isinstance(model, keras.Model):
        raise TypeError(f"{who}: expected a keras.Model; received "
                        f"{type(model).__name__}.")


def _point(model, upto, who="freeze"):
    """``upto`` as an index into ``_layer_tree.leaves(model)``: where the
    trainable part starts."""
    tree_leaves = _layer_tree.leaves(model)
    if upto is None:
        return _layer_tree.point_of(tree_leaves,
                                    _layer_tree.head_start(model))
    layers = model.layers
    if isinstance(upto, str):
        layer = _layer_tree.find(model, upto)
        if layer is None:
            raise ValueError(
                f"{who}: no layer named {upto!r} in {model.name!r}; layers "
                f"are {_layer_tree.names_hint([x.name for x in layers])}, "
                f"and inside nested models "
                f"{_layer_tree.names_hint([x.name for x in tree_leaves])}.")
        point = _layer_tree.point_of(tree_leaves, layer)
        if point is None:
            raise ValueError(f"{who}: {upto!r} is a model without layers; "
                             f"name a layer of {model.name!r} instead.")
        return point
    upto = _validate.integer(
        upto, "upto", low=0, high=len(layers),
        hint=f"Give the index or name of the first trainable layer of "
             f"{model.name!r}.")
    return sum(1 for leaf in tree_leaves
               if any(_layer_tree.within(leaf, x) for x in layers[:upto]))


def body_and_head(model):
    """The body and the head of a model, as ``freeze`` splits them.

    The head starts at the first top-level layer named ``"head"`` or
    ``"head_..."`` (``vision_model`` names its head layers so, and the
    names survive saving); without one, at the last top-level layer with
    weights, looked into when that layer is a nested model. The body is
    everything before. A backbone nested in a ``Sequential`` or a
    functional model is one layer of the body. Input layers are left out.

    Example:

    >>> backbone = keras.Sequential([keras.Input((4,)),
    ...                              keras.layers.Dense(3, name="conv")],
    ...                             name="backbone")
    >>> model = keras.Sequential([backbone, keras.layers.Dense(2)])
    >>> body, head = body_and_head(model)
    >>> [layer.name for layer in body], len(head)
    (['backbone'], 1)

    Args:
        model: a ``keras.Model``.

    Returns:
        ``(body, head)``: two lists of layers, the largest ones wholly on
        each side (the layers of a nested model the split falls inside).

    Raises:
        TypeError: ``model`` is not a ``keras.Model``.
        ValueError: the model has no layer with weights.
    """
    _check_model(model, "body_and_head")
    body, head = _layer_tree.split(model, _point(model, None))
    return ([layer for _, layer in body if not _is_input(layer)],
            [layer for _, layer in head if not _is_input(layer)])


def _is_input(layer):
    return isinstance(layer, keras.layers.InputLayer)


def freeze(model, upto=None, *, train_bn=True):
    """Freezes the body: every layer before ``upto`` (fastai's ``freeze``).

    Works through nested models: a backbone that is one layer of a
    ``Sequential`` or functional model is frozen whole (all its layers),
    and ``upto`` may name a layer inside it. BatchNormalization layers of
    the body stay trainable when ``train_bn`` (as in fastai), so they keep
    normalising with the statistics of the batch and learn their scale
    and offset; with ``train_bn=False`` they are frozen too, and a frozen
    BatchNormalization runs in inference mode (its moving statistics,
    which stay as they are). Like every change of ``trainable`` in Keras,
    it takes effect at the next ``model.compile``.

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
        upto: int, str or None. The first layer left trainable: an index
            into ``model.layers``, or a name (a layer inside a nested model
            by its own name when no other layer has it, else qualified:
            ``"backbone/block5_conv1"``). Defaults to the head (see
            ``body_and_head``).
        train_bn: bool. Keep ``BatchNormalization`` layers trainable.
            Defaults to ``True``.

    Returns:
        The names of the frozen layers (whole nested models by their name,
        layers inside a partly frozen one qualified), input layers left
        out.

    Raises:
        TypeError: ``upto`` neither an int nor a str, ``train_bn`` not a
            bool.
        ValueError: ``upto`` names no layer or is out of range; the model
            has no layer with weights.
    """
    _check_model(model, "freeze")
    train_bn = _checks.flag(train_bn, "train_bn")
    body, _ = _layer_tree.split(model, _point(model, upto))
    unfreeze(model)
    for _, layer in body:
        layer.trainable = False
        if train_bn:
            for sub in [layer, *_sublayers(layer)]:
                if isinstance(sub, keras.layers.BatchNormalization):
                    sub.trainable = True
    return [name for name, layer in body if not _is_input(layer)]


def unfreeze(model):
    """Makes every layer trainable again (effective at the next compile).

    Nested models and their layers included.

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


def _freeze_body_bn(model, point):
    """Freezes the BatchNormalization layers before ``point`` (inference
    mode, weights fixed); the rest of the model is left as it is."""
    body, _ = _layer_tree.split(model, point)
    for _, layer in body:
        for sub in [layer, *_sublayers(layer)]:
            if isinstance(sub, keras.layers.BatchNormalization):
                sub.trainable = False


def _weighted(model):
    """``[(position among all leaves, leaf)]`` of the leaves with weights."""
    return [(i, leaf) for i, leaf in enumerate(_layer_tree.leaves(model))
            if leaf.layer.weights]


def layer_groups(model, groups=3):
    """Splits the layers with weights into contiguous groups, the head last.

    The layers are collected depth-first through nested models, so a
    backbone that is one layer of a ``Sequential`` or functional model
    gives its own layers. With a number of groups, the head (see
    ``body_and_head``) is the last group and the body's layers with
    weights are split evenly (by count) into the others, as fastai splits
    a vision model: ``groups=3`` gives two groups of the body and the head.

    Example:

    >>> model = keras.Sequential([keras.Input((3,))] + [
    ...     keras.layers.Dense(3, name=f"d{i}") for i in range(5)])
    >>> [[layer.name for layer in g] for g in layer_groups(model, 3)]
    [['d0', 'd1'], ['d2', 'd3'], ['d4']]

    Args:
        model: a ``keras.Model``.
        groups: int or list of str. A number of groups (from 1, all
            layers in one group, to the body's layers with weights plus
            one); or names, each the layer that starts a new group after
            the first (a nested model's name starts it at its first layer
            with weights; a layer inside one may be named as in
            ``freeze``). Defaults to 3.

    Returns:
        A list of lists of layers (never models), first (input side) to
        last.

    Raises:
        TypeError: ``groups`` neither an int nor a list of names (a
            single name must be in a list).
        ValueError: a count out of range, unknown, repeated or ambiguous
            names, a named layer without weights.
    """
    _check_model(model, "layer_groups")
    weighted = _weighted(model)
    if not weighted:
        raise ValueError(f"Model {model.name!r} has no layer with weights "
                         f"to group.")
    if isinstance(groups, (int, np.integer)) and not isinstance(groups,
                                                                bool):
        point = _point(model, None)
        body = [leaf.layer for i, leaf in weighted if i < point]
        head = [leaf.layer for i, leaf in weighted if i >= point]
        groups = _validate.integer(
            groups, "groups", low=1, high=len(body) + 1,
            hint=f"{model.name!r} has {len(weighted)} layers with weights "
                 f"(nested models' layers counted): {len(body)} in the "
                 f"body and {len(head)} in the head, which is the last "
                 f"group.")
        if groups == 1:
            return [body + head]
        bounds = np.array_split(np.arange(len(body)), groups - 1)
        return [[body[i] for i in b] for b in bounds] + [head]
    groups = _validate.strings(
        groups, "groups",
        hint="Pass a number of groups or a list of layer names.")
    if len(set(groups)) != len(groups):
        raise ValueError(f"`groups` must name each layer once. Received: "
                         f"groups={groups!r}.")
    weighted = [leaf for _, leaf in weighted]
    names = [leaf.name for leaf in weighted]
    starts, missing = [], []
    for name in groups:
        layer = _layer_tree.find(model, name)
        start = None if layer is None else _layer_tree.point_of(weighted,
                                                                layer)
        if start is None:
            missing.append(name)
        else:
            starts.append(start)
    if missing:
        raise ValueError(f"Unknown group start layer(s) {missing}, or "
                         f"without weights; layers with weights are "
                         f"{_layer_tree.names_hint(names)}.")
    starts = [0] + sorted(set(starts)) + [len(weighted)]
    return [[leaf.layer for leaf in weighted[a:b]]
            for a, b in zip(starts, starts[1:]) if b > a]


def discriminative_optimizer(model, lr, optimizer=None, groups=3):
    """One optimizer per layer group, each with its own learning rate.

    Built on ``keras.optimizers.MultiOptimizer``, which picks a variable's
    optimizer by its path; ``lr=slice(lo, hi)`` spreads the rates
    geometrically from the first group to the last. Every weight of every
    group is mapped (nested models' layers included); any weight outside
    the groups goes to the last group's optimizer.

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
            ``groups``, two different weights of different groups with
            the same path (rename one of their layers).
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
    owner = {}  # path -> (variable, group); a shared layer stays in the first
    for i, (opt, group) in enumerate(zip(opts, grouped)):
        for layer in group:
            for var in layer.weights:
                seen = owner.get(var.path)
                if seen is None:
                    owner[var.path] = (var, i)
                    mapping[var.path] = opt
                elif seen[0] is not var and seen[1] != i:
                    raise ValueError(
                        f"discriminative_optimizer: two different weights "
                        f"of {model.name!r} have the path {var.path!r}, "
                        f"one in group {seen[1]} and one in group {i}; the "
                        f"optimizer tells them apart by path only. Give "
                        f"their layers (or nested models) distinct names "
                        f"and build the model again.")
    return keras.optimizers.MultiOptimizer(mapping)


def _recompile(model, optimizer):
    config = dict(model._compile_config.config)
    config["optimizer"] = optimizer
    model.compile(**config)


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


def _frozen_phase_trains(model, point, train_bn):
    """Whether freezing before leaf ``point`` leaves weights to train."""
    tree_leaves = _layer_tree.leaves(model)
    if any(leaf.layer.weights for leaf in tree_leaves[point:]):
        return True
    if not train_bn:
        return False
    return any(isinstance(sub, keras.layers.BatchNormalization)
               for leaf in tree_leaves[:point]
               for sub in [leaf.layer, *_sublayers(leaf.layer)])


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
