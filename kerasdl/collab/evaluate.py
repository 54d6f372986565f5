"""Train a recipe on a named split and score it: RMSE and MAE, always with
the split's name."""

import dataclasses
import time

import numpy as np

from kerasdl import _validate
from kerasdl.collab import folds as _splits
from kerasdl.collab import recipes as _train


def run_split(data, split, recipe="dot_bias", *, epochs=None, seed=0,
              steps_per_execution=1, verbose=0):
    """Trains ``recipe`` on each part of ``split`` and scores it.

    Ids are encoded over all of ``data`` (every user and item gets an
    embedding row, as in the course); test pairs whose user or item has no
    training rating are predicted by the training mean and counted in
    ``fallback``.

    Example:

    >>> rows, model = run_split(data, "u1", "dot_bias")  # doctest: +SKIP
    >>> rows[0]["split"], round(rows[0]["rmse"], 3)  # doctest: +SKIP
    ('u1', 0.905)

    Args:
        data: a ``kerasdl.data.ratings.MovieLens`` record.
        split: str. A split name (``kerasdl.collab.folds``).
        recipe: str or tuple of ``Recipe``. A name in ``RECIPES`` or the
            recipes themselves.
        epochs: int or None. Overrides every member's epochs.
        seed: int. First seed for weights and shuffling.
        steps_per_execution: int. Passed to ``compile``.
        verbose: int. Passed to ``fit``.

    Returns:
        ``(rows, model)``: one dict per part with ``split``, ``note``,
        ``recipe``, ``rmse``, ``mae``, ``n``, ``fallback``, ``train``,
        ``seconds``; plus the ``CollabModel`` of the last part.

    Raises:
        TypeError: ``epochs``, ``seed`` or ``steps_per_execution`` is not
            an integer.
        ValueError: an unknown split or recipe, ``epochs < 1``,
            ``seed < 0`` or ``steps_per_execution < 1``.
    """
    if epochs is not None:
        _validate.integer(epochs, "epochs", low=1)
    _validate.integer(seed, "seed", low=0)
    _validate.integer(steps_per_execution, "steps_per_execution", low=1)
    name = recipe if isinstance(recipe, str) else "custom"
    recipes = _train.recipe(recipe) if isinstance(recipe, str) else recipe
    if epochs is not None:
        recipes = tuple(dataclasses.replace(r, epochs=epochs)
                        for r in recipes)
    users, items = _train.make_encoders(data.ratings)
    rows, model = [], None
    for part in _splits.get_splits(data, split):
        start = time.perf_counter()
        model = _train.fit_recipe(
            recipes, part.train, users, items,
            rating_range=data.rating_range, titles=data.titles, seed=seed,
            steps_per_execution=steps_per_execution, verbose=verbose)
        scores = model.evaluate(part.test)
        rows.append({"split": part.name, "note": part.note, "recipe": name,
                     "train": len(part.train), **scores,
                     "seconds": round(time.perf_counter() - start, 1)})
    return rows, model


def summarize(rows):
    """Mean and spread of RMSE over several parts (for 5-fold).

    Args:
        rows: list of dicts from ``run_split``, at least one.

    Returns:
        A dict with ``split`` (the parts' names joined by ``+``), ``rmse``
        (mean), ``rmse_min``, ``rmse_max`` and ``mae`` (mean).

    Raises:
        ValueError: no rows, or a row whose score is not a finite number.
    """
    rows = list(rows)
    if not rows:
        raise ValueError("`rows` must hold at least one scored part (from "
                         "run_split). Received: rows=[].")
    for key in ("rmse", "mae"):
        _validate.finite_array(np.array([r[key] for r in rows], float),
                               f"rows' {key}")
    rmse = np.array([r["rmse"] for r in rows])
    mae = np.array([r["mae"] for r in rows])
    return {"split": "+".join(r["split"] for r in rows),
            "rmse": float(rmse.mean()), "rmse_min": float(rmse.min()),
            "rmse_max": float(rmse.max()), "mae": float(mae.mean())}
