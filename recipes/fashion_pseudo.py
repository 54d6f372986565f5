"""Pseudo-labelling on Fashion-MNIST with 1,000 labels.

1,000 labelled training images (100 per class), the other 59,000 used
without their labels. A small BN-first convnet is trained on the labels
alone, then pseudo-labelling rounds mix its own soft predictions on the
unlabelled images into every batch (a quarter of each). Both test
accuracies are printed.

    python recipes/fashion_pseudo.py [--data /usr/share/datasets/fashion-mnist]

The data: `apt-get install dataset-fashion-mnist`, or any folder with the
four IDX .gz files.
"""

import argparse
import json
import time

import keras
import numpy as np

import kerasdl


def build(seed):
    keras.utils.set_random_seed(seed)
    model = kerasdl.deeper_conv_bn((28, 28, 1), 10, filters=(32, 64),
                                   units=128, p=0.5)
    model.compile(keras.optimizers.Adam(1e-3), "categorical_crossentropy",
                  metrics=["accuracy"])
    return model


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=None,
                        help="folder of the four Fashion-MNIST IDX files")
    parser.add_argument("--labels", type=int, default=1000)
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=400,
                        help="batches per pseudo-labelling round")
    parser.add_argument("--seed", type=int, default=0)
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
    model = build(args.seed)
    model.fit(xl, yl, batch_size=64, epochs=args.epochs, verbose=0)
    baseline = model.evaluate(xt, yt1, batch_size=512, verbose=0,
                              return_dict=True)["accuracy"]
    history = kerasdl.pseudo_label_rounds(
        model, (xl, yl), x[unl], (xt, yt1), rounds=args.rounds,
        fraction=0.25, batch_size=64, steps_per_epoch=args.steps,
        seed=args.seed)
    seconds = time.perf_counter() - start
    best = history[-1]["val_accuracy"]
    for h in history:
        print(f"round {h['round']}: {h['n_pseudo']:>6} pseudo-labels, "
              f"test accuracy {h['val_accuracy']:.4f}")
    print(json.dumps({
        "recipe": "fashion_pseudo", "labels": int(len(lab)),
        "unlabelled": int(len(unl)), "labelled_only_test_acc":
        round(baseline, 4), "pseudo_test_acc": round(best, 4),
        "gain_points": round(100 * (best - baseline), 2),
        "backend": keras.backend.backend(), "seconds": round(seconds, 1)}))


if __name__ == "__main__":
    main()
