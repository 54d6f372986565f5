"""Backbone throughput: inference and training images per second, one JSON
line per measurement, for kerasdl's backbones and (beside them, same GPU)
timm's.

    KERAS_BACKEND=jax python bench/backbone_bench.py keras
        [--names efficientnet_lite0,resnet50] [--quick]
    python bench/backbone_bench.py timm [--names ...] [--quick]

Both sides: the whole 1000-class classifier at 224x224, bfloat16 compute
(Keras' ``mixed_bfloat16`` policy; torch autocast to bfloat16 with
channels-last tensors), random weights (speed does not depend on them),
random inputs (never zeros), several input batches in rotation so that no
cache holds the data. Inference batch 256, training batch 128 with SGD
(momentum 0.9) and cross-entropy.

Keras is measured twice: ``engine`` is one compiled step on inputs already
on the device (the framework's ceiling; ``model.stateless_call`` under
``jax.jit`` for inference, ``model.train_on_batch`` on device arrays for
training) and ``fit``/``predict`` is what a user calls with uint8 numpy
arrays on the host (transfers included). Each figure is the median of
``--repeats`` timed runs of ``--steps`` steps after a warm-up, with the
device synchronised before the clock is read.
"""

import argparse
import json
import os
import statistics
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(
    __file__))))

TIMM_NAMES = {"efficientnet_lite0": "tf_efficientnet_lite0",
              "resnet50": "resnet50", "resnet50v2": "resnetv2_50",
              "mobilenetv3small": "mobilenetv3_small_100",
              "convnext_tiny": "convnext_tiny",
              "efficientnetv2b0": "tf_efficientnetv2_b0"}


def emit(**row):
    print(json.dumps(row), flush=True)


def median_rate(run, images_per_call, steps, repeats):
    """Images per second: median over ``repeats`` timings of ``steps``
    calls of ``run`` (which synchronises at the end when told)."""
    run(2, sync=True)  # warm-up: compilation, autotuning
    rates = []
    for _ in range(repeats):
        t = time.perf_counter()
        run(steps, sync=True)
        rates.append(images_per_call * steps / (time.perf_counter() - t))
    return statistics.median(rates), min(rates), max(rates)


def keras_side(args):
    import jax
    import keras

    import kerasdl

    keras.config.set_dtype_policy("mixed_bfloat16")
    rng = np.random.default_rng(0)
    for name in args.names:
        size = 64 if args.quick else 224
        model = kerasdl.backbone(name, input_shape=(size, size, 3),
                                 weights=None, include_top=True)
        # -- inference, inputs on the device --------------------------------
        bs = 8 if args.quick else args.infer_batch
        host = [rng.integers(0, 256, (bs, size, size, 3), dtype=np.uint8)
                for _ in range(4)]
        dev = [jax.device_put(h) for h in host]
        tv = [v.value for v in model.trainable_variables]
        ntv = [v.value for v in model.non_trainable_variables]

        @jax.jit
        def infer(tv, ntv, x):
            out, _ = model.stateless_call(tv, ntv, x, training=False)
            return out

        def run_infer(steps, sync):
            out = None
            for i in range(steps):
                out = infer(tv, ntv, dev[i % len(dev)])
            if sync:
                out.block_until_ready()

        rate = median_rate(run_infer, bs, args.steps, args.repeats)
        emit(side="keras", what="inference, inputs on device (engine)",
             name=name, batch=bs, img_s=round(rate[0], 1),
             spread=[round(r, 1) for r in rate[1:]])

        x_host = np.concatenate(host * (2 if args.quick else 4))

        def run_predict(steps, sync):
            for _ in range(max(1, steps // 4)):
                model.predict(x_host, batch_size=bs, verbose=0)

        n = len(x_host)
        rate = median_rate(lambda s, sync: run_predict(4, sync), n, 1,
                           args.repeats)
        emit(side="keras", what="inference, model.predict from uint8 "
             "numpy", name=name, batch=bs, img_s=round(rate[0], 1),
             spread=[round(r, 1) for r in rate[1:]])

        # -- training -------------------------------------------------------
        bs = 8 if args.quick else args.train_batch
        model.compile(keras.optimizers.SGD(0.01, momentum=0.9),
                      "sparse_categorical_crossentropy")
        xs = [jax.device_put(rng.integers(0, 256, (bs, size, size, 3),
                                          dtype=np.uint8))
              for _ in range(4)]
        ys = [jax.device_put(rng.integers(0, 1000, (bs,)).astype("int32"))
              for _ in range(4)]

        def run_train(steps, sync):
            loss = None
            for i in range(steps):
                loss = model.train_on_batch(xs[i % 4], ys[i % 4])
            if sync:
                float(np.asarray(loss))

        rate = median_rate(run_train, bs, args.steps, args.repeats)
        emit(side="keras", what="training, train_on_batch on device arrays",
             name=name, batch=bs, img_s=round(rate[0], 1),
             spread=[round(r, 1) for r in rate[1:]])

        xh = np.concatenate([np.asarray(v) for v in xs] * 4)
        yh = np.concatenate([np.asarray(v) for v in ys] * 4)
        times = []

        class Clock(keras.callbacks.Callback):
            def on_epoch_begin(self, epoch, logs=None):
                self.t = time.perf_counter()

            def on_epoch_end(self, epoch, logs=None):
                times.append(time.perf_counter() - self.t)

        model.fit(xh, yh, batch_size=bs, epochs=args.repeats + 1,
                  verbose=0, callbacks=[Clock()])
        rates = sorted(len(xh) / t for t in times[1:])
        emit(side="keras", what="training, model.fit from uint8 numpy",
             name=name, batch=bs, img_s=round(statistics.median(rates), 1),
             spread=[round(rates[0], 1), round(rates[-1], 1)])


def timm_side(args):
    import timm
    import torch

    torch.backends.cudnn.benchmark = True
    device = "cuda"
    rng = np.random.default_rng(0)
    for name in args.names:
        size = 64 if args.quick else 224
        model = timm.create_model(TIMM_NAMES[name], pretrained=False).to(
            device).to(memory_format=torch.channels_last)
        bs = 8 if args.quick else args.infer_batch
        xs = [torch.from_numpy(rng.integers(0, 256, (bs, 3, size, size),
                                            dtype=np.uint8)).to(device)
              for _ in range(4)]
        model.eval()

        def run_infer(steps, sync):
            with torch.inference_mode(), torch.autocast("cuda",
                                                        torch.bfloat16):
                for i in range(steps):
                    x = xs[i % 4].float().sub_(127.0).div_(128.0)
                    model(x.contiguous(memory_format=torch.channels_last))
            if sync:
                torch.cuda.synchronize()

        rate = median_rate(run_infer, bs, args.steps, args.repeats)
        emit(side="timm", what="inference, inputs on device", name=name,
             batch=bs, img_s=round(rate[0], 1),
             spread=[round(r, 1) for r in rate[1:]])

        bs = 8 if args.quick else args.train_batch
        model.train()
        opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
        xs = [torch.from_numpy(rng.integers(0, 256, (bs, 3, size, size),
                                            dtype=np.uint8)).to(device)
              for _ in range(4)]
        ys = [torch.from_numpy(rng.integers(0, 1000, (bs,))).to(device)
              for _ in range(4)]
        loss_fn = torch.nn.CrossEntropyLoss()

        def run_train(steps, sync):
            for i in range(steps):
                x = xs[i % 4].float().sub_(127.0).div_(128.0).contiguous(
                    memory_format=torch.channels_last)
                with torch.autocast("cuda", torch.bfloat16):
                    loss = loss_fn(model(x), ys[i % 4])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
            if sync:
                torch.cuda.synchronize()

        rate = median_rate(run_train, bs, args.steps, args.repeats)
        emit(side="timm", what="training, inputs on device", name=name,
             batch=bs, img_s=round(rate[0], 1),
             spread=[round(r, 1) for r in rate[1:]])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("side", choices=("keras", "timm"))
    ap.add_argument("--names", default="efficientnet_lite0,resnet50")
    ap.add_argument("--infer-batch", type=int, default=256)
    ap.add_argument("--train-batch", type=int, default=128)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    args.names = args.names.split(",")
    if args.quick:
        args.steps, args.repeats = 2, 1
    keras_side(args) if args.side == "keras" else timm_side(args)


if __name__ == "__main__":
    main()
