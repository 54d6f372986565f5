"""Convolutional features computed once, saved, and read back in shuffled
batches: the course's "precompute VGG16's last convolution, then train
dense heads in seconds".

``precompute`` writes ``PATH/features.npy`` and ``PATH/labels.npy`` with
their JSON manifests (the format is ``kerasdl.features.store``'s); work in
progress lives in ``PATH/.partial`` and is resumed after an interruption.
One process at a time writes into a folder: ``PATH/.lock`` is locked
while ``precompute`` runs and a second one is refused.
"""

import json
import os
import threading

import keras
import numpy as np

from kerasdl import _backend
from kerasdl import _files
from kerasdl import _validate
from kerasdl.features import _engine
from kerasdl.features import store
from kerasdl.features import _source
from kerasdl.features._source import Source
from kerasdl.features.reader import FeatureSet

__all__ = ["precompute"]

_STORE = ("float16", "float32")
_COMPUTE = ("auto", "float32", "mixed_bfloat16", "mixed_float16")

# Threads writing the features (pwrite + block digest, both off the GIL).
# The store alone (bench/store_intake.py, 32 cores, 2026-11-30) takes
# 13,200-15,800 img/s of VGG16 block5 features into RAM with 2, 4 or 8
# threads (one file: the kernel serialises its writes) and 7,600-8,150 on
# the local disk; 4 is the best with two device streams feeding it.
WRITER_THREADS = 4


def precompute(model, data, path, layer="auto", augment_passes=0,
               dtype="float16", *, augment=None, seed=0,
               compute_dtype="auto", overwrite=False, chunk_rows=128,
               data_key=None, verbose=1):
    """Computes a model's features for every image once and saves them.

    Rows ``[0, n)`` hold the original images in data order; with
    ``augment_passes=p`` rows ``[k*n, (k+1)*n)`` hold augmented pass ``k``
    (the course used 5 passes plus the originals). Labels are repeated to
    match. The work is cut into chunks of one batch; finished chunks are
    recorded, so a rerun after a crash or a kill continues where it
    stopped and gives the same arrays as an uninterrupted run. A folder
    that already holds features made with the same manifest is reused
    after its checksums are verified (one read of the files); one made
    differently (other weights, layer, data, size, dtype, passes ...) or
    damaged (truncated, missing labels, bad manifest, changed bytes) is
    refused unless ``overwrite``. Images given as arrays are known by a
    hash of every byte (XXH3, tens of GB/s; see ``data_key`` to skip it),
    image files by their paths, sizes and modification times (a file
    rewritten with the same size within the file system's time
    resolution is not noticed). While it runs, the folder is locked
    (``PATH/.lock``, released by the kernel even if the process is
    killed): a second ``precompute`` into the same folder is refused at
    once with a message naming the process that holds it, and
    ``load_features`` never returns a half-written set. Images travel to
    the device as uint8; on a GPU the model computes in bfloat16 (float16
    on older GPUs). Decoding, copies to and from the device, the
    computation and the writing overlap; under ``kerasdl.data_parallel``
    with JAX every device computes whole chunks from its own pipeline.

    Example:

    >>> import tempfile, numpy as np, keras
    >>> inputs = keras.Input((16, 16, 3), dtype="uint8")
    >>> scaled = keras.layers.Rescaling(1 / 255)(inputs)
    >>> conv = keras.layers.Conv2D(8, 3, name="conv")(scaled)
    >>> model = keras.Model(inputs, keras.layers.Flatten()(conv))
    >>> x = np.zeros((10, 16, 16, 3), "uint8")
    >>> feats = precompute(model, (x, np.arange(10) % 2), tempfile.mkdtemp(),
    ...                    layer="conv", verbose=0)
    >>> feats.features.shape, feats.features.dtype.name, feats.labels.shape
    ((10, 14, 14, 8), 'float16', (10,))

    With VGG16 (the default model) the call is
    ``precompute(vgg16(..., include_top=False, input_dtype="uint8"), data,
    path)``, giving 14x14x512 features at 224x224; any backbone by name is
    cut at its own feature layer: ``precompute(kerasdl.backbone("resnet50",
    input_shape=(224, 224, 3)), data, path)`` gives 7x7x2048 at
    conv5_block3_out.

    Args:
        model: keras.Model, or ``None`` for VGG16 with ImageNet weights
            (``kerasdl.models.vgg16``, downloaded once).
        data: uint8 images ``(n, height, width, 3)``, a tuple ``(images,
            labels)``, or an ``ImageBatches`` built with ``shuffle=False``.
        path: str. Folder of the result.
        layer: str or None. Name of the last layer to keep
            (``conv_base``); ``None`` keeps the whole model; ``"auto"``
            the backbone's feature layer (``kerasdl.backbone``:
            ``block5_conv3`` for any VGG16, ``conv5_block3_out`` for
            ResNet50 ...), the name the manifest records.
            Defaults to ``"auto"``.
        augment_passes: int. Augmented copies of the data to add.
        dtype: ``"float16"`` or ``"float32"``. Storage dtype.
        augment: layer or None. A ``RandomAffine``/``ChannelShift`` or a
            Sequential of them (``kerasdl.data.augment.augmentation``);
            defaults to the ``"statefarm"`` preset when passes are asked.
        seed: int. Seed of the augmentation (pass ``k``, batch ``i`` draws
            from ``(seed, k, i)``). Defaults to 0.
        compute_dtype: ``"auto"``, ``"float32"``, ``"mixed_bfloat16"`` or
            ``"mixed_float16"``. ``"auto"`` keeps a model built in mixed
            precision, uses the GPU's mixed policy on a GPU and float32
            on a CPU.
        overwrite: bool. Replace a stale or damaged result instead of
            refusing. A whole result made the same way is still reused.
        chunk_rows: int. Images per chunk of array data (an
            ``ImageBatches`` is cut in its own batches). Under
            ``kerasdl.data_parallel`` every chunk is split over the
            devices, so ``128 * dp.num_replicas`` keeps each device as busy
            as one device is alone (under JAX each device takes whole
            chunks instead). Augmented passes draw per chunk, so the chunk
            size is part of the saved manifest. Defaults to 128.
        data_key: str or None. A name for the array data that the caller
            vouches for (a file name and date, a version): the images are
            then not hashed, and only the key, their shape and dtype and
            the labels name them in the manifest; a changed image under
            the same key is not detected. Defaults to None (hash every
            byte).
        verbose: int. 1 shows a ``keras.utils.Progbar``.

    Returns:
        A ``FeatureSet`` (memory-mapped ``features`` and ``labels``).

    Raises:
        TypeError: arguments of the wrong type.
        ValueError: bad arguments, a stale or damaged cache, data the
            model cannot take, or a folder in use by another process
            (``kerasdl._files.FolderBusyError``, a ``ValueError``).
        OSError: the disk is full (nothing complete is left).
    """
    from kerasdl.data.augment import augmentation

    _validate.choice(dtype, "dtype", _STORE)
    _validate.choice(compute_dtype, "compute_dtype", _COMPUTE)
    augment_passes = _validate.integer(augment_passes, "augment_passes",
                                       low=0)
    chunk_rows = _validate.integer(chunk_rows, "chunk_rows", low=1)
    seed = _validate.integer(seed, "seed", low=0)
    if data_key is not None and not isinstance(data_key, str):
        raise TypeError(f"`data_key` must be a str or None. Received: "
                        f"data_key={data_key!r}.")
    path = _folder(path)
    source = Source(data, int(chunk_rows), key=data_key)
    if model is None:
        from kerasdl.models import vgg16

        model = vgg16(source.image_shape, include_top=False,
                      weights="imagenet", input_dtype="uint8")
    if layer == "auto" and isinstance(model, keras.Model):
        from kerasdl.models.backbones import feature_layer

        layer = feature_layer(model)
    base = _cut(model, layer, source.image_shape)
    base, compute = _compute_model(base, compute_dtype)
    if augment_passes and augment is None:
        augment = augmentation("statefarm", seed=seed)
    out_shape = tuple(base.output_shape[1:])
    manifest = {
        "format": store.FORMAT, "model": model.name,
        "weights": _weights_hash(base),
        "layer": layer, "input_shape": list(source.image_shape),
        "output_shape": list(out_shape),
        "preprocessing": _preprocessing(base), "dtype": dtype,
        "compute_dtype": compute, "data": source.fingerprint,
        "n_images": source.n_rows, "passes": int(augment_passes),
        "augment": _augment_config(augment) if augment_passes else None,
        "seed": int(seed), "chunk_rows": source.batch_rows,
        "labels": source.labels() is not None,
    }
    manifest = json.loads(json.dumps(manifest))
    if not store._is_writer():
        store._wait_for_writer(path)
        return FeatureSet(path)
    os.makedirs(path, exist_ok=True)
    with _files.FolderLock(path, "precompute"):
        done = store.cached(path, manifest, overwrite)
        if done is not None:
            return done
        return _compute(base, source, path, manifest, augment, verbose)


def _folder(path):
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"`path` must be a folder name (str or path). "
                        f"Received: path={path!r}.")
    path = os.fspath(path)
    if os.path.exists(path) and not os.path.isdir(path):
        raise ValueError(f"`path` must be a folder, not a file. Received: "
                         f"path={path!r}. Choose a folder name.")
    return path


def _compute(base, source, path, manifest, augment, verbose):
    n, passes = source.n_rows, manifest["passes"]
    per_pass = source.n_batches
    n_chunks = per_pass * (1 + passes)
    devices = _engine.stream_devices()
    out_dtype = manifest["dtype"]

    def make(model):
        plain, _ = _engine.make_step(model, None, out_dtype)
        aug, n_uniforms = (_engine.make_step(model, augment, out_dtype)
                           if passes else (None, []))

        def step(x, *uniforms):
            return aug(x, *uniforms) if uniforms else plain(x)

        return step, n_uniforms

    if devices:
        made = _engine.device_steps(base, devices, make,
                                     manifest["weights"])
        steps = [(d, s) for d, (s, _) in made]
        n_uniforms = made[0][1][1]
    else:
        steps, n_uniforms = make(base)
    run = store.Run(path, manifest, n_chunks, source.labels(),
                    chunk_rows=source.batch_rows,
                    writer_threads=WRITER_THREADS)
    start = run.start
    bar = keras.utils.Progbar(n_chunks) if verbose else None
    bar_lock = threading.Lock()

    def load(j):
        p, i = divmod(start + j, per_pass)
        x, m = _engine.as_uint8_batch(source.batch(i), source.batch_rows)
        if p == 0:
            return x, [], m
        rng = np.random.default_rng([manifest["seed"], p, i])
        return x, [rng.random((len(x), c), np.float32)
                   for c in n_uniforms], m

    def sink(j, y):
        p, i = divmod(start + j, per_pass)
        run.writer.write(start + j, p * n + i * source.batch_rows, y)

    def progress(count):
        if bar is not None:
            with bar_lock:
                bar.update(start + count)

    threads = 3 if source.batches is not None else 2
    try:
        _engine.run(steps, n_chunks - start, load, sink, threads=threads,
                    progress=progress)
    except BaseException as e:
        raise run.abort(e) from None
    return run.commit()


def _cut(model, layer, image_shape):
    from kerasdl.models.surgery import conv_base

    if not isinstance(model, keras.Model):
        raise TypeError(f"`model` must be a keras.Model or None. Received: "
                        f"{type(model).__name__}.")
    base = model if layer is None else conv_base(model, layer)
    want = tuple(base.input_shape[1:])
    if len(want) != len(image_shape) or any(
            w is not None and w != s for w, s in zip(want, image_shape)):
        raise ValueError(f"Model {model.name!r} takes inputs of shape {want}"
                         f"; the images are {tuple(image_shape)}. Resize the "
                         f"images or build the model for that size.")
    if any(d is None for d in base.output_shape[1:]):
        raise ValueError(f"The output shape {base.output_shape} is not fully "
                         f"known; build the model with a fixed input_shape.")
    return base


def _compute_model(base, compute_dtype):
    from kerasdl.precision import policy_for_device

    current = {layer.dtype_policy.name for layer in base.layers
               if layer.weights}
    if compute_dtype == "auto":
        if current & {"mixed_bfloat16", "mixed_float16", "bfloat16",
                      "float16"}:
            return base, "/".join(sorted(current))
        if _backend.accelerator()["kind"] != "gpu":
            return base, "float32"
        compute_dtype = policy_for_device()
    if compute_dtype == "float32":
        return base, "float32"
    return _engine.low_precision_copy(base, compute_dtype), compute_dtype


def _weights_hash(model):
    h = _source.hasher()[1]
    for w in model.weights:
        value = np.ascontiguousarray(keras.ops.convert_to_numpy(w))
        h.update(f"{w.path}|{value.dtype}|{value.shape}".encode())
        h.update(value.reshape(-1).view(np.uint8))
    return h.hexdigest()


def _preprocessing(model):
    steps = []
    for layer in model.layers[1:]:
        if layer.weights:
            break
        config = layer.get_config()
        config.pop("name", None)
        config.pop("dtype", None)
        steps.append({"class": type(layer).__name__, "config": config})
    return {"input_dtype": str(model.inputs[0].dtype), "layers": steps}


def _augment_config(augment):
    parts = augment.layers if isinstance(augment, keras.Sequential) \
        else [augment]
    out = []
    for part in parts:
        config = part.get_config()
        for key in ("name", "dtype", "trainable"):
            config.pop(key, None)
        out.append({"class": type(part).__name__, "config": config})
    return out
