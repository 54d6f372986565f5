"""Data-parallel training and feature computation on Keras' own engines.

``data_parallel()`` sets up data parallelism over all local devices for
the active backend: ``keras.distribution.DataParallel`` over a one-axis
``DeviceMesh`` under JAX, ``tf.distribute.MirroredStrategy`` under
TensorFlow (``MultiWorkerMirroredStrategy`` with ``multi_worker=True``).
Build, compile and fit the model inside it::

    import kerasdl

    with kerasdl.data_parallel() as dp:
        model = kerasdl.conv_bn((60, 80, 3), 10)
        model.compile("adam", "sparse_categorical_crossentropy")
        kerasdl.fit_one_cycle(model, (x, y), 3, 1e-3,
                              batch_size=64 * dp.num_replicas)
        feats = kerasdl.precompute(base, images, "feats/")

What holds inside it:

- ``batch_size`` is the global batch: each of the ``num_replicas``
  devices computes ``batch_size / num_replicas`` rows of it, and the
  gradients are summed over the devices before every update, so one epoch
  gives the weights one device gives over the same batches (within float
  rounding). Use batch sizes that are multiples of ``num_replicas``.
- ``lr_find``, ``fit_one_cycle``, ``fit_sgdr``, ``ParamScheduler`` and
  ``GradientRatioAnnealer`` work unchanged: the learning rate and
  momentum are variables laid out like the model's, so every replica
  steps with the same rate; the LR finder restores every replica's
  weights; ``GradientSum`` sums the squared gradients after they are
  summed over the replicas (the statistic one device would see); stop
  decisions are taken on the host, once for all.
- ``features.precompute`` splits every chunk of images over the devices
  and writes one feature file, row for row the one a single device writes.
- ``MixedBatches(..., replicas=dp.num_replicas)`` gives every replica's
  share of a batch the same composition (with TensorFlow each replica
  normalises its own rows, so this keeps pseudo-labels a quarter of every
  replica's batch, not of only the last replica's);
  ``pseudo_label_rounds`` does so by itself.
- Under TensorFlow, ``BatchNormalization`` normalises each replica's rows
  on their own unless built with ``synchronized=True``; under JAX the
  statistics are over the whole batch, as on one device.

Several processes (one per GPU, or per host), JAX only: every process
calls ``initialize()`` first (the coordinator's address, the process count
and its id, or the environment variables Keras reads), then
``data_parallel()`` spans the devices of all processes. Inside it:

- each process passes its own part of every batch: ``part, per =
  process_batches((x, y), batch_size)`` then ``fit(..., batch_size=per)``
  (the job's batches are then those of one process, and so are the
  weights, within float rounding); split validation arrays the same way
  and pass ``validation_batch_size``: the validation loss is the job's; ``lr_find`` takes the same stop
  decision in every process (the loss is the job's);
- ``process_index()``, ``process_count()``; ``is_writer()`` is process 0,
  which alone writes checkpoints, reports and features, while the others
  wait at ``barrier(name)``; ``gather(rows)`` collects every process's
  rows (for example features computed over each process's own images).

``launch(n, script_or_function)`` and ``python -m kerasdl.distribute
--processes N script.py`` start such a job on one machine (127.0.0.1, one
GPU per process). Under TensorFlow, set ``TF_CONFIG`` in every worker and
pass ``multi_worker=True``. The PyTorch backend has no such engine in
Keras: ``data_parallel`` refuses it with a clear error.
"""

import importlib

# names are imported on first use, so ``python -m kerasdl.distribute`` (the
# launcher) starts without importing Keras
_EXPORTS = {
    "DataParallel": "_parallel", "active_replicas": "_parallel",
    "data_parallel": "_parallel", "simulate_cpu_devices": "_parallel",
    "LaunchError": "_launch", "launch": "_launch",
    "barrier": "_processes", "gather": "_processes",
    "initialize": "_processes", "is_writer": "_processes",
    "process_batches": "_batches", "process_count": "_processes",
    "process_index": "_processes",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(
            f"module 'kerasdl.distribute' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"kerasdl.distribute.{module}"),
                    name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(__all__))
