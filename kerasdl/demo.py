"""The main job on the bundled sample: what ``kerasdl demo`` runs.

Each step is a function ``step(seed, quick) -> list of rows``; a row is a
dict with ``model``, ``params``, ``metric``, ``value`` and ``seconds``
(and optionally ``note``). Later capabilities add steps to ``STEPS``.
"""

import time


def train_baselines(seed=0, quick=False):
    """Trains linear_bn and conv_bn on the bundled Fashion-MNIST sample."""
    import keras
    import numpy as np

    from kerasdl.data.datasets import load_fashion_sample
    from kerasdl.models import conv_bn
    from kerasdl.models import linear_bn
    from kerasdl.models import param_counts

    (x, y), (xv, yv), _ = load_fashion_sample()
    x, xv = x.astype("float32"), xv.astype("float32")
    if quick:
        x, y = x[:1000], y[:1000]
    epochs = 3 if quick else 4
    rows = []
    for name, build in (("linear_bn", linear_bn), ("conv_bn", conv_bn)):
        keras.utils.set_random_seed(seed)
        model = build(x.shape[1:], 10)
        model.compile(optimizer=keras.optimizers.Adam(1e-3),
                      loss="sparse_categorical_crossentropy",
                      metrics=["accuracy"])
        start = time.perf_counter()
        model.fit(x, y, batch_size=64, epochs=epochs, verbose=0)
        _, acc = model.evaluate(xv, yv, batch_size=256, verbose=0)
        seconds = time.perf_counter() - start
        rows.append({
            "step": "baselines", "model": name,
            "params": param_counts(model)[0], "metric": "val_accuracy",
            "value": float(np.round(acc, 4)), "seconds": round(seconds, 1),
            "note": f"Fashion-MNIST sample, {len(x)} train / {len(xv)} "
                    f"valid, Adam 1e-3, {epochs} epochs",
        })
    return rows


def train_recommender(seed=0, quick=False):
    """Trains dot_bias on a generated ratings sample (lesson 4)."""
    import numpy as np

    from kerasdl.collab.evaluate import run_split
    from kerasdl.collab.sample import generate_ratings
    from kerasdl.collab.recipes import Recipe
    from kerasdl.data.ratings import MovieLens
    from kerasdl.models import param_counts

    n_users, n_items = (200, 150) if quick else (500, 300)
    ratings, titles = generate_ratings(n_users, n_items, density=0.15,
                                       seed=seed)
    data = MovieLens(ratings, titles, "generated", "<generated>",
                     (1.0, 5.0))
    small = Recipe(model="dot_bias", y_range=(0.5, 5.5), lr=3e-2,
                   weight_decay=0.1, epochs=8, batch_size=256,
                   one_cycle=True)
    rows, model = run_split(data, f"random:{seed}", (small,), seed=seed)
    row = rows[0]
    baseline = float(np.sqrt(np.mean(
        (ratings["rating"].to_numpy() - model.mean) ** 2)))
    return [{
        "step": "recommender", "model": "dot_bias",
        "params": param_counts(model.models[0])[0], "metric": "rmse",
        "value": round(row["rmse"], 4), "seconds": row["seconds"],
        "note": f"GENERATED ratings sample ({len(ratings):,} ratings, "
                f"{n_users} users, {n_items} items, hidden factors + noise, "
                f"not real data), split {row['split']}, dot_bias 8 epochs "
                f"one-cycle; predicting the mean gives RMSE {baseline:.2f}",
    }]


STEPS = [train_baselines]
STEPS.append(train_recommender)


def run_demo(seed=0, quick=False):
    """Runs every step and returns all rows.

    Example:

    >>> rows = run_demo(quick=True)  # doctest: +SKIP
    >>> sorted(rows[0])  # doctest: +SKIP
    ['metric', 'model', 'note', 'params', 'seconds', 'step', 'value']

    Args:
        seed: int. Seed for weights and shuffling. Defaults to 0.
        quick: bool. Fewer examples and epochs, for tests.

    Returns:
        A list of row dicts.

    Raises:
        TypeError: ``seed`` is not an integer.
        ValueError: ``seed`` is negative or above 2**32 - 1.
    """
    from kerasdl import _validate

    _validate.integer(seed, "seed", low=0, high=2 ** 32 - 1)
    rows = []
    for step in STEPS:
        rows.extend(step(seed=seed, quick=quick))
    return rows


def format_table(rows):
    """Formats rows as a fixed-width text table."""
    header = ("step", "model", "params", "validation", "seconds")
    lines = [
        (r["step"], r["model"], f"{r['params']:,}",
         f"{r['metric']} {r['value']:.4f}", f"{r['seconds']:.1f}")
        for r in rows
    ]
    widths = [max(len(h), *(len(line[i]) for line in lines))
              for i, h in enumerate(header)]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    out = [fmt.format(*header), fmt.format(*("-" * w for w in widths))]
    out += [fmt.format(*line) for line in lines]
    notes = sorted({r["note"] for r in rows if r.get("note")})
    out += [""] + [f"* {n}" for n in notes]
    return "\n".join(out)


def find_learning_rate(seed=0, quick=False):
    """LR finder on linear_bn, then one-cycle training at its suggestion."""
    import keras

    from kerasdl.training.lr_finder import lr_find
    from kerasdl.data.datasets import load_fashion_sample
    from kerasdl.models import linear_bn
    from kerasdl.models import param_counts
    from kerasdl.training.fit import fit_one_cycle

    (x, y), (xv, yv), _ = load_fashion_sample()
    x, xv = x.astype("float32"), xv.astype("float32")
    if quick:
        x, y = x[:1000], y[:1000]
    epochs = 1 if quick else 2
    keras.utils.set_random_seed(seed)
    model = linear_bn(x.shape[1:], 10)
    model.compile(optimizer=keras.optimizers.Adam(),
                  loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    start = time.perf_counter()
    found = lr_find(model, (x, y), batch_size=64, seed=seed)
    fit_one_cycle(model, (x, y), epochs, found.valley, batch_size=64,
                  verbose=0)
    _, acc = model.evaluate(xv, yv, batch_size=256, verbose=0)
    return [{
        "step": "lr_find", "model": "linear_bn",
        "params": param_counts(model)[0], "metric": "val_accuracy",
        "value": round(float(acc), 4),
        "seconds": round(time.perf_counter() - start, 1),
        "note": f"lr_find on the Fashion-MNIST sample: valley "
                f"{found.valley:.1e} ({found.stop_reason}), then "
                f"fit_one_cycle {epochs} epoch(s) at it",
    }]


STEPS.append(find_learning_rate)
