"""One process over N GPUs against N processes with one GPU each: a
one-cycle fit of conv_bn on State Farm and a feature precompute, the same
work in both layouts. One JSON line per measurement.

    KERAS_BACKEND=jax python bench/multiprocess_run.py \\
        --data /tmp/data/statefarm-80x60 [--processes 2] [--epochs 3]
    KERAS_BACKEND=jax python bench/multiprocess_run.py --smoke   # CPU, tiny

What it does: the images (train/c0..c9 at 60x80, uint8) are read once
into a work folder; then ``--role single`` (one process,
``data_parallel()`` over N devices) and ``--role job`` (N processes
started by ``kerasdl.distribute.launch``, one device each, 127.0.0.1,
``NCCL_NVLS_ENABLE=0``) each run:

- ``lr_find`` on conv_bn (its stop step and reason, per process);
- ``fit_one_cycle`` of conv_bn for ``--epochs`` epochs, ``shuffle=False``,
  global batch ``--batch`` (each process passes its part of every batch,
  ``process_batches``); images/s over the epochs after the first (which
  compiles);
- process 0 alone writes the weights, the checkpoint and a report, the
  others wait at a barrier and then read the checkpoint;
- a precompute: VGG16 (random weights, uint8 in) to block5_conv3 with
  ``kerasdl.precompute``: one process splits every chunk over its
  devices; in the job each process computes its own contiguous share of
  the images (in a scratch folder), ``gather`` collects them and process 0
  writes the one feature file.

Then the weights and features of the two layouts are compared (largest
absolute difference). On GPUs, XLA's default kernels (autotuned
convolutions, atomic reductions) differ from run to run, so the same
layout run twice differs as much as the two layouts; ``--deterministic``
sets ``--xla_gpu_deterministic_ops=true`` for both, under which they are
equal. Float32 throughout (bf16 would hide the weights'
comparison). ``--smoke`` runs 256 images on simulated CPU devices (only
the code path; CPU timings say nothing about GPUs).
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)


def emit(**row):
    print(json.dumps({"bench": "multiprocess", **row}), flush=True)


# -- the parent: prepare, run both layouts, compare -------------------------

def child_env(smoke, devices, deterministic=False):
    env = dict(os.environ, KERAS_BACKEND="jax", PYTHONUNBUFFERED="1",
               NCCL_NVLS_ENABLE="0")
    if deterministic:  # what launch(deterministic=True) sets in the job
        from kerasdl.distribute._launch import DETERMINISTIC_FLAG
        from kerasdl.distribute._launch import with_flag

        env["XLA_FLAGS"] = with_flag(env.get("XLA_FLAGS", ""),
                                     DETERMINISTIC_FLAG)
    if smoke:
        env.update(CUDA_VISIBLE_DEVICES="", JAX_NUM_CPU_DEVICES=str(devices))
    return env


def relay(lines):
    """JSON lines to stdout (without the launcher's [id] prefix), the rest
    to stderr; returns the parsed rows."""
    rows = []
    for line in lines:
        text = line.split("] ", 1)[1] if line.startswith("[") else line
        if text.startswith("{"):
            rows.append(json.loads(text))
            print(text, flush=True)
        else:
            print(line, file=sys.stderr)
    return rows


class Collect:
    def __init__(self):
        self.lines = []

    def write(self, text):
        self.lines.extend(t for t in text.splitlines() if t)

    def flush(self):
        pass


def parent(args):
    from kerasdl import distribute

    work = args.work or tempfile.mkdtemp(prefix="multiprocess_run_")
    os.makedirs(work, exist_ok=True)
    common = ["--work", work, "--epochs", str(args.epochs), "--batch",
              str(args.batch), "--num-it", str(args.num_it)]
    env = child_env(args.smoke, 1)
    env["JAX_PLATFORMS"] = "cpu"  # reading images needs no device
    if args.reuse and all(os.path.exists(os.path.join(work, f))
                          for f in ("x.npy", "y.npy")):
        emit(what="data", reused=work)
    else:
        done = subprocess.run(
            [sys.executable, __file__, "--role", "prepare", "--data",
             args.data, "--limit", str(args.limit)] + common, env=env,
            capture_output=True, text=True)
        relay(done.stdout.splitlines())
        if done.returncode:
            sys.exit(f"preparing the images failed:\n{done.stderr[-3000:]}")
    n = args.processes
    done = subprocess.run(
        [sys.executable, __file__, "--role", "single", "--devices", str(n)]
        + common, env=child_env(args.smoke, n, args.deterministic),
        capture_output=True,
        text=True)
    single = relay(done.stdout.splitlines())
    if done.returncode:
        sys.exit(f"the one-process run failed:\n{done.stderr[-3000:]}")
    out = Collect()
    extra = {"CUDA_VISIBLE_DEVICES": ""} if args.smoke else {}
    try:
        distribute.launch(n, __file__, ["--role", "job"] + common,
                          devices_per_process=1, env=extra,
                          deterministic=args.deterministic, stream=out)
    finally:
        job = relay(out.lines)
    compare(work, n, single, job)
    if not args.work:
        shutil.rmtree(work, ignore_errors=True)


def compare(work, n, single, job):
    one, many = f"1x{n}", f"{n}x1"
    for what in ("weights", "features"):
        a = np.load(os.path.join(work, f"{what}-{one}.npy"))
        b = np.load(os.path.join(work, f"{what}-{many}.npy"))
        emit(what=f"{what} difference", layouts=[one, many],
             shape=list(a.shape),
             max_abs_diff=float(np.max(np.abs(a.astype("float64") - b))),
             scale=float(np.max(np.abs(a.astype("float64")))))
    stops = {r["process"]: r["lr_find"] for r in job
             if r.get("what") == "lr_find"}
    emit(what="lr_find stop per process", layout=many, stops=stops,
         same_in_every_process=len({json.dumps(s) for s in
                                    stops.values()}) == 1)
    for what in ("train", "precompute"):
        a = [r for r in single if r.get("what") == what]
        b = [r for r in job if r.get("what") == what and r["process"] == 0]
        if a and b:
            emit(what=f"{what} speed", layouts=[one, many],
                 images_per_s=[a[0]["images_per_s"], b[0]["images_per_s"]],
                 ratio=round(b[0]["images_per_s"] / a[0]["images_per_s"],
                             3))


# -- the roles --------------------------------------------------------------

def prepare(args):
    import kerasdl

    batches = kerasdl.image_folder(os.path.join(args.data, "train"),
                                   image_size=(60, 80), batch_size=256)
    x, y = batches.to_arrays()
    if args.limit:
        pick = np.random.default_rng(0).permutation(len(x))[:args.limit]
        x, y = x[np.sort(pick)], y[np.sort(pick)]
    keep = len(x) // args.batch * args.batch  # whole batches only
    order = np.random.default_rng(1).permutation(len(x))[:keep]
    np.save(os.path.join(args.work, "x.npy"), x[order].astype("uint8"))
    np.save(os.path.join(args.work, "y.npy"), y[order].astype("int32"))
    emit(what="data", folder=args.data, images=int(keep),
         dropped=int(len(x) - keep), shape=list(x.shape[1:]))


class EpochTimer:
    def __init__(self):
        import keras

        class Timer(keras.callbacks.Callback):
            def on_epoch_begin(inner, epoch, logs=None):
                inner.start = time.perf_counter()

            def on_epoch_end(inner, epoch, logs=None):
                self.seconds.append(time.perf_counter() - inner.start)

        self.seconds = []
        self.callback = Timer()


def train(args, dp, layout, x, y, writer):
    import keras

    import kerasdl
    from kerasdl import distribute

    with dp:
        (px, py), per = distribute.process_batches((x, y), args.batch)
        px = px.astype("float32")
        keras.utils.set_random_seed(0)
        model = kerasdl.conv_bn((60, 80, 3), 10)
        model.compile(keras.optimizers.Adam(1e-3),
                      "sparse_categorical_crossentropy", metrics=["accuracy"])
        if args.num_it:
            sweep = kerasdl.lr_find(model, (px, py), num_it=args.num_it,
                                    batch_size=per)
            emit(what="lr_find", layout=layout,
                 process=distribute.process_index(),
                 lr_find=[len(sweep.losses), sweep.stop_reason],
                 valley=float(sweep.valley))
        timer = EpochTimer()
        kerasdl.fit_one_cycle(model, (px, py), args.epochs, 1e-2,
                              batch_size=per, shuffle=False, verbose=0,
                              callbacks=[timer.callback])
    weights = np.concatenate([np.ravel(w) for w in model.get_weights()])
    steady = timer.seconds[1:] or timer.seconds
    speed = len(x) * len(steady) / sum(steady)
    wrote = []
    if writer:
        np.save(os.path.join(args.work, f"weights-{layout}.npy"), weights)
        partial = os.path.join(args.work, f"model-{layout}.partial.keras")
        model.save(partial)
        os.replace(partial, os.path.join(args.work, f"model-{layout}.keras"))
        report = os.path.join(args.work, f"report-{layout}.json")
        with open(report + ".partial", "w") as f:
            json.dump({"epoch_seconds": timer.seconds}, f)
        os.replace(report + ".partial", report)
        wrote = [f"weights-{layout}.npy", f"model-{layout}.keras",
                 f"report-{layout}.json"]
    distribute.barrier("weights written")
    loaded = keras.saving.load_model(
        os.path.join(args.work, f"model-{layout}.keras"), safe_mode=True)
    read_back = float(np.max(np.abs(np.concatenate(
        [np.ravel(w) for w in loaded.get_weights()]) - weights)))
    emit(what="train", layout=layout, process=distribute.process_index(),
         images=len(x), global_batch=args.batch, epochs=args.epochs,
         images_per_s=round(speed, 1),
         epoch_seconds=[round(s, 2) for s in timer.seconds],
         wrote=wrote, checkpoint_read_back_diff=read_back)


def precompute(args, dp, layout, x, writer):
    import keras

    import kerasdl
    from kerasdl import distribute

    keras.utils.set_random_seed(1)
    base = kerasdl.vgg16((60, 80, 3), include_top=False,
                         input_dtype="uint8")
    rows = 128  # per chunk, in both layouts (one stream per device)
    scratch = tempfile.mkdtemp(prefix="precompute_")
    images = np.asarray(x)
    try:
        if distribute.process_count() == 1:
            def run(name, data):
                with dp:
                    return kerasdl.precompute(
                        base, data, os.path.join(scratch, name),
                        layer="block5_conv3", dtype="float32", verbose=0,
                        chunk_rows=rows).features
        else:
            # each process its own contiguous share, gathered in order
            me, n = distribute.process_index(), distribute.process_count()

            def run(name, data):
                cuts = np.linspace(0, len(data), n + 1).astype(int)
                feats = kerasdl.precompute(
                    base, data[cuts[me]:cuts[me + 1]],
                    os.path.join(scratch, name), layer="block5_conv3",
                    dtype="float32", verbose=0, chunk_rows=rows).features
                return distribute.gather(np.asarray(feats))

        run("warm", images[:2 * rows * dp.num_replicas])  # compiles
        distribute.barrier("precompute warm")
        start = time.perf_counter()
        feats = run("run", images)
        if writer:
            np.save(os.path.join(args.work, f"features-{layout}.npy"),
                    np.asarray(feats))
        distribute.barrier("features written")
        seconds = time.perf_counter() - start
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    emit(what="precompute", layout=layout,
         process=distribute.process_index(), images=len(images),
         images_per_s=round(len(images) / seconds, 1),
         seconds=round(seconds, 2), shape=list(np.shape(feats)[1:]))


def role(args):
    from kerasdl import distribute

    if args.role == "job":
        distribute.initialize()
    import keras

    dp = (distribute.data_parallel() if args.role == "job"
          else distribute.data_parallel(args.devices))
    processes = distribute.process_count()
    layout = f"{processes}x{len(dp.devices) // processes}"
    writer = distribute.is_writer()
    x = np.load(os.path.join(args.work, "x.npy"), mmap_mode="r")
    y = np.load(os.path.join(args.work, "y.npy"))
    emit(what="layout", layout=layout, process=distribute.process_index(),
         devices=dp.devices, backend=keras.backend.backend())
    train(args, dp, layout, x, y, writer)
    precompute(args, dp, layout, x, writer)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=None,
                    help="State Farm folder (train/c0..c9)")
    ap.add_argument("--processes", type=int, default=2,
                    help="GPUs: one process over all of them against this "
                    "many processes of one each")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--batch", type=int, default=None,
                    help="global batch (default 64 per device)")
    ap.add_argument("--num-it", type=int, default=100,
                    help="LR finder steps (0: no sweep before the fit)")
    ap.add_argument("--deterministic", action="store_true",
                    help="XLA_FLAGS=--xla_gpu_deterministic_ops=true in "
                    "both layouts (GPU results equal from run to run)")
    ap.add_argument("--reuse", action="store_true",
                    help="keep the arrays already prepared in --work")
    ap.add_argument("--limit", type=int, default=0,
                    help="use this many images (0: all)")
    ap.add_argument("--work", default=None,
                    help="folder for the arrays and results (default: a "
                    "temporary one, removed afterwards)")
    ap.add_argument("--smoke", action="store_true",
                    help="tiny, on simulated CPU devices")
    ap.add_argument("--role", default=None,
                    choices=["prepare", "single", "job"],
                    help=argparse.SUPPRESS)
    ap.add_argument("--devices", type=int, default=None,
                    help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.batch is None:
        args.batch = 64 * args.processes
    if args.smoke and args.role is None:
        args.data = args.data or os.path.join(
            os.path.dirname(ROOT), "shared", "data", "statefarm-80x60")
        args.limit = args.limit or 256
        args.batch, args.epochs, args.num_it = 32, 2, 30
    if args.role is None and not args.data:
        ap.error("--data is needed (or --smoke)")
    {"prepare": prepare, "single": role, "job": role,
     None: parent}[args.role](args)


if __name__ == "__main__":
    main()
