"""Run by tests/test_distribute.py in a fresh process: the CPU is split into
DEVICES simulated devices before the backend computes anything, then the
same work is done on one device and data-parallel over all of them. Prints
one JSON object of measured differences and counts; the test judges them.

    KERAS_BACKEND=jax python tests/distribute_worker.py
"""

import json
import os
import sys
import tempfile

import numpy as np

DEVICES = 4

if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.dirname(
        os.path.abspath(__file__))))
    import keras

    import kerasdl
    from kerasdl import distribute

    distribute.simulate_cpu_devices(DEVICES)

BATCH = 32
X = np.random.default_rng(0).normal(size=(256, 12)).astype("float32")
Y = (X[:, :3].argmax(1) + (X[:, 3] > 1)) % 3


def build(seed=0):
    keras.utils.set_random_seed(seed)
    model = keras.Sequential([
        keras.Input((12,)),
        keras.layers.Dense(32, activation="relu"),
        # statistics over the whole batch on every backend (JAX computes
        # over the global batch; TensorFlow needs the synchronized layer)
        keras.layers.BatchNormalization(
            synchronized=keras.backend.backend() == "tensorflow"),
        keras.layers.Dense(3, activation="softmax")])
    model.compile(keras.optimizers.Adam(1e-2),
                  "sparse_categorical_crossentropy")
    return model


def flat(arrays):
    return np.concatenate([np.ravel(np.asarray(a, "float64"))
                           for a in arrays])


def replica_values(variable):
    """Every device's copy of a variable, as numpy arrays."""
    value = variable.value
    if hasattr(value, "addressable_shards"):  # JAX
        return [np.asarray(s.data) for s in value.addressable_shards]
    if hasattr(value, "values"):  # tf.distribute mirrored variable
        return [np.asarray(v) for v in value.values]
    return [np.asarray(value)]


def spread(model):
    """Largest difference between two devices' copies of any variable,
    and the fewest copies a variable has."""
    worst, fewest = 0.0, None
    for v in model.variables + model.optimizer.variables:
        copies = replica_values(v)
        fewest = len(copies) if fewest is None else min(fewest, len(copies))
        worst = max(worst, max(float(np.max(np.abs(c - copies[0])))
                               if c.size else 0.0 for c in copies))
    return worst, fewest


def state(model):
    return flat(model.get_weights()), flat(
        [v.numpy() for v in model.optimizer.variables])


def work(model, dp):
    """The same sequence of calls, on one device (dp None) or under dp."""
    out = {}
    model.fit(X, Y, batch_size=BATCH, shuffle=False, verbose=0)
    out["fit"] = flat(model.get_weights())
    kerasdl.fit_one_cycle(model, (X, Y), 1, 1e-2, batch_size=BATCH,
                          shuffle=False, verbose=0)
    out["one_cycle"] = flat(model.get_weights())
    before = state(model)
    result = kerasdl.lr_find(model, (X, Y), num_it=40, batch_size=BATCH,
                             stop_div=False)
    after = state(model)
    out["lr_find_restore"] = max(float(np.max(np.abs(a - b)))
                                 for a, b in zip(before, after))
    # before the loss diverges (there float rounding grows without bound)
    calm = np.asarray(result.lrs) < 1e-3
    out["lr_find_losses"] = np.asarray(result.losses, "float64")[calm]
    # a sweep that diverges: the stop is decided on the host, once
    keras.utils.set_random_seed(4)
    plain = keras.Sequential([keras.Input((12,)), keras.layers.Dense(3)])
    plain.compile(keras.optimizers.SGD(), "mse")
    result = kerasdl.lr_find(plain, (X, np.eye(3)[Y]), num_it=60,
                             batch_size=BATCH, end_lr=1e3, stop_div=True)
    out["stopped_at"] = [len(result.losses), result.stop_reason]
    if dp is not None:
        out["replica_spread"], out["fewest_copies"] = spread(model)
    return out


def annealing(dp):
    keras.utils.set_random_seed(1)
    model = keras.Sequential([keras.Input((12,)),
                              keras.layers.Dense(3, activation="softmax")])
    model.compile(kerasdl.GradientSum(keras.optimizers.SGD(2.0, momentum=0.9)),
                  "sparse_categorical_crossentropy")
    # at this rate the statistic grows by about 1.12 in the fourth epoch
    annealer = kerasdl.GradientRatioAnnealer(threshold=1.05, factor=4.0)
    history = model.fit(X, Y, batch_size=BATCH, epochs=5, shuffle=False,
                        verbose=0, callbacks=[annealer])
    logs = {k: [float(v) for v in vals] for k, vals in
            history.history.items() if k != "loss"}
    return logs, flat(model.get_weights())


def pseudo(dp):
    """One pseudo-labelling round: MixedBatches gives each replica 6
    labelled + 2 pseudo-labelled rows of every 32 (replicas from dp)."""
    model = build(3)
    model.compile(keras.optimizers.Adam(1e-2), "categorical_crossentropy")
    onehot = np.eye(3, dtype="float32")[Y]
    history = kerasdl.pseudo_label_rounds(
        model, (X[:64], onehot[:64]), X[64:], (X[:64], onehot[:64]),
        rounds=1,
        fraction=0.25, batch_size=BATCH, seed=0)
    return history[-1]["n_pseudo"], flat(model.get_weights())


def features(dp, folder):
    keras.utils.set_random_seed(2)
    inputs = keras.Input((10, 10, 3), dtype="uint8")
    scaled = keras.layers.Rescaling(1 / 255)(inputs)
    conv = keras.layers.Conv2D(4, 3, name="conv")(scaled)
    base = keras.Model(inputs, keras.layers.Flatten()(conv))
    images = np.random.default_rng(3).integers(
        0, 256, (70, 10, 10, 3)).astype("uint8")  # 70: a short last chunk
    feats = kerasdl.precompute(base, (images, np.arange(70) % 5), folder,
                               layer="conv", dtype="float32", verbose=0)
    return np.asarray(feats.features)


def main():
    dp = distribute.data_parallel()
    report = {"backend": keras.backend.backend(),
              "num_replicas": dp.num_replicas, "devices": dp.devices}
    single = work(build(), None)
    with dp:
        report["active_replicas"] = distribute.active_replicas()
        parallel = work(build(), dp)
    for key in ("fit", "one_cycle", "lr_find_losses"):
        report[key] = float(np.max(np.abs(single[key] - parallel[key])))
        report[key + "_scale"] = float(np.max(np.abs(single[key])))
    for key in ("lr_find_restore", "replica_spread", "fewest_copies"):
        report[key] = parallel.get(key, single.get(key))
    report["lr_find_restore_single"] = single["lr_find_restore"]
    report["stopped_at"] = [single["stopped_at"], parallel["stopped_at"]]

    logs1, w1 = annealing(None)
    with dp:
        logs4, w4 = annealing(dp)
    report["annealing_logs_single"] = logs1
    report["annealing_logs_parallel"] = logs4
    report["annealing_weights"] = float(np.max(np.abs(w1 - w4)))

    n1, p1 = pseudo(None)
    with dp:
        n4, p4 = pseudo(dp)
    report["pseudo_rows"] = [n1, n4]
    report["pseudo_weights"] = float(np.max(np.abs(p1 - p4)))

    with tempfile.TemporaryDirectory() as tmp:
        f1 = features(None, os.path.join(tmp, "one"))
        with dp:
            f4 = features(dp, os.path.join(tmp, "all"))
    report["features"] = float(np.max(np.abs(f1 - f4)))
    report["features_shape"] = list(f4.shape)
    report["features_scale"] = float(np.max(np.abs(f1)))
    print("REPORT " + json.dumps(report))


if __name__ == "__main__":
    main()
