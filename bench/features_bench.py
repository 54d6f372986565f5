"""Feature extraction speed: VGG16 up to block5_conv3 (random weights give
the same speed as ImageNet ones), one JSON line per measurement.

    KERAS_BACKEND=jax python bench/features_bench.py [--quick]
        [--statefarm /tmp/data/statefarm-80x60]

Measures: inputs already on the device; end to end from uint8 host arrays
to features in host memory (kerasdl's pipelined engine, and a plain
predict_on_batch from float32 for comparison); precompute() to disk; and
from JPEG files (the 80x60 State Farm set upsampled on the fly, and 224x224
JPEG copies written by this script), with the decode rate alone.
"""

import argparse
import json
import os
import sys
import tempfile
import time

import keras
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(
    __file__))))

from kerasdl import _backend  # noqa: E402
from kerasdl.features import _engine  # noqa: E402
from kerasdl.features import precompute  # noqa: E402
from kerasdl.models import conv_base  # noqa: E402
from kerasdl.models import vgg16  # noqa: E402


def emit(**row):
    row.setdefault("backend", keras.backend.backend())
    row.setdefault("device", _backend.accelerator()["name"])
    print(json.dumps(row), flush=True)


def timed(fn, repeat):
    fn()  # warm-up (compilation)
    t = time.perf_counter()
    for _ in range(repeat):
        out = fn()
    _backend.synchronize(out)
    return time.perf_counter() - t


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--statefarm", default="/tmp/data/statefarm-80x60")
    ap.add_argument("--policy", default="mixed_bfloat16")
    args = ap.parse_args()
    size, bs = (32, 8) if args.quick else (224, 128)
    reps = 2 if args.quick else 30
    keras.config.set_dtype_policy(args.policy)
    model = conv_base(vgg16((size, size, 3), include_top=False,
                            input_dtype="uint8"), "block5_conv3")
    keras.config.set_dtype_policy("float32")
    rng = np.random.default_rng(0)
    n_host = bs * (2 if args.quick else 16)
    host = rng.integers(0, 256, (n_host, size, size, 3), dtype=np.uint8)
    common = dict(policy=args.policy, size=size, batch=bs,
                  layer="block5_conv3")

    step, _ = _engine.make_step(model, None, "bfloat16")
    xd = _backend.to_device(host[:bs])
    sec = timed(lambda: step(xd), reps)
    emit(what="on_device", images_per_s=round(reps * bs / sec, 1), **common)

    # end to end: host uint8 -> device -> features (fp16) in host memory
    n_chunks = reps * 2
    sink_buf = np.empty((n_host, *model.output_shape[1:]), np.float16)
    step16, _ = _engine.make_step(model, None, "float16")

    def load(k):
        i = (k * bs) % n_host
        return host[i:i + bs], [], bs

    def sink(k, y):
        i = (k * bs) % n_host
        sink_buf[i:i + bs] = y

    for depth in (0, 2, 4):
        _engine.run(step16, 2, load, sink, depth=depth)  # warm-up
        t = time.perf_counter()
        _engine.run(step16, n_chunks, load, sink, depth=depth)
        sec = time.perf_counter() - t
        emit(what="host_uint8_to_host_features", depth=depth,
             images_per_s=round(n_chunks * bs / sec, 1), **common)

    f32 = host[:bs].astype("float32")
    model.predict_on_batch(f32)
    t = time.perf_counter()
    for _ in range(max(2, reps // 3)):
        model.predict_on_batch(f32)
    sec = time.perf_counter() - t
    emit(what="predict_on_batch_float32_host",
         images_per_s=round(max(2, reps // 3) * bs / sec, 1), **common)

    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        fs = precompute(model, host, os.path.join(tmp, "f"), layer=None,
                        compute_dtype="auto", verbose=0)
        sec = time.perf_counter() - t
        emit(what="precompute_to_disk_incl_compile", n=len(fs),
             images_per_s=round(len(fs) / sec, 1),
             gb_written=round(fs.features.nbytes / 1e9, 2), **common)
        big = np.concatenate([host] * (1 if args.quick else 4))
        from kerasdl.features._source import Source as _Source

        t = time.perf_counter()
        _Source(big)
        emit(what="data_fingerprint", n=len(big),
             seconds=round(time.perf_counter() - t, 2))
        t = time.perf_counter()
        fs = precompute(model, big, os.path.join(tmp, "g"), layer=None,
                        verbose=0)
        sec = time.perf_counter() - t
        emit(what="precompute_to_disk_step_reused", n=len(fs),
             images_per_s=round(len(fs) / sec, 1),
             gb_written=round(fs.features.nbytes / 1e9, 2), **common)
    if os.path.isdir(args.statefarm):
        jpeg_bench(model, args, size, bs, common)


def jpeg_bench(model, args, size, bs, common):
    from PIL import Image

    from kerasdl.data.images import image_files
    from kerasdl.data.images import image_folder

    limit = 256 if args.quick else 6144
    src = image_folder(os.path.join(args.statefarm, "train"),
                       image_size=(size, size), batch_size=bs)
    pick = np.random.default_rng(0).permutation(len(src.paths))[:limit]
    paths = [src.paths[i] for i in pick]
    threads = os.cpu_count()
    with tempfile.TemporaryDirectory() as tmp:
        big = []
        for i, p in enumerate(paths):  # 224x224 JPEG copies
            out = os.path.join(tmp, f"{i}.jpg")
            Image.open(p).convert("RGB").resize((size, size)).save(
                out, quality=90)
            big.append(out)
        for name, files in (("statefarm_80x60_upsampled", paths),
                            ("jpeg_224x224", big)):
            b = image_files(files, image_size=(size, size), batch_size=bs,
                            threads=threads)
            t = time.perf_counter()
            for i in range(len(b)):
                b[i]
            sec = time.perf_counter() - t
            emit(what="decode_only", source=name, threads=threads,
                 images_per_s=round(len(files) / sec, 1), **common)
            t = time.perf_counter()
            fs = precompute(model, b, os.path.join(tmp, name), layer=None,
                            verbose=0)
            sec = time.perf_counter() - t
            emit(what="jpeg_files_to_disk_features", source=name,
                 threads=threads, n=len(fs),
                 images_per_s=round(len(fs) / sec, 1), **common)


if __name__ == "__main__":
    main()
