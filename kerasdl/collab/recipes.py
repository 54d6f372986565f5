"""Training recipes for the recommenders, and the function that runs one.

A ``Recipe`` is every choice that affects the score (model, factors,
regularisation, optimiser, schedule, epochs, batch size, seeds), so a
figure can always be reproduced from its recipe's name. ``RECIPES`` holds
the lesson's three models and the tuned ones; ``fit_recipe`` trains one on a
training DataFrame and returns a ``CollabModel``.

Recipes with ``one_cycle=True`` follow fastai's rate curve (from ``lr / 25``
up to ``lr`` over the first quarter of the steps, then down to
``lr / 1e5``) as a ``OneCycleSchedule`` inside the compiled step; with
``cycle_momentum=True`` they train through ``kerasdl.fit_one_cycle``
instead, which also cycles Adam's beta_1 (0.95-0.85-0.95) from a callback
(not possible with ``steps_per_execution > 1`` or ``on_device``). On the
u1.base validation split, cycling momentum scored worse for the seed
ensembles (8 dot_bias seeds: RMSE 0.9306 against 0.9174 without), so the
tuned recipes leave it off.
"""

import dataclasses
import math

import numpy as np

from kerasdl.collab.learner import CollabModel
from kerasdl.data.ratings import IdEncoder

_MODELS = ("dot", "dot_bias", "nn", "autorec", "gibbs")


@dataclasses.dataclass(frozen=True)
class Recipe:
    """How to train one recommender (all fields have defaults).

    Attributes:
        model: ``"dot"``, ``"dot_bias"``, ``"nn"``, ``"autorec"`` (trained
            on rows of the rating matrix: ``epochs`` and ``batch_size``
            count items, ``hidden[0]`` and ``dropout[0]`` apply) or
            ``"gibbs"`` (a Bayesian dot_bias sampled by
            ``kerasdl.collab.gibbs.fit_gibbs`` with ``n_factors`` per
            sample, ``noise`` and ``noise_prior``; only those, ``seeds``
            and ``weight`` apply).
        n_factors: int. Embedding length.
        y_range: (low, high) or None. Output squashing (not for ``dot``).
        l2: float or None. L2 on whole factor tables (autorec: on its
            two kernels).
        l2_per_rating: float or None. L2 on looked-up factors per rating.
        weight_decay: float or None. Decoupled weight decay (AdamW).
        lr: float. Peak learning rate.
        epochs: int.
        batch_size: int.
        one_cycle: bool. One-cycle learning rate (else a constant rate).
        cycle_momentum: bool. With ``one_cycle``, train through
            ``kerasdl.fit_one_cycle`` (beta_1 cycled 0.95-0.85-0.95
            by a callback); otherwise the rate alone follows
            ``OneCycleSchedule`` inside the compiled step (beta_1 0.9).
        hidden: tuple of int. Hidden units of ``nn``.
        dropout: (float, float). Dropout of ``nn``.
        seeds: int. Models trained with seeds ``seed .. seed+seeds-1`` and
            averaged.
        weight: float. This member's share of an ensemble's average
            (split evenly over its seeds).
        noise: str. ``gibbs`` only: ``fit_gibbs``'s noise model.
        noise_prior: float. ``gibbs`` only: ``fit_gibbs``'s noise_prior.
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
    cycle_momentum: bool = False
    hidden: tuple = (70,)
    dropout: tuple = (0.3, 0.75)
    seeds: int = 1
    weight: float = 1.0
    noise: str = "user+item"
    noise_prior: float = 10.0

    def __post_init__(self):
        if self.model not in _MODELS:
            raise ValueError(f"`model` must be one of {_MODELS}. Received: "
                             f"model={self.model!r}.")
        for name in ("n_factors", "epochs", "batch_size", "seeds"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"`{name}` must be a positive integer. "
                                 f"Received: {name}={value!r}.")


# The 2017 lesson: Adam 1e-3, l2(1e-4) on the factor tables, batch 64, and
# the notebook's epoch counts (dot 1+3+6, dot_bias 1+6+10+5, nn 8). The
# notebook also set model.optimizer.lr between fits, which Keras 1 ignored
# (REFERENCE.md), so 1e-3 throughout is what actually ran.
_LESSON = dict(l2=1e-4, lr=1e-3, batch_size=64)
# Tuned: y_range through a sigmoid, AdamW (decoupled weight decay 0.4),
# one-cycle rate to a peak of 1e-2 over 5 epochs at batch 1024.
_DOT_BIAS = Recipe(model="dot_bias", y_range=(0.0, 5.5), weight_decay=0.4,
                   lr=1e-2, epochs=5, batch_size=1024, one_cycle=True)
_NN = Recipe(model="nn", y_range=(0.0, 5.5), weight_decay=0.4, lr=1e-2,
             epochs=5, batch_size=1024, one_cycle=True)
# I-AutoRec (one hidden layer of 500 over each item's column of ratings).
_AUTOREC = Recipe(model="autorec", hidden=(500,), dropout=(0.5,), l2=0.01,
                  lr=3e-3, epochs=100, batch_size=128, seeds=4, weight=0.4)
RECIPES = {
    "lesson_dot": (Recipe(model="dot", epochs=10, **_LESSON),),
    "lesson_dot_bias": (Recipe(model="dot_bias", epochs=22, **_LESSON),),
    "lesson_nn": (Recipe(model="nn", epochs=8, **_LESSON),),
    "dot": (Recipe(model="dot", epochs=10, **_LESSON),),
    "dot_bias": (_DOT_BIAS,),
    "nn": (_NN,),
    # The Bayesian dot_bias of kerasdl.collab.gibbs (k=10 per sample,
    # a noise precision per user and per item): one model, no training.
    "gibbs": (Recipe(model="gibbs", n_factors=10),),
    # Chosen on a validation split carved from u1.base (its first 16,000
    # ratings in u.data order, as mku.sh carves u1.test from u.data):
    # 8 seeds of dot_bias, 2 of nn and 4 of I-AutoRec, weights
    # 0.45/0.15/0.4 (least squares on validation gave 0.48/0.13/0.41).
    # Validation RMSE 0.8974; every member trained by gradient descent.
    "dot_bias8": (dataclasses.replace(_DOT_BIAS, seeds=8),),
    "best_trained": (dataclasses.replace(_DOT_BIAS, seeds=8, weight=0.45),
                     dataclasses.replace(_NN, seeds=2, weight=0.15),
                     _AUTOREC),
    # On the same validation split: the gibbs model 0.9039, the four
    # I-AutoRec 0.9238, best_trained 0.8974, and gibbs 0.6 + I-AutoRec 0.4
    # 0.8904 (0.5: 0.8915, 0.7: 0.8911; adding dot_bias8 at 0.1: 0.8904).
    "best": (Recipe(model="gibbs", n_factors=10, weight=0.6),
             dataclasses.replace(_AUTOREC, weight=0.4)),
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
    """Builds the untrained ``keras.Model`` a ``Recipe`` describes.

    Raises:
        ValueError: a ``gibbs`` recipe, whose model comes from sampling
            (``fit_recipe`` makes it).
    """
    from kerasdl.models import collab

    if r.model == "gibbs":
        raise ValueError("a gibbs recipe has no untrained model: its "
                         "dot_bias model is the posterior mean that "
                         "fit_recipe samples.")
    if r.model == "autorec":
        from kerasdl.models.autorec import autorec

        return autorec(n_users, n_items, hidden=r.hidden[0],
                       dropout=r.dropout[0], l2=r.l2)
    common = dict(l2=r.l2, l2_per_rating=r.l2_per_rating)
    if r.model == "dot":
        return collab.dot(n_users, n_items, r.n_factors, **common)
    if r.model == "dot_bias":
        return collab.dot_bias(n_users, n_items, r.n_factors,
                               y_range=r.y_range, **common)
    return collab.collab_nn(n_users, n_items, r.n_factors, hidden=r.hidden,
                            dropout=r.dropout, y_range=r.y_range, **common)


def make_encoders(ratings):
    """``(users, items)``: ``IdEncoder`` over every id of ``ratings``."""
    return (IdEncoder(ratings["user"].to_numpy(), "user"),
            IdEncoder(ratings["item"].to_numpy(), "item"))


def fit_recipe(recipes, train, users, items, *, rating_range, titles=None,
               seed=0, steps_per_execution=1, on_device=False, verbose=0):
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
        on_device: bool. Run each epoch as one device program
            (``kerasdl.collab.on_device.fit_on_device``), for speed; JAX
            only (other backends raise).
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
    models, weights = [], []
    for r in recipes:
        for k in range(r.seeds):
            keras.utils.set_random_seed(seed + k)
            if r.model == "gibbs":
                models.append(_sample_gibbs(r, x, y, users, items,
                                            rating_range, seed + k))
                weights.append(r.weight / r.seeds)
                continue
            model = build_model(r, len(users), len(items))
            if r.model == "autorec":
                _fit_rows(model, r, x, y, steps_per_execution, verbose)
            else:
                _fit_pairs(model, r, x, y, steps_per_execution, on_device,
                           seed + k, verbose)
            models.append(model)
            weights.append(r.weight / r.seeds)
    return CollabModel(models, users, items, seen_users=train["user"],
                       seen_items=train["item"], mean=float(y.mean()),
                       rating_range=rating_range, titles=titles,
                       weights=weights,
                       user_means=train.groupby("user")["rating"].mean(),
                       item_means=train.groupby("item")["rating"].mean())


def _sample_gibbs(r, x, y, users, items, rating_range, seed):
    """The posterior-mean dot_bias ``keras.Model`` of a ``gibbs`` recipe."""
    from kerasdl.collab.gibbs import fit_gibbs

    sampled = fit_gibbs(x["user"], x["item"], y.astype(np.float64),
                        len(users), len(items), n_factors=r.n_factors,
                        noise=r.noise, noise_prior=r.noise_prior, seed=seed,
                        rating_range=rating_range)
    return sampled.to_keras()


def _optimizer(r, steps, scheduled=True):
    import keras

    from kerasdl.training.schedules import OneCycleSchedule

    lr = OneCycleSchedule(r.lr, steps) if (r.one_cycle and scheduled) \
        else r.lr
    if r.weight_decay:
        return keras.optimizers.AdamW(lr, weight_decay=r.weight_decay)
    return keras.optimizers.Adam(lr)


def _fit_pairs(model, r, x, y, steps_per_execution, on_device, seed,
               verbose):
    steps = r.epochs * math.ceil(len(y) / r.batch_size)
    callback_free = (on_device or steps_per_execution > 1
                     or not r.cycle_momentum)
    model.compile(optimizer=_optimizer(r, steps, scheduled=callback_free),
                  loss="mse", steps_per_execution=steps_per_execution)
    if on_device:
        from kerasdl.collab.on_device import fit_on_device

        fit_on_device(model, x, y, batch_size=r.batch_size, epochs=r.epochs,
                      seed=seed)
    elif r.one_cycle and not callback_free:
        from kerasdl.training.fit import fit_one_cycle

        fit_one_cycle(model, x=x, y=y, epochs=r.epochs, lr_max=r.lr,
                      batch_size=r.batch_size, verbose=verbose)
    else:
        model.fit(x, y, batch_size=r.batch_size, epochs=r.epochs,
                  verbose=verbose)


def _fit_rows(model, r, x, y, steps_per_execution, verbose):
    """I-AutoRec training: each example is one item's row of ratings."""
    from kerasdl.models.autorec import masked_squared_error
    from kerasdl.models.autorec import row_model
    from kerasdl.models.autorec import set_rating_table

    table = set_rating_table(model, x["user"], x["item"], y)
    rows = table[np.flatnonzero(table.any(axis=1))]  # items with ratings
    steps = r.epochs * math.ceil(len(rows) / r.batch_size)
    trainer = row_model(model)
    trainer.compile(optimizer=_optimizer(r, steps), loss=masked_squared_error,
                    steps_per_execution=steps_per_execution)
    trainer.fit(rows, rows, batch_size=r.batch_size, epochs=r.epochs,
                verbose=verbose)
