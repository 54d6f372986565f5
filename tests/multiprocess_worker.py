"""Run by tests/test_multiprocess.py: the same short job as one process over
two simulated CPU devices (``reference OUT``) or as each process of a job
of two processes with one CPU device each (``job(OUT)``, the function
``kerasdl.distribute.launch`` calls in each process). Prints one
``RESULT {json}`` line per process; the test judges them.

    KERAS_BACKEND=jax python tests/multiprocess_worker.py reference /tmp/ref
    KERAS_BACKEND=jax python -m kerasdl.distribute --processes 2 \\
        tests/multiprocess_worker.py job /tmp/job
"""

import json
import os
import sys
import time

import numpy as np

ROWS, BATCH = 96, 32  # three batches of the job, 16 rows per device

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(
    __file__))))


def data():
    import kerasdl

    (x, y) = kerasdl.load_fashion_sample()[0]
    x = x[:ROWS].astype("float32") / 255.0
    return x, y[:ROWS].astype("int32")


def build():
    import keras

    import kerasdl

    keras.utils.set_random_seed(0)
    model = kerasdl.conv_bn((28, 28, 1), 10, units=16)
    model.compile(keras.optimizers.Adam(1e-3),
                  "sparse_categorical_crossentropy")
    return model


def flat(model):
    return np.concatenate([np.ravel(np.asarray(w, "float64"))
                           for w in model.get_weights()])


def write_json(path, value):
    """Complete or absent: a temporary name, then a rename."""
    partial = path + ".partial"
    with open(partial, "w") as f:
        json.dump(value, f)
    os.replace(partial, path)


def work(out, job):
    import keras

    import kerasdl
    from kerasdl import distribute

    x, y = data()
    with distribute.data_parallel() as dp:
        (px, py), per = distribute.process_batches((x, y), BATCH)
        # validation rows split the same way (20 of them: a short last
        # batch of 4, two rows a process)
        (vx, vy), vper = distribute.process_batches(
            (x[:20], y[:20]), BATCH // 2)
        model = build()
        history = kerasdl.fit_one_cycle(
            model, (px, py), 1, 1e-2, batch_size=per, shuffle=False,
            verbose=0, validation_data=(vx, vy), validation_batch_size=vper)
        weights = flat(model)
        result = {"process": distribute.process_index(),
                  "processes": distribute.process_count(),
                  "replicas": dp.num_replicas, "rows": int(len(px)),
                  "weights": weights.tolist(), "wrote": [],
                  "val_loss": float(history.history["val_loss"][-1])}
        if job:
            # a sweep that diverges: each process draws its batches' rows
            # from its own part, and the stop is decided from the job's
            # loss, so every process stops at the same step
            sweep = kerasdl.lr_find(model, (px, py), num_it=40,
                                    batch_size=per, start_lr=1e-5,
                                    end_lr=1e3, stop_div=True)
            result["restored"] = float(np.max(np.abs(flat(model) -
                                                     weights)))
            result["lr_find"] = [len(sweep.losses), sweep.stop_reason]
            result["lr_find_losses"] = np.asarray(
                sweep.losses, "float64").tolist()
    if job:
        if distribute.is_writer():
            # a barrier the other process never reaches: a clear error
            try:
                distribute.barrier("process 0 alone", timeout=1)
            except TimeoutError as e:
                result["lonely_barrier"] = str(e)
        checkpoint = os.path.join(out, "model.keras")
        if distribute.is_writer():
            time.sleep(1.0)  # the others reach the barrier first
            partial = os.path.join(out, "model.partial.keras")
            model.save(partial)
            os.replace(partial, checkpoint)
            result["wrote"].append("model.keras")
            write_json(os.path.join(out, "report.json"),
                       {"weights": weights.tolist()})
            result["wrote"].append("report.json")
        distribute.barrier("checkpoint written")
        # every process reads what process 0 wrote while it waited
        loaded = keras.saving.load_model(checkpoint, safe_mode=True)
        result["loaded_difference"] = float(np.max(np.abs(
            flat(loaded) - weights)))
        # every process's rows, gathered on each (features are gathered so)
        every = distribute.gather(np.asarray(py)[:, None] * 10 +
                                  distribute.process_index())
        result["gathered"] = every[:, 0].tolist()
    print("RESULT " + json.dumps(result), flush=True)


def job(out):
    """One process of the job (``kerasdl.distribute.launch`` has joined it
    already when it calls this; a script run joins here)."""
    from kerasdl import distribute

    distribute.initialize()
    work(out, job=True)


def main():
    mode, out = sys.argv[1], sys.argv[2]
    if mode == "reference":
        from kerasdl import distribute

        distribute.simulate_cpu_devices(2)
        work(out, job=False)
    else:
        job(out)


if __name__ == "__main__":
    main()
