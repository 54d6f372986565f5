"""A trained recommender: Keras models plus the id encoders and the
training facts needed to predict, score and explain.

``CollabModel.predict`` refuses users and items it never saw in training
unless the caller asks for the documented fallback (``unknown="mean"``: a
pair with an unseen id gets the user's mean training rating when the user
was seen, else the item's when the item was seen, else the overall mean).
"""

import numpy as np

from kerasdl import _validate

_UNKNOWN = ("raise", "mean")


class CollabModel:
    """One or several trained rating models and what they were trained on.

    Predictions of several models (an ensemble, or several seeds) are
    averaged, with ``weights`` when given.

    Example:

    >>> import keras, numpy as np
    >>> from kerasdl.data.ratings import IdEncoder
    >>> from kerasdl.models.collab import dot_bias
    >>> users, items = IdEncoder([10, 20]), IdEncoder([7, 8, 9])
    >>> m = CollabModel([dot_bias(2, 3, 4)], users, items,
    ...                 seen_users=[10, 20], seen_items=[7, 8],
    ...                 mean=3.5, rating_range=(1.0, 5.0))
    >>> m.predict([10], [7]).shape
    (1,)
    >>> m.predict([10], [9], unknown="mean").tolist()
    [3.5]

    Args:
        models: list of ``keras.Model`` with inputs ``user`` and ``item``.
        users: ``IdEncoder`` of the raw user ids.
        items: ``IdEncoder`` of the raw item ids.
        seen_users: array-like. Raw user ids present in the training data.
        seen_items: array-like. Raw item ids present in the training data.
        mean: float. Mean training rating (the fallback prediction).
        rating_range: (float, float). Predictions are clipped to it.
        titles: dict raw item id -> title (optional).
        weights: list of float or None. Weight of each model in the
            average (normalised to sum to 1). Defaults to equal weights.
        user_means: dict raw user id -> mean training rating (for the
            fallback; users left out fall back to ``mean``).
        item_means: dict raw item id -> mean training rating.

    Raises:
        TypeError: a weight, ``mean`` or a bound of ``rating_range`` that
            is not a number.
        ValueError: no models, weights that are not one finite number
            >= 0 per model (not all 0), a ``mean`` that is NaN or
            infinite, or a ``rating_range`` that is not ``(low, high)``
            with ``low < high``.
    """

    def __init__(self, models, users, items, *, seen_users, seen_items,
                 mean, rating_range, titles=None, weights=None,
                 user_means=None, item_means=None):
        self.models = list(models)
        self.weights = _weights(weights, len(self.models))
        self.users, self.items = users, items
        self.seen_users = np.zeros(len(users), bool)
        self.seen_users[users.encode(np.unique(seen_users))] = True
        self.seen_items = np.zeros(len(items), bool)
        self.seen_items[items.encode(np.unique(seen_items))] = True
        self.mean = _validate.number(mean, "mean")
        self.rating_range = _rating_range(rating_range)
        self.titles = dict(titles or {})
        self.user_means = {} if user_means is None else dict(user_means)
        self.item_means = {} if item_means is None else dict(item_means)

    def title(self, item):
        """The title of a raw item id (``"item ID"`` without titles)."""
        return self.titles.get(item, f"item {item}")

    def predict_indices(self, u, i, batch_size=65536):
        """Averaged raw model output for encoded indices (no checks)."""
        x = {"user": np.asarray(u, np.int32), "item": np.asarray(i, np.int32)}
        out = np.zeros(len(x["user"]), np.float64)
        for model, weight in zip(self.models, self.weights):
            out += weight * model.predict(x, batch_size=batch_size,
                                          verbose=0).reshape(-1)
        return out

    def predict(self, users, items, unknown="raise"):
        """Predicted ratings for pairs of raw ids, clipped to the scale.

        Args:
            users: array-like of raw user ids.
            items: array-like of raw item ids, same length.
            unknown: ``"raise"`` (default): a ``ValueError`` naming any id
                not seen in training; ``"mean"``: such pairs get the
                user's mean training rating if the user was seen, else the
                item's, else the overall mean (the documented fallback).

        Returns:
            A float64 numpy array of predictions.

        Raises:
            ValueError: unseen ids with ``unknown="raise"``, or lengths
                that differ.
        """
        _validate.choice(unknown, "unknown", _UNKNOWN)
        users, items = np.asarray(users).ravel(), np.asarray(items).ravel()
        _validate.same_length("users", users, "items", items)
        u = self.users.encode(users, unknown="mark")
        i = self.items.encode(items, unknown="mark")
        known = (u >= 0) & (i >= 0)
        known[known] = self.seen_users[u[known]] & self.seen_items[i[known]]
        if unknown == "raise" and not known.all():
            self._raise_unseen(users, items, u, i)
        out = np.empty(len(users), np.float64)
        out[~known] = [self.user_means.get(u_, self.item_means.get(
            i_, self.mean)) for u_, i_ in zip(users[~known], items[~known])]
        if known.any():
            out[known] = self.predict_indices(u[known], i[known])
        return np.clip(out, *self.rating_range)

    def _raise_unseen(self, users, items, u, i):
        bad_u = (u < 0) | ~self.seen_users[np.maximum(u, 0)]
        bad_i = (i < 0) | ~self.seen_items[np.maximum(i, 0)]
        parts = []
        if bad_u.any():
            parts.append(f"user id(s) {np.unique(users[bad_u])[:5].tolist()}")
        if bad_i.any():
            parts.append(f"item id(s) {np.unique(items[bad_i])[:5].tolist()}")
        raise ValueError(
            f"{' and '.join(parts)} had no ratings in training, so the "
            f"model knows nothing about them. Leave them out, or pass "
            f"unknown='mean' to predict the user's (else the item's, else "
            f"the overall: {self.mean:.3f}) mean training rating for them.")

    def evaluate(self, ratings):
        """Scores the model on a DataFrame of ratings.

        Pairs with an id unseen in training get the ``unknown="mean"``
        fallback (they are counted in ``fallback``), so every test rating
        is scored.

        Returns:
            A dict with ``rmse``, ``mae``, ``n`` and ``fallback``.

        Raises:
            ValueError: no ratings (the scores would be NaN), or ratings
                that are NaN or infinite.
        """
        if len(ratings) == 0:
            raise ValueError(
                "`ratings` holds no ratings, so there is nothing to score "
                "(RMSE and MAE would be NaN). Pass a non-empty test set.")
        _validate.finite_array(ratings["rating"].to_numpy(np.float64),
                               "ratings['rating']")
        users = ratings["user"].to_numpy()
        items = ratings["item"].to_numpy()
        pred = self.predict(users, items, unknown="mean")
        u = self.users.encode(users, unknown="mark")
        i = self.items.encode(items, unknown="mark")
        seen = ((u >= 0) & (i >= 0) & self.seen_users[np.maximum(u, 0)]
                & self.seen_items[np.maximum(i, 0)])
        err = pred - ratings["rating"].to_numpy(np.float64)
        return {"rmse": float(np.sqrt(np.mean(err ** 2))),
                "mae": float(np.mean(np.abs(err))), "n": int(len(err)),
                "fallback": int((~seen).sum())}


def _weights(weights, n):
    """One finite weight >= 0 per model, normalised to sum to 1."""
    if n == 0:
        raise ValueError("`models` must hold at least one trained model. "
                         "Received: models=[].")
    if weights is None:
        return [1.0 / n] * n
    weights = list(weights)
    if len(weights) != n:
        raise ValueError(f"`weights` must hold one number per model ({n}). "
                         f"Received {len(weights)}: weights={weights!r}.")
    for j, w in enumerate(weights):
        _validate.number(w, f"weights[{j}]", low=0)
    total = float(sum(weights))
    if total <= 0:
        raise ValueError(f"`weights` must not all be 0. Received: "
                         f"weights={weights!r}.")
    return [float(w) / total for w in weights]


def _rating_range(rating_range):
    """``(low, high)``: two finite numbers with ``low < high``."""
    try:
        low, high = rating_range
    except (TypeError, ValueError):
        raise ValueError(f"`rating_range` must be (low, high), such as "
                         f"(1.0, 5.0). Received: rating_range="
                         f"{rating_range!r}.") from None
    low = _validate.number(low, "rating_range[0]")
    high = _validate.number(high, "rating_range[1]", low=low,
                            low_open=True)
    return low, high
