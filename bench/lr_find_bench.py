"""Cost of the LR finder and of one-cycle, and lr_find on State Farm.

Speed (default): the wall time of a 100-step lr_find sweep over the time
of 100 ordinary training steps (same model, batch and data), and
fit_one_cycle over plain fit for the same epochs. Each is the median of
``--repeats`` interleaved runs after a warm-up run (compilation
excluded); the fastest runs' ratio is printed too. Targets: sweep <=
1.2x, one-cycle <= 1.05x. The plain fit does not shuffle (the cheapest
baseline); the sweep draws random batches, so the ratio against Keras'
default shuffled fit is printed as well.

    KERAS_BACKEND=jax python bench/lr_find_bench.py [--models linear_bn,conv_bn]

Real data (``--statefarm DIR``): validation = 5 whole drivers (seeded
group_split), lr_find on linear_bn (Adam), then 2 epochs of Adam at the
valley suggestion against 2 epochs at Keras' default 1e-3.

    python bench/lr_find_bench.py --statefarm ../shared/data/statefarm-80x60

Each measurement is one JSON line.
"""

import argparse
import json
import os
import statistics
import time

import keras
import numpy as np

import kerasdl
from kerasdl import _backend
from kerasdl.training import lr_finder

SHAPE = (60, 80, 3)


def emit(**row):
    row.update(backend=keras.backend.backend(),
               device=_backend.accelerator()["name"])
    print(json.dumps(row, sort_keys=True), flush=True)


def build(name, seed=0, lr=1e-3):
    keras.utils.set_random_seed(seed)
    model = getattr(kerasdl, name)(SHAPE, 10)
    model.compile(keras.optimizers.Adam(lr),
                  "sparse_categorical_crossentropy")
    return model


def timed(fns, repeats):
    """Median and fastest wall time of each function: one warm-up run
    each (compilation), then ``repeats`` rounds that run every function
    once in turn, so that drifts of the machine hit all of them alike."""
    for fn in fns.values():
        _backend.synchronize(fn())
    times = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            start = time.perf_counter()
            _backend.synchronize(fn())
            times[name].append(time.perf_counter() - start)
    return {name: (statistics.median(t), min(t)) for name, t in times.items()}


def speed(models, batch, steps, repeats):
    rng = np.random.default_rng(0)
    x = rng.integers(0, 255, (batch * steps, *SHAPE), dtype="uint8")
    y = rng.integers(0, 10, batch * steps)
    for name in models:
        model = build(name)

        def fit(epochs=1, shuffle=False):
            model.fit(x, y, batch_size=batch, epochs=epochs, verbose=0,
                      shuffle=shuffle)
            return model.trainable_variables

        def sweep():
            kerasdl.lr_find(model, (x, y), batch_size=batch, num_it=steps,
                            stop_div=False, start_lr=1e-7, end_lr=1e-3)
            return model.trainable_variables

        def one_cycle():
            kerasdl.fit_one_cycle(model, (x, y), 2, 1e-3, batch_size=batch,
                                  verbose=0, shuffle=False)
            return model.trainable_variables

        t = timed({"fit": fit, "fit_shuffled": lambda: fit(shuffle=True),
                   "sweep": sweep, "fit2": lambda: fit(2),
                   "one_cycle": one_cycle}, repeats)
        row = {k: round(v[0], 4) for k, v in t.items()}
        fastest = {k: round(v[1], 4) for k, v in t.items()}
        emit(bench="lr_find_sweep_vs_fit", model=name, batch=batch,
             steps=steps, fit_s=row["fit"], sweep_s=row["sweep"],
             ratio=round(row["sweep"] / row["fit"], 3),
             fit_shuffled_s=row["fit_shuffled"],
             ratio_vs_shuffled=round(row["sweep"] / row["fit_shuffled"], 3),
             ratio_fastest=round(fastest["sweep"] / fastest["fit"], 3),
             repeats=repeats, target=1.2,
             gather_limit=lr_finder.GATHER_LIMIT)
        emit(bench="fit_one_cycle_vs_fit", model=name, batch=batch,
             steps=2 * steps, fit_s=row["fit2"], one_cycle_s=row["one_cycle"],
             ratio=round(row["one_cycle"] / row["fit2"], 3),
             ratio_fastest=round(fastest["one_cycle"] / fastest["fit2"], 3),
             repeats=repeats, target=1.05)


def load_statefarm(root, seed):
    from kerasdl.data.images import image_files
    from kerasdl.data.splits import group_split
    from kerasdl.data.splits import table_files

    train, valid = group_split(os.path.join(root, "driver_imgs_list.csv"),
                               "subject", n_groups=5, seed=seed)
    classes = [f"c{i}" for i in range(10)]
    out = []
    for table in (train, valid):
        paths, names = table_files(table, os.path.join(root, "train"))
        batches = image_files(paths, [classes.index(n) for n in names],
                              class_names=classes, image_size=SHAPE[:2],
                              batch_size=512)
        xs, ys = zip(*(batches[i] for i in range(len(batches))))
        out.append((np.concatenate(xs), np.concatenate(ys)))
    return out, sorted(valid.attrs["groups"])


def statefarm(root, seed, batch):
    start = time.perf_counter()
    ((x, y), (xv, yv)), drivers = load_statefarm(root, seed)
    emit(bench="statefarm_load", train=len(x), valid=len(xv),
         valid_drivers=drivers, seconds=round(time.perf_counter() - start, 1))
    model = build("linear_bn", seed)
    found = kerasdl.lr_find(model, (x, y), batch_size=batch, seed=seed)
    emit(bench="statefarm_lr_find", model="linear_bn", batch=batch,
         stop_reason=found.stop_reason, points=len(found.lrs),
         **{k: float(f"{v:.3g}") for k, v in found.suggestions.items()})
    for label, lr in (("valley", found.valley), ("keras_default", 1e-3)):
        model = build("linear_bn", seed, lr)
        model.compile(keras.optimizers.Adam(lr),
                      "sparse_categorical_crossentropy", metrics=["accuracy"])
        start = time.perf_counter()
        h = model.fit(x, y, batch_size=batch, epochs=2, verbose=0,
                      validation_data=(xv, yv))
        preds = model.predict(xv, batch_size=512, verbose=0).argmax(1)
        emit(bench="statefarm_2_epochs", model="linear_bn", rate=label,
             lr=float(f"{lr:.3g}"), batch=batch,
             val_accuracy=[round(v, 4) for v in h.history["val_accuracy"]],
             train_accuracy=[round(v, 4) for v in h.history["accuracy"]],
             classes_predicted=int(len(np.unique(preds))),
             top_class_share=round(float(np.bincount(preds).max()
                                         / len(preds)), 3),
             seconds=round(time.perf_counter() - start, 1))


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", default="linear_bn,conv_bn")
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--steps", type=int, default=100)
    p.add_argument("--repeats", type=int, default=15)
    p.add_argument("--statefarm", metavar="DIR")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--gather-limit", type=int, default=None,
                   help="bytes of sweep batches lr_find copies up front "
                   "(kerasdl.training.lr_finder.GATHER_LIMIT; 0: gather "
                   "each batch as it is needed)")
    args = p.parse_args()
    if args.gather_limit is not None:
        lr_finder.GATHER_LIMIT = args.gather_limit
    if args.statefarm:
        statefarm(args.statefarm, args.seed, args.batch)
    else:
        speed(args.models.split(","), args.batch, args.steps, args.repeats)


if __name__ == "__main__":
    main()
