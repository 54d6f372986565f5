r"""Scores ``fit_gibbs`` settings on two validation splits of u1.base (never
on u1.test): how the sampler's defaults were chosen.

    python bench/gibbs_validate.py --data ../shared/data/ml-100k \
        --variants shared/5/10,user/10/10,user+item/10/10 --seeds 0,1,2

A variant is ``NOISE/K/PRIOR`` (``fit_gibbs``'s ``noise``, ``n_factors``
and ``noise_prior``); burn-in 50 and 250 samples. The splits: ``random``
is a seeded (0) random 10% of u1.base against the other 90%; ``ordered``
is the first 8,000 u1.base rows in u.data order (u.data rows 20,000-27,999,
a block of the file like u1.test) against the rest of u1.base. Prints one
JSON line per variant, split and seed, then one per variant and split with
the mean over seeds.
"""

import argparse
import json
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def validation_splits(data):
    """``{"random": (train, valid), "ordered": (train, valid)}``."""
    import numpy as np

    from kerasdl.collab import folds as splits

    base = splits.get_splits(data, "u1")[0].train
    keep = np.random.default_rng(0).random(len(base)) < 0.9
    rows = data.ratings.iloc[20_000:]  # u1.base in u.data order
    return {"random": (base[keep], base[~keep]),
            "ordered": (rows.iloc[8_000:], rows.iloc[:8_000])}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", required=True, help="the ml-100k folder")
    p.add_argument("--variants", default="shared/5/10,user+item/10/10",
                   help="comma-separated NOISE/K/PRIOR")
    p.add_argument("--seeds", default="0", help="comma-separated seeds")
    args = p.parse_args(argv)

    import numpy as np

    from kerasdl.collab import recipes as train
    from kerasdl.data.ratings import read_movielens

    data = read_movielens(args.data)
    if data.format != "ml-100k":
        p.error(f"--data must be an ml-100k folder; found {data.format}")
    users, items = train.make_encoders(data.ratings)
    parts = validation_splits(data)
    seeds = [int(s) for s in args.seeds.split(",")]
    for variant in args.variants.split(","):
        try:
            noise, k, prior = variant.split("/")
            member = train.Recipe(model="gibbs", n_factors=int(k),
                                  noise=noise, noise_prior=float(prior))
        except ValueError:
            p.error(f"a variant is NOISE/K/PRIOR, e.g. user+item/10/10; "
                    f"got {variant!r}")
        for name, (fit_on, valid) in parts.items():
            scores = []
            for seed in seeds:
                start = time.perf_counter()
                model = train.fit_recipe(member, fit_on, users, items,
                                         rating_range=data.rating_range,
                                         seed=seed)
                row = {"variant": variant, "split": name, "seed": seed,
                       **model.evaluate(valid),
                       "seconds": round(time.perf_counter() - start, 1)}
                scores.append(row["rmse"])
                print(json.dumps(row), flush=True)
            print(json.dumps({"variant": variant, "split": name,
                              "seeds": seeds,
                              "rmse_mean": float(np.mean(scores))}),
                  flush=True)


if __name__ == "__main__":
    main()
