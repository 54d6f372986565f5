"""Pseudo-labelling on Fashion-MNIST with 1,000 labels.

1,000 labelled training images (100 per class), the other 59,000 used
without their labels. A small BN-first convnet is trained on the labels
alone (one-cycle), then pseudo-labelling rounds mix its own soft
predictions on the unlabelled images into every batch (a quarter of
each), each round one one-cycle over ``--steps`` batches. A control
trains a copy of the same model for the same extra batches on the labels
alone, so the gain is not just more training. All test accuracies are
printed.

    python recipes/fashion_pseudo.py [--data /usr/share/datasets/fashion-mnist]

With `--valid N`, N labelled training images (N/10 per class) are held out
of the unlabelled pool and every round is scored on them instead; the test
set is then scored only with `--test` (for the variant chosen on the
validation split). `--pseudo-cutout`/`--pseudo-shift` augment only the
pseudo-labelled rows of each batch (a strong view; the labels come from
the clean images, see `kerasdl.pseudo_label_rounds(augment=...)`).

The data: `apt-get install dataset-fashion-mnist`, or any folder with the
four IDX .gz files. The defaults are the course's setting (soft labels, 16
of 64). The variant chosen on the validation split (bench/NOTES.md has
all, with the controls), about 4 minutes on an H100:

    --augment shift --hard --threshold 0.95 --fraction 0.5 --fraction-to
    0.75 --steps 4000 --rounds 6 --width 2 --pseudo-cutout 12
    --pseudo-shift 2 --flip-labels --valid 5000 --test
"""

import argparse
import json
import time

import keras
import numpy as np

import kerasdl
from kerasdl.data.augment import ArrayAugment


AUGMENT = {  # passed to kerasdl.augmentation
    "light": dict(preset="light", horizontal_flip=True),
    "shift": dict(width_shift=0.1, height_shift=0.1, horizontal_flip=True),
}


def build(seed, augment=None, width=1):
    keras.utils.set_random_seed(seed)
    model = kerasdl.deeper_conv_bn((28, 28, 1), 10,
                                   filters=(32 * width, 64 * width),
                                   units=128 * width, p=0.5)
    if augment:
        model = keras.Sequential([
            keras.Input((28, 28, 1)),
            kerasdl.augmentation(**AUGMENT[augment], seed=seed), model])
    model.compile(keras.optimizers.Adam(1e-3), "categorical_crossentropy",
                  metrics=["accuracy"])
    return model


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=None,
                        help="folder of the four Fashion-MNIST IDX files")
    parser.add_argument("--labels", type=int, default=1000)
    parser.add_argument("--epochs", type=int, default=30,
                        help="one-cycle epochs on the labels (batch 32)")
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--round-lr", type=float, default=1e-3,
                        help="one-cycle peak rate of each round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=400,
                        help="batches per pseudo-labelling round")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--augment", choices=sorted(AUGMENT),
                        help="augment training batches (both models): "
                        "light = shifts, zoom, rotation and flips; shift = "
                        "shifts and flips")
    parser.add_argument("--fraction", type=float, default=0.25,
                        help="pseudo-labelled share of each batch")
    parser.add_argument("--hard", action="store_true",
                        help="one-hot pseudo-labels instead of soft ones")
    parser.add_argument("--threshold", type=float, default=None,
                        help="keep pseudo-labels at least this confident")
    parser.add_argument("--threshold-to", type=float, default=None,
                        help="last round's threshold (linear from "
                        "--threshold)")
    parser.add_argument("--fraction-to", type=float, default=None,
                        help="last round's share (linear from --fraction; "
                        "rounded to whole rows of 64)")
    parser.add_argument("--pseudo-cutout", type=int, default=0,
                        help="erase a square of this many pixels in every "
                        "pseudo-labelled image of a batch")
    parser.add_argument("--pseudo-shift", type=int, default=0,
                        help="extra whole-pixel shifts (and flips) of the "
                        "pseudo-labelled images")
    parser.add_argument("--flip-labels", action="store_true",
                        help="pseudo-label with the mean prediction on the "
                        "image and its mirror")
    parser.add_argument("--width", type=int, default=1,
                        help="multiply the model's filters and units (all "
                        "three models)")
    parser.add_argument("--valid", type=int, default=0,
                        help="labelled images held out of the unlabelled "
                        "pool to score variants on")
    parser.add_argument("--test", action="store_true",
                        help="with --valid, also score the test set")
    parser.add_argument("--no-control", action="store_true",
                        help="skip the labels-only same-steps control")
    parser.add_argument("--control-augment", action="store_true",
                        help="give the control's labelled images the "
                        "pseudo-labelled rows' extra augmentation too")
    args = parser.parse_args()

    (x, y), (xt, yt), _ = kerasdl.load_fashion_mnist(args.data)
    rng = np.random.default_rng(args.seed)
    per_class = args.labels // 10
    lab = np.concatenate([rng.choice(np.flatnonzero(y == c), per_class,
                                     replace=False) for c in range(10)])
    unl = np.setdiff1d(np.arange(len(y)), lab)
    val = np.array([], dtype=int)
    if args.valid:
        if args.valid % 10:
            parser.error(f"--valid must be a multiple of 10 (per class); "
                         f"got {args.valid}.")
        val = np.concatenate([rng.choice(unl[y[unl] == c], args.valid // 10,
                                         replace=False) for c in range(10)])
        unl = np.setdiff1d(unl, val)
    x = x.astype("float32")
    xt = xt.astype("float32")
    xl, yl = x[lab], keras.utils.to_categorical(y[lab], 10)
    sets = {"test": (xt, keras.utils.to_categorical(yt, 10))}
    if args.valid:
        sets = {"valid": (x[val], keras.utils.to_categorical(y[val], 10)),
                **(sets if args.test else {})}
    watch = next(iter(sets))  # scored after every round

    def score(m):
        return {k: round(float(m.evaluate(*xy, batch_size=512, verbose=0,
                                          return_dict=True)["accuracy"]), 4)
                for k, xy in sets.items()}

    start = time.perf_counter()
    model = build(args.seed, args.augment, args.width)
    kerasdl.fit_one_cycle(model, (xl, yl), args.epochs, args.lr,
                          batch_size=32, verbose=0)
    result = {"labelled_only": score(model)}
    strong = None
    if args.pseudo_cutout or args.pseudo_shift:
        strong = ArrayAugment(shift=args.pseudo_shift,
                              horizontal_flip=bool(args.pseudo_shift),
                              cutout=args.pseudo_cutout)
    if args.control_augment and strong is None:
        parser.error("--control-augment needs --pseudo-cutout or "
                     "--pseudo-shift.")
    if not args.no_control:
        # Control: the same extra batches, labels only, same augmentation.
        control = build(args.seed, args.augment, args.width)
        control.set_weights(model.get_weights())
        for r in range(args.rounds):
            if args.control_augment:
                data = kerasdl.MixedBatches(
                    [(xl, yl)], batch_sizes=[64], augment=[strong],
                    steps_per_epoch=args.steps, seed=args.seed + r + 1)
                kerasdl.fit_one_cycle(control, data, 1, args.round_lr,
                                      verbose=0)
                continue
            order = np.concatenate([rng.permutation(len(lab)) for _ in range(
                -(-args.steps * 64 // len(lab)))])[:args.steps * 64]
            kerasdl.fit_one_cycle(control, (xl[order], yl[order]), 1,
                                  args.round_lr, batch_size=64,
                                  shuffle=False, verbose=0)
        key = "strong_control" if args.control_augment else "control"
        result["same_steps_" + key] = score(control)
    history = kerasdl.pseudo_label_rounds(
        model, (xl, yl), x[unl], sets[watch], rounds=args.rounds,
        fraction=_ramp(args.fraction, args.fraction_to, args.rounds, 64),
        batch_size=64, steps_per_epoch=args.steps, soft=not args.hard,
        threshold=_ramp(args.threshold, args.threshold_to, args.rounds),
        augment=strong, flip=args.flip_labels, seed=args.seed,
        callbacks=[kerasdl.OneCycle(args.round_lr)])
    result["pseudo"] = score(model)
    seconds = time.perf_counter() - start
    for h in history:
        print(f"round {h['round']}: {h['n_pseudo']:>6} pseudo-labels, "
              f"{watch} accuracy {h['val_accuracy']:.4f}")
    gains = {}
    for k in sets:
        gains[f"{k}_gain_points"] = round(100 * (
            result["pseudo"][k] - result["labelled_only"][k]), 2)
        for key in ("control", "strong_control"):
            if f"same_steps_{key}" in result:
                gains[f"{k}_gain_over_{key}_points"] = round(100 * (
                    result["pseudo"][k] - result[f"same_steps_{key}"][k]), 2)
    print(json.dumps({
        "recipe": "fashion_pseudo", "seed": args.seed,
        "labels": int(len(lab)), "valid": int(len(val)),
        "augment": args.augment, "fraction": args.fraction,
        "fraction_to": args.fraction_to, "soft": not args.hard,
        "threshold": args.threshold, "threshold_to": args.threshold_to,
        "pseudo_augment": repr(strong) if strong else None,
        "flip_labels": args.flip_labels, "width": args.width,
        "rounds": args.rounds, "steps": args.steps,
        "unlabelled": int(len(unl)), **result, **gains,
        "rounds_" + watch: [round(h["val_accuracy"], 4) for h in history],
        "backend": keras.backend.backend(), "seconds": round(seconds, 1)}))


def _ramp(first, last, rounds, batch=None):
    """``first`` for every round, or a linear ramp to ``last``."""
    if last is None or first is None or rounds == 1:
        return first
    values = [first + (last - first) * r / (rounds - 1)
              for r in range(rounds)]
    if batch:  # whole rows of the batch
        values = [round(v * batch) / batch for v in values]
    return values


if __name__ == "__main__":
    main()
