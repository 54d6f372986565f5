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

from kerasdl.data import augment as augment_lib
from kerasdl.data.images import image_files
from kerasdl.data.splits import group_split
from kerasdl.data.splits import table_files
from kerasdl.models import baselines
from kerasdl.models.surgery import conv_base

CLASSES = tuple(f"c{i}" for i in range(10))


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
            only) or ``"vgg16"`` (ImageNet weights, or ``weights``).
        weights: str or None. Weights file for ``base="vgg16"``.
        quick: bool. A few hundred images and one epoch per step (tests).
        verbose: int. Passed to ``fit``.
        log: callable or None. Called with each step's row when it ends.
    """

    def __init__(self, data, out, *, size=(60, 80), val_drivers=5, seed=0,
                 base="scratch", weights=None, quick=False, verbose=0,
                 log=None):
        if base not in ("scratch", "vgg16"):
            raise ValueError(f"`base` must be 'scratch' or 'vgg16'. "
                             f"Received: base={base!r}.")
        csv = os.path.join(data, "driver_imgs_list.csv")
        if not os.path.isfile(csv):
            raise FileNotFoundError(
                f"{csv} not found: --data must be the State Farm folder "
                f"holding driver_imgs_list.csv and train/c0..c9.")
        self.data, self.out, self.size = data, out, tuple(size)
        self.val_drivers, self.seed, self.base = val_drivers, seed, base
        self.weights, self.quick, self.verbose = weights, quick, verbose
        self.log = log
        self.rows, self.curves = [], {}
        os.makedirs(out, exist_ok=True)

    # -- data -------------------------------------------------------------
    def load(self):
        """Splits by driver and decodes every image into uint8 arrays."""
        start = time.perf_counter()
        train_t, valid_t = group_split(
            os.path.join(self.data, "driver_imgs_list.csv"), "subject",
            n_groups=self.val_drivers, seed=self.seed)
        if self.quick:
            train_t = train_t.sample(600, random_state=self.seed)
            valid_t = valid_t.sample(300, random_state=self.seed)
        self.drivers = {"train": list(train_t.attrs["groups"]),
                        "valid": list(valid_t.attrs["groups"])}
        self.x, self.y = self._read(train_t)
        self.xv, self.yv = self._read(valid_t)
        self.valid_ids = valid_t["img"].astype(str).tolist()
        self._row("load", "images", None, None, start,
                  note=f"{len(self.x)} train images of "
                       f"{len(self.drivers['train'])} drivers, {len(self.xv)} "
                       f"valid of {', '.join(self.drivers['valid'])}")

    def _read(self, table):
        paths, names = table_files(table, os.path.join(self.data, "train"))
        labels = [CLASSES.index(n) for n in names]
        batches = image_files(paths, labels, class_names=list(CLASSES),
                              image_size=self.size, batch_size=512)
        xs, ys = zip(*(batches[i] for i in range(len(batches))))
        return np.concatenate(xs), np.concatenate(ys).astype("int64")

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
        if self.base == "vgg16":
            from kerasdl.models.vgg import vgg16

            net = vgg16(self._shape(), include_top=False, input_dtype="uint8",
                        weights=self.weights or "imagenet")
            layer, desc = "block5_conv3", ("VGG16 " + (
                f"weights {self.weights}" if self.weights else "ImageNet"))
        else:
            keras.utils.set_random_seed(self.seed)
            net = baselines.deeper_conv_bn(self._shape(), 10,
                                           filters=(32, 64, 128), units=256)
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
        from kerasdl.train import fit_one_cycle

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


def _log_loss(y, probs):
    p = np.clip(np.asarray(probs, "float64"), 1e-15, 1.0)
    p = p / p.sum(axis=1, keepdims=True)
    return float(-np.mean(np.log(p[np.arange(len(y)), np.asarray(y)])))


def run_statefarm(data, out, *, size=(60, 80), val_drivers=5, seed=0,
                  base="scratch", weights=None, quick=False, verbose=0,
                  log=None):
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
            log: see ``Pipeline``.

    Returns:
        The report as a dict (the content of ``report.json``).
    """
    from kerasdl import interpret
    from kerasdl.callbacks.lr_finder import lr_find
    from kerasdl.report import plot_curves
    from kerasdl.report import write_report

    start = time.perf_counter()
    keras.utils.set_random_seed(seed)
    p = Pipeline(data, out, size=size, val_drivers=val_drivers, seed=seed,
                 base=base, weights=weights, quick=quick, verbose=verbose,
                 log=log)
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
             "quick": quick}
    write_report(out, "State Farm distracted drivers", p.rows,
                 summary=summary, extra=extra,
                 images=[("LR finder", "lr_find.png"),
                         ("validation accuracy", "curves.png"),
                         ("confusion matrix", "confusion.png")])
    return {"rows": p.rows, "summary": summary, **extra}
