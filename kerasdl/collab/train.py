"""Training recipes for the recommenders, and the function that runs one.

A ``Recipe`` is every choice that affects the score (model, factors,
regularisation, optimiser, schedule, epochs, batch size, seeds), so a
figure can always be reproduced from its recipe's name. ``RECIPES`` holds
the lesson's three models and the tuned ones; ``fit_recipe`` trains one on a
training DataFrame and returns a ``CollabModel``.

The learning rate follows a one-cycle shape (warm-up from ``lr / 25`` to
``lr`` over the first quarter of the steps, cosine down to ``lr / 1e5``),
written as a Keras ``LearningRateSchedule`` so that it runs inside the
compiled step and never needs a callback.
"""

import dataclasses
import math

import numpy as np

from kerasdl.collab.learner import CollabModel
from kerasdl.data.ratings import IdEncoder

_MODELS = ("dot", "dot_bias", "nn")


@dataclasses.dataclass(frozen=True)
class Recipe:
    """How to train one recommender (all fields have defaults).

    Attributes:
        model: ``"dot"``, ``"dot_bias"`` or ``"nn"``.
        n_factors: int. Embedding length.
        y_range: (low, high) or None. Output squashing (not for ``dot``).
        l2: float or None. L2 on whole factor tables.
        l2_per_rating: float or None. L2 on looked-up factors per rating.
        weight_decay: float or None. Decoupled weight decay (AdamW).
        lr: float. Peak learning rate.
        epochs: int.
        batch_size: int.
        one_cycle: bool. One-cycle schedule (else a constant rate).
        hidden: tuple of int. Hidden units of ``nn``.
        dropout: (float, float). Dropout of ``nn``.
        seeds: int. Models trained with seeds ``seed .. seed+seeds-1`` and
            averaged.
    """

    model: str = "dot_bias"
    n_factors: int = 50
    y_range: tuple = None
    l2: float = None
    l2_per_rating: float = None
    weight_decay: float = None
    lr: float = 1e-3
    epochs: int = 5
    batch_size: int = 64
    one_cycle: bool = False
    hidden: tuple = (70,)
    dropout: tuple = (0.3, 0.75)
    seeds: int = 1

    def __post_init__(self):
        if self.model not in _MODELS:
            raise ValueError(f"`model` must be one of {_MODELS}. Received: "
                             f"model={self.model!r}.")
        for name in ("n_factors", "epochs", "batch_size", "seeds"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"`{name}` must be a positive integer. "
                                 f"Received: {name}={value!r}.")


# The 2017 lesson: Adam 1e-3, l2(1e-4) on factor tables, batch 64.
_LESSON = dict(l2=1e-4, lr=1e-3, batch_size=64, epochs=5)
RECIPES = {
    "lesson_dot": (Recipe(model="dot", **_LESSON),),
    "lesson_dot_bias": (Recipe(model="dot_bias", **_LESSON),),
    "lesson_nn": (Recipe(model="nn", **_LESSON),),
    "dot": (Recipe(model="dot", **_LESSON),),
    "dot_bias": (Recipe(model="dot_bias", y_range=(0.0, 5.5),
                        weight_decay=0.4, lr=1e-2, epochs=5,
                        batch_size=1024, one_cycle=True),),
    "nn": (Recipe(model="nn", y_range=(0.0, 5.5), weight_decay=0.4,
                  lr=1e-2, epochs=5, batch_size=1024, one_cycle=True),),
}


def recipe(name):
    """Returns the tuple of ``Recipe`` named ``name`` (its members are
    averaged).

    Raises:
        ValueError: an unknown name, listing the known ones.
    """
    if name not in RECIPES:
        raise ValueError(f"unknown recipe {name!r}; expected one of: "
                         f"{', '.join(sorted(RECIPES))}.")
    return RECIPES[name]


def build_model(r, n_users, n_items):
    """Builds the untrained ``keras.Model`` a ``Recipe`` describes."""
    from kerasdl.models import collab

    common = dict(l2=r.l2, l2_per_rating=r.l2_per_rating)
    if r.model == "dot":
        return collab.dot(n_users, n_items, r.n_factors, **common)
    if r.model == "dot_bias":
        return collab.dot_bias(n_users, n_items, r.n_factors,
                               y_range=r.y_range, **common)
    return collab.collab_nn(n_users, n_items, r.n_factors, hidden=r.hidden,
                            dropout=r.dropout, y_range=r.y_range, **common)


def one_cycle_schedule(lr, steps, pct_start=0.25, div=25.0,
                       div_final=1e5):
    """A one-cycle learning rate as a Keras schedule: linear warm-up from
    ``lr/div`` to ``lr`` over ``pct_start`` of ``steps``, then cosine down
    to ``lr/div_final``.

    Example:

    >>> s = one_cycle_schedule(1e-2, 100)
    >>> [round(float(s(k)), 5) for k in (0, 25, 100)]
    [0.0004, 0.01, 0.0]
    """
    import keras

    warm = max(1, int(steps * pct_start))
    return keras.optimizers.schedules.CosineDecay(
        lr / div, max(1, steps - warm), alpha=div / div_final,
        warmup_target=lr, warmup_steps=warm)


def make_encoders(ratings):
    """``(users, items)``: ``IdEncoder`` over every id of ``ratings``."""
    return (IdEncoder(ratings["user"].to_numpy(), "user"),
            IdEncoder(ratings["item"].to_numpy(), "item"))


def fit_recipe(recipes, train, users, items, *, rating_range, titles=None,
               seed=0, steps_per_execution=1, verbose=0):
    """Trains every member of ``recipes`` (``seeds`` times each).

    Example:

    >>> import pandas as pd
    >>> df = pd.DataFrame({"user": [1, 1, 2, 2], "item": [5, 6, 5, 6],
    ...                    "rating": [5.0, 1.0, 4.0, 2.0]})
    >>> users, items = make_encoders(df)
    >>> model = fit_recipe(recipe("dot_bias"), df, users, items,
    ...                    rating_range=(1.0, 5.0))
    >>> round(model.evaluate(df)["rmse"], 1) < 2.0
    True

    Args:
        recipes: a ``Recipe`` or a tuple of them (see ``recipe(name)``).
        train: DataFrame with ``user``, ``item``, ``rating`` (raw ids).
        users: ``IdEncoder`` covering every user id to be predicted.
        items: ``IdEncoder`` covering every item id.
        rating_range: (float, float). The rating scale.
        titles: dict raw item id -> title, kept for the analysis.
        seed: int. First seed.
        steps_per_execution: int. Steps per compiled call (faster on GPU).
        verbose: int. Passed to ``fit``.

    Returns:
        A ``CollabModel``.
    """
    import keras

    if isinstance(recipes, Recipe):
        recipes = (recipes,)
    x = {"user": users.encode(train["user"].to_numpy()),
         "item": items.encode(train["item"].to_numpy())}
    y = train["rating"].to_numpy(np.float32)
    models = []
    for r in recipes:
        steps = r.epochs * math.ceil(len(y) / r.batch_size)
        for k in range(r.seeds):
            keras.utils.set_random_seed(seed + k)
            model = build_model(r, len(users), len(items))
            lr = one_cycle_schedule(r.lr, steps) if r.one_cycle else r.lr
            if r.weight_decay:
                opt = keras.optimizers.AdamW(lr, weight_decay=r.weight_decay)
            else:
                opt = keras.optimizers.Adam(lr)
            model.compile(optimizer=opt, loss="mse",
                          steps_per_execution=steps_per_execution)
            model.fit(x, y, batch_size=r.batch_size, epochs=r.epochs,
                      verbose=verbose)
            models.append(model)
    return CollabModel(models, users, items, seen_users=train["user"],
                       seen_items=train["item"], mean=float(y.mean()),
                       rating_range=rating_range, titles=titles)
