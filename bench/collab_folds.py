r"""How hard each ml-100k split is, for a model that cannot be tuned to it.

    python bench/collab_folds.py --data ../shared/data/ml-100k

For u1..u5 and random:0/1 prints one JSON line: the RMSE of a bias-only
predictor with fixed shrinkage (``mean + b_user + b_item``, 15 alternating
passes, item biases shrunk by 25 pseudo-ratings, user biases by 10, clipped
to 1..5; unseen ids get 0 bias), the number of test users and the median
number of training ratings of those users.
"""

import argparse
import json
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def bias_only_rmse(train, test, item_shrink=25.0, user_shrink=10.0,
                   passes=15):
    """RMSE on ``test`` of shrunk user and item biases fitted on ``train``."""
    import numpy as np

    from kerasdl.data.ratings import IdEncoder

    users = IdEncoder(np.concatenate([train["user"], test["user"]]))
    items = IdEncoder(np.concatenate([train["item"], test["item"]]))
    u, i = users.encode(train["user"]), items.encode(train["item"])
    r = train["rating"].to_numpy(np.float64)
    mu = r.mean()
    n_u = np.bincount(u, minlength=len(users))
    n_i = np.bincount(i, minlength=len(items))
    b_u, b_i = np.zeros(len(users)), np.zeros(len(items))
    for _ in range(passes):
        b_i = np.bincount(i, r - mu - b_u[u], len(items)) / (n_i + item_shrink)
        b_u = np.bincount(u, r - mu - b_i[i], len(users)) / (n_u + user_shrink)
    pred = (mu + b_u[users.encode(test["user"])]
            + b_i[items.encode(test["item"])])
    err = np.clip(pred, 1, 5) - test["rating"].to_numpy(np.float64)
    return float(np.sqrt(np.mean(err ** 2)))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", required=True, help="the ml-100k folder")
    p.add_argument("--splits", default="u1,u2,u3,u4,u5,random:0,random:1")
    args = p.parse_args(argv)

    from kerasdl.collab import folds as splits
    from kerasdl.data.ratings import read_movielens

    data = read_movielens(args.data)
    for name in args.splits.split(","):
        for part in splits.get_splits(data, name):
            per_user = part.train.groupby("user").size()
            test_users = part.test["user"].unique()
            print(json.dumps({
                "split": part.name, "bias_only_rmse": round(
                    bias_only_rmse(part.train, part.test), 4),
                "test_users": int(len(test_users)),
                "median_train_ratings_of_test_users": float(
                    per_user.reindex(test_users).fillna(0).median())}),
                flush=True)


if __name__ == "__main__":
    main()
