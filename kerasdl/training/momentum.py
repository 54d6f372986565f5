"""Optimizers whose momentum a schedule can set at every step.

Keras' SGD and Adam-family optimizers read their momentum (``momentum``,
``beta_1``) as a Python number when the train step is traced, so a
schedule cannot change it inside a compiled step. The classes here are
the same optimizers with one more variable, ``momentum_value``, created
with ``add_variable`` at build time and read by the update while the step
runs; the attribute itself stays the configured number (it is what
``get_config`` saves). Until a schedule assigns the variable it holds that
number, so they train exactly as the Keras class does.

``OneCycle`` and ``fit_one_cycle`` use them for you: they train a copy of
a plain SGD or Adam-family optimizer of this kind and copy its state back
afterwards, and ``discriminative_optimizer`` builds its groups from them.
"""

import keras
from keras import ops


class _MomentumVariable:
    """Mixin: the momentum hyperparameter is read from ``momentum_value``
    while ``apply`` runs."""

    momentum_attribute = "beta_1"
    _reading_variable = False

    def build(self, var_list):
        if self.built:
            return
        super().build(var_list)
        value = float(getattr(self, self.momentum_attribute))
        self.momentum_value = self.add_variable(
            (), keras.initializers.Constant(value), "float32",
            aggregation="only_first_replica", name="momentum_value")

    def apply(self, grads, trainable_variables=None):
        self._reading_variable = True
        try:
            return super().apply(grads, trainable_variables)
        finally:
            self._reading_variable = False

    def _hyper(self, name):
        value = self.__dict__.get(name)
        if self._reading_variable and self.built:
            return self.momentum_value.value
        return value


class _Beta1(_MomentumVariable):
    @property
    def beta_1(self):
        return self._hyper("_beta_1")

    @beta_1.setter
    def beta_1(self, value):
        self.__dict__["_beta_1"] = value


@keras.saving.register_keras_serializable(package="kerasdl")
class ScheduledSGD(_MomentumVariable, keras.optimizers.SGD):
    """``keras.optimizers.SGD`` whose ``momentum`` a schedule can set.

    Example:

    >>> opt = ScheduledSGD(0.1, momentum=0.9)
    >>> opt.build([keras.Variable([1.0])])
    >>> round(float(opt.momentum_value.numpy()), 6), opt.momentum
    (0.9, 0.9)

    Args:
        As ``keras.optimizers.SGD``; ``momentum`` must be above 0 for a
        schedule to have a momentum to set.
    """

    momentum_attribute = "momentum"

    def build(self, var_list):
        if self.built:
            return
        super().build(var_list)
        # SGD keeps one velocity per variable, in the order of var_list.
        # The update is handed the variable; under TensorFlow its
        # tf.Variable, or under a tf.distribute strategy each replica's
        # copy of it: all are keys of that order.
        tf = keras.backend.backend() == "tensorflow"
        self._velocity_index = {}
        for i, variable in enumerate(var_list):
            for key in [variable] + (_tf_variables(variable) if tf else []):
                self._velocity_index[id(key)] = i

    def update_step(self, gradient, variable, learning_rate):
        if not self._reading_variable or not self.momentum:
            return super().update_step(gradient, variable, learning_rate)
        lr = ops.cast(learning_rate, variable.dtype)
        gradient = ops.cast(gradient, variable.dtype)
        m = self.momentums[self._velocity_index[id(variable)]]
        momentum = ops.cast(self.momentum_value.value, variable.dtype)
        velocity = ops.subtract(ops.multiply(m, momentum),
                                ops.multiply(gradient, lr))
        self.assign(m, velocity)
        if self.nesterov:
            self.assign_add(variable, ops.subtract(
                ops.multiply(velocity, momentum), ops.multiply(gradient, lr)))
        else:
            self.assign_add(variable, velocity)


def _tf_variables(variable):
    """The tf.Variable behind a Keras variable and, when it is mirrored
    by a tf.distribute strategy, every replica's copy."""
    value = variable.value
    strategy = getattr(value, "distribute_strategy", None)
    if strategy is None:
        return [value]
    return [value, *strategy.experimental_local_results(value)]


@keras.saving.register_keras_serializable(package="kerasdl")
class ScheduledAdam(_Beta1, keras.optimizers.Adam):
    """``keras.optimizers.Adam`` whose ``beta_1`` a schedule can set."""


@keras.saving.register_keras_serializable(package="kerasdl")
class ScheduledAdamW(_Beta1, keras.optimizers.AdamW):
    """``keras.optimizers.AdamW`` whose ``beta_1`` a schedule can set."""


@keras.saving.register_keras_serializable(package="kerasdl")
class ScheduledNadam(_Beta1, keras.optimizers.Nadam):
    """``keras.optimizers.Nadam`` whose ``beta_1`` a schedule can set."""


@keras.saving.register_keras_serializable(package="kerasdl")
class ScheduledAdamax(_Beta1, keras.optimizers.Adamax):
    """``keras.optimizers.Adamax`` whose ``beta_1`` a schedule can set."""


@keras.saving.register_keras_serializable(package="kerasdl")
class ScheduledLion(_Beta1, keras.optimizers.Lion):
    """``keras.optimizers.Lion`` whose ``beta_1`` a schedule can set."""


@keras.saving.register_keras_serializable(package="kerasdl")
class ScheduledLamb(_Beta1, keras.optimizers.Lamb):
    """``keras.optimizers.Lamb`` whose ``beta_1`` a schedule can set."""


SCHEDULED = {
    keras.optimizers.SGD: ScheduledSGD,
    keras.optimizers.Adam: ScheduledAdam,
    keras.optimizers.AdamW: ScheduledAdamW,
    keras.optimizers.Nadam: ScheduledNadam,
    keras.optimizers.Adamax: ScheduledAdamax,
    keras.optimizers.Lion: ScheduledLion,
    keras.optimizers.Lamb: ScheduledLamb,
}


def has_momentum_variable(optimizer):
    """Whether ``optimizer`` is one of the classes above with a momentum
    to set (SGD with ``momentum`` 0 has none)."""
    if not isinstance(optimizer, _MomentumVariable):
        return False
    return bool(getattr(optimizer, optimizer.momentum_attribute))


def scheduled_class(optimizer):
    """The class of this module for ``optimizer``'s Keras class, or
    ``None``: its type exactly, or the variant a Keras backend builds in
    its place (under PyTorch ``keras.optimizers.Adam(...)`` is an instance
    of Keras' own torch ``Adam``, a subclass); a user's subclass is not
    matched, since its update may differ."""
    kind = type(optimizer)
    if kind in SCHEDULED:
        return SCHEDULED[kind]
    if not kind.__module__.startswith("keras."):
        return None
    for base in kind.__mro__[1:]:
        if base in SCHEDULED and base.__name__ == kind.__name__:
            return SCHEDULED[base]
    return None
