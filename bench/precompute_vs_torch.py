"""kerasdl.precompute against a plain torchvision loop, side by side on one
machine: VGG16 up to block5_conv3 (random weights: the speed is that of
ImageNet ones), 224x224, bf16 compute, float16 features written to local
disk. One JSON line per measurement.

    KERAS_BACKEND=jax python bench/precompute_vs_torch.py \
        [--files 10000] [--array 8192] [--workers 16] [--devices 1,2] \
        [--processes auto] \
        [--what disk,decode,engine,array,jpeg,torch] [--work /tmp/pvt] \
        [--statefarm DIR] [--smoke]

What it measures:
- ``disk``: the disk's own write speed (2 GiB of pwrite then fsync, and
  into the page cache alone), the figure the feature writing is bounded by;
- ``decode``: the machine's decode limit: images/s of as many independent
  processes as ``ImageBatches`` starts (and as there are cores) decoding
  the 640x480 JPEGs to 224x224 at once (Pillow, draft on; one core alone
  times the cores overstates it: cores decoding together run slower),
  and the rate ``ImageBatches`` reaches with its decoding processes,
  called from 1 thread and from 3 (as ``precompute`` does);
- ``engine``: the same array through precompute's engine alone (device
  copies, one stream per device, results fetched to host memory and
  dropped): what the devices and transfers give without the store;
- ``array``: a uint8 array -> features on disk, ``precompute`` on 1 and
  more devices (``kerasdl.data_parallel``), compiled step reused;
- ``jpeg``: the 640x480 JPEG folder -> features on disk, the same way;
- ``torch``: the torchvision loop in a child process (torch, torchvision
  needed): ``DataLoader`` with ``--workers`` worker processes, the model
  in bf16 autocast, features copied to the host and written with
  ``np.save``-style writes, for the same array and folder.

The JPEG folder is made once under ``--work`` from the State Farm images
(80x60) upsampled to 640x480 and saved at quality 90 (10 class folders).
``--smoke`` runs every part with tiny sizes on a CPU (the figures then
only show that the code runs).
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

_STATEFARM = ["/work/shared/data/statefarm-80x60",
              os.path.join(ROOT, "..", "shared", "data", "statefarm-80x60"),
              os.path.join(ROOT, "shared", "data", "statefarm-80x60"),
              "/tmp/data/statefarm-80x60"]


def emit(**row):
    print(json.dumps(row), flush=True)


def make_folder(statefarm, work, n, size):
    """``n`` JPEGs of ``size`` (w, h) upsampled from State Farm, quality 90,
    in class folders; made once and reused."""
    from concurrent.futures import ProcessPoolExecutor

    folder = os.path.join(work, f"jpeg_{size[0]}x{size[1]}_{n}")
    done = os.path.join(folder, ".done")
    if os.path.exists(done):
        return folder
    shutil.rmtree(folder, ignore_errors=True)
    train = os.path.join(statefarm, "train")
    files = sorted(os.path.join(train, c, f) for c in os.listdir(train)
                   for f in os.listdir(os.path.join(train, c)))
    pick = np.random.default_rng(0).permutation(len(files))[:n]
    jobs = []
    for i, k in enumerate(pick):
        cls = os.path.basename(os.path.dirname(files[k]))
        jobs.append((files[k], os.path.join(folder, cls, f"{i:06d}.jpg"),
                     size))
    for cls in {os.path.dirname(j[1]) for j in jobs}:
        os.makedirs(cls, exist_ok=True)
    t = time.perf_counter()
    with ProcessPoolExecutor(os.cpu_count()) as pool:
        list(pool.map(_upsample, jobs, chunksize=64))
    open(done, "w").close()
    emit(what="made_jpeg_folder", files=n, size=list(size), quality=90,
         seconds=round(time.perf_counter() - t, 1), folder=folder)
    return folder


def _upsample(job):
    from PIL import Image

    src, dst, size = job
    with Image.open(src) as img:
        img.convert("RGB").resize(size, Image.Resampling.BICUBIC).save(
            dst, quality=90)


def disk_speed(work, nbytes):
    path = os.path.join(work, "disk_probe.bin")
    block = np.random.default_rng(0).integers(0, 255, 16 << 20, np.uint8)
    out = {}
    for sync in (False, True):
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
        t = time.perf_counter()
        for pos in range(0, nbytes, len(block)):
            os.pwrite(fd, block, pos)
        if sync:
            os.fsync(fd)
        out[sync] = nbytes / (time.perf_counter() - t) / 1e9
        os.close(fd)
        os.remove(path)
    emit(what="disk_write_speed", gb=round(nbytes / 1e9, 2),
         gb_per_s_to_disk_fsync=round(out[True], 2),
         gb_per_s_page_cache=round(out[False], 2), folder=work)


def _decode_share(job):
    from kerasdl.data import _decode

    paths, size = job
    for path in paths:
        _decode.decode(path, size)
    return len(paths)


def parallel_decode(paths, size, processes):
    """Images/s of ``processes`` independent processes each decoding its
    own share of ``paths`` at once (nothing handed back): what the cores
    decode together, turbo, shared caches and memory included."""
    import multiprocessing

    with multiprocessing.get_context("spawn").Pool(processes) as pool:
        pool.map(_decode_share, [(paths[:4], size)] * processes)  # imports
        t = time.perf_counter()
        n = sum(pool.map(_decode_share, [(paths[i::processes], size)
                                         for i in range(processes)]))
        return n / (time.perf_counter() - t)


def decode_limit(folder, size, seconds, batch, processes, file_size):
    import concurrent.futures

    from kerasdl.data import _decode
    from kerasdl.data.images import image_folder

    loader = image_folder(folder, image_size=size, batch_size=batch,
                          processes=processes)
    paths = loader.paths
    n, t = 0, time.perf_counter()
    while time.perf_counter() - t < seconds and n < len(paths):
        _decode.decode(paths[n], size)
        n += 1
    one = n / (time.perf_counter() - t)
    cores = os.cpu_count()
    source = (f"{file_size[0]}x{file_size[1]} JPEG -> {size[1]}x{size[0]}"
              f", Pillow with draft")
    use = min(len(paths), max(2 * batch, int(one * cores * seconds)))
    counts = sorted({loader.processes or 1, cores})
    limits = {c: parallel_decode(paths[:use], size, c) for c in counts}
    emit(what="decode_limit", per_core_images_per_s=round(one, 1),
         cores=cores, one_core_times_cores=round(one * cores, 1),
         **{f"parallel_processes_{c}_images_per_s": round(v, 1)
            for c, v in limits.items()}, source=source)
    batches = min(len(loader) - 1, max(2, use // batch))
    loader[0]  # starts the decoding processes
    for threads in (1, 3):
        t = time.perf_counter()
        with concurrent.futures.ThreadPoolExecutor(threads) as pool:
            list(pool.map(loader.__getitem__, range(1, batches + 1)))
        rate = batches * batch / (time.perf_counter() - t)
        limit = limits[loader.processes or 1]
        emit(what="decode_image_batches", processes=loader.processes,
             calling_threads=threads, images_per_s=round(rate, 1),
             batches=batches, share_of_parallel_limit=round(rate / limit, 3))
    loader.close()


def vgg_base(size):
    import keras

    from kerasdl.models import conv_base
    from kerasdl.models import vgg16

    keras.config.set_dtype_policy("mixed_bfloat16")
    try:
        return conv_base(vgg16((size, size, 3), include_top=False,
                               input_dtype="uint8"), "block5_conv3")
    finally:
        keras.config.set_dtype_policy("float32")


def kerasdl_side(args, folder, what, size):
    import keras

    import kerasdl
    from kerasdl import _backend

    device = _backend.accelerator()["name"]
    rng = np.random.default_rng(0)
    for count in [int(c) for c in args.devices.split(",")]:
        if count > len(_backend.local_devices()):
            emit(what="skipped", devices=count,
                 reason=f"{len(_backend.local_devices())} devices visible")
            continue
        with kerasdl.data_parallel(devices=count) as dp:
            model = vgg_base(size)
            rows = args.chunk * dp.num_replicas
            for source in [s for s in ("array", "jpeg") if s in what]:
                if source == "array":
                    x = rng.integers(0, 256, (args.array, size, size, 3),
                                     dtype=np.uint8)
                    data, warm = x, x[:2 * rows]
                    n = len(x)
                else:
                    data = kerasdl.image_folder(
                        folder, image_size=(size, size),
                        batch_size=args.chunk, processes=args.processes)
                    warm = x_warm = data  # the compile on the same shapes
                    n = data.n_images
                out = tempfile.mkdtemp(dir=args.work)
                try:
                    if source == "array":
                        kerasdl.precompute(model, warm, os.path.join(
                            out, "warm"), layer=None, chunk_rows=args.chunk,
                            verbose=0)
                    else:
                        small = kerasdl.image_files(
                            x_warm.paths[:2 * args.chunk],
                            image_size=(size, size), batch_size=args.chunk,
                            processes=0)
                        kerasdl.precompute(model, small, os.path.join(
                            out, "warm"), layer=None, verbose=0)
                    # JPEG: a first run starts the decoding processes (as
                    # a user's first call does), a second finds them up
                    runs = ("run", "again") if source == "jpeg" else ("run",)
                    for run in runs:
                        t = time.perf_counter()
                        fs = kerasdl.precompute(model, data, os.path.join(
                            out, run), layer=None, chunk_rows=args.chunk,
                            verbose=0)
                        sec = time.perf_counter() - t
                        emit(what=f"kerasdl_{source}_to_disk",
                             devices=count, device=device,
                             backend=keras.backend.backend(), images=n,
                             images_per_s=round(n / sec, 1),
                             seconds=round(sec, 2),
                             processes_started_before=run == "again",
                             gb_written=round(fs.features.nbytes / 1e9, 2),
                             processes=getattr(data, "processes", None),
                             chunk_rows=args.chunk, size=size)
                        fs = None  # the memory map, before its file goes
                finally:
                    if source == "jpeg":
                        data.close()
                    shutil.rmtree(out, ignore_errors=True)


def engine_steps(model):
    """precompute's compiled step for ``model`` (one per device stream
    under a JAX distribution) and the stream devices (empty: one)."""
    from kerasdl.features import _engine

    devices = _engine.stream_devices()

    def make(m):
        return _engine.make_step(m, None, "float16")[0]

    return (_engine.device_steps(model, devices, make, "bench")
            if devices else make(model)), devices


def array_loader(x, chunk):
    """``load(k)`` for ``_engine.run``: chunk ``k`` of ``x``, padded."""
    from kerasdl.features import _engine

    def load(k):
        xb, m = _engine.as_uint8_batch(x[k * chunk:(k + 1) * chunk], chunk)
        return xb, [], m

    return load


def pinned_to_device(plain):
    """A ``to_device`` that stages numpy arrays in pinned host memory of
    the current default device before the copy to it (JAX)."""
    import jax
    from jax.sharding import SingleDeviceSharding

    def to_device(x):
        if not isinstance(x, np.ndarray):
            return plain(x)
        dev = jax.config.jax_default_device or jax.devices()[0]
        staged = jax.device_put(
            x, SingleDeviceSharding(dev, memory_kind="pinned_host"))
        return jax.device_put(staged, SingleDeviceSharding(dev))

    return to_device


def engine_side(args, size):
    import keras

    import kerasdl
    from kerasdl import _backend
    from kerasdl.features import _engine

    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (args.array, size, size, 3), dtype=np.uint8)
    chunk = args.chunk
    for count in [int(c) for c in args.devices.split(",")]:
        if count > len(_backend.local_devices()):
            continue
        with kerasdl.data_parallel(devices=count):
            steps, devices = engine_steps(vgg_base(size))
            load = array_loader(x, chunk)
            n_chunks = -(-len(x) // chunk)
            _engine.run(steps, 2 * max(1, count), load, lambda k, y: None)
            t = time.perf_counter()
            _engine.run(steps, n_chunks, load, lambda k, y: None, threads=2)
            sec = time.perf_counter() - t
            emit(what="kerasdl_engine_to_host_memory", devices=count,
                 streams=len(devices) or 1, images=len(x),
                 images_per_s=round(len(x) / sec, 1),
                 seconds=round(sec, 2), chunk_rows=chunk, size=size,
                 backend=keras.backend.backend())


def torch_side(args, folder, size):
    """The naive torchvision loop (run in a child process)."""
    import torch
    import torchvision

    dev = "cuda" if torch.cuda.is_available() else "cpu"
    net = torchvision.models.vgg16(weights=None).features[:30]
    net = net.to(dev).eval().to(memory_format=torch.channels_last)
    mean = torch.tensor([0.485, 0.456, 0.406], device=dev).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225], device=dev).view(1, 3, 1, 1)

    def features(loader, n, path):
        out = np.lib.format.open_memmap(
            path, "w+", np.float16, (n, 512, size // 16, size // 16))
        row = 0
        with torch.no_grad(), torch.autocast(dev, torch.bfloat16):
            for x, _ in loader:
                x = x.to(dev, non_blocking=True)
                if x.shape[-1] == 3:
                    x = x.permute(0, 3, 1, 2)
                x = (x.float() / 255 - mean) / std
                y = net(x.contiguous(memory_format=torch.channels_last))
                out[row:row + len(y)] = y.half().cpu().numpy()
                row += len(y)
        out.flush()
        del out
        fd = os.open(path, os.O_RDONLY)
        os.fsync(fd)  # on disk, as precompute's file is
        os.close(fd)

    def timed(name, loader, n):
        tmp = tempfile.mkdtemp(dir=args.work)
        try:
            t = time.perf_counter()
            features(loader, n, os.path.join(tmp, "f.npy"))
            sec = time.perf_counter() - t
            emit(what=f"torch_{name}_to_disk", device=dev,
                 images=n, images_per_s=round(n / sec, 1),
                 seconds=round(sec, 2), workers=args.workers,
                 torch=torch.__version__)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    torch.backends.cudnn.benchmark = True
    rng = np.random.default_rng(0)
    warm = torch.zeros((2 * args.chunk, size, size, 3), dtype=torch.uint8)
    features([(warm[:args.chunk], None), (warm[args.chunk:], None)],
             2 * args.chunk, os.path.join(args.work, "torch_warm.npy"))
    os.remove(os.path.join(args.work, "torch_warm.npy"))
    if "array" in args.what:
        x = torch.from_numpy(rng.integers(0, 256, (args.array, size, size, 3),
                                          dtype=np.uint8))
        ds = torch.utils.data.TensorDataset(x, torch.zeros(len(x)))
        loader = torch.utils.data.DataLoader(
            ds, batch_size=args.chunk, num_workers=args.workers,
            pin_memory=dev == "cuda")
        timed("array", loader, len(x))
    if "jpeg" in args.what:
        tf = torchvision.transforms.Compose([
            torchvision.transforms.Resize((size, size)),
            torchvision.transforms.PILToTensor()])
        ds = torchvision.datasets.ImageFolder(folder, transform=tf)
        loader = torch.utils.data.DataLoader(
            ds, batch_size=args.chunk, num_workers=args.workers,
            pin_memory=dev == "cuda")
        timed("jpeg", loader, len(ds))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--files", type=int, default=10000)
    ap.add_argument("--array", type=int, default=8192)
    ap.add_argument("--workers", type=int, default=16)
    ap.add_argument("--devices", default="1")
    ap.add_argument("--processes", default="auto",
                    type=lambda v: v if v == "auto" else int(v),
                    help="kerasdl's decoding processes (default: auto)")
    ap.add_argument("--chunk", type=int, default=128)
    ap.add_argument("--what", default="disk,decode,array,jpeg,torch")
    ap.add_argument("--work", default=os.path.join(tempfile.gettempdir(),
                                                   "precompute_vs_torch"))
    ap.add_argument("--statefarm", default=None)
    ap.add_argument("--smoke", action="store_true")
    ap.add_argument("--torch-child", action="store_true",
                    help=argparse.SUPPRESS)
    args = ap.parse_args()
    size, file_size = 224, (640, 480)
    if args.smoke:
        args.files, args.array, args.chunk = 48, 48, 16
        args.workers = min(args.workers, 2)
        if args.processes == "auto":
            args.processes = 2
        size, file_size = 32, (64, 48)
    os.makedirs(args.work, exist_ok=True)
    what = args.what.split(",")
    statefarm = args.statefarm or next(
        (p for p in _STATEFARM if os.path.isdir(p)), None)
    folder = None
    if {"decode", "jpeg"} & set(what):
        if statefarm is None:
            sys.exit("State Farm images not found: pass --statefarm DIR "
                     "(the folder holding train/c0..c9).")
        folder = make_folder(statefarm, args.work, args.files, file_size)
    if args.torch_child:
        torch_side(args, folder, size)
        return
    emit(what="machine", cores=os.cpu_count(), smoke=args.smoke,
         date=time.strftime("%Y-%m-%d"),
         backend=os.environ.get("KERAS_BACKEND", "tensorflow"))
    if "disk" in what:
        disk_speed(args.work, (64 << 20) if args.smoke else (2 << 30))
    if "decode" in what:
        decode_limit(folder, (size, size), 1 if args.smoke else 5,
                     args.chunk, args.processes, file_size)
    if "engine" in what:
        engine_side(args, size)
    if {"array", "jpeg"} & set(what):
        kerasdl_side(args, folder, what, size)
    if "torch" in what:
        try:
            import torch  # noqa: F401
            import torchvision  # noqa: F401
        except ImportError as e:
            emit(what="torch_side", skipped=f"not installed ({e})")
            return
        cmd = [sys.executable, os.path.abspath(__file__), "--torch-child",
               "--what", args.what, "--work", args.work,
               "--files", str(args.files), "--array", str(args.array),
               "--workers", str(args.workers), "--chunk", str(args.chunk)]
        if statefarm:
            cmd += ["--statefarm", statefarm]
        if args.smoke:
            cmd.append("--smoke")
        subprocess.run(cmd, check=True)


if __name__ == "__main__":
    main()
