"""State Farm, 5 whole drivers held out (the statefarm command's split, seed 0).

    KERAS_BACKEND=jax python bench/transfer_statefarm.py pretrained HxW
    KERAS_BACKEND=jax python bench/transfer_statefarm.py scratch
    KERAS_BACKEND=jax python bench/transfer_statefarm.py spatial HxW
    KERAS_BACKEND=jax python bench/transfer_statefarm.py finetune HxW [EPOCHS]

``pretrained``: the 80x60 images upsampled to HxW, ImageNet EfficientNet-Lite0
(bf16) globally pooled features computed once (+3 passes of the statefarm
augmentation), then a logistic regression, a dense BN head, the head on the
augmented passes, and the head with pseudo-labels on the validation drivers
(MixedBatches 48 + 16). ``scratch``: the pipeline's conv_bn + augmentation step
at 60x80, then test-time augmentation (mirror; 4 and 8 statefarm passes).
``spatial``: the same steps on the backbone's feature map (not pooled;
flattened into the dense BN head). ``finetune``: vision_model on the ImageNet
backbone with the statefarm augmentation inside the model, ``fine_tune``
(1 frozen + EPOCHS unfrozen epochs, default 4), then 4 statefarm TTA passes.
$LIMIT keeps that many training images (a quick check on a CPU).
$STATEFARM is the data folder (default /tmp/data/statefarm-80x60). One JSON
line prefixed RESULT per step; bench/NOTES.md has the figures.
"""
import json, sys, time, os
import numpy as np, keras, kerasdl
from kerasdl.statefarm import Pipeline, _log_loss
from kerasdl.data import augment as A
what = sys.argv[1]
H, W = (int(v) for v in sys.argv[2].split("x")) if len(sys.argv) > 2 else (180, 240)
def emit(**r): print("RESULT", json.dumps(r), flush=True)
t0 = time.time()
p = Pipeline(os.environ.get("STATEFARM", "/tmp/data/statefarm-80x60"), "/tmp/sfout_" + what, size=(H, W) if what != "scratch" else (60, 80), seed=0)
p.load()
if os.environ.get("LIMIT"):
    n = int(os.environ["LIMIT"]); p.x, p.y, p.xv, p.yv = p.x[:n], p.y[:n], p.xv[:n // 4], p.yv[:n // 4]
emit(step="load", n_train=len(p.x), n_valid=len(p.xv), drivers=p.drivers["valid"], s=round(time.time() - t0, 1))
def _img(o): return o[0] if isinstance(o, tuple) else o
def acc(probs, y): return float((probs.argmax(1) == y).mean())
if what == "finetune":
    kerasdl.mixed_precision()
    keras.utils.set_random_seed(0)
    base = kerasdl.backbone("efficientnet_lite0", input_shape=(H, W, 3), weights="imagenet", input_dtype="float32")
    vm = kerasdl.vision_model(base, 10)
    inp = keras.Input((H, W, 3))
    model = keras.Model(inp, vm(A.augmentation("statefarm", seed=0)(inp)))
    model.compile(keras.optimizers.Adam(1e-3), "sparse_categorical_crossentropy", metrics=["accuracy"])
    ep = int(sys.argv[3]) if len(sys.argv) > 3 else 4
    t = time.time()
    h1, h2 = kerasdl.fine_tune(model, x=p.x, y=p.y, epochs=ep, freeze_epochs=1, batch_size=64, validation_data=(p.xv, p.yv), verbose=0)
    pr = model.predict(p.xv, batch_size=256, verbose=0)
    emit(step=f"fine_tune 1 frozen + {ep} unfrozen", curve=[round(v, 4) for v in h1.history["val_accuracy"] + h2.history["val_accuracy"]], val_accuracy=acc(pr, p.yv), val_log_loss=_log_loss(p.yv, pr), s=round(time.time() - t, 1))
    pt = kerasdl.tta(model, p.xv, augment="statefarm", n=4, flip=False)
    emit(step="fine_tune + tta 4 statefarm passes", val_accuracy=acc(pt, p.yv), val_log_loss=_log_loss(p.yv, pt))
elif what in ("pretrained", "spatial"):
    kerasdl.mixed_precision()
    base = kerasdl.backbone("efficientnet_lite0", input_shape=(H, W, 3), weights="imagenet")
    top = keras.layers.GlobalAveragePooling2D(dtype="float32") if what == "pretrained" else keras.layers.Flatten(dtype="float32")
    net = keras.Sequential([base, top])
    keras.config.set_dtype_policy("float32")
    aug = A.augmentation("statefarm", seed=0)
    t = time.time()
    fv = net.predict(p.xv, batch_size=256, verbose=0)
    feats = [net.predict(p.x, batch_size=256, verbose=0)]
    emit(step="features clean", s=round(time.time() - t, 1), img_s=round((len(p.x) + len(p.xv)) / (time.time() - t)))
    rng = np.random.default_rng(0)
    for i in range(3):
        xa = np.concatenate([np.asarray(_img(A.transform_with(aug, p.x[j:j + 1024], rng))).clip(0, 255).astype("uint8") for j in range(0, len(p.x), 1024)])
        feats.append(net.predict(xa, batch_size=256, verbose=0))
    emit(step="features aug", s=round(time.time() - t, 1))
    feats = [f.astype("float16") for f in feats]; fv = fv.astype("float16")
    fx = feats[0]; ax = np.concatenate(feats); ay = np.concatenate([p.y] * 4)
    def head():
        keras.utils.set_random_seed(0)
        m = keras.Sequential([keras.Input(fx.shape[1:]), keras.layers.BatchNormalization(), keras.layers.Dropout(0.25),
                              keras.layers.Dense(512, activation="relu"), keras.layers.BatchNormalization(),
                              keras.layers.Dropout(0.5), keras.layers.Dense(10, activation="softmax")])
        return m
    from sklearn.linear_model import LogisticRegression
    clf = LogisticRegression(max_iter=1000, C=0.1).fit(fx, p.y)
    pr = clf.predict_proba(fv); emit(step="logistic regression on clean features", val_accuracy=acc(pr, p.yv), val_log_loss=_log_loss(p.yv, pr))
    for name, (x, y) in (("head", (fx, p.y)), ("head + 3 augmented passes", (ax, ay))):
        m = head(); m.compile(keras.optimizers.Adam(1e-3), "sparse_categorical_crossentropy", metrics=["accuracy"])
        h = kerasdl.fit_one_cycle(m, x=x, y=y, epochs=8, lr_max=1e-3, batch_size=64, validation_data=(fv, p.yv), verbose=0)
        pr = m.predict(fv, verbose=0)
        emit(step=name, curve=[round(v, 4) for v in h.history["val_accuracy"]], val_accuracy=acc(pr, p.yv), val_log_loss=_log_loss(p.yv, pr))
    _, soft = kerasdl.pseudo_label(m, fv)
    m2 = head(); m2.compile(keras.optimizers.Adam(1e-3), "categorical_crossentropy", metrics=["accuracy"])
    mix = kerasdl.MixedBatches([(ax, keras.utils.to_categorical(ay, 10)), (fv, soft)], batch_sizes=[48, 16], seed=0)
    h = kerasdl.fit_one_cycle(m2, mix, 8, 1e-3, validation_data=(fv, keras.utils.to_categorical(p.yv, 10)), verbose=0)
    pr = m2.predict(fv, verbose=0)
    clipped = kerasdl.clip_probabilities(pr, 0.93)
    emit(step="head + aug passes + pseudo-labels", curve=[round(v, 4) for v in h.history["val_accuracy"]], val_accuracy=acc(pr, p.yv), val_log_loss=_log_loss(p.yv, pr), clipped_log_loss=_log_loss(p.yv, clipped))
else:  # scratch conv_bn + augmentation (the pipeline's step) and TTA
    model = p.conv(augmented=True)
    pr = model.predict(p.xv, verbose=0)
    emit(step="conv_bn + augmentation", val_accuracy=acc(pr, p.yv), val_log_loss=_log_loss(p.yv, pr))
    for kw in (dict(), dict(augment="statefarm", n=4, flip=False), dict(augment="statefarm", n=8, flip=False)):
        pt = kerasdl.tta(model, p.xv, **kw)
        emit(step="tta " + json.dumps(kw), val_accuracy=acc(pt, p.yv), val_log_loss=_log_loss(p.yv, pt))
emit(step="done", s=round(time.time() - t0, 1))
