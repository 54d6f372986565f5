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

The data: `apt-get install dataset-fashion-mnist`, or any folder with the
four IDX .gz files. The defaults are the course's setting (soft labels, 16
of 64); `--augment shift --hard --threshold 0.95 --fraction 0.5 --steps
4000 --rounds 4` gained more (bench/NOTES.md has both, with the control).
"""

import argparse
import json
import time

import keras
import numpy as np

import kerasdl


AUGMENT = {  # passed to kerasdl.augmentation
    "light": dict(preset="light", horizontal_flip=True),
    "shift": dict(width_shift=0.1, height_shift=0.1, horizontal_flip=True),
}


def build(seed, augment=None):
    keras.utils.set_random_seed(seed)
    model = kerasdl.deeper_conv_bn((28, 28, 1), 10, filters=(32, 64),
                                   units=128, p=0.5)
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
    args = parser.parse_args()

    (x, y), (xt, yt), _ = kerasdl.load_fashion_mnist(args.data)
    rng = np.random.default_rng(args.seed)
    per_class = args.labels // 10
    lab = np.concatenate([rng.choice(np.flatnonzero(y == c), per_class,
                                     replace=False) for c in range(10)])
    unl = np.setdiff1d(np.arange(len(y)), lab)
    x = x.astype("float32")
    xt = xt.astype("float32")
    xl, yl = x[lab], keras.utils.to_categorical(y[lab], 10)
    yt1 = keras.utils.to_categorical(yt, 10)

    start = time.perf_counter()
    model = build(args.seed, args.augment)
    kerasdl.fit_one_cycle(model, (xl, yl), args.epochs, args.lr,
                          batch_size=32, verbose=0)
    baseline = model.evaluate(xt, yt1, batch_size=512, verbose=0,
                              return_dict=True)["accuracy"]
    # Control: the same extra batches, labels only.
    control = build(args.seed, args.augment)
    control.set_weights(model.get_weights())
    for r in range(args.rounds):
        order = np.concatenate([rng.permutation(len(lab)) for _ in range(
            -(-args.steps * 64 // len(lab)))])[:args.steps * 64]
        kerasdl.fit_one_cycle(control, (xl[order], yl[order]), 1,
                              args.round_lr, batch_size=64, shuffle=False,
                              verbose=0)
    control_acc = control.evaluate(xt, yt1, batch_size=512, verbose=0,
                                   return_dict=True)["accuracy"]
    history = kerasdl.pseudo_label_rounds(
        model, (xl, yl), x[unl], (xt, yt1), rounds=args.rounds,
        fraction=args.fraction, batch_size=64, steps_per_epoch=args.steps,
        soft=not args.hard, threshold=args.threshold,
        seed=args.seed, callbacks=[kerasdl.OneCycle(args.round_lr)])
    seconds = time.perf_counter() - start
    best = history[-1]["val_accuracy"]
    for h in history:
        print(f"round {h['round']}: {h['n_pseudo']:>6} pseudo-labels, "
              f"test accuracy {h['val_accuracy']:.4f}")
    print(json.dumps({
        "recipe": "fashion_pseudo", "labels": int(len(lab)),
        "augment": args.augment, "fraction": args.fraction,
        "soft": not args.hard, "threshold": args.threshold,
        "unlabelled": int(len(unl)), "labelled_only_test_acc":
        round(baseline, 4), "labelled_only_same_steps_test_acc":
        round(control_acc, 4), "pseudo_test_acc": round(best, 4),
        "gain_points": round(100 * (best - baseline), 2),
        "gain_over_control_points": round(100 * (best - control_acc), 2),
        "backend": keras.backend.backend(), "seconds": round(seconds, 1)}))


if __name__ == "__main__":
    main()
