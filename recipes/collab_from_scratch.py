"""Collaborative filtering from scratch: embeddings as a one-hot times a
matrix, then dot product + biases + y_range in plain keras.ops, trained on
MovieLens with and without weight decay (lesson 4 of 2017, lesson 5 of
2019), beside kerasdl.dot_bias.

- An embedding is a matrix indexed by row: one_hot(user) @ U equals
  keras.layers.Embedding with U as its weights (and keras.ops.take).
- rating = low + (high - low) * sigmoid(u . i + b_u + b_i), with
  (low, high) = (0, 5.5).
- Weight decay adds wd * (sum(U^2) + sum(I^2)) to the loss of every batch
  (Keras' L2 regularizer on the factor tables, as kerasdl.dot_bias does).

Both models start from the same weights and see the same batches. On JAX
their RMSEs are the same to every printed digit; on TensorFlow Adam gets
the Embedding layer's gradient as sparse rows and squares each before
adding up the rows of a user or film repeated in a batch, so the two
differ in the third decimal. The check asserts that the forward pass and
the penalty are the same numbers and the validation RMSEs within 0.02.

    python recipes/collab_from_scratch.py --data path/to/ml-latest-small
    python recipes/collab_from_scratch.py --data ... --check   # 1 epoch

Without ``--data`` ml-latest-small is downloaded (needs internet).
"""

import argparse
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

Y_RANGE = (0.0, 5.5)


def one_hot_lookup_equals_embedding(n_users, n_factors, seed=0):
    """The largest gap between one_hot(ids) @ U, keras.ops.take(U, ids)
    and keras.layers.Embedding with weights U."""
    import keras
    from keras import ops

    rng = np.random.default_rng(seed)
    table = rng.normal(size=(n_users, n_factors)).astype("float32")
    ids = rng.integers(0, n_users, 16).astype("int32")
    by_matmul = ops.matmul(ops.one_hot(ids, n_users), table)
    by_take = ops.take(table, ids, axis=0)
    layer = keras.layers.Embedding(n_users, n_factors)
    layer.build((None,))
    layer.set_weights([table])
    by_layer = layer(ids)
    a, b, c = (np.asarray(ops.convert_to_numpy(t)) for t in
               (by_matmul, by_take, by_layer))
    return float(max(np.abs(a - b).max(), np.abs(a - c).max()))


def plain_dot_bias(n_users, n_items, n_factors, wd):
    """Dot product + biases + y_range as a keras.Model written in
    keras.ops (no Embedding, no Dot layer)."""
    import keras
    from keras import ops

    class DotBias(keras.Model):
        def __init__(self):
            super().__init__(name="plain_dot_bias")
            normal = keras.initializers.RandomNormal(stddev=0.01)
            self.users = self.add_weight((n_users, n_factors), normal,
                                         name="users")
            self.items = self.add_weight((n_items, n_factors), normal,
                                         name="items")
            self.user_bias = self.add_weight((n_users,), "zeros",
                                             name="user_bias")
            self.item_bias = self.add_weight((n_items,), "zeros",
                                             name="item_bias")

        def call(self, inputs):
            u, i = inputs["user"], inputs["item"]
            dot = ops.sum(ops.take(self.users, u, axis=0)
                          * ops.take(self.items, i, axis=0), axis=-1)
            x = dot + ops.take(self.user_bias, u) + ops.take(
                self.item_bias, i)
            low, high = Y_RANGE
            if wd:
                self.add_loss(wd * (ops.sum(ops.square(self.users))
                                    + ops.sum(ops.square(self.items))))
            return (low + (high - low) * ops.sigmoid(x))[:, None]

    model = DotBias()
    model.build({"user": (None,), "item": (None,)})
    return model


def library_dot_bias(plain, n_users, n_items, n_factors, wd):
    """kerasdl.dot_bias with the plain model's weights."""
    import kerasdl

    model = kerasdl.dot_bias(n_users, n_items, n_factors, y_range=Y_RANGE,
                             l2=wd or None)
    model.get_layer("user_factors").set_weights([plain.users.numpy()])
    model.get_layer("item_factors").set_weights([plain.items.numpy()])
    model.get_layer("user_bias").set_weights(
        [plain.user_bias.numpy()[:, None]])
    model.get_layer("item_bias").set_weights(
        [plain.item_bias.numpy()[:, None]])
    return model


def penalty(model, inputs):
    """The weight-decay term the model adds to the loss of a batch."""
    from keras import ops

    model(inputs)
    return float(sum(float(ops.convert_to_numpy(x)) for x in model.losses))


def rmse(model, x, y):
    pred = model.predict(x, batch_size=4096, verbose=0)[:, 0]
    return float(np.sqrt(np.mean((pred - y) ** 2)))


def load(path, seed):
    import kerasdl

    data = kerasdl.read_movielens(path or kerasdl.fetch("ml-latest-small"))
    r = data.ratings
    users = kerasdl.IdEncoder(r["user"], "user")
    items = kerasdl.IdEncoder(r["item"], "item")
    x = {"user": users.encode(r["user"]), "item": items.encode(r["item"])}
    y = r["rating"].to_numpy("float32")
    valid = np.random.default_rng(seed).random(len(y)) < 0.2
    split = [({k: v[~m] for k, v in x.items()}, y[~m]) for m in (valid,)]
    split += [({k: v[valid] for k, v in x.items()}, y[valid])]
    return data, len(users), len(items), split


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", help="MovieLens folder (default: fetch "
                                       "ml-latest-small)")
    parser.add_argument("--epochs", type=int, default=None,
                        help="default 4, or 1 with --check")
    parser.add_argument("--factors", type=int, default=50)
    parser.add_argument("--wd", type=float, default=1e-4,
                        help="weight decay on the factor tables "
                             "(default 1e-4)")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--check", action="store_true",
                        help="assert the equalities; exit 1 on a mismatch")
    args = parser.parse_args(argv)
    epochs = args.epochs or (1 if args.check else 4)
    if epochs < 1 or args.factors < 1:
        parser.error("--epochs and --factors must be >= 1")
    if not args.wd > 0:
        parser.error(f"--wd must be > 0; received {args.wd}")
    if args.data and not os.path.isdir(args.data):
        parser.error(f"--data: no folder {args.data!r}")

    import keras

    data, n_users, n_items, ((x, y), (xv, yv)) = load(args.data, args.seed)
    print(f"{data.format}: {len(data.ratings):,} ratings, {n_users} users, "
          f"{n_items} items; {len(y):,} to train, {len(yv):,} to validate")
    gap = one_hot_lookup_equals_embedding(n_users, args.factors)
    print(f"one_hot(users) @ U vs keras.ops.take vs keras.layers.Embedding:"
          f" largest gap {gap:.1e}")

    failures, rows = [], []
    batch = {k: v[:256] for k, v in xv.items()}
    for wd in (0.0, args.wd):
        keras.utils.set_random_seed(args.seed)
        plain = plain_dot_bias(n_users, n_items, args.factors, wd)
        library = library_dot_bias(plain, n_users, n_items, args.factors, wd)
        forward = float(np.abs(plain.predict(batch, verbose=0)
                               - library.predict(batch, verbose=0)).max())
        penalties = (penalty(plain, batch), penalty(library, batch))
        scores = []
        for model in (plain, library):
            model.compile(keras.optimizers.Adam(5e-3), "mse")
            keras.utils.set_random_seed(args.seed)
            model.fit(x, y, batch_size=1024, epochs=epochs, verbose=0)
            scores.append((rmse(model, x, y), rmse(model, xv, yv)))
        rows.append((wd, *scores))
        if not forward < 1e-5:
            failures.append(f"wd={wd:g}: the plain model and dot_bias "
                            f"predict {forward:.1e} apart")
        if not np.isclose(*penalties, rtol=1e-4, atol=1e-9):
            failures.append(f"wd={wd:g}: penalties {penalties[0]:.6g} "
                            f"and {penalties[1]:.6g}")
        if not abs(scores[0][1] - scores[1][1]) < 0.02:
            failures.append(f"wd={wd:g}: validation RMSE {scores[0][1]:.4f}"
                            f" (plain) against {scores[1][1]:.4f}"
                            f" (dot_bias)")
    print(f"\nRMSE after {epochs} epoch(s), Adam 5e-3, batch 1024, "
          f"{args.factors} factors, y_range {Y_RANGE}:")
    print(f"{'weight decay':>12} {'plain train':>12} {'plain valid':>12} "
          f"{'dot_bias train':>15} {'dot_bias valid':>15}")
    for wd, (pt, pv), (lt, lv) in rows:
        print(f"{wd:12g} {pt:12.4f} {pv:12.4f} {lt:15.4f} {lv:15.4f}")
    if args.check:
        if not gap < 1e-5:
            failures.append("one-hot product != Embedding lookup")
        for failure in failures:
            print(f"CHECK FAILED: {failure}", file=sys.stderr)
        if failures:
            return 1
        print("check passed: one-hot @ U = Embedding; the plain keras.ops "
              "model = kerasdl.dot_bias (forward, penalty, RMSE)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
