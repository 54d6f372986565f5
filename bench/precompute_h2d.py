"""precompute's engine alone (VGG16 to block5_conv3, bf16, 224x224, uint8
array of 8,192 images, results fetched to host memory and dropped) on 1 and
2 devices, with three ways of getting each chunk of images onto its device:

- ``pageable``: ``jax.device_put`` of the numpy slice (what precompute does);
- ``pinned``: the slice first copied into page-locked host memory of that
  device (``memory_kind="pinned_host"``), then moved to the device;
- ``resident``: the chunks already on their device before the clock starts
  (the ceiling: no host-to-device copy at all; on the 2-GPU machine its
  two-device run did not finish within the 90-120 s the command was given,
  which was not examined: it runs on simulated CPU devices).

Run from the repository root on a machine with 2 GPUs (JAX):

    XLA_PYTHON_CLIENT_PREALLOCATE=false KERAS_BACKEND=jax python bench/precompute_h2d.py

One JSON line per measurement (median of --repeats); bench/NOTES.md."""

import argparse
import json
import statistics
import sys
import time

import numpy as np

sys.path.insert(0, "bench")


def emit(**row):
    print(json.dumps(row), flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--images", type=int, default=8192)
    ap.add_argument("--chunk", type=int, default=128)
    ap.add_argument("--devices", default="1,2")
    ap.add_argument("--modes", default="pageable,pinned,resident")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    import jax

    import kerasdl
    from kerasdl import _backend
    from kerasdl.features import _engine
    from precompute_vs_torch import array_loader
    from precompute_vs_torch import engine_steps
    from precompute_vs_torch import pinned_to_device
    from precompute_vs_torch import vgg_base

    plain_to_device = _backend.to_device
    pinned = pinned_to_device(plain_to_device)

    x = np.random.default_rng(0).integers(0, 256, (args.images, 224, 224, 3),
                                          dtype=np.uint8)
    chunk = args.chunk
    n_chunks = -(-len(x) // chunk)
    for count in map(int, args.devices.split(",")):
        if count > len(jax.devices()):
            emit(what="skipped", devices=count)
            continue
        with kerasdl.data_parallel(devices=count):
            steps, devices = engine_steps(vgg_base(224))
            names = devices or [None]
            for mode in args.modes.split(","):
                resident = {}
                if mode == "resident":
                    for k in range(n_chunks):
                        d = names[k % len(names)]
                        target = jax.devices()[0] if d is None else next(
                            dv for dv in jax.devices() if str(dv) == d)
                        xb, _ = _engine.as_uint8_batch(
                            x[k * chunk:(k + 1) * chunk], chunk)
                        resident[k] = jax.device_put(xb, target)
                    jax.block_until_ready(list(resident.values()))

                load = array_loader(x, chunk) if mode != "resident" else (
                    lambda k: (resident[k], [], min(chunk, len(x) - k * chunk)))

                _backend.to_device = pinned if mode == "pinned" \
                    else plain_to_device
                try:
                    _engine.run(steps, 2 * count, load, lambda k, y: None)
                    times = []
                    for _ in range(args.repeats):
                        t = time.perf_counter()
                        _engine.run(steps, n_chunks, load, lambda k, y: None,
                                    threads=2)
                        times.append(time.perf_counter() - t)
                finally:
                    _backend.to_device = plain_to_device
                sec = statistics.median(times)
                emit(what="engine_h2d", mode=mode, devices=count,
                     images=len(x), images_per_s=round(len(x) / sec),
                     all_images_per_s=[round(len(x) / t) for t in times])
                resident.clear()


if __name__ == "__main__":
    main()
