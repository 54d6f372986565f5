"""The State Farm pipeline of the course, step by step, on real images.

Driver split, a sample, the BN-first linear model (low rate first),
conv_bn without and with augmentation, a convolutional base whose features
are computed once, dense_bn_head on them, augmented feature passes,
pseudo-labels through ``MixedBatches``, clipped predictions. Every step
records its driver-split validation accuracy, log loss and seconds.
``kerasdl statefarm`` and ``recipes/statefarm.py`` run it.
"""

import os
import time

import keras
import numpy as np

from kerasdl import _validate
from kerasdl.data import augment as augment_lib
from kerasdl.data.images import image_files
from kerasdl.data.splits import group_split
from kerasdl.data.splits import table_files
from kerasdl.models import baselines
from kerasdl.models.surgery import conv_base
from kerasdl.registry import BACKBONES

CLASSES = tuple(f"c{i}" for i in range(10))
#: Convolutional bases: trained here, or a pretrained backbone by name.
BASES = ("scratch", *BACKBONES)

#: Images drawn from the training and validation drivers in quick mode.
QUICK_TRAIN, QUICK_VALID = 600, 300
#: Fewest usable images on each side of the driver split.
MIN_IMAGES = 16
#: Smallest image side the conv_bn step can take.
MIN_SIDE = 17


class Pipeline:
    """Runs the State Farm steps and collects their rows.

    Args:
        data: str. Folder with ``driver_imgs_list.csv`` and ``train/c0..c9``.
        out: str. Folder for features, plots and the report.
        size: ``(height, width)`` of the images fed to the models.
            Defaults to ``(60, 80)``, the size of the shared copy.
        val_drivers: int. Whole drivers held out for validation.
        seed: int. Seed of the split, sample, weights and batches.
        base: ``"scratch"`` (a convnet trained on the training drivers
            only) or a backbone name (``kerasdl.registry.BACKBONES``:
            ``"vgg16"``, ``"resnet50"``, ``"convnext_tiny"`` ...), built
            at ``size`` with ImageNet weights (or ``weights``) and cut at
            its feature layer.
        weights: str or None. Weights file for a backbone ``base``.
        quick: bool. A few hundred images and one epoch per step (tests).
        verbose: int. Passed to ``fit``.
        log: callable or None. Called with each step's row when it ends.
        on_error: ``"raise"`` (default) or ``"skip"``: what to do with an
            image that cannot be read. Skipped files are listed in
            ``skipped`` and in the report.

    Raises:
        ValueError: a bad argument (see ``run_statefarm``).
        FileNotFoundError: ``data`` has no ``driver_imgs_list.csv``.
    """

    def __init__(self, data, out, *, size=(60, 80), val_drivers=5, seed=0,
                 base="scratch", weights=None, quick=False, verbose=0,
                 log=None, on_error="raise"):
        _validate.choice(base, "base", BASES)
        _validate.choice(on_error, "on_error", ("raise", "skip"))
        self.size = _check_size(size)
        self.seed = _validate.integer(seed, "seed", low=0, high=2 ** 32 - 1)
        if weights is not None and base == "scratch":
            raise ValueError(f"`weights` goes with a pretrained base such as "
                             f"base='vgg16'. Received: weights={weights!r} "
                             f"with base={base!r}.")
        self.table = _read_table(data)
        self.val_drivers = _check_val_drivers(val_drivers, self.table)
        self.data, self.out, self.base = data, os.fspath(out), base
        self.weights, self.quick, self.verbose = weights, quick, verbose
        self.log, self.on_error = log, on_error
        self.rows, self.curves, self.skipped = [], {}, []
        self._net = None
        if os.path.exists(self.out) and not os.path.isdir(self.out):
            raise ValueError(f"`out` must be a folder, not an existing "
                             f"file. Received: out={self.out!r}.")

    def check(self):
        """Checks the models fit the image size and the images fit in
        memory, before anything is loaded or trained.

        Raises:
            ValueError: an image size too small for a model, or a plan
                larger than half of the machine's memory.
        """
        from kerasdl.commands import check_memory
        from kerasdl.registry import count_params

        n = min(len(self.table), QUICK_TRAIN + QUICK_VALID) if \
            self.quick else len(self.table)
        pixels = self.size[0] * self.size[1] * 3
        check_memory(n * pixels * 4, f"{n:,} images at size "
                     f"{self.size[0]}x{self.size[1]} (as float32)",
                     "pass a smaller `size`")
        builds = (("conv_bn", lambda: baselines.conv_bn(self._shape(), 10)),
                  ("deeper_conv_bn", lambda: self._deeper()))
        for name, build in builds:
            try:
                total = count_params(build)
            except ValueError:
                raise ValueError(
                    f"`size` {self.size[0]}x{self.size[1]} is too small for "
                    f"the {name} step (two 3x3 convolutions, each followed "
                    f"by a 3x3 pooling); pass at least {MIN_SIDE}x"
                    f"{MIN_SIDE}.") from None
            check_memory(total * 4, f"{name} at size {self.size[0]}x"
                         f"{self.size[1]} ({total:,} parameters)",
                         "pass a smaller `size`")
        if self.base != "scratch":
            self._check_backbone(count_params, check_memory)

    def _check_backbone(self, count_params, check_memory):
        from kerasdl.models.backbones import backbone
        from kerasdl.models.backbones import feature_layer
        from kerasdl.models.backbones import title

        size = f"{self.size[0]}x{self.size[1]}"
        features = []

        def build():
            net = backbone(self.base, input_shape=self._shape(),
                           weights=None)
            layer = feature_layer(net)
            features.append((layer, net.get_layer(layer).output.shape[1:]))
            return net

        try:
            total = count_params(build)
        except ValueError as e:
            raise ValueError(f"base {self.base!r} cannot be built at "
                             f"`size` {size}: {e}") from None
        layer, shape = features[0]
        if min(shape[:2]) < 2:
            raise ValueError(
                f"base {self.base!r} at `size` {size} gives features of "
                f"{shape[0]}x{shape[1]} at {layer}; the dense head on them "
                f"starts with a 2x2 max-pooling, so they must be at least "
                f"2x2. Pass a larger `size`, such as 64x64 or more.")
        check_memory(total * 4, f"{title(self.base)} at size {size} "
                     f"({total:,} parameters)", "pass a smaller `size`")

    def prepare_base(self):
        """Builds the pretrained base (loading its weights) before
        training, so that a bad weights file or a failed download is found
        first."""
        if self.base != "scratch" and self._net is None:
            from kerasdl.models.backbones import backbone
            from kerasdl.models.backbones import title

            try:
                self._net = backbone(self.base, input_shape=self._shape(),
                                     include_top=False, input_dtype="uint8",
                                     weights=self.weights or "imagenet")
            except (OSError, ValueError) as e:
                if self.weights is None:
                    raise
                raise ValueError(
                    f"`weights` {self.weights!r} could not be loaded into "
                    f"{title(self.base)}: {' '.join(str(e).split())}"
                ) from None

    # -- data -------------------------------------------------------------
    def load(self):
        """Splits by driver, decodes every image into uint8 arrays, then
        creates ``out``."""
        start = time.perf_counter()
        train_t, valid_t = group_split(self.table, "subject",
                                       n_groups=self.val_drivers,
                                       seed=self.seed)
        if self.quick:
            train_t = train_t.sample(min(QUICK_TRAIN, len(train_t)),
                                     random_state=self.seed)
            valid_t = valid_t.sample(min(QUICK_VALID, len(valid_t)),
                                     random_state=self.seed)
        self.drivers = {"train": list(train_t.attrs["groups"]),
                        "valid": list(valid_t.attrs["groups"])}
        self.x, self.y, _ = self._read(train_t, "training")
        self.xv, self.yv, self.valid_ids = self._read(valid_t, "validation")
        os.makedirs(self.out, exist_ok=True)
        skipped = (f"; {len(self.skipped)} bad image(s) skipped"
                   if self.skipped else "")
        self._row("load", "images", None, None, start,
                  note=f"{len(self.x)} train images of "
                       f"{len(self.drivers['train'])} drivers, {len(self.xv)} "
                       f"valid of {', '.join(self.drivers['valid'])}"
                       f"{skipped}")

    def _read(self, table, side):
        paths, names = table_files(table, os.path.join(self.data, "train"))
        ids = table["img"].astype(str).tolist()
        labels = [CLASSES.index(n) for n in names]
        batches = image_files(paths, labels, class_names=list(CLASSES),
                              image_size=self.size, batch_size=512,
                              on_error=self.on_error)
        x, y = batches.to_arrays()
        bad = {p for p, _ in batches.report.skipped}
        self.skipped += sorted(bad)
        kept = [i for i, p in zip(ids, paths) if p not in bad]
        if len(kept) < MIN_IMAGES:
            raise ValueError(
                f"The {side} drivers have {len(kept)} usable image(s); the "
                f"pipeline needs at least {MIN_IMAGES} on each side. Use "
                f"more images (leave out quick mode) or change "
                f"`val_drivers`.")
        return x, np.asarray(y).astype("int64"), kept

    # -- steps ------------------------------------------------------------
    def linear_sample(self):
        """BN-first linear model on a sample: Adam 1e-5 first, then 1e-3."""
        rng = np.random.default_rng(self.seed)
        n_t, n_v = (300, 200) if self.quick else (1500, 1000)
        it = rng.choice(len(self.x), min(n_t, len(self.x)), replace=False)
        iv = rng.choice(len(self.xv), min(n_v, len(self.xv)), replace=False)
        model = self._compile(baselines.linear_bn(self._shape(), 10), 1e-5)
        start = time.perf_counter()
        h1 = model.fit(self.x[it], self.y[it], batch_size=64,
                       epochs=self._epochs(2), verbose=self.verbose,
                       validation_data=(self.xv[iv], self.yv[iv]))
        model.optimizer.learning_rate.assign(1e-3)
        h2 = model.fit(self.x[it], self.y[it], batch_size=64,
                       epochs=self._epochs(4), verbose=self.verbose,
                       validation_data=(self.xv[iv], self.yv[iv]))
        self.curves["linear_bn (sample)"] = (
            h1.history["val_accuracy"] + h2.history["val_accuracy"])
        self._row("sample: linear_bn, Adam 1e-5 then 1e-3", "linear_bn",
                  model, (self.xv[iv], self.yv[iv]), start,
                  note=f"sample of {len(it)} train / {len(iv)} valid")

    def conv(self, augmented):
        """The course's conv1 on all training drivers, with or without
        the combined augmentation."""
        keras.utils.set_random_seed(self.seed)
        body = baselines.conv_bn(self._shape(), 10)
        model = self._augmented(body) if augmented else body
        self._compile(model, 1e-3)
        name = "conv_bn + augmentation" if augmented else "conv_bn"
        self._fit_and_row(name, "conv_bn", model, self._epochs(8 if
                                                               augmented
                                                               else 4))
        return model

    def features(self):
        """The convolutional base and its features, computed once."""
        from kerasdl.features import precompute

        start = time.perf_counter()
        if self.base != "scratch":
            from kerasdl.models.backbones import feature_layer
            from kerasdl.models.backbones import title

            self.prepare_base()
            net = self._net
            layer = feature_layer(net)
            desc = f"{title(self.base)} " + (
                f"weights {self.weights}" if self.weights else "ImageNet")
        else:
            keras.utils.set_random_seed(self.seed)
            net = self._deeper()
            trained = self._compile(self._augmented(net), 1e-3)
            self._fit_and_row("base: deeper_conv_bn + augmentation",
                              "deeper_conv_bn", trained, self._epochs(10))
            layer = "block3_pool"
            desc = ("deeper_conv_bn trained from scratch on the training "
                    "drivers only (no ImageNet weights)")
        self.base_desc = f"{desc}, features at {layer}"
        base = conv_base(net, layer)
        folder = os.path.join(self.out, "features")
        passes = 1 if self.quick else 3
        # Rows [0, n) of the augmented set are the original images, so the
        # plain head reads them there instead of computing them twice.
        self.f_aug = precompute(base, (self.x, self.y),
                                os.path.join(folder, "train_aug"), layer=None,
                                augment_passes=passes, seed=self.seed,
                                augment=self._augmentation(), verbose=0,
                                overwrite=True)
        self.f_valid = precompute(base, (self.xv, self.yv),
                                  os.path.join(folder, "valid"), layer=None,
                                  verbose=0, overwrite=True)
        self.passes = passes
        self._row("features: conv base, computed once", "conv base", None,
                  None, start, note=self.base_desc)

    def heads(self):
        """dense_bn_head on the features: plain, augmented passes, and
        pseudo-labels on the validation images (their labels unused)."""
        from kerasdl.data.mixed import MixedBatches
        from kerasdl.pseudo import pseudo_label

        n = len(self.x)
        fx = np.asarray(self.f_aug.features[:n])
        fy = np.asarray(self.f_aug.labels[:n])
        ax, ay = np.asarray(self.f_aug.features), self.f_aug.labels
        vx = np.asarray(self.f_valid.features)
        valid = (vx, self.yv)
        epochs = self._epochs(8)
        head = self._head()
        self._fit_and_row("head on features", "dense_bn_head", head, epochs,
                          data=(fx, fy), valid=valid)
        head_aug = self._head()
        self._fit_and_row(f"head on features + {self.passes} augmented "
                          f"passes", "dense_bn_head", head_aug, epochs,
                          data=(ax, ay), valid=valid)
        _, soft = pseudo_label(head_aug, vx)
        onehot = keras.utils.to_categorical(ay, 10)
        head_ps = self._head(loss="categorical_crossentropy")
        mix = MixedBatches([(ax, onehot), (vx, soft)], batch_sizes=[48, 16],
                           seed=self.seed)
        self._fit_and_row(
            "head + augmented passes + pseudo-labels (16 of 64)",
            "dense_bn_head", head_ps, epochs, data=mix,
            valid=(vx, keras.utils.to_categorical(self.yv, 10)))
        self.best = head_ps
        self.best_valid = vx
        return head_aug, head_ps

    def clipped(self):
        """Log loss of the best model's predictions, raw and clipped."""
        from kerasdl.submission import clip_probabilities
        from kerasdl.submission import write_submission

        probs = self.best.predict(self.best_valid, verbose=0)
        self.valid_probs = probs
        raw = _log_loss(self.yv, probs)
        clipped = _log_loss(self.yv, clip_probabilities(probs, 0.93))
        path = os.path.join(self.out, "valid_predictions.csv.gz")
        write_submission(path, self.valid_ids, probs, CLASSES)
        self.rows.append({
            "step": "clipped predictions (m=0.93)", "model": "best head",
            "val_accuracy": self.rows[-1]["val_accuracy"],
            "val_log_loss": round(clipped, 4), "seconds": 0.0,
            "note": f"log loss {raw:.4f} unclipped -> {clipped:.4f} "
                    f"clipped; {os.path.basename(path)} written"})

    # -- helpers ----------------------------------------------------------
    def _shape(self):
        return (*self.size, 3)

    def _deeper(self):
        return baselines.deeper_conv_bn(self._shape(), 10,
                                        filters=(32, 64, 128), units=256)

    def _epochs(self, n):
        return 1 if self.quick else n

    def _augmentation(self):
        return augment_lib.augmentation("statefarm", seed=self.seed)

    def _augmented(self, body):
        inputs = keras.Input(self._shape())
        x = self._augmentation()(inputs)
        return keras.Model(inputs, body(x), name=f"{body.name}_augmented")

    def _head(self, loss="sparse_categorical_crossentropy"):
        keras.utils.set_random_seed(self.seed)
        head = baselines.dense_bn_head(tuple(self.f_aug.features.shape[1:]),
                                       10, p=0.5, units=256)
        return self._compile(head, 1e-3, loss)

    def _compile(self, model, lr, loss="sparse_categorical_crossentropy"):
        model.compile(optimizer=keras.optimizers.Adam(lr), loss=loss,
                      metrics=["accuracy"])
        return model

    def _fit_and_row(self, step, name, model, epochs, data=None,
                     valid=None):
        from kerasdl.training.fit import fit_one_cycle

        data = data if data is not None else (self.x, self.y)
        valid = valid if valid is not None else (self.xv, self.yv)
        start = time.perf_counter()
        kwargs = {} if isinstance(data, keras.utils.PyDataset) else {
            "batch_size": 64}
        history = fit_one_cycle(model, data, epochs=epochs, lr_max=1e-3,
                                validation_data=valid, verbose=self.verbose,
                                **kwargs)
        self.curves[step] = history.history["val_accuracy"]
        self._row(step, name, model, valid, start)

    def _row(self, step, name, model, valid, start, note=""):
        row = {"step": step, "model": name, "val_accuracy": None,
               "val_log_loss": None, "seconds": None, "note": note}
        if model is not None:
            xv, yv = valid
            probs = model.predict(xv, batch_size=512, verbose=0)
            labels = yv.argmax(1) if np.ndim(yv) == 2 else yv
            row["val_accuracy"] = round(float((probs.argmax(1) ==
                                               labels).mean()), 4)
            row["val_log_loss"] = round(_log_loss(labels, probs), 4)
            row["params"] = int(model.count_params())
        row["seconds"] = round(time.perf_counter() - start, 1)
        self.rows.append(row)
        if self.log is not None:
            self.log(row)


def _read_table(data):
    """Reads ``driver_imgs_list.csv`` and checks its columns."""
    import pandas as pd

    csv = os.path.join(data, "driver_imgs_list.csv")
    if not os.path.isfile(csv):
        raise FileNotFoundError(
            f"{csv} not found: --data must be the State Farm folder "
            f"holding driver_imgs_list.csv and train/c0..c9.")
    try:
        table = pd.read_csv(csv)
    except (pd.errors.ParserError, UnicodeDecodeError) as e:
        raise ValueError(f"{csv} is not a CSV table: "
                         f"{_first_sentence(e)}") from None
    except pd.errors.EmptyDataError:
        raise ValueError(f"{csv} is empty.") from None
    missing = [c for c in ("subject", "classname", "img")
               if c not in table.columns]
    if missing:
        raise ValueError(f"{csv} lacks the column(s) {missing}; it needs "
                         f"subject, classname and img.")
    unknown = sorted(set(table["classname"].astype(str)) - set(CLASSES))
    if unknown:
        raise ValueError(f"{csv} names classes {unknown[:5]} outside "
                         f"c0..c9.")
    if table.empty:
        raise ValueError(f"{csv} lists no image.")
    return table


def _check_val_drivers(value, table):
    n = table["subject"].nunique()
    if n < 2:
        raise ValueError(
            f"The data has {n} driver(s); the driver split needs at least "
            f"2 (one to train on, one to validate on).")
    return _validate.integer(
        value, "val_drivers", low=1, high=n - 1,
        hint=f"The data has {n} drivers; at least one must stay on each "
             f"side of the split.")


def _check_size(size):
    try:
        h, w = size
    except (TypeError, ValueError):
        raise TypeError(f"`size` must be (height, width). Received: "
                        f"size={size!r}.") from None
    return (_validate.integer(h, "size", low=1),
            _validate.integer(w, "size", low=1))


def _first_sentence(error):
    text = " ".join(str(error).replace("\x1b[1m", "").replace(
        "\x1b[0m", "").split())
    head = "Exception encountered when calling "
    if head in text:
        text = text.split(".call().", 1)[-1].split("Arguments received")[0]
    return text.strip()


def _log_loss(y, probs):
    p = np.clip(np.asarray(probs, "float64"), 1e-15, 1.0)
    p = p / p.sum(axis=1, keepdims=True)
    return float(-np.mean(np.log(p[np.arange(len(y)), np.asarray(y)])))


def run_statefarm(data, out, *, size=(60, 80), val_drivers=5, seed=0,
                  base="scratch", weights=None, quick=False, verbose=0,
                  log=None, on_error="raise"):
    """Runs every step and writes the report into ``out``.

    ``out`` receives ``report.md``, ``report.json``, ``lr_find.png``,
    ``curves.png``, ``confusion.png``, ``valid_predictions.csv.gz`` and
    the precomputed features.

    Example:

    >>> report = run_statefarm("statefarm-80x60", "out")  # doctest: +SKIP
    >>> report["rows"][-1]["step"]  # doctest: +SKIP
    'clipped predictions (m=0.93)'

    Args:
        data, out, size, val_drivers, seed, base, weights, quick, verbose,
            log, on_error: see ``Pipeline``.

    Returns:
        The report as a dict (the content of ``report.json``).

    Raises:
        ValueError: a bad argument, found before any image is read: an
            unknown ``base``, a ``val_drivers`` that leaves no driver on a
            side, a ``size`` too small for the models or too large for the
            machine's memory, ``out`` an existing file; then a bad image
            (with ``on_error="raise"``) or too few usable images.
        FileNotFoundError: ``data`` has no ``driver_imgs_list.csv``.
    """
    from kerasdl import interpret
    from kerasdl.training.lr_finder import lr_find
    from kerasdl.report import plot_curves
    from kerasdl.report import write_report

    start = time.perf_counter()
    keras.utils.set_random_seed(seed)
    p = Pipeline(data, out, size=size, val_drivers=val_drivers, seed=seed,
                 base=base, weights=weights, quick=quick, verbose=verbose,
                 log=log, on_error=on_error)
    p.check()
    p.prepare_base()
    p.load()
    finder_model = p._compile(baselines.linear_bn(p._shape(), 10), 1e-5)
    found = lr_find(finder_model, (p.x, p.y), batch_size=64, seed=seed,
                    num_it=30 if quick else 100)
    found.save_plot(os.path.join(out, "lr_find.png"))
    p.linear_sample()
    p.conv(augmented=False)
    p.conv(augmented=True)
    p.features()
    head_aug, head_ps = p.heads()
    p.clipped()
    interpret.save_figure(plot_curves(p.curves),
                          os.path.join(out, "curves.png"))
    cm = interpret.confusion_matrix(p.yv, p.valid_probs, 10)
    interpret.save_figure(interpret.plot_confusion_matrix(cm, CLASSES),
                          os.path.join(out, "confusion.png"))
    total = time.perf_counter() - start
    by_step = {r["step"]: r for r in p.rows}
    without = by_step[[s for s in by_step if "augmented passes" in s
                       and "pseudo" not in s][0]]["val_accuracy"]
    with_ps = p.rows[-2]["val_accuracy"]
    summary = [
        f"data: {data} at {size[0]}x{size[1]}; validation drivers "
        f"{', '.join(p.drivers['valid'])} (seed {seed}); "
        f"{len(p.x)} train / {len(p.xv)} valid images"
        + (" (quick mode: a subset, one epoch per step)" if quick else ""),
        f"convolutional base: {p.base_desc}",
        f"LR finder on linear_bn: valley {found.valley:.2e}, minimum "
        f"{found.minimum:.2e}, steep {found.steep:.2e}",
        f"pseudo-labelling: {without} without -> {with_ps} with "
        f"(same head, same epochs)",
        f"backend {keras.backend.backend()}, total {total:.0f} s",
    ]
    extra = {"drivers": p.drivers, "base": p.base_desc,
             "lr_find": {"valley": found.valley, "minimum": found.minimum,
                         "steep": found.steep},
             "pseudo": {"without": without, "with": with_ps},
             "most_confused": [list(t) for t in interpret.most_confused(
                 cm, CLASSES, min_val=1)[:10]],
             "backend": keras.backend.backend(), "seconds": round(total, 1),
             "quick": quick, "skipped_images": p.skipped}
    write_report(out, "State Farm distracted drivers", p.rows,
                 summary=summary, extra=extra,
                 images=[("LR finder", "lr_find.png"),
                         ("validation accuracy", "curves.png"),
                         ("confusion matrix", "confusion.png")])
    return {"rows": p.rows, "summary": summary, **extra}
