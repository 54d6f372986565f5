"""Learning rate and momentum computed inside the compiled train step,
through public Keras API only.

Assigning the rate from Python before every step costs a round trip to
the host per step (under JAX it also puts the whole model state back on
the variables), which is as long as a whole step of a small model on a
GPU. Instead, for the length of a fit, ``StepControl`` puts a
``StepSchedule`` in ``model.optimizer``: an optimizer that wraps the
model's own and owns one variable (``add_variable``), a control table on
the device with one row per base optimizer, ``[steps done, total steps,
peak rate, *rule parameters]``. At every step its ``apply`` computes each
group's rate (and momentum) from that row with ``keras.ops``, assigns
them to the base optimizer's ``learning_rate`` variable (and the
``momentum_value`` of the classes of ``momentum``), advances the row and
lets the wrapped optimizer apply the gradients.

To cycle the momentum of a plain SGD or Adam-family optimizer, the
wrapper holds a copy of it of the matching ``momentum`` class: its state
is copied in before the fit and back after it, so the model's optimizer
continues from where the schedule left it.

The wrapper, its copy and the train function traced with it are kept on
the model's optimizer and reused by the next fit with the same kind of
rule, so repeated ``lr_find`` and ``fit_one_cycle`` calls compile once;
afterwards the model gets back its own optimizer and train function, and
fits without a schedule never run the wrapper. A rule's parameters live
in the control table, so fits that differ only in them share one
program. Kinds of rule differ in the length of the control rows (one
more per kind met by that optimizer), so a backend that caches traces by
the shapes of the training state (JAX) never reuses one kind's program
for another.
"""

import warnings

import keras
import numpy as np
from keras import ops

from kerasdl import _backend
from kerasdl.training import momentum as _momentum
from kerasdl.training._rates import base_optimizers
from kerasdl.training._rates import get_lrs
from kerasdl.training._rates import set_lrs
from kerasdl.training._wrapping import WrappingOptimizer

SIZE = 16  # [count, total, top, params...]
_MOMENTUM_ATTRS = ("beta_1", "momentum")


class Rule:
    """A schedule, written once for the device and the host.

    ``key`` names the traced program: rules with equal keys differ only
    in ``params`` (at most ``SIZE - 3`` floats), which are read on the
    device, so they share one compiled step. ``lr`` and ``momentum`` take
    the array namespace ``xp``: ``keras.ops`` in the step, ``numpy`` for
    the record kept on the callback (``host_lr``, ``host_momentum``).
    """

    key = None
    params = ()
    cycles_momentum = False

    def lr(self, step, total, top, p, xp):
        raise NotImplementedError

    def momentum(self, step, total, p, xp):
        return None

    def _host_params(self):
        return np.asarray([float(v) for v in self.params], "float64")

    def host_lr(self, step, total, top):
        return self.host_lrs([step], total, top)[0]

    def host_momentum(self, step, total):
        values = self.host_momenta([step], total)
        return None if values is None else values[0]

    def host_lrs(self, steps, total, top):
        """The rates of ``steps`` as a list of floats: one numpy pass
        over all of them (a fit's record costs no Python loop per step).
        """
        steps = np.asarray(steps, "float64")
        values = self.lr(steps, np.float64(total), top,
                         self._host_params(), np)
        return np.broadcast_to(values, steps.shape).tolist()

    def host_momenta(self, steps, total):
        """The momenta of ``steps`` (list of floats), or ``None``."""
        steps = np.asarray(steps, "float64")
        values = self.momentum(steps, np.float64(total),
                               self._host_params(), np)
        if values is None:
            return None
        return np.broadcast_to(values, steps.shape).tolist()


@keras.saving.register_keras_serializable(package="kerasdl")
class StepSchedule(WrappingOptimizer):
    """Wraps an optimizer and sets its rates (and momentum) from a rule at
    every step, on the device.

    Only ``StepControl`` puts it in a model, for the length of a fit; a
    model saved during that fit holds one, which loads as a plain
    pass-through wrapper.

    Args:
        optimizer: the ``keras.optimizers.Optimizer`` to wrap.
        groups: int. Rows of the control table (base optimizers).
        size: int. Length of a row.
        name: str or None.
    """

    def __init__(self, optimizer, groups=1, size=SIZE, name=None):
        super().__init__(learning_rate=0.0, name=name or "step_schedule")
        self.inner_optimizer = optimizer
        self.groups, self.size = int(groups), int(size)
        self.rule = None
        self.momentum_groups = ()
        self.control = None

    def build(self, var_list):
        if self.built:
            return
        if not self.inner_optimizer.built:
            self.inner_optimizer.build(var_list)
        self.control = self.add_variable(
            (self.groups, self.size), "zeros", "float32",
            aggregation="only_first_replica", name="step_control")
        super().build(var_list)

    def __getattr__(self, name):
        # Reached only for names the wrapper lacks: callbacks written for
        # the model's optimizer (reading its slots or hyperparameters)
        # see the wrapped one.
        inner = self.__dict__.get("inner_optimizer")
        if inner is None or name.startswith("__"):
            raise AttributeError(name)
        return getattr(inner, name)

    def scale_loss(self, loss):
        return self.inner_optimizer.scale_loss(loss)

    def apply(self, grads, trainable_variables=None):
        if trainable_variables is None:
            trainable_variables = self.model_variables()
        if not self.built:
            self.build(trainable_variables)
        rule = self.rule
        if rule is not None:
            # One read of the table before it is advanced (under torch a
            # read can be a view of it).
            table = ops.convert_to_tensor(self.control)
            opts = base_optimizers(self.inner_optimizer)
            for g, opt in enumerate(opts):
                row = table[g]
                step, total, top, p = row[0], row[1], row[2], row[3:]
                rate = opt.learning_rate
                rate.assign(ops.cast(rule.lr(step, total, top, p, ops),
                                     rate.dtype))
                if g in self.momentum_groups:
                    opt.momentum_value.assign(ops.cast(
                        rule.momentum(step, total, p, ops), "float32"))
            self.control.assign(table + _step_row(self.size))
        return self.inner_optimizer.apply(grads, trainable_variables)

    def get_config(self):
        return {"optimizer": keras.saving.serialize_keras_object(
            self.inner_optimizer), "groups": self.groups, "size": self.size,
            "name": self.name}

    @classmethod
    def from_config(cls, config, custom_objects=None):
        inner = keras.saving.deserialize_keras_object(
            config["optimizer"], custom_objects=custom_objects)
        return cls(inner, groups=config.get("groups", 1),
                   size=config.get("size", SIZE), name=config.get("name"))


def _step_row(size):
    return np.eye(size, dtype="float32")[0]


def momentum_attributes(optimizer, who):
    """``{id(base optimizer): attribute}`` of those with a momentum to
    cycle; one warning names those that have none."""
    found, missing = {}, []
    for opt in base_optimizers(optimizer):
        attr = next((a for a in _MOMENTUM_ATTRS if hasattr(opt, a)), None)
        value = getattr(opt, attr, None) if attr else None
        cyclable = (_momentum.has_momentum_variable(opt)
                    or _momentum.scheduled_class(opt) is not None)
        if attr is None or (attr == "momentum" and not value) \
                or not cyclable:
            missing.append(f"{opt.name} ({type(opt).__name__})")
        else:
            found[id(opt)] = attr
    if missing:
        warnings.warn(
            f"{who}: optimizer {', '.join(missing)} has neither `beta_1` "
            f"nor a non-zero SGD `momentum` that a schedule can set; "
            f"momentum is not cycled. Use SGD(momentum=0.9) or an "
            f"Adam-family optimizer (Adam, AdamW, Nadam, Adamax, Lion, "
            f"Lamb) to cycle it.", stacklevel=4)
    return found


class _Cache:
    """What the schedules of one optimizer keep between fits."""

    def __init__(self, owner):
        self.owner = owner
        self.kinds = []
        self.entries = {}


class _Entry:
    def __init__(self, wrapper, pairs):
        self.wrapper, self.pairs = wrapper, pairs
        self.train_function = None


def _owner(model):
    """What a compile replaces: a new compile (even with the same
    optimizer) needs a new trace."""
    metrics = model.metrics
    return metrics[0] if metrics else None


def _cache(model):
    opt = model.optimizer
    owner = _owner(model)
    cache = getattr(opt, "kerasdl_step_cache", None)
    if cache is None or cache.owner is not owner:
        cache = _Cache(owner)
        opt.kerasdl_step_cache = cache
    return cache


def _copy_of(opt, cycled):
    """A copy of ``opt`` for a fit that cycles the momentum of the base
    optimizers whose ids are in ``cycled``, and the pairs of variables
    (original, copy) to carry the state across; ``None`` when ``opt``
    has no base optimizer needing it."""
    if isinstance(opt, keras.optimizers.LossScaleOptimizer):
        inner = _copy_of(opt.inner_optimizer, cycled)
        if inner is None:
            return None
        config = opt.get_config()
        config.pop("inner_optimizer")
        copy = keras.optimizers.LossScaleOptimizer(inner[0], **config)
        return copy, [(opt, copy), *inner[1]]
    if hasattr(opt, "inner_optimizer") and hasattr(opt, "from_config") \
            and type(opt).__module__.startswith("kerasdl."):
        inner = _copy_of(opt.inner_optimizer, cycled)
        if inner is None:
            return None
        copy = type(opt)(inner[0], name=opt.name)
        return copy, [(opt, copy), *inner[1]]
    cls = _momentum.scheduled_class(opt)
    if id(opt) not in cycled or cls is None:
        return None
    copy = cls.from_config(opt.get_config())
    return copy, [(opt, copy)]


def _variable_pairs(levels):
    """(original variable, copy's variable) of every level of a copy made
    by ``_copy_of``: each level's own variables, in order (the copy's
    ``momentum_value``, created last, has no original)."""
    pairs = []
    for src, dst in levels:
        inner_src = getattr(src, "inner_optimizer", None)
        inner_dst = getattr(dst, "inner_optimizer", None)
        own_src = _own_variables(src, inner_src)
        own_dst = _own_variables(dst, inner_dst)
        pairs.extend(zip(own_src, own_dst))
    return pairs


def _copy_state(pairs):
    """Gives each ``(source, destination)`` variable pair's destination
    the source's value (one compiled copy of them all under JAX)."""
    values = _backend.copies([src.value for src, _ in pairs])
    for (_, dst), value in zip(pairs, values):
        dst.assign(value)


def _own_variables(opt, inner):
    if inner is None:
        return list(opt.variables)
    others = {id(v) for v in inner.variables}
    return [v for v in opt.variables if id(v) not in others]


class StepControl:
    """Puts a ``Rule`` in the train step of a compiled model.

    Args:
        model: the compiled model.
        rule: a ``Rule``.
        momentum: dict from ``momentum_attributes`` (cycled when the rule
            cycles momentum), or ``None``.
    """

    def __init__(self, model, rule, momentum=None):
        self.model, self.rule = model, rule
        self.momentum = (momentum or {}) if rule.cycles_momentum else {}
        self.opts = base_optimizers(model.optimizer)
        self.installed = False
        self._plain = None
        self._original = None
        self._entry = None

    def install(self, tops, total):
        """Starts the rule at step 0 with peak rates ``tops`` (one per
        base optimizer) over ``total`` steps."""
        model = self.model
        original = model.optimizer
        if not original.built:
            original.build(model.trainable_variables)
        self._rates = get_lrs(original)  # put back by uninstall
        params = [float(v) for v in self.rule.params]
        if len(params) > SIZE - 3:
            raise ValueError(f"A rule has at most {SIZE - 3} parameters.")
        entry = self._entry_for(original)
        wrapper = entry.wrapper
        _copy_state(entry.pairs)
        table = np.zeros(tuple(wrapper.control.shape), "float32")
        for g, top in enumerate(tops):
            table[g, 1:3 + len(params)] = [total, top, *params]
        wrapper.control.assign(table)
        wrapper.rule = self.rule
        self._plain = model.train_function
        self._original = original
        model.optimizer = wrapper
        if entry.train_function is None:
            model.make_train_function(force=True)
            entry.train_function = model.train_function
        model.train_function = entry.train_function
        self._entry = entry
        self.installed = True

    def _entry_for(self, original):
        model = self.model
        cycled = set(self.momentum)
        cache = _cache(model)
        kind = (self.rule.key, tuple(sorted(
            i for i, o in enumerate(self.opts) if id(o) in cycled)))
        entry = cache.entries.get(kind)
        if entry is not None:
            return entry
        copy = _copy_of(original, cycled)
        inner, levels = (original, []) if copy is None else copy
        cache.kinds.append(kind)
        with _backend.variable_scope(model):
            wrapper = StepSchedule(inner, groups=len(self.opts),
                                   size=SIZE + len(cache.kinds) - 1)
            wrapper.build(model.trainable_variables)
        bases = base_optimizers(inner)
        wrapper.momentum_groups = tuple(
            g for g, (o, b) in enumerate(zip(self.opts, bases))
            if id(o) in cycled and _momentum.has_momentum_variable(b))
        entry = cache.entries[kind] = _Entry(wrapper,
                                             _variable_pairs(levels))
        return entry

    def live_optimizers(self):
        """The base optimizers training now (the copies, if any)."""
        if not self.installed:
            return self.opts
        return base_optimizers(self._entry.wrapper.inner_optimizer)

    def steps_done(self):
        """Steps run since ``install`` (the most over the groups)."""
        table = np.asarray(self._entry.wrapper.control.numpy())
        return int(table[:, 0].max())

    def uninstall(self):
        """Takes the wrapper out; the model's optimizer is as it was
        before ``install`` (its state carried on), its rates included, so
        a later plain fit trains at the rate it was compiled with. Safe
        to call twice."""
        if not self.installed:
            return
        model = self.model
        _copy_state([(dst, src) for src, dst in self._entry.pairs])
        self._entry.wrapper.rule = None
        model.optimizer = self._original
        set_lrs(self._original, self._rates)
        for opt in base_optimizers(self._original):
            if _momentum.has_momentum_variable(opt):
                opt.momentum_value.assign(
                    float(getattr(opt, opt.momentum_attribute)))
        model.train_function = self._plain
        self.installed = False
