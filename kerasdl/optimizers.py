"""Eve: Adam with feedback from the loss (Koushik & Hayashi, 2016).

Eve divides Adam's step by ``d``, a smoothed measure of how much the
objective changes from one step to the next: when the loss jumps about,
``d`` grows and the steps shrink; when it is steady, ``d`` decays and the
steps grow. Only the optimizer needs the loss, and Keras hands an
optimizer gradients, not losses, so the loss reaches ``Eve`` through one
of two public routes:

- in a training loop of your own, ``eve.apply(grads, variables,
  loss=loss)`` (the loss at the weights the gradients were taken at:
  the paper's rule exactly);
- under ``model.fit``, the callback ``LossFeedback()`` gives ``Eve`` each
  batch's loss as that batch ends, so the feedback used at step ``t`` is
  the loss of batch ``t - 1`` (one step later than the paper, the only
  way under a compiled ``fit`` on every backend).
"""

import math

import keras
import numpy as np
from keras import ops

from kerasdl import _validate


@keras.saving.register_keras_serializable(package="kerasdl")
class Eve(keras.optimizers.Optimizer):
    """Adam whose step is divided by a smoothed, clipped loss ratio.

    The rule (Koushik & Hayashi, "Improving Stochastic Gradient Descent
    with Feedback", arXiv:1611.01505v1, Algorithm 1), at step ``t`` with
    gradient ``g`` and objective value ``f`` taken at the current
    weights ``theta``::

        m = beta_1 m + (1 - beta_1) g       m_hat = m / (1 - beta_1^t)
        v = beta_2 v + (1 - beta_2) g^2     v_hat = v / (1 - beta_2^t)
        first loss seen:  f_hat = f, d = 1
        later:  (lo, hi) = (k + 1, K + 1)          if f >= f_hat
                         = (1 / (K + 1), 1 / (k + 1)) otherwise
                c = min(max(lo, f / f_hat), hi)
                r = |c f_hat - f_hat| / min(c f_hat, f_hat)
                f_hat = c f_hat
                d = beta_3 d + (1 - beta_3) r
        theta = theta - learning_rate m_hat / (d sqrt(v_hat) + epsilon)

    Each loss given is used by one update only; an update with no new
    loss leaves ``f_hat`` and ``d`` as they are (so with no loss at all
    Eve is Adam with the epsilon under the bias correction). The
    objective is taken to be positive, as in the paper (subtract its
    minimum first if it can be negative); values below 1e-12 count as
    1e-12.

    Pass the loss with ``apply(grads, variables, loss=...)`` in your own
    loop, or train with ``model.fit(..., callbacks=[LossFeedback()])``.
    The state (``feedback_loss``, ``f_hat``, ``d``, ``feedbacks``) is in
    ``variables``, so it is saved and restored with the model.

    Example:

    >>> import numpy as np
    >>> model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)])
    >>> model.compile(Eve(learning_rate=0.1), "mse")
    >>> x = np.linspace(-1, 1, 32).reshape(-1, 1).astype("float32")
    >>> h = model.fit(x, 3 * x + 8, epochs=3, batch_size=8, verbose=0,
    ...               callbacks=[LossFeedback()])
    >>> int(model.optimizer.feedbacks.numpy())  # each batch but the last
    11

    Args:
        learning_rate: float or schedule. Defaults to 0.001.
        beta_1: float in [0, 1). Decay of the gradient mean. Defaults to
            0.9.
        beta_2: float in [0, 1). Decay of the squared-gradient mean.
            Defaults to 0.999.
        beta_3: float in [0, 1). Decay of ``d``. Defaults to 0.999.
        k: float > 0. Lower threshold of the loss ratio's clip. Defaults
            to 0.1.
        K: float > k. Upper threshold of the clip. Defaults to 10.
        epsilon: float >= 0. Defaults to 1e-8.
        **kwargs: the other arguments of ``keras.optimizers.Optimizer``
            (``weight_decay``, ``clipnorm``, ``name``...), except
            ``gradient_accumulation_steps``.

    Raises:
        TypeError: a non-numeric argument.
        ValueError: an argument out of its range, or gradient
            accumulation asked for.
    """

    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.999,
                 beta_3=0.999, k=0.1, K=10.0, epsilon=1e-8, name="eve",
                 **kwargs):
        if kwargs.get("gradient_accumulation_steps"):
            raise ValueError(
                "Eve takes one loss per update, so it does not accumulate "
                "gradients. Received: gradient_accumulation_steps="
                f"{kwargs['gradient_accumulation_steps']!r}. Use a larger "
                "batch instead.")
        super().__init__(learning_rate=learning_rate, name=name, **kwargs)
        hint = "Values close to 1 are usual, such as 0.9 or 0.999."
        self.beta_1 = _validate.number(beta_1, "beta_1", low=0, high=1,
                                       high_open=True, hint=hint)
        self.beta_2 = _validate.number(beta_2, "beta_2", low=0, high=1,
                                       high_open=True, hint=hint)
        self.beta_3 = _validate.number(beta_3, "beta_3", low=0, high=1,
                                       high_open=True, hint=hint)
        self.k = _validate.positive(k, "k", hint="The paper uses 0.1.")
        self.K = _validate.number(
            K, "K", low=self.k, low_open=True,
            hint=f"It must exceed k={self.k:g}; the paper uses 10.")
        self.epsilon = _validate.number(epsilon, "epsilon", low=0,
                                        hint="Try 1e-8.")

    def build(self, var_list):
        if self.built:
            return
        super().build(var_list)
        self.momentums = []
        self.velocities = []
        self.slot_of = {}
        for i, var in enumerate(var_list):
            self.slot_of[id(var)] = i
            # TensorFlow hands update_step the tf.Variable behind it.
            backing = getattr(var, "value", None)
            if hasattr(backing, "assign"):
                self.slot_of[id(backing)] = i
            self.momentums.append(
                self.add_variable_from_reference(var, "momentum"))
            self.velocities.append(
                self.add_variable_from_reference(var, "velocity"))
        self.feedback_loss = self.add_variable(
            (), initializer=keras.initializers.Constant(math.nan),
            dtype="float32", name="feedback_loss")
        self.f_hat = self.add_variable(
            (), initializer="ones", dtype="float32", name="f_hat")
        self.d = self.add_variable(
            (), initializer="ones", dtype="float32", name="d")
        self.feedbacks = self.add_variable(
            (), initializer="zeros", dtype="int32", name="feedbacks")

    def apply(self, grads, trainable_variables=None, loss=None):
        """Applies one update; ``loss`` (a scalar) is the objective at the
        weights ``grads`` were taken at (the paper's ``f(theta_{t-1})``)."""
        if trainable_variables is not None and not self.built:
            self.build(list(trainable_variables))
        if loss is not None:
            if not self.built:
                raise ValueError(
                    "Eve needs its variables before it can take a loss: "
                    "pass `trainable_variables` to the first apply, or "
                    "call `optimizer.build(variables)` first.")
            self.feedback_loss.assign(ops.cast(ops.reshape(loss, ()),
                                               "float32"))
        if self.built:
            self.update_feedback()
        return super().apply(grads, trainable_variables)

    def update_feedback(self):
        """Folds ``feedback_loss`` (if a new one was given) into ``f_hat``
        and ``d``; called by ``apply`` before the weights move."""
        f = self.feedback_loss.value
        fresh = ops.isfinite(f)
        f = ops.maximum(ops.where(fresh, f, 1.0), 1e-12)
        first = ops.logical_and(fresh, ops.equal(self.feedbacks.value, 0))
        f_hat = self.f_hat.value
        rising = ops.greater_equal(f, f_hat)
        low = ops.where(rising, self.k + 1.0, 1.0 / (self.K + 1.0))
        high = ops.where(rising, self.K + 1.0, 1.0 / (self.k + 1.0))
        c = ops.minimum(ops.maximum(low, f / f_hat), high)
        new_f_hat = c * f_hat
        r = ops.abs(new_f_hat - f_hat) / ops.minimum(new_f_hat, f_hat)
        new_d = self.beta_3 * self.d.value + (1.0 - self.beta_3) * r
        later = ops.logical_and(fresh, ops.logical_not(first))
        self.d.assign(ops.where(first, 1.0, ops.where(
            later, new_d, self.d.value)))
        self.f_hat.assign(ops.where(first, f, ops.where(
            later, new_f_hat, f_hat)))
        self.feedbacks.assign_add(ops.cast(fresh, "int32"))
        self.feedback_loss.assign(ops.full((), math.nan, "float32"))

    def update_step(self, gradient, variable, learning_rate):
        dtype = variable.dtype
        lr = ops.cast(learning_rate, dtype)
        gradient = ops.cast(gradient, dtype)
        t = ops.cast(self.iterations + 1, dtype)
        i = self.slot_of[id(variable)]
        m, v = self.momentums[i], self.velocities[i]
        self.assign_add(m, ops.multiply(ops.subtract(gradient, m),
                                        1.0 - self.beta_1))
        self.assign_add(v, ops.multiply(
            ops.subtract(ops.square(gradient), v), 1.0 - self.beta_2))
        m_hat = ops.divide(m, 1.0 - ops.power(ops.cast(self.beta_1, dtype), t))
        v_hat = ops.divide(v, 1.0 - ops.power(ops.cast(self.beta_2, dtype), t))
        d = ops.cast(self.d, dtype)
        self.assign_sub(variable, ops.divide(
            ops.multiply(lr, m_hat),
            ops.add(ops.multiply(d, ops.sqrt(v_hat)), self.epsilon)))

    def get_config(self):
        config = super().get_config()
        config.update({"beta_1": self.beta_1, "beta_2": self.beta_2,
                       "beta_3": self.beta_3, "k": self.k, "K": self.K,
                       "epsilon": self.epsilon})
        return config


def find_eve(optimizer):
    """The ``Eve`` in ``optimizer`` or in the optimizers it wraps (through
    their ``inner_optimizer``), or None."""
    while optimizer is not None:
        if isinstance(optimizer, Eve):
            return optimizer
        optimizer = getattr(optimizer, "inner_optimizer", None)
    return None


class LossFeedback(keras.callbacks.Callback):
    """Gives an ``Eve`` optimizer each batch's loss under ``model.fit``.

    At every batch end it reads the batch's loss (from the running mean
    that ``fit`` keeps for its logs: the change of its total over the
    change of its count) and assigns it to ``Eve.feedback_loss``, which
    the next update uses. With ``steps_per_execution=n`` the loss given
    is the mean over the last ``n`` batches. The compiled step is not
    retraced: only a variable changes.

    Example:

    >>> import numpy as np
    >>> model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    >>> model.compile(Eve(), "mse")
    >>> _ = model.fit(np.ones((4, 2)), np.ones(4), batch_size=2,
    ...               verbose=0, callbacks=[LossFeedback()])
    >>> int(model.optimizer.feedbacks.numpy())  # the second step's
    1

    Raises:
        TypeError: at the start of fit, a model not compiled with
            ``Eve`` (or an optimizer wrapping one).
    """

    def on_train_begin(self, logs=None):
        model = self.model
        self.eve = find_eve(model.optimizer)
        if self.eve is None:
            raise TypeError(
                f"LossFeedback feeds the loss to an Eve optimizer: compile "
                f"with optimizer=kerasdl.Eve(...); found "
                f"{type(model.optimizer).__name__}.")
        trackers = [m for m in model.metrics if m.name == "loss"
                    and hasattr(m, "total") and hasattr(m, "count")]
        if not trackers:
            raise TypeError(
                "LossFeedback reads the loss that fit reports; this model "
                "reports none (compile it with a loss).")
        self.tracker = trackers[0]
        if not self.eve.built:
            self.eve.build(model.trainable_variables)
        self.seen = (0.0, 0.0)

    def on_epoch_begin(self, epoch, logs=None):
        self.seen = (0.0, 0.0)

    def on_train_batch_end(self, batch, logs=None):
        self.model  # noqa: B018 (on JAX: brings the state back first)
        total = float(np.asarray(self.tracker.total.numpy()))
        count = float(np.asarray(self.tracker.count.numpy()))
        seen_total, seen_count = self.seen
        if count < seen_count:  # the running mean was reset
            seen_total, seen_count = 0.0, 0.0
        if count > seen_count:
            self.eve.feedback_loss.assign(
                (total - seen_total) / (count - seen_count))
        self.seen = (total, count)
