"""Data-parallel scaling: images/s of feature precompute and of training on
1, 2, 4 ... devices, one JSON line per measurement, with the speed-up over
one device and the efficiency (speed-up / devices).

    KERAS_BACKEND=jax python bench/distribute_bench.py [--devices 1,2,4]
        [--quick] [--simulate N]

precompute: VGG16 up to block5_conv3 (random weights; ImageNet ones run at
the same speed) over random uint8 224x224 images written to a temporary
folder with kerasdl.precompute, 128 rows per device in every chunk, bf16 on
a GPU. train: the course's conv_bn on 60x80 images, one epoch timed after
a compiled warm-up epoch, at a global batch of 64 per device (it grows
with the devices) and at a fixed global batch (64 x the most devices
measured), both by default (``--train-batch per-device|global|both``). ``--simulate N``
splits the CPU into N devices (checks the code path; CPU timings say
nothing about GPU scaling).
"""

import argparse
import json
import os
import shutil
import sys
import tempfile
import time

import keras
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(
    __file__))))

from kerasdl import _backend  # noqa: E402
from kerasdl import distribute  # noqa: E402


def emit(**row):
    row.setdefault("backend", keras.backend.backend())
    row.setdefault("device", _backend.accelerator()["name"])
    print(json.dumps(row), flush=True)


def precompute_speed(dp, images, size):
    import kerasdl

    with dp:
        base = kerasdl.conv_base(kerasdl.vgg16(
            (size, size, 3), include_top=False, input_dtype="uint8"),
            "block5_conv3")
        rows = 128 * dp.num_replicas
        folder = tempfile.mkdtemp()
        try:
            # warm-up: compiles the step for this chunk shape
            kerasdl.precompute(base, images[:rows], os.path.join(
                folder, "warm"), layer="block5_conv3", verbose=0,
                chunk_rows=rows)
            start = time.perf_counter()
            kerasdl.precompute(base, images, os.path.join(folder, "run"),
                               layer="block5_conv3", verbose=0,
                               chunk_rows=rows)
            seconds = time.perf_counter() - start
        finally:
            shutil.rmtree(folder, ignore_errors=True)
    return len(images) / seconds, seconds


def train_speed(dp, x, y, batch):
    import kerasdl

    with dp:
        keras.utils.set_random_seed(0)
        model = kerasdl.conv_bn(x.shape[1:], 10)
        model.compile(keras.optimizers.Adam(1e-3),
                      "sparse_categorical_crossentropy")
        model.fit(x, y, batch_size=batch, epochs=1, verbose=0)  # compile
        start = time.perf_counter()
        model.fit(x, y, batch_size=batch, epochs=1, verbose=0)
        seconds = time.perf_counter() - start
    return len(x) / seconds, seconds


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--devices", default=None,
                    help="comma-separated device counts (default: 1 and "
                    "every power of two up to all)")
    ap.add_argument("--what", default="precompute,train")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--simulate", type=int, default=0)
    ap.add_argument("--train-batch", default="both",
                    choices=["per-device", "global", "both"],
                    help="64 rows per device, a fixed global batch (64 x "
                    "the most devices), or both")
    args = ap.parse_args()
    if args.simulate:
        distribute.simulate_cpu_devices(args.simulate)
    available = len(distribute.data_parallel().devices)
    counts = ([int(c) for c in args.devices.split(",")] if args.devices
              else [c for c in (1, 2, 4, 8, 16) if c <= available])
    size, n_pre, n_train = ((32, 512, 1024) if args.quick
                            else (224, 8192, 32768))
    rng = np.random.default_rng(0)
    on_gpu = _backend.accelerator()["kind"] == "gpu"
    if on_gpu:
        keras.config.set_dtype_policy("mixed_bfloat16")
    what = args.what.split(",")
    base = {}
    if "precompute" in what:
        images = rng.integers(0, 256, (n_pre, size, size, 3), dtype="uint8")
        for c in counts:
            speed, seconds = precompute_speed(
                distribute.data_parallel(c), images, size)
            base.setdefault("precompute", speed)
            emit(bench="distribute", what="precompute", devices=c,
                 images=n_pre, size=size, images_per_s=round(speed, 1),
                 seconds=round(seconds, 2),
                 speedup=round(speed / base["precompute"], 3),
                 efficiency=round(speed / base["precompute"] / c, 3))
    if "train" in what:
        x = rng.integers(0, 256, (n_train, 60, 80, 3)).astype("float32")
        y = rng.integers(0, 10, n_train)
        modes = (["per-device", "global"] if args.train_batch == "both"
                 else [args.train_batch])
        for mode in modes:
            for c in counts:
                batch = 64 * (c if mode == "per-device" else max(counts))
                speed, seconds = train_speed(distribute.data_parallel(c),
                                             x, y, batch)
                base.setdefault(mode, speed)
                emit(bench="distribute", what="train", batch_mode=mode,
                     global_batch=batch, devices=c, images=n_train,
                     images_per_s=round(speed, 1), seconds=round(seconds, 2),
                     speedup=round(speed / base[mode], 3),
                     efficiency=round(speed / base[mode] / c, 3))


if __name__ == "__main__":
    main()
