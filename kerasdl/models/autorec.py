"""I-AutoRec: an item-based autoencoder recommender, with the same
``user`` / ``item`` inputs as the embedding models of ``collab``.

Its errors differ from those of the factor models (it sees an item through
all of its ratings at once), which is what makes it useful in an ensemble
with ``dot_bias`` (kerasdl.collab.recipes's ``best`` recipe).
"""

import keras

from kerasdl.models import _checks
from kerasdl.models.collab import _penalty


@keras.saving.register_keras_serializable(package="kerasdl")
class LeaveOneOut(keras.layers.Layer):
    """Zeroes column ``index`` of each row: ``rows * (1 - one_hot(index))``.

    Used by ``autorec`` so that a rating is never part of its own input.

    Example:

    >>> import numpy as np
    >>> out = LeaveOneOut()([np.ones((2, 3), "float32"), np.array([0, 2])])
    >>> keras.ops.convert_to_numpy(out).tolist()
    [[0.0, 1.0, 1.0], [1.0, 1.0, 0.0]]
    """

    def call(self, inputs):
        rows, index = inputs
        hot = keras.ops.one_hot(keras.ops.cast(index, "int32"),
                                keras.ops.shape(rows)[-1], dtype=rows.dtype)
        return rows * (1.0 - hot)


@keras.saving.register_keras_serializable(package="kerasdl")
class TakeColumn(keras.layers.Layer):
    """Picks ``rows[k, index[k]]`` for each row ``k``; output ``(batch, 1)``.

    Example:

    >>> import numpy as np
    >>> rows = np.arange(6, dtype="float32").reshape(2, 3)
    >>> out = TakeColumn()([rows, np.array([2, 0])])
    >>> keras.ops.convert_to_numpy(out).tolist()
    [[2.0], [3.0]]
    """

    def call(self, inputs):
        rows, index = inputs
        index = keras.ops.reshape(keras.ops.cast(index, "int32"), (-1, 1))
        return keras.ops.take_along_axis(rows, index, axis=1)


def autorec(n_users, n_items, *, hidden=500, dropout=0.5, l2=1e-2,
            leave_one_out=False, name="autorec"):
    """An item-based autoencoder (I-AutoRec) that answers for one pair.

    Each item is described by its row of the training rating matrix (its
    ratings by every user, 0 where unknown), kept in the frozen table
    ``item_ratings`` (fill it with ``set_rating_table``). The row goes
    through ``Dropout``, a sigmoid ``encode`` layer and a linear ``decode``
    layer that rebuilds the whole row; ``TakeColumn`` returns the user's
    entry. Train it on rows with ``row_model`` (the usual I-AutoRec) or on
    pairs; with ``leave_one_out=True`` the rating being predicted is removed
    from its own input first.

    Example:

    >>> model = autorec(5, 4, hidden=8)
    >>> model.get_layer("item_ratings").get_weights()[0].shape
    (4, 5)
    >>> row_model(model).output_shape
    (None, 5)

    Args:
        n_users: int. Number of users (the width of a row).
        n_items: int. Number of items.
        hidden: int. Hidden units. Defaults to 500.
        dropout: float. Dropout on the input row. Defaults to 0.5.
        l2: float or None. L2 penalty on both Dense kernels.
        leave_one_out: bool. Remove the target rating from the input.
        name: str. The model's name.

    Returns:
        A ``keras.Model`` (inputs ``user``, ``item``; output ``(batch, 1)``).

    Raises:
        ValueError: bad counts, rate or penalty.
    """
    _checks.positive_int(n_users, "n_users")
    _checks.positive_int(n_items, "n_items")
    _checks.positive_int(hidden, "hidden")
    p = _checks.probability(dropout, "dropout")
    reg = _penalty(l2, "l2")
    user = keras.Input(shape=(), dtype="int32", name="user")
    item = keras.Input(shape=(), dtype="int32", name="item")
    x = keras.layers.Embedding(n_items, n_users, trainable=False,
                               embeddings_initializer="zeros",
                               name="item_ratings")(item)
    if leave_one_out:
        x = LeaveOneOut(name="leave_one_out")([x, user])
    x = keras.layers.Dropout(p, name="dropout_in")(x)
    x = keras.layers.Dense(hidden, activation="sigmoid",
                           kernel_regularizer=reg, name="encode")(x)
    x = keras.layers.Dense(n_users, kernel_regularizer=reg,
                           name="decode")(x)
    out = TakeColumn(name="rating")([x, user])
    return keras.Model({"user": user, "item": item}, out, name=name)


def row_model(model):
    """The row-to-row part of an ``autorec`` model (layers shared): input a
    batch of rating rows ``(batch, n_users)``, output their reconstruction.
    Training it trains ``model``."""
    rows = keras.Input(shape=(model.get_layer("decode").units,),
                       name="rows")
    x = model.get_layer("dropout_in")(rows)
    x = model.get_layer("encode")(x)
    out = model.get_layer("decode")(x)
    return keras.Model(rows, out, name=f"{model.name}_rows")


def masked_squared_error(y_true, y_pred):
    """Sum of squared errors over the known entries (``y_true > 0``) of
    each row: the I-AutoRec loss."""
    mask = keras.ops.cast(y_true > 0, y_pred.dtype)
    return keras.ops.sum(mask * keras.ops.square(y_true - y_pred), axis=-1)


def set_rating_table(model, users, items, ratings):
    """Fills ``autorec``'s frozen ``item_ratings`` table and returns it.

    Args:
        model: a model from ``autorec``.
        users: int array. User indices of the training ratings.
        items: int array. Item indices.
        ratings: float array. The ratings (all > 0; 0 means unknown).

    Returns:
        The table, a float32 array ``(n_items, n_users)``.
    """
    import numpy as np

    layer = model.get_layer("item_ratings")
    table = np.zeros(layer.get_weights()[0].shape, "float32")
    table[np.asarray(items), np.asarray(users)] = np.asarray(ratings,
                                                             "float32")
    layer.set_weights([table])
    return table
