"""The work of ``kerasdl train`` once its flags and data are checked: the
model, the learning rate, the training, then the saved model and the
report (``report.md``, ``report.json``, PNGs) and the summary table."""

import os
import secrets
import time

import numpy as np

from kerasdl import commands
from kerasdl.commands._train_report import plot_curves
from kerasdl.commands._train_report import summary_table
from kerasdl.commands._train_report import write_report

PLOTS = (("learning-rate finder", "lr_find.png"),
         ("loss and accuracy per epoch", "curves.png"),
         ("confusion matrix (validation)", "confusion.png"),
         ("top losses (validation)", "top_losses.png"),
         ("predicted / actual (validation)", "results.png"))


def train(args, train_batches, valid, backbone, why, split):
    """Builds, finds the rate, trains; returns the run's record (with the
    trained model under ``"_model"``)."""
    import keras

    from kerasdl.training.lr_finder import lr_find
    from kerasdl.cli import UsageError
    from kerasdl.training.fit import fine_tune
    from kerasdl.training.fit import fit_one_cycle
    from kerasdl.training.groups import freeze

    quiet = args.json
    names = list(train_batches.class_names)
    try:
        model, description, compile_model = build(
            backbone, len(names), args.size, args.multi_label, args.seed)
    except ValueError as e:
        message = " ".join(str(e).split())
        if " Offline?" not in message:
            raise
        reason = message.split(" Offline?")[0].rstrip(".")
        raise UsageError(f"{reason}. Offline? Put the weights file in "
                         f"~/.keras/models/, or pass --backbone scratch."
                         ) from None
    os.makedirs(args.out, exist_ok=True)
    pretrained = backbone != "scratch"
    say = _say(quiet)
    say(f"{train_batches.n_images} training and {valid.n_images} validation "
        f"images ({split}), {len(names)} classes: {_listing(names)}")
    say(f"model: {description} ({why})")
    lr_record = {"value": args.lr, "source": "--lr"}
    if args.lr is None:
        if pretrained:
            # the rate of the new head, found as fine_tune will train it
            freeze(model, train_bn=False)
            compile_model(model)
        say(f"finding a learning rate ({args.num_it} steps)...")
        found = lr_find(model, train_batches, num_it=args.num_it,
                        seed=args.seed, verbose=0)
        path = os.path.join(args.out, "lr_find.png")
        with commands.writing(path, "--out"):
            found.save_plot(path)
        lr_record = {"value": float(found.valley), "source": "lr_find valley",
                     "suggestions": found.suggestions,
                     "stop_reason": found.stop_reason}
    lr = lr_record["value"]
    say(f"learning rate {lr:.2e} ({lr_record['source']})")
    timer = _timer(keras)
    fit = dict(validation_data=valid, verbose=0 if quiet else 1,
               callbacks=[timer])
    if pretrained:
        say(f"fine_tune: 1 epoch with the {backbone} backbone frozen, then "
            f"{args.epochs} with everything trained (discriminative rates)")
        frozen, unfrozen = fine_tune(model, train_batches, args.epochs,
                                     base_lr=lr, **fit)
        phases = [("frozen", frozen), ("unfrozen", unfrozen)]
        method = (f"fine_tune: 1 frozen epoch at {lr:.2e}, then "
                  f"{args.epochs} unfrozen at {lr / 200:.2e}..{lr / 2:.2e}")
    else:
        say(f"fit_one_cycle: {args.epochs} epoch(s), peak rate {lr:.2e}")
        history = fit_one_cycle(model, train_batches, args.epochs, lr, **fit)
        phases = [("one-cycle", history)]
        method = (f"fit_one_cycle: {args.epochs} epoch(s), peak rate "
                  f"{lr:.2e}")
    metric = "accuracy_multi" if args.multi_label else "accuracy"
    rows = _rows(phases, timer.seconds, metric)
    return {"data": {"path": args.data, "layout": args.layout,
                     "split": split, "train": train_batches.n_images,
                     "valid": valid.n_images, "classes": names,
                     "task": train_batches.task,
                     "skipped": train_batches.report.n_skipped},
            "model": {"backbone": backbone, "pretrained": pretrained,
                      "description": description, "why": why,
                      "input_size": [args.size, args.size],
                      "parameters": int(model.count_params())},
            "lr": lr_record,
            "training": {"method": method, "epochs": len(rows),
                         "batch_size": args.batch_size, "seed": args.seed,
                         "backend": keras.backend.backend()},
            "epochs": rows, "_model": model}


def build(backbone, n_classes, size, multi_label, seed=0):
    """``(model, description, compile_model)``; the model is compiled.

    Both models take uint8 images and flip them at random while training
    (a ``RandomAffine`` inside the model: compiled with the training step,
    off at prediction). A pretrained backbone is nested with the flips in
    front of it, so ``fine_tune`` still sees one body and a ``head_...``
    head.
    """
    import keras

    from kerasdl.data.augment import RandomAffine
    from kerasdl.metrics import AccuracyMulti

    shape = (size, size, 3)
    flip = RandomAffine(horizontal_flip=True, seed=seed, name="flip")
    inputs = keras.Input(shape, dtype="uint8", name="image")
    if backbone == "scratch":
        from kerasdl.models.baselines import conv_bn

        body = conv_bn(shape, n_classes, dropout=0.25,
                       multi_label=multi_label)
        model = keras.Sequential([inputs, flip, body], name="scratch")
        description = ("conv_bn, the course's BN-first convnet (dropout "
                       "0.25, random flips), from scratch")
    else:
        from kerasdl.models.backbones import backbone as make
        from kerasdl.models.backbones import title
        from kerasdl.models.vision import vision_model

        body = make(backbone, input_shape=shape, weights="imagenet")
        body = keras.Sequential([inputs, flip, body], name=body.name)
        model = vision_model(body, n_classes, multi_label=multi_label)
        description = (f"{title(backbone)} pretrained on ImageNet, with a "
                       f"new head (vision_model: average pooling, "
                       f"BN-dropout-dense head; random flips)")
    loss = "binary_crossentropy" if multi_label else \
        "sparse_categorical_crossentropy"

    def compile_model(m):
        metric = AccuracyMulti() if multi_label else "accuracy"
        m.compile(keras.optimizers.Adam(1e-3), loss, metrics=[metric])

    compile_model(model)
    return model, description, compile_model


def finish(args, result, train_batches, valid):
    """Saves the model, measures it on the validation images, writes the
    report and prints the summary (or one JSON line)."""
    from kerasdl.interpretation import Interpretation
    from kerasdl.interpretation import interpret
    from kerasdl.models.labels import with_class_names
    from kerasdl.show import show_results
    from kerasdl.tta import tta

    out = args.out
    model = with_class_names(result.pop("_model"),
                             result["data"]["classes"])
    model_path = os.path.join(out, "model.keras")
    with commands.writing(model_path, "--out"):
        save_model(model, model_path)
    interp = interpret(model, valid, verbose=0)
    probs, y = tta(model, valid, return_targets=True)
    with_tta = Interpretation(y, probs, task=interp.task,
                              class_names=interp.class_names)
    final = {"valid_accuracy": interp.accuracy,
             "valid_loss": float(np.mean(interp.losses)),
             "valid_accuracy_tta": with_tta.accuracy,
             "most_confused": [list(c) for c in interp.most_confused()[:5]]}
    paths = {name: os.path.join(out, name) for _, name in PLOTS}
    with commands.writing(out, "--out"):
        plot_curves(result["epochs"], paths["curves.png"])
        interp.plot_confusion_matrix(paths["confusion.png"])
        interp.plot_top_losses(min(9, len(interp)), paths["top_losses.png"])
        show_results(model, valid, n=16, path=paths["results.png"])
    result["final"] = final
    result["files"] = {"model": model_path, **{
        name: paths[name] for _, name in PLOTS if os.path.exists(paths[name])}}
    with commands.writing(out, "--out"):
        write_report(out, result, PLOTS)
    with commands.printing():
        if args.json:
            commands.print_json(result)
        else:
            print()
            print(summary_table(result["epochs"]))
            print(f"validation accuracy {final['valid_accuracy']:.4f} "
                  f"(with test-time augmentation "
                  f"{final['valid_accuracy_tta']:.4f}), loss "
                  f"{final['valid_loss']:.4f}; {result['seconds']:.0f} s "
                  f"on {result['training']['backend']}")
            print(f"model: {model_path}")
            print(f"report: {os.path.join(out, 'report.md')}")


def save_model(model, path):
    """``model.save(path)`` through a temporary ``.keras`` file beside it,
    so that ``path`` is complete or absent."""
    folder = os.path.dirname(os.path.abspath(path))
    tmp = os.path.join(folder, f".{os.path.basename(path)}."
                               f"{os.getpid()}-{secrets.token_hex(4)}.keras")
    try:
        model.save(tmp)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def _rows(phases, seconds, metric):
    rows = []
    for phase, history in phases:
        if history is None:
            continue
        h = history.history
        for i in range(len(h["loss"])):
            rows.append({
                "epoch": len(rows) + 1, "phase": phase,
                "train_loss": float(h["loss"][i]),
                "train_accuracy": float(h[metric][i]),
                "valid_loss": float(h["val_loss"][i]),
                "valid_accuracy": float(h[f"val_{metric}"][i]),
                "seconds": seconds[len(rows)] if len(rows) < len(seconds)
                else None})
    return rows


def _timer(keras):
    class EpochTimer(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.seconds, self._start = [], None

        def on_epoch_begin(self, epoch, logs=None):
            self._start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            self.seconds.append(round(time.perf_counter() - self._start, 2))

    return EpochTimer()


def _say(quiet):
    def say(text):
        if not quiet:
            with commands.printing():
                print(text, flush=True)
    return say


def _listing(names, limit=8):
    shown = ", ".join(names[:limit])
    return shown + (f" and {len(names) - limit} more"
                    if len(names) > limit else "")

