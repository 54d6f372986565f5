r"""Scores recipes on the validation split carved from u1.base (never on
u1.test): how the ``best`` recipe's members and weights were chosen.

    KERAS_BACKEND=jax python bench/collab_validate.py \
        --data ../shared/data/ml-100k

The validation split applies mku.sh's rule again inside u1.base: u1.base is
rows 20,000-99,999 of u.data, so validation = rows 20,000-35,999 (the
first 20% of u1.base in file order) and training = rows 36,000-99,999.
Prints one JSON line per recipe (RMSE of each member and of the weighted
average) and one for the least-squares weights of the members.
"""

import argparse
import json
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", required=True, help="the ml-100k folder")
    p.add_argument("--recipes", default="dot_bias,dot_bias8,best")
    args = p.parse_args(argv)

    import numpy as np

    from kerasdl.collab import recipes as train
    from kerasdl.data.ratings import read_movielens

    data = read_movielens(args.data)
    ratings = data.ratings
    fit, valid = ratings.iloc[36_000:], ratings.iloc[20_000:36_000]
    users, items = train.make_encoders(ratings)
    y = valid["rating"].to_numpy()
    for name in args.recipes.split(","):
        members = []
        for r in train.recipe(name):
            model = train.fit_recipe(r, fit, users, items,
                                     rating_range=data.rating_range)
            members.append(model.predict(valid["user"], valid["item"],
                                         unknown="mean"))
        weights = np.array([r.weight for r in train.recipe(name)])
        blend = np.stack(members, 1) @ (weights / weights.sum())
        rmse = [float(np.sqrt(np.mean((m - y) ** 2))) for m in members]
        row = {"recipe": name, "split": "u1.base rows 20000-35999 of u.data",
               "member_rmse": [round(v, 4) for v in rmse],
               "rmse": round(float(np.sqrt(np.mean((blend - y) ** 2))), 4)}
        if len(members) > 1:
            lsq = np.linalg.lstsq(np.stack(members, 1), y, rcond=None)[0]
            row["least_squares_weights"] = [round(float(w), 3) for w in lsq]
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
