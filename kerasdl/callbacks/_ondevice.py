"""Learning rate and momentum computed inside the compiled train step.

Assigning the rate from Python before every step costs a round trip to
the host per step (under JAX it also puts the whole model state back on
the variables), which is as long as a whole step of a small model on a
GPU. ``StepControl`` instead makes every base optimizer compute its rate
(and momentum) at the start of each ``apply``, from a control vector on
the device: ``[steps done, total steps, peak rate, *rule parameters]``.

While installed, the vector is an optimizer variable, so it is part of
the compiled step's state; ``uninstall`` untracks it again, so the
optimizer saves and loads exactly as before. The train function traced
with the hook is kept on the model and reused by the next install of the
same kind of rule on the same optimizer, so repeated ``lr_find`` and
``fit_one_cycle`` calls compile once; the model's own train function is
put back afterwards, and fits without a schedule never run the hook.
"""

import warnings

import keras
import numpy as np
from keras import ops

from kerasdl import _backend
from kerasdl.callbacks._hyper import base_optimizers
from kerasdl.callbacks._hyper import get_lrs

SIZE = 16  # [count, total, top, params...]
_STEP = np.eye(SIZE, dtype="float32")[0]
_MOMENTUM_ATTRS = ("beta_1", "momentum")


class Rule:
    """A schedule as the device computes it.

    ``key`` names the traced program: rules with equal keys differ only
    in ``params`` (at most ``SIZE - 3`` floats), which are read on the
    device, so they share one compiled step. ``lr`` and ``momentum`` get
    scalar tensors; ``host_lr`` / ``host_momentum`` give the same values
    as Python floats for the record kept on the callback.
    """

    key = None
    params = ()
    cycles_momentum = False

    def lr(self, step, total, top, p):
        raise NotImplementedError

    def momentum(self, step, total, p):
        return None

    def host_lr(self, step, total, top):
        raise NotImplementedError

    def host_momentum(self, step, total):
        return None


class _MomentumVariable(keras.Variable):
    """Stands in for SGD's ``momentum`` / Adam's ``beta_1`` while the step
    is traced. SGD's Python-side test ``momentum != 0`` (which decides
    whether it keeps a velocity) reads it as non-zero; it is only used in
    place of a non-zero momentum."""

    def __eq__(self, other):
        if isinstance(other, (int, float)) and other == 0:
            return False
        return super().__eq__(other)

    def __ne__(self, other):
        if isinstance(other, (int, float)) and other == 0:
            return True
        return super().__ne__(other)

    __hash__ = keras.Variable.__hash__


def _momentum_as_number():
    """Under torch the step runs eagerly and its fused updates need the
    momentum as a Python number; elsewhere it is a variable read while
    the step is traced."""
    return keras.backend.backend() == "torch"


def _replicated(model, value, name, cls=keras.Variable):
    """A float32 variable the step assigns in every replica: created where
    the model's variables are (mirrored under a ``tf.distribute``
    strategy), and taken from the first replica when several assign it
    (they compute the same value)."""
    with _backend.variable_scope(model):
        return cls(value, dtype="float32", trainable=False, name=name,
                   aggregation="only_first_replica")


def _own(obj, name, value):
    """Sets an attribute without Keras' automatic variable tracking."""
    object.__setattr__(obj, name, value)


def _drop(obj, name):
    if name in obj.__dict__:
        object.__delattr__(obj, name)


def _tracking(opt, variable, on):
    locked = opt._tracker.locked
    opt._tracker.unlock()
    try:
        if on:
            opt._tracker.add_to_store("variables", variable)
        else:
            opt._tracker.untrack(variable)
    finally:
        if locked:
            opt._tracker.lock()


def momentum_attributes(optimizer, who):
    """``{id(base optimizer): attribute}`` for those that have a momentum
    to cycle; one warning names those that have none."""
    found, missing = {}, []
    for opt in base_optimizers(optimizer):
        attr = next((a for a in _MOMENTUM_ATTRS if hasattr(opt, a)), None)
        value = getattr(opt, attr, None) if attr else None
        if attr is None or (attr == "momentum" and not value):
            missing.append(f"{opt.name} ({type(opt).__name__})")
        else:
            found[id(opt)] = attr
    if missing:
        warnings.warn(
            f"{who}: optimizer {', '.join(missing)} has neither `beta_1` "
            f"nor a non-zero SGD `momentum`; momentum is not cycled. Use "
            f"Adam-family or SGD(momentum=0.9) to cycle it.", stacklevel=4)
    return found


class StepControl:
    """Installs a ``Rule`` on every base optimizer of a compiled model.

    Args:
        model: the compiled model.
        rule: a ``Rule``.
        momentum: dict from ``momentum_attributes`` (cycled when the rule
            cycles momentum), or ``None``.
        batch_loss: bool. Make the ``loss`` in the step logs that batch's
            own loss instead of the epoch's running mean.
    """

    def __init__(self, model, rule, momentum=None, batch_loss=False):
        self.model, self.rule = model, rule
        self.momentum = (momentum or {}) if rule.cycles_momentum else {}
        self.batch_loss = batch_loss
        self.opts = base_optimizers(model.optimizer)
        self.installed = False
        self._plain = None

    def install(self, tops, total):
        """Starts the rule at step 0 with peak rates ``tops`` (one per
        base optimizer) over ``total`` steps."""
        model = self.model
        self._rates = get_lrs(model.optimizer)  # put back by uninstall
        if not model.optimizer.built:
            model.optimizer.build(model.trainable_variables)
        params = [float(v) for v in self.rule.params]
        if len(params) > SIZE - 3:
            raise ValueError(f"A rule has at most {SIZE - 3} parameters.")
        for opt, top in zip(self.opts, tops):
            ctl = opt.__dict__.get("_kerasdl_controls")
            if ctl is None:
                ctl = _replicated(model, np.zeros(SIZE, "float32"),
                                  "kerasdl_controls")
                _own(opt, "_kerasdl_controls", ctl)
            values = np.zeros(SIZE, "float32")
            values[1:3 + len(params)] = [total, top, *params]
            ctl.assign(values)
            _tracking(opt, ctl, True)
            attr = self.momentum.get(id(opt))
            if (attr and not _momentum_as_number()
                    and "_kerasdl_momentum" not in opt.__dict__):
                _own(opt, "_kerasdl_momentum", _replicated(
                    model, float(getattr(opt, attr)), attr,
                    cls=_MomentumVariable))
            _own(opt, "apply", self._hooked_apply(opt, ctl, attr))
        if self.batch_loss:
            tracker = model._loss_tracker
            _own(tracker, "update_state", _per_batch(tracker))
        self._plain = model.train_function
        key = (self.rule.key, self.batch_loss, bool(self.momentum))
        # Valid until the next compile (a new optimizer or loss tracker).
        owner = (model.optimizer, model._loss_tracker)
        cache = model.__dict__.get("_kerasdl_train_fns")
        if cache is None or any(a is not b for a, b in zip(cache[0], owner)):
            cache = (owner, {})
            _own(model, "_kerasdl_train_fns", cache)
        fn = cache[1].get(key)
        if fn is None:
            fn = cache[1][key] = _new_train_function(model)
        model.train_function = fn
        self.installed = True

    def _hooked_apply(self, opt, ctl, attr):
        original = type(opt).apply.__get__(opt)
        rule = self.rule
        eager_floats = _momentum_as_number()

        def apply(grads, trainable_variables=None):
            # Everything is computed from one read of the vector before it
            # is advanced (under torch a read can be a view of it).
            c = ops.convert_to_tensor(ctl)
            step, total, top, p = c[0], c[1], c[2], c[3:]
            lr = rule.lr(step, total, top, p)
            value = rule.momentum(step, total, p) if attr else None
            if eager_floats and attr:  # torch's fused updates take a number
                value = float(ops.convert_to_numpy(value))
            lr_var = opt._learning_rate
            lr_var.assign(ops.cast(lr, lr_var.dtype))
            ctl.assign(c + _STEP)
            if not attr:
                return original(grads, trainable_variables)
            if eager_floats:
                mom = value
            else:
                mom = opt._kerasdl_momentum
                mom.assign(ops.cast(value, mom.dtype))
            saved = getattr(opt, attr)
            _own(opt, attr, mom)  # read by update_step while traced
            try:
                return original(grads, trainable_variables)
            finally:
                _own(opt, attr, saved)

        return apply

    def steps_done(self):
        """Steps run since ``install`` (the most over the groups)."""
        return max(int(np.asarray(o._kerasdl_controls.numpy())[0])
                   for o in self.opts)

    def uninstall(self):
        """Takes the hook out; the optimizer is as it was before
        ``install``, its rates included, so a later plain fit trains at
        the rate it was compiled with. Safe to call twice."""
        if not self.installed:
            return
        model = self.model
        for opt, rate in zip(self.opts, self._rates):
            opt._learning_rate.assign(rate)
            _tracking(opt, opt._kerasdl_controls, False)
            _drop(opt, "apply")
        if self.batch_loss:
            _drop(model._loss_tracker, "update_state")
        model.train_function = self._plain
        self.installed = False


def _new_train_function(model):
    """A train function traced afresh. JAX reuses the trace of a function
    it has seen with the same argument shapes, whatever Python state the
    trace read, so the step is wrapped in a new function object first."""
    model.train_function = None
    if hasattr(model, "_record_training_state_sharding_spec"):
        model._record_training_state_sharding_spec()  # JAX
    step = type(model).train_step
    _own(model, "train_step", lambda *args, **kw: step(model, *args, **kw))
    try:
        model.make_train_function()
    finally:
        _drop(model, "train_step")
    return model.train_function


def _per_batch(tracker):
    original = type(tracker).update_state.__get__(tracker)

    def update_state(*args, **kwargs):
        for var in tracker.variables:
            var.assign(ops.zeros(var.shape, var.dtype))
        return original(*args, **kwargs)

    return update_state
