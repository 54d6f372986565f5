r"""Training speed of dot_bias on ml-100k u1.base (80,000 ratings).

    KERAS_BACKEND=jax python bench/collab_bench.py \
        --data ../shared/data/ml-100k

Prints one JSON line per (loop, batch size): backend, device, loop
(``fit``: model.fit; ``fit_spe``: model.fit with steps_per_execution;
``device``: kerasdl.collab.on_device.fit_on_device, one compiled program per
epoch), batch size, seconds per epoch (median of the timed epochs, after
one warm-up epoch that pays for compilation), ratings per second, and the
RMSE on u1.test after the warm-up plus timed epochs (AdamW, constant rate
``--lr``, weight decay 0.4, y_range (0, 5.5): a speed run, not a tuned one).
"""

import argparse
import json
import os
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def measure(loop, batch_size, args, train, test, users, items):
    import keras
    import numpy as np

    from kerasdl import _backend
    from kerasdl.collab.on_device import fit_on_device
    from kerasdl.models.collab import dot_bias

    x = {"user": users.encode(train["user"].to_numpy()),
         "item": items.encode(train["item"].to_numpy())}
    y = train["rating"].to_numpy(np.float32)
    keras.utils.set_random_seed(0)
    model = dot_bias(len(users), len(items), 50, y_range=(0.0, 5.5), l2=None)
    spe = args.spe if loop == "fit_spe" else 1
    lr = args.lr * (batch_size / 1024) ** 0.5
    model.compile(keras.optimizers.AdamW(lr, weight_decay=0.4), "mse",
                  steps_per_execution=spe)
    times = []
    for epoch in range(1 + args.epochs):
        start = time.perf_counter()
        if loop == "device":
            fit_on_device(model, x, y, batch_size=batch_size,
                                   epochs=1, seed=epoch)
        else:
            model.fit(x, y, batch_size=batch_size, epochs=1, verbose=0)
        _backend.synchronize(model.trainable_variables[0].value)
        times.append(time.perf_counter() - start)
    pred = model.predict(
        {"user": users.encode(test["user"].to_numpy()),
         "item": items.encode(test["item"].to_numpy())},
        batch_size=8192, verbose=0).ravel()
    rmse = float(np.sqrt(np.mean((pred - test["rating"].to_numpy()) ** 2)))
    per_epoch = statistics.median(times[1:])
    acc = _backend.accelerator()
    return {"backend": keras.backend.backend(),
            "device": acc["name"] if acc["kind"] == "gpu" else "cpu",
            "loop": loop, "steps_per_execution": spe,
            "batch_size": batch_size, "s_per_epoch": round(per_epoch, 4),
            "compile_epoch_s": round(times[0], 2),
            "ratings_per_s": round(len(y) / per_epoch),
            "rmse_u1": round(rmse, 4), "epochs": 1 + args.epochs,
            "lr": lr}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", required=True, help="the ml-100k folder")
    p.add_argument("--loops", default="fit,fit_spe,device")
    p.add_argument("--batch-sizes", default="64,1024,8192")
    p.add_argument("--epochs", type=int, default=3, help="timed epochs")
    p.add_argument("--spe", type=int, default=250,
                   help="steps_per_execution of the fit_spe loop")
    p.add_argument("--lr", type=float, default=1e-2,
                   help="rate at batch 1024, scaled by sqrt(batch/1024)")
    args = p.parse_args(argv)

    from kerasdl.collab.folds import get_splits
    from kerasdl.collab.recipes import make_encoders
    from kerasdl.data.ratings import read_movielens

    data = read_movielens(args.data)
    part = get_splits(data, "u1")[0]
    users, items = make_encoders(data.ratings)
    for loop in args.loops.split(","):
        for bs in (int(b) for b in args.batch_sizes.split(",")):
            row = measure(loop, bs, args, part.train, part.test, users,
                          items)
            print(json.dumps(row, sort_keys=True), flush=True)


if __name__ == "__main__":
    main()
