"""Collaborative-filtering models of lesson 4: embeddings of users and items.

Every builder returns a functional ``keras.Model`` with two integer inputs,
``user`` and ``item`` (contiguous indices, shape ``(batch,)``), and one
output of shape ``(batch, 1)``: the predicted rating. Layers are named
(``user_factors``, ``item_factors``, ``user_bias``, ``item_bias``) so that
the analysis tools can read them back.

Regularisation comes in three kinds; pick by argument:

* ``l2``: an L2 penalty on the whole factor tables (the course's
  ``l2(1e-4)``), added to the loss at every step;
* ``l2_per_rating``: an L2 penalty on the factors (and biases) looked up in
  the batch, averaged over the batch, so an item is held back in
  proportion to how often it is rated (the classic "Funk SVD" penalty);
* decoupled weight decay: no term in the model, pass ``weight_decay`` to
  ``keras.optimizers.AdamW`` instead.
"""

import keras

from kerasdl import _versions
from kerasdl.models import _checks


@keras.saving.register_keras_serializable(package="kerasdl")
class ScaledSigmoid(keras.layers.Layer):
    """Squashes its input into ``(low, high)``: ``low + (high - low) *
    sigmoid(x)``.

    fastai's ``y_range``: a rating model that can never predict outside the
    scale learns faster. Pick ``high`` a little above the top rating (5.5
    for a 1-5 scale) so that the top rating is reachable.

    Example:

    >>> import numpy as np
    >>> layer = ScaledSigmoid(0.0, 5.5)
    >>> np.round(keras.ops.convert_to_numpy(layer(np.zeros((1, 1)))), 2)
    array([[2.75]], dtype=float32)

    Args:
        low: float. The lower end of the range.
        high: float. The upper end; must be greater than ``low``.

    Raises:
        ValueError: ``high <= low``.
    """

    def __init__(self, low, high, **kwargs):
        super().__init__(**kwargs)
        low, high = float(low), float(high)
        if not high > low:
            raise ValueError(
                f"`y_range` must be (low, high) with high > low, such as "
                f"(0.0, 5.5). Received: y_range=({low}, {high}).")
        self.low, self.high = low, high

    def call(self, x):
        return self.low + (self.high - self.low) * keras.ops.sigmoid(x)

    def get_config(self):
        return {**super().get_config(), "low": self.low, "high": self.high}


def _y_range(value):
    if value is None:
        return None
    try:
        low, high = value
    except (TypeError, ValueError):
        raise TypeError(
            f"`y_range` must be None or a pair (low, high) such as "
            f"(0.0, 5.5). Received: y_range={value!r}.") from None
    return float(low), float(high)


def _activity_penalty(value):
    """``l2_per_rating`` as an activity regularizer: Keras divides it by
    the batch size from 3.14 on (a mean over the batch's ratings); older
    releases sum it, so they refuse it with one clear error."""
    penalty = _penalty(value, "l2_per_rating")
    if penalty is not None:
        _versions.require("batch_mean_activity_penalty")
    return penalty


def _penalty(value, arg):
    if value is None or value == 0:
        return None
    if not isinstance(value, (int, float)) or value < 0:
        raise ValueError(
            f"`{arg}` must be a non-negative number or None. Received: "
            f"{arg}={value!r}.")
    return keras.regularizers.L2(float(value))


def _inputs_and_factors(n_users, n_items, n_factors, l2, l2_per_rating):
    _checks.positive_int(n_users, "n_users")
    _checks.positive_int(n_items, "n_items")
    _checks.positive_int(n_factors, "n_factors")
    weights = _penalty(l2, "l2")
    activity = _activity_penalty(l2_per_rating)
    user = keras.Input(shape=(), dtype="int32", name="user")
    item = keras.Input(shape=(), dtype="int32", name="item")
    init = keras.initializers.RandomNormal(stddev=0.01)
    u = keras.layers.Embedding(
        n_users, n_factors, embeddings_initializer=init,
        embeddings_regularizer=weights, activity_regularizer=activity,
        name="user_factors")(user)
    i = keras.layers.Embedding(
        n_items, n_factors, embeddings_initializer=init,
        embeddings_regularizer=weights, activity_regularizer=activity,
        name="item_factors")(item)
    return user, item, u, i


def _biases(user, item, n_users, n_items, l2_per_rating):
    activity = _activity_penalty(l2_per_rating)
    ub = keras.layers.Embedding(n_users, 1, embeddings_initializer="zeros",
                                activity_regularizer=activity,
                                name="user_bias")(user)
    ib = keras.layers.Embedding(n_items, 1, embeddings_initializer="zeros",
                                activity_regularizer=activity,
                                name="item_bias")(item)
    return ub, ib


def dot(n_users, n_items, n_factors=50, *, l2=1e-4, l2_per_rating=None,
        name="dot"):
    """The lesson's first model: rating = user factors . item factors.

    Example:

    >>> model = dot(671, 9066, 50)
    >>> model.count_params()
    486850

    Args:
        n_users: int. Number of users (indices ``0..n_users-1``).
        n_items: int. Number of items.
        n_factors: int. Length of each embedding. Defaults to 50.
        l2: float or None. L2 penalty on the whole factor tables.
            Defaults to ``1e-4`` (the course's).
        l2_per_rating: float or None. L2 penalty on the looked-up factors,
            averaged over the batch. Defaults to None.
        name: str. The model's name.

    Returns:
        A ``keras.Model`` with inputs ``user`` and ``item`` (int32, shape
        ``(batch,)``) and output ``(batch, 1)``.

    Raises:
        ValueError: a count is not a positive int, or a penalty is negative.
    """
    user, item, u, i = _inputs_and_factors(n_users, n_items, n_factors, l2,
                                           l2_per_rating)
    out = keras.layers.Dot(axes=1, name="rating")([u, i])
    return keras.Model({"user": user, "item": item}, out, name=name)


def dot_bias(n_users, n_items, n_factors=50, *, y_range=None, l2=1e-4,
             l2_per_rating=None, name="dot_bias"):
    """Dot product plus a learned bias per user and per item.

    ``rating = u . i + b_u + b_i``, optionally squashed into ``y_range`` by
    a scaled sigmoid. Biases get no ``l2`` table penalty (as in the course)
    but do get ``l2_per_rating`` when it is set.

    Example:

    >>> model = dot_bias(671, 9066, 50)
    >>> model.count_params()
    496587
    >>> model = dot_bias(10, 20, 4, y_range=(0.0, 5.5))
    >>> model.output_shape
    (None, 1)

    Args:
        n_users: int. Number of users.
        n_items: int. Number of items.
        n_factors: int. Length of each embedding. Defaults to 50.
        y_range: (low, high) or None. Squash the output into this range
            with ``ScaledSigmoid``. Defaults to None (no squashing).
        l2: float or None. L2 penalty on the whole factor tables.
            Defaults to ``1e-4``.
        l2_per_rating: float or None. L2 penalty on the looked-up factors
            and biases, averaged over the batch. Defaults to None.
        name: str. The model's name.

    Returns:
        A ``keras.Model`` (inputs ``user``, ``item``; output ``(batch, 1)``).

    Raises:
        ValueError: bad counts, a negative penalty or ``high <= low``.
        TypeError: ``y_range`` is not a pair.
    """
    y_range = _y_range(y_range)
    user, item, u, i = _inputs_and_factors(n_users, n_items, n_factors, l2,
                                           l2_per_rating)
    ub, ib = _biases(user, item, n_users, n_items, l2_per_rating)
    d = keras.layers.Dot(axes=1, name="dot")([u, i])
    out = keras.layers.Add(name="rating")([d, ub, ib])
    if y_range is not None:
        out = ScaledSigmoid(*y_range, name="y_range")(out)
    return keras.Model({"user": user, "item": item}, out, name=name)


def collab_nn(n_users, n_items, n_factors=50, *, hidden=(70,),
              dropout=(0.3, 0.75), y_range=None, l2=1e-4,
              l2_per_rating=None, name="collab_nn"):
    """The lesson's neural net: concatenated embeddings, dropout, dense.

    ``concat(u, i) -> Dropout(dropout[0]) -> Dense(h, relu) for h in hidden
    -> Dropout(dropout[1]) -> Dense(1)``, optionally squashed into
    ``y_range``. The course used ``hidden=(70,)`` and dropout 0.3 / 0.75.

    Example:

    >>> model = collab_nn(671, 9066, 50)
    >>> model.count_params()
    493991

    Args:
        n_users: int. Number of users.
        n_items: int. Number of items.
        n_factors: int. Length of each embedding. Defaults to 50.
        hidden: tuple of int. Units of each hidden Dense layer.
        dropout: (float, float). Dropout on the embeddings and before the
            output layer.
        y_range: (low, high) or None. See ``dot_bias``.
        l2: float or None. L2 penalty on the whole factor tables.
        l2_per_rating: float or None. L2 penalty on the looked-up factors.
        name: str. The model's name.

    Returns:
        A ``keras.Model`` (inputs ``user``, ``item``; output ``(batch, 1)``).

    Raises:
        ValueError: bad counts, rates or penalties.
    """
    y_range = _y_range(y_range)
    p_in, p_out = (_checks.probability(p, "dropout") for p in dropout)
    hidden = tuple(_checks.positive_int(h, "hidden") for h in hidden)
    user, item, u, i = _inputs_and_factors(n_users, n_items, n_factors, l2,
                                           l2_per_rating)
    x = keras.layers.Concatenate(name="concat")([u, i])
    x = keras.layers.Dropout(p_in, name="dropout_in")(x)
    for k, units in enumerate(hidden):
        x = keras.layers.Dense(units, activation="relu",
                               name=f"hidden_{k}")(x)
    x = keras.layers.Dropout(p_out, name="dropout_out")(x)
    out = keras.layers.Dense(1, name="rating")(x)
    if y_range is not None:
        out = ScaledSigmoid(*y_range, name="y_range")(out)
    return keras.Model({"user": user, "item": item}, out, name=name)

