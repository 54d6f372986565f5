"""``kerasdl movielens``: train a recommender on a named split, print RMSE."""

import math

from kerasdl import _validate
from kerasdl import commands
from kerasdl.commands import print_json

_MODELS = ("dot", "dot_bias", "dot_bias8", "nn", "gibbs", "best_trained",
           "best")


def add_parser(sub):
    p = sub.add_parser(
        "movielens", help="train and score a MovieLens recommender",
        description="Train an embedding recommender (lesson 4) on a named "
                    "split of a MovieLens folder (ml-latest-small, ml-100k "
                    "or ml-1m, detected from its files) and print RMSE and "
                    "MAE with the split's name.",
    )
    p.add_argument("--data", metavar="DIR", required=True,
                   help="the MovieLens folder (kerasdl.data.datasets.fetch "
                        "downloads one when online)")
    p.add_argument("--split", default=None,
                   help="u1..u5, uK or 5fold (all five ml-100k folds), "
                        "random:SEED, or lesson (default: u1 for ml-100k, "
                        "lesson otherwise)")
    p.add_argument("--model", default="dot_bias", choices=_MODELS,
                   help="recipe to train (default dot_bias)")
    p.add_argument("--fit", default="recipe", choices=("recipe", "gibbs"),
                   help="recipe: train the recipe with Adam (default); "
                        "gibbs: Bayesian dot_bias by Gibbs sampling "
                        "(kerasdl.collab.gibbs: k=10, a noise precision "
                        "per user and per item, burn-in 50, 250 samples; "
                        "needs --model dot_bias)")
    p.add_argument("--epochs", type=int, metavar="N",
                   help="override the recipe's epochs (trained members "
                        "only: a gibbs member samples)")
    p.add_argument("--seed", type=int, default=0, help="random seed")
    p.add_argument("--analysis", action="store_true",
                   help="also print the bias ranking, the ends of the item "
                        "factors' principal components and recommendations")
    p.add_argument("--plot", metavar="PNG",
                   help="save a scatter plot of the item factors here")
    p.add_argument("--skip-bad", action="store_true",
                   help="leave out rating rows that cannot be read (they "
                        "are counted in skipped_rows) instead of stopping "
                        "at the first")
    p.add_argument("--json", action="store_true",
                   help="print one JSON line per split part (valid JSON: "
                        "a figure that is not a number is null and named "
                        "in not_finite, and the exit code is 1)")
    p.set_defaults(func=run)
    return p


def _check_flags(args):
    from kerasdl.cli import UsageError

    if args.epochs is not None:
        _validate.integer(args.epochs, "--epochs", low=1)
    commands.seed(args.seed)
    if args.fit == "gibbs" and args.model != "dot_bias":
        raise UsageError(f"--fit gibbs samples the dot_bias model; use "
                         f"--model dot_bias (got --model {args.model})")
    if args.model == "gibbs" and args.epochs is not None:
        raise UsageError("--epochs does not apply to --model gibbs (it "
                         "samples: 50 burn-in sweeps, then 250 samples "
                         "averaged)")
    if args.fit == "gibbs" and args.epochs is not None:
        raise UsageError("--epochs does not apply to --fit gibbs (it runs "
                         "50 burn-in sweeps and averages 250 samples)")
    if args.plot is not None:
        commands.output_path(args.plot, "--plot")


def _check_split(data, split):
    """Reads the split's parts; refuses one with no training or test
    ratings (its RMSE would not be a number)."""
    from kerasdl.cli import UsageError
    from kerasdl.collab.folds import get_splits

    for part in get_splits(data, split):
        for side, frame in (("training", part.train), ("test", part.test)):
            if len(frame) == 0:
                raise UsageError(
                    f"--split {split} leaves no {side} ratings in part "
                    f"{part.name} of the {len(data.ratings):,} ratings in "
                    f"{data.path}; use more ratings or another --split")


def run(args):
    from kerasdl.cli import ResultError
    from kerasdl.data.ratings import read_movielens

    _check_flags(args)
    data = read_movielens(args.data,
                          on_bad="skip" if args.skip_bad else "raise")
    split = args.split or ("u1" if data.format == "ml-100k" else "lesson")
    _check_split(data, split)  # before any training

    from kerasdl.collab.evaluate import run_split
    from kerasdl.collab.evaluate import summarize

    model_name = "gibbs" if args.fit == "gibbs" else args.model
    rows, model = run_split(data, split, model_name, epochs=args.epochs,
                            seed=args.seed)
    for row in rows:
        row.update(data=data.format, skipped_rows=data.skipped)
        _print_row(row, data, args)
    if len(rows) > 1:
        summary = summarize(rows)
        if args.json:
            print_json({**summary, "recipe": rows[0]["recipe"],
                        "data": data.format})
        else:
            with commands.printing():
                print(f"{data.format} split {split}: mean RMSE "
                      f"{summary['rmse']:.4f} (from "
                      f"{summary['rmse_min']:.4f} to "
                      f"{summary['rmse_max']:.4f}), mean MAE "
                      f"{summary['mae']:.4f}")
    bad = [f"{r['split']} {k}" for r in rows for k in ("rmse", "mae")
           if not math.isfinite(r[k])]
    if bad:
        raise ResultError(f"training gave no usable model: "
                          f"{', '.join(bad)} not a number (the loss "
                          f"diverged); try fewer --epochs or another "
                          f"--seed")
    if args.analysis or args.plot:
        _analysis(model, rows, data, args)
    return 0


def _print_row(row, data, args):
    if args.json:
        print_json(row)
        return
    with commands.printing():
        print(f"{data.format} split {row['split']}: RMSE "
              f"{row['rmse']:.4f}  MAE {row['mae']:.4f}  (recipe "
              f"{row['recipe']}, {row['train']:,} train / "
              f"{row['n']:,} test ratings, {row['fallback']} test "
              f"pairs unseen in training predicted by the mean; "
              f"{row['seconds']:.1f} s; {row['note']})")


def _analysis(model, rows, data, args):
    from kerasdl.collab import analysis
    from kerasdl.collab.folds import get_splits

    train = get_splits(data, rows[-1]["split"])[0].train
    has_bias = any(layer.name == "item_bias"
                   for layer in model.models[0].layers)
    out = {}
    if has_bias:
        low, high = analysis.bias_ranking(model, train, top_n=2000, k=10)
        out["bias_lowest"], out["bias_highest"] = low, high
    pca = analysis.factor_pca(model, train, top_n=2000, k=5)
    out["pca_ends"] = pca["ends"]
    user = train["user"].iloc[0]
    out["recommend_user"] = int(user)
    out["recommend"] = analysis.recommend(model, user, data.ratings, k=5)
    if args.plot:
        with commands.writing(args.plot, "--plot"):
            out["plot"] = analysis.plot_factors(pca, args.plot,
                                                components=(0, 1))
    if args.json:
        print_json({"analysis": out})
        return
    with commands.printing():
        _print_analysis(out, has_bias, user, args)


def _print_analysis(out, has_bias, user, args):
    if has_bias:
        print("lowest item biases:  " + "; ".join(t for t, _ in out[
            "bias_lowest"][:5]))
        print("highest item biases: " + "; ".join(t for t, _ in out[
            "bias_highest"][:5]))
    for c, (lo, hi) in enumerate(out["pca_ends"]):
        print(f"factor component {c + 1}: low end "
              f"{'; '.join(t for t, _ in lo[:3])} | high end "
              f"{'; '.join(t for t, _ in hi[:3])}")
    print(f"top 5 for user {user} (leaving out rated items): "
          + "; ".join(f"{t} ({s:.2f})" for _, t, s in out["recommend"]))
    if args.plot:
        print(f"item-factor plot written to {args.plot}")
