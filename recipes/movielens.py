"""Lesson 4 of the 2017 course, end to end: collaborative filtering on
MovieLens with embeddings, then reading the factors.

    python recipes/movielens.py --data path/to/ml-latest-small
    python recipes/movielens.py --data path/to/ml-100k --split u1

Trains the lesson's three models with the lesson's settings (Adam 1e-3,
l2(1e-4) on the factor tables, batch 64): a dot product, dot product plus
biases, and the neural net on concatenated embeddings; then the tuned
dot_bias recipe and the ``best`` ensemble (the Bayesian dot_bias of
``kerasdl.collab.gibbs``, sampled rather than trained, with four
I-AutoRec; ``--recipes gibbs`` runs the sampled model alone).
Prints RMSE (and MAE) for each, always with the split's name, then the
movies with the lowest and highest learned bias among the 2,000 most
rated, the ends of the first three principal components of the movie
factors, and saves a scatter plot.

Without ``--data`` the data set is downloaded with
``kerasdl.data.datasets.fetch`` (needs internet).
"""

import argparse
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

STEPS = ("lesson_dot", "lesson_dot_bias", "lesson_nn", "dot_bias", "best")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", help="MovieLens folder (default: fetch "
                                       "ml-latest-small)")
    parser.add_argument("--split", default=None,
                        help="default: lesson (random 80/20, seed 42), or "
                             "u1 for ml-100k")
    parser.add_argument("--recipes", default=",".join(STEPS),
                        help="comma-separated names from "
                             "kerasdl.collab.recipes.RECIPES")
    parser.add_argument("--plot", default="movielens_factors.png")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    from kerasdl.collab.recipes import RECIPES

    names = args.recipes.split(",")
    unknown = [n for n in names if n not in RECIPES]
    if unknown:
        parser.error(f"unknown recipe {unknown[0]!r}; expected names from: "
                     f"{', '.join(sorted(RECIPES))}")

    from kerasdl.collab import analysis
    from kerasdl.collab.evaluate import run_split
    from kerasdl.collab.folds import get_splits
    from kerasdl.data.datasets import fetch
    from kerasdl.data.ratings import read_movielens
    from kerasdl.models import param_counts

    data = read_movielens(args.data or fetch("ml-latest-small"))
    split = args.split or ("u1" if data.format == "ml-100k" else "lesson")
    print(f"{data.format}: {len(data.ratings):,} ratings, "
          f"{data.ratings['user'].nunique()} users, "
          f"{data.ratings['item'].nunique():,} items; split {split}")
    model = None
    for name in names:
        rows, fitted = run_split(data, split, name, seed=args.seed)
        for row in rows:
            params = sum(param_counts(m)[1] for m in fitted.models)
            print(f"{name:16s} split {row['split']}: RMSE {row['rmse']:.4f}"
                  f"  MAE {row['mae']:.4f}  ({len(fitted.models)} model(s),"
                  f" {params:,} trainable parameters, {row['seconds']} s)",
                  flush=True)
        if name == "lesson_dot_bias":
            model = fitted
    if model is None:
        return
    train = get_splits(data, split)[0].train
    low, high = analysis.bias_ranking(model, train, top_n=2000, k=10)
    print("\nlowest bias (2,000 most rated):", "; ".join(t for t, _ in low))
    print("highest bias:", "; ".join(t for t, _ in high))
    pca = analysis.factor_pca(model, train, top_n=2000, k=5)
    for c, (lo, hi) in enumerate(pca["ends"]):
        print(f"\ncomponent {c + 1} ({pca['explained'][c]:.1%} of variance)")
        print("  low: ", "; ".join(t for t, _ in lo))
        print("  high:", "; ".join(t for t, _ in hi))
    analysis.plot_factors(pca, args.plot, components=(0, 2))
    print(f"\nscatter plot of components 1 and 3: {args.plot}")


if __name__ == "__main__":
    main()
