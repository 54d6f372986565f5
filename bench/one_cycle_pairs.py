"""fit_one_cycle against plain fit, measured as paired runs with an A/A
control, so that the ratio comes with its own noise floor.

Each round runs, in turn: a plain fit (A), fit_one_cycle (B) and a second
plain fit (A'), all over the same epochs, batches and data (conv_bn,
60x80x3 uint8, no shuffling, as ``lr_find_bench.py``). The printed
ratios are the medians over rounds of B / A and A' / A (the control:
how far two identical fits differ), with their quartiles. A difference
between versions smaller than the control's spread is noise.

    KERAS_BACKEND=jax python bench/one_cycle_pairs.py --rounds 41 TAG

Uses public kerasdl names only, so the same file times another checkout
(put it first on PYTHONPATH). One JSON line per model and epoch count.
"""

import argparse
import json
import statistics
import time

import keras
import numpy as np

import kerasdl

SHAPE = (60, 80, 3)


def quartiles(values):
    q = statistics.quantiles(values, n=4)
    return round(q[0], 3), round(statistics.median(values), 3), round(q[2], 3)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("tag")
    p.add_argument("--models", default="conv_bn")
    p.add_argument("--epochs", default="2")
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--steps", type=int, default=100)
    p.add_argument("--rounds", type=int, default=41)
    args = p.parse_args()
    rng = np.random.default_rng(0)
    n = args.batch * args.steps
    x = rng.integers(0, 255, (n, *SHAPE), dtype="uint8")
    y = rng.integers(0, 10, n)
    kw = dict(batch_size=args.batch, verbose=0, shuffle=False)
    for name in args.models.split(","):
        keras.utils.set_random_seed(0)
        model = getattr(kerasdl, name)(SHAPE, 10)
        model.compile(keras.optimizers.Adam(1e-3),
                      "sparse_categorical_crossentropy")

        def run(fn):
            start = time.perf_counter()
            fn()
            np.asarray(model.trainable_variables[0].value)  # wait for it
            return time.perf_counter() - start

        for epochs in [int(e) for e in args.epochs.split(",")]:
            fit = lambda: model.fit(x, y, epochs=epochs, **kw)  # noqa: E731
            one = lambda: kerasdl.fit_one_cycle(  # noqa: E731
                model, (x, y), epochs, 1e-3, **kw)
            run(fit), run(one)
            a, b, c = [], [], []
            for _ in range(args.rounds):
                a.append(run(fit))
                b.append(run(one))
                c.append(run(fit))
            ratio = [bi / ai for ai, bi in zip(a, b)]
            control = [ci / ai for ai, ci in zip(a, c)]
            print(json.dumps({
                "bench": "one_cycle_pairs", "tag": args.tag, "model": name,
                "epochs": epochs, "steps": epochs * args.steps,
                "batch": args.batch, "rounds": args.rounds,
                "fit_ms": round(statistics.median(a) * 1000, 1),
                "one_cycle_ms": round(statistics.median(b) * 1000, 1),
                "ratio_q1_median_q3": quartiles(ratio),
                "control_q1_median_q3": quartiles(control),
                "ratio_of_medians": round(statistics.median(b)
                                          / statistics.median(a), 3),
                "backend": keras.backend.backend()}), flush=True)


if __name__ == "__main__":
    main()
