"""Host time of fit_one_cycle over plain fit on the CPU (JAX), where the
device costs nothing: what the schedule adds in Python per fit (install,
uninstall, records) and per step (the arrays of state Keras' JAX trainer
carries and tracks every step).

A small Dense + BatchNormalization model, Adam, 2 epochs x 100 steps of
64; medians of ``--repeats`` interleaved pairs after two warm-up pairs.
Also prints the arrays of training state during each kind of fit.

    KERAS_BACKEND=jax python bench/one_cycle_host.py TAG

Public kerasdl names only, so the same file times another checkout (run
it from that checkout's root). One JSON line (2026-11-30, bench/NOTES.md).
"""

import argparse
import json
import statistics
import time

import keras
import numpy as np

import kerasdl


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("tag")
    p.add_argument("--repeats", type=int, default=15)
    args = p.parse_args()
    keras.utils.set_random_seed(0)
    model = keras.Sequential([
        keras.Input((8,)), keras.layers.Dense(16, activation="relu"),
        keras.layers.BatchNormalization(),
        keras.layers.Dense(10, activation="softmax")])
    model.compile(keras.optimizers.Adam(1e-3),
                  "sparse_categorical_crossentropy")
    rng = np.random.default_rng(0)
    x = rng.normal(size=(6400, 8)).astype("float32")
    y = rng.integers(0, 10, 6400)
    kw = dict(batch_size=64, verbose=0, shuffle=False)
    arrays = {}

    class Count(keras.callbacks.Callback):
        def __init__(self, kind):
            super().__init__()
            self.kind = kind

        def on_train_batch_end(self, batch, logs=None):
            m = self.model
            arrays[self.kind] = sum(len(v) for v in (
                m.trainable_variables, m.non_trainable_variables,
                m.optimizer.variables, m.metrics_variables))

    def fit(callbacks=()):
        model.fit(x, y, epochs=2, callbacks=list(callbacks), **kw)

    def one(callbacks=()):
        kerasdl.fit_one_cycle(model, (x, y), 2, 1e-3,
                              callbacks=list(callbacks), **kw)

    def run(fn):
        start = time.perf_counter()
        fn()
        np.asarray(model.trainable_variables[0].value)
        return time.perf_counter() - start

    fit([Count("fit")])
    one([Count("one_cycle")])
    for _ in range(2):
        run(fit), run(one)
    a, b = [], []
    for _ in range(args.repeats):
        a.append(run(fit))
        b.append(run(one))
    print(json.dumps({
        "bench": "one_cycle_host", "tag": args.tag, "steps": 200,
        "fit_ms": round(statistics.median(a) * 1000, 2),
        "one_cycle_ms": round(statistics.median(b) * 1000, 2),
        "extra_ms": round((statistics.median(b) - statistics.median(a))
                          * 1000, 2),
        "state_arrays": arrays, "repeats": args.repeats,
        "backend": keras.backend.backend()}), flush=True)


if __name__ == "__main__":
    main()
