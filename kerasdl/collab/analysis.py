"""Reading a trained recommender: item biases, principal components of the
item factors, a scatter plot, and top-k recommendations.

All functions take a ``CollabModel``. Biases and factors are read from its
first Keras model (the factor spaces of several models are not aligned, so
they are never averaged); recommendations use the whole ensemble.
"""

import numpy as np

from kerasdl import _files
from kerasdl import _validate
from kerasdl.collab.learner import CollabModel


def _check_model(model):
    if not isinstance(model, CollabModel):
        raise TypeError(f"`model` must be a CollabModel (as fit_recipe "
                        f"returns). Received: {type(model).__name__}.")


def _check_ratings(ratings, columns):
    found = getattr(ratings, "columns", None)
    if found is None:
        raise TypeError(f"`ratings` must be a DataFrame with columns "
                        f"{list(columns)}. Received: "
                        f"{type(ratings).__name__}.")
    missing = [c for c in columns if c not in found]
    if missing:
        raise ValueError(f"`ratings` must have columns {list(columns)}; "
                         f"{missing} missing (it has {list(found)}).")


def _count(value, name, hint=None):
    return _validate.integer(value, name, low=1, hint=hint)


def _layer_weights(model, name):
    keras_model = model.models[0]
    try:
        layer = keras_model.get_layer(name)
    except ValueError:
        raise ValueError(
            f"model {keras_model.name!r} has no layer {name!r}; item biases "
            f"need dot_bias, factors need an item_factors embedding.") \
            from None
    return np.asarray(layer.get_weights()[0])


def most_rated(ratings, n):
    """Raw ids of the ``n`` most rated items of ``ratings`` (ties: by id).

    Raises:
        TypeError: ``ratings`` not a DataFrame, ``n`` not an integer.
        ValueError: no ``item`` column, ``n < 1``.
    """
    _check_ratings(ratings, ("item",))
    n = _count(n, "n")
    counts = ratings.groupby("item").size()
    counts = counts.sort_index().sort_values(ascending=False, kind="stable")
    return counts.index.to_numpy()[:n]


def bias_ranking(model, ratings, *, top_n=2000, k=15):
    """Items ranked by learned bias, among the ``top_n`` most rated.

    Example:

    >>> low, high = bias_ranking(model, train, k=3)  # doctest: +SKIP
    >>> high[0]  # doctest: +SKIP
    ('Shawshank Redemption, The (1994)', 0.91)

    Args:
        model: a ``CollabModel`` built on ``dot_bias``.
        ratings: DataFrame used to count ratings per item (the training
            data).
        top_n: int. Only the most rated items are ranked (rare items get
            extreme biases from a few votes).
        k: int. How many at each end.

    Returns:
        ``(lowest, highest)``: lists of ``(title, bias)``, lowest first and
        highest first.

    Raises:
        TypeError: arguments of the wrong type.
        ValueError: the model has no ``item_bias`` layer, ``top_n`` or
            ``k`` < 1.
    """
    _check_model(model)
    _check_ratings(ratings, ("item",))
    top_n, k = _count(top_n, "top_n"), _count(k, "k")
    bias = _layer_weights(model, "item_bias")[:, 0]
    items = most_rated(ratings, top_n)
    values = bias[model.items.encode(items)]
    order = np.argsort(values, kind="stable")
    pairs = [(model.title(items[j]), float(values[j])) for j in order]
    return pairs[:k], pairs[::-1][:k]


def factor_pca(model, ratings, *, top_n=2000, n_components=3, k=10):
    """Principal components of the item factors of the most rated items.

    Each component's sign is fixed so that its largest coordinate is
    positive, so the ends are the same from run to run on the same weights.

    Args:
        model: a ``CollabModel`` with an ``item_factors`` embedding.
        ratings: DataFrame used to pick the ``top_n`` most rated items.
        top_n: int. Items kept.
        n_components: int. Components kept.
        k: int. Titles listed at each end of each component.

    Returns:
        A dict with ``items`` (raw ids), ``titles``, ``coords`` (array
        ``(len(items), n_components)``), ``explained`` (variance ratio per
        component) and ``ends``: per component ``(lowest, highest)`` lists
        of ``(title, coordinate)``.

    Raises:
        TypeError: arguments of the wrong type.
        ValueError: no ``item_factors`` layer, ``top_n``, ``k`` or
            ``n_components`` < 1, more components than items or factors.
    """
    _check_model(model)
    _check_ratings(ratings, ("item",))
    top_n, k = _count(top_n, "top_n"), _count(k, "k")
    n_components = _count(n_components, "n_components")
    factors = _layer_weights(model, "item_factors")
    items = most_rated(ratings, top_n)
    x = factors[model.items.encode(items)].astype(np.float64)
    if n_components > min(x.shape):
        raise ValueError(
            f"`n_components` must be at most {min(x.shape)} here (items x "
            f"factors = {x.shape}). Received: n_components={n_components}.")
    x = x - x.mean(axis=0)
    _, s, vt = np.linalg.svd(x, full_matrices=False)
    coords = x @ vt[:n_components].T
    flip = np.sign(coords[np.abs(coords).argmax(axis=0),
                          np.arange(n_components)])
    coords = coords * np.where(flip == 0, 1, flip)
    titles = [model.title(i) for i in items]
    ends = []
    for c in range(n_components):
        order = np.argsort(coords[:, c], kind="stable")
        ends.append(([(titles[j], float(coords[j, c])) for j in order[:k]],
                     [(titles[j], float(coords[j, c]))
                      for j in order[::-1][:k]]))
    return {"items": items, "titles": titles, "coords": coords,
            "explained": (s[:n_components] ** 2 / (s ** 2).sum()),
            "ends": ends}


def plot_factors(pca, path, *, components=(0, 1), n=50):
    """Scatter plot of ``n`` items on two principal components, with titles.

    The PNG appears complete or not at all (written to a temporary file,
    then renamed).

    Args:
        pca: the dict ``factor_pca`` returns.
        path: str. Where to write the PNG.
        components: (int, int). The two components to plot.
        n: int. How many of the items (the most rated first) to label.

    Returns:
        ``path``.

    Raises:
        TypeError: arguments of the wrong type.
        ValueError: ``path`` a folder or in a missing folder, components
            not two different ones of ``pca``, ``n < 1``.
    """
    coords = pca.get("coords") if isinstance(pca, dict) else None
    if coords is None or "titles" not in pca:
        raise TypeError("`pca` must be the dict factor_pca returns.")
    path = _validate.output_file(path, "path")
    n = _count(n, "n")
    if isinstance(components, (str, bytes)) or not isinstance(
            components, (tuple, list)) or len(components) != 2:
        raise TypeError(f"`components` must be two component indices such "
                        f"as (0, 1). Received: components={components!r}.")
    high = np.shape(coords)[1] - 1
    a, b = (_validate.integer(c, f"components[{i}]", low=0, high=high)
            for i, c in enumerate(components))
    if a == b:
        raise ValueError(f"`components` must be two different components. "
                         f"Received: components={components!r}.")
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    xy = pca["coords"][:n][:, [a, b]]
    fig, ax = plt.subplots(figsize=(12, 12))
    ax.scatter(xy[:, 0], xy[:, 1], s=8)
    for (x, y), title in zip(xy, pca["titles"][:n]):
        ax.annotate(title, (x, y), fontsize=7)
    ax.set_xlabel(f"component {a + 1}")
    ax.set_ylabel(f"component {b + 1}")
    try:
        with _files.atomic_path(path) as tmp:
            with open(tmp, "wb") as f:
                fig.savefig(f, format="png", dpi=80)
    finally:
        plt.close(fig)
    return path


def recommend(model, user, ratings, *, k=10):
    """Top-``k`` items for a user, leaving out what the user already rated.

    Only items seen in training are candidates.

    Args:
        model: a ``CollabModel``.
        user: a raw user id seen in training.
        ratings: DataFrame of the ratings known for users (the items the
            user rated here are left out).
        k: int. How many items.

    Returns:
        A list of ``(item id, title, predicted rating)``, best first.

    Raises:
        TypeError: arguments of the wrong type (``k=2.5``).
        ValueError: the user had no ratings in training, ``k < 1``.
    """
    _check_model(model)
    _check_ratings(ratings, ("user", "item"))
    k = _count(k, "k", hint="It is how many items to recommend; try 10.")
    u = model.users.encode([user], unknown="mark")[0]
    if u < 0 or not model.seen_users[u]:
        raise ValueError(
            f"user id {user!r} had no ratings in training; recommendations "
            f"need a known user. Known users are the training data's.")
    rated = ratings.loc[ratings["user"] == user, "item"].to_numpy()
    candidates = np.flatnonzero(model.seen_items)
    candidates = candidates[~np.isin(model.items.decode(candidates), rated)]
    scores = model.predict_indices(np.full(len(candidates), u), candidates)
    best = np.argsort(-scores, kind="stable")[:k]
    ids = model.items.decode(candidates[best])
    return [(i.item(), model.title(i.item()), float(s))
            for i, s in zip(ids, scores[best])]
