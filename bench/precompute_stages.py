"""precompute's stages on 2 devices: placement of each stream, the step alone
on inputs already on the devices, the engine with 1-4 loader threads, one-
thread host-device copies.

Run from the repository root:

    KERAS_BACKEND=jax python bench/precompute_stages.py

One JSON line per measurement (2026-11-30, bench/NOTES.md)."""

import os, sys, time, threading, queue
sys.path.insert(0, "bench")
import numpy as np, jax, keras, kerasdl
from kerasdl.features import _engine
from kerasdl import _backend
from precompute_vs_torch import emit, vgg_base

size, chunk, n = 224, 128, 8192
x = np.random.default_rng(0).integers(0, 256, (n, size, size, 3), dtype=np.uint8)
nch = n // chunk
with kerasdl.data_parallel(devices=2):
    model = vgg_base(size)
    devices = _engine.stream_devices()
    make = lambda m: _engine.make_step(m, None, "float16")[0]
    steps = _engine.device_steps(model, devices, make, "bench")
copies = _engine._COPIES[model]
for (dev, fn) in steps:
    cp = [c for k, c in copies.items() if k[0] == dev][0]
    with keras.device(dev):
        xd = jax.device_put(x[:chunk]); y = fn(xd)
    emit(what="placement", stream=dev, x=str(xd.devices()), y=str(y.devices()),
         committed_x=xd.committed, w=str(cp.trainable_variables[0].value.devices()),
         committed_w=cp.trainable_variables[0].value.committed)
jd = jax.local_devices()
# device only, inputs on device, one dispatch thread alternating
for ns in (1, 2):
    xs = [jax.device_put(x[:chunk], jd[d]) for d in range(ns)]
    fns = [steps[d][1] for d in range(ns)]
    for rep in range(2):
        ys = []
        t = time.perf_counter()
        for k in range(nch):
            d = k % ns
            with keras.device(steps[d][0]):
                ys.append(fns[d](xs[d]))
        for y in ys: y.block_until_ready()
        sec = time.perf_counter() - t
    emit(what="device_only_one_thread", streams=ns, images_per_s=round(nch*chunk/sec), ydev=str(ys[-1].devices()))
# engine threads variants
def load(k):
    xb, m = _engine.as_uint8_batch(x[k*chunk:(k+1)*chunk], chunk); return xb, [], m
for ns in (1, 2):
    for th in (1, 2, 4):
        st = steps[:ns] if ns > 1 else steps[0][1]
        if ns == 1:
            st = [steps[0]]
        _engine.run(st, 4, load, lambda k, y: None, threads=th)
        t = time.perf_counter()
        _engine.run(st, nch, load, lambda k, y: None, threads=th)
        sec = time.perf_counter() - t
        emit(what="engine", streams=ns, threads=th, images_per_s=round(n/sec))
# host copies alone: device_put of chunks to 2 devices from threads, and fetch
for ns in (1, 2):
    t = time.perf_counter()
    arrs = [jax.device_put(x[k*chunk:(k+1)*chunk], jd[k % ns]) for k in range(nch)]
    for a in arrs: a.block_until_ready()
    sec = time.perf_counter() - t
    emit(what="h2d_one_thread", devices=ns, gb_per_s=round(x.nbytes/sec/1e9, 2))
    ys = [fns[0](arrs[0]) for _ in range(nch)] if ns == 1 else None
y0 = steps[0][1](jax.device_put(x[:chunk], jd[0])); y0.block_until_ready()
ys = [y0 + 0 for _ in range(16)]; [y.block_until_ready() for y in ys]
t = time.perf_counter()
for y in ys: y.copy_to_host_async()
hs = [np.asarray(y) for y in ys]
sec = time.perf_counter() - t
emit(what="d2h_one_thread", gb_per_s=round(sum(h.nbytes for h in hs)/sec/1e9, 2))
