"""Test-time augmentation: validation accuracy and log loss with and without.

    python bench/tta_bench.py folder MODEL.keras VALID_DIR
    python bench/tta_bench.py statefarm DATA [--epochs 6] [--val-drivers 5]

``folder`` measures a saved classifier (such as the model.keras written by
``kerasdl train``) on a folder of class folders. ``statefarm`` first
trains the course's conv_bn with the State Farm augmentation on a driver
split (the validation drivers are never seen in training), then measures
it. Each variant prints one JSON line: accuracy, log loss and seconds.
"""

import argparse
import json
import os
import sys
import time

import numpy as np

# (name, kerasdl.tta settings); None is the plain prediction
FOLDER_VARIANTS = (
    ("clean", None),
    ("flip, beta 0.25", {"beta": 0.25}),
    ("flip, beta 0.5", {"beta": 0.5}),
    ("flip, beta 0.75", {"beta": 0.75}),
    ("light x4 + flip, beta 0.25", {"augment": "light", "n": 4}),
    ("light x4 + flip, beta 0.5", {"augment": "light", "n": 4,
                                   "beta": 0.5}),
)
STATEFARM_VARIANTS = (
    ("clean", None),
    ("flip, beta 0.25", {"beta": 0.25}),
    ("statefarm x4, beta 0.25", {"augment": "statefarm", "n": 4,
                                 "flip": False}),
    ("statefarm x4, beta 0.5", {"augment": "statefarm", "n": 4,
                                "flip": False, "beta": 0.5}),
    ("statefarm x8, beta 0.5", {"augment": "statefarm", "n": 8,
                                "flip": False, "beta": 0.5}),
)


def measure(model, x, y, variants, where):
    import keras

    import kerasdl

    for name, settings in variants:
        start = time.time()
        if settings is None:
            probs = model.predict(x, batch_size=64, verbose=0)
        else:
            probs = kerasdl.tta(model, x, batch_size=64, **settings)
        p = np.clip(probs[np.arange(len(y)), y], 1e-7, 1)
        print(json.dumps({
            "data": where, "variant": name,
            "backend": keras.backend.backend(), "n": int(len(y)),
            "accuracy": round(float(np.mean(probs.argmax(1) == y)), 4),
            "log_loss": round(float(-np.mean(np.log(p))), 4),
            "seconds": round(time.time() - start, 1)}), flush=True)


def folder(args):
    import keras

    import kerasdl

    model = keras.saving.load_model(args.model, safe_mode=True)
    names = kerasdl.class_names(model)
    size = tuple(model.inputs[0].shape[1:3])
    batches = kerasdl.image_folder(args.valid, image_size=size,
                                   class_names=names)
    x, y = batches.to_arrays()
    measure(model, x, np.asarray(y), FOLDER_VARIANTS,
            os.path.basename(os.path.normpath(os.path.dirname(args.valid)))
            or args.valid)


def statefarm(args):
    import keras

    import kerasdl
    from kerasdl.data.splits import table_files

    start = time.time()
    table = os.path.join(args.data, "driver_imgs_list.csv")
    train_t, valid_t = kerasdl.group_split(table, "subject",
                                           n_groups=args.val_drivers,
                                           seed=args.seed)
    classes = [f"c{i}" for i in range(10)]

    def arrays(t):
        paths, names = table_files(t, os.path.join(args.data, "train"))
        b = kerasdl.image_files(paths, [classes.index(n) for n in names],
                                class_names=classes, image_size=(60, 80),
                                batch_size=512)
        x, y = b.to_arrays()
        return x, np.asarray(y, np.int64)

    x, y = arrays(train_t)
    xv, yv = arrays(valid_t)
    keras.utils.set_random_seed(args.seed)
    inputs = keras.Input((60, 80, 3))
    aug = kerasdl.augmentation("statefarm", seed=args.seed)
    body = kerasdl.conv_bn((60, 80, 3), 10, dropout=0.25)
    model = keras.Model(inputs, body(aug(inputs)))
    model.compile(keras.optimizers.Adam(1e-3),
                  "sparse_categorical_crossentropy", metrics=["accuracy"])
    lr = kerasdl.lr_find(model, (x, y), batch_size=64, seed=args.seed).valley
    kerasdl.fit_one_cycle(model, (x, y), args.epochs, lr, batch_size=64,
                          verbose=0)
    print(json.dumps({"data": "statefarm", "train": len(x), "valid": len(xv),
                      "valid_drivers": list(valid_t.attrs["groups"]),
                      "lr": lr, "epochs": args.epochs,
                      "train_seconds": round(time.time() - start, 1)}),
          flush=True)
    measure(model, xv, yv, STATEFARM_VARIANTS, "statefarm")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="what", required=True)
    f = sub.add_parser("folder")
    f.add_argument("model")
    f.add_argument("valid")
    s = sub.add_parser("statefarm")
    s.add_argument("data")
    s.add_argument("--epochs", type=int, default=6)
    s.add_argument("--val-drivers", type=int, default=5)
    s.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    (folder if args.what == "folder" else statefarm)(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
