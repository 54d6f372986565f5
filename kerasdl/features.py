"""Convolutional features computed once, saved, and read back in shuffled
batches: the course's "precompute VGG16's last convolution, then train
dense heads in seconds".

``precompute`` writes ``PATH/features.npy`` and ``PATH/labels.npy`` with
their JSON manifests (kerasdl.data.arrays); work in progress lives in
``PATH/.partial`` and is resumed after an interruption. The features'
manifest is written last, so a folder without it holds no result; it
carries the size and CRC-32 of ``features.npy`` (the labels' manifest
those of ``labels.npy``), so damaged files are found before reuse. One
process at a time writes into a folder: ``PATH/.lock`` is locked while
``precompute`` runs and a second one is refused.
"""

import hashlib
import json
import os
import shutil
import time

import keras
import numpy as np

from kerasdl import _backend
from kerasdl import _extract
from kerasdl import _files
from kerasdl import _validate
from kerasdl.data import arrays
from kerasdl.feature_reader import FeatureBatches
from kerasdl.feature_reader import FeatureSet
from kerasdl.feature_reader import load_features

__all__ = ["FeatureBatches", "FeatureSet", "load_features", "precompute"]

FORMAT = "kerasdl.features/1"
_STORE = ("float16", "float32")
_COMPUTE = ("auto", "float32", "mixed_bfloat16", "mixed_float16")


def precompute(model, data, path, layer="auto", augment_passes=0,
               dtype="float16", *, augment=None, seed=0,
               compute_dtype="auto", overwrite=False, chunk_rows=128,
               verbose=1):
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
    refused unless ``overwrite``. While it runs, the folder is locked
    (``PATH/.lock``, released by the kernel even if the process is
    killed): a second ``precompute`` into the same folder is refused at
    once with a message naming the process that holds it, and
    ``load_features`` never returns a half-written set. Images travel to
    the device as uint8; on a GPU the model computes in bfloat16 (float16
    on older GPUs).

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
            as one device is alone. Augmented passes draw per chunk, so
            the chunk size is part of the saved manifest. Defaults to 128.
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
    path = _folder(path)
    source = _Source(data, int(chunk_rows))
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
        "format": FORMAT, "model": model.name, "weights": _weights_hash(base),
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
    os.makedirs(path, exist_ok=True)
    with _files.FolderLock(path, "precompute"):
        done = _cached(path, manifest, overwrite)
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
    partial = os.path.join(path, ".partial")
    n, passes = source.n_rows, manifest["passes"]
    rows = n * (1 + passes)
    per_pass = source.n_batches
    n_chunks = per_pass * (1 + passes)
    start = _resume_point(partial, manifest, n_chunks, rows)
    feat_path = os.path.join(partial, "features.npy")
    try:
        if start == 0:
            shutil.rmtree(partial, ignore_errors=True)
            os.makedirs(partial)
            arrays.write_json(os.path.join(partial, "manifest.json"),
                              manifest)
            labels = source.labels()
            if labels is not None:
                arrays.save_array(os.path.join(partial, "labels"),
                                  np.concatenate([labels] * (1 + passes)))
            out = _extract.RowFile(feat_path,
                                   (rows, *manifest["output_shape"]),
                                   manifest["dtype"], create=True)
        else:
            out = _extract.RowFile(feat_path,
                                   (rows, *manifest["output_shape"]),
                                   manifest["dtype"], create=False)
    except OSError as e:
        shutil.rmtree(partial, ignore_errors=True)
        raise arrays._disk_error(e, path) from None
    plain, _ = _extract.make_step(base, None, manifest["dtype"])
    aug, n_uniforms = (_extract.make_step(base, augment, manifest["dtype"])
                       if passes else (None, []))
    bar = keras.utils.Progbar(n_chunks) if verbose else None
    state = {"done": start, "saved": time.monotonic()}

    def step(x, *uniforms):
        return aug(x, *uniforms) if uniforms else plain(x)

    def load(j):
        k = start + j
        p, i = divmod(k, per_pass)
        x, m = _extract.as_uint8_batch(source.batch(i), source.batch_rows)
        if p == 0:
            return x, [], m
        rng = np.random.default_rng([manifest["seed"], p, i])
        return x, [rng.random((len(x), c), np.float32)
                   for c in n_uniforms], m

    def sink(j, y):
        k = start + j
        p, i = divmod(k, per_pass)
        out.write_rows(p * n + i * source.batch_rows, y)
        state["done"] = k + 1
        now = time.monotonic()
        if now - state["saved"] > 0.5 or k + 1 == n_chunks:
            os.fdatasync(out.fd)  # rows on disk before the count says so
            _save_progress(partial, k + 1)
            state["saved"] = now
        if bar is not None:
            bar.update(k + 1)

    try:
        _extract.run(step, n_chunks - start, load, sink)
        out.sync_and_close()
    except OSError as e:
        out.close()
        _save_progress(partial, state["done"])
        raise arrays._disk_error(e, path) from None
    finally:
        out.close()
    return _commit(path, partial, manifest)


def _commit(path, partial, manifest):
    shape, dtype = [manifest["n_images"] * (1 + manifest["passes"]),
                    *manifest["output_shape"]], manifest["dtype"]
    features = os.path.join(partial, "features.npy")
    checksum = arrays.file_checksum(features)
    os.replace(features, os.path.join(path, "features.npy"))
    if manifest["labels"]:
        for ext in (".npy", ".json"):
            os.replace(os.path.join(partial, "labels" + ext),
                       os.path.join(path, "labels" + ext))
    # the commit point: written last, vouching for the files above
    arrays.write_json(os.path.join(path, "features.json"),
                      arrays.manifest_for(shape, dtype, manifest,
                                          checksum=checksum))
    shutil.rmtree(partial, ignore_errors=True)
    return FeatureSet(path, verify=False)


def _cached(path, manifest, overwrite):
    """The reusable result in ``path``, or None once the folder is ready
    for a new run."""
    old, problem = _committed_manifest(path)
    if old is not None and old != manifest:
        if not overwrite:
            raise ValueError(_stale_message(path, old, manifest))
    elif old is not None:
        try:
            return FeatureSet(path)
        except ValueError as e:
            problem = getattr(e, "problem", str(e))
    if problem and not overwrite:
        raise ValueError(
            f"{problem} The feature cache in {path!r} is damaged and "
            f"cannot be reused: pass overwrite=True to compute it again "
            f"(or delete the folder).")
    # the manifest goes first: without it no reader takes the rest
    for name in ("features.json", "features.npy", "labels.json",
                 "labels.npy"):
        arrays._remove(os.path.join(path, name))
    if overwrite:
        shutil.rmtree(os.path.join(path, ".partial"), ignore_errors=True)
    return None


def _committed_manifest(path):
    """(metadata, None), (None, problem) for a bad manifest, or (None,
    None) when there is no manifest (nothing, or an unfinished commit)."""
    base = os.path.join(path, "features")
    if not os.path.lexists(base + ".json"):
        return None, None
    try:
        return arrays.read_manifest(base)["metadata"], None
    except arrays.ArrayFileError as e:
        return None, e.problem


def _resume_point(partial, manifest, n_chunks, rows):
    """The chunks already done in ``partial``, 0 when it cannot be
    trusted (missing or damaged files, an impossible count)."""
    try:
        with open(os.path.join(partial, "manifest.json")) as f:
            old = json.load(f)
        with open(os.path.join(partial, "progress.json")) as f:
            done = json.load(f)["done"]
    except (OSError, ValueError, KeyError, TypeError):
        return 0
    if old != manifest:
        raise ValueError(_stale_message(partial, old, manifest))
    if type(done) is not int or not 0 <= done <= n_chunks:
        return 0
    size = os.path.getsize(os.path.join(partial, "features.npy")) \
        if os.path.isfile(os.path.join(partial, "features.npy")) else -1
    if size != arrays.npy_size([rows, *manifest["output_shape"]],
                                manifest["dtype"]):
        return 0  # killed while committing, or a damaged file
    if manifest["labels"]:
        try:
            labels = arrays.load_array(os.path.join(partial, "labels"))
        except ValueError:
            return 0
        if labels.ndim == 0 or len(labels) != rows:
            return 0
    return done


def _save_progress(partial, done):
    arrays.write_json(os.path.join(partial, "progress.json"), {"done": done})


def _stale_message(where, old, new):
    keys = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
    diffs = "; ".join(f"{k}: saved {str(old.get(k))[:60]} vs now "
                      f"{str(new.get(k))[:60]}" for k in keys)
    return (f"Stale feature cache at {where!r}: it was made differently "
            f"({diffs}). Delete the folder, choose another path, or pass "
            f"overwrite=True.")


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
    return _extract.low_precision_copy(base, compute_dtype), compute_dtype


def _weights_hash(model):
    h = hashlib.blake2b(digest_size=16)
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


class _Source:
    """Arrays or an ImageBatches, seen as numbered uint8 batches."""

    def __init__(self, data, batch_rows=128):
        self.y = None
        if isinstance(data, tuple) and len(data) == 2:
            data, self.y = data
        if isinstance(data, np.ndarray):
            if data.dtype != np.uint8 or data.ndim != 4:
                raise ValueError(
                    f"Images must be a uint8 array (n, height, width, "
                    f"channels). Received {data.dtype} of shape "
                    f"{data.shape}. Convert with np.clip(x, 0, 255)"
                    f".astype('uint8').")
            if self.y is not None:
                self.y = np.asarray(self.y)
                _validate.same_length("images", data, "labels", self.y)
                _validate.finite_array(self.y, "labels")
            self.x, self.batches = data, None
            self.n_rows, self.batch_rows = len(data), batch_rows
            self.image_shape = tuple(data.shape[1:])
        elif all(hasattr(data, a) for a in ("fingerprint", "n_images",
                                             "labels_in_order")):
            if data.shuffle:
                raise ValueError(
                    "precompute needs the images in a fixed order: build "
                    "the ImageBatches with shuffle=False (the feature "
                    "reader shuffles when training).")
            self.batches, self.n_rows = data, data.n_images
            self.batch_rows = data.batch_size
            self.image_shape = (*data.image_size, 3)
        else:
            raise TypeError(
                f"`data` must be a uint8 array, a tuple (images, labels) or "
                f"an ImageBatches. Received: {type(data).__name__}.")
        self.n_batches = -(-self.n_rows // self.batch_rows)
        self.fingerprint = self._fingerprint()

    def batch(self, i):
        if self.batches is None:
            return self.x[i * self.batch_rows:(i + 1) * self.batch_rows]
        out = self.batches[i]
        x = out[0] if isinstance(out, tuple) else out
        want = min(self.batch_rows, self.n_rows - i * self.batch_rows)
        if len(x) != want:
            raise ValueError(
                f"Batch {i} has {len(x)} images instead of {want}: a file "
                f"was skipped as bad while decoding. Call batches.scan() "
                f"before precompute so that every batch is full.")
        return x

    def labels(self):
        if self.batches is None:
            return self.y
        return self.batches.labels_in_order()

    def _fingerprint(self):
        if self.batches is not None:
            return f"images:{self.batches.fingerprint()}:{self.n_rows}"
        h = hashlib.blake2b(digest_size=16)
        h.update(f"{self.x.shape}|{self.x.dtype}".encode())
        for i in range(0, self.n_rows, 4096):
            h.update(np.ascontiguousarray(self.x[i:i + 4096]).reshape(-1))
        if self.y is not None:
            h.update(np.ascontiguousarray(self.y).reshape(-1).view(np.uint8))
        return f"arrays:{h.hexdigest()}"
