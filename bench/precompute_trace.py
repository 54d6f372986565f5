"""Where a precompute run spends its time: a uint8 array (8,192 x 224x224,
VGG16 to block5_conv3, bf16) -> float16 features, on 1 and 2 devices, run
--repeats times in one process, with every stage timed (the library's
functions wrapped by this script: creating the store, loading and copying a
chunk to its device, dispatching, fetching to the host, waiting for room in
the writer, writing + digesting, committing).

Run from the repository root (JAX):

    XLA_PYTHON_CLIENT_PREALLOCATE=false KERAS_BACKEND=jax python bench/precompute_trace.py --work /dev/shm/pt

One JSON line per run: images/s and, per stage, the seconds summed over its
calls and the number of calls; bench/NOTES.md."""

import argparse
import collections
import json
import os
import shutil
import sys
import tempfile
import threading
import time

import numpy as np

sys.path.insert(0, "bench")

TOTALS = collections.defaultdict(float)
CALLS = collections.Counter()
LOCK = threading.Lock()


def timed(owner, attr, stage):
    original = getattr(owner, attr)

    def wrapper(*a, **k):
        t = time.perf_counter()
        try:
            return original(*a, **k)
        finally:
            with LOCK:
                TOTALS[stage] += time.perf_counter() - t
                CALLS[stage] += 1

    setattr(owner, attr, wrapper)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--images", type=int, default=8192)
    ap.add_argument("--chunk", type=int, default=128)
    ap.add_argument("--devices", default="1,2")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--work", default=tempfile.gettempdir())
    ap.add_argument("--fresh", action="store_true",
                    help="a new copy of the images for every call (as a "
                    "user's new data: host memory the runtime has not seen)")
    ap.add_argument("--pinned", action="store_true",
                    help="stage each chunk in pinned host memory before "
                    "its copy to the device")
    args = ap.parse_args()
    import jax

    import kerasdl
    from kerasdl import _backend
    from kerasdl.features import _engine, store
    from precompute_vs_torch import pinned_to_device
    from precompute_vs_torch import vgg_base

    if args.pinned:
        _backend.to_device = pinned_to_device(_backend.to_device)
    timed(store.Run, "__init__", "store_open")
    timed(store.Run, "commit", "store_commit")
    timed(store.ChunkWriter, "write", "writer_wait_for_room")
    timed(store.ChunkWriter, "_write", "writer_thread_write_and_digest")
    timed(_backend, "to_device", "loader_to_device")
    timed(_backend, "start_fetch", "dispatch_start_fetch")
    timed(_backend, "to_host", "fetch_to_host")
    timed(_engine, "as_uint8_batch", "loader_slice")
    os.makedirs(args.work, exist_ok=True)
    x = np.random.default_rng(0).integers(0, 256, (args.images, 224, 224, 3),
                                          dtype=np.uint8)
    for count in map(int, args.devices.split(",")):
        if count > len(jax.devices()):
            continue
        with kerasdl.data_parallel(devices=count) as dp:
            model = vgg_base(224)
            out = tempfile.mkdtemp(dir=args.work)
            rows = args.chunk * dp.num_replicas
            kerasdl.precompute(model, x[:2 * rows], os.path.join(out, "warm"),
                               layer=None, chunk_rows=args.chunk, verbose=0)
            for rep in range(args.repeats):
                TOTALS.clear()
                CALLS.clear()
                path = os.path.join(out, f"run{rep}")
                if args.fresh:
                    x = x.copy()
                t = time.perf_counter()
                kerasdl.precompute(model, x, path, layer=None,
                                   chunk_rows=args.chunk, verbose=0)
                sec = time.perf_counter() - t
                print(json.dumps({
                    "what": "precompute_trace", "devices": count, "run": rep,
                    "fresh": args.fresh, "pinned": args.pinned,
                    "work": args.work, "images_per_s": round(len(x) / sec),
                    "seconds": round(sec, 3),
                    "stages": {k: [round(v, 3), CALLS[k]]
                               for k, v in sorted(TOTALS.items())}}),
                    flush=True)
                shutil.rmtree(path)
            shutil.rmtree(out, ignore_errors=True)


if __name__ == "__main__":
    main()
