"""precompute's engine on 1 and 2 devices with results fetched to ordinary
host memory ("plain") and to pinned host memory ("pinned"), and the
copies alone in each direction.

Run from the repository root:

    KERAS_BACKEND=jax python bench/precompute_fetch.py

One JSON line per measurement (2026-11-30, bench/NOTES.md)."""

import os, sys, time
sys.path.insert(0, "bench")
import numpy as np, jax, keras, kerasdl
from jax.sharding import SingleDeviceSharding as SDS
from kerasdl.features import _engine
from kerasdl import _backend
from precompute_vs_torch import emit, vgg_base

size, chunk, n = 224, 128, 8192
x = np.random.default_rng(0).integers(0, 256, (n, size, size, 3), dtype=np.uint8)
nch = n // chunk
jd = jax.local_devices()
emit(what="memories", kinds=[str(m.kind) for m in jd[0].addressable_memories()])
ys = [jax.device_put(np.ones((chunk, 14, 14, 512), "float16") * i, jd[i % 2]) for i in range(32)]
[y.block_until_ready() for y in ys]
def d2h(ys, how):
    t = time.perf_counter()
    if how == "plain":
        for y in ys: y.copy_to_host_async()
        hs = [np.asarray(y) for y in ys]
    elif how == "pinned":
        ps = [jax.device_put(y, y.sharding.with_memory_kind("pinned_host")) for y in ys]
        hs = [np.asarray(p) for p in ps]
    elif how == "pinned_nocopy":
        ps = [jax.device_put(y, y.sharding.with_memory_kind("pinned_host")) for y in ys]
        [p.block_until_ready() for p in ps]; hs = ps
    sec = time.perf_counter() - t
    return round(sum(h.nbytes for h in hs) / sec / 1e9, 2)
for how in ("plain", "pinned", "pinned_nocopy", "plain", "pinned"):
    try:
        emit(what="d2h", how=how, dev0_only=d2h(ys[0::2], how), both=d2h(ys, how))
    except Exception as e:
        emit(what="d2h", how=how, error=str(e)[:300])
def h2d(how, ndev):
    t = time.perf_counter()
    out = []
    for k in range(nch):
        d = jd[k % ndev]; xb = x[k*chunk:(k+1)*chunk]
        if how == "plain":
            out.append(jax.device_put(xb, d))
        else:
            p = jax.device_put(xb, SDS(d, memory_kind="pinned_host"))
            out.append(jax.device_put(p, SDS(d, memory_kind="device")))
    [o.block_until_ready() for o in out]
    return round(x.nbytes / (time.perf_counter() - t) / 1e9, 2)
for how in ("plain", "pinned", "plain", "pinned"):
    try:
        emit(what="h2d", how=how, one=h2d(how, 1), two=h2d(how, 2))
    except Exception as e:
        emit(what="h2d", how=how, error=str(e)[:300])
# engine with pinned fetch
with kerasdl.data_parallel(devices=2):
    model = vgg_base(size)
    devices = _engine.stream_devices()
    make = lambda m: _engine.make_step(m, None, "float16")[0]
    steps = _engine.device_steps(model, devices, make, "bench")
def load(k):
    xb, m = _engine.as_uint8_batch(x[k*chunk:(k+1)*chunk], chunk); return xb, [], m
plain_fetch = _backend.start_fetch
def pinned_fetch(y):
    return jax.device_put(y, y.sharding.with_memory_kind("pinned_host"))
import kerasdl.features._engine as E
for fetch in ("plain", "pinned"):
    E._backend.start_fetch = plain_fetch if fetch == "plain" else pinned_fetch
    for ns in (1, 2):
        for th in (2, 4):
            st = steps[:ns]
            try:
                _engine.run(st, 4, load, lambda k, y: None, threads=th)
                t = time.perf_counter()
                _engine.run(st, nch, load, lambda k, y: None, threads=th)
                sec = time.perf_counter() - t
                emit(what="engine", fetch=fetch, streams=ns, threads=th, images_per_s=round(n/sec))
            except Exception as e:
                emit(what="engine", fetch=fetch, error=str(e)[:300]); break
E._backend.start_fetch = plain_fetch
