"""How fast the feature store takes rows: synthetic float16 chunks of VGG16
block5 features (128 x 14x14x512, 25.7 MB, 200 KB per image) handed to
``kerasdl.features.store.Run`` by 1 or 2 producer threads (one per device
stream in ``precompute``; each makes a fresh host array per chunk, as the
fetch from the device does), with 1-8 writer threads, into each folder given.
No model, no device: the store alone, from ``Run(...)`` to ``commit()``
(which syncs the file).

Run from the repository root (or with PYTHONPATH pointing at another copy of
kerasdl, to time it):

    python bench/store_intake.py /tmp/si /dev/shm/si [--images 8192] [--repeats 3]

One JSON line per measurement (best of the repeats); bench/NOTES.md."""

import argparse
import json
import os
import shutil
import tempfile
import threading
import time

import numpy as np

from kerasdl.features import store

SHAPE = (14, 14, 512)
ROWS = 128


def emit(**row):
    print(json.dumps(row), flush=True)


def intake(folder, images, producers, writer_threads, template):
    n_chunks = -(-images // ROWS)
    manifest = {"n_images": images, "passes": 0, "output_shape": list(SHAPE),
                "dtype": "float16", "labels": False, "bench": "store_intake"}
    path = tempfile.mkdtemp(dir=folder)
    try:
        t = time.perf_counter()
        run = store.Run(path, manifest, n_chunks, None, chunk_rows=ROWS,
                        writer_threads=writer_threads)

        def produce(d):
            for k in range(d, n_chunks, producers):
                rows = min(ROWS, images - k * ROWS)
                y = np.empty((rows, *SHAPE), np.float16)
                np.copyto(y, template[:rows])
                run.writer.write(k, k * ROWS, y)

        workers = [threading.Thread(target=produce, args=(d,))
                   for d in range(producers)]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        run.commit()
        return time.perf_counter() - t
    finally:
        shutil.rmtree(path, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("folders", nargs="+")
    ap.add_argument("--images", type=int, default=8192)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", default="1,2,4,8")
    ap.add_argument("--producers", default="1,2")
    args = ap.parse_args()
    template = np.random.default_rng(0).standard_normal(
        (ROWS, *SHAPE)).astype(np.float16)
    nbytes = args.images * template[0].nbytes
    for folder in args.folders:
        os.makedirs(folder, exist_ok=True)
        intake(folder, 512, 1, 2, template)  # warm: pools, page cache
        for producers in map(int, args.producers.split(",")):
            for threads in map(int, args.threads.split(",")):
                best = min(intake(folder, args.images, producers, threads,
                                  template) for _ in range(args.repeats))
                emit(what="store_intake", folder=folder, producers=producers,
                     writer_threads=threads, images=args.images,
                     images_per_s=round(args.images / best),
                     gb_per_s=round(nbytes / best / 1e9, 2),
                     code=os.path.dirname(os.path.dirname(store.__file__)))


if __name__ == "__main__":
    main()
