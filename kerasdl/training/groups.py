"""Freezing, layer groups and one learning rate per group.

``freeze``/``unfreeze`` set ``trainable`` on the body (before the head,
see ``body_and_head``); ``layer_groups`` splits the layers with weights
into groups, the head last; ``discriminative_optimizer`` gives each group
its own rate through ``keras.optimizers.MultiOptimizer`` (Keras 3.15 and
later). All of them look inside nested models: a backbone that is one
layer of a ``Sequential`` or functional model is frozen whole and its own
layers are grouped.
"""

import keras
import numpy as np

from kerasdl import _layer_tree
from kerasdl import _validate
from kerasdl.training import _checks
from kerasdl.training import _rates as _hyper
from kerasdl.training import momentum as _momentum
from kerasdl.training._rates import keras_feature as _rates_needing_keras
from kerasdl.training.param_scheduler import spread_lr


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
        RuntimeError: a Keras older than 3.15.0 (no ``MultiOptimizer``).
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
    multi = _rates_needing_keras("MultiOptimizer")
    grouped = layer_groups(model, groups)
    rates = spread_lr(lr, len(grouped))
    config = optimizer.get_config()
    cls = _momentum.scheduled_class(optimizer) or type(optimizer)
    opts = []
    for i, rate in enumerate(rates):
        opts.append(cls.from_config(
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
    return multi(mapping)


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
