"""precompute of a uint8 array (8,192 x 224x224, VGG16 block5, bf16) with 1, 2,
4, 8 writer threads on 1 and 2 devices, into each folder given.

Run from the repository root:

    KERAS_BACKEND=jax python bench/writer_threads.py /tmp/st /dev/shm/st

One JSON line per measurement (2026-11-30, bench/NOTES.md)."""

import os, sys, time, json, tempfile, shutil
sys.path.insert(0, "bench")
import numpy as np, keras, kerasdl
from kerasdl.features import compute, store
from precompute_vs_torch import vgg_base
def emit(**r): print(json.dumps(r), flush=True)
x = np.random.default_rng(0).integers(0, 256, (8192, 224, 224, 3), dtype=np.uint8)
Orig = store.Run
cfg = {"threads": 2, "pending": None}
class Run(Orig):
    def __init__(self, *a, writer_threads=2, **k):
        super().__init__(*a, writer_threads=cfg["threads"], **k)
compute.store.Run = Run
for where in sys.argv[1:]:
    os.makedirs(where, exist_ok=True)
    for count in (1, 2):
        with kerasdl.data_parallel(devices=count):
            model = vgg_base(224)
            out = tempfile.mkdtemp(dir=where)
            kerasdl.precompute(model, x[:512], os.path.join(out, "warm"), layer=None, chunk_rows=128, verbose=0)
            for th in (1, 2, 4, 8):
                cfg["threads"] = th
                best = 0
                for rep in range(2):
                    p = os.path.join(out, f"run{th}_{rep}")
                    t = time.perf_counter()
                    kerasdl.precompute(model, x, p, layer=None, chunk_rows=128, verbose=0)
                    best = max(best, len(x) / (time.perf_counter() - t))
                    shutil.rmtree(p)
                emit(what="array_to_store", where=where, devices=count, writer_threads=th, best_of_2_images_per_s=round(best))
            shutil.rmtree(out, ignore_errors=True)
