"""Gradient-ratio annealing (lesson 4): keep the sum of squared gradients
of each epoch; when it grows more than ``threshold`` times from one epoch
to the next, divide the learning rate by ``factor``.

The sum is accumulated on the device by ``GradientSum``, an optimizer
wrapper written in ``keras.ops`` (the same code on every backend): it
adds each step's ``sum(g ** 2)`` to a variable, then lets the wrapped
optimizer apply the gradients unchanged. The callback reads that variable
once per epoch.
"""

import math

import keras
import numpy as np
from keras import ops

from kerasdl import _backend
from kerasdl import _validate
from kerasdl.training import _rates as _hyper
from kerasdl.training._wrapping import WrappingOptimizer


@keras.saving.register_keras_serializable(package="kerasdl")
class GradientSum(WrappingOptimizer):
    """Wraps an optimizer and sums the squared gradients on the device.

    ``grad_sq_sum`` (a scalar variable) grows by ``sum(g ** 2)`` over all
    gradients at every step; the wrapped optimizer's update is unchanged.
    The learning rate and step counter are the wrapped optimizer's.

    Example:

    >>> import numpy as np
    >>> model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(
    ...     1, use_bias=False, kernel_initializer="zeros")])
    >>> opt = GradientSum(keras.optimizers.SGD(0.0))
    >>> model.compile(opt, loss=lambda y, p: keras.ops.mean(p))
    >>> _ = model.fit(np.ones((4, 2)), np.zeros(4), batch_size=2,
    ...               verbose=0)
    >>> float(opt.grad_sq_sum.numpy())  # 2 steps, gradient (1, 1)
    4.0

    Args:
        optimizer: a ``keras.optimizers.Optimizer`` (not a loss-scale
            optimizer; wrap this one in it instead).
        name: str or None.

    Returns:
        An optimizer to pass to ``model.compile``.
    """

    def __init__(self, optimizer, name=None):
        if not isinstance(optimizer, keras.optimizers.Optimizer):
            raise TypeError(f"GradientSum wraps a keras Optimizer; received "
                            f"{type(optimizer).__name__}.")
        if name is not None and not isinstance(name, str):
            raise TypeError(f"`name` must be a str or None. Received: "
                            f"name={name!r}.")
        super().__init__(learning_rate=0.0, name=name or "gradient_sum")
        self.inner_optimizer = optimizer
        self.grad_sq_sum = None

    def build(self, var_list):
        if self.built:
            return
        self.inner_optimizer.build(var_list)
        self.grad_sq_sum = self.add_variable(
            (), "zeros", "float32", name="grad_sq_sum",
            aggregation="only_first_replica")
        super().build(var_list)

    def apply(self, grads, trainable_variables=None):
        if trainable_variables is None:
            trainable_variables = self.model_variables()
        if not self.built:
            self.build(trainable_variables)
        # Under a TensorFlow strategy each replica holds its own part of
        # the gradient here: the statistic is taken of their sum (what one
        # device sees), and the wrapped optimizer, which sums over the
        # replicas again, gets each replica's equal share of it.
        present = [i for i, g in enumerate(grads) if g is not None]
        summed, replicas = _backend.sum_over_replicas(
            [grads[i] for i in present])
        total = ops.zeros((), "float32")
        for g in summed:
            total = total + ops.sum(ops.square(ops.cast(g, "float32")))
        self.grad_sq_sum.assign_add(total)
        if replicas > 1:
            grads = list(grads)
            for i, g in zip(present, summed):
                grads[i] = g / replicas
        self.inner_optimizer.apply(grads, trainable_variables)

    def get_config(self):
        return {"optimizer": keras.saving.serialize_keras_object(
            self.inner_optimizer), "name": self.name}

    @classmethod
    def from_config(cls, config, custom_objects=None):
        inner = keras.saving.deserialize_keras_object(
            config["optimizer"], custom_objects=custom_objects)
        return cls(inner, name=config.get("name"))


def _find_gradient_sum(optimizer):
    while optimizer is not None:
        if isinstance(optimizer, GradientSum):
            return optimizer
        optimizer = getattr(optimizer, "inner_optimizer", None)
    return None


class GradientRatioAnnealer(keras.callbacks.Callback):
    """Divides the rate by ``factor`` when the epoch's sum of squared
    gradients grows more than ``threshold`` times over the previous one.

    Compile with ``GradientSum(optimizer)``. At every epoch end the logs
    (so ``History``) get ``grad_sq_sum``, ``grad_ratio`` (NaN at the first
    epoch), ``lr_annealed`` (1.0 when the rate was divided, else 0.0) and
    ``learning_rate`` (after the decision).

    Example:

    >>> import numpy as np
    >>> model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    >>> model.compile(GradientSum(keras.optimizers.SGD(0.01)), "mse")
    >>> h = model.fit(np.ones((8, 2)), np.ones(8), epochs=2, verbose=0,
    ...               callbacks=[GradientRatioAnnealer()])
    >>> h.history["lr_annealed"]
    [0.0, 0.0]

    Args:
        threshold: float. Ratio above which the rate is divided, > 1.
            Defaults to 2.
        factor: float. Divisor, > 1. Defaults to 4.
        min_lr: float. The rate never goes below this, >= 0. Defaults
            to 0.

    Raises:
        TypeError: a non-numeric argument; at the start of fit, an
            optimizer not wrapped in ``GradientSum``.
        ValueError: ``threshold`` or ``factor`` not a finite number > 1,
            ``min_lr`` not a finite number >= 0.
    """

    def __init__(self, threshold=2.0, factor=4.0, min_lr=0.0):
        super().__init__()
        self.threshold = _validate.number(
            threshold, "threshold", low=1, low_open=True,
            hint="It is the growth of the gradients that anneals; try 2.")
        self.factor = _validate.number(
            factor, "factor", low=1, low_open=True,
            hint="The rate is divided by it; try 4.")
        self.min_lr = _validate.number(min_lr, "min_lr", low=0,
                                       hint="Try 0.")
        self._previous = None

    def on_train_begin(self, logs=None):
        self._sum = _find_gradient_sum(self.model.optimizer)
        if self._sum is None:
            raise TypeError(
                f"GradientRatioAnnealer needs the sum of squared gradients: "
                f"compile with optimizer=kerasdl.GradientSum(your_optimizer)"
                f"; found {type(self.model.optimizer).__name__}.")
        _hyper.get_lrs(self.model.optimizer)  # a settable rate
        if not self.model.optimizer.built:
            self.model.optimizer.build(self.model.trainable_variables)

    def on_epoch_begin(self, epoch, logs=None):
        self.model  # noqa: B018 (on JAX: sync the state first)
        self._sum.grad_sq_sum.assign(0.0)

    def on_epoch_end(self, epoch, logs=None):
        model = self.model
        total = float(np.asarray(self._sum.grad_sq_sum.numpy()))
        ratio = total / self._previous if self._previous else math.nan
        annealed = bool(ratio > self.threshold)
        if annealed:
            rates = _hyper.get_lrs(model.optimizer)
            _hyper.set_lrs(model.optimizer, [
                max(r / self.factor, self.min_lr) for r in rates])
        self._previous = total
        if logs is not None:
            logs["grad_sq_sum"] = total
            logs["grad_ratio"] = ratio
            logs["lr_annealed"] = float(annealed)
            logs["learning_rate"] = _hyper.get_lrs(model.optimizer)[-1]
