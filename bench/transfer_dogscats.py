"""Transfer learning on dogscats (800 + 200 photos), one JSON line prefixed RESULT.

    KERAS_BACKEND=jax python bench/transfer_dogscats.py MODE SEED [EXTRA]

MODE: ``pretrained`` (ImageNet EfficientNet-Lite0 from the ``pretrained``
extra, vision_model, fine_tune 1 frozen + 3 unfrozen epochs; then plain and
TTA accuracy), ``probe`` (logistic regression on the pooled ImageNet
features) or ``scratch`` (the same model with random weights, lr_find valley
or the rate in $LR, fit_one_cycle for EXTRA epochs, default 8). EXTRA for
``pretrained``: ``nobn`` (train_bn=False in the frozen phase only, the old
default), ``f2`` (two frozen epochs), ``bnfrozen`` (both phases by hand with
the body's BatchNormalization frozen). $MOM sets the backbone's BN momentum.
$DOGSCATS is the photo folder (default /tmp/data/dogscats). bench/NOTES.md
has the figures.
"""
import json, os, sys, time
import numpy as np, keras, kerasdl
mode = sys.argv[1]; seed = int(sys.argv[2]); extra = sys.argv[3] if len(sys.argv) > 3 else ""
import os
MOM = float(os.environ.get("MOM", "0"))
size = 224
opts = dict(kv.split("=") for kv in extra.split(",") if "=" in kv)
aug = kerasdl.augmentation(opts["aug"], seed=seed) if "aug" in opts else None
train, valid = kerasdl.images_from_folder(os.environ.get("DOGSCATS", "/tmp/data/dogscats"), image_size=(size, size), batch_size=32, seed=seed, augment=aug)
keras.utils.set_random_seed(seed)
t = time.time()
out = {"mode": mode, "seed": seed}
if mode == "probe":
    from sklearn.linear_model import LogisticRegression
    base = kerasdl.backbone("efficientnet_lite0", weights="imagenet")
    pool = keras.Sequential([base, keras.layers.GlobalAveragePooling2D()])
    xt, yt = train.to_arrays(); xv, yv = valid.to_arrays()
    ft = pool.predict(xt, batch_size=64, verbose=0); fv = pool.predict(xv, batch_size=64, verbose=0)
    clf = LogisticRegression(max_iter=2000, C=1.0).fit(ft, yt)
    out["val_accuracy"] = [float((clf.predict(fv) == yv).mean())]
else:
    weights = "imagenet" if mode == "pretrained" else None
    base = kerasdl.backbone("efficientnet_lite0", weights=weights)
    if MOM:
        for l in base.layers:
            if isinstance(l, keras.layers.BatchNormalization): l.momentum = MOM
    out["mom"] = MOM; out["extra"] = extra
    model = kerasdl.vision_model(base, 2)
    opt = keras.optimizers.AdamW(1e-3, weight_decay=float(opts["wd"])) if "wd" in opts else keras.optimizers.Adam(1e-3)
    model.compile(opt, "sparse_categorical_crossentropy", metrics=["accuracy"])
    if mode == "pretrained":
        kw = dict(epochs=int(opts.get("e", 3)), freeze_epochs=int(opts.get("f", 1)))
        if "lr" in opts: kw["base_lr"] = float(opts["lr"])
        if extra == "nobn": kw["train_bn"] = False
        if extra == "f2": kw["freeze_epochs"] = 2
        if extra == "e5": kw["epochs"] = 5
        if extra.startswith("bnfrozen"):
            from kerasdl import train as T
            ep = 3
            T.freeze(model, train_bn=False)
            model.compile(keras.optimizers.Adam(1e-3), "sparse_categorical_crossentropy", metrics=["accuracy"])
            h1 = kerasdl.fit_one_cycle(model, train, 1, 2e-3, pct_start=0.99, validation_data=valid, verbose=0)
            T.unfreeze(model)
            for l in base.layers:
                if isinstance(l, keras.layers.BatchNormalization): l.trainable = False
            opt = kerasdl.discriminative_optimizer(model, slice(1e-5, 1e-3), keras.optimizers.Adam(1e-3), 3)
            model.compile(opt, "sparse_categorical_crossentropy", metrics=["accuracy"])
            h2 = kerasdl.fit_one_cycle(model, train, ep, slice(1e-5, 1e-3), pct_start=0.3, div=5.0, validation_data=valid, verbose=0)
            out["val_accuracy"] = h1.history["val_accuracy"] + h2.history["val_accuracy"]
            kw = None
        if kw is not None:
            h1, h2 = kerasdl.fine_tune(model, train, validation_data=valid, verbose=0, **kw)
            out["val_accuracy"] = h1.history["val_accuracy"] + h2.history["val_accuracy"]
    else:
        found = kerasdl.lr_find(model, train, verbose=0)
        lr = found.suggestions["valley"] if not os.environ.get("LR") else float(os.environ["LR"]); out["lr"] = lr
        h = kerasdl.fit_one_cycle(model, train, int(extra or 8), lr, validation_data=valid, verbose=0)
        out["val_accuracy"] = h.history["val_accuracy"]
if mode == "pretrained" and not os.environ.get("NOTTA"):
    probs, yv = kerasdl.tta(model, valid, return_targets=True)
    plain = model.predict(valid, verbose=0)
    yv = np.asarray(yv).reshape(-1)
    out["plain_acc"] = float((plain.argmax(1) == yv).mean()); out["tta_acc"] = float((probs.argmax(1) == yv).mean())
    probs8 = kerasdl.tta(model, valid, augment="dogscats", n=4)
    out["tta_aug4_acc"] = float((probs8.argmax(1) == yv).mean())
out["val_accuracy"] = [round(float(v), 4) for v in out["val_accuracy"]]
out["seconds"] = round(time.time() - t, 1)
print("RESULT", json.dumps(out), flush=True)
