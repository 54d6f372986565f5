"""Cost of augmentation inside the course's conv1 (conv_bn) on State Farm
80x60, batch 64: seconds per epoch with no augmentation, with kerasdl's
layers, and with Keras' RandomRotation / RandomTranslation (timed over a
few steps only, they are slow). One JSON line per measurement.

    KERAS_BACKEND=jax python bench/augment_bench.py
        [--data /tmp/data/statefarm-80x60] [--quick]
"""

import argparse
import json
import os
import sys
import time

import keras
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(
    __file__))))

from kerasdl import _backend  # noqa: E402
from kerasdl.data.augment import augmentation  # noqa: E402
from kerasdl.data.augment import kind_layer  # noqa: E402
from kerasdl.data.images import image_folder  # noqa: E402
from kerasdl.models import conv_bn  # noqa: E402


class StepTimer(keras.callbacks.Callback):
    def on_epoch_begin(self, epoch, logs=None):
        self.t = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.last = time.perf_counter() - self.t


def build(aug, shape):
    inputs = keras.Input(shape)
    x = inputs if aug is None else aug(inputs)
    model = keras.Model(inputs, conv_bn(shape, 10)(x))
    model.compile("adam", "sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    return model


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default="/tmp/data/statefarm-80x60")
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    t = time.perf_counter()
    batches = image_folder(os.path.join(args.data, "train"),
                           image_size=(60, 80), batch_size=256)
    x, y = batches.to_arrays()
    if args.quick:
        x, y = x[:640], y[:640]
    print(json.dumps({"what": "load_jpegs", "n": len(x),
                      "seconds": round(time.perf_counter() - t, 1)}),
          flush=True)
    bs = 64
    steps = -(-len(x) // bs)
    cases = [("none", None, None),
             ("kerasdl_rotation15", kind_layer("rotation", 15, seed=0), None),
             ("kerasdl_statefarm_preset", augmentation("statefarm", seed=0),
              None),
             ("keras_RandomRotation", keras.layers.RandomRotation(
                 15 / 360, seed=0), 20),
             ("keras_RandomTranslation", keras.layers.RandomTranslation(
                 0.05, 0.1, seed=0), 20)]
    base = None
    for name, aug, few in cases:
        keras.utils.set_random_seed(0)
        model = build(aug, x.shape[1:])
        timer = StepTimer()
        n_steps = steps if few is None else few
        # epoch 1 compiles; epoch 2 is timed
        model.fit(x, y, batch_size=bs, epochs=2, steps_per_epoch=n_steps,
                  callbacks=[timer], verbose=0, shuffle=True)
        per_step = timer.last / n_steps
        epoch = per_step * steps
        base = epoch if name == "none" else base
        print(json.dumps({
            "what": "conv1_epoch", "augmentation": name,
            "jit_compile": bool(model.jit_compile), "batch": bs,
            "images": len(x), "timed_steps": n_steps,
            "ms_per_step": round(per_step * 1e3, 2),
            "epoch_seconds": round(epoch, 2),
            "x_no_augmentation": round(epoch / base, 2),
            "backend": keras.backend.backend(),
            "device": _backend.accelerator()["name"]}), flush=True)
    # the warp alone, compiled, on one batch: what the layer costs in XLA
    layer = augmentation("statefarm", seed=0)
    xb = keras.ops.convert_to_tensor(x[:bs].astype("float32"))
    u = [np.random.default_rng(0).random((bs, p.n_uniforms), np.float32)
         for p in layer.layers]
    fn = _backend.compiled_inference(
        keras.Sequential([keras.Input(x.shape[1:]),
                          keras.layers.Identity()]),
        lambda im, a, b: layer.layers[1].transform(
            layer.layers[0].transform(im, a), b))
    _backend.synchronize(fn(xb, *u))
    t = time.perf_counter()
    for _ in range(50):
        out = fn(xb, *u)
    _backend.synchronize(out)
    print(json.dumps({"what": "warp_only_compiled", "batch": bs,
                      "ms_per_batch": round((time.perf_counter() - t) / 50
                                            * 1e3, 3)}), flush=True)


if __name__ == "__main__":
    np.set_printoptions(precision=3)
    main()
