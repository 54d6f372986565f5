"""fit_one_cycle against fit over 1 and 8 epochs of 100 steps (conv_bn, JAX):
where one-cycle's extra time goes.

Run from the repository root:

    KERAS_BACKEND=jax python bench/one_cycle_epochs.py TAG

One JSON line per measurement (2026-11-30, bench/NOTES.md)."""

import sys, time, statistics, json, numpy as np
sys.path.insert(0, "bench")
import kerasdl
from kerasdl import _backend
from lr_find_bench import build, SHAPE
rng = np.random.default_rng(0)
x = rng.integers(0, 255, (64 * 100, *SHAPE), dtype="uint8"); y = rng.integers(0, 10, 64 * 100)
model = build("conv_bn")
out = {}
for E in (1, 8):
    fit = lambda: model.fit(x, y, batch_size=64, epochs=E, verbose=0, shuffle=False)
    oc = lambda: kerasdl.fit_one_cycle(model, (x, y), E, 1e-3, batch_size=64, verbose=0, shuffle=False)
    fit(); oc()
    t = {"fit": [], "oc": []}
    for _ in range(5):
        for k, f in (("fit", fit), ("oc", oc)):
            s = time.perf_counter(); f(); _backend.synchronize(model.trainable_variables); t[k].append(time.perf_counter() - s)
    m = {k: statistics.median(v) for k, v in t.items()}
    print(json.dumps({"tag": sys.argv[1], "epochs": E, "steps": 100 * E, "fit_s": round(m["fit"], 4), "oc_s": round(m["oc"], 4), "extra_ms": round((m["oc"] - m["fit"]) * 1000, 1), "ratio": round(m["oc"] / m["fit"], 3)}), flush=True)
