"""Train the BN-first conv_bn baseline on your own photos.

    python recipes/own_photos.py PHOTOS [--size 64] [--epochs 8]
        [--save model.keras] [--json]

PHOTOS holds ``train/<class>/*`` and ``valid/<class>/*`` (or pass
``--valid-pct 0.2`` for one folder of class folders). The recipe: random
horizontal flips inside the model, conv_bn with dropout 0.25, batches of
32, the learning-rate finder's valley, then one-cycle training; it prints
the validation accuracy of every epoch and saves the model with its class
names. (Settings chosen on a random fifth of train/, not on valid/:
bench/NOTES.md.)
"""

import argparse
import json
import sys
import time


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("photos")
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--epochs", type=int, default=8)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--valid-pct", type=float, default=None)
    p.add_argument("--augment", default="flip",
                   choices=("none", "flip", "light", "dogscats"),
                   help="augmentation inside the model (default flip)")
    p.add_argument("--wd", type=float, default=0.0,
                   help="decoupled weight decay (AdamW); default 0: Adam")
    p.add_argument("--suggestion", default="valley",
                   choices=("valley", "minimum", "steep", "slide"),
                   help="which LR-finder suggestion to train at")
    p.add_argument("--dropout", type=float, default=0.25,
                   help="conv_bn's dropout before the hidden and the last "
                        "Dense (default 0.25)")
    p.add_argument("--num-it", type=int, default=100,
                   help="steps of the learning-rate sweep (default 100)")
    p.add_argument("--sweeps", type=int, default=1,
                   help="LR-finder sweeps (different seeds); the rate is "
                        "the geometric mean of their suggestions")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--skip-bad", action="store_true",
                   help="skip unreadable or tiny images (listed at the end)")
    p.add_argument("--save", default=None, metavar="PATH.keras")
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)

    import keras
    import numpy as np

    import kerasdl

    start = time.time()
    try:
        train, valid = kerasdl.images_from_folder(
            args.photos, valid_pct=args.valid_pct, seed=args.seed,
            image_size=(args.size, args.size), batch_size=args.batch_size,
            on_error="skip" if args.skip_bad else "raise")
    except ValueError as e:
        p.exit(2, f"own_photos: error: {e}\n")
    keras.utils.set_random_seed(args.seed)
    shape = (args.size, args.size, 3)
    body = kerasdl.conv_bn(shape, len(train.class_names),
                           dropout=args.dropout)
    layers = [keras.Input(shape)]
    if args.augment == "flip":
        layers.append(kerasdl.augmentation(horizontal_flip=True,
                                           seed=args.seed))
    elif args.augment != "none":
        layers.append(kerasdl.augmentation(
            args.augment, horizontal_flip=True, seed=args.seed))
    model = keras.Sequential([*layers, body], name="own_photos")
    model = kerasdl.with_class_names(model, train.class_names)
    optimizer = keras.optimizers.AdamW(1e-3, weight_decay=args.wd) \
        if args.wd else keras.optimizers.Adam(1e-3)
    model.compile(optimizer,
                  "sparse_categorical_crossentropy", metrics=["accuracy"])
    rates = []
    for sweep in range(args.sweeps):
        found = kerasdl.lr_find(model, train, num_it=args.num_it,
                                seed=args.seed + 1000 * sweep, verbose=0)
        rates.append(found.suggestions[args.suggestion])
    lr = float(np.exp(np.mean(np.log(rates))))
    history = kerasdl.fit_one_cycle(model, train, args.epochs, lr,
                                    validation_data=valid, verbose=0)
    curve = [round(float(v), 4) for v in history.history["val_accuracy"]]
    result = {"backend": keras.backend.backend(), "photos": args.photos,
              "train": train.n_images, "valid": valid.n_images,
              "classes": train.class_names, "size": args.size, "augment": args.augment,
              "wd": args.wd, "dropout": args.dropout, "num_it": args.num_it,
              "valid_pct": args.valid_pct, "seed": args.seed, "batch_size": args.batch_size,
              "lr": lr, "suggestion": args.suggestion,
              "sweeps": args.sweeps, "sweep_rates": rates,
              "suggestions": found.suggestions, "val_accuracy": curve,
              "seconds": round(time.time() - start, 1),
              "skipped": train.report.n_skipped}
    if args.save:
        model.save(args.save)
        result["saved"] = args.save
    if args.json:
        print(json.dumps(result))
    else:
        print(f"{train.n_images} training / {valid.n_images} validation "
              f"photos, classes {train.class_names}, lr {lr:.2e} "
              f"({args.suggestion})")
        for epoch, acc in enumerate(curve, 1):
            print(f"epoch {epoch}: validation accuracy {acc:.3f}")
        if train.report.n_skipped:
            print(train.report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
