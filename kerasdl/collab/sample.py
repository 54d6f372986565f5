"""A generated ratings sample (no licence needed): users and items drawn
from hidden factors and biases, ratings rounded to a 1-5 scale."""

import numpy as np
import pandas as pd


def generate_ratings(n_users=300, n_items=200, n_factors=4, density=0.1,
                     noise=0.5, seed=0):
    """Generates MovieLens-like ratings from a hidden biased factor model.

    ``rating = round(clip(3.5 + b_u + b_i + p_u . q_i + noise, 1, 5))`` for a
    random ``density`` share of the user-item pairs (every user and item
    gets at least one rating). Raw ids start at 1, as in MovieLens.

    Example:

    >>> ratings, titles = generate_ratings(50, 40, seed=0)
    >>> sorted(ratings.columns), bool(ratings["rating"].between(1, 5).all())
    (['item', 'rating', 'timestamp', 'user'], True)
    >>> titles[1]
    'generated item 1'

    Args:
        n_users: int. Number of users.
        n_items: int. Number of items.
        n_factors: int. Hidden factors.
        density: float in (0, 1]. Share of pairs rated.
        noise: float. Standard deviation of the rating noise.
        seed: int. Seed of ``numpy.random.default_rng``.

    Returns:
        ``(ratings, titles)``: a DataFrame with ``user``, ``item``,
        ``rating`` (float32), ``timestamp`` (the row number), shuffled, and
        a dict item id -> ``"generated item N"``.
    """
    if not 0 < density <= 1:
        raise ValueError(f"`density` must be in (0, 1]. Received: "
                         f"density={density!r}.")
    rng = np.random.default_rng(seed)
    p = rng.normal(0, 0.6, (n_users, n_factors))
    q = rng.normal(0, 0.6, (n_items, n_factors))
    bu = rng.normal(0, 0.4, n_users)
    bi = rng.normal(0, 0.5, n_items)
    mask = rng.random((n_users, n_items)) < density
    mask[np.arange(n_users), rng.integers(0, n_items, n_users)] = True
    mask[rng.integers(0, n_users, n_items), np.arange(n_items)] = True
    u, i = np.nonzero(mask)
    order = rng.permutation(len(u))
    u, i = u[order], i[order]
    score = (3.5 + bu[u] + bi[i] + np.sum(p[u] * q[i], axis=1)
             + rng.normal(0, noise, len(u)))
    ratings = pd.DataFrame({
        "user": u + 1, "item": i + 1,
        "rating": np.clip(np.round(score), 1, 5).astype(np.float32),
        "timestamp": np.arange(len(u), dtype=np.int64),
    })
    titles = {k: f"generated item {k}" for k in range(1, n_items + 1)}
    return ratings, titles
